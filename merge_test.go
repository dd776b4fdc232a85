package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// Wherever the proxy merges the calls of concurrent requests or caches an
// answer, requests that differ in anything the hook is given, or its answer
// depends on, are never answered by one call (issue 19). Each case sends two
// such requests at once to a hook that holds every call until both have
// arrived (meet): a merged call shows as one call, and as one answer for
// both.

// meet holds each call of a hook until n have arrived, or a second has
// passed: requests sent at once then reach the hook at once.
type meet struct {
	mu    sync.Mutex
	n     int
	calls int
	all   chan struct{}
}

func newMeet(n int) *meet { return &meet{n: n, all: make(chan struct{})} }

func (m *meet) arrive() {
	m.mu.Lock()
	m.calls++
	if m.calls == m.n {
		close(m.all)
	}
	m.mu.Unlock()
	select {
	case <-m.all:
	case <-time.After(time.Second):
	}
}

func (m *meet) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// atOnce serves the requests concurrently and returns their statuses in order.
func atOnce(h http.Handler, reqs ...*http.Request) []int {
	codes := make([]int, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { codes[i] = serve(h, r).Code })
	}
	wg.Wait()
	return codes
}

// secondKey is another client's access key id and secret.
const secondKey, secondSecret = "second-client", "second-secret"

// The request authorizer: for every field of AccessRequest, two requests that
// differ in that field alone are asked about separately, and each gets its
// own answer. The table must name every field, so that a field added later
// is tested too.
func TestMergedOnlyWhenEqualRequestAuthorizer(t *testing.T) {
	up := newFakeUpstream(t)
	second := proxy.Bucket{Name: "bucket2", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}
	signedAs := func(key, secret string) func(*http.Request) {
		return func(r *http.Request) { clientSignAt(t, r, sha256Hex(nil), fixedNow, key, secret) }
	}
	sign := signedAs(unitKey, unitSecret)
	presigned := func(r *http.Request) {
		u := presign(t, r.Method, "http://example.com"+r.URL.RequestURI(), fixedNow, time.Hour)
		r.URL, r.RequestURI = u, u.RequestURI()
	}
	withHeader := func(name, value string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(name, value); sign(r) }
	}
	type req struct {
		method, target string
		prep           func(*http.Request)
	}
	cases := []struct {
		field   string
		a, b    req                            // a is allowed, b denied
		held    func(proxy.AccessRequest) bool // the asks held at the meeting
		allowed func(proxy.AccessRequest) bool
	}{
		{"Action", req{"GET", "/bucket/k", sign}, req{"GET", "/bucket/k?tagging", sign},
			nil, func(r proxy.AccessRequest) bool { return r.Action == "s3:GetObject" }},
		{"Method", req{"GET", "/bucket/k", sign}, req{"HEAD", "/bucket/k", sign},
			nil, func(r proxy.AccessRequest) bool { return r.Method == "GET" }},
		{"Bucket", req{"GET", "/bucket/k", sign}, req{"GET", "/bucket2/k", sign},
			nil, func(r proxy.AccessRequest) bool { return r.Bucket == "bucket" }},
		{"Key", req{"GET", "/bucket/a", sign}, req{"GET", "/bucket/b", sign},
			nil, func(r proxy.AccessRequest) bool { return r.Key == "a" }},
		{"SourceBucket", req{"PUT", "/bucket/dst", withHeader("X-Amz-Copy-Source", "/bucket/src")},
			req{"PUT", "/bucket/dst", withHeader("X-Amz-Copy-Source", "/bucket2/src")},
			func(r proxy.AccessRequest) bool { return r.Action == "s3:PutObject" },
			func(r proxy.AccessRequest) bool { return r.Action != "s3:PutObject" || r.SourceBucket == "bucket" }},
		{"SourceKey", req{"PUT", "/bucket/dst", withHeader("X-Amz-Copy-Source", "/bucket/src1")},
			req{"PUT", "/bucket/dst", withHeader("X-Amz-Copy-Source", "/bucket/src2")},
			func(r proxy.AccessRequest) bool { return r.Action == "s3:PutObject" },
			func(r proxy.AccessRequest) bool { return r.Action != "s3:PutObject" || r.SourceKey == "src1" }},
		{"Prefix", req{"GET", "/bucket?prefix=a%2F", sign}, req{"GET", "/bucket?prefix=b%2F", sign},
			nil, func(r proxy.AccessRequest) bool { return r.Prefix == "a/" }},
		{"ClientIP", req{"GET", "/bucket/k", withHeader("X-Forwarded-For", "10.0.0.1")},
			req{"GET", "/bucket/k", withHeader("X-Forwarded-For", "10.0.0.2")},
			nil, func(r proxy.AccessRequest) bool { return r.ClientIP == "10.0.0.1" }},
		{"Presigned", req{"GET", "/bucket/k", sign}, req{"GET", "/bucket/k", presigned},
			nil, func(r proxy.AccessRequest) bool { return !r.Presigned }},
		{"Token", req{"GET", "/bucket/k", sign}, req{"GET", "/bucket/k", signedAs(secondKey, secondSecret)},
			nil, func(r proxy.AccessRequest) bool { return r.Token == unitKey }},
	}
	var covered []string
	for _, c := range cases {
		covered = append(covered, c.field)
	}
	var fields []string
	ty := reflect.TypeFor[proxy.AccessRequest]()
	for i := range ty.NumField() {
		fields = append(fields, ty.Field(i).Name)
	}
	require.ElementsMatch(t, fields, covered, "every field of AccessRequest has a case")

	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			m := newMeet(2)
			held := c.held
			if held == nil {
				held = func(proxy.AccessRequest) bool { return true }
			}
			hook := func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
				if held(r) {
					m.arrive()
				}
				return proxy.Decision{Allow: c.allowed(r)}, nil // ScopeRequest
			}
			p := newProxy(t, up, proxy.WithBuckets(second), proxy.WithRequestAuthorizer(hook),
				proxy.WithClientKeys(map[string]string{unitKey: unitSecret, secondKey: secondSecret}),
				proxy.WithTrustedProxies("192.0.2.0/24"))
			var reqs []*http.Request
			for _, q := range []req{c.a, c.b} {
				r := httptest.NewRequest(q.method, q.target, nil)
				r.RemoteAddr = "192.0.2.9:4444"
				q.prep(r)
				reqs = append(reqs, r)
			}
			codes := atOnce(p, reqs...)
			assert.Equal(t, []int{200, 403}, codes, "each request its own answer")
			assert.Equal(t, 2, m.count(), "one call each")
		})
	}
}

