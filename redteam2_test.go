package proxy_test

// Red-team probes, second round: POST Object, CORS, caches and hooks, IAM,
// use limits, virtual hosts and path prefixes. Each case asserts the secure /
// S3-correct behaviour, so it fails when the proxy is vulnerable.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// rt2Policy signs a raw policy document (JSON) for the client keys at
// fixedNow and returns the signature fields (without key).
func rt2Policy(doc string) [][2]string {
	date := fixedNow.Format("20060102T150405Z")
	cred := unitKey + "/" + date[:8] + "/us-east-1/s3/aws4_request"
	doc = strings.ReplaceAll(strings.ReplaceAll(doc, "$CRED", cred), "$DATE", date)
	policy := base64.StdEncoding.EncodeToString([]byte(doc))
	k := []byte("AWS4" + unitSecret)
	for _, part := range []string{date[:8], "us-east-1", "s3", "aws4_request"} {
		k = itgHMAC(k, part)
	}
	return [][2]string{{"x-amz-algorithm", "AWS4-HMAC-SHA256"}, {"x-amz-credential", cred},
		{"x-amz-date", date}, {"policy", policy}, {"x-amz-signature", hex.EncodeToString(itgHMAC(k, policy))}}
}

// rt2Doc is a policy document for bucket "bucket" with the client's
// credential conditions and more conditions (JSON list items).
func rt2Doc(more ...string) string {
	conds := append([]string{`{"bucket":"bucket"}`, `{"x-amz-algorithm":"AWS4-HMAC-SHA256"}`,
		`{"x-amz-credential":"$CRED"}`, `{"x-amz-date":"$DATE"}`}, more...)
	return `{"expiration":"` + fixedNow.Add(time.Hour).Format(time.RFC3339) + `","conditions":[` + strings.Join(conds, ",") + `]}`
}

// rt2Form writes a multipart form with boundary B: fields, then a file part
// with the raw header lines fileHead, then file and the closing delimiter.
func rt2Form(boundary string, fields [][2]string, fileHead string, file string) string {
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", boundary, f[0], f[1])
	}
	fmt.Fprintf(&b, "--%s\r\n%s\r\n\r\n%s\r\n--%s--\r\n", boundary, fileHead, file, boundary)
	return b.String()
}

func rt2Post(p http.Handler, bucket, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/"+bucket, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return serve(p, r)
}

// rt2UpstreamPart returns the file name and the fields of the form the
// upstream received, read with mime/multipart as a Go S3 server reads it.
func rt2UpstreamForm(t *testing.T, s seen) (fields map[string]string, fileParam, fileBase string, file []byte) {
	t.Helper()
	_, params, err := mime.ParseMediaType(s.Header.Get("Content-Type"))
	require.NoError(t, err)
	mr := multipart.NewReader(bytes.NewReader(s.Body), params["boundary"])
	fields = map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		b, _ := io.ReadAll(part)
		if part.FormName() == "file" {
			_, dp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			fileParam, fileBase, file = dp["filename"], part.FileName(), b
			continue
		}
		fields[part.FormName()] = string(b)
	}
}

