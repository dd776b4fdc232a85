package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/bench/internal/growth"
)

// The growth harness's scale measurements: a proxy child configured with n of
// one kind of thing, loaded with requests spread over all n.
//
//   - static-buckets: n static buckets (WithBuckets), HMAC upstream keys;
//   - hook-buckets: n buckets routed by WithEndpoint and WithCredentials, each
//     requested once to fill the hook cache;
//   - authorizations: n cached authorizer answers, distinct token × bucket
//     pairs over ⌈√n⌉ client keys and ⌈√n⌉ static buckets;
//   - iam-keys: n static buckets, each with its own IAM API key, each
//     requested once so that its token is cached;
//   - client-keys: n client keys (WithClientKeys), one bucket, the load
//     signed with keys spread over all n.
//
// The caches' TTLs are set to an hour, so that nothing expires during a
// measurement; their capacities are the defaults. growth.ScaleKinds lists
// the kinds.
const scaleTTL = time.Hour

// hookCalls counts the calls of the proxy child's hooks (endpoint,
// credentials, authorizer): what its caches missed. The child reports it
// with its memory figures.
var hookCalls atomic.Int64

// scaleSide is ⌈√n⌉: the client keys and buckets whose pairs make n
// authorizations.
func scaleSide(n int) int { return max(1, int(math.Ceil(math.Sqrt(float64(n))))) }

// scaleItem is the i-th of n things of a kind as a request sees it: the bucket
// and the client key it is signed with.
func scaleItem(kind string, n, i int) (bucketName, accessKey, secret string) {
	switch kind {
	case "static-buckets":
		return fmt.Sprintf("sb-%d", i), clientKey, clientSecret
	case "hook-buckets":
		return fmt.Sprintf("hb-%d", i), clientKey, clientSecret
	case "authorizations":
		k := scaleSide(n)
		return fmt.Sprintf("ab-%d", i/k), fmt.Sprintf("ak-%d", i%k), fmt.Sprintf("ak-%d-secret", i%k)
	case "iam-keys":
		return fmt.Sprintf("ib-%d", i), clientKey, clientSecret
	case "client-keys":
		return bucket, fmt.Sprintf("ck-%d", i), fmt.Sprintf("ck-%d-secret", i)
	}
	panic("unknown scale kind " + kind)
}

// newScaleProxy is the proxy of a scale measurement (see scaleKinds).
func newScaleProxy(kind string, n int, origin, iam string, more ...proxy.Option) (*proxy.Proxy, error) {
	if n <= 0 {
		return nil, errors.New("-n must be positive")
	}
	ep, err := originEndpoint(origin)
	if err != nil {
		return nil, err
	}
	hmacKeys := proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}
	opts := []proxy.Option{
		proxy.WithAuthCacheTTL(scaleTTL),
		proxy.WithHookCacheTTL(scaleTTL),
		proxy.WithIAMEndpoint(iam),
	}
	one := proxy.WithClientKeys(map[string]string{clientKey: clientSecret})
	switch kind {
	case "static-buckets":
		bs := make([]proxy.Bucket, n)
		for i := range bs {
			name, _, _ := scaleItem(kind, n, i)
			bs[i] = proxy.Bucket{Name: name, Endpoint: ep, Credentials: hmacKeys}
		}
		opts = append(opts, one, proxy.WithBuckets(bs...))
	case "hook-buckets":
		known := func(b string) bool { return strings.HasPrefix(b, "hb-") }
		opts = append(opts, one,
			proxy.WithEndpoint(func(_ context.Context, b string) (proxy.Endpoint, error) {
				hookCalls.Add(1)
				if !known(b) {
					return proxy.Endpoint{}, proxy.ErrNoSuchBucket
				}
				return ep, nil
			}),
			proxy.WithCredentials(func(_ context.Context, b string) (proxy.Credentials, error) {
				hookCalls.Add(1)
				if !known(b) {
					return proxy.Credentials{}, proxy.ErrNoSuchBucket
				}
				return hmacKeys, nil
			}))
	case "authorizations":
		k := scaleSide(n)
		keys := make(map[string]string, k)
		bs := make([]proxy.Bucket, k)
		for j := range k {
			name, key, secret := scaleItem(kind, n, j*k+j) // bucket j, key j
			keys[key] = secret
			bs[j] = proxy.Bucket{Name: name, Endpoint: ep, Credentials: hmacKeys}
		}
		opts = append(opts, proxy.WithClientKeys(keys), proxy.WithBuckets(bs...),
			proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { hookCalls.Add(1); return true, nil }))
	case "iam-keys":
		bs := make([]proxy.Bucket, n)
		for i := range bs {
			name, _, _ := scaleItem(kind, n, i)
			bs[i] = proxy.Bucket{Name: name, Endpoint: ep, Credentials: proxy.Credentials{APIKey: fmt.Sprintf("harness-api-key-%d", i)}}
		}
		opts = append(opts, one, proxy.WithBuckets(bs...))
	case "client-keys":
		keys := make(map[string]string, n)
		for i := range n {
			_, key, secret := scaleItem(kind, n, i)
			keys[key] = secret
		}
		opts = append(opts, proxy.WithClientKeys(keys),
			proxy.WithBuckets(proxy.Bucket{Name: bucket, Endpoint: ep, Credentials: hmacKeys}))
	default:
		return nil, fmt.Errorf("-scale %q: want one of %s", kind, strings.Join(growth.ScaleKinds, ", "))
	}
	return proxy.New(append(opts, more...)...)
}

