package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// actionRow is an S3 operation as a client sends it and the action the
// request authorizer must be asked for it. The table is written out here,
// from S3's API reference and AWS's list of actions, apart from the proxy's
// own table, so that the two are checked against each other.
type actionRow struct {
	method, target string
	header         http.Header
	action         string
	lists          bool // a listing: its prefix is asked
}

// s3Actions is every operation of S3's API (the AWS SDKs' HTTP bindings) the
// proxy forwards under WithRequestAuthorizer, on a bucket ("/bucket") or an
// object ("/bucket/user/k").
var s3Actions = []actionRow{
	// Objects.
	{"GET", "/bucket/user/k", nil, "s3:GetObject", false},
	{"GET", "/bucket/user/k?versionId=v1", nil, "s3:GetObjectVersion", false},
	{"GET", "/bucket/user/k?partNumber=2&response-content-type=text%2Fplain", nil, "s3:GetObject", false},
	{"HEAD", "/bucket/user/k", nil, "s3:GetObject", false},
	{"HEAD", "/bucket/user/k?versionId=v1", nil, "s3:GetObjectVersion", false},
	{"PUT", "/bucket/user/k", nil, "s3:PutObject", false},
	{"DELETE", "/bucket/user/k", nil, "s3:DeleteObject", false},
	{"DELETE", "/bucket/user/k?versionId=v1", nil, "s3:DeleteObjectVersion", false},
	{"GET", "/bucket/user/k?acl", nil, "s3:GetObjectAcl", false},
	{"GET", "/bucket/user/k?acl&versionId=v1", nil, "s3:GetObjectVersionAcl", false},
	{"PUT", "/bucket/user/k?acl", nil, "s3:PutObjectAcl", false},
	{"PUT", "/bucket/user/k?acl&versionId=v1", nil, "s3:PutObjectVersionAcl", false},
	{"GET", "/bucket/user/k?tagging", nil, "s3:GetObjectTagging", false},
	{"GET", "/bucket/user/k?tagging&versionId=v1", nil, "s3:GetObjectVersionTagging", false},
	{"PUT", "/bucket/user/k?tagging", nil, "s3:PutObjectTagging", false},
	{"DELETE", "/bucket/user/k?tagging", nil, "s3:DeleteObjectTagging", false},
	{"DELETE", "/bucket/user/k?tagging&versionId=v1", nil, "s3:DeleteObjectVersionTagging", false},
	{"GET", "/bucket/user/k?attributes", nil, "s3:GetObjectAttributes", false},
	{"GET", "/bucket/user/k?attributes&versionId=v1", nil, "s3:GetObjectVersionAttributes", false},
	{"GET", "/bucket/user/k?retention", nil, "s3:GetObjectRetention", false},
	{"PUT", "/bucket/user/k?retention", nil, "s3:PutObjectRetention", false},
	{"GET", "/bucket/user/k?legal-hold", nil, "s3:GetObjectLegalHold", false},
	{"PUT", "/bucket/user/k?legal-hold", nil, "s3:PutObjectLegalHold", false},
	{"GET", "/bucket/user/k?torrent", nil, "s3:GetObjectTorrent", false},
	{"GET", "/bucket/user/k?annotation", nil, "s3:ListObjectAnnotations", false},
	{"GET", "/bucket/user/k?annotation&annotationName=a", nil, "s3:GetObjectAnnotation", false},
	{"PUT", "/bucket/user/k?annotation&annotationName=a", nil, "s3:PutObjectAnnotation", false},
	{"DELETE", "/bucket/user/k?annotation&annotationName=a", nil, "s3:DeleteObjectAnnotation", false},
	{"PUT", "/bucket/user/k?encryption", nil, "s3:UpdateObjectEncryption", false},
	{"POST", "/bucket/user/k?restore", nil, "s3:RestoreObject", false},
	{"POST", "/bucket/user/k?select&select-type=2", nil, "s3:GetObject", false},
	{"POST", "/bucket/user/k?uploads", nil, "s3:PutObject", false},
	{"PUT", "/bucket/user/k?partNumber=1&uploadId=u", nil, "s3:PutObject", false},
	{"POST", "/bucket/user/k?uploadId=u", nil, "s3:PutObject", false},
	{"GET", "/bucket/user/k?uploadId=u&max-parts=5", nil, "s3:ListMultipartUploadParts", false},
	{"DELETE", "/bucket/user/k?uploadId=u", nil, "s3:AbortMultipartUpload", false},
	// Buckets.
	{"GET", "/bucket", nil, "s3:ListBucket", true},
	{"GET", "/bucket?list-type=2", nil, "s3:ListBucket", true},
	{"GET", "/bucket?versions", nil, "s3:ListBucketVersions", true},
	{"GET", "/bucket?uploads", nil, "s3:ListBucketMultipartUploads", true},
	{"HEAD", "/bucket", nil, "s3:ListBucket", false},
	{"PUT", "/bucket", nil, "s3:CreateBucket", false},
	{"DELETE", "/bucket", nil, "s3:DeleteBucket", false},
	{"GET", "/bucket?abac", nil, "s3:GetBucketABAC", false},
	{"PUT", "/bucket?abac", nil, "s3:PutBucketABAC", false},
	{"GET", "/bucket?accelerate", nil, "s3:GetAccelerateConfiguration", false},
	{"PUT", "/bucket?accelerate", nil, "s3:PutAccelerateConfiguration", false},
	{"GET", "/bucket?acl", nil, "s3:GetBucketAcl", false},
	{"PUT", "/bucket?acl", nil, "s3:PutBucketAcl", false},
	{"GET", "/bucket?analytics", nil, "s3:GetAnalyticsConfiguration", false},
	{"GET", "/bucket?analytics&id=a", nil, "s3:GetAnalyticsConfiguration", false},
	{"PUT", "/bucket?analytics&id=a", nil, "s3:PutAnalyticsConfiguration", false},
	{"DELETE", "/bucket?analytics&id=a", nil, "s3:PutAnalyticsConfiguration", false},
	{"GET", "/bucket?cors", nil, "s3:GetBucketCORS", false},
	{"PUT", "/bucket?cors", nil, "s3:PutBucketCORS", false},
	{"DELETE", "/bucket?cors", nil, "s3:PutBucketCORS", false},
	{"GET", "/bucket?encryption", nil, "s3:GetEncryptionConfiguration", false},
	{"PUT", "/bucket?encryption", nil, "s3:PutEncryptionConfiguration", false},
	{"DELETE", "/bucket?encryption", nil, "s3:PutEncryptionConfiguration", false},
	{"GET", "/bucket?intelligent-tiering", nil, "s3:GetIntelligentTieringConfiguration", false},
	{"PUT", "/bucket?intelligent-tiering&id=a", nil, "s3:PutIntelligentTieringConfiguration", false},
	{"DELETE", "/bucket?intelligent-tiering&id=a", nil, "s3:PutIntelligentTieringConfiguration", false},
	{"GET", "/bucket?inventory&id=a", nil, "s3:GetInventoryConfiguration", false},
	{"PUT", "/bucket?inventory&id=a", nil, "s3:PutInventoryConfiguration", false},
	{"DELETE", "/bucket?inventory&id=a", nil, "s3:PutInventoryConfiguration", false},
	{"GET", "/bucket?lifecycle", nil, "s3:GetLifecycleConfiguration", false},
	{"PUT", "/bucket?lifecycle", nil, "s3:PutLifecycleConfiguration", false},
	{"DELETE", "/bucket?lifecycle", nil, "s3:PutLifecycleConfiguration", false},
	{"GET", "/bucket?location", nil, "s3:GetBucketLocation", false},
	{"GET", "/bucket?logging", nil, "s3:GetBucketLogging", false},
	{"PUT", "/bucket?logging", nil, "s3:PutBucketLogging", false},
	{"GET", "/bucket?metadataConfiguration", nil, "s3:GetBucketMetadataTableConfiguration", false},
	{"POST", "/bucket?metadataConfiguration", nil, "s3:CreateBucketMetadataTableConfiguration", false},
	{"DELETE", "/bucket?metadataConfiguration", nil, "s3:DeleteBucketMetadataTableConfiguration", false},
	{"GET", "/bucket?metadataTable", nil, "s3:GetBucketMetadataTableConfiguration", false},
	{"POST", "/bucket?metadataTable", nil, "s3:CreateBucketMetadataTableConfiguration", false},
	{"DELETE", "/bucket?metadataTable", nil, "s3:DeleteBucketMetadataTableConfiguration", false},
	{"PUT", "/bucket?metadataInventoryTable", nil, "s3:UpdateBucketMetadataInventoryTableConfiguration", false},
	{"PUT", "/bucket?metadataJournalTable", nil, "s3:UpdateBucketMetadataJournalTableConfiguration", false},
	{"PUT", "/bucket?metadataAnnotationTable", nil, "s3:UpdateBucketMetadataAnnotationTableConfiguration", false},
	{"GET", "/bucket?metrics&id=a", nil, "s3:GetMetricsConfiguration", false},
	{"PUT", "/bucket?metrics&id=a", nil, "s3:PutMetricsConfiguration", false},
	{"DELETE", "/bucket?metrics&id=a", nil, "s3:PutMetricsConfiguration", false},
	{"GET", "/bucket?notification", nil, "s3:GetBucketNotification", false},
	{"PUT", "/bucket?notification", nil, "s3:PutBucketNotification", false},
	{"GET", "/bucket?object-lock", nil, "s3:GetBucketObjectLockConfiguration", false},
	{"PUT", "/bucket?object-lock", nil, "s3:PutBucketObjectLockConfiguration", false},
	{"GET", "/bucket?ownershipControls", nil, "s3:GetBucketOwnershipControls", false},
	{"PUT", "/bucket?ownershipControls", nil, "s3:PutBucketOwnershipControls", false},
	{"DELETE", "/bucket?ownershipControls", nil, "s3:PutBucketOwnershipControls", false},
	{"GET", "/bucket?policy", nil, "s3:GetBucketPolicy", false},
	{"PUT", "/bucket?policy", nil, "s3:PutBucketPolicy", false},
	{"DELETE", "/bucket?policy", nil, "s3:DeleteBucketPolicy", false},
	{"GET", "/bucket?policyStatus", nil, "s3:GetBucketPolicyStatus", false},
	{"GET", "/bucket?protection", nil, "s3:GetBucketProtectionConfiguration", false},
	{"PUT", "/bucket?protection", nil, "s3:PutBucketProtectionConfiguration", false},
	{"GET", "/bucket?publicAccessBlock", nil, "s3:GetBucketPublicAccessBlock", false},
	{"PUT", "/bucket?publicAccessBlock", nil, "s3:PutBucketPublicAccessBlock", false},
	{"DELETE", "/bucket?publicAccessBlock", nil, "s3:PutBucketPublicAccessBlock", false},
	{"GET", "/bucket?replication", nil, "s3:GetReplicationConfiguration", false},
	{"PUT", "/bucket?replication", nil, "s3:PutReplicationConfiguration", false},
	{"DELETE", "/bucket?replication", nil, "s3:PutReplicationConfiguration", false},
	{"GET", "/bucket?requestPayment", nil, "s3:GetBucketRequestPayment", false},
	{"PUT", "/bucket?requestPayment", nil, "s3:PutBucketRequestPayment", false},
	{"GET", "/bucket?session", nil, "s3express:CreateSession", false},
	{"GET", "/bucket?tagging", nil, "s3:GetBucketTagging", false},
	{"PUT", "/bucket?tagging", nil, "s3:PutBucketTagging", false},
	{"DELETE", "/bucket?tagging", nil, "s3:PutBucketTagging", false},
	{"GET", "/bucket?versioning", nil, "s3:GetBucketVersioning", false},
	{"PUT", "/bucket?versioning", nil, "s3:PutBucketVersioning", false},
	{"GET", "/bucket?website", nil, "s3:GetBucketWebsite", false},
	{"PUT", "/bucket?website", nil, "s3:PutBucketWebsite", false},
	{"DELETE", "/bucket?website", nil, "s3:DeleteBucketWebsite", false},
}