// TestRedTeam2PostObject: forms that try to make the upstream store another
// key than the one authorized, or carry what the policy did not cover, or
// make the proxy fail with 5xx.
func TestRedTeam2PostObject(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	// The client may write under public/ but not public/secret nor under
	// public/private/.
	var authorized []string
	var mu sync.Mutex
	rules := &recordingAuthz{decide: func(r proxy.AccessRequest) proxy.Decision {
		mu.Lock()
		authorized = append(authorized, r.Key)
		mu.Unlock()
		ok := strings.HasPrefix(r.Key, "public/") && r.Key != "public/secret" && !strings.HasPrefix(r.Key, "public/private/")
		return proxy.Decision{Allow: ok, Scope: proxy.ScopeKey}
	}}
	p := newProxy(t, up, proxy.WithRequestAuthorizer(rules.hook), proxy.WithSigV2(true))
	ct := "multipart/form-data; boundary=B"
	keyed := func(key string, more ...string) [][2]string {
		return append([][2]string{{"key", key}}, rt2Policy(rt2Doc(append([]string{`["starts-with","$key","public/"]`}, more...)...))...)
	}
	fileHead := func(name string) string {
		return `Content-Disposition: form-data; name="file"; filename="` + name + `"` + "\r\nContent-Type: text/plain"
	}

	// Control.
	w := rt2Post(p, "bucket", ct, rt2Form("B", keyed("public/${filename}"), fileHead("ok.txt"), "hello"))
	require.Equal(t, 204, w.Code, w.Body.String())
	f, param, _, file := rt2UpstreamForm(t, up.last(t))
	require.Equal(t, "public/ok.txt", f["key"], "the key the proxy authorized, ${filename} put in")
	require.Equal(t, "ok.txt", param)
	require.Equal(t, "hello", string(file))

	// The key the upstream stores (the key field with ${filename} replaced by
	// the upstream part's file name) must be a key the rules allow. S3 puts
	// the file name as sent; a Go server's Part.FileName() its base name.
	t.Run("filename", func(t *testing.T) {
		for _, c := range []struct{ name, filename string }{
			{"plain", "a.txt"},
			{"dot-dot", "../x"},
			{"quote", `a\"b`},
			{"backslash", `a\\b`},
			{"bare-CR", "secr\ret"},
			{"tab", "secr\tet"},
			{"rfc2231", "x"},
		} {
			t.Run(c.name, func(t *testing.T) {
				head := fileHead(c.filename)
				if c.name == "rfc2231" {
					head = `Content-Disposition: form-data; name="file"; filename="ok.txt"; filename*=UTF-8''secret`
				}
				before := len(up.requests())
				mu.Lock()
				authorized = nil
				mu.Unlock()
				w := rt2Post(p, "bucket", ct, rt2Form("B", keyed("public/${filename}"), head, "x"))
				t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
				assert.Less(t, w.Code, 500, w.Body.String())
				if len(up.requests()) == before {
					return
				}
				f, param, base, _ := rt2UpstreamForm(t, up.last(t))
				stored := strings.ReplaceAll(f["key"], "${filename}", param)
				mu.Lock()
				asked := append([]string(nil), authorized...)
				mu.Unlock()
				assert.Contains(t, asked, stored, "the upstream stores %q (S3: the name as sent), the proxy asked about %q", stored, asked)
				assert.NotEqual(t, "public/secret", stored)
				_ = base
			})
		}
	})

	for _, c := range []struct {
		name, contentType, body string
		wantOK                  bool
	}{
		{"preamble", ct, "preamble text\r\n" + rt2Form("B", keyed("public/a"), fileHead("f"), "data"), true},
		{"quoted-boundary-with-space", `multipart/form-data; boundary="B C"`, rt2Form("B C", keyed("public/a"), fileHead("f"), "data"), true},
		{"boundary-70", "multipart/form-data; boundary=" + strings.Repeat("b", 70), rt2Form(strings.Repeat("b", 70), keyed("public/a"), fileHead("f"), "data"), true},
		{"boundary-71", "multipart/form-data; boundary=" + strings.Repeat("b", 71), rt2Form(strings.Repeat("b", 71), keyed("public/a"), fileHead("f"), "data"), false},
		{"LF-only", ct, strings.ReplaceAll(rt2Form("B", keyed("public/a"), fileHead("f"), "data"), "\r\n", "\n"), false},
		{"transport-padding", ct, strings.ReplaceAll(rt2Form("B", keyed("public/a"), fileHead("f"), "data"), "--B\r\n", "--B \t\r\n"), true},
		{"boundary-in-field-value", ct, rt2Form("B", append(keyed("public/a", `["starts-with","$x-amz-meta-a",""]`), [2]string{"x-amz-meta-a", "v\r\n--B-x\r\n\r\nFAKE"}), fileHead("f"), "data"), false},
		{"file-part-CTE-base64", ct, rt2Form("B", keyed("public/a"), fileHead("f")+"\r\nContent-Transfer-Encoding: base64", "ZGF0YQ=="), true},
		{"two-files", ct, rt2Form("B", keyed("public/a"), fileHead("f"), "data\r\n--B\r\n"+fileHead("g")+"\r\n\r\nmore"), false},
		{"FILE-upper", ct, rt2Form("B", keyed("public/a"), strings.Replace(fileHead("f"), `name="file"`, `name="FILE"`, 1), "data"), true},
		{"key-dollar-condition-object", ct, rt2Form("B", append([][2]string{{"key", "public/secret"}}, rt2Policy(rt2Doc(`{"$key":"public/secret"}`))...), fileHead("f"), "data"), false},
		{"json-duplicate-condition-key", ct, rt2Form("B", append([][2]string{{"key", "public/private/x"}}, rt2Policy(rt2Doc(`{"key":"public/ok","key":"public/private/x"}`))...), fileHead("f"), "data"), false},
		{"unicode-escaped-field", ct, rt2Form("B", append([][2]string{{"key", "public/secret"}}, rt2Policy(rt2Doc(`{"\u006bey":"public/secret"}`))...), fileHead("f"), "data"), false},
		{"content-length-range-huge", ct, rt2Form("B", keyed("public/a", `["content-length-range",0,99999999999999999999999]`), fileHead("f"), "data"), false},
		{"content-length-range-negative", ct, rt2Form("B", keyed("public/a", `["content-length-range",-10,-1]`), fileHead("f"), "data"), false},
		{"content-length-range-float", ct, rt2Form("B", keyed("public/a", `["content-length-range",0,1e3]`), fileHead("f"), "data"), false},
		{"expiration-offset-past", ct, rt2Form("B", append([][2]string{{"key", "public/a"}}, rt2Policy(strings.Replace(rt2Doc(`["starts-with","$key",""]`), fixedNow.Add(time.Hour).Format(time.RFC3339), fixedNow.Add(time.Hour).Format("2006-01-02T15:04:05")+"+02:00", 1))...), fileHead("f"), "data"), false},
		{"conditions-object", ct, rt2Form("B", append([][2]string{{"key", "public/a"}}, rt2Policy(`{"expiration":"2099-01-01T00:00:00Z","conditions":{"bucket":"bucket"}}`)...), fileHead("f"), "data"), false},
		{"security-token-field", ct, rt2Form("B", append(keyed("public/a", `{"x-amz-security-token":"CLIENTTOKEN"}`), [2]string{"x-amz-security-token", "CLIENTTOKEN"}), fileHead("f"), "data"), true},
		{"sigv2-fields-with-v4-policy", ct, rt2Form("B", append(keyed("public/a"), [2]string{"AWSAccessKeyId", unitKey}, [2]string{"signature", "x"}), fileHead("f"), "data"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			w := rt2Post(p, "bucket", c.contentType, c.body)
			t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
			assert.Less(t, w.Code, 500, w.Body.String())
			got := up.requests()[before:]
			if c.wantOK {
				require.Equal(t, 204, w.Code, w.Body.String())
				// Only complete forms: a refused case before may still be
				// recorded as its cut upstream request ends.
				got = slices.DeleteFunc(got, func(s seen) bool { return strings.HasPrefix(s.SigErr, "body:") })
				require.Len(t, got, 1)
				f, _, _, file := rt2UpstreamForm(t, got[0])
				assert.Equal(t, "public/a", f["key"])
				wantFile := "data"
				if c.name == "file-part-CTE-base64" {
					wantFile = "ZGF0YQ=="
				}
				assert.Equal(t, wantFile, string(file), "the file as sent")
				for name := range f {
					assert.NotEqual(t, "x-amz-security-token", strings.ToLower(name), "the client's security token went upstream")
				}
				assert.NotContains(t, string(got[0].Body), "CLIENTTOKEN")
				return
			}
			for _, s := range got {
				assert.True(t, strings.HasPrefix(s.SigErr, "body:"), "the upstream got a complete form")
			}
		})
	}

	// Content-Length lies: shorter or longer than the body. Shorter by one or
	// two bytes cuts only the CRLF after the closing delimiter: the form and
	// its file are whole, as S3 takes them, and the file goes upstream intact.
	t.Run("content-length-lies", func(t *testing.T) {
		body := rt2Form("B", keyed("public/a"), fileHead("f"), "0123456789")
		for _, delta := range []int{-5, -3, -2, -1, 1, 5, 1000} {
			before := len(up.requests())
			r := httptest.NewRequest(http.MethodPost, "/bucket", strings.NewReader(body))
			r.ContentLength = int64(len(body) + delta)
			r.Header.Set("Content-Type", ct)
			w := serve(p, r)
			t.Logf("delta %d: %d %s", delta, w.Code, s3Code(w.Body.String()))
			assert.Less(t, w.Code, 500, "delta %d: %s", delta, w.Body.String())
			if delta == -1 || delta == -2 {
				require.Equal(t, 204, w.Code, "delta %d: %s", delta, w.Body.String())
				_, _, _, file := rt2UpstreamForm(t, up.last(t))
				assert.Equal(t, "0123456789", string(file), "delta %d: the file as sent", delta)
				continue
			}
			for _, s := range up.requests()[before:] {
				assert.True(t, strings.HasPrefix(s.SigErr, "body:"), "delta %d: the upstream got a complete form", delta)
			}
		}
	})

	// success_action_redirect to another origin: S3 redirects there; nothing
	// of the upstream (host, keys) is in the answer.
	t.Run("redirect-elsewhere", func(t *testing.T) {
		up.mu.Lock()
		up.handler = func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseMultipartForm(1 << 20)
			w.Header().Set("Location", r.FormValue("success_action_redirect")+"?bucket=bucket&key=public%2Fa&etag=%22e%22")
			w.WriteHeader(http.StatusSeeOther)
		}
		up.mu.Unlock()
		w := rt2Post(p, "bucket", ct, rt2Form("B", append(keyed("public/a", `{"success_action_redirect":"https://evil.example/cb"}`),
			[2]string{"success_action_redirect", "https://evil.example/cb"}), fileHead("f"), "data"))
		require.Equal(t, 303, w.Code, w.Body.String())
		loc := w.Header().Get("Location")
		assert.True(t, strings.HasPrefix(loc, "https://evil.example/cb?"), loc)
		for _, h := range w.Header() {
			for _, v := range h {
				assert.NotContains(t, v, upstreamKey)
				assert.NotContains(t, v, upstreamHost)
			}
		}
	})
}

