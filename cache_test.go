package proxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// tokenModeProxy is a proxy in token mode over the fake upstream with the given
// authorizer and options.
func tokenModeProxy(t *testing.T, up *fakeUpstream, authz proxy.AuthorizeFunc, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	base := []proxy.Option{
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithAuthorizer(authz),
		proxy.WithTransport(up.transport()),
	}
	p, err := proxy.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func tokenGet(t *testing.T, h http.Handler, token, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	clientSignAt(t, r, sha256Hex(nil), time.Now(), token, "unused")
	return serve(h, r)
}

func TestAuthorizerCalledOncePerKeyUnderConcurrency(t *testing.T) {
	up := newFakeUpstream(t)
	var calls atomic.Int32
	release := make(chan struct{})
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		calls.Add(1)
		<-release
		return true, nil
	})
	var wg sync.WaitGroup
	codes := make(chan int, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- tokenGet(t, p, "tok", "/bucket/k").Code
		}()
	}
	time.Sleep(100 * time.Millisecond) // let them all pile up on the one call
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	assert.Equal(t, int32(1), calls.Load())
}

func TestAuthorizerCacheTTLDenialAndErrors(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	var calls atomic.Int32
	var fail atomic.Bool
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		calls.Add(1)
		if fail.Load() {
			return false, errors.New("directory down")
		}
		return token == "good", nil
	}, proxy.WithClock(clk.Now), proxy.WithAuthCacheTTL(time.Minute))

	assert.Equal(t, 200, tokenGet(t, p, "good", "/bucket/k").Code)
	assert.Equal(t, 200, tokenGet(t, p, "good", "/bucket/k").Code)
	assert.Equal(t, int32(1), calls.Load(), "an allowed answer is cached")

	assert.Equal(t, 403, tokenGet(t, p, "bad", "/bucket/k").Code)
	assert.Equal(t, 403, tokenGet(t, p, "bad", "/bucket/k").Code)
	assert.Equal(t, int32(2), calls.Load(), "a denial is cached too")

	clk.Advance(61 * time.Second)
	fail.Store(true)
	w := tokenGet(t, p, "good", "/bucket/k")
	assert.Equal(t, 503, w.Code, "an expired entry is asked again; the error is a 503")
	assert.Equal(t, "ServiceUnavailable", s3Code(w.Body.String()))
	assert.NotContains(t, w.Body.String(), "directory down")
	assert.Equal(t, 503, tokenGet(t, p, "good", "/bucket/k").Code)
	assert.Equal(t, int32(4), calls.Load(), "errors are never cached")

	fail.Store(false)
	assert.Equal(t, 200, tokenGet(t, p, "good", "/bucket/k").Code)
	assert.Equal(t, int32(5), calls.Load())
}

// A hot entry still expires: hits do not extend its life.
func TestAuthorizerEntryExpiresWhenHot(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	var calls atomic.Int32
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		calls.Add(1)
		return true, nil
	}, proxy.WithClock(clk.Now), proxy.WithAuthCacheTTL(time.Minute))
	for range 10 {
		assert.Equal(t, 200, tokenGet(t, p, "tok", "/bucket/k").Code)
		clk.Advance(10 * time.Second)
	}
	assert.Equal(t, int32(2), calls.Load(), "asked at 0 s and again after the minute, however hot")
}

func TestAuthorizerCacheBounded(t *testing.T) {
	up := newFakeUpstream(t)
	var calls atomic.Int32
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		calls.Add(1)
		return true, nil
	}, proxy.WithAuthCacheCapacity(2))
	for _, tok := range []string{"a", "b", "c", "a"} {
		assert.Equal(t, 200, tokenGet(t, p, tok, "/bucket/k").Code)
	}
	assert.Equal(t, int32(4), calls.Load(), "with room for two, the third token evicted the first")
}

func TestPanickingAuthorizerIs500(t *testing.T) {
	up := newFakeUpstream(t)
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		panic("authorizer bug")
	})
	w := tokenGet(t, p, "tok", "/bucket/k")
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Equal(t, "InternalError", s3Code(w.Body.String()))
	assert.Empty(t, up.requests())
}

// A client whose deadline passes while the authorizer blocks gets its answer at
// the deadline; while another client still waits for the same call, the call
// goes on and its answer lands in the cache.
func TestBlockingAuthorizerHonoursClientDeadline(t *testing.T) {
	up := newFakeUpstream(t)
	var calls atomic.Int32
	release := make(chan struct{})
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		calls.Add(1)
		<-release
		return true, nil
	})
	patient := make(chan int)
	go func() { patient <- tokenGet(t, p, "tok", "/bucket/k").Code }()
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), time.Now(), "tok", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	w := serve(p, r.WithContext(ctx))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	close(release)
	assert.Equal(t, 200, <-patient)
	assert.Equal(t, 200, tokenGet(t, p, "tok", "/bucket/k").Code)
	assert.Equal(t, int32(1), calls.Load(), "one call, cached")
}

// When every client waiting for an authorizer call has gone, the call's
// context is cancelled and the next client starts a call of its own.
func TestAuthorizerCallCancelledWhenItsClientsLeave(t *testing.T) {
	up := newFakeUpstream(t)
	var calls atomic.Int32
	cancelled := make(chan struct{})
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		if calls.Add(1) > 1 {
			return true, nil
		}
		<-ctx.Done()
		close(cancelled)
		return false, ctx.Err()
	})
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), time.Now(), "tok", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.Equal(t, http.StatusServiceUnavailable, serve(p, r.WithContext(ctx)).Code)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the authorizer's context was not cancelled when its client left")
	}
	assert.Equal(t, 200, tokenGet(t, p, "tok", "/bucket/k").Code)
	assert.Equal(t, int32(2), calls.Load())
}

