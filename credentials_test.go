package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// rotatingProvider hands out keys "rot-<n>" for its n-th retrieval, valid
// for life on clock, as a role's temporary credentials are; fail makes it
// fail, hold makes a retrieval wait until released.
type rotatingProvider struct {
	clock *testkit.Clock
	life  time.Duration
	calls atomic.Int64
	fail  atomic.Bool
	hold  chan struct{} // nil: no wait
}

func (p *rotatingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	n := p.calls.Add(1)
	if p.hold != nil {
		select {
		case <-p.hold:
		case <-ctx.Done():
			return aws.Credentials{}, ctx.Err()
		}
	}
	if p.fail.Load() {
		return aws.Credentials{}, errors.New("the role cannot be assumed")
	}
	if n == 1 && p.life < 0 { // an answer already expired
		return aws.Credentials{AccessKeyID: "old", SecretAccessKey: "s", CanExpire: true, Expires: p.clock.Now().Add(-time.Minute)}, nil
	}
	return aws.Credentials{AccessKeyID: fmt.Sprintf("rot-%d", n), SecretAccessKey: fmt.Sprintf("secret-%d", n),
		SessionToken: fmt.Sprintf("session-%d", n), CanExpire: true, Expires: p.clock.Now().Add(p.life)}, nil
}

// signedKeyID is the access key id of an upstream request's signature.
func signedKeyID(s seen) string {
	m := authRE.FindStringSubmatch(s.Header.Get("Authorization"))
	if m == nil {
		return ""
	}
	return m[1]
}

func providerProxy(t *testing.T, up *fakeUpstream, clk *testkit.Clock, p aws.CredentialsProvider, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	return newProxy(t, up, append([]proxy.Option{
		proxy.WithBuckets(proxy.Bucket{Name: "rotating", Endpoint: up.endpoint(), Credentials: proxy.Credentials{Provider: p}}),
		proxy.WithClock(clk.Now)}, opts...)...)
}

func getAt(t *testing.T, p http.Handler, clk *testkit.Clock, path string) int {
	t.Helper()
	r := signedRequestAt(t, "GET", path, clk.Now())
	return serve(p, r).Code
}

// A bucket's keys from a provider: retrieved once for a burst, used until
// shortly before they expire on the proxy's clock, refreshed ahead in the
// background, and never used past their expiry.
func TestCredentialsProviderRotation(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	prov := &rotatingProvider{clock: clk, life: time.Hour, hold: make(chan struct{})}
	p := providerProxy(t, up, clk, prov)

	// 100 requests at once: one retrieval.
	var wg sync.WaitGroup
	codes := make([]int, 100)
	for i := range codes {
		wg.Go(func() { codes[i] = getAt(t, p, clk, "/rotating/k") })
	}
	require.Eventually(t, func() bool { return prov.calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	close(prov.hold)
	wg.Wait()
	for _, c := range codes {
		require.Equal(t, 200, c)
	}
	assert.EqualValues(t, 1, prov.calls.Load())
	got := up.last(t)
	assert.Equal(t, "rot-1", signedKeyID(got))
	assert.Equal(t, "session-1", got.Header.Get("X-Amz-Security-Token"))

	// In the refresh window (the last fifth of the hour): the current keys
	// go on while one background retrieval gets the next.
	clk.Advance(52 * time.Minute) // past the jittered start of the window, 48 to 51 min
	require.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	require.Eventually(t, func() bool { return prov.calls.Load() == 2 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		return getAt(t, p, clk, "/rotating/k") == 200 && signedKeyID(up.last(t)) == "rot-2"
	}, 5*time.Second, 5*time.Millisecond)
	assert.EqualValues(t, 2, prov.calls.Load())

	// The provider fails from now on: the keys it gave last serve until 30 s
	// before they expire, never after.
	prov.fail.Store(true)
	clk.Advance(59*time.Minute + 29*time.Second) // rot-2 expires 60 min after it was fetched
	assert.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	assert.Equal(t, "rot-2", signedKeyID(up.last(t)))
	n := len(up.requests())
	clk.Advance(2 * time.Second)
	w := serve(p, signedRequestAt(t, "GET", "/rotating/k", clk.Now()))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	assert.Equal(t, "ServiceUnavailable", s3Code(w.Body.String()))
	assert.Len(t, up.requests(), n, "nothing signed with keys about to expire")

	// Back: served again once the backoff has passed.
	prov.fail.Store(false)
	clk.Advance(time.Minute)
	assert.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	assert.True(t, strings.HasPrefix(signedKeyID(up.last(t)), "rot-"))
	assert.NotEqual(t, "rot-2", signedKeyID(up.last(t)))
}

// Keys given already expired, keys the provider cannot give, a provider that
// panics: the client gets S3's error and nothing goes upstream.
func TestCredentialsProviderFailures(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	for _, c := range []struct {
		name   string
		p      aws.CredentialsProvider
		status int
		code   string
	}{
		{"fails", &rotatingProvider{clock: clk, life: time.Hour}, 503, "ServiceUnavailable"},
		{"already expired", &rotatingProvider{clock: clk, life: -1}, 503, "ServiceUnavailable"},
		{"no keys", &emptyProvider{}, 503, "ServiceUnavailable"},
		{"panics", &panicProvider{}, 500, "InternalError"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r, ok := c.p.(*rotatingProvider); ok && c.name == "fails" {
				r.fail.Store(true)
			}
			p := providerProxy(t, up, clk, c.p)
			w := serve(p, signedRequestAt(t, "GET", "/rotating/k", clk.Now()))
			assert.Equal(t, c.status, w.Code, w.Body.String())
			assert.Equal(t, c.code, s3Code(w.Body.String()))
			assert.NotContains(t, w.Body.String(), "secret")
		})
	}
	assert.Empty(t, up.requests())
}

type emptyProvider struct{}

func (*emptyProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, nil
}

// funcProvider is a comparable provider (a pointer) around a function.
type funcProvider struct{ f aws.CredentialsProviderFunc }

func (p *funcProvider) Retrieve(ctx context.Context) (aws.Credentials, error) { return p.f(ctx) }

type panicProvider struct{}

func (*panicProvider) Retrieve(context.Context) (aws.Credentials, error) { panic("provider bug") }

// Keys that cannot expire are used, and retrieved again every hook cache TTL
// in the background; the credentials hook may return a provider too.
func TestCredentialsProviderFromHook(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	var calls atomic.Int64
	static := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		calls.Add(1)
		return aws.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
	})
	counting := &funcProvider{static}
	p := hookRouted(t, up, nil, proxy.WithClock(clk.Now), proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
		return proxy.Credentials{Provider: counting}, nil
	}))
	for range 5 {
		require.Equal(t, 200, getAt(t, p, clk, "/bucket-a/k"))
	}
	got := up.last(t)
	assert.True(t, got.SigOK, got.SigErr)
	assert.EqualValues(t, 1, calls.Load())
	clk.Advance(2 * time.Minute) // past the hook cache TTL
	require.Equal(t, 200, getAt(t, p, clk, "/bucket-a/k"))
	require.Eventually(t, func() bool { return calls.Load() == 2 }, 5*time.Second, time.Millisecond)

	// A provider that cannot be compared cannot be cached: refused.
	_, err := proxy.New(proxy.WithBuckets(proxy.Bucket{Name: "funcs", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{Provider: static}}), proxy.WithClientKeys(map[string]string{unitKey: unitSecret}))
	assert.ErrorContains(t, err, "cannot be compared")
	_, err = proxy.New(proxy.WithBuckets(proxy.Bucket{Name: "both", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{Provider: counting, APIKey: "k"}}), proxy.WithClientKeys(map[string]string{unitKey: unitSecret}))
	assert.ErrorContains(t, err, "more than one")
}