// TestRedTeam2PostObjectTokenMode: in token mode a form's credential is the
// token, and the authorizer decides; its answer for one token is not another's.
func TestRedTeam2PostObjectTokenMode(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	p := tokenModeProxy(t, up, func(_ context.Context, token, bucket string) (bool, error) {
		return token == unitKey, nil
	}, proxy.WithClock(func() time.Time { return fixedNow }))
	doc := rt2Doc(`["starts-with","$key",""]`)
	good := append([][2]string{{"key", "k"}}, rt2Policy(doc)...)
	w := rt2Post(p, "bucket", "multipart/form-data; boundary=B", rt2Form("B", good, `Content-Disposition: form-data; name="file"; filename="f"`, "d"))
	require.Equal(t, 204, w.Code, w.Body.String())
	for _, tok := range []string{unitKey + "x", unitKey[:len(unitKey)-1], strings.ToUpper(unitKey), unitKey + "\x00"} {
		fields := append([][2]string{{"key", "k"}}, rt2Policy(strings.ReplaceAll(doc, "$CRED", tok+"/20261128/us-east-1/s3/aws4_request"))...)
		fields[2][1] = tok + "/20261128/us-east-1/s3/aws4_request"
		w := rt2Post(p, "bucket", "multipart/form-data; boundary=B", rt2Form("B", fields, `Content-Disposition: form-data; name="file"; filename="f"`, "d"))
		assert.NotEqual(t, 204, w.Code, "token %q", tok)
		assert.Less(t, w.Code, 500)
	}
}

