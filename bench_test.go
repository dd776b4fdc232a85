package proxy_test

// Benchmarks of the whole proxy over real loopback HTTP, each against the same
// exchange through Go's bare httputil.ReverseProxy (the floor): client →
// proxy → origin, three httptest servers and clients in one process. Client
// requests are signed once, outside the timed loop, at the proxy's pinned
// clock (fixedNow), so the loop measures the proxy, not the client's signer.
//
//	go test -run '^$' -bench . -benchmem -count 5 . | go -C bench run ./ratios
//
// prints every result as a ratio to its bare baseline. BenchmarkInProcess
// repeats the GET comparison without sockets (a canned upstream, a
// ResponseRecorder): the proxy's own cost, free of the network's noise.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

const (
	benchSmall     = 1 << 10  // GET body
	benchLarge     = 1 << 20  // PUT body
	benchChunk     = 64 << 10 // aws-chunked chunk size
	benchAPIKey    = "bench-ibm-api-key"
	benchBucket    = "bench"
	benchIAMBucket = "bench-iam"
)

// benchOrigin is a minimal S3 origin: GET answers benchSmall bytes, PUT reads
// the body to its end and answers 200. With check set, it verifies the next
// request's upstream signature (checkUpstreamSignature) and records the result.
type benchOrigin struct {
	srv     *httptest.Server
	small   []byte
	check   atomic.Bool
	checked atomic.Pointer[string] // "" when the checked request was right
}

func newBenchOrigin(tb testing.TB) *benchOrigin {
	tb.Helper()
	o := &benchOrigin{small: bytes.Repeat([]byte("o"), benchSmall)}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	tb.Cleanup(o.srv.Close)
	return o
}

func (o *benchOrigin) serve(w http.ResponseWriter, r *http.Request) {
	if o.check.CompareAndSwap(true, false) {
		body, err := io.ReadAll(r.Body)
		msg := ""
		if err != nil {
			msg = "origin: reading the body: " + err.Error()
		} else if ok, why := checkUpstreamSignature(r, body); !ok {
			msg = "origin: upstream signature: " + why
		}
		o.checked.Store(&msg)
	}
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Length", strconv.Itoa(len(o.small)))
		w.Header().Set("X-Amz-Request-Id", "ORIGIN")
		_, _ = w.Write(o.small)
	case http.MethodPut:
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Amz-Request-Id", "ORIGIN")
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (o *benchOrigin) port() int { return o.srv.Listener.Addr().(*net.TCPAddr).Port }

// benchTransport is an upstream transport like the proxy's default one, for
// the bare proxy: the same pool sizes, no compression.
func benchTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// newBenchClient returns a keep-alive client whose idle connections are closed
// when the benchmark ends (the leak check in TestMain would see them).
func newBenchClient(tb testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// newBareServer serves Go's httputil.ReverseProxy doing nothing but forward to
// the origin.
func newBareServer(tb testing.TB, o *benchOrigin) *httptest.Server {
	tb.Helper()
	target, err := url.Parse(o.srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	tr := benchTransport()
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	}
	srv := httptest.NewServer(rp)
	tb.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return srv
}

// newBenchProxy serves the full proxy in front of the origin: the static HMAC
// bucket benchBucket and the IAM bucket benchIAMBucket, client signatures
// verified (WithClientKeys), a cached authorizer, the default transport and the
// clock pinned at fixedNow.
func newBenchProxy(tb testing.TB, o *benchOrigin, opts ...proxy.Option) *httptest.Server {
	tb.Helper()
	ep := proxy.Endpoint{Host: "127.0.0.1", Port: o.port(), Scheme: "http", Region: "us-east-1", PathStyle: true}
	iam := testkit.NewIAM(tb, func() time.Time { return fixedNow }, benchAPIKey) // one-hour tokens
	base := []proxy.Option{
		proxy.WithBuckets(
			proxy.Bucket{Name: benchBucket, Endpoint: ep,
				Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}},
			proxy.Bucket{Name: benchIAMBucket, Endpoint: ep, Credentials: proxy.Credentials{APIKey: benchAPIKey}},
		),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil }),
		proxy.WithIAMEndpoint(iam.URL),
		proxy.WithClock(func() time.Time { return fixedNow }),
	}
	p, err := proxy.New(append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(p)
	tb.Cleanup(func() { srv.Close(); _ = p.Close() })
	return srv
}