// allowAll is a request authorizer that allows everything and records what
// it was asked.
func allowAll() *recordingAuthz {
	return &recordingAuthz{decide: func(proxy.AccessRequest) proxy.Decision { return proxy.Decision{Allow: true} }}
}

// signedRequest is a header-signed client request with an empty body.
func signedRequest(t *testing.T, method, target string, h http.Header) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	clientSign(t, r, sha256Hex(nil))
	return r
}

// Every operation is asked as the action AWS names for it: alone, with the
// listing parameters beside it (a sub-resource takes precedence: only a
// listing reads the prefix), with the SDKs' x-id, and asked once.
func TestRequestActionTable(t *testing.T) {
	up := newFakeUpstream(t)
	a := allowAll()
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	for _, c := range s3Actions {
		for _, extra := range []string{"", "prefix=user%2F", "prefix=user%2F&delimiter=%2F&max-keys=5&marker=m", "x-id=Op"} {
			target := c.target
			if extra != "" {
				target += map[bool]string{true: "&", false: "?"}[strings.Contains(target, "?")] + extra
			}
			name := c.method + " " + target
			w := serve(p, signedRequest(t, c.method, target, c.header))
			require.Equal(t, http.StatusOK, w.Code, name+": "+w.Body.String())
			asked := a.take()
			require.Len(t, asked, 1, name)
			assert.Equal(t, c.action, asked[0].Action, name)
			assert.Equal(t, c.method, asked[0].Method, name)
			wantPrefix := ""
			if c.lists && strings.Contains(extra, "prefix=") {
				wantPrefix = "user/"
			}
			assert.Equal(t, wantPrefix, asked[0].Prefix, name+": only a listing's prefix is asked about")
		}
	}
}

