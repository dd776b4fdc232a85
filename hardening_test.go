package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// retainedHeap runs attack n times and returns how much the live heap grew,
// measured after garbage collection, while keep holds the proxy.
func retainedHeap(t *testing.T, n int, attack func(i int)) int64 {
	t.Helper()
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	for i := range n {
		attack(i)
	}
	grew := heap() - before
	t.Logf("heap retained after %d requests: %.2f MiB", n, float64(grew)/mib)
	return grew
}

const mib = 1 << 20

// A client that knows an access key id but not its secret cannot make the
// proxy keep memory: neither with huge credential scopes nor with many valid
// ones whose signatures are wrong.
func TestForgedSignaturesRetainNothing(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	region := strings.Repeat("r", 1<<20)
	grew := retainedHeap(t, 300, func(i int) {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, "wrong-secret")
		a := r.Header.Get("Authorization")
		r.Header.Set("Authorization", strings.Replace(a, "/us-east-1/", fmt.Sprintf("/%d%s/", i, region), 1))
		w := serve(p, r)
		require.GreaterOrEqual(t, w.Code, 400)
		require.Less(t, w.Code, 500)
	})
	assert.Less(t, grew, int64(4*mib), "heap retained after 300 forged requests with 1 MiB regions")

	grew = retainedHeap(t, 300, func(i int) {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, "wrong-secret")
		a := r.Header.Get("Authorization")
		r.Header.Set("Authorization", strings.Replace(a, "/us-east-1/", fmt.Sprintf("/region-%03d/", i), 1))
		assert.Equal(t, "SignatureDoesNotMatch", s3Code(serve(p, r).Body.String()))
	})
	assert.Less(t, grew, int64(mib), "heap retained after 300 forged requests with valid regions")
	assert.Empty(t, up.requests())
}

// An authenticated tenant cannot make the caches keep its requests: the
// authorization cache and the bucket cache keep copies of bucket names, not
// slices of request lines, and keys longer than S3's 1,024 bytes are refused.
func TestCachesRetainNoRequest(t *testing.T) {
	up := newFakeUpstream(t)
	denyAll := tokenModeProxy(t, up, func(context.Context, string, string) (bool, error) { return false, nil })
	pad := strings.Repeat("p", 60<<10)
	bigKey := strings.Repeat("k", 1<<20)

	grew := retainedHeap(t, 100, func(i int) {
		w := tokenGet(t, denyAll, "tenant", fmt.Sprintf("/bkt-%06d/%s", i, bigKey))
		require.Equal(t, http.StatusBadRequest, w.Code, "refused before authorization")
	})
	assert.Less(t, grew, int64(4*mib), "1 MiB keys")

	grew = retainedHeap(t, 300, func(i int) {
		w := tokenGet(t, denyAll, "tenant", fmt.Sprintf("/bkt-%06d/k?pad=%s", i, pad))
		require.Equal(t, "AccessDenied", s3Code(w.Body.String()))
	})
	assert.Less(t, grew, int64(4*mib), "denied answers cached for 300 buckets with 60 KiB queries")

	hooked, err := proxy.New( // an upstream that records nothing
		proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return up.endpoint(), nil }),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
			return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
		}),
		proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil }),
		proxy.WithTransport(benchCannedUpstream{body: []byte("ok")}),
	)
	require.NoError(t, err)
	defer hooked.Close()
	grew = retainedHeap(t, 300, func(i int) {
		w := tokenGet(t, hooked, "tenant", fmt.Sprintf("/bkt-%06d/k?pad=%s", i, pad))
		require.Equal(t, 200, w.Code)
	})
	assert.Less(t, grew, int64(4*mib), "bucket hook answers cached for 300 buckets with 60 KiB queries")

	onlyBucket := tokenModeProxy(t, up, func(_ context.Context, _, bucket string) (bool, error) { return bucket == "bucket", nil })
	version := strings.Repeat("v", 60<<10)
	grew = retainedHeap(t, 300, func(i int) {
		r := httptest.NewRequest(http.MethodPut, "/bucket/k", nil)
		r.Header.Set("X-Amz-Copy-Source", fmt.Sprintf("/src-%06d/k?versionId=%s", i, version))
		clientSignAt(t, r, sha256Hex(nil), time.Now(), "tenant", "unused")
		require.Equal(t, "AccessDenied", s3Code(serve(onlyBucket, r).Body.String()))
	})
	assert.Less(t, grew, int64(4*mib), "copy sources")
}

