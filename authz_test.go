package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// recordingAuthz is a request authorizer that records what it is asked and
// answers with decide.
type recordingAuthz struct {
	mu     sync.Mutex
	asked  []proxy.AccessRequest
	decide func(proxy.AccessRequest) proxy.Decision
}

func (a *recordingAuthz) hook(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
	a.mu.Lock()
	a.asked = append(a.asked, r)
	a.mu.Unlock()
	return a.decide(r), nil
}

func (a *recordingAuthz) take() []proxy.AccessRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.asked
	a.asked = nil
	return out
}

// The action of every S3 operation the proxy forwards, as AWS names it in
// policies.
func TestRequestActions(t *testing.T) {
	up := newFakeUpstream(t)
	a := &recordingAuthz{decide: func(proxy.AccessRequest) proxy.Decision { return proxy.Decision{Allow: true} }}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	for _, c := range []struct {
		method, target string
		h              http.Header
		action         string
	}{
		{"GET", "/bucket/k", nil, "s3:GetObject"},
		{"HEAD", "/bucket/k", nil, "s3:GetObject"},
		{"PUT", "/bucket/k", nil, "s3:PutObject"},
		{"PUT", "/bucket/k?partNumber=1&uploadId=u", nil, "s3:PutObject"},
		{"POST", "/bucket/k?uploads", nil, "s3:PutObject"},
		{"POST", "/bucket/k?uploadId=u", nil, "s3:PutObject"},
		{"DELETE", "/bucket/k?uploadId=u", nil, "s3:AbortMultipartUpload"},
		{"GET", "/bucket/k?uploadId=u", nil, "s3:ListMultipartUploadParts"},
		{"DELETE", "/bucket/k", nil, "s3:DeleteObject"},
		{"GET", "/bucket/k?tagging", nil, "s3:GetObjectTagging"},
		{"PUT", "/bucket/k?tagging", nil, "s3:PutObjectTagging"},
		{"DELETE", "/bucket/k?tagging", nil, "s3:DeleteObjectTagging"},
		{"GET", "/bucket/k?acl", nil, "s3:GetObjectAcl"},
		{"PUT", "/bucket/k?acl", nil, "s3:PutObjectAcl"},
		{"GET", "/bucket/k?attributes", nil, "s3:GetObjectAttributes"},
		{"POST", "/bucket/k?restore", nil, "s3:RestoreObject"},
		{"GET", "/bucket?list-type=2&prefix=a%2F", nil, "s3:ListBucket"},
		{"GET", "/bucket?prefix=a", nil, "s3:ListBucket"},
		{"HEAD", "/bucket", nil, "s3:ListBucket"},
		{"GET", "/bucket?versions", nil, "s3:ListBucketVersions"},
		{"GET", "/bucket?uploads", nil, "s3:ListBucketMultipartUploads"},
		{"PUT", "/bucket", nil, "s3:CreateBucket"},
		{"DELETE", "/bucket", nil, "s3:DeleteBucket"},
		{"GET", "/bucket?acl", nil, "s3:GetBucketAcl"},
		{"PUT", "/bucket?acl", nil, "s3:PutBucketAcl"},
		{"GET", "/bucket?cors", nil, "s3:GetBucketCORS"},
		{"PUT", "/bucket?cors", nil, "s3:PutBucketCORS"},
		{"DELETE", "/bucket?cors", nil, "s3:PutBucketCORS"},
		{"GET", "/bucket?lifecycle", nil, "s3:GetLifecycleConfiguration"},
		{"PUT", "/bucket?lifecycle", nil, "s3:PutLifecycleConfiguration"},
		{"GET", "/bucket?location", nil, "s3:GetBucketLocation"},
		{"GET", "/bucket?policy", nil, "s3:GetBucketPolicy"},
		{"PUT", "/bucket?policy", nil, "s3:PutBucketPolicy"},
		{"DELETE", "/bucket?policy", nil, "s3:DeleteBucketPolicy"},
		{"GET", "/bucket?tagging", nil, "s3:GetBucketTagging"},
		{"PUT", "/bucket?versioning", nil, "s3:PutBucketVersioning"},
		{"GET", "/bucket?encryption", nil, "s3:GetEncryptionConfiguration"},
		{"GET", "/bucket?object-lock", nil, "s3:GetBucketObjectLockConfiguration"},
		{"PUT", "/bucket?publicAccessBlock", nil, "s3:PutBucketPublicAccessBlock"},
		{"GET", "/bucket?website", nil, "s3:GetBucketWebsite"},
		{"GET", "/bucket?notification", nil, "s3:GetBucketNotification"},
		{"GET", "/bucket?accelerate", nil, "s3:GetAccelerateConfiguration"},
		{"GET", "/bucket?requestPayment", nil, "s3:GetBucketRequestPayment"},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		require.NotEqual(t, http.StatusForbidden, w.Code, c.method+" "+c.target)
		asked := a.take()
		require.Len(t, asked, 1, c.method+" "+c.target)
		assert.Equal(t, c.action, asked[0].Action, c.method+" "+c.target)
		assert.Equal(t, c.method, asked[0].Method)
		assert.Equal(t, unitKey, asked[0].Token)
	}
}