// A copy asks about reading its source, a rename about reading and deleting
// its own (issue 19, item 4): both before their own s3:PutObject.
func TestRequestActionSources(t *testing.T) {
	up := newFakeUpstream(t)
	a := allowAll()
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	type ask struct{ action, bucket, key string }
	for _, c := range []struct {
		method, target string
		header         http.Header
		want           []ask
	}{
		{"PUT", "/bucket/user/x", http.Header{"X-Amz-Copy-Source": {"/bucket/admin/secret"}},
			[]ask{{"s3:GetObject", "bucket", "admin/secret"}, {"s3:PutObject", "bucket", "user/x"}}},
		{"PUT", "/bucket/user/x?partNumber=1&uploadId=u", http.Header{"X-Amz-Copy-Source": {"bucket/admin/secret?versionId=v"}},
			[]ask{{"s3:GetObjectVersion", "bucket", "admin/secret"}, {"s3:PutObject", "bucket", "user/x"}}},
		{"PUT", "/bucket/user/x?renameObject", http.Header{"X-Amz-Rename-Source": {"/bucket/admin/secret"}},
			[]ask{{"s3:GetObject", "bucket", "admin/secret"}, {"s3:DeleteObject", "bucket", "admin/secret"}, {"s3:PutObject", "bucket", "user/x"}}},
		{"PUT", "/bucket/user/x?renameObject&x-amz-rename-source=%2Fbucket%2Fadmin%2Fsecret", nil,
			[]ask{{"s3:GetObject", "bucket", "admin/secret"}, {"s3:DeleteObject", "bucket", "admin/secret"}, {"s3:PutObject", "bucket", "user/x"}}},
	} {
		name := c.method + " " + c.target
		w := serve(p, signedRequest(t, c.method, c.target, c.header))
		require.Equal(t, http.StatusOK, w.Code, name+": "+w.Body.String())
		var got []ask
		for _, r := range a.take() {
			got = append(got, ask{r.Action, r.Bucket, r.Key})
			if r.Action == "s3:PutObject" {
				assert.Equal(t, "admin/secret", r.SourceKey, name)
			}
		}
		assert.Equal(t, c.want, got, name)
	}

	// A rename source in another bucket, or two of them, is refused before
	// anything is asked or forwarded.
	before := len(up.requests())
	for _, h := range []http.Header{
		{"X-Amz-Rename-Source": {"/other-bucket/admin/secret"}},
		{"X-Amz-Rename-Source": {"/bucket/a", "/bucket/b"}},
		{"X-Amz-Rename-Source": {"/bucket/a?versionId=v"}},
	} {
		w := serve(p, signedRequest(t, "PUT", "/bucket/user/x?renameObject", h))
		assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
		assert.Equal(t, "InvalidArgument", s3Code(w.Body.String()))
	}
	assert.Empty(t, a.take())
	assert.Len(t, up.requests(), before)
}

