package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP receiver (protobuf, gzip or not), as a
// collector has it: it decodes what it receives and keeps it.
type otlpReceiver struct {
	*httptest.Server
	t *testing.T

	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics []*metricspb.Metric // of the last export, which holds the totals (cumulative)
	headers []http.Header
	service []string // service.name of each export's resources
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		var in colltrace.ExportTraceServiceRequest
		if !r.decode(w, req, &in) {
			return
		}
		r.mu.Lock()
		for _, rs := range in.ResourceSpans {
			r.service = append(r.service, attr(rs.Resource.GetAttributes(), "service.name"))
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		r.answer(w, &colltrace.ExportTraceServiceResponse{})
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		var in collmetrics.ExportMetricsServiceRequest
		if !r.decode(w, req, &in) {
			return
		}
		var ms []*metricspb.Metric
		for _, rm := range in.ResourceMetrics {
			r.mu.Lock()
			r.service = append(r.service, attr(rm.Resource.GetAttributes(), "service.name"))
			r.mu.Unlock()
			for _, sm := range rm.ScopeMetrics {
				ms = append(ms, sm.Metrics...)
			}
		}
		r.mu.Lock()
		r.metrics = ms
		r.mu.Unlock()
		r.answer(w, &collmetrics.ExportMetricsServiceResponse{})
	})
	r.Server = httptest.NewServer(mux)
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) decode(w http.ResponseWriter, req *http.Request, m proto.Message) bool {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.t.Errorf("OTLP receiver: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err == nil {
		err = proto.Unmarshal(b, m)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		err = errors.Join(err, fmt.Errorf("content type %q", ct))
	}
	if err != nil {
		r.t.Errorf("OTLP receiver, %s: %v", req.URL.Path, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	return true
}

func (r *otlpReceiver) answer(w http.ResponseWriter, m proto.Message) {
	b, _ := proto.Marshal(m)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			switch v := kv.Value.Value.(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			case *commonpb.AnyValue_IntValue:
				return fmt.Sprint(v.IntValue)
			case *commonpb.AnyValue_BoolValue:
				return fmt.Sprint(v.BoolValue)
			}
			return kv.Value.String()
		}
	}
	return ""
}

// traceparentTransport sends a client's trace context, as an instrumented
// client does (outside its signature).
type traceparentTransport struct{ traceparent string }

func (t traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Traceparent", t.traceparent)
	return http.DefaultTransport.RoundTrip(r)
}