// A request head past the bounds is refused before its signature is checked,
// with S3's error: the work done for it stays linear and small.
func TestRequestHeadBounds(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	// manyHeaders is a request signed with a wrong key, then given n more
	// x-amz-* headers and signed names.
	manyHeaders := func(n, signed int) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, "wrong-secret")
		for i := range n {
			r.Header.Set(fmt.Sprintf("X-Amz-%05d", i), "v")
		}
		names := make([]string, signed)
		for i := range names {
			names[i] = fmt.Sprintf("x-amz-%05d", i)
		}
		a := r.Header.Get("Authorization")
		r.Header.Set("Authorization", strings.Replace(a, "SignedHeaders=host;", "SignedHeaders=host;"+strings.Join(names, ";")+";", 1))
		return r
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		code string
	}{
		{"20,000 headers, 45,000 signed names", manyHeaders(20_000, 45_000), "RequestHeaderSectionTooLarge"},
		{"600 headers", manyHeaders(600, 0), "RequestHeaderSectionTooLarge"},
		{"600 signed names", manyHeaders(0, 600), "RequestHeaderSectionTooLarge"},
		{"100 KiB header", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("Cache-Control", strings.Repeat("c", 100<<10))
			return r
		}(), "RequestHeaderSectionTooLarge"},
		{"600 query parameters", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/?"+strings.Repeat("a=1&", 600), nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		}(), "RequestHeaderSectionTooLarge"},
		{"1,025-byte key", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/"+strings.Repeat("k", 1025), nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		}(), "KeyTooLongError"},
		{"129-byte access key id", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow, strings.Repeat("a", 129), "x")
			return r
		}(), "AuthorizationHeaderMalformed"},
		{"region with a slash-free odd byte", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/us east\x00/", 1))
			return r
		}(), "AuthorizationHeaderMalformed"},
	} {
		w := serve(p, c.r)
		assert.Equal(t, 400, w.Code, c.name)
		assert.Equal(t, c.code, s3Code(w.Body.String()), c.name)
	}
	assert.Empty(t, up.requests())

	ok := httptest.NewRequest(http.MethodGet, "/bucket/k", nil) // within the bounds, every header signed: verified and forwarded
	for i := range 400 {
		ok.Header.Set(fmt.Sprintf("X-Amz-Meta-%05d", i), "v")
	}
	clientSign(t, ok, sha256Hex(nil))
	w := serve(p, ok)
	assert.Equal(t, 200, w.Code, w.Body.String())
	assert.Len(t, up.requests(), 1)
}

// BenchmarkPreAuthWorstCase is the most work a client without a secret can
// make the proxy do for one request: a head at the bounds, every header an
// x-amz-* header, every one signed, a wrong signature. It reports the cost per
// KiB of request.
func BenchmarkPreAuthWorstCase(b *testing.B) {
	up := benchCannedUpstream{body: []byte("x")}
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: proxy.Endpoint{Host: "up.test"}, Credentials: proxy.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}}),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithTransport(up),
		proxy.WithClock(func() time.Time { return fixedNow }),
	)
	require.NoError(b, err)
	defer p.Close()
	r := httptest.NewRequest(http.MethodGet, "/bucket/k?"+strings.Repeat("q=v&", 100), nil)
	names := []string{"host", "x-amz-content-sha256", "x-amz-date"}
	value := strings.Repeat("v", 80)
	for i := range 480 {
		r.Header.Set(fmt.Sprintf("X-Amz-Meta-%05d", i), value)
		names = append(names, fmt.Sprintf("x-amz-meta-%05d", i))
	}
	r.Header.Set("X-Amz-Date", fixedNow.Format("20060102T150405Z"))
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex(nil))
	signed := strings.Join(sortedCopy(names), ";")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+unitKey+"/20261128/us-east-1/s3/aws4_request, SignedHeaders="+signed+", Signature="+strings.Repeat("0", 64))
	size := len(r.URL.RawQuery) + len(r.URL.Path)
	for name, vs := range r.Header {
		size += len(name) + len(vs[0])
	}
	w := serve(p, r)
	require.Equal(b, "SignatureDoesNotMatch", s3Code(w.Body.String()))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N)/(float64(size)/1024), "µs/KiB")
	b.ReportMetric(float64(size)/1024, "KiB/req")
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Only S3's methods are served; anything else is 405 and never reaches the
// upstream, however well it is signed (an upstream that echoes TRACE would
// hand the client the upstream's credentials).
func TestOnlyS3Methods(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	for _, m := range []string{"TRACE", "TRACK", "PROPFIND", "CONNECT", "PATCH", "get", "Put", "options"} {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		r.Method = m
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		assert.Equal(t, "MethodNotAllowed", s3Code(w.Body.String()), m)
	}
	assert.Empty(t, up.requests())
}

