package postform

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime/multipart"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/sigv4"
)

// form is a form as browsers send it: fields, then the file, closing
// delimiter and CRLF.
func form(fields [][2]string, file string) []byte { return formWith("xYzZY", fields, file) }

func formWith(boundary string, fields [][2]string, file string) []byte {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.SetBoundary(boundary)
	for _, kv := range fields {
		_ = mw.WriteField(kv[0], kv[1])
	}
	w, _ := mw.CreateFormFile("file", "photo.jpg")
	_, _ = io.WriteString(w, file)
	_ = mw.Close()
	return b.Bytes()
}

const contentType = "multipart/form-data; boundary=xYzZY"

// codeOf is the S3 code of err, "" for nil, "not S3" for another error.
func codeOf(err error) string {
	var e *s3err.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return "not S3: " + err.Error()
}

func TestRead(t *testing.T) {
	ok := form([][2]string{{"key", "k"}, {"Content-Type", "text/plain"}}, "hello")
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		length            int64 // 0: len(body)
		code              string
	}{
		{"browser form", contentType, ok, 0, ""},
		{"read a byte at a time", contentType, ok, 0, ""},
		{"no boundary", "multipart/form-data", ok, 0, "MalformedPOSTRequest"},
		{"boundary too long", "multipart/form-data; boundary=" + strings.Repeat("b", 71), ok, 0, "MalformedPOSTRequest"},
		{"no file", contentType, []byte("--xYzZY\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--xYzZY--\r\n"), 0, "IncorrectNumberOfFilesInPostRequest"},
		{"field twice", contentType, form([][2]string{{"key", "a"}, {"Key", "b"}}, "x"), 0, "InvalidArgument"},
		{"part without a name", contentType, []byte("--xYzZY\r\nContent-Disposition: form-data\r\n\r\nv\r\n--xYzZY--\r\n"), 0, "MalformedPOSTRequest"},
		{"lines end in LF", contentType, []byte("--xYzZY\nContent-Disposition: form-data; name=\"file\"\n\nx\n--xYzZY--\n"), 0, "MalformedPOSTRequest"},
		{"fields past 20 KB", contentType, form([][2]string{{"x-ignore-pad", strings.Repeat("p", MaxPreData)}}, "x"), 0, "MaxPostPreDataLengthExceeded"},
		{"cut before the file", contentType, ok[:40], 40, "MalformedPOSTRequest"},
		{"length shorter than the head", contentType, ok, int64(bytes.Index(ok, []byte("hello"))), "MalformedPOSTRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.length
			if n == 0 {
				n = int64(len(tc.body))
			}
			var r io.Reader = bytes.NewReader(tc.body)
			if strings.HasPrefix(tc.name, "read a byte") {
				r = iotest.OneByteReader(r)
			}
			f, err := Read(r, tc.contentType, n)
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code %q, want %q (%v)", got, tc.code, err)
			}
			if err != nil {
				return
			}
			if v, _ := f.Value("content-type"); v != "text/plain" || f.FileName != "photo.jpg" || f.FileType != "application/octet-stream" {
				t.Fatalf("fields %+v, file %q %q", f.Fields, f.FileName, f.FileType)
			}
			if f.FileLen != 5 || f.KnownLength() != 5 || string(f.Raw[f.FileAt:f.FileAt+5]) != "hello" {
				t.Fatalf("file at %d, length %d (known %d)", f.FileAt, f.FileLen, f.KnownLength())
			}
		})
	}
}

// A body that fails mid-form is IncompleteBody, not a malformed form.
func TestReadBodyError(t *testing.T) {
	head := form([][2]string{{"key", strings.Repeat("k", 100)}}, "x")
	body := io.MultiReader(bytes.NewReader(head[:80]), iotest.ErrReader(errors.New("reset")))
	_, err := Read(body, contentType, 1000)
	if codeOf(err) != "IncompleteBody" {
		t.Fatalf("%v", err)
	}
}

