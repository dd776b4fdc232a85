package otelproxy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
	"github.com/osproxy/proxy/otelproxy"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	clientKey    = "client"
	clientSecret = "client-secret"
	upKey        = "upstream-key"
	upSecret     = "upstream-secret"
	rotatingKey  = "rotating-key"
	userAgent    = "otelproxy-test/1.0"
)

// upstream is an S3 store behind httptest, path-style, that keeps objects in
// memory, checks the proxy's signatures and records what it receives. Paths
// under /failing/ answer 500.
type upstream struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	objects map[string][]byte
	seen    []seenRequest
	n       int
}

type seenRequest struct {
	method, path string
	header       http.Header
	sigErr       string // "" when the signature verified (or a bearer token came)
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t: t, objects: map[string][]byte{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		u.t.Errorf("upstream: reading the body: %v", err)
	}
	u.mu.Lock()
	u.n++
	id := "UP-" + strconv.Itoa(u.n)
	u.seen = append(u.seen, seenRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), sigErr: checkSignature(r, body)})
	u.mu.Unlock()
	w.Header().Set("X-Amz-Request-Id", id)
	xmlError := func(status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>`, code, code, id)
	}
	if strings.HasPrefix(r.URL.Path, "/failing/") {
		xmlError(http.StatusInternalServerError, "InternalError")
		return
	}
	if strings.HasPrefix(r.URL.Path, "/cut/") { // the connection breaks after 5 of 100 bytes
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "hello")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		u.objects[r.URL.Path] = body
	case http.MethodGet:
		b, ok := u.objects[r.URL.Path]
		if !ok {
			xmlError(http.StatusNotFound, "NoSuchKey")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}
}

func (u *upstream) put(path, body string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.objects[path] = []byte(body)
}

// last returns what the upstream received last.
func (u *upstream) last(t *testing.T) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return u.seen[len(u.seen)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (u *upstream) endpoint() proxy.Endpoint {
	addr := u.srv.Listener.Addr().String()
	i := strings.LastIndexByte(addr, ':')
	port, _ := strconv.Atoi(addr[i+1:])
	return proxy.Endpoint{Host: addr[:i], Port: port, Scheme: "http", PathStyle: true, Region: "eu-de"}
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

// checkSignature re-signs what the upstream received, with the signed headers
// alone, and compares: "" when the signature is the proxy's for those
// headers, whatever else (a trace context) came beside them.
func checkSignature(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	if strings.HasPrefix(auth, "Bearer ") {
		return ""
	}
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		return "malformed Authorization: " + auth
	}
	secret := map[string]string{upKey: upSecret, rotatingKey: "rotating-secret"}[m[1]]
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "x-amz-date: " + err.Error()
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload != "UNSIGNED-PAYLOAD" {
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != payload {
			return "payload hash mismatch"
		}
	}
	path, query, _ := strings.Cut(r.RequestURI, "?")
	u := &url.URL{Scheme: "http", Host: r.Host, RawQuery: query, RawPath: path}
	u.Path, _ = url.PathUnescape(path)
	re := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}, ContentLength: r.ContentLength}
	for _, h := range strings.Split(m[4], ";") {
		if h != "host" && h != "content-length" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: m[1], SecretAccessKey: secret}, re, payload, "s3", m[3], when); err != nil {
		return err.Error()
	}
	if got := re.Header.Get("Authorization"); got != auth {
		return "signature mismatch:\n got  " + auth + "\n want " + got
	}
	return ""
}

// rotating hands out keys that expire in an hour.
type rotating struct{ calls int }

func (p *rotating) Retrieve(context.Context) (aws.Credentials, error) {
	p.calls++
	return aws.Credentials{AccessKeyID: rotatingKey, SecretAccessKey: "rotating-secret", CanExpire: true,
		Expires: time.Now().Add(time.Hour)}, nil
}

// rig is a proxy observed by otelproxy with the SDK's in-memory exporter and
// a manual metric reader, in front of an upstream, served by httptest.
type rig struct {
	up     *upstream
	iam    *testkit.IAM
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	srv    *httptest.Server
}

func newRig(t *testing.T, wrap func(http.Handler, trace.TracerProvider) http.Handler, opts ...otelproxy.Option) *rig {
	t.Helper()
	r := &rig{up: newUpstream(t), spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	r.iam = testkit.NewIAM(t, nil, "the-api-key")
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() { _ = r.tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	hmac := proxy.Credentials{AccessKeyID: upKey, SecretAccessKey: upSecret}
	ep := r.up.endpoint()
	p, err := proxy.New(
		proxy.WithBuckets(
			proxy.Bucket{Name: "bucket", Endpoint: ep, Credentials: hmac},
			proxy.Bucket{Name: "ibm", Endpoint: ep, Credentials: proxy.Credentials{APIKey: "the-api-key"}},
			proxy.Bucket{Name: "rotating", Endpoint: ep, Credentials: proxy.Credentials{Provider: aws.NewCredentialsCache(&rotating{})}},
			proxy.Bucket{Name: "broken", Endpoint: ep, Credentials: hmac},
			proxy.Bucket{Name: "failing", Endpoint: ep, Credentials: hmac},
			proxy.Bucket{Name: "cut", Endpoint: ep, Credentials: hmac}),
		proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
		proxy.WithAuthorizer(func(_ context.Context, _, bucket string) (bool, error) {
			if bucket == "broken" {
				return false, errors.New("directory down")
			}
			return true, nil
		}),
		proxy.WithIAMEndpoint(r.iam.URL),
		proxy.WithObserver(otelproxy.Observer(append([]otelproxy.Option{otelproxy.WithTracerProvider(r.tp),
			otelproxy.WithMeterProvider(mp), otelproxy.WithPropagators(propagation.TraceContext{})}, opts...)...)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	var h http.Handler = p
	if wrap != nil {
		h = wrap(p, r.tp)
	}
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	return r
}

// do sends a signed request (signed with secret) with headers and waits
// until its request span has ended; it returns the status and the spans of
// the request, in the order they started.
func (r *rig) do(t *testing.T, method, path, body, secret string, header map[string]string) (int, []sdktrace.ReadOnlySpan) {
	t.Helper()
	before := len(r.spans.GetSpans())
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: secret}, req, hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The request span ends once the response is written, which the client
	// may see first.
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := r.spans.GetSpans().Snapshots()[before:]
		for _, s := range spans {
			if !s.Parent().IsValid() || s.Parent().IsRemote() || s.SpanKind() == trace.SpanKindServer {
				return resp.StatusCode, spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: no request span", method, path)
		}
		time.Sleep(time.Millisecond)
	}
}

// tree is each span as "name < parent name", in the order the spans started.
func tree(spans []sdktrace.ReadOnlySpan) []string {
	spans = slices.Clone(spans)
	slices.SortStableFunc(spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	names := map[trace.SpanID]string{}
	for _, s := range spans {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	var out []string
	for _, s := range spans {
		line := s.Name()
		if p, ok := names[s.Parent().SpanID()]; ok {
			line += " < " + p
		}
		out = append(out, line)
	}
	return out
}

func find(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no span %q among %q", name, tree(spans))
	return nil
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// wantAttrs checks that s has these attributes (and, for a value "-", that
// it has not that one).
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v == "-" && ok:
			t.Errorf("span %q: attribute %s = %q, want none", s.Name(), k, g)
		case v != "-" && (!ok || g != v):
			t.Errorf("span %q: attribute %s = %q (set: %v), want %q", s.Name(), k, g, ok, v)
		}
	}
}

func wantTree(t *testing.T, spans []sdktrace.ReadOnlySpan, want ...string) {
	t.Helper()
	if got := tree(spans); !slices.Equal(got, want) {
		t.Errorf("span tree:\n got  %q\n want %q", got, want)
	}
}

func wantStatus(t *testing.T, s sdktrace.ReadOnlySpan, code codes.Code, desc string) {
	t.Helper()
	if s.Status().Code != code || !strings.Contains(s.Status().Description, desc) {
		t.Errorf("span %q: status %v %q, want %v containing %q", s.Name(), s.Status().Code, s.Status().Description, code, desc)
	}
}

// TestSpansAndMetrics runs a known workload through the proxy and checks the
// span tree of each request, its attributes and statuses, what reached the
// upstream, and the metrics the workload makes.
func TestSpansAndMetrics(t *testing.T) {
	r := newRig(t, nil)
	r.up.put("/ibm/k", "from ibm")
	r.up.put("/rotating/k", "rotating!")
	port := r.srv.Listener.Addr().String()[strings.LastIndexByte(r.srv.Listener.Addr().String(), ':')+1:]
	upPort := strconv.Itoa(r.up.endpoint().Port)

	// A PUT continuing the client's trace.
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	incoming := map[string]string{"Traceparent": "00-" + traceID + "-" + parentID + "-01"}
	status, spans := r.do(t, "PUT", "/bucket/dir/k", "hello world", clientSecret, incoming)
	if status != 200 {
		t.Fatalf("PUT: %d", status)
	}
	wantTree(t, spans, "S3.PutObject", "authenticate < S3.PutObject", "hook authorization < S3.PutObject", "PUT < S3.PutObject")
	req := find(t, spans, "S3.PutObject")
	if req.SpanKind() != trace.SpanKindServer {
		t.Errorf("request span kind %v", req.SpanKind())
	}
	if got := req.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("request span trace id %s, want the client's %s", got, traceID)
	}
	if got := req.Parent(); got.SpanID().String() != parentID || !got.IsRemote() {
		t.Errorf("request span parent %s (remote %v), want the client's %s", got.SpanID(), got.IsRemote(), parentID)
	}
	wantAttrs(t, req, map[string]string{
		"http.request.method": "PUT", "url.scheme": "http", "url.path": "/bucket/dir/k", "url.query": "-",
		"server.address": "127.0.0.1", "server.port": port, "client.address": "127.0.0.1",
		"network.peer.address": "127.0.0.1", "network.protocol.version": "1.1", "user_agent.original": userAgent,
		"http.response.status_code": "200", "http.request.body.size": "11", "http.response.body.size": "0",
		"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": "PutObject",
		"aws.s3.bucket": "bucket", "aws.s3.key": "dir/k", "aws.request_id": "UP-1", "error.type": "-",
	})
	if attrs(req)["osproxy.request_id"] == "" {
		t.Error("no osproxy.request_id")
	}
	wantStatus(t, req, codes.Unset, "")
	if s := find(t, spans, "authenticate"); s.SpanKind() != trace.SpanKindInternal {
		t.Errorf("authenticate: kind %v", s.SpanKind())
	}
	wantAttrs(t, find(t, spans, "hook authorization"), map[string]string{"osproxy.hook": "authorization", "error.type": "-"})
	client := find(t, spans, "PUT")
	if client.SpanKind() != trace.SpanKindClient {
		t.Errorf("upstream span kind %v", client.SpanKind())
	}
	wantAttrs(t, client, map[string]string{
		"http.request.method": "PUT", "url.full": "http://127.0.0.1:" + upPort + "/bucket/dir/k",
		"server.address": "127.0.0.1", "server.port": upPort, "http.response.status_code": "200", "error.type": "-",
	})
	got := r.up.last(t)
	if want := "00-" + traceID + "-" + client.SpanContext().SpanID().String() + "-01"; got.header.Get("Traceparent") != want {
		t.Errorf("upstream traceparent %q, want %q: the upstream span's context", got.header.Get("Traceparent"), want)
	}
	if got.sigErr != "" {
		t.Errorf("upstream signature: %s", got.sigErr)
	}
	if m := authRE.FindStringSubmatch(got.header.Get("Authorization")); m == nil || strings.Contains(m[4], "traceparent") {
		t.Errorf("the trace context must not be signed: %q", got.header.Get("Authorization"))
	}

	// A GET of the same bucket: the authorizer's answer is cached, no hook.
	status, spans = r.do(t, "GET", "/bucket/dir/k", "", clientSecret, incoming)
	if status != 200 {
		t.Fatalf("GET: %d", status)
	}
	wantTree(t, spans, "S3.GetObject", "authenticate < S3.GetObject", "GET < S3.GetObject")
	wantAttrs(t, find(t, spans, "S3.GetObject"), map[string]string{"http.response.body.size": "11", "aws.request_id": "UP-2"})

	// An IBM bucket: its API key is exchanged at IAM.
	status, spans = r.do(t, "GET", "/ibm/k", "", clientSecret, nil)
	if status != 200 {
		t.Fatalf("GET ibm: %d", status)
	}
	wantTree(t, spans, "S3.GetObject", "authenticate < S3.GetObject", "hook authorization < S3.GetObject",
		"IAM token exchange < S3.GetObject", "GET < S3.GetObject")
	if a := r.up.last(t).header.Get("Authorization"); !strings.HasPrefix(a, "Bearer tok-") {
		t.Errorf("ibm upstream Authorization %q", a)
	}
	if p := find(t, spans, "S3.GetObject").Parent(); p.IsValid() {
		t.Errorf("a request without a trace context starts a trace: parent %v", p)
	}

	// A bucket whose keys come from a provider.
	status, spans = r.do(t, "GET", "/rotating/k", "", clientSecret, nil)
	if status != 200 {
		t.Fatalf("GET rotating: %d", status)
	}
	wantTree(t, spans, "S3.GetObject", "authenticate < S3.GetObject", "hook authorization < S3.GetObject",
		"credentials retrieval < S3.GetObject", "GET < S3.GetObject")
	if got := r.up.last(t); got.sigErr != "" || !strings.Contains(got.header.Get("Authorization"), rotatingKey) {
		t.Errorf("rotating upstream: %s %q", got.sigErr, got.header.Get("Authorization"))
	}

	// A hook that fails: 503, the hook's span and the request's in error.
	n := r.up.count()
	status, spans = r.do(t, "GET", "/broken/k", "", clientSecret, nil)
	if status != 503 {
		t.Fatalf("GET broken: %d", status)
	}
	wantTree(t, spans, "S3.GetObject", "authenticate < S3.GetObject", "hook authorization < S3.GetObject")
	hook := find(t, spans, "hook authorization")
	wantStatus(t, hook, codes.Error, "directory down")
	wantAttrs(t, hook, map[string]string{"error.type": "_OTHER"})
	req = find(t, spans, "S3.GetObject")
	wantStatus(t, req, codes.Error, "ServiceUnavailable")
	wantAttrs(t, req, map[string]string{"http.response.status_code": "503", "error.type": "ServiceUnavailable",
		"aws.s3.bucket": "broken", "aws.request_id": attrs(req)["osproxy.request_id"]})
	if r.up.count() != n {
		t.Error("a request whose hook failed reached the upstream")
	}

	// An upstream that answers 500.
	status, spans = r.do(t, "GET", "/failing/k", "", clientSecret, nil)
	if status != 500 {
		t.Fatalf("GET failing: %d", status)
	}
	client = find(t, spans, "GET")
	wantStatus(t, client, codes.Error, "")
	wantAttrs(t, client, map[string]string{"http.response.status_code": "500", "error.type": "500"})
	req = find(t, spans, "S3.GetObject")
	wantStatus(t, req, codes.Error, "")
	wantAttrs(t, req, map[string]string{"http.response.status_code": "500", "error.type": "InternalError"})

	// An upstream's 404: an error of the client span, not of the server's.
	status, spans = r.do(t, "GET", "/bucket/missing", "", clientSecret, nil)
	if status != 404 {
		t.Fatalf("GET missing: %d", status)
	}
	wantStatus(t, find(t, spans, "GET"), codes.Error, "")
	req = find(t, spans, "S3.GetObject")
	wantStatus(t, req, codes.Unset, "")
	wantAttrs(t, req, map[string]string{"error.type": "NoSuchKey", "aws.s3.key": "missing"})
	wantAttrs(t, find(t, spans, "GET"), map[string]string{"aws.s3.bucket": "bucket", "aws.s3.key": "missing", "rpc.method": "GetObject"})

	// A wrong signature: the proxy's own 403, not forwarded.
	status, spans = r.do(t, "GET", "/bucket/dir/k", "", "wrong-secret", nil)
	if status != 403 {
		t.Fatalf("bad signature: %d", status)
	}
	wantTree(t, spans, "S3.GetObject", "authenticate < S3.GetObject")
	wantStatus(t, find(t, spans, "S3.GetObject"), codes.Unset, "")
	wantAttrs(t, find(t, spans, "S3.GetObject"), map[string]string{"error.type": "SignatureDoesNotMatch", "http.response.status_code": "403"})
	wantAttrs(t, find(t, spans, "authenticate"), map[string]string{"error.type": "SignatureDoesNotMatch"})

	// The metrics of the workload.
	m := collect(t, r.reader)
	op := func(method string, status int, op, etype string) attribute.Set {
		kv := []attribute.KeyValue{attribute.String("http.request.method", method), attribute.String("url.scheme", "http"),
			attribute.Int("http.response.status_code", status), attribute.String("rpc.method", op)}
		if etype != "" {
			kv = append(kv, attribute.String("error.type", etype))
		}
		return attribute.NewSet(kv...)
	}
	wantHistogram(t, m, "http.server.request.duration", "s", map[attribute.Set]float64{
		op("PUT", 200, "PutObject", ""):                      1,
		op("GET", 200, "GetObject", ""):                      3,
		op("GET", 503, "GetObject", "ServiceUnavailable"):    1,
		op("GET", 500, "GetObject", "500"):                   1,
		op("GET", 404, "GetObject", "404"):                   1,
		op("GET", 403, "GetObject", "SignatureDoesNotMatch"): 1,
	}, nil)
	wantHistogram(t, m, "http.server.request.body.size", "By", nil, map[attribute.Set]float64{
		op("PUT", 200, "PutObject", ""): 11,
		op("GET", 200, "GetObject", ""): 0,
	})
	wantHistogram(t, m, "http.server.response.body.size", "By", nil, map[attribute.Set]float64{
		op("GET", 200, "GetObject", ""): float64(len("hello world") + len("from ibm") + len("rotating!")),
		op("PUT", 200, "PutObject", ""): 0,
	})
	upstreamSet := func(method string, status int, etype string) attribute.Set {
		kv := []attribute.KeyValue{attribute.String("http.request.method", method), attribute.String("url.scheme", "http"),
			attribute.Int("http.response.status_code", status)}
		if etype != "" {
			kv = append(kv, attribute.String("error.type", etype))
		}
		return attribute.NewSet(kv...)
	}
	wantHistogram(t, m, "http.client.request.duration", "s", map[attribute.Set]float64{
		upstreamSet("PUT", 200, ""):    1,
		upstreamSet("GET", 200, ""):    3,
		upstreamSet("GET", 500, "500"): 1,
		upstreamSet("GET", 404, "404"): 1,
	}, nil)
	hookSet := func(etype string) attribute.Set {
		kv := []attribute.KeyValue{attribute.String("osproxy.hook", "authorization")}
		if etype != "" {
			kv = append(kv, attribute.String("error.type", etype))
		}
		return attribute.NewSet(kv...)
	}
	wantHistogram(t, m, "osproxy.hook.duration", "s", map[attribute.Set]float64{hookSet(""): 4, hookSet("_OTHER"): 1}, nil)
	wantHistogram(t, m, "osproxy.iam.exchange.duration", "s", map[attribute.Set]float64{*attribute.EmptySet(): 1}, nil)
	wantHistogram(t, m, "osproxy.credentials.duration", "s", map[attribute.Set]float64{*attribute.EmptySet(): 1}, nil)
	cache := func(name, result string) attribute.Set {
		return attribute.NewSet(attribute.String("osproxy.cache", name), attribute.String("osproxy.cache.result", result))
	}
	wantSum(t, m, "osproxy.cache.lookups", map[attribute.Set]int64{
		cache("authorization", "miss"): 5, cache("authorization", "hit"): 2,
		cache("iam-token", "miss"): 1, cache("credentials", "miss"): 1,
	})
	wantSum(t, m, "http.server.active_requests", map[attribute.Set]int64{
		attribute.NewSet(attribute.String("http.request.method", "PUT"), attribute.String("url.scheme", "http")): 0,
		attribute.NewSet(attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "http")): 0,
	})
}

// TestPresignedQueryRedacted: a presigned URL's signature and credential are
// not recorded.
func TestPresignedQueryRedacted(t *testing.T) {
	r := newRig(t, nil)
	r.up.put("/bucket/k", "x")
	req, _ := http.NewRequest("GET", r.srv.URL+"/bucket/k?X-Amz-Expires=300", nil)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	u, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientKey, SecretAccessKey: clientSecret},
		req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned GET: %s", resp.Status)
	}
	var s sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); s == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, sp := range r.spans.GetSpans().Snapshots() {
			if sp.Name() == "S3.GetObject" {
				s = sp
			}
		}
	}
	if s == nil {
		t.Fatal("no request span")
	}
	q := attrs(s)["url.query"]
	for _, p := range []string{"X-Amz-Signature=REDACTED", "X-Amz-Credential=REDACTED", "X-Amz-Expires=300", "X-Amz-Algorithm=AWS4-HMAC-SHA256"} {
		if !strings.Contains(q, p) {
			t.Errorf("url.query %q lacks %s", q, p)
		}
	}
	if strings.Contains(q, clientKey) {
		t.Errorf("url.query %q holds the access key id", q)
	}
}

// TestInsideServerSpan: under a handler that already made the server span
// (otelhttp), the request's span is an internal child of it.
func TestInsideServerSpan(t *testing.T) {
	wrap := func(h http.Handler, tp trace.TracerProvider) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := tp.Tracer("outer").Start(r.Context(), "outer", trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			h.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	r := newRig(t, wrap)
	r.up.put("/bucket/k", "x")
	status, spans := r.do(t, "GET", "/bucket/k", "", clientSecret, map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if status != 200 {
		t.Fatal(status)
	}
	req := find(t, spans, "S3.GetObject")
	if req.SpanKind() != trace.SpanKindInternal || req.Parent().IsRemote() {
		t.Errorf("kind %v, parent remote %v: want an internal span under the outer one", req.SpanKind(), req.Parent().IsRemote())
	}
}

// TestPublicEndpoint: each request starts a trace of its own, linked to the
// client's context.
func TestPublicEndpoint(t *testing.T) {
	r := newRig(t, nil, otelproxy.WithPublicEndpoint())
	r.up.put("/bucket/k", "x")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	status, spans := r.do(t, "GET", "/bucket/k", "", clientSecret, map[string]string{"Traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
	if status != 200 {
		t.Fatal(status)
	}
	req := find(t, spans, "S3.GetObject")
	if req.Parent().IsValid() || req.SpanContext().TraceID().String() == traceID {
		t.Errorf("parent %v, trace %s: want a new root", req.Parent(), req.SpanContext().TraceID())
	}
	if l := req.Links(); len(l) != 1 || l[0].SpanContext.TraceID().String() != traceID {
		t.Errorf("links %v: want the client's context", l)
	}
	if tp := r.up.last(t).header.Get("Traceparent"); !strings.Contains(tp, req.SpanContext().TraceID().String()) {
		t.Errorf("upstream traceparent %q: want the new trace", tp)
	}
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelproxy.ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func setString(s attribute.Set) string { return string(s.Encoded(attribute.DefaultEncoder())) }

// wantHistogram checks a histogram's counts (and sums, when given) by
// attribute set; counts lists every set there is.
func wantHistogram(t *testing.T, m map[string]metricdata.Metrics, name, unit string, counts, sums map[attribute.Set]float64) {
	t.Helper()
	md, ok := m[name]
	if !ok {
		t.Errorf("no metric %s", name)
		return
	}
	if md.Unit != unit {
		t.Errorf("%s: unit %q, want %q", name, md.Unit, unit)
	}
	gotCounts, gotSums := map[string]float64{}, map[string]float64{}
	switch d := md.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			gotCounts[setString(p.Attributes)] += float64(p.Count)
			gotSums[setString(p.Attributes)] += p.Sum
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			gotCounts[setString(p.Attributes)] += float64(p.Count)
			gotSums[setString(p.Attributes)] += float64(p.Sum)
		}
	default:
		t.Errorf("%s: %T, want a histogram", name, md.Data)
		return
	}
	if counts != nil {
		want := map[string]float64{}
		for s, v := range counts {
			want[setString(s)] = v
		}
		if !mapsEqual(gotCounts, want) {
			t.Errorf("%s counts:\n got  %v\n want %v", name, gotCounts, want)
		}
	}
	for s, v := range sums {
		if got := gotSums[setString(s)]; got != v {
			t.Errorf("%s sum{%s} = %v, want %v", name, setString(s), got, v)
		}
	}
}

// wantSum checks an int64 sum's values for the sets given.
func wantSum(t *testing.T, m map[string]metricdata.Metrics, name string, want map[attribute.Set]int64) {
	t.Helper()
	md, ok := m[name]
	if !ok {
		t.Errorf("no metric %s", name)
		return
	}
	d, ok := md.Data.(metricdata.Sum[int64])
	if !ok {
		t.Errorf("%s: %T, want an int64 sum", name, md.Data)
		return
	}
	got := map[string]int64{}
	for _, p := range d.DataPoints {
		got[setString(p.Attributes)] = p.Value
	}
	for s, v := range want {
		if g, ok := got[setString(s)]; !ok || g != v {
			t.Errorf("%s{%s} = %d (present %v), want %d; all: %v", name, setString(s), g, ok, v, got)
		}
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// An answer cut short after its status went out (here the upstream's
// connection breaks) ends its request span in error, with an error.type, and
// the request is no longer counted as active.
func TestCutAnswer(t *testing.T) {
	r := newRig(t, nil)
	status, spans := r.do(t, "GET", "/cut/k", "", clientSecret, nil)
	if status != 200 {
		t.Fatalf("GET cut: %d", status)
	}
	req := find(t, spans, "S3.GetObject")
	if req.Status().Code != codes.Error || req.Status().Description == "" {
		t.Errorf("request span status %v %q, want an error with its description", req.Status().Code, req.Status().Description)
	}
	wantAttrs(t, req, map[string]string{"http.response.status_code": "200", "error.type": "_OTHER"})
	m := collect(t, r.reader)
	wantSum(t, m, "http.server.active_requests", map[attribute.Set]int64{
		attribute.NewSet(attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "http")): 0,
	})
}
