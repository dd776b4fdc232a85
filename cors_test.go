package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

func preflightRequest(target, origin, method, headers string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, target, nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if method != "" {
		r.Header.Set("Access-Control-Request-Method", method)
	}
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return r
}

// A proxy-level CORS policy answers preflights for routed buckets, without
// the upstream, and puts its headers on every cross-origin answer, the
// proxy's own errors included.
func TestCORSPolicy(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://upstream-says.example")
		_, _ = w.Write([]byte("ok"))
	}
	p := newProxy(t, up, proxy.WithCORS(
		proxy.CORSRule{AllowedOrigins: []string{"https://app.example"}, AllowedMethods: []string{"GET", "PUT"},
			AllowedHeaders: []string{"content-type", "x-amz-*"}, ExposeHeaders: []string{"ETag", "x-amz-request-id"}, MaxAgeSeconds: 600},
		proxy.CORSRule{AllowedOrigins: []string{"https://*.tenant.example"}, AllowedMethods: []string{"GET"}},
	))
	w := serve(p, preflightRequest("/bucket/k", "https://app.example", "PUT", "Content-Type, X-Amz-Meta-Owner"))
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "https://app.example", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "GET, PUT", w.Header().Get("Access-Control-Allow-Methods"))
	assert.Equal(t, "content-type, x-amz-meta-owner", w.Header().Get("Access-Control-Allow-Headers"))
	assert.Equal(t, "600", w.Header().Get("Access-Control-Max-Age"))
	w = serve(p, preflightRequest("/bucket/k", "https://a.tenant.example", "GET", ""))
	assert.Equal(t, 200, w.Code, "wildcard origin")

	for _, c := range []struct {
		name   string
		r      *http.Request
		status int
		code   string
	}{
		{"origin not allowed", preflightRequest("/bucket/k", "https://evil.example", "GET", ""), 403, "AccessForbidden"},
		{"method not allowed", preflightRequest("/bucket/k", "https://app.example", "DELETE", ""), 403, "AccessForbidden"},
		{"header not allowed", preflightRequest("/bucket/k", "https://app.example", "PUT", "authorization-x"), 403, "AccessForbidden"},
		{"no Origin", preflightRequest("/bucket/k", "", "GET", ""), 400, "BadRequest"},
		{"not a method", preflightRequest("/bucket/k", "https://app.example", "TRACE", ""), 400, "BadRequest"},
		{"a bucket the proxy does not route", preflightRequest("/elsewhere/k", "https://app.example", "GET", ""), 404, "NoSuchBucket"},
	} {
		w := serve(p, c.r)
		assert.Equal(t, c.status, w.Code, c.name)
		assert.Equal(t, c.code, s3Code(w.Body.String()), c.name)
	}
	assert.Empty(t, up.requests(), "preflights never reach the upstream")

	get := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	get.Header.Set("Origin", "https://app.example")
	clientSign(t, get, sha256Hex(nil))
	w = serve(p, get)
	require.Equal(t, 200, w.Code)
	assert.Equal(t, []string{"https://app.example"}, w.Header().Values("Access-Control-Allow-Origin"), "the proxy's policy, not the upstream's")
	assert.Equal(t, "ETag, x-amz-request-id", w.Header().Get("Access-Control-Expose-Headers"))

	bad := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	bad.Header.Set("Origin", "https://app.example")
	clientSignAt(t, bad, sha256Hex(nil), fixedNow, unitKey, "wrong")
	w = serve(p, bad)
	assert.Equal(t, 403, w.Code)
	assert.Equal(t, "https://app.example", w.Header().Get("Access-Control-Allow-Origin"), "a page can read the proxy's error")

	_, err := proxy.New(proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "k"}}),
		proxy.WithClientKeys(map[string]string{"k": "s"}), proxy.WithCORS(proxy.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PATCH"}}))
	assert.Error(t, err, "a CORS rule with a method S3 does not know")
}

// Without a proxy-level policy, a preflight for a routed bucket is forwarded
// to the upstream without credentials and its answer relayed.
func TestCORSPreflightForwardedWithoutCredentials(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Methods", r.Header.Get("Access-Control-Request-Method"))
	}
	p := newProxy(t, up)
	w := serve(p, preflightRequest("/bucket/k", "https://app.example", "PUT", "content-type"))
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "https://app.example", w.Header().Get("Access-Control-Allow-Origin"))
	got := up.last(t)
	assert.Equal(t, http.MethodOptions, got.Method)
	assert.Empty(t, got.Header.Get("Authorization"), "no credentials on a preflight")
	assert.Equal(t, "https://app.example", got.Header.Get("Origin"))
	assert.Equal(t, "content-type", got.Header.Get("Access-Control-Request-Headers"))
	w = serve(p, preflightRequest("/elsewhere/k", "https://app.example", "GET", ""))
	assert.Equal(t, 404, w.Code, "only routed buckets")
	assert.Len(t, up.requests(), 1)
}

// With WithCORS an answer says Vary: Origin once, whatever the upstream said.
func TestCORSVaryOnce(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin, Accept-Encoding")
		_, _ = io.WriteString(w, "ok")
	}
	p := newProxy(t, up, proxy.WithCORS(proxy.CORSRule{AllowedOrigins: []string{"https://app.example"}, AllowedMethods: []string{"GET"}}))
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSign(t, r, emptyPayloadHash)
	r.Header.Set("Origin", "https://app.example")
	rec := serve(p, r)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, []string{"Origin", "Accept-Encoding"}, rec.Header().Values("Vary"))
	require.Equal(t, "https://app.example", rec.Header().Get("Access-Control-Allow-Origin"))
}