// A copy source is one value, authorized wherever it is given, and parsed as
// S3 parses it: only "?versionId=" starts its query.
func TestCopySourceIsOneAuthorizedValue(t *testing.T) {
	up := newFakeUpstream(t)
	b := func(name string) proxy.Bucket {
		return proxy.Bucket{Name: name, Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}
	}
	p, err := proxy.New(
		proxy.WithBuckets(b("a-bucket"), b("b-bucket")),
		proxy.WithAuthorizer(func(_ context.Context, _, bucket string) (bool, error) { return bucket == "a-bucket", nil }),
		proxy.WithTransport(up.transport()),
	)
	require.NoError(t, err)
	defer p.Close()
	put := func(target string, sources ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPut, target, nil)
		for _, s := range sources {
			r.Header.Add("X-Amz-Copy-Source", s)
		}
		clientSignAt(t, r, sha256Hex(nil), time.Now(), "tenant", "unused")
		return serve(p, r)
	}
	for _, c := range []struct {
		name    string
		target  string
		sources []string
		status  int
		code    string
	}{
		{"two headers", "/a-bucket/dst", []string{"a-bucket/x", "b-bucket/secret.txt"}, 400, "InvalidArgument"},
		{"header and query", "/a-bucket/dst?x-amz-copy-source=a-bucket%2Fy", []string{"a-bucket/x"}, 400, "InvalidArgument"},
		{"query only, denied bucket", "/a-bucket/dst?x-amz-copy-source=b-bucket%2Fsecret.txt", nil, 403, "AccessDenied"},
		{"query in upper case, denied bucket", "/a-bucket/dst?X-AMZ-COPY-SOURCE=b-bucket%2Fsecret.txt", nil, 403, "AccessDenied"},
		{"literal ? then dot segments", "/a-bucket/dst", []string{"a-bucket/x?/../../b-bucket/secret.txt"}, 400, "InvalidArgument"},
		{"encoded ? then dot segments", "/a-bucket/dst", []string{"a-bucket/x%3F/../../b-bucket/secret.txt"}, 400, "InvalidArgument"},
		{"version id with a slash", "/a-bucket/dst", []string{"a-bucket/x?versionId=1/../../b-bucket/secret.txt"}, 400, "InvalidArgument"},
	} {
		w := put(c.target, c.sources...)
		assert.Equal(t, c.status, w.Code, c.name)
		assert.Equal(t, c.code, s3Code(w.Body.String()), c.name)
	}
	assert.Empty(t, up.requests(), "nothing forwarded")

	for _, c := range []struct{ target, source string }{
		{"/a-bucket/dst", "a-bucket/x?versionId=3HL4kqtJlcpXroDTDmJ"},
		{"/a-bucket/dst", "/a-bucket/a%3Fb"},
		{"/a-bucket/dst?x-amz-copy-source=a-bucket%2Fy", ""},
	} {
		var w *httptest.ResponseRecorder
		if c.source == "" {
			w = put(c.target)
		} else {
			w = put(c.target, c.source)
		}
		assert.Equal(t, 200, w.Code, c.source)
	}
}