// The token + bucket authorizer: one call per token and bucket.
func TestMergedOnlyWhenEqualAuthorizer(t *testing.T) {
	up := newFakeUpstream(t)
	for _, c := range []struct {
		name         string
		tokenB, path string
	}{
		{"token", "other-token", "/bucket/k"},
		{"bucket", "tok", "/bucket2/k"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMeet(2)
			p := tokenModeProxy(t, up, func(_ context.Context, token, bucket string) (bool, error) {
				m.arrive()
				return token == "tok" && bucket == "bucket", nil
			}, proxy.WithBuckets(proxy.Bucket{Name: "bucket2", Endpoint: up.endpoint(),
				Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}))
			a := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, a, sha256Hex(nil), time.Now(), "tok", "unused")
			b := httptest.NewRequest(http.MethodGet, c.path, nil)
			clientSignAt(t, b, sha256Hex(nil), time.Now(), c.tokenB, "unused")
			assert.Equal(t, []int{200, 403}, atOnce(p, a, b))
			assert.Equal(t, 2, m.count())
		})
	}
}

// hookRouted is a proxy whose buckets come from the endpoint and credentials
// hooks: "bucket-<x>" on the fake upstream, "gone-bucket" unknown.
func hookRouted(t *testing.T, up *fakeUpstream, onEndpoint func(bucket string), opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	return startProxy(t, up, append([]proxy.Option{
		proxy.WithEndpoint(func(_ context.Context, bucket string) (proxy.Endpoint, error) {
			if onEndpoint != nil {
				onEndpoint(bucket)
			}
			if bucket == "gone-bucket" {
				return proxy.Endpoint{}, proxy.ErrNoSuchBucket
			}
			return up.endpoint(), nil
		}),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
			return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
		}),
	}, opts...)...)
}

// The bucket hooks, the anonymous hook and the CORS preflight's bucket
// lookup: one call per bucket.
func TestMergedOnlyWhenEqualBucketHooks(t *testing.T) {
	up := newFakeUpstream(t)
	t.Run("endpoint", func(t *testing.T) {
		m := newMeet(2)
		p := hookRouted(t, up, func(string) { m.arrive() })
		assert.Equal(t, []int{200, 404}, atOnce(p,
			signedRequest(t, "GET", "/bucket-a/k", nil), signedRequest(t, "GET", "/gone-bucket/k", nil)))
		assert.Equal(t, 2, m.count())
	})
	t.Run("anonymous", func(t *testing.T) {
		m := newMeet(2)
		p := hookRouted(t, up, nil, proxy.WithAnonymous(func(_ context.Context, bucket string) (bool, error) {
			m.arrive()
			return bucket == "bucket-open", nil
		}))
		assert.Equal(t, []int{200, 403}, atOnce(p,
			httptest.NewRequest("GET", "/bucket-open/k", nil), httptest.NewRequest("GET", "/bucket-shut/k", nil)))
		assert.Equal(t, 2, m.count())
	})
	t.Run("preflight", func(t *testing.T) {
		m := newMeet(2)
		p := hookRouted(t, up, func(string) { m.arrive() })
		before := len(up.requests())
		assert.Equal(t, []int{200, 404}, atOnce(p,
			preflightRequest("/bucket-a/k", "https://app.example", "GET", ""),
			preflightRequest("/gone-bucket/k", "https://app.example", "GET", "")))
		assert.Equal(t, 2, m.count())
		require.Len(t, up.requests(), before+1)
		assert.Equal(t, "bucket-a.", up.last(t).Host[:len("bucket-a.")], "the preflight went to its own bucket")
	})
}

