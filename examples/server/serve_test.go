package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
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
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// backend is an in-memory S3 behind httptest that records the access key
// ids of the signatures it receives (or "bearer" for IAM tokens).
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	keys []string
	auth []string // Authorization headers
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/`)

func newBackend(t *testing.T, buckets ...string) *backend {
	t.Helper()
	mem := s3mem.New()
	for _, b := range buckets {
		if err := mem.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	s3 := gofakes3.New(mem).Server()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		b.mu.Lock()
		b.auth = append(b.auth, a)
		if m := credentialRE.FindStringSubmatch(a); m != nil {
			b.keys = append(b.keys, m[1])
		}
		b.mu.Unlock()
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) port() int {
	u, _ := url.Parse(b.URL)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// seen returns the distinct access key ids the backend was signed for.
func (b *backend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := slices.Clone(b.keys)
	slices.Sort(k)
	return slices.Compact(k)
}

// startConfigServer writes yaml to a file and starts a server from it, with
// every listener on a port of the OS's choosing.
func startConfigServer(t *testing.T, yaml string, args ...string) *server {
	t.Helper()
	args = append([]string{"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0"}, args...)
	cfg, _, err := loadTest(t, yaml, args...)
	if err != nil {
		t.Fatal(err)
	}
	return startTestServer(t, cfg)
}

// newS3Client returns an S3 client of endpoint, signing with the given key.
func newS3Client(endpoint, keyID, secret string, hc *http.Client) *s3.Client {
	o := s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer:      aws.NopRetryer{},
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return s3.New(o)
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte) error {
	t.Helper()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

func get(t *testing.T, c *s3.Client, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func listBuckets(t *testing.T, c *s3.Client) []string {
	t.Helper()
	out, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	return bucketNames(out.Buckets)
}

// scrape returns the admin listener's /metrics.
func scrape(t *testing.T, s *server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s %v", resp.Status, err)
	}
	return string(b)
}

// metric returns the value of the sample named series (name and labels, as
// exposed) in a scrape, or -1 when it is not there.
func metric(scrape, series string) float64 {
	for _, line := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// waitMetrics scrapes until every series has its value (the observer runs
// after the client has its answer) and returns the last scrape.
func waitMetrics(t *testing.T, s *server, want map[string]float64) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrape(t, s)
		var wrong []string
		for series, v := range want {
			if got := metric(body, series); got != v {
				wrong = append(wrong, fmt.Sprintf("%s = %v, want %v", series, got, v))
			}
		}
		if len(wrong) == 0 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s\n\nscrape:\n%s", strings.Join(wrong, "\n"), body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConfigServesBuckets runs a config file in verified mode against two
// S3 backends: each bucket is routed to its own backend with its own keys,
// allow lists hold, and the metrics count what happened.
func TestConfigServesBuckets(t *testing.T) {
	one, two := newBackend(t, "alpha"), newBackend(t, "beta")
	t.Setenv("TEST_ALICE_SECRET", "alice-secret")
	t.Setenv("TEST_BOB_SECRET", "bob-secret")
	t.Setenv("TEST_ALPHA_SECRET", "alpha-upstream-secret")
	s := startConfigServer(t, fmt.Sprintf(`
log: {level: debug}
clients:
  mode: verified
  keys:
    - access_key_id: alice
      secret_access_key: ${TEST_ALICE_SECRET}
    - access_key_id: bob
      secret_access_key: ${TEST_BOB_SECRET}
buckets:
  - name: alpha
    host: 127.0.0.1
    port: %d
    scheme: http
    path_style: true
    access_key_id: alpha-upstream-key
    secret_access_key: ${TEST_ALPHA_SECRET}
    allow: [alice]
  - name: beta
    host: 127.0.0.1
    port: %d
    scheme: http
    region: eu-de
    path_style: true
    access_key_id: beta-upstream-key
    secret_access_key: beta-upstream-secret