// scaleRequests signs one GET of the small object per thing, for the proxy at
// addr, in the order given.
func scaleRequests(kind string, n int, addr string, order []int) ([]getRequest, error) {
	reqs := make([]getRequest, 0, len(order))
	for _, i := range order {
		b, key, secret := scaleItem(kind, n, i)
		u := "http://" + addr + "/" + b + "/small"
		h, err := signedHeadersWith(key, secret, http.MethodGet, u, emptySHA256, 0, nil)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, getRequest{u, h})
	}
	return reqs, nil
}

// inProcess is a scale configuration served without processes or sockets:
// the proxy and the bare proxy as handlers in this process, on an upstream
// (and IAM) that answers at once. Its figures are the proxy's own work per
// request, steadier than the CPU time of processes on a busy machine, and its
// allocations, which do not depend on the machine at all.
type inProcess struct {
	proxy, bare http.Handler
	close       func() error
	reqs        []*http.Request
	up          *cannedUpstream
}

// newInProcess builds the configuration of kind and n and serves every
// request once through the proxy, which must answer 200.
func newInProcess(kind string, n int, reqs []getRequest) (*inProcess, error) {
	up := &cannedUpstream{body: bytes.Repeat([]byte("o"), smallSize)}
	p, err := newScaleProxy(kind, n, "127.0.0.1:9", "http://iam.test/identity/token", proxy.WithTransport(up))
	if err != nil {
		return nil, err
	}
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:9"}
	ip := &inProcess{proxy: p, close: p.Close, up: up,
		bare: &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: up}}
	for _, r := range reqs {
		hr, err := http.NewRequest(http.MethodGet, r.url, nil)
		if err != nil {
			return nil, err
		}
		hr.Header = r.h
		hr.RequestURI = hr.URL.RequestURI()
		hr.RemoteAddr = "127.0.0.1:40000"
		ip.reqs = append(ip.reqs, hr)
	}
	w := &recorder{}
	for _, r := range ip.reqs {
		w.reset()
		p.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			_ = p.Close()
			return nil, fmt.Errorf("in process, warming up %s: status %d", r.URL, w.status)
		}
	}
	return ip, nil
}

// inProcessResult is one handler's figures per request.
type inProcessResult struct {
	ns, allocs, iam float64 // per request; iam: IAM exchanges
	bad             int     // answers other than 200
}

// run serves the requests in turn through h for at least d.
func (ip *inProcess) run(h http.Handler, d time.Duration) inProcessResult {
	w := &recorder{}
	var m0, m1 runtime.MemStats
	runtime.GC()
	iam0 := ip.up.iamCalls.Load()
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	n, bad, i := 0, 0, 0
	for n == 0 || time.Since(t0) < d {
		for range 64 {
			w.reset()
			h.ServeHTTP(w, ip.reqs[i])
			if w.status != http.StatusOK {
				bad++
			}
			if i++; i == len(ip.reqs) {
				i = 0
			}
		}
		n += 64
	}
	elapsed := time.Since(t0)
	runtime.ReadMemStats(&m1)
	return inProcessResult{ns: float64(elapsed.Nanoseconds()) / float64(n), allocs: float64(m1.Mallocs-m0.Mallocs) / float64(n),
		iam: float64(ip.up.iamCalls.Load()-iam0) / float64(n), bad: bad}
}

// cannedUpstream answers IAM token requests with a token valid for an hour
// and every other request with 200 and body.
type cannedUpstream struct {
	body     []byte
	iamCalls atomic.Int64
}

func (u *cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{}
	body := u.body
	if strings.HasSuffix(r.URL.Path, "/identity/token") {
		u.iamCalls.Add(1)
		body, _ = json.Marshal(map[string]any{"access_token": "t", "token_type": "Bearer", "expires_in": 3600,
			"expiration": time.Now().Add(time.Hour).Unix()})
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// recorder is an http.ResponseWriter that keeps the status and counts the
// body.
type recorder struct {
	h      http.Header
	status int
	n      int
}

func (w *recorder) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *recorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *recorder) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}