// benchSigner signs as an AWS SDK does for S3.
var benchSigner = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })

var benchClientCreds = aws.Credentials{AccessKeyID: unitKey, SecretAccessKey: unitSecret}

// benchSign signs a client request at fixedNow with the client keys.
func benchSign(tb testing.TB, r *http.Request, payloadHash string) {
	tb.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := benchSigner.SignHTTP(context.Background(), benchClientCreds, r, payloadHash, "s3", "us-east-1", fixedNow); err != nil {
		tb.Fatal(err)
	}
}

func benchRequest(tb testing.TB, method, u string, body []byte) *http.Request {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	r.GetBody = nil
	return r
}

// benchRandom returns n random bytes.
func benchRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// benchDo sends r (with a fresh reader over body, when not nil) and reads the
// answer to its end; anything but 200 fails the benchmark.
func benchDo(tb testing.TB, c *http.Client, r *http.Request, body []byte) {
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := c.Do(r)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: status %d", r.Method, r.URL.Path, resp.StatusCode)
	}
}

// benchLoop checks one request end to end (status, and the upstream
// signature at the origin), then times the same request in a loop.
func benchLoop(b *testing.B, o *benchOrigin, c *http.Client, r *http.Request, body []byte) {
	b.Helper()
	n := int64(len(body))
	if body == nil {
		n = benchSmall
	}
	benchLoopPayload(b, o, c, r, body, n)
}

// benchLoopPayload is benchLoop for a body that carries payload bytes (an
// aws-chunked body is longer than its payload).
func benchLoopPayload(b *testing.B, o *benchOrigin, c *http.Client, r *http.Request, body []byte, payload int64) {
	b.Helper()
	o.check.Store(true)
	benchDo(b, c, r, body)
	if msg := o.checked.Load(); msg == nil || *msg != "" {
		b.Fatalf("the origin did not get a correct request: %v", msg)
	}
	b.ReportAllocs()
	b.SetBytes(payload)
	for b.Loop() {
		benchDo(b, c, r, body)
	}
}

// BenchmarkBareReverseProxy is the floor: httputil.ReverseProxy forwarding to
// the origin, nothing else. It gets the same signed client requests as the
// proxy, so that both servers parse the same headers.
func BenchmarkBareReverseProxy(b *testing.B) {
	b.Run("GET-1KiB", func(b *testing.B) {
		o := newBenchOrigin(b)
		srv := newBareServer(b, o)
		c := newBenchClient(b)
		r := benchRequest(b, http.MethodGet, srv.URL+"/"+benchBucket+"/object", nil)
		benchSign(b, r, sha256Hex(nil)) // the same request as the proxy's; the bare proxy forwards it as is
		benchDo(b, c, r, nil)
		b.ReportAllocs()
		b.SetBytes(benchSmall)
		for b.Loop() {
			benchDo(b, c, r, nil)
		}
	})
	b.Run("PUT-1MiB", func(b *testing.B) {
		o := newBenchOrigin(b)
		srv := newBareServer(b, o)
		c := newBenchClient(b)
		body := benchRandom(benchLarge)
		r := benchRequest(b, http.MethodPut, srv.URL+"/"+benchBucket+"/object", body)
		benchSign(b, r, sha256Hex(body))
		benchDo(b, c, r, body)
		b.ReportAllocs()
		b.SetBytes(benchLarge)
		for b.Loop() {
			benchDo(b, c, r, body)
		}
	})
}

// BenchmarkProxyGET is the full path of a 1 KiB GET signed in the
// Authorization header: verify SigV4, authorize (cached), re-sign, forward.
func BenchmarkProxyGET(b *testing.B) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o)
	r := benchRequest(b, http.MethodGet, srv.URL+"/"+benchBucket+"/object", nil)
	benchSign(b, r, sha256Hex(nil))
	benchLoop(b, o, newBenchClient(b), r, nil)
}

