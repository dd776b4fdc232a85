package proxy_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// flakyCounter is a UseCounter that can be made to fail.
type flakyCounter struct {
	proxy.UseCounter
	down atomic.Bool
}

func (f *flakyCounter) Add(ctx context.Context, key string, expires time.Time) (int64, error) {
	if f.down.Load() {
		return 0, errors.New("store unreachable")
	}
	return f.UseCounter.Add(ctx, key, expires)
}

// A presigned URL works at most N times, across every replica that shares
// the counter; 50 concurrent attempts give exactly N successes; a counter
// that fails fails closed, and recovery needs no restart.
func TestPresignedUseLimit(t *testing.T) {
	up := newFakeUpstream(t)
	shared := &flakyCounter{UseCounter: proxy.NewMemoryUseCounter(10)}
	// The shared counter keeps the real clock, as a shared store would: so do
	// the replicas.
	replicas := []*proxy.Proxy{
		newProxy(t, up, proxy.WithPresignedUseLimit(3, shared), proxy.WithClock(time.Now)),
		newProxy(t, up, proxy.WithPresignedUseLimit(3, shared), proxy.WithClock(time.Now)),
	}
	u := presign(t, "GET", "http://example.com/bucket/k", time.Now(), time.Hour)
	var ok, denied atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := serve(replicas[i%2], httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
			switch {
			case w.Code == 200:
				ok.Add(1)
			case w.Code == 403 && s3Code(w.Body.String()) == "AccessDenied":
				denied.Add(1)
			default:
				t.Errorf("unexpected %d %s", w.Code, w.Body.String())
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(3), ok.Load(), "exactly the limit, across both replicas")
	assert.Equal(t, int32(47), denied.Load())

	// Another URL, then the store goes down: closed; back up: served again.
	u2 := presign(t, "GET", "http://example.com/bucket/k2", time.Now(), time.Hour)
	assert.Equal(t, 200, serve(replicas[0], httptest.NewRequest(http.MethodGet, u2.RequestURI(), nil)).Code)
	shared.down.Store(true)
	before := len(up.requests())
	w := serve(replicas[1], httptest.NewRequest(http.MethodGet, u2.RequestURI(), nil))
	assert.Equal(t, 503, w.Code)
	assert.Equal(t, "ServiceUnavailable", s3Code(w.Body.String()))
	assert.Len(t, up.requests(), before, "fails closed: nothing forwarded")
	shared.down.Store(false)
	assert.Equal(t, 200, serve(replicas[1], httptest.NewRequest(http.MethodGet, u2.RequestURI(), nil)).Code)

	// Header-signed requests are not counted.
	for range 5 {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		clientSignAt(t, r, sha256Hex(nil), time.Now(), unitKey, unitSecret)
		assert.Equal(t, 200, serve(replicas[0], r).Code)
	}
}

// The memory counter is bounded: full of URLs that have not expired, it
// fails closed rather than forget a count.
func TestMemoryUseCounterBounded(t *testing.T) {
	c := proxy.NewMemoryUseCounter(2)
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	for _, k := range []string{"a", "b"} {
		n, err := c.Add(ctx, k, later)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
	}
	n, err := c.Add(ctx, "a", later)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	_, err = c.Add(ctx, "c", later)
	assert.Error(t, err, "full")
	n, err = proxy.NewMemoryUseCounter(1).Add(ctx, "x", time.Now().Add(-time.Second))
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

// A URL is counted by its signature as verified: a SigV2 signature's '+'
// sent unencoded (which a query reads as ' ') or as %2B are the same URL and
// do not start a count of their own; a SigV4 signature in upper case is
// refused, not counted anew.
func TestPresignedUseLimitOneCountPerURL(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithSigV2(true), proxy.WithClock(time.Now),
		proxy.WithPresignedUseLimit(1, proxy.NewMemoryUseCounter(100)))
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	var path, sig string
	for i := 0; !strings.Contains(sig, "+"); i++ { // a key whose signature has a '+'
		path = "/bucket/k" + strconv.Itoa(i)
		m := hmac.New(sha1.New, []byte(unitSecret))
		m.Write([]byte("GET\n\n\n" + exp + "\n" + path))
		sig = base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	base := path + "?AWSAccessKeyId=" + unitKey + "&Expires=" + exp + "&Signature="
	assert.Equal(t, 200, serve(p, httptest.NewRequest(http.MethodGet, base+url.QueryEscape(sig), nil)).Code)
	raw := strings.ReplaceAll(url.QueryEscape(sig), "%2B", "+")
	w := serve(p, httptest.NewRequest(http.MethodGet, base+raw, nil))
	assert.Equal(t, 403, w.Code, "the same URL with its '+' unencoded: %s", w.Body.String())

	u := presign(t, "GET", "http://example.com/bucket/v4", time.Now(), time.Hour)
	assert.Equal(t, 200, serve(p, httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)).Code)
	q := u.Query()
	q.Set("X-Amz-Signature", strings.ToUpper(q.Get("X-Amz-Signature")))
	u.RawQuery = q.Encode()
	w = serve(p, httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
	assert.NotEqual(t, 200, w.Code, "an upper-case SigV4 signature is another signature (refused), not another count")
}