// What the proxy cannot read one way only is refused with S3's error before
// anything is asked or forwarded: a parameter S3 reads once given twice
// (issue 19, item 2), two sub-resources at once; and, with a request
// authorizer, a query parameter S3 does not define (501) or a method S3 does
// not define on the sub-resource (405), instead of asking about them as
// another action (item 3).
func TestRequestQueryRefused(t *testing.T) {
	up := newFakeUpstream(t)
	a := allowAll()
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	plain := newProxy(t, up) // the token + bucket authorizer only
	for _, c := range []struct {
		method, target string
		status         int
		code           string
		plainStatus    int // without a request authorizer
	}{
		{"GET", "/bucket?list-type=2&prefix=user%2F&prefix=admin%2F", 400, "InvalidArgument", 400},
		{"GET", "/bucket?prefix=user%2F&prefix=admin%2F", 400, "InvalidArgument", 400},
		{"GET", "/bucket?versions&prefix=user%2F&pre%66ix=admin%2F", 400, "InvalidArgument", 400},
		{"GET", "/bucket?uploads&prefix=user%2F&prefix=", 400, "InvalidArgument", 400},
		{"GET", "/bucket/user/k?versionId=a&versionId=b", 400, "InvalidArgument", 400},
		{"PUT", "/bucket/user/k?partNumber=1&uploadId=u&uploadId=v", 400, "InvalidArgument", 400},
		{"PUT", "/bucket/user/k?partNumber=1&partNumber=2&uploadId=u", 400, "InvalidArgument", 400},
		{"GET", "/bucket?list-type=2&list-type=1", 400, "InvalidArgument", 400},
		{"GET", "/bucket?acl&acl", 400, "InvalidArgument", 400},
		{"GET", "/bucket?acl&policy", 400, "InvalidArgument", 400},
		{"GET", "/bucket?uploads&versions&prefix=user%2F", 400, "InvalidArgument", 400},
		{"PUT", "/bucket/user/k?tagging&uploadId=u", 400, "InvalidArgument", 400},
		{"PUT", "/bucket/user/k?x-amz-acl=private&x-amz-acl=public-read", 400, "InvalidArgument", 400},
		{"GET", "/bucket?list-type=2&prefix=user%2F&somethingnew", 501, "NotImplemented", 200},
		{"GET", "/bucket?somethingnew", 501, "NotImplemented", 200},
		{"GET", "/bucket/user/k?Acl", 501, "NotImplemented", 200},
		{"GET", "/bucket/user/k?=x", 501, "NotImplemented", 200},
		{"POST", "/bucket/user/k?acl", 405, "MethodNotAllowed", 200},
		{"PUT", "/bucket?uploads", 405, "MethodNotAllowed", 200},
		{"DELETE", "/bucket?session", 405, "MethodNotAllowed", 200},
	} {
		name := c.method + " " + c.target
		before := len(up.requests())
		w := serve(p, signedRequest(t, c.method, c.target, nil))
		assert.Equal(t, c.status, w.Code, name+": "+w.Body.String())
		assert.Equal(t, c.code, s3Code(w.Body.String()), name)
		assert.Empty(t, a.take(), name+": nothing asked")
		assert.Len(t, up.requests(), before, name+": nothing forwarded")
		w = serve(plain, signedRequest(t, c.method, c.target, nil))
		assert.Equal(t, c.plainStatus, w.Code, name+" without a request authorizer: "+w.Body.String())
	}
	w := serve(p, signedRequest(t, "GET", "/bucket?acl&policy", nil))
	assert.Contains(t, w.Body.String(), "<Message>Conflicting query string parameters: acl, policy</Message>")
	assert.Contains(t, w.Body.String(), "<ArgumentName>ResourceType</ArgumentName>")
	w = serve(p, signedRequest(t, "GET", "/bucket?prefix=a&prefix=b", nil))
	assert.Contains(t, w.Body.String(), "<ArgumentName>prefix</ArgumentName>")
}

