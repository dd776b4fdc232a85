package proxy_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// trapKeys are object keys that broke other signing proxies. Each must reach
// the upstream exactly as the client named it.
var trapKeys = []string{
	"plain.txt", "a b", "a+b", "100%", "100%25", "k=v", "user@host", "c:d", "~tilde", "star*",
	"semi;colon", "caf\u00e9", "cafe\u0301", "dir//double", "./dot", "../dotdot", "a/../../b",
	"trailing/", "/leading", strings.Repeat("k", 1000), "sp ace/and+plus/=eq", "quote'\"",
	"hash#frag", "question?mark", "ampersand&", "brackets[]{}", "comma,", "dollar$", "excl!",
	"unicode-日本語/ключ", "%2F", "tab\there", "ctrl\x01", "..", ".",
}

// s3Escape encodes a key the way AWS SDKs put it in a path-style URL.
func s3Escape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex2(c)))
		}
	}
	return b.String()
}

func hex2(c byte) string {
	const h = "0123456789abcdef"
	return string([]byte{h[c>>4], h[c&15]})
}

func TestAwkwardKeysReachUpstreamExactly(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	for _, key := range trapKeys {
		t.Run(url.PathEscape(key), func(t *testing.T) {
			body := "content of " + key
			r := httptest.NewRequest(http.MethodPut, "/bucket/"+s3Escape(key), strings.NewReader(body))
			clientSign(t, r, sha256Hex([]byte(body)))
			w := serve(p, r)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())

			got := up.last(t)
			assert.True(t, got.SigOK, got.SigErr)
			assert.Equal(t, "bucket."+upstreamHost+":"+strconv.Itoa(up.port()), got.Host)
			assert.Equal(t, "/"+s3Escape(key), got.RequestURI, "the upstream path names the key exactly")
			decoded, err := url.PathUnescape(got.RequestURI[1:])
			require.NoError(t, err)
			assert.Equal(t, key, decoded)
			assert.Equal(t, body, string(got.Body))
		})
	}
}

// A client may encode a key differently from the SDKs (raw '+', '=', '@', ':'
// or lowercase hex): the upstream still gets the one canonical encoding.
func TestClientEncodingsCanonicalized(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	cases := []struct{ sent, upstream string }{
		{"/bucket/a+b=c@d:e", "/a%2Bb%3Dc%40d%3Ae"},
		{"/bucket/a%2bb", "/a%2Bb"},
		{"/bucket/x%2Fy", "/x/y"},
		{"/bucket/%C3%A9", "/%C3%A9"},
		{"/bucket/%7Etilde", "/~tilde"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.sent, nil)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		require.Equal(t, http.StatusOK, w.Code, "%s: %s", c.sent, w.Body.String())
		got := up.last(t)
		assert.Equal(t, c.upstream, got.RequestURI, c.sent)
		assert.True(t, got.SigOK, got.SigErr)
	}
}

func TestPathStyleUpstream(t *testing.T) {
	up := newFakeUpstream(t)
	ep := up.endpoint()
	ep.PathStyle = true
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: ep, Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithTransport(up.transport()),
		proxy.WithClock(func() time.Time { return fixedNow }),
	)
	require.NoError(t, err)
	defer p.Close()
	for _, c := range []struct{ path, want string }{
		{"/bucket/a%20b", "/bucket/a%20b"},
		{"/bucket", "/bucket"},
		{"/bucket/", "/bucket"},
		{"/bucket/dir//x", "/bucket/dir//x"},
		{"/bucket/./dot", "/bucket/./dot"},
		{"/bucket/a/../b/..", "/bucket/a/../b/.."},
		{"/bucket/..x/.y", "/bucket/..x/.y"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path+"?list-type=2&prefix=a%20b", nil)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		got := up.last(t)
		assert.Equal(t, upstreamHost+":"+strconv.Itoa(up.port()), got.Host)
		assert.Equal(t, c.want+"?list-type=2&prefix=a%20b", got.RequestURI)
		assert.True(t, got.SigOK, got.SigErr)
	}
}

