package postform

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/sigv4"
)

// fuzzForm is a well-formed form with boundary B for the seeds.
func fuzzForm(fields [][2]string, file string) []byte { return formWith("B", fields, file) }

// FuzzPostForm: Read never panics, and a file it streams to the
// end is the file mime/multipart reads from the same body, byte for byte, as
// are the fields before it.
func FuzzPostForm(f *testing.F) {
	f.Add(fuzzForm([][2]string{{"key", "k"}, {"policy", "p"}}, "data"), "B")
	f.Add(fuzzForm(nil, ""), "B")
	f.Add(fuzzForm([][2]string{{"key", "a\r\n--B"}}, "\r\n--B-"), "B")
	f.Add(fuzzForm([][2]string{{"x", strings.Repeat("v", 300)}}, "\r\n--"), "B")
	f.Add([]byte("preamble\r\n--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--B--\r\n"), "B")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--B\r\nContent-Disposition: form-data; name=\"late\"\r\n\r\ny\r\n--B--\r\n"), "B")
	f.Add([]byte("--B\nContent-Disposition: form-data; name=\"file\"\n\nx\n--B--\n"), "B")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		form, err := Read(bytes.NewReader(body), "multipart/form-data; boundary=\""+boundary+"\"", int64(len(body)))
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an S3 error: %v", err)
			}
			return
		}
		if form.FileAt < 0 || form.FileAt > len(form.Raw) || len(form.Raw) > len(body) || form.FileLen < 0 {
			t.Fatalf("fileAt %d, raw %d of %d bytes, fileLen %d", form.FileAt, len(form.Raw), len(body), form.FileLen)
		}
		rest := io.MultiReader(bytes.NewReader(form.Raw[form.FileAt:]), bytes.NewReader(body[len(form.Raw):]))
		file, err := io.ReadAll(NewFile(rest, form.FileLen, form.Boundary, nil))
		if err != nil {
			return // refused while streaming: nothing stored
		}
		mr := multipart.NewReader(bytes.NewReader(body), form.Boundary)
		var fields []Field
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				t.Fatalf("the proxy streamed a file mime/multipart does not find: %v", err)
			}
			v, err := io.ReadAll(part)
			if err != nil {
				t.Fatalf("the proxy streamed a file mime/multipart cannot read: %v", err)
			}
			if strings.EqualFold(part.FormName(), "file") {
				if !bytes.Equal(v, file) {
					t.Fatalf("file: the proxy streamed %q, mime/multipart reads %q", file, v)
				}
				break
			}
			fields = append(fields, Field{Name: part.FormName(), Lower: strings.ToLower(part.FormName()), Value: string(v)})
		}
		if len(fields) != len(form.Fields) {
			t.Fatalf("fields: the proxy read %q, mime/multipart %q", form.Fields, fields)
		}
		for i := range fields {
			if fields[i] != form.Fields[i] {
				t.Fatalf("field %d: the proxy read %q, mime/multipart %q", i, form.Fields[i], fields[i])
			}
		}
	})
}

// FuzzPostPolicy: the policy parser never panics; a policy it accepts is
// issued again for the upstream with its conditions but those on the
// client's credential, and that policy parses to the same conditions.
func FuzzPostPolicy(f *testing.F) {
	f.Add(`{"expiration":"2099-01-01T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","u/"],["content-length-range",1,"10"],{"x-amz-credential":"k/1/r/s3/aws4_request"}]}`)
	f.Add(`{"expiration":"2099-01-01T00:00:00.000Z","conditions":[["eq","$Content-Type","text/plain"],{"X-Amz-Date":"x"}]}`)
	f.Add(`{"expiration":"2000-01-01T00:00:00Z","conditions":[]}`)
	f.Add(`{"conditions":[[]]}`)
	f.Add(`{"expiration":"2099-01-01T00:00:00Z","conditions":[["eq","key","a"],{"a":1},{"a":"1","b":"2"},["content-length-range",1]]}`)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	auth := [][2]string{{"x-amz-algorithm", sigv4.AlgorithmV4}, {"x-amz-credential", "UP/20261201/us-east-1/s3/aws4_request"}, {"x-amz-date", "20261201T000000Z"}}
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := ParsePolicy(base64.StdEncoding.EncodeToString([]byte(doc)), now)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an S3 error: %v", err)
			}
			return
		}
		up, err := p.Onward(auth, "")
		if err != nil {
			t.Fatalf("upstream policy: %v", err)
		}
		q, err := ParsePolicy(up, now)
		if err != nil {
			t.Fatalf("the upstream's policy does not parse: %v", err)
		}
		var kept []condition
		for _, c := range p.conditions {
			if !c.authorizes {
				kept = append(kept, c)
			}
		}
		if len(q.conditions) != len(kept)+len(auth) || q.expiration != p.expiration {
			t.Fatalf("upstream policy has %d conditions, want %d", len(q.conditions), len(kept)+len(auth))
		}
		for i, c := range kept {
			d := q.conditions[i]
			if c.op != d.op || c.field != d.field || c.value != d.value || c.min != d.min || c.max != d.max {
				t.Fatalf("condition %d: %+v became %+v", i, c, d)
			}
		}
		for i, kv := range auth {
			d := q.conditions[len(kept)+i]
			if d.op != "eq" || d.field != kv[0] || d.value != kv[1] {
				t.Fatalf("upstream condition %d: %+v", i, d)
			}
		}
	})
}