// The reproductions, with a client allowed to list and read only
// under user/: each must be refused, and nothing of it reach the upstream.
func TestRequestAuthorizerBypasses(t *testing.T) {
	up := newFakeUpstream(t)
	userOnly := &recordingAuthz{decide: func(r proxy.AccessRequest) proxy.Decision {
		switch r.Action {
		case "s3:ListBucket":
			return proxy.Decision{Allow: strings.HasPrefix(r.Prefix, "user/")}
		case "s3:GetObject":
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "user/")}
		case "s3:PutObject":
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "user/")}
		}
		return proxy.Decision{}
	}}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(userOnly.hook))
	for _, c := range []struct {
		method, target string
		header         http.Header
	}{
		{"GET", "/bucket?list-type=2&prefix=user%2F&prefix=admin%2F", nil},
		{"GET", "/bucket?prefix=user%2F&prefix=admin%2F", nil},
		{"GET", "/bucket?acl&prefix=user%2F", nil},
		{"GET", "/bucket?policy&prefix=user%2F", nil},
		{"GET", "/bucket?tagging&prefix=user%2F", nil},
		{"GET", "/bucket?encryption&prefix=user%2F", nil},
		{"GET", "/bucket?policyStatus&prefix=user%2F", nil},
		{"GET", "/bucket?session&prefix=user%2F", nil},
		{"PUT", "/bucket/user/x?retention", nil},
		{"PUT", "/bucket/user/x?legal-hold", nil},
		{"GET", "/bucket/user/x?retention", nil},
		{"GET", "/bucket/user/x?legal-hold", nil},
		{"PUT", "/bucket/user/x?renameObject", http.Header{"X-Amz-Rename-Source": {"/bucket/admin/secret"}}},
		{"PUT", "/bucket/user/x?x-amz-acl=public-read", nil},
		{"PUT", "/bucket/user/x?x-amz-tagging=a%3Db", nil},
	} {
		name := c.method + " " + c.target
		w := serve(p, signedRequest(t, c.method, c.target, c.header))
		assert.Contains(t, []int{400, 403}, w.Code, name+": "+w.Body.String())
		assert.Empty(t, up.requests(), name+": nothing forwarded")
	}
	// What the rules allow still goes.
	assert.Equal(t, 200, serve(p, signedRequest(t, "GET", "/bucket?list-type=2&prefix=user%2F", nil)).Code)
	assert.Equal(t, 200, serve(p, signedRequest(t, "GET", "/bucket/user/x", nil)).Code)
	assert.Equal(t, 200, serve(p, signedRequest(t, "PUT", "/bucket/user/x", nil)).Code)
}

// Presigned says how the request was signed, not what its query looks like.
func TestRequestPresignedField(t *testing.T) {
	up := newFakeUpstream(t)
	a := allowAll()
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	require.Equal(t, 200, serve(p, signedRequest(t, "GET", "/bucket/k?response-content-type=Signature=x", nil)).Code)
	asked := a.take()
	require.Len(t, asked, 1)
	assert.False(t, asked[0].Presigned, "header-signed, whatever its query holds")
	u := presign(t, "GET", "http://example.com/bucket/k", fixedNow, time.Hour)
	require.Equal(t, 200, serve(p, httptest.NewRequest("GET", u.RequestURI(), nil)).Code)
	asked = a.take()
	require.Len(t, asked, 1)
	assert.True(t, asked[0].Presigned)
}