// On a path-style upstream a key whose dot segments climb out of the bucket is
// refused: an upstream resolving them would serve another bucket.
func TestPathStyleDotSegmentsNeverLeaveBucket(t *testing.T) {
	up := newFakeUpstream(t)
	ep := up.endpoint()
	ep.PathStyle = true
	p := newProxy(t, up, proxy.WithBuckets(proxy.Bucket{Name: "pathstyle", Endpoint: ep,
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}))
	for _, path := range []string{"/pathstyle/../other/secret", "/pathstyle/a/../../other", "/pathstyle/..", "/pathstyle/a//../../x"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, http.StatusBadRequest, w.Code, path)
		assert.Equal(t, "InvalidURI", s3Code(w.Body.String()), path)
	}
	assert.Empty(t, up.requests())

	// A copy source may not climb out of its bucket either.
	r := httptest.NewRequest(http.MethodPut, "/bucket/copy", nil)
	r.Header.Set("X-Amz-Copy-Source", "/bucket/../forbidden/k")
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	assert.Equal(t, "InvalidArgument", s3Code(w.Body.String()))
	assert.Empty(t, up.requests())
}

func TestInvalidBucketNamesRefusedBeforeHooks(t *testing.T) {
	var calls atomic.Int32
	hook := func(ctx context.Context, b string) (proxy.Endpoint, error) {
		calls.Add(1)
		return proxy.Endpoint{Host: "h"}, nil
	}
	creds := func(ctx context.Context, b string) (proxy.Credentials, error) {
		calls.Add(1)
		return proxy.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
	}
	authz := func(ctx context.Context, token, bucket string) (bool, error) { calls.Add(1); return true, nil }
	p, err := proxy.New(proxy.WithEndpoint(hook), proxy.WithCredentials(creds), proxy.WithAuthorizer(authz))
	require.NoError(t, err)
	defer p.Close()
	for _, path := range []string{
		"/ab/k", "/" + strings.Repeat("a", 64) + "/k", "/Upper/k", "/under_score/k", "/-lead/k", "/trail-/k",
		"/dou..ble/k", "/192.168.0.1/k", "/evil.com%2F..%2Fother/k", "/a%2Fb/k", "/x%00y/k",
		"/.bucket/k", "/bucket./k", "/a.-b/k", "/a-.b/k", "//k",
	} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=tok/20261128/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
		w := serve(p, r)
		assert.Equal(t, http.StatusBadRequest, w.Code, path)
		assert.Equal(t, "InvalidBucketName", s3Code(w.Body.String()), path)
	}
	assert.Zero(t, calls.Load(), "no hook may run for an invalid bucket name")
}

func TestErrorsAreS3XML(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	r := httptest.NewRequest(http.MethodGet, "/nosuchbucket/key", nil)
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	require.Equal(t, http.StatusNotFound, w.Code)
	assert.Equal(t, "application/xml", w.Header().Get("Content-Type"))
	id := w.Header().Get("X-Amz-Request-Id")
	require.NotEmpty(t, id)
	var e struct {
		XMLName    xml.Name `xml:"Error"`
		Code       string
		Message    string
		Resource   string
		RequestID  string `xml:"RequestId"`
		BucketName string
	}
	require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
	assert.Equal(t, "NoSuchBucket", e.Code)
	assert.NotEmpty(t, e.Message)
	assert.Equal(t, "/nosuchbucket/key", e.Resource)
	assert.Equal(t, id, e.RequestID)
	assert.Equal(t, "nosuchbucket", e.BucketName, "S3 names the missing bucket")
	assert.Empty(t, up.requests())
	getLength := w.Header().Get("Content-Length")
	require.Equal(t, strconv.Itoa(w.Body.Len()), getLength)

	// HEAD: same status and headers, the same Content-Length, no body.
	r = httptest.NewRequest(http.MethodHead, "/nosuchbucket/key", nil)
	clientSign(t, r, sha256Hex(nil))
	w = serve(p, r)
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Empty(t, w.Body.String())
	assert.NotEmpty(t, w.Header().Get("X-Amz-Request-Id"))
	assert.Equal(t, getLength, w.Header().Get("Content-Length"), "HEAD has GET's headers")

	// A copy from a bucket that does not exist names the source bucket.
	r = httptest.NewRequest(http.MethodPut, "/bucket/dst", nil)
	r.Header.Set("X-Amz-Copy-Source", "/nosuchsource/k")
	clientSign(t, r, sha256Hex(nil))
	w = serve(p, r)
	require.Equal(t, http.StatusNotFound, w.Code, w.Body.String())
	require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
	assert.Equal(t, "nosuchsource", e.BucketName)
	assert.Empty(t, up.requests())
}

