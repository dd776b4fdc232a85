package proxy

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func rewriteAll(t testing.TB, in string, oneByte bool) string {
	var src io.Reader = strings.NewReader(in)
	if oneByte {
		src = iotest.OneByteReader(src)
	}
	r := newElementRewriter(io.NopCloser(src), "Location", func(s string) string {
		return strings.Replace(s, "http://up.test:9/b", "http://proxy.test/s3/b", 1)
	})
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestElementRewriter(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`<?xml version="1.0"?><CompleteMultipartUploadResult><Location>http://up.test:9/b/k%2F1</Location><Bucket>b</Bucket></CompleteMultipartUploadResult>`,
			`<?xml version="1.0"?><CompleteMultipartUploadResult><Location>http://proxy.test/s3/b/k%2F1</Location><Bucket>b</Bucket></CompleteMultipartUploadResult>`},
		{"  \n  \n<R><Location>http://up.test:9/b/a&amp;b</Location></R>", "  \n  \n<R><Location>http://proxy.test/s3/b/a&amp;b</Location></R>"},
		{"<R><Location>elsewhere</Location><Location>http://up.test:9/b/x</Location></R>", "<R><Location>elsewhere</Location><Location>http://proxy.test/s3/b/x</Location></R>"},
		{"<R><Locat", "<R><Locat"},
		{"<R><Location>http://up.test:9/b/unterminated", "<R><Location>http://up.test:9/b/unterminated"},
		{"no xml at all", "no xml at all"},
		{"<Location>" + strings.Repeat("x", maxElement+10) + "</Location>", "<Location>" + strings.Repeat("x", maxElement+10) + "</Location>"},
	} {
		for _, one := range []bool{false, true} {
			if got := rewriteAll(t, c.in, one); got != c.want {
				t.Errorf("one byte at a time %v: %.80q\ngot  %.200q\nwant %.200q", one, c.in, got, c.want)
			}
		}
	}
}

// FuzzElementRewriter: the streaming rewriter never panics, reads in any
// sizes give the same output, and a body without the element passes as it is.
func FuzzElementRewriter(f *testing.F) {
	f.Add("<R><Location>http://up.test:9/b/k</Location></R>")
	f.Add("<Location><Location></Location></Location>")
	f.Add("<Location>&bad;</Location>")
	f.Add("   <Loc")
	f.Fuzz(func(t *testing.T, in string) {
		whole := rewriteAll(t, in, false)
		if one := rewriteAll(t, in, true); one != whole {
			t.Fatalf("%q: whole %q, one byte at a time %q", in, whole, one)
		}
		if !strings.Contains(in, "<Location>") && whole != in {
			t.Fatalf("%q changed to %q", in, whole)
		}
		if !bytes.Contains([]byte(in), []byte("http://up.test:9/b")) && whole != in && strings.Count(in, "<Location>") == strings.Count(whole, "<Location>") {
			// Only text that unescapes and escapes back differently may change.
			if strings.ReplaceAll(whole, "&#", "") == whole && !strings.Contains(in, "&") && !strings.ContainsAny(in, "\"'\t\r\n>") {
				t.Fatalf("%q changed to %q without a URL to rewrite", in, whole)
			}
		}
	})
}
