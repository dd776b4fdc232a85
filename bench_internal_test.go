package proxy

// Micro benchmarks of the per-request steps of the proxy that the black-box
// benchmarks (bench_test.go) time together. The aws-chunked decoder has its
// own: BenchmarkChunkedDecode in internal/awschunked; parsing and verifying a
// signature are timed in internal/sigv4.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/osproxy/proxy/internal/sigv4"
)

const (
	benchKeyID  = "bench-client-key"
	benchSecret = "bench-client-secret"
)

var benchNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// benchSignedGET returns a GET signed in the Authorization header as an SDK
// signs it, with the headers an SDK sends.
func benchSignedGET(tb testing.TB) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://proxy.test/bench/some/object.bin", nil)
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.0 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/s3#1.0")
	r.Header.Set("Amz-Sdk-Invocation-Id", "5b8f6b7e-3c1a-4e0e-9a51-0b2b0f0c2d3e")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	r.Header.Set("Accept-Encoding", "identity")
	r.Header.Set("X-Amz-Content-Sha256", sigv4.EmptySHA256)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret},
		r, sigv4.EmptySHA256, "s3", "us-east-1", benchNow)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func benchProxy(tb testing.TB) *Proxy {
	tb.Helper()
	p, err := New(
		WithBuckets(Bucket{Name: "bench", Endpoint: Endpoint{Host: "s3.bench.test", Region: "eu-de"},
			Credentials: Credentials{AccessKeyID: "upstream-key", SecretAccessKey: "upstream-secret"}}),
		WithClientKeys(map[string]string{benchKeyID: benchSecret}),
		WithClock(func() time.Time { return benchNow }),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// BenchmarkSigningKeyHit looks up a cached signing key (a SHA-256 of the
// secret, a ttlcache Get).
func BenchmarkSigningKeyHit(b *testing.B) {
	k := newSigningKeys()
	k.signingKey(benchSecret, "20261128", "us-east-1", "s3")
	b.ReportAllocs()
	for b.Loop() {
		k.signingKey(benchSecret, "20261128", "us-east-1", "s3")
	}
}

// BenchmarkAuthenticate runs the whole client authentication of a signed GET:
// parse, secret lookup, clock, signed headers, signing key, verification.
func BenchmarkAuthenticate(b *testing.B) {
	p := benchProxy(b)
	r := benchSignedGET(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.authenticate(r, &s3Request{bucket: "bucket", key: "k"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildUpstream builds and signs the upstream request of a verified
// GET: the header filter and copy, the upstream URL and the SigV4 signature.
func BenchmarkBuildUpstream(b *testing.B) {
	p := benchProxy(b)
	r := benchSignedGET(b)
	req, err := parseRequest(r, p.cfg)
	if err != nil {
		b.Fatal(err)
	}
	id, err := p.authenticate(r, &req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := openBody(r, &id)
	if err != nil {
		b.Fatal(err)
	}
	t, err := p.resolver.resolve(r.Context(), req.bucket)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.buildUpstream(r, req, &id, &body, t); err != nil {
			b.Fatal(err)
		}
	}
}