// rt2Presign presigns a GET of target for key/secret at fixedNow.
func rt2Presign(t *testing.T, target, key, secret string) string {
	t.Helper()
	u := presign(t, http.MethodGet, "http://proxy.test"+target, fixedNow, time.Hour)
	if key == unitKey {
		return u.RequestURI()
	}
	r := httptest.NewRequest(http.MethodGet, "http://proxy.test"+target+"?X-Amz-Expires=3600", nil)
	signed, _, err := v4PresignFor(r, key, secret)
	require.NoError(t, err)
	return signed
}

// TestRedTeam2UseLimit: ways around a presigned URL's use limit, and ways to
// deny other clients' URLs.
func TestRedTeam2UseLimit(t *testing.T) {
	up := newFakeUpstream(t)
	t.Run("control", func(t *testing.T) {
		p := newProxy(t, up, proxy.WithPresignedUseLimit(1, nil))
		u := rt2Presign(t, "/bucket/k", unitKey, unitSecret)
		require.Equal(t, 200, serve(p, httptest.NewRequest(http.MethodGet, "http://proxy.test"+u, nil)).Code)
		require.Equal(t, 403, serve(p, httptest.NewRequest(http.MethodGet, "http://proxy.test"+u, nil)).Code)
	})
	t.Run("token-mode", func(t *testing.T) {
		// In token mode nothing is verified, so nothing could be
		// counted: New refuses the limit rather than accept it and never
		// apply it.
		p, err := proxy.New(
			proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
			proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil }),
			proxy.WithTransport(up.transport()), proxy.WithClock(func() time.Time { return fixedNow }),
			proxy.WithPresignedUseLimit(1, nil))
		require.ErrorContains(t, err, "use limit needs verified signatures", "refused at configuration")
		assert.Nil(t, p)
	})
	t.Run("counter-filled-by-denied-requests", func(t *testing.T) {
		// A client key the authorizer allows nothing fills the shared
		// counter with presigned URLs that are refused (403, nothing
		// forwarded); another client's URL must still work.
		p := newProxy(t, up, proxy.WithPresignedUseLimit(1, proxy.NewMemoryUseCounter(3)),
			proxy.WithClientKeys(map[string]string{unitKey: unitSecret, "mallory": "mallory-secret"}),
			proxy.WithAuthorizer(func(_ context.Context, token, _ string) (bool, error) { return token == unitKey, nil }))
		before := len(up.requests())
		for i := range 3 {
			u := rt2Presign(t, fmt.Sprintf("/bucket/k%d", i), "mallory", "mallory-secret")
			w := serve(p, httptest.NewRequest(http.MethodGet, "http://proxy.test"+u, nil))
			require.Equal(t, 403, w.Code, w.Body.String())
		}
		require.Len(t, up.requests(), before, "mallory's requests were refused")
		w := serve(p, httptest.NewRequest(http.MethodGet, "http://proxy.test"+rt2Presign(t, "/bucket/k", unitKey, unitSecret), nil))
		assert.Equal(t, 200, w.Code, "counted after authorization: %s", w.Body.String())
	})
}