// A per-bucket rule is asked once per TTL, a per-key rule once per key, a
// request rule every time; a copy reads its source first; a listing names its
// prefix; the client address comes from the connection or a trusted proxy.
func TestRequestAuthorizerScopes(t *testing.T) {
	up := newFakeUpstream(t)
	a := &recordingAuthz{}
	a.decide = func(r proxy.AccessRequest) proxy.Decision {
		switch {
		case r.Action == "s3:GetObject" && strings.HasPrefix(r.Key, "public/"):
			return proxy.Decision{Allow: true, Scope: proxy.ScopeKey}
		case r.Action == "s3:GetObject":
			return proxy.Decision{Allow: true, Scope: proxy.ScopeBucket}
		case r.Action == "s3:PutObject":
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "tenant-a/"), Scope: proxy.ScopeKey}
		case r.Action == "s3:ListBucket":
			return proxy.Decision{Allow: strings.HasPrefix(r.Prefix, "tenant-a/")}
		}
		return proxy.Decision{}
	}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook), proxy.WithTrustedProxies("192.0.2.0/24"))
	do := func(method, target string, h http.Header) int {
		r := httptest.NewRequest(method, target, nil)
		r.RemoteAddr = "192.0.2.9:5555"
		for k, v := range h {
			r.Header[k] = v
		}
		clientSign(t, r, sha256Hex(nil))
		return serve(p, r).Code
	}
	for range 3 {
		assert.Equal(t, 200, do("GET", "/bucket/one", nil))
		assert.Equal(t, 200, do("GET", "/bucket/two", nil))
	}
	assert.Len(t, a.take(), 1, "a per-bucket rule: one call for any key")

	assert.Equal(t, 200, do("PUT", "/bucket/tenant-a/x", nil))
	assert.Equal(t, 200, do("PUT", "/bucket/tenant-a/x", nil))
	assert.Equal(t, 403, do("PUT", "/bucket/tenant-b/x", nil))
	assert.Equal(t, 403, do("PUT", "/bucket/tenant-b/x", nil))
	assert.Len(t, a.take(), 2, "a per-key rule: one call per key, denials cached too")

	assert.Equal(t, 200, do("GET", "/bucket?list-type=2&prefix=tenant-a%2F", nil))
	assert.Equal(t, 403, do("GET", "/bucket?list-type=2&prefix=tenant-b%2F", nil))
	assert.Equal(t, 403, do("GET", "/bucket?list-type=2", nil))
	asked := a.take()
	require.Len(t, asked, 3, "a request rule: every time")
	assert.Equal(t, "tenant-a/", asked[0].Prefix)

	assert.Equal(t, 200, do("PUT", "/bucket/tenant-a/copy", http.Header{"X-Amz-Copy-Source": {"bucket/source"}}))
	asked = a.take()
	require.Len(t, asked, 1, "the source's read is cached per bucket; the write per key")
	assert.Equal(t, "s3:PutObject", asked[0].Action)
	assert.Equal(t, "bucket", asked[0].SourceBucket)
	assert.Equal(t, "source", asked[0].SourceKey)
	assert.Equal(t, 403, do("PUT", "/bucket/tenant-b/copy", http.Header{"X-Amz-Copy-Source": {"bucket/source"}}))
	assert.Equal(t, "192.0.2.9", a.take()[0].ClientIP, "the connection's address without X-Forwarded-For")

	// The client address: from X-Forwarded-For past the trusted proxy.
	assert.Equal(t, 200, do("GET", "/bucket?prefix=tenant-a%2F", http.Header{"X-Forwarded-For": {"203.0.113.7, 192.0.2.3"}}))
	asked = a.take()
	require.Len(t, asked, 1)
	assert.Equal(t, "203.0.113.7", asked[0].ClientIP)
}