// streamFile reads a form's file to its end as a caller streams it.
func streamFile(t *testing.T, body []byte, check func(int64) error) ([]byte, error) {
	t.Helper()
	f, err := Read(bytes.NewReader(body), contentType, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	rest := bytes.NewReader(body[len(f.Raw):])
	return io.ReadAll(NewFile(io.MultiReader(bytes.NewReader(f.Raw[f.FileAt:]), rest), f.FileLen, f.Boundary, check))
}

func TestFile(t *testing.T) {
	big := strings.Repeat("0123456789abcdef\r\n--xYzZ", 5000) // delimiter look-alikes across buffer edges
	for _, tc := range []struct {
		name, file string
		body       []byte // nil: form(nil, file)
		code       string
	}{
		{"small", "hello", nil, ""},
		{"empty", "", nil, ""},
		{"larger than the buffer", big, nil, ""},
		{"field after the file", "x", []byte("--xYzZY\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--xYzZY\r\nContent-Disposition: form-data; name=\"late\"\r\n\r\ny\r\n--xYzZY--\r\n"), "MalformedPOSTRequest"},
		{"no closing delimiter", "x", []byte("--xYzZY\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxyzxyzxyzxyzxyzxyzxyz"), "MalformedPOSTRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = form(nil, tc.file)
			}
			var length int64 = -1
			got, err := streamFile(t, body, func(n int64) error { length = n; return nil })
			if codeOf(err) != tc.code {
				t.Fatalf("code %q, want %q", codeOf(err), tc.code)
			}
			if err == nil && (string(got) != tc.file || length != int64(len(tc.file))) {
				t.Fatalf("file of %d bytes (checked %d), want %d", len(got), length, len(tc.file))
			}
		})
	}
	t.Run("check refuses", func(t *testing.T) {
		_, err := streamFile(t, form(nil, "hello"), func(int64) error { return s3err.EntityTooLarge })
		if codeOf(err) != "EntityTooLarge" {
			t.Fatalf("%v", err)
		}
	})
	t.Run("body shorter than its length", func(t *testing.T) {
		body := []byte("--xYzZY\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nhello")
		f, err := Read(bytes.NewReader(body), contentType, int64(len(body))+100)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(NewFile(bytes.NewReader(f.Raw[f.FileAt:]), f.FileLen, f.Boundary, nil))
		if codeOf(err) != "IncompleteBody" {
			t.Fatalf("%v", err)
		}
	})
}

func TestSigning(t *testing.T) {
	v4 := [][2]string{{"policy", "p"}, {"x-amz-algorithm", "a"}, {"x-amz-credential", "c"}, {"x-amz-date", "d"}, {"x-amz-signature", "s"}}
	for _, tc := range []struct {
		name    string
		fields  [][2]string
		signing Signing
		missing string
	}{
		{"anonymous", [][2]string{{"key", "k"}}, Anonymous, ""},
		{"SigV4", v4, SigV4, ""},
		{"SigV4 without its signature", v4[:4], SigV4, "x-amz-signature"},
		{"policy alone is SigV4", [][2]string{{"policy", "p"}}, SigV4, "x-amz-algorithm"},
		{"SigV2", [][2]string{{"AWSAccessKeyId", "a"}, {"policy", "p"}, {"signature", "s"}}, SigV2, ""},
		{"SigV2 without its policy", [][2]string{{"AWSAccessKeyId", "a"}, {"signature", "s"}}, SigV2, "policy"},
		{"a SigV4 field makes it SigV4", [][2]string{{"AWSAccessKeyId", "a"}, {"signature", "s"}, {"x-amz-date", "d"}}, SigV4, "policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Read(bytes.NewReader(form(tc.fields, "x")), contentType, int64(len(form(tc.fields, "x"))))
			if err != nil {
				t.Fatal(err)
			}
			s, err := f.Signing()
			var e *s3err.Error
			name := ""
			if errors.As(err, &e) {
				name, _ = e.Field("ArgumentName")
			}
			if s != tc.signing || name != tc.missing {
				t.Fatalf("signing %d, missing %q (%v); want %d, %q", s, name, err, tc.signing, tc.missing)
			}
		})
	}
}

func TestCredential(t *testing.T) {
	fields := func(alg, cred, date string) *Form {
		return &Form{Fields: []Field{{"x", "x-amz-algorithm", alg}, {"x", "x-amz-credential", cred}, {"x", "x-amz-date", date}}}
	}
	good := "AKID/20261201/us-east-1/s3/aws4_request"
	for _, tc := range []struct {
		name             string
		f                *Form
		regions          []string
		argument, reason string
	}{
		{"good", fields(sigv4.AlgorithmV4, good, "20261201T120000Z"), nil, "", ""},
		{"allowed region", fields(sigv4.AlgorithmV4, good, "20261201T120000Z"), []string{"eu-de", "us-east-1"}, "", ""},
		{"other region", fields(sigv4.AlgorithmV4, good, "20261201T120000Z"), []string{"eu-de"}, "x-amz-credential", "expecting 'eu-de'"},
		{"other algorithm", fields("AWS4-HMAC-SHA1", good, "20261201T120000Z"), nil, "x-amz-algorithm", "Only AWS4-HMAC-SHA256"},
		{"bad credential", fields(sigv4.AlgorithmV4, "AKID/2026/us-east-1", "20261201T120000Z"), nil, "x-amz-credential", ""},
		{"bad date", fields(sigv4.AlgorithmV4, good, "2026-12-01"), nil, "x-amz-date", "yyyyMMdd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := tc.f.Credential(tc.regions)
			if tc.argument == "" {
				if err != nil || sig.AccessKeyID != "AKID" || sig.Region != "us-east-1" || sig.AmzDate != "20261201T120000Z" {
					t.Fatalf("%+v, %v", sig, err)
				}
				return
			}
			var e *s3err.Error
			if !errors.As(err, &e) || e.Code != "InvalidArgument" {
				t.Fatalf("%v", err)
			}
			if name, _ := e.Field("ArgumentName"); name != tc.argument || !strings.Contains(e.Message, tc.reason) {
				t.Fatalf("argument %q, message %q", name, e.Message)
			}
		})
	}
}

