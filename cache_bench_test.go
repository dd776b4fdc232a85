package proxy

import (
	"context"
	"testing"
)

// BenchmarkAuthCacheHit measures the cached authorization path of every
// request: digest the token, look it up, check its expiry.
func BenchmarkAuthCacheHit(b *testing.B) {
	cfg := defaultConfig()
	cfg.authorize = func(ctx context.Context, token, bucket string) (bool, error) { return true, nil }
	a := newAuthCache(cfg)
	ctx := context.Background()
	if ok, err := a.allowed(ctx, "some-client-token", "bucket"); !ok || err != nil {
		b.Fatal(ok, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := a.allowed(ctx, "some-client-token", "bucket"); !ok {
			b.Fatal("denied")
		}
	}
}

// BenchmarkResolveHookHit measures a cached bucket hook answer.
func BenchmarkResolveHookHit(b *testing.B) {
	cfg := defaultConfig()
	cfg.endpoint = func(ctx context.Context, bucket string) (Endpoint, error) { return Endpoint{Host: "s3.test"}, nil }
	cfg.credentials = func(ctx context.Context, bucket string) (Credentials, error) {
		return Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
	}
	r := newResolver(cfg, newUpstreamSigners())
	ctx := context.Background()
	if _, err := r.resolve(ctx, "bucket"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.resolve(ctx, "bucket"); err != nil {
			b.Fatal(err)
		}
	}
}
