package otelproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/otelproxy"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkObserver is the cost of otelproxy on a GET of 1 KiB, in process
// (ServeHTTP, an upstream answering from memory), as the library's
// BenchmarkInProcess measures the proxy: without an observer; with otelproxy
// on OpenTelemetry's no-op providers; with the SDK, every span sampled
// (exported in batches to nowhere) and metrics aggregated; and with the SDK
// sampling nothing, as a deployment that samples a fraction sees most
// requests. observer-empty is the library's own part: an Observer whose
// Step and Cache do nothing.
func BenchmarkObserver(b *testing.B) {
	discard := sdktrace.NewBatchSpanProcessor(discardExporter{})
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard), sdktrace.WithSampler(sdktrace.NeverSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = sampled.Shutdown(context.Background())
		_ = unsampled.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	tc := otelproxy.WithPropagators(propagation.TraceContext{})
	for _, bc := range []struct {
		name string
		obs  *proxy.Observer
	}{
		{"none", nil},
		// The library's own part: an observer that does nothing.
		{"observer-empty", &proxy.Observer{
			Step: func(ctx context.Context, _ proxy.Step) (context.Context, func(proxy.StepEnd)) {
				return ctx, func(proxy.StepEnd) {}
			},
			Cache: func(string, bool) {},
		}},
		{"otel-noop", ptr(otelproxy.Observer(otelproxy.WithTracerProvider(tracenoop.NewTracerProvider()),
			otelproxy.WithMeterProvider(metricnoop.NewMeterProvider()), tc))},
		{"otel-sdk-sampled", ptr(otelproxy.Observer(otelproxy.WithTracerProvider(sampled), otelproxy.WithMeterProvider(mp), tc))},
		{"otel-sdk-unsampled", ptr(otelproxy.Observer(otelproxy.WithTracerProvider(unsampled), otelproxy.WithMeterProvider(mp), tc))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			up := cannedUpstream{body: bytes.Repeat([]byte("o"), 1024)}
			opts := []proxy.Option{
				proxy.WithBuckets(proxy.Bucket{Name: "bench",
					Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: 9, Scheme: "http", PathStyle: true},
					Credentials: proxy.Credentials{AccessKeyID: upKey, SecretAccessKey: upSecret}}),
				proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
				proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil }),
				proxy.WithTransport(up),
			}
			if bc.obs != nil {
				opts = append(opts, proxy.WithObserver(*bc.obs))
			}
			p, err := proxy.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			r := httptest.NewRequest(http.MethodGet, "http://proxy.test/bench/object", nil)
			r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			sum := sha256.Sum256(nil)
			hash := hex.EncodeToString(sum[:])
			r.Header.Set("X-Amz-Content-Sha256", hash)
			signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
			if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: clientSecret},
				r, hash, "s3", "us-east-1", time.Now()); err != nil {
				b.Fatal(err)
			}
			w := &recorder{}
			p.ServeHTTP(w, r)
			if w.status != http.StatusOK || w.n != 1024 {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
			b.ReportAllocs()
			b.SetBytes(1024)
			for b.Loop() {
				w.reset()
				p.ServeHTTP(w, r)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// cannedUpstream answers every request with 200 and body.
type cannedUpstream struct{ body []byte }

func (u cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Length": {strconv.Itoa(len(u.body))}, "X-Amz-Request-Id": {"ORIGIN"}},
		ContentLength: int64(len(u.body)), Body: io.NopCloser(bytes.NewReader(u.body)), Request: r,
	}, nil
}

// recorder is a ResponseWriter that keeps the status and the byte count.
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
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

func (w *recorder) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}