func TestUpstreamErrorsPassThroughUnchanged(t *testing.T) {
	up := newFakeUpstream(t)
	const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>nope</Message><RequestId>UP1</RequestId></Error>`
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "UP1")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, body)
	}
	p := newProxy(t, up)
	r := httptest.NewRequest(http.MethodGet, "/bucket/missing", nil)
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Equal(t, body, w.Body.String())
	assert.Equal(t, []string{"UP1"}, w.Header().Values("X-Amz-Request-Id"))
}

func TestForwardedHeaders(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	r := httptest.NewRequest(http.MethodPut, "/bucket/k?tagging=&versionId=3", strings.NewReader("x"))
	pass := map[string]string{
		"Content-Type": "text/plain", "Content-Md5": "LYH0Gm9T9bVC1+pdGzuRQw==", "Cache-Control": "no-cache",
		"Content-Disposition": "attachment", "Content-Language": "de", "If-Match": `"abc"`,
		"X-Amz-Meta-Color": "blue", "X-Amz-Acl": "private", "X-Amz-Tagging": "a=b", "X-Amz-Storage-Class": "STANDARD",
		"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Metadata-Directive": "REPLACE",
	}
	for k, v := range pass {
		r.Header.Set(k, v)
	}
	dropped := map[string]string{"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Te": "gzip", "X-Forwarded-For": "1.2.3.4", "Cookie": "s=1", "Proxy-Authorization": "Basic x"}
	for k, v := range dropped {
		r.Header.Set(k, v)
	}
	clientSign(t, r, sha256Hex([]byte("x")))
	clientAuth := r.Header.Get("Authorization")
	w := serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got := up.last(t)
	assert.True(t, got.SigOK, got.SigErr)
	for k, v := range pass {
		assert.Equal(t, v, got.Header.Get(k), k)
	}
	for k := range dropped {
		assert.Empty(t, got.Header.Get(k), k)
	}
	assert.NotEqual(t, clientAuth, got.Header.Get("Authorization"))
	assert.Equal(t, "/k?tagging=&versionId=3", got.RequestURI)
	assert.Equal(t, []string{"UPSTREAM-ID"}, w.Header().Values("X-Amz-Request-Id"))
}

func TestPresignParamsNotForwarded(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	u := presign(t, http.MethodGet, "http://proxy.test/bucket/k?response-content-type=text%2Fplain", fixedNow, time.Hour)
	r := httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
	r.Host = "proxy.test"
	w := serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got := up.last(t)
	assert.Equal(t, "/k?response-content-type=text%2Fplain", got.RequestURI)
	assert.True(t, got.SigOK, got.SigErr)
	assert.Empty(t, got.Header.Get("X-Amz-Signature"))
}

func TestTokenModeAuthorizerGetsAccessKeyID(t *testing.T) {
	up := newFakeUpstream(t)
	var gotToken, gotBucket atomic.Value
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) {
			gotToken.Store(token)
			gotBucket.Store(bucket)
			return token == "good-token", nil
		}),
		proxy.WithTransport(up.transport()),
	)
	require.NoError(t, err)
	defer p.Close()

	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), time.Now(), "good-token", "whatever")
	w := serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "good-token", gotToken.Load())
	assert.Equal(t, "bucket", gotBucket.Load())
	assert.True(t, up.last(t).SigOK)

	r = httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), time.Now(), "bad-token", "whatever")
	w = serve(p, r)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Equal(t, "AccessDenied", s3Code(w.Body.String()))

	r = httptest.NewRequest(http.MethodGet, "/bucket/k", nil) // anonymous
	w = serve(p, r)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Len(t, up.requests(), 1)
}

func TestListBucketsFromStaticBuckets(t *testing.T) {
	up := newFakeUpstream(t)
	b := func(n string) proxy.Bucket {
		return proxy.Bucket{Name: n, Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}
	}
	p, err := proxy.New(
		proxy.WithBuckets(b("alpha"), b("beta"), b("gamma")),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) { return bucket != "beta", nil }),
		proxy.WithClock(func() time.Time { return fixedNow }),
		proxy.WithTransport(up.transport()),
	)
	require.NoError(t, err)
	defer p.Close()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var res struct {
		Buckets []struct {
			Name         string
			CreationDate time.Time
		} `xml:"Buckets>Bucket"`
	}
	require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &res))
	require.Len(t, res.Buckets, 2)
	assert.Equal(t, "alpha", res.Buckets[0].Name)
	assert.Equal(t, "gamma", res.Buckets[1].Name)
	assert.Empty(t, up.requests())
}

func TestCopySourceMustShareEndpointAndCredentials(t *testing.T) {
	up := newFakeUpstream(t)
	creds := proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}
	other := up.endpoint()
	other.Region = "us-south"
	p, err := proxy.New(
		proxy.WithBuckets(
			proxy.Bucket{Name: "dst", Endpoint: up.endpoint(), Credentials: creds},
			proxy.Bucket{Name: "same", Endpoint: up.endpoint(), Credentials: creds},
			proxy.Bucket{Name: "elsewhere", Endpoint: other, Credentials: creds},
			proxy.Bucket{Name: "forbidden", Endpoint: up.endpoint(), Credentials: creds},
		),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) { return bucket != "forbidden", nil }),
		proxy.WithClock(func() time.Time { return fixedNow }),
		proxy.WithTransport(up.transport()),
	)
	require.NoError(t, err)
	defer p.Close()
	for _, c := range []struct {
		src    string
		status int
		code   string
	}{
		{"/same/a%20b", 200, ""},
		{"same/k?versionId=1", 200, ""},
		{"/dst/k", 200, ""},
		{"/elsewhere/k", 400, "InvalidRequest"},
		{"/forbidden/k", 403, "AccessDenied"},
		{"/unknown/k", 404, "NoSuchBucket"},
		{"/BAD/k", 400, "InvalidBucketName"},
		{"nokey", 400, "InvalidArgument"},
	} {
		before := len(up.requests())
		r := httptest.NewRequest(http.MethodPut, "/dst/copy", nil)
		r.Header.Set("X-Amz-Copy-Source", c.src)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, c.status, w.Code, c.src)
		if c.code != "" {
			assert.Equal(t, c.code, s3Code(w.Body.String()), c.src)
			assert.Len(t, up.requests(), before, "nothing forwarded for %s", c.src)
		} else {
			assert.Equal(t, c.src, up.last(t).Header.Get("X-Amz-Copy-Source"))
		}
	}
}

func TestHookErrors(t *testing.T) {
	up := newFakeUpstream(t)
	var mode atomic.Value
	mode.Store("ok")
	ep := func(ctx context.Context, b string) (proxy.Endpoint, error) {
		switch mode.Load() {
		case "missing":
			return proxy.Endpoint{}, fmt.Errorf("lookup %s: %w", b, proxy.ErrNoSuchBucket)
		case "down":
			return proxy.Endpoint{}, errors.New("database down")
		case "panic":
			panic("hook bug")
		case "denied":
			return proxy.Endpoint{}, proxy.ErrAccessDenied
		}
		return up.endpoint(), nil
	}
	cr := func(ctx context.Context, b string) (proxy.Credentials, error) {
		return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
	}
	for _, c := range []struct {
		mode   string
		status int
		code   string
	}{
		{"missing", 404, "NoSuchBucket"},
		{"down", 503, "ServiceUnavailable"},
		{"panic", 500, "InternalError"},
		{"denied", 403, "AccessDenied"},
		{"ok", 200, ""},
	} {
		mode.Store(c.mode)
		p, err := proxy.New(proxy.WithEndpoint(ep), proxy.WithCredentials(cr),
			proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
			proxy.WithClock(func() time.Time { return fixedNow }), proxy.WithTransport(up.transport()))
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodGet, "/somebucket/k", nil)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, c.status, w.Code, c.mode)
		if c.code != "" {
			assert.Equal(t, c.code, s3Code(w.Body.String()), c.mode)
			assert.NotContains(t, w.Body.String(), "database down", "internal causes stay internal")
		}
		_ = p.Close()
	}
}

func TestNewValidates(t *testing.T) {
	ok := proxy.Bucket{Name: "bucket", Endpoint: proxy.Endpoint{Host: "s3.example.com"}, Credentials: proxy.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}}
	keys := proxy.WithClientKeys(map[string]string{"k": "s"})
	hook := proxy.WithEndpoint(func(ctx context.Context, b string) (proxy.Endpoint, error) { return proxy.Endpoint{}, nil })
	chook := proxy.WithCredentials(func(ctx context.Context, b string) (proxy.Credentials, error) { return proxy.Credentials{}, nil })
	bad := func(mod func(*proxy.Bucket)) proxy.Option {
		b := ok
		mod(&b)
		return proxy.WithBuckets(b)
	}
	for name, opts := range map[string][]proxy.Option{
		"nothing routes":         {keys},
		"open proxy":             {proxy.WithBuckets(ok)},
		"endpoint without creds": {hook, keys},
		"creds without endpoint": {chook, keys},
		"bad bucket name":        {bad(func(b *proxy.Bucket) { b.Name = "Bad_Name" }), keys},
		"no host":                {bad(func(b *proxy.Bucket) { b.Endpoint.Host = "" }), keys},
		"bad scheme":             {bad(func(b *proxy.Bucket) { b.Endpoint.Scheme = "ftp" }), keys},
		"bad port":               {bad(func(b *proxy.Bucket) { b.Endpoint.Port = 70000 }), keys},
		"no credentials":         {bad(func(b *proxy.Bucket) { b.Credentials = proxy.Credentials{} }), keys},
		"half hmac":              {bad(func(b *proxy.Bucket) { b.Credentials.SecretAccessKey = "" }), keys},
		"hmac and api key":       {bad(func(b *proxy.Bucket) { b.Credentials.APIKey = "x" }), keys},
		"duplicate bucket":       {proxy.WithBuckets(ok, ok), keys},
		"zero ttl":               {proxy.WithBuckets(ok), keys, proxy.WithAuthCacheTTL(0)},
		"bad iam url":            {proxy.WithBuckets(ok), keys, proxy.WithIAMEndpoint("ftp://x")},
		"bad prefix":             {proxy.WithBuckets(ok), keys, proxy.WithPathPrefix("s3")},
	} {
		p, err := proxy.New(opts...)
		assert.Error(t, err, name)
		assert.Nil(t, p, name)
	}
	for name, opts := range map[string][]proxy.Option{
		"static + keys":        {proxy.WithBuckets(ok), keys},
		"hooks + authorizer":   {hook, chook, proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil })},
		"api key bucket":       {proxy.WithBuckets(proxy.Bucket{Name: "ibm-bucket", Endpoint: ok.Endpoint, Credentials: proxy.Credentials{APIKey: "k", ServiceInstanceID: "crn:x"}}), keys},
		"every option at once": {proxy.WithBuckets(ok), keys, proxy.WithAuthCacheTTL(time.Minute), proxy.WithIAMEndpoint("https://iam.test/identity/token"), proxy.WithLogger(nil), proxy.WithVirtualHostDomains("s3.example.com"), proxy.WithPathPrefix("/s3/")},
	} {
		p, err := proxy.New(opts...)
		require.NoError(t, err, name)
		require.NoError(t, p.Close())
		require.NoError(t, p.Close(), "Close twice")
	}
}

func TestVirtualHostedClientRequests(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithVirtualHostDomains("s3.proxy.test"))
	r := httptest.NewRequest(http.MethodGet, "/dir/a%20b", nil)
	r.Host = "bucket.s3.proxy.test:8080"
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "/dir/a%20b", up.last(t).RequestURI)

	// Path style on the bare domain still works.
	r = httptest.NewRequest(http.MethodGet, "/bucket/x", nil)
	r.Host = "s3.proxy.test"
	clientSign(t, r, sha256Hex(nil))
	w = serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "/x", up.last(t).RequestURI)

	// A host that is not a valid bucket is refused.
	r = httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Host = "Bad_Bucket.s3.proxy.test"
	clientSign(t, r, sha256Hex(nil))
	assert.Equal(t, "InvalidBucketName", s3Code(serve(p, r).Body.String()))
}

func TestMountedUnderPrefix(t *testing.T) {
	up := newFakeUpstream(t)
	stripped := newProxy(t, up)
	prefixed := newProxy(t, up, proxy.WithPathPrefix("/raw"))
	mux := http.NewServeMux()
	mux.Handle("/s3/", http.StripPrefix("/s3", stripped))
	mux.Handle("/raw/", prefixed) // a router sub-path that is not stripped
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fine") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, base := range []string{"/s3", "/raw"} {
		r, err := http.NewRequest(http.MethodPut, srv.URL+base+"/bucket/a%20b%2Bc", strings.NewReader("hello"))
		require.NoError(t, err)
		clientSign(t, r, sha256Hex([]byte("hello")))
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", base, b)
		got := up.last(t)
		assert.Equal(t, "/a%20b%2Bc", got.RequestURI, base)
		assert.Equal(t, "hello", string(got.Body))
	}
	resp, err := http.Get(srv.URL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// Every hook goes through one guard: a panic is answered 500 InternalError, a
// hook that outlives WithHookTimeout sees its context end and is answered 503
// ServiceUnavailable; either way nothing is forwarded. The secrets hook is
// called uncached, on every request, and is guarded like the cached ones.
func TestEveryHookIsGuarded(t *testing.T) {
	const timeout = 50 * time.Millisecond
	for _, hook := range []string{"secrets", "authorizer", "endpoint", "credentials"} {
		for _, mode := range []string{"panic", "block"} {
			t.Run(hook+"/"+mode, func(t *testing.T) {
				up := newFakeUpstream(t)
				var sawDeadline atomic.Bool
				misbehave := func(ctx context.Context, name string) {
					if name != hook {
						return
					}
					if mode == "panic" {
						panic(hook + " bug")
					}
					if d, ok := ctx.Deadline(); ok && time.Until(d) <= timeout {
						sawDeadline.Store(true)
					}
					<-ctx.Done()
				}
				p, err := proxy.New(
					proxy.WithClientSecrets(func(ctx context.Context, id string) (string, error) {
						misbehave(ctx, "secrets")
						return unitSecret, nil
					}),
					proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) {
						misbehave(ctx, "authorizer")
						return true, nil
					}),
					proxy.WithEndpoint(func(ctx context.Context, b string) (proxy.Endpoint, error) {
						misbehave(ctx, "endpoint")
						return up.endpoint(), nil
					}),
					proxy.WithCredentials(func(ctx context.Context, b string) (proxy.Credentials, error) {
						misbehave(ctx, "credentials")
						if err := ctx.Err(); err != nil {
							return proxy.Credentials{}, err
						}
						return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
					}),
					proxy.WithHookTimeout(timeout),
					proxy.WithTransport(up.transport()),
				)
				require.NoError(t, err)
				defer p.Close()
				srv := httptest.NewServer(p) // a real server: a panic must not drop the connection
				defer srv.Close()
				r, err := http.NewRequest(http.MethodGet, srv.URL+"/somebucket/k", nil)
				require.NoError(t, err)
				clientSignAt(t, r, sha256Hex(nil), time.Now(), unitKey, unitSecret)
				resp, err := srv.Client().Do(r)
				require.NoError(t, err, "the client gets an answer")
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want, code := http.StatusInternalServerError, "InternalError"
				if mode == "block" {
					want, code = http.StatusServiceUnavailable, "ServiceUnavailable"
					assert.True(t, sawDeadline.Load(), "the hook's context carries the hook timeout")
				}
				assert.Equal(t, want, resp.StatusCode, string(body))
				assert.Equal(t, code, s3Code(string(body)))
				assert.Empty(t, up.requests(), "nothing forwarded")
				srv.Client().CloseIdleConnections()
			})
		}
	}
}

// The upstream's Locations name the proxy as the client addressed it: the
// CompleteMultipartUpload <Location>, streamed, and the Location header.
func TestLocationsNameTheProxy(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		self := "http://" + r.Host
		if r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "  \n")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Location>`+self+`/dir%2Fk</Location><Bucket>bucket</Bucket><Key>dir/k</Key></CompleteMultipartUploadResult>`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "%") { // a key with a '%', left unescaped as s3rver does
			w.Header().Set("Location", self+"/100%")
		} else {
			w.Header().Set("Location", self+"/dir/k?versionId=1")
		}
		w.WriteHeader(http.StatusMovedPermanently)
	}
	p := newProxy(t, up)
	for _, c := range []struct {
		name  string
		h     http.Handler
		mount string
	}{
		{"root", p, ""},
		{"under StripPrefix", http.StripPrefix("/s3", p), "/s3"},
	} {
		post := httptest.NewRequest(http.MethodPost, c.mount+"/bucket/dir/k?uploadId=1", strings.NewReader("<CompleteMultipartUpload/>"))
		post.Host = "proxy.example"
		clientSign(t, post, sha256Hex([]byte("<CompleteMultipartUpload/>")))
		w := serve(c.h, post)
		require.Equal(t, 200, w.Code, w.Body.String())
		assert.Contains(t, w.Body.String(), "<Location>http://proxy.example"+c.mount+"/bucket/dir%2Fk</Location>", c.name)
		assert.NotContains(t, w.Body.String(), upstreamHost, c.name)
		assert.True(t, strings.HasPrefix(w.Body.String(), "  \n<?xml"), "the keep-alive whitespace passes first")

		get := httptest.NewRequest(http.MethodGet, c.mount+"/bucket/dir/k", nil)
		get.Host = "proxy.example"
		clientSign(t, get, sha256Hex(nil))
		w = serve(c.h, get)
		assert.Equal(t, http.StatusMovedPermanently, w.Code)
		assert.Equal(t, "http://proxy.example"+c.mount+"/bucket/dir/k?versionId=1", w.Header().Get("Location"), c.name)

		get = httptest.NewRequest(http.MethodGet, c.mount+"/bucket/100%25", nil)
		get.Host = "proxy.example"
		clientSign(t, get, sha256Hex(nil))
		w = serve(c.h, get)
		assert.Equal(t, "http://proxy.example"+c.mount+"/bucket/100%25", w.Header().Get("Location"), c.name+": a stray '%' escaped")
	}
}