// TestRedTeam2HookExhaustion: unauthenticated preflights for buckets nobody
// routes run the endpoint (and credentials) hooks each time and take the hook
// concurrency from signed clients.
func TestRedTeam2HookExhaustion(t *testing.T) {
	up := newFakeUpstream(t)
	release := make(chan struct{})
	var unknownCalls, credCalls atomic.Int32
	ep := func(ctx context.Context, bucket string) (proxy.Endpoint, error) {
		if bucket == "good" {
			return up.endpoint(), nil
		}
		unknownCalls.Add(1)
		select { // a slow lookup of an unknown name (a database, a remote API)
		case <-release:
		case <-ctx.Done():
		}
		return proxy.Endpoint{}, proxy.ErrNoSuchBucket
	}
	creds := func(context.Context, string) (proxy.Credentials, error) {
		credCalls.Add(1)
		return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
	}
	p, err := proxy.New(proxy.WithEndpoint(ep), proxy.WithCredentials(creds),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}), proxy.WithTransport(up.transport()),
		proxy.WithClock(func() time.Time { return fixedNow }), proxy.WithHookConcurrency(2),
		proxy.WithCORS(proxy.CORSRule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}}))
	require.NoError(t, err)
	defer p.Close()
	defer close(release)

	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(p, preflightRequest(fmt.Sprintf("/nobody-%d/k", i), "https://evil.example", "GET", ""))
		}()
	}
	// Preflights get a quarter of the hook's slots (at least one): one
	// waits in the hook, the other is refused at once.
	require.Eventually(t, func() bool { return unknownCalls.Load() == 1 }, 5*time.Second, time.Millisecond)
	w := serve(p, preflightRequest("/nobody-x/k", "https://evil.example", "GET", ""))
	assert.Equal(t, 503, w.Code, "a preflight past its slots")
	assert.Equal(t, "SlowDown", s3Code(w.Body.String()))
	r := httptest.NewRequest(http.MethodGet, "/good/k", nil)
	clientSign(t, r, sha256Hex(nil))
	w = serve(p, r)
	t.Logf("signed request while unauthenticated preflights wait: %d %s", w.Code, s3Code(w.Body.String()))
	assert.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, int32(1), unknownCalls.Load(), "one preflight in the hook at a time")
}