// An upstream's error body reaches the client without the diagnostics of the
// upstream signature: they describe the proxy's request, with the upstream's
// access key id, not the client's.
func TestUpstreamErrorBodiesScrubbed(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	const upstreamError = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><AWSAccessKeyId>` + upstreamKey + `</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20261128T120000Z</StringToSign><SignatureProvided>abc</SignatureProvided><StringToSignBytes>41 57</StringToSignBytes><CanonicalRequest>GET
/k</CanonicalRequest><CanonicalRequestBytes>47 45</CanonicalRequestBytes><Resource>/bucket/k</Resource><RequestId>UP-1</RequestId><HostId>host-id</HostId></Error>`
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "UP-1")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, upstreamError)
	}
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	body := w.Body.String()
	assert.Equal(t, http.StatusForbidden, w.Code)
	for _, gone := range []string{upstreamKey, "AWSAccessKeyId", "StringToSign", "SignatureProvided", "CanonicalRequest"} {
		assert.NotContains(t, body, gone)
	}
	for _, kept := range []string{"<Code>SignatureDoesNotMatch</Code>", "<Message>The request signature", "<Resource>/bucket/k</Resource>", "<RequestId>UP-1</RequestId>", "<HostId>host-id</HostId>"} {
		assert.Contains(t, body, kept)
	}
	assert.Equal(t, fmt.Sprint(len(body)), w.Header().Get("Content-Length"))
	// Nothing else changes: the upstream's bytes, but for the cut elements.
	assert.Equal(t, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><Resource>/bucket/k</Resource><RequestId>UP-1</RequestId><HostId>host-id</HostId></Error>`, body)

	// An error without diagnostics passes byte for byte: its entities and
	// spacing as the upstream wrote them (radosgw writes &apos;).
	const plain = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>InvalidRequest</Code>\n  <Message>This copy request is illegal because it is trying to copy an object to itself without changing the object&apos;s metadata.</Message>\n  <RequestId>tx1</RequestId>\n</Error>"
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, plain)
	}
	r = httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSign(t, r, sha256Hex(nil))
	w = serve(p, r)
	assert.Equal(t, plain, w.Body.String())
	assert.Equal(t, fmt.Sprint(len(plain)), w.Header().Get("Content-Length"))

	// An answer without a Content-Type gains none (radosgw's
	// GetBucketLocation): the server must not sniff one from the body.
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint>eu-de</LocationConstraint>`)
	}
	front := httptest.NewServer(p) // net/http's server sniffs; a recorder would not
	defer front.Close()
	r, err := http.NewRequest(http.MethodGet, front.URL+"/bucket/k", nil)
	require.NoError(t, err)
	clientSign(t, r, sha256Hex(nil))
	resp, err := front.Client().Do(r)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Values("Content-Type"))

	// Not an XML error: as it is.
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "upstream busy")
	}
	r = httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSign(t, r, sha256Hex(nil))
	w = serve(p, r)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "upstream busy", w.Body.String())
}

// Hook calls are bounded: past WithHookConcurrency a request is refused with
// 503 SlowDown at once, and a call whose clients have all gone is cancelled,
// so that clients hanging up leave neither goroutines nor calls behind.
func TestHookCallsBounded(t *testing.T) {
	up := newFakeUpstream(t)
	var inFlight, maxInFlight atomic.Int32
	var allow atomic.Bool
	authz := func(ctx context.Context, token, bucket string) (bool, error) {
		if allow.Load() {
			return true, nil
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done()
		return false, ctx.Err()
	}
	p, err := proxy.New(
		proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return up.endpoint(), nil }),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
			return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
		}),
		proxy.WithAuthorizer(authz),
		proxy.WithHookConcurrency(64),
		proxy.WithTransport(up.transport()),
	)
	require.NoError(t, err)
	defer p.Close()

	goroutines := runtime.NumGoroutine()
	const clients = 2000
	ctx, hangUp := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var slowDown, gaveUp atomic.Int32
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/bkt-%06d/k", i), nil)
			clientSignAt(t, r, sha256Hex(nil), time.Now(), "tenant", "unused")
			w := serve(p, r.WithContext(ctx))
			switch s3Code(w.Body.String()) {
			case "SlowDown":
				slowDown.Add(1)
				assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			case "ServiceUnavailable":
				gaveUp.Add(1)
			default:
				t.Errorf("unexpected answer %d %s", w.Code, w.Body.String())
			}
		}()
	}
	require.Eventually(t, func() bool { return slowDown.Load() >= clients-64 }, 10*time.Second, 5*time.Millisecond,
		"all but 64 requests are refused at once")
	assert.LessOrEqual(t, maxInFlight.Load(), int32(64))
	hangUp()
	wg.Wait()
	assert.Equal(t, int32(64), gaveUp.Load())
	require.Eventually(t, func() bool { return inFlight.Load() == 0 }, 5*time.Second, 5*time.Millisecond,
		"the calls of clients that left are cancelled")
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+5 }, 5*time.Second, 10*time.Millisecond,
		"goroutines left: %d, before: %d", runtime.NumGoroutine(), goroutines)

	// The slots are free again.
	allow.Store(true)
	assert.Equal(t, 200, tokenGet(t, p, "tenant", "/bkt-again/k").Code)
}

// Presign parameters are stripped from the upstream query in any case, and
// logs cut what a client controls.
func TestPresignParamsStrippedAndLogsBounded(t *testing.T) {
	up := newFakeUpstream(t)
	var logs bytes.Buffer
	p := newProxy(t, up, proxy.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	u := presign(t, "GET", "http://example.com/bucket/k?x-amz-security-token=client-token&x-amz-signature=x&X-AMZ-EXPIRES=1&keep=1", fixedNow, time.Hour)
	w := serve(p, httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
	require.Equal(t, 200, w.Code, w.Body.String())
	got := up.last(t).RequestURI
	assert.Equal(t, "/k?keep=1", got)

	long := "/Not_A_Bucket/" + strings.Repeat("l", 900)
	logs.Reset()
	serve(p, httptest.NewRequest(http.MethodGet, long, nil))
	assert.NotContains(t, logs.String(), strings.Repeat("l", 300))
	assert.Contains(t, logs.String(), "request failed")
}