// ListBuckets merges the static buckets and the WithBucketList hook's, keeps
// those the authorizer allows, and pages as S3 does.
func TestListBucketsHookAndPaging(t *testing.T) {
	up := newFakeUpstream(t)
	var fail atomic.Bool
	p := newProxy(t, up,
		proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return up.endpoint(), nil }),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
			return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
		}),
		proxy.WithBucketList(func(_ context.Context, token string) ([]proxy.ListedBucket, error) {
			if fail.Load() {
				return nil, errors.New("directory down")
			}
			return []proxy.ListedBucket{
				{Name: "beta-1", Region: "eu-de"}, {Name: "alpha-2", Region: "us-south"}, {Name: "alpha-1", Region: "eu-de"},
				{Name: "denied-1"}, {Name: "Not_A_Bucket"}, {Name: "bucket", Region: "listed twice"},
				{Name: "alpha-3", CreationDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
			}, nil
		}),
		proxy.WithAuthorizer(func(_ context.Context, token, bucket string) (bool, error) { return bucket != "denied-1", nil }),
	)
	type result struct {
		Buckets []struct {
			Name, CreationDate, BucketRegion string
		} `xml:"Buckets>Bucket"`
		ContinuationToken, Prefix string
	}
	list := func(query string) (result, *httptest.ResponseRecorder) {
		r := httptest.NewRequest(http.MethodGet, "/"+query, nil)
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		var res result
		if w.Code == 200 {
			require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &res))
		}
		return res, w
	}
	names := func(res result) (n []string) {
		for _, b := range res.Buckets {
			n = append(n, b.Name)
		}
		return n
	}
	res, _ := list("")
	assert.Equal(t, []string{"alpha-1", "alpha-2", "alpha-3", "beta-1", "bucket"}, names(res), "sorted, denied and invalid names left out, static once")
	assert.Empty(t, res.ContinuationToken)
	assert.Equal(t, "2020-01-02T03:04:05.000Z", res.Buckets[2].CreationDate)
	assert.Equal(t, "eu-de", res.Buckets[3].BucketRegion)

	res, _ = list("?prefix=alpha&max-buckets=2")
	assert.Equal(t, []string{"alpha-1", "alpha-2"}, names(res))
	assert.Equal(t, "alpha", res.Prefix)
	require.NotEmpty(t, res.ContinuationToken)
	res, _ = list("?prefix=alpha&max-buckets=2&continuation-token=" + res.ContinuationToken)
	assert.Equal(t, []string{"alpha-3"}, names(res))
	assert.Empty(t, res.ContinuationToken)

	res, _ = list("?bucket-region=eu-de")
	assert.Equal(t, []string{"alpha-1", "beta-1", "bucket"}, names(res), "the static bucket's endpoint is in eu-de")

	for _, bad := range []string{"?max-buckets=0", "?max-buckets=10001", "?max-buckets=x", "?continuation-token=%21%21"} {
		_, w := list(bad)
		assert.Equal(t, 400, w.Code, bad)
		assert.Equal(t, "InvalidArgument", s3Code(w.Body.String()), bad)
	}
	fail.Store(true)
	_, w := list("")
	assert.Equal(t, 503, w.Code)
	assert.Empty(t, up.requests(), "ListBuckets is the proxy's own answer")
}