// TestTelemetryOTLP runs the server with the telemetry section pointing at
// an OTLP/HTTP receiver: after a few requests, and on shutdown at the latest,
// the receiver has the proxy's spans (the tree of each request, S3 and HTTP
// attributes, the client's trace continued) and its metrics, with the
// configured headers and service name.
func TestTelemetryOTLP(t *testing.T) {
	rcv := newOTLPReceiver(t)
	be := newBackend(t, "alpha")
	t.Setenv("TEST_OTLP_TOKEN", "the-token")
	cfg, _, err := loadTest(t, fmt.Sprintf(`
clients:
  keys:
    - {access_key_id: alice, secret_access_key: alice-secret}
    - {access_key_id: bob, secret_access_key: bob-secret}
buckets:
  - {name: alpha, host: 127.0.0.1, port: %d, scheme: http, path_style: true, access_key_id: be, secret_access_key: be-secret, allow: [alice]}
telemetry:
  otlp_endpoint: %s
  headers: {x-otlp-token: "${TEST_OTLP_TOKEN}"}
  service_name: osproxy-test
  metric_interval: 100ms
`, be.port(), rcv.URL), "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := start(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	t.Cleanup(stop)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	hc := &http.Client{Transport: traceparentTransport{"00-" + traceID + "-00f067aa0ba902b7-01"}}
	alice := newS3Client(s.URL(), "alice", "alice-secret", hc)
	if err := put(t, alice, "alpha", "dir/object", []byte("twelve bytes")); err != nil {
		t.Fatal(err)
	}
	if b, err := get(t, alice, "alpha", "dir/object"); err != nil || string(b) != "twelve bytes" {
		t.Fatalf("GET: %q, %v", b, err)
	}
	if _, err := get(t, alice, "alpha", "missing"); err == nil {
		t.Fatal("GET of a missing key succeeded")
	}
	bob := newS3Client(s.URL(), "bob", "bob-secret", nil)
	if _, err := bob.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("alpha"), Key: aws.String("dir/object")}); err == nil {
		t.Fatal("bob, not allowed, got the object")
	}

	// The metrics, every 100 ms: the four requests are counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rcv.mu.Lock()
		n := histogramCount(rcv.metrics, "http.server.request.duration", nil)
		rcv.mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver counted %d requests in http.server.request.duration, want 4", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The spans, in batches: the last one on shutdown.
	stop()

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, h := range rcv.headers {
		if h.Get("X-Otlp-Token") != "the-token" {
			t.Errorf("an export without the configured header: %v", h)
			break
		}
	}
	for _, name := range rcv.service {
		if name != "osproxy-test" {
			t.Errorf("service.name %q, want osproxy-test", name)
		}
	}

	byID := map[string]*tracepb.Span{}
	for _, sp := range rcv.spans {
		byID[string(sp.SpanId)] = sp
	}
	var names []string
	for _, sp := range rcv.spans {
		line := sp.Name
		if p, ok := byID[string(sp.ParentSpanId)]; ok {
			line += " < " + p.Name
		}
		names = append(names, line)
	}
	slices.Sort(names)
	want := []string{
		"GET < S3.GetObject", "GET < S3.GetObject", // the upstream round trips
		"PUT < S3.PutObject",
		"S3.GetObject", "S3.GetObject", "S3.GetObject", "S3.PutObject",
		"authenticate < S3.GetObject", "authenticate < S3.GetObject", "authenticate < S3.GetObject", "authenticate < S3.PutObject",
		"hook authorization < S3.GetObject", // bob's: alice's answer is cached from her PUT
		"hook authorization < S3.PutObject",
	}
	if !slices.Equal(names, want) {
		t.Errorf("spans received:\n got  %q\n want %q", names, want)
	}
	for _, sp := range rcv.spans {
		a := func(k string) string { return attr(sp.Attributes, k) }
		switch {
		case sp.Name == "S3.PutObject":
			if got := fmt.Sprintf("%x", sp.TraceId); got != traceID || sp.Kind != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("PUT span: trace %s, kind %v: want the client's trace %s, server", got, sp.Kind, traceID)
			}
			for k, v := range map[string]string{"aws.s3.bucket": "alpha", "aws.s3.key": "dir/object", "rpc.system": "aws-api",
				"rpc.service": "S3", "rpc.method": "PutObject", "http.request.method": "PUT", "http.response.status_code": "200",
				"url.path": "/alpha/dir/object"} {
				if a(k) != v {
					t.Errorf("PUT span: %s = %q, want %q", k, a(k), v)
				}
			}
		case sp.Name == "S3.GetObject" && a("aws.s3.key") == "missing":
			// The span names the upstream's S3 code; the metrics its status (below).
			if a("error.type") != "NoSuchKey" || a("http.response.status_code") != "404" {
				t.Errorf("GET missing: error.type %q, status %q", a("error.type"), a("http.response.status_code"))
			}
		case sp.Name == "S3.GetObject" && a("error.type") == "AccessDenied":
			if a("http.response.status_code") != "403" || sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("bob's GET: status %q, span status %v", a("http.response.status_code"), sp.Status)
			}
		case sp.Name == "PUT":
			if sp.Kind != tracepb.Span_SPAN_KIND_CLIENT || !strings.HasPrefix(a("url.full"), fmt.Sprintf("http://127.0.0.1:%d/alpha/dir/object", be.port())) {
				t.Errorf("upstream PUT span: kind %v, url.full %q", sp.Kind, a("url.full"))
			}
		}
	}
	if n := histogramCount(rcv.metrics, "http.server.request.duration", map[string]string{"rpc.method": "PutObject", "http.response.status_code": "200"}); n != 1 {
		t.Errorf("http.server.request.duration{PutObject, 200}: count %d, want 1", n)
	}
	if n := histogramCount(rcv.metrics, "http.server.request.duration", map[string]string{"error.type": "AccessDenied"}); n != 1 {
		t.Errorf("http.server.request.duration{error.type=AccessDenied}: count %d, want 1", n)
	}
	if n := histogramCount(rcv.metrics, "http.server.request.duration", map[string]string{"error.type": "404", "http.response.status_code": "404"}); n != 1 {
		t.Errorf("http.server.request.duration{error.type=404}: count %d, want 1 (the upstream's code stays off the metrics)", n)
	}
	if n := histogramCount(rcv.metrics, "http.client.request.duration", nil); n != 3 {
		t.Errorf("http.client.request.duration: count %d, want 3 upstream round trips", n)
	}
	if n := histogramCount(rcv.metrics, "osproxy.hook.duration", map[string]string{"osproxy.hook": "authorization"}); n != 2 {
		t.Errorf("osproxy.hook.duration: count %d, want 2", n)
	}
	if n := sumValue(rcv.metrics, "osproxy.cache.lookups", map[string]string{"osproxy.cache": "authorization", "osproxy.cache.result": "hit"}); n != 2 {
		t.Errorf("osproxy.cache.lookups{authorization, hit} = %d, want 2", n)
	}
}

// histogramCount is the count of a histogram's points whose attributes
// include want.
func histogramCount(ms []*metricspb.Metric, name string, want map[string]string) uint64 {
	var n uint64
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		for _, p := range m.GetHistogram().GetDataPoints() {
			if matches(p.Attributes, want) {
				n += p.Count
			}
		}
	}
	return n
}

// sumValue is the total of a sum's points whose attributes include want.
func sumValue(ms []*metricspb.Metric, name string, want map[string]string) int64 {
	var n int64
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		for _, p := range m.GetSum().GetDataPoints() {
			if matches(p.Attributes, want) {
				n += p.GetAsInt()
			}
		}
	}
	return n
}

func matches(kvs []*commonpb.KeyValue, want map[string]string) bool {
	for k, v := range want {
		if attr(kvs, k) != v {
			return false
		}
	}
	return true
}
