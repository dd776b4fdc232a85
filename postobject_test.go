package proxy_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// POST Object against the fake upstream: what the upstream gets (a form of
// the proxy's, signed with the upstream's keys, with the client's conditions
// and the file byte for byte), and what is refused before it gets anything.

// unitSide is the proxy as a POST Object client sees it in the unit tests.
func unitSide(srv *httptest.Server) *itgSide {
	return &itgSide{name: "unit", base: srv.URL, key: unitKey, secret: unitSecret, hc: srv.Client()}
}

// upstreamForm is a form as the upstream received it.
type upstreamForm struct {
	fields   map[string]string
	order    []string
	policy   map[string]any
	fileName string
	fileType string
	file     []byte
}

// parseUpstreamForm parses the form the upstream received and checks its
// policy signature with the upstream's keys.
func parseUpstreamForm(t *testing.T, s seen) upstreamForm {
	t.Helper()
	require.Empty(t, s.Header.Get("Authorization"), "a form carries its signature in its fields")
	for name := range s.Header {
		require.False(t, strings.HasPrefix(name, "X-Amz-"), "client header %s forwarded", name)
	}
	require.Equal(t, fmt.Sprint(len(s.Body)), s.Header.Get("Content-Length"), "the form goes with its length")
	mt, params, err := mime.ParseMediaType(s.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/form-data", mt)
	mr := multipart.NewReader(bytes.NewReader(s.Body), params["boundary"])
	f := upstreamForm{fields: map[string]string{}}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(part)
		require.NoError(t, err)
		if part.FormName() == "file" {
			f.file, f.fileName, f.fileType = b, part.FileName(), part.Header.Get("Content-Type")
			continue
		}
		require.Nil(t, f.file, "a field after the file")
		f.fields[part.FormName()] = string(b)
		f.order = append(f.order, part.FormName())
	}
	cred := f.fields["x-amz-credential"]
	require.True(t, strings.HasPrefix(cred, upstreamKey+"/"+fixedNow.Format("20060102")+"/eu-de/s3/aws4_request"), cred)
	require.Equal(t, fixedNow.Format("20060102T150405Z"), f.fields["x-amz-date"])
	require.Equal(t, "AWS4-HMAC-SHA256", f.fields["x-amz-algorithm"])
	key := []byte("AWS4" + upstreamSecret)
	for _, part := range []string{fixedNow.Format("20060102"), "eu-de", "s3", "aws4_request"} {
		key = itgHMAC(key, part)
	}
	require.Equal(t, hex.EncodeToString(itgHMAC(key, f.fields["policy"])), f.fields["x-amz-signature"], "the upstream's policy signature")
	doc, err := base64.StdEncoding.DecodeString(f.fields["policy"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(doc, &f.policy))
	return f
}

func TestPostObjectUpstreamForm(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"etag"`)
		w.Header().Set("Location", fmt.Sprintf("http://bucket.%s:%d/dir%%2Fphoto.jpg", upstreamHost, up.port()))
		w.WriteHeader(http.StatusNoContent)
	}
	srv := httptest.NewServer(newProxy(t, up))
	defer srv.Close()
	s := unitSide(srv)

	file := []byte("first line\r\n--not the boundary\r\n\r\nlast line ending in a partial delimiter \r\n--")
	resp, body, err := itgPostSigned(t.Context(), s, "bucket", itgForm{
		Key: "dir/${filename}", At: fixedNow, File: file, FileName: "photo.jpg", FileType: "image/jpeg",
		Fields: [][2]string{{"Content-Type", "image/jpeg"}, {"x-amz-meta-Owner", "alice"}},
		Conds:  []any{[]any{"content-length-range", 0, 1000}},
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)
	require.Equal(t, srv.URL+"/bucket/dir%2Fphoto.jpg", resp.Header.Get("Location"), "the Location names the proxy")

	f := parseUpstreamForm(t, up.last(t))
	require.Equal(t, file, f.file)
	require.Equal(t, "photo.jpg", f.fileName)
	require.Equal(t, "image/jpeg", f.fileType)
	require.Equal(t, []string{"key", "Content-Type", "x-amz-meta-Owner", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "policy", "x-amz-signature"}, f.order,
		"the client's fields in their order, then the proxy's signature fields")
	require.Equal(t, "dir/photo.jpg", f.fields["key"], "the key the proxy authorized, with ${filename} put in, not left to the upstream")
	conds, _ := json.Marshal(f.policy["conditions"])
	require.JSONEq(t, `[{"bucket":"bucket"},{"Content-Type":"image/jpeg"},{"x-amz-meta-Owner":"alice"},
		["content-length-range",0,1000],
		{"x-amz-algorithm":"AWS4-HMAC-SHA256"},{"x-amz-credential":"`+f.fields["x-amz-credential"]+`"},{"x-amz-date":"`+f.fields["x-amz-date"]+`"},
		{"key":"dir/photo.jpg"}]`,
		string(conds), "the client's conditions, but those on its credential and on the key, and the upstream's")
	require.Equal(t, fixedNow.Add(10*time.Minute).Format("2006-01-02T15:04:05.000Z"), f.policy["expiration"], "the client's expiration")
}

// The file streams in whatever pieces the client sends it, and may hold
// anything but the delimiter.
func TestPostObjectFileBytes(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	p := newProxy(t, up)
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"CRLFs and dashes", []byte("\r\n\r\n--\r\n-\r--\n--")},
		{"64 KiB", itgRandom(64<<10, 3)},
	} {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/one byte reads %t", c.name, oneByte), func(t *testing.T) {
				var body bytes.Buffer
				mw := multipart.NewWriter(&body)
				fields := unitPostFields(t, mw.Boundary(), "k", nil)
				for _, kv := range fields {
					_ = mw.WriteField(kv[0], kv[1])
				}
				w, _ := mw.CreateFormFile("file", "f.bin")
				_, _ = w.Write(c.file)
				_ = mw.Close()
				var src io.Reader = bytes.NewReader(body.Bytes())
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				r := httptest.NewRequest(http.MethodPost, "/bucket", io.NopCloser(src))
				r.ContentLength = int64(body.Len())
				r.Header.Set("Content-Type", mw.FormDataContentType())
				rec := serve(p, r)
				require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
				got := parseUpstreamForm(t, up.last(t)).file
				require.True(t, bytes.Equal(c.file, got), "the file changed on the way: %d bytes sent, %d stored", len(c.file), len(got))
			})
		}
	}
}

// unitPostFields returns the signed fields of a form for key at fixedNow, with
// the client's keys, under the conditions more.
func unitPostFields(t *testing.T, _ string, key string, more []any) [][2]string {
	t.Helper()
	date := fixedNow.Format("20060102T150405Z")
	cred := unitKey + "/" + date[:8] + "/us-east-1/s3/aws4_request"
	conds := append([]any{map[string]string{"bucket": "bucket"}, map[string]string{"key": key},
		map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"}, map[string]string{"x-amz-credential": cred},
		map[string]string{"x-amz-date": date}}, more...)
	doc, err := json.Marshal(map[string]any{"expiration": fixedNow.Add(time.Hour).Format(time.RFC3339), "conditions": conds})
	require.NoError(t, err)
	policy := base64.StdEncoding.EncodeToString(doc)
	k := []byte("AWS4" + unitSecret)
	for _, part := range []string{date[:8], "us-east-1", "s3", "aws4_request"} {
		k = itgHMAC(k, part)
	}
	return [][2]string{{"key", key}, {"x-amz-algorithm", "AWS4-HMAC-SHA256"}, {"x-amz-credential", cred},
		{"x-amz-date", date}, {"policy", policy}, {"x-amz-signature", hex.EncodeToString(itgHMAC(k, policy))}}
}

// Forms the proxy refuses: S3's answer, and the upstream gets no complete
// form (nothing is stored).
func TestPostObjectRefused(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	p := newProxy(t, up)
	signed := func(key string) string {
		var b strings.Builder
		for _, kv := range unitPostFields(t, "", key, nil) {
			fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", kv[0], kv[1])
		}
		return b.String()
	}
	file := "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nDATA"
	for _, c := range []struct {
		name, body, contentType string
		chunked                 bool
		status                  int
		code                    string
	}{
		{"no file", signed("k") + "--B--\r\n", "", false, 400, "IncorrectNumberOfFilesInPostRequest"},
		{"a field after the file", signed("k") + file + "\r\n--B\r\nContent-Disposition: form-data; name=\"x-ignore-a\"\r\n\r\nv\r\n--B--\r\n", "", false, 400, "MalformedPOSTRequest"},
		{"cut in the file", signed("k") + file, "", false, 400, "MalformedPOSTRequest"},
		{"cut in the fields", signed("k")[:300], "", false, 400, "MalformedPOSTRequest"},
		{"fields past 20 KiB", "--B\r\nContent-Disposition: form-data; name=\"x-ignore-pad\"\r\n\r\n" + strings.Repeat("p", 21<<10) + "\r\n" + signed("k") + file + "\r\n--B--\r\n", "", false, 400, "MaxPostPreDataLengthExceeded"},
		{"no boundary", signed("k") + file + "\r\n--B--\r\n", "multipart/form-data", false, 400, "MalformedPOSTRequest"},
		{"no Content-Length", signed("k") + file + "\r\n--B--\r\n", "", true, 411, "MissingContentLength"},
		{"no key", strings.Replace(signed("k"), "name=\"key\"", "name=\"x-ignore-key\"", 1) + file + "\r\n--B--\r\n", "", false, 400, "InvalidArgument"},
		{"a field twice", signed("k") + signed("k") + file + "\r\n--B--\r\n", "", false, 400, "InvalidArgument"},
		{"a header without a name", "--B\r\nContent-Disposition: form-data\r\n\r\nv\r\n" + signed("k") + file + "\r\n--B--\r\n", "", false, 400, "MalformedPOSTRequest"},
		{"a key too long", signed(strings.Repeat("k", 1025)) + file + "\r\n--B--\r\n", "", false, 400, "KeyTooLongError"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			var body io.Reader = strings.NewReader(c.body)
			if c.chunked {
				body = io.NopCloser(body)
			}
			r := httptest.NewRequest(http.MethodPost, "/bucket", body)
			if c.chunked {
				r.ContentLength = -1
			}
			ct := c.contentType
			if ct == "" {
				ct = "multipart/form-data; boundary=B"
			}
			r.Header.Set("Content-Type", ct)
			rec := serve(p, r)
			require.Equal(t, c.status, rec.Code, rec.Body.String())
			require.Equal(t, c.code, s3Code(rec.Body.String()), rec.Body.String())
			for _, s := range up.requests()[before:] {
				require.NotEmpty(t, s.SigErr, "the upstream got a complete form")
			}
		})
	}
}

// TestPostObjectEpilogue: the form and its file are complete at the closing
// delimiter; what follows it (the epilogue), S3 ignores, and so does the
// proxy: the file goes upstream as sent, in a complete form whose epilogue is
// the proxy's padding, never the client's bytes. The file-must-be-last rule
// stays: a delimiter after the file that is not the closing one is refused.
// The policy's content-length-range holds for the file, not the epilogue,
// whether the proxy sees the end before the file streams (a small form) or
// only after (a file larger than the first read).
func TestPostObjectEpilogue(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	p := newProxy(t, up)
	form := func(conds []any, file string) string {
		var b strings.Builder
		for _, kv := range unitPostFields(t, "", "k", conds) {
			fmt.Fprintf(&b, "--B\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", kv[0], kv[1])
		}
		return b.String() + "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n" + file
	}
	big := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB: the end is not in the first read
	upTo := func(n int) []any { return []any{[]any{"content-length-range", 0, n}} }
	for _, c := range []struct {
		name, body, file string
		status           int
		code             string
	}{
		{"as browsers end it", form(nil, "DATA") + "\r\n--B--\r\n", "DATA", 204, ""},
		{"no final CRLF", form(nil, "DATA") + "\r\n--B--", "DATA", 204, ""},
		{"one byte after", form(nil, "DATA") + "\r\n--B--\r", "DATA", 204, ""},
		{"bytes after the closing delimiter", form(nil, "DATA") + "\r\n--B--\r\nEPILOGUE-BYTES\r\n", "DATA", 204, ""},
		{"bytes right after the closing delimiter", form(nil, "DATA") + "\r\n--B--EPILOGUE-BYTES", "DATA", 204, ""},
		{"a part after the closing delimiter", form(nil, "DATA") + "\r\n--B--\r\n--B\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read\r\n--B--\r\n", "DATA", 204, ""},
		{"an empty file, bytes after", form(nil, "") + "\r\n--B--\r\nEPILOGUE-BYTES", "", 204, ""},
		{"a large file, bytes after", form(nil, big) + "\r\n--B--\r\n" + strings.Repeat("EPILOGUE-BYTES", 5000), big, 204, ""},
		{"within content-length-range, bytes after", form(upTo(4), "DATA") + "\r\n--B--\r\nEPILOGUE-BYTES", "DATA", 204, ""},
		{"a large file within content-length-range, bytes after", form(upTo(len(big)+100), big) + "\r\n--B--\r\nEPILOGUE-BYTES", big, 204, ""},
		// A limit of the check before the file streams: the end of a large
		// form is not known yet, and the bytes after it count as the file's.
		{"a large file within content-length-range by less than the bytes after", form(upTo(len(big)), big) + "\r\n--B--\r\nEPILOGUE-BYTES", "", 400, "EntityTooLarge"},
		{"a large file over content-length-range, no CRLF after", form(upTo(len(big)-1), big) + "\r\n--B--", "", 400, "EntityTooLarge"},
		{"a field after the file", form(nil, "DATA") + "\r\n--B\r\nContent-Disposition: form-data; name=\"x-ignore-a\"\r\n\r\nv\r\n--B--\r\n", "", 400, "MalformedPOSTRequest"},
		{"no closing delimiter", form(nil, "DATA") + "\r\n--B", "", 400, "MalformedPOSTRequest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			r := httptest.NewRequest(http.MethodPost, "/bucket", strings.NewReader(c.body))
			r.Header.Set("Content-Type", "multipart/form-data; boundary=B")
			rec := serve(p, r)
			require.Equal(t, c.status, rec.Code, rec.Body.String())
			got := up.requests()[before:]
			if c.status != 204 {
				require.Equal(t, c.code, s3Code(rec.Body.String()))
				for _, s := range got {
					require.NotEmpty(t, s.SigErr, "the upstream got a complete form")
				}
				return
			}
			require.Len(t, got, 1)
			f := parseUpstreamForm(t, got[0])
			require.Equal(t, c.file, string(f.file), "the file as sent")
			require.NotContains(t, string(got[0].Body), "EPILOGUE", "the client's epilogue went upstream")
			require.NotContains(t, f.fields, "acl")
		})
	}
}

// Forms the proxy checks itself before anything goes upstream.
func TestPostObjectPolicyChecks(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	srv := httptest.NewServer(newProxy(t, up, proxy.WithRegions("us-east-1")))
	defer srv.Close()
	s := unitSide(srv)
	small := []byte("0123456789")
	policy := func(doc string) string { return base64.StdEncoding.EncodeToString([]byte(doc)) }
	for _, c := range []struct {
		name string
		form itgForm
		want string
	}{
		{"accepted", itgForm{Key: "k", File: small}, "204 etag=false"},
		{"expired", itgForm{Key: "k", File: small, Expires: -time.Second}, "403 AccessDenied"},
		{"too large", itgForm{Key: "k", File: small, Conds: []any{[]any{"content-length-range", 0, 9}}}, "400 EntityTooLarge"},
		{"too small", itgForm{Key: "k", File: small, Conds: []any{[]any{"content-length-range", "11", "20"}}}, "400 EntityTooSmall"},
		{"extra field", itgForm{Key: "k", File: small, Uncovered: [][2]string{{"acl", "public-read"}}}, "403 AccessDenied"},
		{"x-ignore- field", itgForm{Key: "k", File: small, Uncovered: [][2]string{{"x-ignore-note", "1"}}}, "204 etag=false"},
		{"starts-with", itgForm{Key: "uploads/k", File: small, Fields: [][2]string{{"Content-Type", "image/png, image/gif"}},
			Conds: []any{[]string{"starts-with", "$Content-Type", "image/"}}}, "204 etag=false"},
		{"starts-with not met", itgForm{Key: "k", File: small, Fields: [][2]string{{"x-amz-meta-a", "b"}},
			Conds: []any{[]string{"starts-with", "$x-amz-meta-a", "c"}}}, "403 AccessDenied"},
		{"wrong secret", itgForm{Key: "k", File: small, Secret: "other"}, "403 SignatureDoesNotMatch"},
		{"no x-amz-date", itgForm{Key: "k", File: small, Drop: "X-Amz-Date"}, "400 InvalidArgument"},
		{"no policy", itgForm{Key: "k", File: small, Drop: "Policy"}, "400 InvalidArgument"},
		{"a credential for another region", itgForm{Key: "k", File: small, Tamper: func(f *[][2]string) {
			for i := range *f {
				if (*f)[i][0] == "X-Amz-Credential" {
					(*f)[i][1] = strings.Replace((*f)[i][1], "us-east-1", "eu-de", 1)
				}
			}
		}}, "400 InvalidArgument"},
		{"another algorithm", itgForm{Key: "k", File: small, Tamper: func(f *[][2]string) { (*f)[1][1] = "AWS4-ECDSA-P256-SHA256" }}, "400 InvalidArgument"},
		{"unknown key id", itgForm{Key: "k", File: small, Tamper: func(f *[][2]string) {
			(*f)[2][1] = "nobody" + (*f)[2][1][len(unitKey):]
		}}, "403 InvalidAccessKeyId"},
		{"policy not JSON", itgForm{Key: "k", File: small, Policy: policy("[1]")}, "400 InvalidPolicyDocument"},
		{"policy without expiration", itgForm{Key: "k", File: small, Policy: policy(`{"conditions":[]}`)}, "400 InvalidPolicyDocument"},
		{"policy with a bad expiration", itgForm{Key: "k", File: small, Policy: policy(`{"expiration":"soon","conditions":[]}`)}, "400 InvalidPolicyDocument"},
		{"policy with an unknown operation", itgForm{Key: "k", File: small, Policy: policy(`{"expiration":"2099-01-01T00:00:00Z","conditions":[["gt","$key","a"]]}`)}, "400 InvalidPolicyDocument"},
		{"policy with another field", itgForm{Key: "k", File: small, Policy: policy(`{"expiration":"2099-01-01T00:00:00Z","conditions":[],"x":1}`)}, "400 InvalidPolicyDocument"},
		{"policy without a bucket condition", itgForm{Key: "k", File: small, Policy: policy(`{"expiration":"2099-01-01T00:00:00Z","conditions":[
			{"key":"k"},{"x-amz-algorithm":"AWS4-HMAC-SHA256"},["starts-with","$x-amz-credential",""],["starts-with","$x-amz-date",""]]}`)}, "403 AccessDenied"},
		{"policy for another bucket", itgForm{Key: "k", File: small, Policy: policy(`{"expiration":"2099-01-01T00:00:00Z","conditions":[
			{"bucket":"other"},{"key":"k"},{"x-amz-algorithm":"AWS4-HMAC-SHA256"},["starts-with","$x-amz-credential",""],["starts-with","$x-amz-date",""]]}`)}, "403 AccessDenied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.form.At = fixedNow
			before := len(up.requests())
			resp, body, err := itgPostSigned(t.Context(), s, "bucket", c.form)
			require.Equal(t, c.want, itgPostOutcome(s, "bucket", resp, body, err), "%s", body)
			if !strings.HasPrefix(c.want, "204") {
				require.Len(t, up.requests(), before, "refused forms go nowhere")
			}
		})
	}
}

// Who may post: anonymous forms only to buckets that take anonymous requests
// (forwarded as they came, without credentials); token mode; SigV2 forms
// with WithSigV2; the request authorizer sees a PutObject of the key.
func TestPostObjectIdentities(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	anonForm := func() (string, []byte) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField("key", "anon.txt")
		w, _ := mw.CreateFormFile("file", "a.txt")
		_, _ = io.WriteString(w, "anonymous bytes")
		_ = mw.Close()
		return mw.FormDataContentType(), b.Bytes()
	}
	post := func(p http.Handler, bucket, ct string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/"+bucket+"/", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		r.Header.Set("X-Amz-Meta-Sneaky", "unsigned")
		return serve(p, r)
	}

	t.Run("anonymous", func(t *testing.T) {
		ct, body := anonForm()
		rec := post(newProxy(t, up), "bucket", ct, body)
		require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
		open := newProxy(t, up, proxy.WithBuckets(proxy.Bucket{Name: "open", Endpoint: up.endpoint(), Anonymous: true,
			Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}))
		rec = post(open, "open", ct, body)
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		s := up.last(t)
		require.Equal(t, body, s.Body, "an anonymous form goes as it came")
		require.Equal(t, ct, s.Header.Get("Content-Type"))
		require.Empty(t, s.Header.Get("Authorization"))
		require.Empty(t, s.Header.Get("X-Amz-Meta-Sneaky"))
	})

	v2Form := func(secret string) (string, []byte) {
		doc := `{"expiration":"` + fixedNow.Add(time.Hour).Format(time.RFC3339) + `","conditions":[{"bucket":"bucket"},["starts-with","$key","v2/"]]}`
		policy := base64.StdEncoding.EncodeToString([]byte(doc))
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(policy))
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, kv := range [][2]string{{"key", "v2/a"}, {"AWSAccessKeyId", unitKey}, {"policy", policy}, {"signature", base64.StdEncoding.EncodeToString(m.Sum(nil))}} {
			_ = mw.WriteField(kv[0], kv[1])
		}
		w, _ := mw.CreateFormFile("file", "a.txt")
		_, _ = io.WriteString(w, "v2 bytes")
		_ = mw.Close()
		return mw.FormDataContentType(), b.Bytes()
	}
	t.Run("SigV2", func(t *testing.T) {
		ct, body := v2Form(unitSecret)
		rec := post(newProxy(t, up), "bucket", ct, body)
		require.Equal(t, "InvalidRequest", s3Code(rec.Body.String()), "SigV2 needs WithSigV2")
		withV2 := newProxy(t, up, proxy.WithSigV2(true))
		rec = post(withV2, "bucket", ct, body)
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		f := parseUpstreamForm(t, up.last(t))
		require.Equal(t, "v2 bytes", string(f.file))
		require.NotContains(t, f.fields, "AWSAccessKeyId")
		require.NotContains(t, f.fields, "signature")
		ct, body = v2Form("wrong")
		rec = post(withV2, "bucket", ct, body)
		require.Equal(t, "SignatureDoesNotMatch", s3Code(rec.Body.String()))
	})

	t.Run("token mode", func(t *testing.T) {
		var mu sync.Mutex
		var tokens []string
		p, err := proxy.New(
			proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(),
				Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
			proxy.WithAuthorizer(func(_ context.Context, token, _ string) (bool, error) {
				mu.Lock()
				defer mu.Unlock()
				tokens = append(tokens, token)
				return token == unitKey, nil
			}),
			proxy.WithTransport(up.transport()), proxy.WithClock(func() time.Time { return fixedNow }))
		require.NoError(t, err)
		defer p.Close()
		srv := httptest.NewServer(p)
		defer srv.Close()
		resp, body, err := itgPostSigned(t.Context(), unitSide(srv), "bucket", itgForm{Key: "t", File: []byte("x"), At: fixedNow, Secret: "unverified"})
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)
		require.Equal(t, []string{unitKey}, tokens)
	})

	t.Run("request authorizer", func(t *testing.T) {
		var mu sync.Mutex
		var asked []proxy.AccessRequest
		p := newProxy(t, up, proxy.WithRequestAuthorizer(func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, r)
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "mine/")}, nil
		}))
		srv := httptest.NewServer(p)
		defer srv.Close()
		s := unitSide(srv)
		resp, body, err := itgPostSigned(t.Context(), s, "bucket", itgForm{Key: "mine/${filename}", FileName: "cat.png", File: []byte("x"), At: fixedNow})
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)
		resp, body, err = itgPostSigned(t.Context(), s, "bucket", itgForm{Key: "theirs/a", File: []byte("x"), At: fixedNow})
		require.NoError(t, err)
		require.Equal(t, "403 AccessDenied", itgPostOutcome(s, "bucket", resp, body, nil))
		require.Len(t, asked, 2)
		assert.Equal(t, "s3:PutObject", asked[0].Action)
		assert.Equal(t, "POST", asked[0].Method)
		assert.Equal(t, "mine/cat.png", asked[0].Key, "the key S3 stores: ${filename} put")
		assert.Equal(t, "theirs/a", asked[1].Key)
	})
}

// A bucket whose upstream takes IAM bearer tokens cannot take a form: 501.
func TestPostObjectBearerBucket(t *testing.T) {
	up := newFakeUpstream(t)
	iam := testkit.NewIAM(t, nil)
	p := newProxy(t, up, proxy.WithBuckets(proxy.Bucket{Name: "iam", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{APIKey: "api-key"}}), proxy.WithIAMEndpoint(iam.URL))
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp, body, err := itgPostSigned(t.Context(), unitSide(srv), "iam", itgForm{Key: "k", File: []byte("x"), At: fixedNow})
	require.NoError(t, err)
	require.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	require.Equal(t, "NotImplemented", s3Code(string(body)))
	require.Contains(t, string(body), "IAM")
	require.Empty(t, up.requests())
}

// The answer to a form carries the proxy's CORS headers, so that the page
// that posted it can read it.
func TestPostObjectCORS(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // the upstream's: replaced by the proxy's policy
		w.WriteHeader(http.StatusNoContent)
	}
	p := newProxy(t, up, proxy.WithCORS(proxy.CORSRule{AllowedOrigins: []string{"https://app.example"},
		AllowedMethods: []string{"POST"}, ExposeHeaders: []string{"ETag", "Location"}}))
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, kv := range unitPostFields(t, "", "k", nil) {
		_ = mw.WriteField(kv[0], kv[1])
	}
	w, _ := mw.CreateFormFile("file", "f")
	_, _ = io.WriteString(w, "x")
	_ = mw.Close()
	r := httptest.NewRequest(http.MethodPost, "/bucket", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.Header.Set("Origin", "https://app.example")
	rec := serve(p, r)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, "https://app.example", rec.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "Location")
}

// A 1 GiB file streams: the proxy's allocations do not grow with the file.
func TestPostObjectConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	got := make(chan int64, 1)
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- n
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upSrv.Close()
	up := newFakeUpstream(t)
	up.srv = upSrv
	p := newProxy(t, up)
	srv := httptest.NewServer(p)
	defer srv.Close()

	const size = 1 << 30
	fields := unitPostFields(t, "", "big", nil)
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, kv := range fields {
		_ = mw.WriteField(kv[0], kv[1])
	}
	_, _ = mw.CreateFormFile("file", "big.bin")
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	body := io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(zeros{}, size), strings.NewReader(tail))
	r, err := http.NewRequest(http.MethodPost, srv.URL+"/bucket", body)
	require.NoError(t, err)
	r.ContentLength = int64(head.Len()) + size + int64(len(tail))
	r.Header.Set("Content-Type", mw.FormDataContentType())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := srv.Client().Do(r)
	require.NoError(t, err)
	_ = resp.Body.Close()
	runtime.ReadMemStats(&after)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Greater(t, <-got, int64(size))
	// The client, the proxy and the upstream together: far below the file.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB while 1 GiB went through", alloc>>10)
	require.Less(t, alloc, uint64(size/8), "allocations grow with the file")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