// The policy signatures are HMACs of the base64 policy: checked with the
// HMAC test vectors of RFC 4231 (SHA-256, hex) and RFC 2202 (SHA-1, base64),
// test case 2 of each.
func TestSignatures(t *testing.T) {
	if got, want := SignatureV4([]byte("Jefe"), "what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Fatalf("SigV4 %s, want %s", got, want)
	}
	sum, _ := hex.DecodeString("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
	if got, want := SignatureV2("Jefe", "what do ya want for nothing?"), base64.StdEncoding.EncodeToString(sum); got != want {
		t.Fatalf("SigV2 %s, want %s", got, want)
	}
}

// Reframe posts a form on: the upstream's form parses with mime/multipart
// to the client's fields but its signature, the new ones, and the file, and
// has exactly the length announced.
func TestReframe(t *testing.T) {
	file := strings.Repeat("data\r\n--xYz", 10000)
	client := form([][2]string{{"key", "u/${filename}"}, {"Content-Type", "image/jpeg"}, {"x-amz-signature", "client"}, {"Policy", "client"}, {"x-amz-meta-a", "b"}}, file)
	client = append(client, "trailing epilogue the client sent"...)
	// FileLen takes the form to end as browsers end it: here it counts the
	// epilogue too, which the upstream's form gets as padding of its own.
	f, err := Read(bytes.NewReader(client), contentType, int64(len(client)))
	if err != nil {
		t.Fatal(err)
	}
	checked := int64(-1)
	o := Onward{Key: "u/photo.jpg", Auth: [][2]string{{"x-amz-algorithm", sigv4.AlgorithmV4}, {"x-amz-credential", "UP/20261201/us-east-1/s3/aws4_request"}, {"x-amz-date", "20261201T000000Z"}},
		Policy: "UPPOLICY", Signature: "UPSIG", Check: func(n int64) error { checked = n; return nil }}
	ct, body, length := f.Reframe(bytes.NewReader(client[len(f.Raw):]), o)
	got, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != length {
		t.Fatalf("%d bytes, %d announced", len(got), length)
	}
	if checked != int64(len(file)) {
		t.Fatalf("checked %d, file %d", checked, len(file))
	}
	if bytes.Contains(got, []byte("trailing epilogue")) {
		t.Fatal("the client's epilogue went on")
	}
	_, boundary, _ := strings.Cut(ct, "boundary=")
	mr := multipart.NewReader(bytes.NewReader(got), boundary)
	var names []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		v, _ := io.ReadAll(part)
		names = append(names, part.FormName()+"="+map[bool]string{true: "<file>", false: string(v)}[part.FormName() == "file"])
		if part.FormName() == "file" && (string(v) != file || part.FileName() != "photo.jpg" || part.Header.Get("Content-Type") != "application/octet-stream") {
			t.Fatalf("file of %d bytes named %q", len(v), part.FileName())
		}
	}
	want := "key=u/photo.jpg Content-Type=image/jpeg x-amz-meta-a=b x-amz-algorithm=AWS4-HMAC-SHA256 x-amz-credential=UP/20261201/us-east-1/s3/aws4_request x-amz-date=20261201T000000Z policy=UPPOLICY x-amz-signature=UPSIG file=<file>"
	if strings.Join(names, " ") != want {
		t.Fatalf("upstream form:\n%s\nwant\n%s", strings.Join(names, " "), want)
	}
}