// TestRedTeam2HookErrorsAndPanics: what a failing hook says stays out of the
// client's answer.
func TestRedTeam2HookErrorsAndPanics(t *testing.T) {
	up := newFakeUpstream(t)
	const secret = "postgres://svc:hunter2@db.internal"
	for _, c := range []struct {
		name string
		ep   proxy.EndpointFunc
	}{
		{"error", func(context.Context, string) (proxy.Endpoint, error) {
			return proxy.Endpoint{}, errors.New("lookup " + secret)
		}},
		{"wrapped-nosuchbucket", func(context.Context, string) (proxy.Endpoint, error) {
			return proxy.Endpoint{}, fmt.Errorf("%s: %w", secret, proxy.ErrNoSuchBucket)
		}},
		{"panic", func(context.Context, string) (proxy.Endpoint, error) { panic(secret) }},
		{"bad-endpoint", func(context.Context, string) (proxy.Endpoint, error) { return proxy.Endpoint{Host: secret}, nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			p, err := proxy.New(proxy.WithEndpoint(c.ep),
				proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) {
					return proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, nil
				}),
				proxy.WithClientKeys(map[string]string{unitKey: unitSecret}), proxy.WithTransport(up.transport()),
				proxy.WithClock(func() time.Time { return fixedNow }),
				proxy.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			require.NoError(t, err)
			defer p.Close()
			r := httptest.NewRequest(http.MethodGet, "/some-bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			w := serve(p, r)
			t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
			assert.NotContains(t, w.Body.String(), "hunter2")
			for _, v := range w.Header() {
				assert.NotContains(t, strings.Join(v, " "), "hunter2")
			}
			assert.NotEqual(t, 200, w.Code)
			assert.NotContains(t, logs.String(), upstreamSecret)
		})
	}
}

// v4PresignFor presigns r (at fixedNow, us-east-1) for key/secret and returns
// the request URI.
func v4PresignFor(r *http.Request, key, secret string) (string, http.Header, error) {
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, h, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", fixedNow)
	if err != nil {
		return "", nil, err
	}
	_, rest, _ := strings.Cut(strings.TrimPrefix(signed, "http://"), "/")
	return "/" + rest, h, nil
}

// rt2Transport dials hosts ending in a key of routes at its address, any
// other host as it is.
func rt2Transport(routes map[string]string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		for suffix, to := range routes {
			if strings.HasSuffix(host, suffix) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", to)
			}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
}

// TestRedTeam2IAM: a bucket's bearer token goes only to its endpoint, never
// to a redirect's target, and never back to the client.
func TestRedTeam2IAM(t *testing.T) {
	iam := testkit.NewIAM(t, nil)
	iam.Answer(func(w http.ResponseWriter, r *http.Request, n int64) { // tokens as long as IAM's
		iam.Token(w, fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.tok-%d.%s", n, strings.Repeat("s", 40)), 3600)
	})
	var evilGot atomic.Int32
	var evilAuth atomic.Value
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilGot.Add(1)
		evilAuth.Store(r.Header.Get("Authorization"))
	}))
	defer evil.Close()
	up1, up2 := newFakeUpstream(t), newFakeUpstream(t)
	up1.handler = func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "redirect") {
			w.Header().Set("Location", evil.URL+"/steal")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, "ok "+r.Header.Get("Authorization"))
	}
	var logs bytes.Buffer
	p, err := proxy.New(
		proxy.WithBuckets(
			proxy.Bucket{Name: "iam1", Endpoint: proxy.Endpoint{Host: "s3.one.test", Port: up1.port(), Scheme: "http"}, Credentials: proxy.Credentials{APIKey: "api-key-one"}},
			proxy.Bucket{Name: "iam2", Endpoint: proxy.Endpoint{Host: "s3.two.test", Port: up2.port(), Scheme: "http"}, Credentials: proxy.Credentials{APIKey: "api-key-two"}}),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithIAMEndpoint(iam.URL),
		proxy.WithTransport(rt2Transport(map[string]string{"one.test": up1.addr(), "two.test": up2.addr()})),
		proxy.WithClock(func() time.Time { return fixedNow }),
		proxy.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	defer p.Close()
	get := func(target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		clientSign(t, r, sha256Hex(nil))
		return serve(p, r)
	}
	// Control: each bucket gets a bearer token.
	require.Equal(t, 200, get("/iam1/k").Code)
	require.Equal(t, 200, get("/iam2/k").Code)
	t1, t2 := up1.last(t).Header.Get("Authorization"), up2.last(t).Header.Get("Authorization")
	require.True(t, strings.HasPrefix(t1, "Bearer "), t1)
	require.NotEqual(t, t1, t2, "each bucket's endpoint gets its own key's token")

	t.Run("no-token-in-answer", func(t *testing.T) {
		w := get("/iam1/k")
		tok := strings.TrimPrefix(t1, "Bearer ")
		for name, v := range w.Header() {
			assert.NotContains(t, strings.Join(v, " "), tok, "header %s", name)
		}
		// The body is the upstream's own: an upstream echoing the token in a
		// 200 body is the upstream's doing; logged below.
		t.Logf("body echo of the token passes: %t", strings.Contains(w.Body.String(), tok))
		assert.NotContains(t, logs.String(), tok)
		assert.NotContains(t, logs.String(), "api-key-one")
	})
	t.Run("redirect-not-followed", func(t *testing.T) {
		w := get("/iam1/redirect")
		t.Logf("%d %s", w.Code, w.Header().Get("Location"))
		assert.Zero(t, evilGot.Load(), "the proxy followed the upstream's redirect (Authorization %v)", evilAuth.Load())
	})
}