`, one.port(), two.port()))
	alice := newS3Client(s.URL(), "alice", "alice-secret", nil)
	bob := newS3Client(s.URL(), "bob", "bob-secret", nil)

	body := randomBytes(t, 1<<20+3)
	if err := put(t, alice, "alpha", "data/one", body); err != nil {
		t.Fatalf("alice PutObject alpha: %v", err)
	}
	if got, err := get(t, alice, "alpha", "data/one"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("alice GetObject alpha: %d bytes, %v; want %d bytes byte-exact", len(got), err, len(body))
	}
	if err := put(t, bob, "beta", "b", []byte("bob's")); err != nil {
		t.Fatalf("bob PutObject beta: %v", err)
	}
	_, err := get(t, bob, "alpha", "data/one")
	checkS3Error(t, err, http.StatusForbidden, "AccessDenied")
	if err := put(t, newS3Client(s.URL(), "alice", "wrong", nil), "alpha", "x", nil); err == nil {
		t.Error("a wrong secret got in")
	}
	if got := listBuckets(t, alice); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("alice lists %v", got)
	}
	if got := listBuckets(t, bob); !slices.Equal(got, []string{"beta"}) {
		t.Errorf("bob lists %v", got)
	}

	// Each backend saw its own bucket's keys only.
	if got := one.seen(); !slices.Equal(got, []string{"alpha-upstream-key"}) {
		t.Errorf("backend of alpha saw keys %v", got)
	}
	if got := two.seen(); !slices.Equal(got, []string{"beta-upstream-key"}) {
		t.Errorf("backend of beta saw keys %v", got)
	}

	m := waitMetrics(t, s, map[string]float64{
		`osproxy_requests_total{operation="PutObject",status="200"}`:                2,
		`osproxy_requests_total{operation="GetObject",status="200"}`:                1,
		`osproxy_requests_total{operation="GetObject",status="403"}`:                1,
		`osproxy_requests_total{operation="PutObject",status="403"}`:                1,
		`osproxy_requests_total{operation="ListBuckets",status="200"}`:              2,
		`osproxy_request_errors_total{code="AccessDenied"}`:                         1,
		`osproxy_request_errors_total{code="SignatureDoesNotMatch"}`:                1,
		`osproxy_upstream_duration_seconds_count{operation="PutObject"}`:            2,
		`osproxy_request_duration_seconds_count{operation="PutObject"}`:             3,
		`osproxy_request_bytes_total{operation="PutObject"}`:                        float64(len(body) + len("bob's")),
		`osproxy_requests_in_flight`:                                                0,
		`osproxy_cache_lookups_total{cache="bucket",result="hit"}`:                  0,
		`osproxy_iam_exchanges_total`:                                               0,
		`osproxy_cache_lookups_total{cache="iam-token",result="miss"}`:              0,
		`osproxy_upstream_duration_seconds_bucket{operation="GetObject",le="+Inf"}`: 1,
	})
	if metric(m, `osproxy_response_bytes_total{operation="GetObject"}`) < float64(len(body)) {
		t.Errorf("response bytes of GetObject < %d", len(body))
	}
	// alpha and beta miss once each for alice and bob, and hit after.
	if miss, hit := metric(m, `osproxy_cache_lookups_total{cache="authorization",result="miss"}`),
		metric(m, `osproxy_cache_lookups_total{cache="authorization",result="hit"}`); miss < 3 || hit < 2 {
		t.Errorf("authorization cache: %v misses, %v hits", miss, hit)
	}
	if metric(m, "go_goroutines") <= 0 || metric(m, "process_start_time_seconds") <= 0 {
		t.Error("no Go or process metrics")
	}
}

// TestTokenModeOverTLS runs a config file in token mode behind TLS.
func TestTokenModeOverTLS(t *testing.T) {
	up := newBackend(t, "gamma")
	cert, key, pool := selfSignedCert(t)
	s := startConfigServer(t, fmt.Sprintf(`
server:
  tls: {cert_file: %q, key_file: %q}
clients:
  mode: token
  tokens: [ci-bot, "${TEST_TOKEN:-nightly}"]
buckets:
  - {name: gamma, host: 127.0.0.1, port: %d, scheme: http, path_style: true, access_key_id: k, secret_access_key: s}