func TestBucketHooksCachedPerBucket(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	var epCalls, crCalls atomic.Int32
	var fail atomic.Bool
	p, err := proxy.New(
		proxy.WithEndpoint(func(ctx context.Context, b string) (proxy.Endpoint, error) {
			epCalls.Add(1)
			if fail.Load() {
				return proxy.Endpoint{}, errors.New("registry down")
			}
			return up.endpoint(), nil
		}),
		proxy.WithCredentials(func(ctx context.Context, b string) (proxy.Credentials, error) {
			crCalls.Add(1)
			return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
		}),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithClock(clk.Now),
		proxy.WithHookCacheTTL(time.Minute),
		proxy.WithTransport(up.transport()),
	)
	require.NoError(t, err)
	defer p.Close()
	get := func(path string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		clientSignAt(t, r, sha256Hex(nil), clk.Now(), unitKey, unitSecret)
		return serve(p, r).Code
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); assert.Equal(t, 200, get("/one/k")) }()
	}
	wg.Wait()
	assert.Equal(t, 200, get("/two/k"))
	assert.Equal(t, int32(2), epCalls.Load(), "one call per bucket")
	assert.Equal(t, int32(2), crCalls.Load())

	clk.Advance(2 * time.Minute)
	fail.Store(true)
	assert.Equal(t, 503, get("/one/k"))
	assert.Equal(t, 503, get("/one/k"))
	assert.Equal(t, int32(4), epCalls.Load(), "errors are not cached")
	fail.Store(false)
	assert.Equal(t, 200, get("/one/k"))
}

// routes sends IAM's host to the fake IAM and everything else to the upstream.
func routes(up *fakeUpstream, iam *testkit.IAM) *http.Transport {
	iamAddr := iam.Addr()
	return &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "iam.test:") {
			addr = iamAddr
		} else {
			addr = up.addr()
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
}

func TestIAMBucketEndToEnd(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	iam := testkit.NewIAM(t, clk.Now, "the-api-key")
	var authz atomic.Int32
	release := make(chan struct{})
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) {
		authz.Add(1)
		<-release
		return true, nil
	},
		proxy.WithBuckets(proxy.Bucket{Name: "ibm-bucket", Endpoint: up.endpoint(),
			Credentials: proxy.Credentials{APIKey: "the-api-key", ServiceInstanceID: "crn:v1:instance"}}),
		proxy.WithIAMEndpoint("http://iam.test/identity/token"),
		proxy.WithTransport(routes(up, iam)),
		proxy.WithClock(clk.Now),
	)

	// 500 concurrent first requests: one IAM exchange, one authorizer call.
	var wg sync.WaitGroup
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := tokenGet(t, p, "tok", "/ibm-bucket/k")
			assert.Equal(t, 200, w.Code, w.Body.String())
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int64(1), iam.Calls())
	assert.Equal(t, int32(1), authz.Load())
	got := up.last(t)
	assert.Equal(t, "Bearer tok-1", got.Header.Get("Authorization"))
	assert.Empty(t, got.Header.Get("X-Amz-Date"), "no SigV4 on a bearer request")
	assert.Empty(t, got.Header.Get("Ibm-Service-Instance-Id"), "only CreateBucket needs the instance id")

	// CreateBucket carries the service instance id.
	r := httptest.NewRequest(http.MethodPut, "/ibm-bucket", nil)
	clientSignAt(t, r, sha256Hex(nil), time.Now(), "tok", "x")
	require.Equal(t, 200, serve(p, r).Code)
	assert.Equal(t, "crn:v1:instance", up.last(t).Header.Get("Ibm-Service-Instance-Id"))

	// Past expiry with IAM down: quick 503s, a bounded number of IAM calls,
	// nothing forwarded; IAM back: recovery.
	clk.Advance(2 * time.Hour)
	iam.Fail(http.StatusInternalServerError)
	before := len(up.requests())
	for range 50 {
		w := tokenGet(t, p, "tok", "/ibm-bucket/k")
		assert.Equal(t, 503, w.Code)
	}
	assert.LessOrEqual(t, iam.Calls(), int64(3), "IAM is not hammered during an outage")
	assert.Len(t, up.requests(), before, "nothing is forwarded without a token")
	iam.Fail(0)
	clk.Advance(time.Minute) // past the backoff
	w := tokenGet(t, p, "tok", "/ibm-bucket/k")
	assert.Equal(t, 200, w.Code, w.Body.String())
}

func TestIAMRefusedKeyIsClearError(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	iam := testkit.NewIAM(t, clk.Now, "the-api-key")
	iam.Refuse("wrong-key")
	p := tokenModeProxy(t, up, func(ctx context.Context, token, bucket string) (bool, error) { return true, nil },
		proxy.WithBuckets(proxy.Bucket{Name: "ibm-bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "wrong-key"}}),
		proxy.WithIAMEndpoint("http://iam.test/identity/token"),
		proxy.WithTransport(routes(up, iam)),
		proxy.WithClock(clk.Now),
	)
	w := tokenGet(t, p, "tok", "/ibm-bucket/k")
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "refused by IAM")
	assert.NotContains(t, w.Body.String(), "wrong-key")
	assert.Empty(t, up.requests())
}