// TestRedTeam2CORS: origins a wildcard rule must not let in, and answers
// that must not invite credentials.
func TestRedTeam2CORS(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://upstream-says.example")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		_, _ = io.WriteString(w, "ok")
	}
	p := newProxy(t, up, proxy.WithCORS(
		proxy.CORSRule{AllowedOrigins: []string{"https://*.example.com"}, AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"x-amz-*"}},
		proxy.CORSRule{AllowedOrigins: []string{"https://app.test"}, AllowedMethods: []string{"GET"}}))
	// Control.
	w := serve(p, preflightRequest("/bucket/k", "https://a.example.com", "GET", ""))
	require.Equal(t, 200, w.Code, w.Body.String())
	require.Equal(t, "https://a.example.com", w.Header().Get("Access-Control-Allow-Origin"))

	for _, origin := range []string{
		"https://evil.com/.example.com", "https://a.example.com.evil.com", "https://example.com", "null",
		"http://a.example.com", "https://a.example.com:443@evil.com", "HTTPS://A.EXAMPLE.COM.evil", "https://app.test.evil",
		"https://app.test/", "",
	} {
		t.Run("origin="+origin, func(t *testing.T) {
			w := serve(p, preflightRequest("/bucket/k", origin, "GET", ""))
			acao := w.Header().Get("Access-Control-Allow-Origin")
			t.Logf("%d %q", w.Code, acao)
			assert.Less(t, w.Code, 500)
			// "https://evil.com/.example.com" matches "https://*.example.com"
			// as S3 matches it; no browser sends an origin with a path.
			if origin != "" && !strings.HasSuffix(origin, ".example.com") {
				assert.Empty(t, acao)
			}
			// An actual request from it, signed.
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			r.Header.Set("Origin", origin)
			clientSign(t, r, sha256Hex(nil))
			w = serve(p, r)
			require.Equal(t, 200, w.Code)
			assert.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"), "credentials invited")
			if origin != "" && !strings.HasSuffix(origin, ".example.com") {
				assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
			}
			assert.NotEqual(t, "https://upstream-says.example", w.Header().Get("Access-Control-Allow-Origin"))
		})
	}
	t.Run("preflight-with-credentials", func(t *testing.T) {
		// A preflight carrying a signature is still a preflight: nothing
		// upstream, no hooks, no use of the credentials.
		before := len(up.requests())
		r := preflightRequest("/bucket/k", "https://a.example.com", "PUT", "x-amz-acl")
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Equal(t, 200, w.Code)
		assert.Len(t, up.requests(), before)
		// Without WithCORS it is forwarded, without the client's credentials.
		p2 := newProxy(t, up)
		r = preflightRequest("/bucket/k", "https://a.example.com", "GET", "")
		clientSign(t, r, sha256Hex(nil))
		r.Header.Set("X-Amz-Security-Token", "CLIENTTOKEN")
		serve(p2, r)
		got := up.last(t)
		assert.Empty(t, got.Header.Get("Authorization"))
		assert.Empty(t, got.Header.Get("X-Amz-Security-Token"))
		assert.Empty(t, got.Header.Get("X-Amz-Date"))
	})
	t.Run("vary", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		r.Header.Set("Origin", "https://evil.test")
		clientSign(t, r, sha256Hex(nil))
		w := serve(p, r)
		assert.Contains(t, w.Header().Values("Vary"), "Origin", "an answer that would differ by Origin says so")
	})
}