// signedRequestAt is a header-signed client request at a time.
func signedRequestAt(t *testing.T, method, target string, at time.Time) *http.Request {
	t.Helper()
	r := signedRequest(t, method, target, nil)
	clientSignAt(t, r, sha256Hex(nil), at, unitKey, unitSecret)
	return r
}

// stuckProvider gives the same keys, expiring at the same time, however often
// it is asked: a cache in front of a role, say.
type stuckProvider struct {
	expires time.Time
	calls   atomic.Int64
}

func (p *stuckProvider) Retrieve(context.Context) (aws.Credentials, error) {
	p.calls.Add(1)
	return aws.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret, CanExpire: true, Expires: p.expires}, nil
}

// A provider that gives no newer keys when asked ahead of expiry is asked
// again after a while, not at every request, and its keys are used until the
// margin of their whole lifetime, never closer to their expiry.
func TestCredentialsProviderStuck(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	prov := &stuckProvider{expires: fixedNow.Add(time.Hour)}
	p := providerProxy(t, up, clk, prov)
	require.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	clk.Advance(52 * time.Minute)
	for range 50 {
		require.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	}
	require.Eventually(t, func() bool { return prov.calls.Load() == 2 }, 5*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	for range 50 {
		require.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	}
	assert.EqualValues(t, 2, prov.calls.Load(), "backing off after a refresh that gave nothing newer")

	// Within 30 s of the expiry the keys held are not used: asked again, the
	// provider still gives them, with 29 s to live, used until a tenth of
	// that before; past the expiry nothing is signed.
	clk.Advance(7*time.Minute + 31*time.Second)
	require.Equal(t, 200, getAt(t, p, clk, "/rotating/k"))
	assert.EqualValues(t, 3, prov.calls.Load())
	n := len(up.requests())
	clk.Advance(30 * time.Second)
	w := serve(p, signedRequestAt(t, "GET", "/rotating/k", clk.Now()))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "keys past their expiry are never used: "+w.Body.String())
	assert.Len(t, up.requests(), n)
}

// Two sets of keys with one access key id and different secrets (a secret
// regenerated for its key, as Ceph and MinIO allow, on a bucket the hooks
// resolve again; or two instances' keys): each upstream request is signed
// with its own secret, never with a signing key derived from the other's.
// Buckets of one region with different keys, taken in turn, each keep theirs.
func TestUpstreamSigningFollowsTheSecret(t *testing.T) {
	up := newFakeUpstream(t)
	p := startProxy(t, up, proxy.WithBuckets(
		proxy.Bucket{Name: "stale", Endpoint: up.endpoint(),
			Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: "the secret before it was regenerated"}},
		proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(),
			Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}))
	for range 3 {
		require.Equal(t, 200, serve(p, signedRequest(t, "GET", "/stale/k", nil)).Code)
		assert.False(t, up.last(t).SigOK, "signed with the stale secret, which the upstream refuses")
		require.Equal(t, 200, serve(p, signedRequest(t, "GET", "/bucket/k", nil)).Code)
		got := up.last(t)
		assert.True(t, got.SigOK, got.SigErr)
	}
}