`, cert, key, up.port()))
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	// HTTP/2, as clients that negotiate it get.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	if r, err := hc.Get(s.URL() + "/"); err != nil || r.Proto != "HTTP/2.0" {
		t.Fatalf("GET over TLS: %v %v, want HTTP/2.0", r, err)
	} else {
		r.Body.Close()
	}
	for _, token := range []string{"ci-bot", "nightly"} {
		// In token mode the secret is not checked: any will do.
		c := newS3Client(s.URL(), token, "anything", hc)
		if err := put(t, c, "gamma", token, []byte(token)); err != nil {
			t.Fatalf("%s PutObject over TLS: %v", token, err)
		}
	}
	err := put(t, newS3Client(s.URL(), "stranger", "anything", hc), "gamma", "x", []byte("x"))
	checkS3Error(t, err, http.StatusForbidden, "AccessDenied")

	// Plain HTTP and unknown certificates are refused.
	if r, err := http.Get("http://" + s.Addr() + "/"); err == nil {
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener: %s", r.Status)
		}
	}
	if _, err := http.Get(s.URL() + "/"); err == nil {
		t.Error("a client that does not trust the certificate got through")
	}
	waitMetrics(t, s, map[string]float64{
		`osproxy_requests_total{operation="PutObject",status="200"}`:       2,
		`osproxy_requests_total{operation="PutObject",status="403"}`:       1,
		`osproxy_cache_lookups_total{cache="authorization",result="miss"}`: 3,
	})
}

// TestIAMMetrics serves two IBM-style buckets reached with API keys, one of
// which a fake IAM refuses, and checks the IAM metrics.
func TestIAMMetrics(t *testing.T) {
	var exchanges sync.Map
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		key := r.Form.Get("apikey")
		n, _ := exchanges.LoadOrStore(key, new(int))
		*n.(*int)++
		w.Header().Set("Content-Type", "application/json")
		if key != "good-api-key" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "iam-token-1", "token_type": "Bearer",
			"expires_in": 3600, "expiration": time.Now().Add(time.Hour).Unix(),
		})
	}))
	t.Cleanup(iam.Close)
	up := newBackend(t, "ibm-good", "ibm-bad")
	t.Setenv("TEST_API_KEY", "good-api-key")
	s := startConfigServer(t, fmt.Sprintf(`
clients:
  keys: [{access_key_id: alice, secret_access_key: alice-secret}]
buckets:
  - name: ibm-good
    host: 127.0.0.1
    port: %[1]d
    scheme: http
    path_style: true
    api_key: ${TEST_API_KEY}
    service_instance_id: crn:v1:test
  - {name: ibm-bad, host: 127.0.0.1, port: %[1]d, scheme: http, path_style: true, api_key: refused-api-key}
iam:
  endpoint: %[2]s/identity/token
  timeout: 5s
`, up.port(), iam.URL))
	c := newS3Client(s.URL(), "alice", "alice-secret", nil)
	for i := range 3 {
		if err := put(t, c, "ibm-good", fmt.Sprint(i), []byte("x")); err != nil {
			t.Fatalf("PutObject ibm-good: %v", err)
		}
	}
	err := put(t, c, "ibm-bad", "x", []byte("x"))
	checkS3Error(t, err, http.StatusForbidden, "AccessDenied")

	up.mu.Lock()
	auth := slices.Clone(up.auth)
	up.mu.Unlock()
	if len(auth) != 3 || auth[0] != "Bearer iam-token-1" {
		t.Errorf("upstream Authorization headers: %q", auth)
	}
	waitMetrics(t, s, map[string]float64{
		`osproxy_iam_exchanges_total`:                                  2,
		`osproxy_iam_exchange_failures_total`:                          1,
		`osproxy_iam_exchange_duration_seconds_count`:                  2,
		`osproxy_cache_lookups_total{cache="iam-token",result="miss"}`: 2,
		`osproxy_cache_lookups_total{cache="iam-token",result="hit"}`:  2,
		`osproxy_requests_total{operation="PutObject",status="200"}`:   3,
		`osproxy_requests_total{operation="PutObject",status="403"}`:   1,
	})
}

// TestHealthAndShutdownDelay checks the admin endpoints, and that during the
// shutdown delay /readyz says 503 while the proxy still serves.
func TestHealthAndShutdownDelay(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Server.ShutdownDelay = value(2 * time.Second) // ample for the checks below
	s, err := start(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + s.AdminAddr()
	checkGet(t, admin+"/healthz", http.StatusOK, "ok\n")
	checkGet(t, admin+"/readyz", http.StatusOK, "ready\n")
	checkGet(t, admin+"/nothing", http.StatusNotFound, "")
	c := newClient(s.Addr(), demoKeyID, demoSecret)

	done := make(chan error, 1)
	go func() { done <- s.shutdown(context.Background()) }()
	waitFor(t, func() bool { return getStatus(admin+"/readyz") == http.StatusServiceUnavailable })
	checkGet(t, admin+"/readyz", http.StatusServiceUnavailable, "shutting down\n")
	checkGet(t, admin+"/healthz", http.StatusOK, "ok\n")
	if got := listBuckets(t, c); !slices.Equal(got, []string{demoBucket}) {
		t.Errorf("during the shutdown delay: ListBuckets = %v", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(admin + "/healthz"); err == nil {
		t.Error("the admin listener still answers after shutdown")
	}
	if _, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{}); err == nil {
		t.Error("the proxy still answers after shutdown")
	}
}

// TestReadyzDuringDrain: while shutdown waits for an upload in flight,
// /readyz answers 503, /healthz 200, and new connections are refused; the
// upload then completes.
func TestReadyzDuringDrain(t *testing.T) {
	s, err := start(demoConfig(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + s.AdminAddr()

	up := startUpload(t, s.Addr(), "draining")

	done := make(chan error, 1)
	go func() { done <- s.shutdown(context.Background()) }()
	waitFor(t, func() bool { return getStatus(admin+"/readyz") == http.StatusServiceUnavailable })
	checkGet(t, admin+"/healthz", http.StatusOK, "ok\n")
	waitFor(t, func() bool { _, err := http.Get("http://" + s.Addr() + "/"); return err != nil })
	select {
	case err := <-done:
		t.Fatalf("shutdown returned %v with an upload in flight", err)
	default:
	}

	up.finish(t)
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestRunConfigFile runs the program as an operator would, with a config
// file: JSON logs on stderr, one line per request with its request id,
// nothing on stdout, a clean stop.
func TestRunConfigFile(t *testing.T) {
	up := newBackend(t, "delta")
	path := writeFile(t, "cfg.yaml", fmt.Sprintf(`
