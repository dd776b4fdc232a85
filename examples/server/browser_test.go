package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"
	"github.com/osproxy/proxy/internal/vgwtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sharedVGW.Stop()
	os.Exit(code)
}

// sharedVGW is the versitygw of this test binary, stopped by TestMain.
var sharedVGW vgwtest.Shared

// versity returns the shared versitygw, started on first use. Without a
// versitygw binary (VERSITYGW, or versitygw on PATH) the test is skipped, or
// fails when OSP_REQUIRE_INTEGRATION=1.
func versity(t *testing.T) *vgwtest.Server {
	t.Helper()
	return sharedVGW.Get(t)
}

// chromium returns the path of Debian's Chromium ($OSP_CHROMIUM, else
// /usr/bin/chromium, else chromium on PATH); without it the test is skipped,
// or fails when OSP_REQUIRE_INTEGRATION=1.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OSP_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if vgwtest.RequireIntegration() {
		t.Fatal("OSP_REQUIRE_INTEGRATION=1 but Chromium is not installed: apt-get install chromium (scripts/test does), or set OSP_CHROMIUM")
	}
	t.Skip("skipped: Chromium is not installed (apt-get install chromium, or set OSP_CHROMIUM; OSP_REQUIRE_INTEGRATION=1 makes this a failure)")
	return ""
}

// TestBrowserPage loads the browser page in a real, headless Chromium from one
// origin and has it talk to the proxy on another, in front of versitygw: it
// lists the bucket, uploads a file with a presigned PUT and with a presigned
// POST form, and each upload must land in versitygw byte for byte. A
// screenshot of the page after the uploads is left in the test's artifact
// directory (a temporary one, kept with go test -artifacts).
func TestBrowserPage(t *testing.T) {
	chrome := chromium(t)
	v := versity(t)
	const bucket = "browser-page"
	store := newS3Client(v.URL(), vgwtest.AccessKey, vgwtest.SecretKey, nil)
	if _, err := store.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}

	// The page's port is known before the server starts, so that the
	// proxy's CORS policy can name the page's origin exactly.
	pagePort, err := vgwtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pageOrigin := fmt.Sprintf("http://127.0.0.1:%d", pagePort)
	s := startConfigServer(t, fmt.Sprintf(`
clients:
  keys:
    - access_key_id: page-client
      secret_access_key: page-client-secret
      rules:
        - actions: [s3:ListBucket]
        - actions: [s3:PutObject]
          prefix: "from the browser/"
    - {access_key_id: other-client, secret_access_key: other-secret}
buckets:
  - {name: %s, host: 127.0.0.1, port: %d, scheme: http, path_style: true, access_key_id: %s, secret_access_key: %s}
cors:
  - allowed_origins: [%q]
    allowed_methods: [GET, PUT, POST, HEAD]
    allowed_headers: ["*"]
    expose_headers: [ETag, x-amz-request-id, Location]
browser:
  listen: 127.0.0.1:%d
  client_key: page-client
`, bucket, v.Port, vgwtest.AccessKey, vgwtest.SecretKey, pageOrigin, pagePort))
	if got := s.PageURL(); got != pageOrigin+"/" {
		t.Fatalf("page at %s, want %s/", got, pageOrigin)
	}

	read := func(key string) ([]byte, string, error) {
		out, err := store.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return nil, "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return b, aws.ToString(out.ContentType), err
	}
	ctx := useBrowserPage(t, chrome, s.PageURL(), s.URL(), []browserUpload{
		{"put", "from the browser/put.bin"},
		{"post", "from the browser/post.bin"},
	}, read)

	// Uploads the client key's rules deny: the proxy's 403 reaches the page,
	// which reads S3's Code and Message across origins.
	for _, op := range []string{"put", "post"} {
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#key"), "elsewhere/denied.bin"), chromedp.Click(chromedp.CSS("#"+op))); err != nil {
			t.Fatal(err)
		}
		state, text := pageLog(t, ctx, op, 2)
		if state != "error" || !strings.Contains(text, "403") || !strings.Contains(text, "AccessDenied: ") || !strings.Contains(text, "(request ") {
			t.Errorf("a denied %s: the page logs %s: %s", op, state, text)
		}
		t.Logf("denied %s: %s", op, text)
	}
	if _, _, err := read("elsewhere/denied.bin"); err == nil {
		t.Error("a denied upload is in the store")
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "browser-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page after the uploads: %s", shot)
}

// browserUpload is an upload the page makes: with the button of op (put or
// post), to key.
type browserUpload struct{ op, key string }

