package main

// Red-team probes of the example server, second round: the admin endpoints
// and the browser page's presign endpoints.

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func rt2Check(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}

func TestRedTeam2ExampleServer(t *testing.T) {
	s := startTestServer(t, demoConfig(t))
	page := s.PageURL()
	if page == "" {
		t.Fatal("no page")
	}
	secrets := []string{demoSecret, fakeS3Secret}
	noSecret := func(t *testing.T, what, body string) {
		t.Helper()
		for _, sec := range secrets {
			rt2Check(t, !strings.Contains(body, sec), "%s holds a secret", what)
		}
	}
	do := func(method, u, ct, origin string, body io.Reader) (*http.Response, string) {
		r, err := http.NewRequest(method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("admin", func(t *testing.T) {
		// Some traffic first, so that the metrics have labels.
		do(http.MethodGet, "http://"+s.Addr()+"/demo/some-key", "", "", nil)
		do(http.MethodGet, "http://"+s.Addr()+"/secret-bucket-name/k", "", "", nil)
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/", "/"} {
			resp, body := do(http.MethodGet, "http://"+s.AdminAddr()+path, "", "", nil)
			t.Logf("%s: %d", path, resp.StatusCode)
			noSecret(t, path, body)
			rt2Check(t, !strings.Contains(body, "some-key"), "%s names object keys", path)
			rt2Check(t, !strings.Contains(body, "secret-bucket-name"), "%s names buckets clients made up", path)
			rt2Check(t, !strings.Contains(body, demoKeyID), "%s names access keys", path)
		}
	})
	t.Run("config", func(t *testing.T) {
		resp, body := do(http.MethodGet, page+"api/config", "", "", nil)
		rt2Check(t, resp.StatusCode == 200, "status %d", resp.StatusCode)
		noSecret(t, "config", body)
	})
	t.Run("presign", func(t *testing.T) {
		// Control.
		resp, body := do(http.MethodPost, page+"api/presign/put", "application/json", "", strings.NewReader(`{"key":"a.txt"}`))
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		noSecret(t, "presign", body)
		for _, c := range []struct {
			name, op, ct, origin, body string
			status                     int
		}{
			{"form-csrf", "put", "application/x-www-form-urlencoded", "https://evil.example", `{"key":"x"}`, 415},
			{"text-plain-csrf", "post", "text/plain", "https://evil.example", `{"key":"x"}`, 415},
			{"text-plain-json-param", "post", "text/plain; x=application/json", "https://evil.example", `{"key":"x"}`, 415},
			{"oversize", "put", "application/json", "", `{"key":"` + strings.Repeat("k", 1<<20) + `"}`, 400},
			{"unknown-field", "put", "application/json", "", `{"key":"x","bucket":"other"}`, 400},
			{"content-type-crlf", "put", "application/json", "", `{"key":"x","content_type":"text/html\r\nX-Amz-Acl: public-read"}`, 400},
			{"bad-utf8-replaced-by-json", "put", "application/json", "", "{\"key\":\"\xff\"}", 200}, // encoding/json reads it as U+FFFD
		} {
			t.Run(c.name, func(t *testing.T) {
				resp, body := do(http.MethodPost, page+"api/presign/"+c.op, c.ct, c.origin, strings.NewReader(c.body))
				t.Logf("%d %.80s", resp.StatusCode, body)
				rt2Check(t, c.status == resp.StatusCode, "status %d, want %d", resp.StatusCode, c.status)
				rt2Check(t, resp.Header.Get("Access-Control-Allow-Origin") == "", "CORS: %q", resp.Header.Get("Access-Control-Allow-Origin"))
				noSecret(t, c.name, body)
			})
		}
		// A preflight from another origin is not answered with CORS headers.
		resp, _ = do(http.MethodOptions, page+"api/presign/put", "", "https://evil.example", nil)
		rt2Check(t, resp.Header.Get("Access-Control-Allow-Origin") == "", "CORS: %q", resp.Header.Get("Access-Control-Allow-Origin"))
		// Key injection: the key stays a key of the page's bucket, with no
		// query of its own.
		for _, key := range []string{"../other/x", "a?x-amz-acl=public-read", "a#b", "%2e%2e/x", "/abs"} {
			resp, body := do(http.MethodPost, page+"api/presign/put", "application/json", "", bytes.NewReader([]byte(`{"key":"`+key+`"}`)))
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			i := strings.Index(body, `"url":"`)
			if i < 0 {
				t.Fatal(body)
			}
			raw := strings.SplitN(body[i+7:], `"`, 2)[0]
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			rt2Check(t, strings.HasPrefix(u.EscapedPath(), "/demo/"), "key %q: %s", key, u.EscapedPath())
			rt2Check(t, "/demo/"+key == u.Path, "key %q: path %q", key, u.Path)
			rt2Check(t, !strings.Contains(u.RawQuery, "x-amz-acl=public-read"), "key %q: query %q", key, u.RawQuery)
		}
	})
}