// TestRedTeam2HostAndPrefix: the bucket a request names is the one asked
// about and the one the upstream gets.
func TestRedTeam2HostAndPrefix(t *testing.T) {
	up := newFakeUpstream(t)
	other := proxy.Bucket{Name: "other", Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}
	var asked []string
	var mu sync.Mutex
	p := newProxy(t, up, proxy.WithBuckets(other), proxy.WithVirtualHostDomains("s3.proxy.test"), proxy.WithPathPrefix("/s3"),
		proxy.WithAuthorizer(func(_ context.Context, _, bucket string) (bool, error) {
			mu.Lock()
			asked = append(asked, bucket)
			mu.Unlock()
			return true, nil
		}))
	for _, c := range []struct {
		name, host, target, xfh string
		bucket                  string // "" for refused
	}{
		{"path-control", "proxy.test", "/s3/bucket/k", "", "bucket"},
		{"vhost-control", "bucket.s3.proxy.test", "/s3/k", "", "bucket"},
		{"vhost-port", "bucket.s3.proxy.test:8443", "/s3/k", "", "bucket"},
		{"vhost-upper", "BUCKET.S3.PROXY.TEST", "/s3/k", "", "bucket"},
		{"vhost-trailing-dot", "bucket.s3.proxy.test.", "/s3/k", "", "bucket"},
		{"vhost-path-names-other", "bucket.s3.proxy.test", "/s3/other/k", "", "bucket"},
		{"vhost-nested", "x.bucket.s3.proxy.test", "/s3/k", "", ""},
		{"vhost-ip", "127.0.0.1", "/s3/other/k", "", "other"},
		{"x-forwarded-host-ignored", "proxy.test", "/s3/other/k", "bucket.s3.proxy.test", "other"},
		{"prefix-lookalike", "proxy.test", "/s3x/bucket/k", "", ""},
		{"prefix-dotdot", "proxy.test", "/s3/../bucket/k", "", ""},
		{"prefix-encoded", "proxy.test", "/%73%33/bucket/k", "", ""},
		{"prefix-double-slash", "proxy.test", "/s3//bucket/k", "", ""},
		{"no-prefix", "proxy.test", "/bucket/k", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			asked = nil
			mu.Unlock()
			before := len(up.requests())
			r := httptest.NewRequest(http.MethodGet, "http://"+c.host+c.target, nil)
			r.Host = c.host
			if c.xfh != "" {
				r.Header.Set("X-Forwarded-Host", c.xfh)
			}
			clientSign(t, r, sha256Hex(nil))
			w := serve(p, r)
			t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
			assert.Less(t, w.Code, 500)
			got := up.requests()[before:]
			if c.bucket == "" {
				assert.NotEqual(t, 200, w.Code)
				assert.Empty(t, got)
				return
			}
			require.Equal(t, 200, w.Code, w.Body.String())
			require.Len(t, got, 1)
			assert.True(t, strings.HasPrefix(got[0].Host, c.bucket+".") || strings.HasPrefix(got[0].RequestURI, "/"+c.bucket+"/"), "upstream %s %s", got[0].Host, got[0].RequestURI)
			mu.Lock()
			if len(asked) > 0 { // else a cached answer, for the same bucket as a case before
				assert.Equal(t, []string{c.bucket}, asked)
			}
			mu.Unlock()
		})
	}
}

// TestRedTeam2AuthCacheTokens: an answer cached for one token is never
// another's, whatever bytes the tokens hold.
func TestRedTeam2AuthCacheTokens(t *testing.T) {
	up := newFakeUpstream(t)
	p := tokenModeProxy(t, up, func(_ context.Context, token, bucket string) (bool, error) {
		return token == "alice" && bucket == "bucket", nil
	}, proxy.WithBuckets(proxy.Bucket{Name: "bucket2", Endpoint: up.endpoint(), Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}))
	require.Equal(t, 200, tokenGet(t, p, "alice", "/bucket/k").Code)
	for _, c := range []struct{ token, path string }{
		{"alicebucket", "/bucket/k"}, {"alic", "/bucket/k"}, {"Alice", "/bucket/k"}, {"alice ", "/bucket/k"},
		{"alice\x00", "/bucket/k"}, {"alice", "/bucket2/k"}, {"alice/bucket", "/bucket/k"}, {"alice", "/BUCKET/k"},
	} {
		w := tokenGet(t, p, c.token, c.path)
		assert.NotEqual(t, 200, w.Code, "token %q %s", c.token, c.path)
		assert.Less(t, w.Code, 500, "token %q %s: %s", c.token, c.path, w.Body.String())
	}
}