log: {level: info, format: json}
clients:
  keys: [{access_key_id: alice, secret_access_key: alice-secret}]
buckets:
  - {name: delta, host: 127.0.0.1, port: %d, scheme: http, path_style: true, access_key_id: k, secret_access_key: s}
`, up.port()))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := &syncBuffer{}
	logs := &logLines{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", path, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0"}, stdout, logs)
	}()
	listening := logs.wait(t, func(l map[string]any) bool { return l["msg"] == "proxy listening" })
	addr, _ := listening["addr"].(string)
	if listening["config"] != path || listening["buckets"] != 1.0 || listening["admin"] == "" {
		t.Errorf("listening line: %v", listening)
	}

	c := newS3Client("http://"+addr, "alice", "alice-secret", nil)
	if err := put(t, c, "delta", "k", []byte("hello")); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	_, err := get(t, c, "delta", "missing")
	checkS3Error(t, err, http.StatusNotFound, "NoSuchKey")
	_, err = get(t, c, "nosuchbucket", "k")
	checkS3Error(t, err, http.StatusNotFound, "NoSuchBucket")

	line := logs.wait(t, func(l map[string]any) bool { return l["msg"] == "request" && l["operation"] == "PutObject" })
	if line["level"] != "INFO" || line["component"] != "access" || line["status"] != 200.0 || line["bucket"] != "delta" ||
		line["bytes_in"] != 5.0 || line["method"] != "PUT" || line["request_id"] == "" || line["duration_ms"] == nil || line["upstream_ms"] == nil {
		t.Errorf("access log line: %v", line)
	}
	line = logs.wait(t, func(l map[string]any) bool { return l["msg"] == "request" && l["bucket"] == "nosuchbucket" })
	if line["code"] != "NoSuchBucket" || line["status"] != 404.0 || line["upstream_ms"] != nil {
		t.Errorf("access log line: %v", line)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
	logs.wait(t, func(l map[string]any) bool { return l["msg"] == "stopped" })
	if stdout.String() != "" {
		t.Errorf("run printed to stdout with a config file:\n%s", stdout.String())
	}
}

// TestDemoAdmin: the demo serves the admin endpoints too, and says where.
func TestDemoAdmin(t *testing.T) {
	stdout := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-browser-listen", "127.0.0.1:0"}, stdout, t.Output())
	}()
	var addr, admin string
	waitFor(t, func() bool {
		out := stdout.String()
		a := regexp.MustCompile(`aws --endpoint-url http://(127\.0\.0\.1:\d+) s3 ls`).FindStringSubmatch(out)
		m := regexp.MustCompile(`curl http://(127\.0\.0\.1:\d+)/metrics`).FindStringSubmatch(out)
		if a != nil && m != nil {
			addr, admin = a[1], m[1]
		}
		return admin != ""
	})
	checkGet(t, "http://"+admin+"/readyz", http.StatusOK, "ready\n")
	if page := regexp.MustCompile(`In a browser: (http://127\.0\.0\.1:\d+/) lists the bucket`).FindStringSubmatch(stdout.String()); page == nil {
		t.Errorf("the demo does not say where its browser page is:\n%s", stdout.String())
	} else if resp, err := http.Get(page[1]); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %v %v", page[1], resp, err)
	} else {
		resp.Body.Close()
	}
	if got := listBuckets(t, newClient(addr, demoKeyID, demoSecret)); !slices.Equal(got, []string{demoBucket}) {
		t.Errorf("ListBuckets = %v", got)
	}
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return metric(string(b), `osproxy_requests_total{operation="ListBuckets",status="200"}`) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func checkGet(t *testing.T, url string, status int, body string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || (body != "" && string(b) != body) {
		t.Errorf("GET %s = %s %q, want %d %q", url, resp.Status, b, status, body)
	}
}

func getStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logLines collects JSON log lines written to it.
type logLines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []map[string]any
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = map[string]any{"not json": sc.Text()}
		}
		l.lines = append(l.lines, m)
	}
	return len(p), nil
}

// wait returns the first line that match accepts, waiting for it.
func (l *logLines) wait(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if _, bad := line["not json"]; bad {
				l.mu.Unlock()
				t.Fatalf("a log line is not JSON: %v", line["not json"])
			}
			if match(line) {
				l.mu.Unlock()
				return line
			}
		}
		all := l.buf.String()
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no such log line in:\n%s", all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a buffer written and read at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricLabelsBounded: clients choose the HTTP method, and must not be
// able to create metric series at will.
func TestMetricLabelsBounded(t *testing.T) {
	s := startTestServer(t, demoConfig(t))
	for _, method := range []string{"FOO", "BAR1", "PATCH"} {
		req, err := http.NewRequest(method, "http://"+s.Addr()+"/"+demoBucket+"/k", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	m := waitMetrics(t, s, map[string]float64{
		`osproxy_requests_total{operation="Unknown",status="405"}`: 3, // only S3's methods are served
	})
	if strings.Contains(m, "FOO") || strings.Contains(m, "PATCH") {
		t.Errorf("a client's method became a label:\n%s", m)
	}
}

// A client key's rules (request-level authorization) let it do only what
// they allow; the use limit bounds presigned URLs.
func TestConfigRules(t *testing.T) {
	one := newBackend(t, "alpha")
	s := startConfigServer(t, fmt.Sprintf(`
clients:
  mode: verified
  keys:
    - access_key_id: carol
      secret_access_key: carol-secret
      rules:
        - actions: [s3:PutObject, s3:GetObject]
          buckets: [alpha]
          prefix: carol/
        - actions: [s3:ListBucket]
          prefix: carol/
    - access_key_id: erin
      secret_access_key: erin-secret
      rules:
        - actions: [s3:GetObject, s3:ListAllMyBuckets]
          buckets: [alpha]
          prefix: erin/
    - access_key_id: admin
      secret_access_key: admin-secret
buckets:
  - name: alpha
    host: 127.0.0.1
    port: %d
    scheme: http
    path_style: true
    access_key_id: k
    secret_access_key: s
`, one.port()))
	carol := newS3Client(s.URL(), "carol", "carol-secret", nil)
	if err := put(t, carol, "alpha", "carol/a", []byte("mine")); err != nil {
		t.Fatalf("carol writes under carol/: %v", err)
	}
	checkS3Error(t, put(t, carol, "alpha", "dave/a", []byte("not mine")), http.StatusForbidden, "AccessDenied")
	if err := put(t, newS3Client(s.URL(), "admin", "admin-secret", nil), "alpha", "dave/a", []byte("any")); err != nil {
		t.Fatalf("a key without rules: %v", err)
	}
	_, err := get(t, carol, "alpha", "dave/a")
	checkS3Error(t, err, http.StatusForbidden, "AccessDenied")

	// ListBuckets is s3:ListAllMyBuckets, which carol's rules do not name;
	// erin's do, with buckets that do not apply to it.
	_, err = carol.ListBuckets(t.Context(), &s3.ListBucketsInput{})
	checkS3Error(t, err, http.StatusForbidden, "AccessDenied")
	out, err := newS3Client(s.URL(), "erin", "erin-secret", nil).ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil || len(out.Buckets) != 1 || aws.ToString(out.Buckets[0].Name) != "alpha" {
		t.Fatalf("erin lists %v: %v", out, err)
	}
}
