package sigv4

// Micro benchmarks of reading and verifying a signature, one request's worth.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const benchSecret = "bench-client-secret"

// benchSignedGET returns a GET signed in the Authorization header as an SDK
// signs it, with the headers an SDK sends.
func benchSignedGET(tb testing.TB) *http.Request {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://proxy.test/bench/some/object.bin", nil)
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.0 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/s3#1.0")
	r.Header.Set("Amz-Sdk-Invocation-Id", "5b8f6b7e-3c1a-4e0e-9a51-0b2b0f0c2d3e")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	r.Header.Set("Accept-Encoding", "identity")
	r.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "bench-client-key", SecretAccessKey: benchSecret},
		r, EmptySHA256, "s3", "us-east-1", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkParseAuthHeader parses one SigV4 Authorization header.
func BenchmarkParseAuthHeader(b *testing.B) {
	v := benchSignedGET(b).Header.Get("Authorization")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignature verifies one header signature with a derived key:
// the canonical request, its hash and the HMAC over the string to sign.
func BenchmarkVerifySignature(b *testing.B) {
	r := benchSignedGET(b)
	sig, err := ParseHeader(r.Header.Get("Authorization"))
	if err != nil {
		b.Fatal(err)
	}
	key := DeriveKey(benchSecret, sig.Date, sig.Region, sig.Service)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(r, sig, EmptySHA256, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalRequests builds the canonical request(s) of a signed GET.
func BenchmarkCanonicalRequests(b *testing.B) {
	r := benchSignedGET(b)
	sig, err := ParseHeader(r.Header.Get("Authorization"))
	if err != nil {
		b.Fatal(err)
	}
	v := new(verifier)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.canonicalRequests(r, sig, EmptySHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveKey derives a signing key (four HMACs): what the cache saves.
func BenchmarkDeriveKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		DeriveKey(benchSecret, "20261128", "us-east-1", "s3")
	}
}