// BenchmarkProxyRequestAuthzGET is BenchmarkProxyGET with a request-level
// authorizer (WithRequestAuthorizer) whose per-bucket rule is cached: its
// cost is the action mapping and one cache lookup per request.
func BenchmarkProxyRequestAuthzGET(b *testing.B) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o, proxy.WithRequestAuthorizer(func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
		return proxy.Decision{Allow: r.Bucket == benchBucket, Scope: proxy.ScopeBucket}, nil
	}))
	r := benchRequest(b, http.MethodGet, srv.URL+"/"+benchBucket+"/object", nil)
	benchSign(b, r, sha256Hex(nil))
	benchLoop(b, o, newBenchClient(b), r, nil)
}

// BenchmarkProxyPresignedGET is BenchmarkProxyGET with a presigned URL.
func BenchmarkProxyPresignedGET(b *testing.B) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o)
	r := benchRequest(b, http.MethodGet, srv.URL+"/"+benchBucket+"/object", nil)
	q := r.URL.Query()
	q.Set("X-Amz-Expires", "3600")
	r.URL.RawQuery = q.Encode()
	signed, _, err := benchSigner.PresignHTTP(context.Background(), benchClientCreds, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", fixedNow)
	if err != nil {
		b.Fatal(err)
	}
	benchLoop(b, o, newBenchClient(b), benchRequest(b, http.MethodGet, signed, nil), nil)
}

// BenchmarkProxyIAMGET is BenchmarkProxyGET for a bucket reached with an IBM
// Cloud IAM bearer token (cached after the first request).
func BenchmarkProxyIAMGET(b *testing.B) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o)
	r := benchRequest(b, http.MethodGet, srv.URL+"/"+benchIAMBucket+"/object", nil)
	benchSign(b, r, sha256Hex(nil))
	benchLoop(b, o, newBenchClient(b), r, nil)
}

// BenchmarkProxyPUT uploads 1 MiB signed with its hex SHA-256, which the proxy
// verifies as the body streams.
func BenchmarkProxyPUT(b *testing.B) { benchProxyPUT(b, sha256Hex) }

// BenchmarkProxyUpstreamCheckedPUT is BenchmarkProxyPUT with
// WithUpstreamPayloadCheck(true): the client's hash goes upstream and the
// proxy does not hash the body.
func BenchmarkProxyUpstreamCheckedPUT(b *testing.B) {
	benchProxyPUT(b, sha256Hex, proxy.WithUpstreamPayloadCheck(true))
}

// BenchmarkProxyUnsignedPUT uploads 1 MiB with UNSIGNED-PAYLOAD: the proxy's
// streaming cost without hashing.
func BenchmarkProxyUnsignedPUT(b *testing.B) {
	benchProxyPUT(b, func([]byte) string { return "UNSIGNED-PAYLOAD" })
}

// benchProxyPUT uploads 1 MiB through a proxy made with opts, signed with the
// payload hash payloadHash gives for the body.
func benchProxyPUT(b *testing.B, payloadHash func(body []byte) string, opts ...proxy.Option) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o, opts...)
	body := benchRandom(benchLarge)
	r := benchRequest(b, http.MethodPut, srv.URL+"/"+benchBucket+"/object", body)
	benchSign(b, r, payloadHash(body))
	benchLoop(b, o, newBenchClient(b), r, body)
}

// BenchmarkProxyChunkedPUT uploads 1 MiB as signed aws-chunked
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks): the proxy verifies 17
// chunk signatures and forwards the decoded body.
func BenchmarkProxyChunkedPUT(b *testing.B) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o)
	payload := benchRandom(benchLarge)
	r := benchRequest(b, http.MethodPut, srv.URL+"/"+benchBucket+"/object", nil)
	wire := benchSignChunked(b, r, payload, benchChunk)
	benchLoopPayload(b, o, newBenchClient(b), r, wire, int64(len(payload)))
}