// useBrowserPage loads the page at pageURL in a new headless Chromium, checks
// that it is another origin than the proxy's, and uploads a file (every byte
// value, and more) with each of uploads in turn. read reads an object back
// from the store, not through the page: each must hold the file byte for byte,
// with the page's content type. At the end the page's listing must show the
// uploads alone, with their size. It returns the browser's tab.
func useBrowserPage(t *testing.T, chrome, pageURL, proxyURL string, uploads []browserUpload, read func(key string) ([]byte, string, error)) context.Context {
	t.Helper()
	ctx := newBrowser(t, chrome)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("load the page", chromedp.Navigate(pageURL))
	waitLog(t, ctx, "list", 1) // the page lists the bucket as it loads
	if origin, err := chromedp.Run(ctx, chromedp.Evaluate[string]("location.origin")); err != nil || origin == proxyURL {
		t.Fatalf("the page's origin %q (%v) is the proxy's %s", origin, err, proxyURL)
	}

	body := make([]byte, 300<<10)
	for i := range 256 {
		body[i] = byte(i)
	}
	_, _ = rand.Read(body[256:])
	file := filepath.Join(t.TempDir(), "upload.bin")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}

	done := map[string]int{} // uploads per op
	for _, up := range uploads {
		done[up.op]++
		run("upload with "+up.op,
			chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
			chromedp.SetValue(chromedp.CSS("#key"), up.key),
			chromedp.Click(chromedp.CSS("#"+up.op)),
		)
		t.Logf("%s: %s", up.op, waitLog(t, ctx, up.op, done[up.op]))
		got, ct, err := read(up.key)
		if err != nil {
			t.Fatalf("%s: the object is not in the store: %v", up.op, err)
		}
		if !bytes.Equal(got, body) {
			t.Errorf("%s: the store holds %d bytes, not the %d bytes of the file", up.op, len(got), len(body))
		}
		if ct != "application/octet-stream" {
			t.Errorf("%s: Content-Type %q, want the page's application/octet-stream", up.op, ct)
		}
	}

	// The listing after the last upload shows every object with its size.
	rows, err := chromedp.Run(ctx, chromedp.Poll[map[string]string](fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll('#objects tbody tr')];
		return rows.length >= %d && Object.fromEntries(rows.map((r) => [r.dataset.key, r.dataset.size]));
	})()`, len(uploads)), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the listing: %v", err)
	}
	size := fmt.Sprint(len(body))
	for _, up := range uploads {
		if rows[up.key] != size {
			t.Errorf("listing = %v, want %q of %s bytes", rows, up.key, size)
		}
	}
	if len(rows) != len(uploads) {
		t.Errorf("listing = %v, want the %d uploads alone", rows, len(uploads))
	}
	return ctx
}

// TestBrowserDemo: the demo's page, reached as localhost (the demo's CORS
// policy allows that origin too), uploads through the demo's proxy to its
// in-memory S3.
func TestBrowserDemo(t *testing.T) {
	chrome := chromium(t)
	s := startTestServer(t, demoConfig(t))
	page := strings.Replace(s.PageURL(), "127.0.0.1", "localhost", 1)
	c := newClient(s.Addr(), demoKeyID, demoSecret)
	useBrowserPage(t, chrome, page, s.URL(), []browserUpload{{"put", "put.bin"}, {"post", "post.bin"}}, func(key string) ([]byte, string, error) {
		out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(key)})
		if err != nil {
			return nil, "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return b, aws.ToString(out.ContentType), err
	})
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// context of one tab in it; the browser stops when the test ends. What the page
// writes to its console goes to the test's log.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // as root, and in containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1100, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancelTime()
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	console := make(chan struct{})
	go func() {
		defer close(console)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			t.Logf("page console: %s", m)
		}
	}()
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
		<-console
	})
	return ctx
}

// pageLog waits for the page's nth log line about op (counting from 1, the
// oldest) and returns its state, "ok" or "error", and its text.
func pageLog(t *testing.T, ctx context.Context, op string, n int) (state, text string) {
	t.Helper()
	res, err := chromedp.Run(ctx, chromedp.Poll[json.RawMessage](
		fmt.Sprintf(`(() => {
			const lines = document.querySelectorAll('#log li[data-op=%q]'); // newest first
			const li = lines.length >= %d && lines[lines.length - %d];
			return li && {state: li.dataset.state, text: li.textContent};
		})()`, op, n, n),
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("waiting for the page to log %s #%d: %v", op, n, err)
	}
	var line struct{ State, Text string }
	if err := json.Unmarshal(res, &line); err != nil {
		t.Fatal(err)
	}
	return line.State, line.Text
}

// waitLog is pageLog for a line that must say the operation went well.
func waitLog(t *testing.T, ctx context.Context, op string, n int) string {
	t.Helper()
	state, text := pageLog(t, ctx, op, n)
	if state != "ok" {
		t.Fatalf("the page logs %s: %s", state, text)
	}
	return text
}

// TestBrowserPageEndpoints checks the page's own endpoints over plain HTTP,
// without a browser: what it serves, what it presigns, and that a presigned
// PUT goes through the demo's proxy from the page's origin.
func TestBrowserPageEndpoints(t *testing.T) {
	s := startTestServer(t, demoConfig(t))
	page := s.PageURL()
	if page == "" {
		t.Fatal("the demo serves no browser page")
	}
	origin := strings.TrimSuffix(page, "/")

	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(html), `id="put"`) || !strings.Contains(string(html), `id="post"`) {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, html)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+s.URL()) {
		t.Errorf("Content-Security-Policy %q does not let the page reach the proxy", csp)
	}

	var cfg map[string]string
	getJSON(t, page+"api/config", &cfg)
	if cfg["bucket"] != demoBucket || cfg["proxy_url"] != s.URL() || cfg["access_key_id"] != demoKeyID {
		t.Errorf("api/config = %v", cfg)
	}

	var put presigned
	if status := postJSON(t, page+"api/presign/put", `{"key":"dir/a b+c.txt","content_type":"text/plain"}`, &put); status != http.StatusOK {
		t.Fatalf("presign put: %d", status)
	}
	if !strings.HasPrefix(put.URL, s.URL()+"/"+demoBucket+"/dir/a%20b%2Bc.txt?") || put.Headers["Content-Type"] != "text/plain" {
		t.Errorf("presigned PUT = %+v", put)
	}
	req, _ := http.NewRequest(put.Method, put.URL, strings.NewReader("hello"))
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "text/plain")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("presigned PUT from the page's origin: %d %v", resp.StatusCode, resp.Header)
	}
	if got := getObject(t, newClient(s.Addr(), demoKeyID, demoSecret), "dir/a b+c.txt"); string(got) != "hello" {
		t.Errorf("object = %q", got)
	}

	var list presigned
	postJSON(t, page+"api/presign/list", `{}`, &list)
	resp, err = http.Get(list.URL)
	if err != nil {
		t.Fatal(err)
	}
	listing, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(listing), "<Key>dir/a b+c.txt</Key>") {
		t.Errorf("presigned listing: %d\n%s", resp.StatusCode, listing)
	}

	var post presigned
	postJSON(t, page+"api/presign/post", `{"key":"k","content_type":"text/plain"}`, &post)
	if post.URL != s.URL()+"/"+demoBucket || post.Fields["key"] != "k" || post.Fields["policy"] == "" ||
		post.Fields["success_action_status"] != "201" || post.Fields["Content-Type"] != "text/plain" {
		t.Errorf("presigned POST = %+v", post)
	}
	for name := range post.Fields {
		if strings.Contains(strings.ToLower(name), "secret") || strings.Contains(post.Fields[name], demoSecret) {
			t.Errorf("field %s holds the secret", name)
		}
	}

	for _, bad := range []struct {
		path, ctype, body string
		status            int
	}{
		{"api/presign/put", "application/json", `{"key":""}`, http.StatusBadRequest},
		{"api/presign/put", "application/json", `{"key":"k","content_type":"not a type"}`, http.StatusBadRequest},
		{"api/presign/put", "application/json", `{"key":"` + strings.Repeat("k", 1025) + `"}`, http.StatusBadRequest},
		{"api/presign/put", "application/json", `{"key":"k","acl":"public-read"}`, http.StatusBadRequest},
		{"api/presign/put", "application/x-www-form-urlencoded", `key=k`, http.StatusUnsupportedMediaType},
		{"api/presign/delete", "application/json", `{"key":"k"}`, http.StatusNotFound},
	} {
		resp, err := http.Post(page+bad.path, bad.ctype, strings.NewReader(bad.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != bad.status {
			t.Errorf("POST %s %s: %d, want %d", bad.path, bad.body[:min(len(bad.body), 40)], resp.StatusCode, bad.status)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
}

func postJSON(t *testing.T, url, body string, v any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp.StatusCode
}

// TestBrowserPageConcurrent serves the page's files and endpoints to many
// requests at once, as a browser loading it does; run with -race, it catches
// handlers that share what they change.
func TestBrowserPageConcurrent(t *testing.T) {
	for _, proxyURL := range []string{"http://127.0.0.1:9000", ""} {
		front := &net.TCPAddr{IP: net.IPv4zero, Port: 9000}
		p, err := newBrowserPage("b", "key", "secret", "us-east-1", proxyURL, front, false, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				var req *http.Request
				switch i % 4 {
				case 0:
					req = httptest.NewRequest(http.MethodGet, "http://page.test/", nil)
				case 1:
					req = httptest.NewRequest(http.MethodGet, "http://page.test/api/config", nil)
				default:
					req = httptest.NewRequest(http.MethodPost, "http://page.test/api/presign/put", strings.NewReader(`{"key":"k"}`))
					req.Header.Set("Content-Type", "application/json")
				}
				rec := httptest.NewRecorder()
				p.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Errorf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
				}
				if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' http://") {
					t.Errorf("Content-Security-Policy %q", csp)
				}
			})
		}
		wg.Wait()
	}
}
