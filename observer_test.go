package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osproxy/proxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObserver(t *testing.T) {
	up := newFakeUpstream(t)
	var mu sync.Mutex
	var infos []proxy.RequestInfo
	cache := map[string]int{}
	o := proxy.Observer{
		Request: func(i proxy.RequestInfo) { mu.Lock(); infos = append(infos, i); mu.Unlock() },
		Cache: func(name string, hit bool) {
			mu.Lock()
			defer mu.Unlock()
			if hit {
				cache[name+" hit"]++
			} else {
				cache[name+" miss"]++
			}
		},
	}
	p := newProxy(t, up, proxy.WithObserver(o),
		proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) { return true, nil }))
	srv := httptest.NewServer(p)
	defer srv.Close()

	done := 0
	do := func(method, path, body string) {
		r, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		clientSign(t, r, sha256Hex([]byte(body)))
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		// The observer runs once the response is written, which the client
		// may see first: wait for it, so that infos are in request order.
		done++
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(infos) == done }, 5*time.Second, time.Millisecond)
	}
	do(http.MethodPut, "/bucket/k", "twelve bytes")
	do(http.MethodGet, "/bucket/k", "")
	do(http.MethodGet, "/bucket?list-type=2&prefix=a", "")
	do(http.MethodGet, "/nosuchbucket/k", "")
	do(http.MethodPost, "/bucket/k?uploads", "")

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(infos) == 5 }, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		op     string
		bucket string
		status int
		code   string
	}{
		{"PutObject", "bucket", 200, ""},
		{"GetObject", "bucket", 200, ""},
		{"ListObjectsV2", "bucket", 200, ""},
		{"GetObject", "nosuchbucket", 404, "NoSuchBucket"},
		{"CreateMultipartUpload", "bucket", 200, ""},
	}
	for i, w := range want {
		got := infos[i]
		assert.Equal(t, w.op, got.Operation, i)
		assert.Equal(t, w.bucket, got.Bucket, i)
		assert.Equal(t, w.status, got.Status, i)
		assert.Equal(t, w.code, got.Code, i)
		assert.NotEmpty(t, got.RequestID)
		assert.Positive(t, got.Duration)
	}
	assert.Equal(t, int64(12), infos[0].BytesIn)
	assert.Equal(t, int64(2), infos[1].BytesOut, `the fake upstream answers "ok"`)
	assert.Positive(t, infos[1].Upstream)
	assert.Zero(t, infos[3].Upstream, "not forwarded")
	assert.Equal(t, unitKey, infos[1].AccessKeyID)
	assert.NotEmpty(t, infos[1].RemoteAddr)
	assert.Equal(t, "UPSTREAM-ID", infos[1].UpstreamRequestID)
	assert.Empty(t, infos[3].UpstreamRequestID)
	assert.Equal(t, 2, cache["authorization miss"], "bucket and nosuchbucket")
	assert.Equal(t, 3, cache["authorization hit"])
}