// DeleteObjects is asked about every key it names; one denied key refuses
// the whole request, and an allowed one goes upstream with the same body.
func TestRequestAuthorizerDeleteObjects(t *testing.T) {
	up := newFakeUpstream(t)
	a := &recordingAuthz{decide: func(r proxy.AccessRequest) proxy.Decision {
		return proxy.Decision{Allow: r.Action == "s3:DeleteObject" && strings.HasPrefix(r.Key, "tenant-a/"), Scope: proxy.ScopeKey}
	}}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	del := func(keys ...string) int {
		body := "<Delete>"
		for _, k := range keys {
			body += "<Object><Key>" + k + "</Key></Object>"
		}
		body += "</Delete>"
		r := httptest.NewRequest(http.MethodPost, "/bucket?delete", strings.NewReader(body))
		r.Header.Set("Content-Md5", "irrelevant-here")
		clientSign(t, r, sha256Hex([]byte(body)))
		return serve(p, r).Code
	}
	assert.Equal(t, 403, del("tenant-a/1", "tenant-b/2"))
	assert.Empty(t, up.requests(), "one denied key refuses the whole request")
	assert.Equal(t, 200, del("tenant-a/1", "tenant-a/3"))
	got := up.last(t)
	assert.True(t, got.SigOK, got.SigErr)
	assert.Contains(t, string(got.Body), "<Key>tenant-a/3</Key>")
	keys := map[string]bool{}
	for _, r := range a.take() {
		keys[r.Key] = true
	}
	assert.Equal(t, map[string]bool{"tenant-a/1": true, "tenant-b/2": true, "tenant-a/3": true}, keys)
	assert.Equal(t, 400, del(), "no keys: MalformedXML")
}