// Anonymous requests (no signature at all) reach only the buckets that take
// them, WITHOUT the bucket's credentials: the upstream decides.
func TestAnonymousRequests(t *testing.T) {
	up := newFakeUpstream(t)
	static := func(name string, anonymous bool) proxy.Bucket {
		return proxy.Bucket{Name: name, Endpoint: up.endpoint(), Anonymous: anonymous,
			Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret, SessionToken: "upstream-session"}}
	}
	var hookCalls atomic.Int32
	p, err := proxy.New(
		proxy.WithBuckets(static("public", true), static("private", false)),
		proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return up.endpoint(), nil }),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
			return proxy.Credentials{APIKey: "never-used"}, nil
		}),
		proxy.WithAnonymous(func(_ context.Context, bucket string) (bool, error) {
			hookCalls.Add(1)
			return bucket == "open-hooked", nil
		}),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithTransport(up.transport()),
		proxy.WithClock(func() time.Time { return fixedNow }),
	)
	require.NoError(t, err)
	defer p.Close()
	anon := func(method, target string, h http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		maps.Copy(r.Header, h)
		return serve(p, r)
	}
	for _, target := range []string{"/public/k", "/open-hooked/k", "/open-hooked/k"} {
		w := anon(http.MethodGet, target, nil)
		require.Equal(t, 200, w.Code, target+": "+w.Body.String())
		got := up.last(t)
		assert.Empty(t, got.Header.Get("Authorization"), "no credentials go upstream")
		assert.Empty(t, got.Header.Get("X-Amz-Security-Token"))
		assert.Empty(t, got.Header.Get("X-Amz-Content-Sha256"), "none sent, none added")
	}
	assert.Equal(t, int32(1), hookCalls.Load(), "the hook's answer is cached")
	forwarded := len(up.requests())
	for _, c := range []struct {
		name, method, target string
		h                    http.Header
		status               int
		message              string
	}{
		{"private static bucket", http.MethodGet, "/private/k", nil, 403, "Anonymous users cannot invoke this API. Please authenticate."},
		{"hook says no", http.MethodGet, "/closed-hooked/k", nil, 403, "Anonymous users cannot invoke this API. Please authenticate."},
		{"ListBuckets", http.MethodGet, "/", nil, 403, "Anonymous users cannot invoke this API. Please authenticate."},
		{"copy", http.MethodPut, "/public/k", http.Header{"X-Amz-Copy-Source": {"public/other"}}, 403, "Anonymous users cannot copy objects. Please authenticate."},
		{"signed chunks without a signature", http.MethodPut, "/public/k", http.Header{"X-Amz-Content-Sha256": {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}}, 400, "Anonymous requests don't support this x-amz-content-sha256 value."},
	} {
		w := anon(c.method, c.target, c.h)
		assert.Equal(t, c.status, w.Code, c.name)
		assert.Contains(t, w.Body.String(), xmlEscape(c.message), c.name)
	}
	assert.Len(t, up.requests(), forwarded, "nothing forwarded")

	// A signed request to the public bucket is signed for the upstream as ever.
	r := httptest.NewRequest(http.MethodGet, "/public/k", nil)
	clientSign(t, r, sha256Hex(nil))
	require.Equal(t, 200, serve(p, r).Code)
	assert.True(t, up.last(t).SigOK)
}