// The client secrets hook: one call per access key id, and a signature made
// with another client's secret fails.
func TestMergedOnlyWhenEqualClientSecrets(t *testing.T) {
	up := newFakeUpstream(t)
	m := newMeet(2)
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(),
			Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithClientSecrets(func(_ context.Context, id string) (string, error) {
			m.arrive()
			return map[string]string{unitKey: unitSecret, secondKey: secondSecret}[id], nil
		}),
		proxy.WithTransport(up.transport()),
		proxy.WithClock(func() time.Time { return fixedNow }),
	)
	require.NoError(t, err)
	defer p.Close()
	a := httptest.NewRequest("GET", "/bucket/k", nil)
	clientSignAt(t, a, sha256Hex(nil), fixedNow, unitKey, unitSecret)
	b := httptest.NewRequest("GET", "/bucket/k", nil)
	clientSignAt(t, b, sha256Hex(nil), fixedNow, secondKey, unitSecret) // the first client's secret
	assert.Equal(t, []int{200, 403}, atOnce(p, a, b))
	assert.Equal(t, 2, m.count())
}

// IAM tokens: one exchange per API key; each bucket's request carries its
// own key's token.
func TestMergedOnlyWhenEqualIAMTokens(t *testing.T) {
	up := newFakeUpstream(t)
	iam := testkit.NewIAM(t, nil, "key-a", "key-b")
	m := newMeet(2)
	iam.Answer(func(w http.ResponseWriter, r *http.Request, _ int64) {
		m.arrive()
		iam.Token(w, "tok-for-"+r.PostFormValue("apikey"), 3600)
	})
	p := newProxy(t, up, proxy.WithBuckets(
		proxy.Bucket{Name: "ibm-a", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "key-a"}},
		proxy.Bucket{Name: "ibm-b", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "key-b"}}),
		proxy.WithIAMEndpoint("http://iam.test/identity/token"), proxy.WithTransport(routes(up, iam)))
	assert.Equal(t, []int{200, 200}, atOnce(p,
		signedRequest(t, "GET", "/ibm-a/k", nil), signedRequest(t, "GET", "/ibm-b/k", nil)))
	assert.Equal(t, 2, m.count())
	tokens := map[string]string{}
	for _, s := range up.requests() {
		tokens[s.Host[:len("ibm-a")]] = s.Header.Get("Authorization")
	}
	assert.Equal(t, map[string]string{"ibm-a": "Bearer tok-for-key-a", "ibm-b": "Bearer tok-for-key-b"}, tokens)
}

// POST Object: a form's policy is checked with its own client's secret, for
// the bucket it is posted to, and its upload authorized for its own key.
func TestMergedOnlyWhenEqualPostPolicy(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	m := newMeet(2)
	p := newProxy(t, up, proxy.WithBuckets(proxy.Bucket{Name: "bucket2", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithRequestAuthorizer(func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
			m.arrive()
			return proxy.Decision{Allow: r.Key == "mine/a"}, nil
		}))
	srv := httptest.NewServer(p)
	defer srv.Close()
	post := func(bucket string, f itgForm) int {
		f.File, f.At = []byte("x"), fixedNow
		resp, _, err := itgPostSigned(t.Context(), unitSide(srv), bucket, f)
		require.NoError(t, err)
		return resp.StatusCode
	}
	codes := make([]int, 2)
	var wg sync.WaitGroup
	wg.Go(func() { codes[0] = post("bucket", itgForm{Key: "mine/a"}) })
	wg.Go(func() { codes[1] = post("bucket", itgForm{Key: "theirs/a"}) })
	wg.Wait()
	assert.Equal(t, []int{204, 403}, codes)
	assert.Equal(t, 2, m.count())
	assert.Equal(t, 403, post("bucket", itgForm{Key: "mine/a", Secret: secondSecret}), "another secret")
}

// Use counts: each presigned URL is counted on its own.
func TestMergedOnlyWhenEqualUseCounts(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithPresignedUseLimit(1, nil))
	a := presign(t, "GET", "http://example.com/bucket/a", fixedNow, time.Hour)
	b := presign(t, "GET", "http://example.com/bucket/b", fixedNow, time.Hour)
	get := func(u *url.URL) *http.Request { return httptest.NewRequest("GET", u.RequestURI(), nil) }
	assert.Equal(t, []int{200, 200}, atOnce(p, get(a), get(b)), "two URLs, one use each")
	assert.Equal(t, []int{403, 403}, atOnce(p, get(a), get(b)))
}