// What AWS asks about beyond an operation's own action: versions, ACLs, tags
// and object-lock settings on writes, a versioned copy source; a key with dot
// segments is asked about as a hop that resolves them would read it too.
func TestRequestAuthorizerAsksAsAWS(t *testing.T) {
	up := newFakeUpstream(t)
	a := &recordingAuthz{decide: func(proxy.AccessRequest) proxy.Decision { return proxy.Decision{Allow: true} }}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, c := range []struct {
		method, target string
		h              http.Header
		asked          []string // action key, in order
		status         int
	}{
		{"GET", "/bucket/k?versionId=v1", nil, []string{"s3:GetObjectVersion k"}, 200},
		{"HEAD", "/bucket/k?versionId=v1", nil, []string{"s3:GetObjectVersion k"}, 200},
		{"DELETE", "/bucket/k?versionId=v1", nil, []string{"s3:DeleteObjectVersion k"}, 200},
		{"GET", "/bucket/k?tagging&versionId=v1", nil, []string{"s3:GetObjectVersionTagging k"}, 200},
		{"PUT", "/bucket/k?acl&versionId=v1", nil, []string{"s3:PutObjectVersionAcl k"}, 200},
		{"GET", "/bucket/k?%76ersionId=v1", nil, []string{"s3:GetObjectVersion k"}, 200},
		{"GET", "/bucket?versions&version-id-marker=v1", nil, []string{"s3:ListBucketVersions "}, 200},
		{"PUT", "/bucket/k", h("X-Amz-Acl", "public-read"), []string{"s3:PutObject k", "s3:PutObjectAcl k"}, 200},
		{"PUT", "/bucket/k", h("X-Amz-Grant-Read", "id=x"), []string{"s3:PutObject k", "s3:PutObjectAcl k"}, 200},
		{"PUT", "/bucket/k", h("X-Amz-Tagging", "a=b"), []string{"s3:PutObject k", "s3:PutObjectTagging k"}, 200},
		{"PUT", "/bucket/k", h("X-Amz-Object-Lock-Mode", "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date", "2030-01-01T00:00:00Z", "X-Amz-Object-Lock-Legal-Hold", "ON"),
			[]string{"s3:PutObject k", "s3:PutObjectRetention k", "s3:PutObjectLegalHold k"}, 200},
		{"POST", "/bucket/k?uploads", h("X-Amz-Acl", "private"), []string{"s3:PutObject k", "s3:PutObjectAcl k"}, 200},
		{"PUT", "/bucket/k", h("X-Amz-Copy-Source", "/bucket/src?versionId=v1", "X-Amz-Tagging-Directive", "COPY"),
			[]string{"s3:GetObjectVersion src", "s3:PutObject k"}, 200},
		{"PUT", "/bucket/k", h("X-Amz-Copy-Source", "/bucket/src", "X-Amz-Tagging-Directive", "REPLACE", "X-Amz-Tagging", "a=b"),
			[]string{"s3:GetObject src", "s3:PutObject k", "s3:PutObjectTagging k"}, 200},
		{"PUT", "/bucket", h("X-Amz-Acl", "private", "X-Amz-Bucket-Object-Lock-Enabled", "true"),
			[]string{"s3:CreateBucket ", "s3:PutBucketAcl ", "s3:PutBucketObjectLockConfiguration ", "s3:PutBucketVersioning "}, 200},
		{"GET", "/bucket/public/../secret", nil, []string{"s3:GetObject public/../secret", "s3:GetObject secret"}, 200},
		{"GET", "/bucket/public/%2E%2E/secret", nil, []string{"s3:GetObject public/../secret", "s3:GetObject secret"}, 200},
		{"GET", "/bucket/a//../b", nil, []string{"s3:GetObject a//../b", "s3:GetObject a/b", "s3:GetObject b"}, 200},
		{"GET", "/bucket/a/./b/", nil, []string{"s3:GetObject a/./b/", "s3:GetObject a/b/"}, 200},
		{"GET", "/bucket/..a/b.", nil, []string{"s3:GetObject ..a/b."}, 200},
		{"GET", "/bucket/a/..", nil, []string{"s3:GetObject a/.."}, 400},
		{"PUT", "/bucket/k", h("X-Amz-Copy-Source", "/bucket/a/../src"), []string{"s3:GetObject a/../src", "s3:GetObject src", "s3:PutObject k"}, 200},
		{"GET", "/", nil, []string{"s3:ListAllMyBuckets "}, 200},
	} {
		name := c.method + " " + c.target + fmt.Sprint(c.h)
		r := httptest.NewRequest(c.method, c.target, nil)
		for k, v := range c.h {
			r.Header[k] = v
		}
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, c.status, w.Code, "%s: %s", name, w.Body.String())
		var asked []string
		for _, q := range a.take() {
			asked = append(asked, q.Action+" "+q.Key)
		}
		assert.Equal(t, c.asked, asked, name)
	}

	// A denied extra action refuses the request, and nothing goes upstream.
	deny := &recordingAuthz{decide: func(r proxy.AccessRequest) proxy.Decision {
		return proxy.Decision{Allow: r.Action == "s3:PutObject" || r.Action == "s3:GetObject" && strings.HasPrefix(r.Key, "public/")}
	}}
	up2 := newFakeUpstream(t)
	p = newProxy(t, up2, proxy.WithRequestAuthorizer(deny.hook))
	for _, c := range []struct {
		method, target string
		h              http.Header
	}{
		{"PUT", "/bucket/k", h("X-Amz-Acl", "public-read")},
		{"PUT", "/bucket/k", h("x-amz-grant-full-control", "id=x")},
		{"PUT", "/bucket/k", h("X-Amz-Tagging", "a=b")},
		{"GET", "/bucket/public/k?versionId=v1", nil},
		{"GET", "/bucket/public/../secret", nil},
		{"GET", "/", nil},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		for k, v := range c.h {
			r.Header[http.CanonicalHeaderKey(k)] = v
		}
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, http.StatusForbidden, w.Code, "%s %s %v", c.method, c.target, c.h)
	}
	assert.Empty(t, up2.requests())
}