// BenchmarkProxyTrailerPUT uploads 1 MiB as unsigned aws-chunked with a CRC32
// trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER, 64 KiB chunks), as aws-cli and
// the AWS SDKs send over https: the proxy checks the CRC32 and frames the body
// again for the upstream with the verified trailer.
func BenchmarkProxyTrailerPUT(b *testing.B) {
	o := newBenchOrigin(b)
	srv := newBenchProxy(b, o)
	payload := benchRandom(benchLarge)
	r := benchRequest(b, http.MethodPut, srv.URL+"/"+benchBucket+"/object", nil)
	var w bytes.Buffer
	for off := 0; off < len(payload); off += benchChunk {
		data := payload[off:min(off+benchChunk, len(payload))]
		fmt.Fprintf(&w, "%x\r\n%s\r\n", len(data), data)
	}
	crc := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload))
	fmt.Fprintf(&w, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", base64.StdEncoding.EncodeToString(crc))
	wire := w.Bytes()
	r.ContentLength = int64(len(wire))
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	benchSign(b, r, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	benchLoopPayload(b, o, newBenchClient(b), r, wire, int64(len(payload)))
}

// benchSignChunked signs r as an SDK signs a streaming upload and returns its
// aws-chunked body: chunk signatures from aws-sdk-go-v2's v4.StreamSigner,
// chained from the seed signature of the Authorization header.
func benchSignChunked(tb testing.TB, r *http.Request, payload []byte, chunk int) []byte {
	tb.Helper()
	const sigLen = len(";chunk-signature=") + 64
	n := 0
	for off := 0; off < len(payload); off += chunk {
		size := min(chunk, len(payload)-off)
		n += len(strconv.FormatInt(int64(size), 16)) + sigLen + 2 + size + 2
	}
	n += 1 + sigLen + 2 + 2 // the final chunk and the empty trailer
	r.ContentLength = int64(n)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	benchSign(tb, r, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	_, seedHex, ok := strings.Cut(r.Header.Get("Authorization"), "Signature=")
	seed, err := hex.DecodeString(seedHex)
	if !ok || err != nil {
		tb.Fatalf("no seed signature in %q", r.Header.Get("Authorization"))
	}
	ss := v4.NewStreamSigner(benchClientCreds, "s3", "us-east-1", seed)
	var w bytes.Buffer
	w.Grow(n)
	frame := func(data []byte) {
		sig, err := ss.GetSignature(context.Background(), nil, data, fixedNow)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&w, "%x;chunk-signature=%x\r\n", len(data), sig)
		w.Write(data)
		w.WriteString("\r\n")
	}
	for off := 0; off < len(payload); off += chunk {
		frame(payload[off:min(off+chunk, len(payload))])
	}
	frame(nil)
	if w.Len() != n {
		tb.Fatalf("aws-chunked body is %d bytes, computed %d", w.Len(), n)
	}
	return w.Bytes()
}

// BenchmarkInProcess compares the proxy and the bare reverse proxy without
// sockets: the client request goes straight to ServeHTTP, the upstream is a
// RoundTripper answering 1 KiB from memory. What remains is each handler's own
// work: for the proxy, parsing, SigV4 verification, the authorization cache,
// re-signing and the header rewrite.
func BenchmarkInProcess(b *testing.B) {
	up := benchCannedUpstream{body: bytes.Repeat([]byte("o"), benchSmall)}
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:9"}
	bare := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: up}
	// bare-pooled recycles its 32 KiB copy buffers as the proxy does: what is
	// left between it and proxy-GET is the proxy's own work.
	pooled := &httputil.ReverseProxy{Rewrite: bare.Rewrite, Transport: up, BufferPool: &benchBufferPool{}}
	p := inProcessProxy(b, up, proxy.Bucket{Name: benchBucket,
		Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: 9, Scheme: "http", PathStyle: true},
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}})
	signed := httptest.NewRequest(http.MethodGet, "http://proxy.test/"+benchBucket+"/object", nil)
	benchSign(b, signed, sha256Hex(nil))
	presign := httptest.NewRequest(http.MethodGet, "http://proxy.test/"+benchBucket+"/object?X-Amz-Expires=3600", nil)
	presignedURL, _, err := benchSigner.PresignHTTP(context.Background(), benchClientCreds, presign, "UNSIGNED-PAYLOAD", "s3", "us-east-1", fixedNow)
	if err != nil {
		b.Fatal(err)
	}
	presigned := httptest.NewRequest(http.MethodGet, presignedURL, nil)
	for _, bc := range []struct {
		name string
		h    http.Handler
		r    *http.Request
	}{{"bare", bare, signed}, {"bare-pooled", pooled, signed}, {"proxy-GET", p, signed}, {"proxy-presigned-GET", p, presigned}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &benchRecorder{}
			bc.h.ServeHTTP(w, bc.r)
			if w.status != http.StatusOK || w.n != benchSmall {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
			b.ReportAllocs()
			b.SetBytes(benchSmall)
			for b.Loop() {
				w.reset()
				bc.h.ServeHTTP(w, bc.r)
			}
		})
	}
}