func TestPolicy(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	enc := func(doc string) string { return base64.StdEncoding.EncodeToString([]byte(doc)) }
	std := `{"expiration":"2026-12-02T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","u/"],["starts-with","$Content-Type","image/"],["content-length-range",1,10],{"x-amz-credential":"c"}]}`
	fields := func(kv ...string) *Form {
		f := &Form{}
		for i := 0; i < len(kv); i += 2 {
			f.Fields = append(f.Fields, Field{kv[i], strings.ToLower(kv[i]), kv[i+1]})
		}
		return f
	}
	ok := fields("key", "u/a", "Content-Type", "image/png, image/jpeg", "x-amz-credential", "c", "policy", "p", "x-amz-signature", "s", "x-ignore-me", "1")
	for _, tc := range []struct {
		name, doc string
		f         *Form
		bucket    string
		length    int64
		code, msg string
	}{
		{"holds", std, ok, "b", 5, "", ""},
		{"other bucket", std, ok, "c", 5, "AccessDenied", `Policy Condition failed: {"bucket":"b"}`},
		{"key outside the prefix", std, fields("key", "v/a", "Content-Type", "image/png", "x-amz-credential", "c"), "b", 5, "AccessDenied", "Policy Condition failed"},
		{"field without a condition", std, fields("key", "u/a", "Content-Type", "image/png", "x-amz-credential", "c", "acl", "public-read"), "b", 5, "AccessDenied", "Extra input fields: acl"},
		{"one type of a list outside", std, fields("key", "u/a", "Content-Type", "image/png, text/html", "x-amz-credential", "c"), "b", 5, "AccessDenied", "Policy Condition failed"},
		{"too large", std, ok, "b", 11, "EntityTooLarge", ""},
		{"too small", std, ok, "b", 0, "EntityTooSmall", ""},
		{"no bucket condition", `{"expiration":"2026-12-02T00:00:00Z","conditions":[["starts-with","$key",""]]}`, fields("key", "k"), "b", 1, "AccessDenied", "Extra input fields: bucket"},
		{"expired", `{"expiration":"2026-11-30T00:00:00Z","conditions":[]}`, ok, "b", 1, "AccessDenied", "Policy expired."},
		{"not JSON", `{"expiration":`, ok, "b", 1, "InvalidPolicyDocument", "Invalid JSON."},
		{"unknown operation", `{"expiration":"2026-12-02T00:00:00Z","conditions":[["ends-with","$key","x"]]}`, ok, "b", 1, "InvalidPolicyDocument", "unknown operation"},
		{"no expiration", `{"conditions":[]}`, ok, "b", 1, "InvalidPolicyDocument", "missing expiration"},
		{"unexpected member", `{"expiration":"2026-12-02T00:00:00Z","conditions":[],"x":1}`, ok, "b", 1, "InvalidPolicyDocument", `Unexpected: "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(enc(tc.doc), now)
			if err == nil {
				err = p.Check(tc.f, tc.bucket, tc.length)
			}
			var e *s3err.Error
			if errors.As(err, &e); codeOf(err) != tc.code || e != nil && !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("%v; want %s %q", err, tc.code, tc.msg)
			}
		})
	}
	t.Run("SigV2 fields need no condition", func(t *testing.T) {
		p, _ := ParsePolicy(enc(`{"expiration":"2026-12-02T00:00:00Z","conditions":[{"bucket":"b"},{"key":"k"}]}`), now)
		if err := p.Check(fields("key", "k", "AWSAccessKeyId", "a", "policy", "p", "signature", "s"), "b", 1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("onward", func(t *testing.T) {
		p, _ := ParsePolicy(enc(std), now)
		up, err := p.Onward([][2]string{{"x-amz-credential", "UP"}}, "u/photo.jpg")
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := base64.StdEncoding.DecodeString(up)
		want := `{"expiration":"2026-12-02T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$Content-Type","image/"],["content-length-range",1,10],{"x-amz-credential":"UP"},{"key":"u/photo.jpg"}]}`
		if string(doc) != want {
			t.Fatalf("%s\nwant\n%s", doc, want)
		}
	})
}

func BenchmarkRead(b *testing.B) {
	body := form([][2]string{{"key", "uploads/${filename}"}, {"Content-Type", "image/jpeg"}, {"policy", strings.Repeat("P", 600)},
		{"x-amz-algorithm", sigv4.AlgorithmV4}, {"x-amz-credential", "AKID/20261201/us-east-1/s3/aws4_request"}, {"x-amz-date", "20261201T000000Z"},
		{"x-amz-signature", strings.Repeat("f", 64)}}, strings.Repeat("x", 1024))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(body), contentType, int64(len(body))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReframe streams a 1 MiB file through the form posted on.
func BenchmarkReframe(b *testing.B) {
	body := form([][2]string{{"key", "k"}, {"policy", "p"}}, strings.Repeat("0123456789abcdef", 1<<16))
	f, err := Read(bytes.NewReader(body), contentType, int64(len(body)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(f.FileLen)
	b.ReportAllocs()
	for b.Loop() {
		_, r, _ := f.Reframe(bytes.NewReader(body[len(f.Raw):]), Onward{Policy: "p", Signature: "s"})
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	doc := base64.StdEncoding.EncodeToString([]byte(`{"expiration":"2099-01-01T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","u/"],["starts-with","$Content-Type","image/"],["content-length-range",1,1048576],{"x-amz-credential":"AKID/20261201/us-east-1/s3/aws4_request"},{"x-amz-algorithm":"AWS4-HMAC-SHA256"},{"x-amz-date":"20261201T000000Z"}]}`))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePolicy(doc, now); err != nil {
			b.Fatal(err)
		}
	}
}