// DeleteObjects bodies are read one way only: anything an upstream could read
// as another key than the proxy authorized is 400 MalformedXML.
func TestRequestAuthorizerDeleteObjectsXML(t *testing.T) {
	up := newFakeUpstream(t)
	a := &recordingAuthz{decide: func(proxy.AccessRequest) proxy.Decision { return proxy.Decision{Allow: true} }}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(a.hook))
	const ns = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`
	for _, c := range []struct {
		name, body string
		asked      []string // action key; nil: 400 MalformedXML
	}{
		{"plain", `<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object></Delete>`, []string{"s3:DeleteObject a", "s3:DeleteObject b"}},
		{"S3's namespace, quiet, declaration, comments, blanks",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n<!-- x --><Delete " + ns + ">\n <Quiet>true</Quiet>\n <Object><Key>a &amp; b</Key></Object>\n</Delete>\n<!-- end -->\n",
			[]string{"s3:DeleteObject a & b"}},
		{"a version", `<Delete><Object><VersionId>v1</VersionId><Key>a</Key></Object><Object><Key>b</Key></Object></Delete>`,
			[]string{"s3:DeleteObjectVersion a", "s3:DeleteObject b"}},
		{"conditional delete fields", `<Delete><Object><Key>a</Key><ETag>"e"</ETag><LastModifiedTime>2026-01-01T00:00:00Z</LastModifiedTime><Size>3</Size></Object></Delete>`,
			[]string{"s3:DeleteObject a"}},
		{"CDATA", `<Delete><Object><Key>se<![CDATA[cr]]>et</Key></Object></Delete>`, []string{"s3:DeleteObject secret"}},
		{"dot segments", `<Delete><Object><Key>p/../s</Key></Object></Delete>`, []string{"s3:DeleteObject p/../s", "s3:DeleteObject s"}},
		{"two keys in an object", `<Delete><Object><Key>s</Key><Key>a</Key></Object></Delete>`, nil},
		{"two roots", `<Delete><Object><Key>a</Key></Object></Delete><Delete><Object><Key>s</Key></Object></Delete>`, nil},
		{"text after the root", `<Delete><Object><Key>a</Key></Object></Delete>junk`, nil},
		{"another namespace", `<Delete><Object><x:Key xmlns:x="urn:x">s</x:Key><Key>a</Key></Object></Delete>`, nil},
		{"an undeclared prefix", `<Delete><Object><x:Key>s</x:Key></Object></Delete>`, nil},
		{"a DOCTYPE", `<!DOCTYPE d [<!ENTITY e "s">]><Delete><Object><Key>&e;</Key></Object></Delete>`, nil},
		{"an unknown element", `<Delete><Object><Key>a</Key><Extra/></Object></Delete>`, nil},
		{"a nested element in Key", `<Delete><Object><Key>a<b>s</b></Key></Object></Delete>`, nil},
		{"an object without a key", `<Delete><Object><VersionId>v</VersionId></Object></Delete>`, nil},
		{"text between objects", `<Delete>s<Object><Key>a</Key></Object></Delete>`, nil},
		{"another root", `<Remove><Object><Key>a</Key></Object></Remove>`, nil},
		{"no objects", `<Delete><Quiet>true</Quiet></Delete>`, nil},
		{"unclosed", `<Delete><Object><Key>a</Key></Object>`, nil},
		{"1001 keys", "<Delete>" + strings.Repeat("<Object><Key>a</Key></Object>", 1001) + "</Delete>", nil},
	} {
		r := httptest.NewRequest(http.MethodPost, "/bucket?delete", strings.NewReader(c.body))
		clientSign(t, r, sha256Hex([]byte(c.body)))
		before := len(up.requests())
		w := serve(p, r)
		var asked []string
		for _, q := range a.take() {
			asked = append(asked, q.Action+" "+q.Key)
		}
		if c.asked == nil {
			assert.Equal(t, 400, w.Code, c.name)
			assert.Equal(t, "MalformedXML", s3Code(w.Body.String()), c.name)
			assert.Len(t, up.requests(), before, c.name)
			continue
		}
		assert.Equal(t, 200, w.Code, "%s: %s", c.name, w.Body.String())
		assert.Equal(t, c.asked, asked, c.name)
		if assert.Len(t, up.requests(), before+1, c.name) {
			assert.Equal(t, c.body, string(up.requests()[before].Body), "%s: the body goes upstream as sent", c.name)
		}
	}
}