// BenchmarkInProcessKeysInTurn is proxy-GET of BenchmarkInProcess over
// buckets of one region whose keys differ (the buckets of several instances),
// taken in turn: each set of keys keeps its derived signing key.
func BenchmarkInProcessKeysInTurn(b *testing.B) {
	up := benchCannedUpstream{body: bytes.Repeat([]byte("o"), benchSmall)}
	const n = 4
	var buckets []proxy.Bucket
	var reqs []*http.Request
	for i := range n {
		name := fmt.Sprintf("%s-%d", benchBucket, i)
		buckets = append(buckets, proxy.Bucket{Name: name,
			Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: 9, Scheme: "http", PathStyle: true},
			Credentials: proxy.Credentials{AccessKeyID: fmt.Sprintf("%s-%d", upstreamKey, i), SecretAccessKey: fmt.Sprintf("%s-%d", upstreamSecret, i)}})
		r := httptest.NewRequest(http.MethodGet, "http://proxy.test/"+name+"/object", nil)
		benchSign(b, r, sha256Hex(nil))
		reqs = append(reqs, r)
	}
	p := inProcessProxy(b, up, buckets...)
	w := &benchRecorder{}
	for _, r := range reqs {
		w.reset()
		p.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		p.ServeHTTP(w, reqs[i%n])
		i++
	}
}

// inProcessProxy is a proxy of buckets on the upstream up, verifying the
// client keys and allowing every token, closed at the benchmark's end.
func inProcessProxy(b *testing.B, up http.RoundTripper, buckets ...proxy.Bucket) *proxy.Proxy {
	p, err := proxy.New(
		proxy.WithBuckets(buckets...),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil }),
		proxy.WithTransport(up),
		proxy.WithClock(func() time.Time { return fixedNow }),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// benchBufferPool is an httputil.BufferPool of 32 KiB buffers.
type benchBufferPool struct{ p sync.Pool }

func (bp *benchBufferPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (bp *benchBufferPool) Put(b []byte) { bp.p.Put(&b) }

// benchCannedUpstream answers every request with 200 and body.
type benchCannedUpstream struct{ body []byte }

func (u benchCannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Length": {strconv.Itoa(len(u.body))}, "X-Amz-Request-Id": {"ORIGIN"}},
		ContentLength: int64(len(u.body)),
		Body:          io.NopCloser(bytes.NewReader(u.body)),
		Request:       r,
	}, nil
}

// benchRecorder is a ResponseWriter that keeps nothing but the status and the
// byte count, so that it allocates (almost) nothing itself.
type benchRecorder struct {
	h      http.Header
	status int
	n      int
}

func (w *benchRecorder) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *benchRecorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

func (w *benchRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

// Flush is a no-op: there is nothing buffered. (A server's ResponseWriter is a
// Flusher too.)
func (w *benchRecorder) Flush() {}

func (w *benchRecorder) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// BenchmarkSignUpstream signs one upstream request the way the proxy does:
// aws-sdk-go-v2's signer with DisableURIPathEscaping, on a request holding the
// headers the proxy forwards.
func BenchmarkSignUpstream(b *testing.B) {
	u := &url.URL{Scheme: "https", Host: "bench.s3.eu-de.cloud-object-storage.appdomain.cloud", Path: "/object", RawPath: "/object"}
	creds := aws.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		h.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		r := &http.Request{Method: http.MethodGet, URL: u, Header: h}
		if err := benchSigner.SignHTTP(context.Background(), creds, r, "UNSIGNED-PAYLOAD", "s3", "eu-de", fixedNow); err != nil {
			b.Fatal(err)
		}
	}
}
