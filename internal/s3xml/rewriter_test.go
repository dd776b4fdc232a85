package s3xml

import (
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
	r := NewElementRewriter(io.NopCloser(src), "Location", func(s string) string {
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
		{"<Location>" + strings.Repeat("x", MaxElement+10) + "</Location>", "<Location>" + strings.Repeat("x", MaxElement+10) + "</Location>"},
	} {
		for _, one := range []bool{false, true} {
			if got := rewriteAll(t, c.in, one); got != c.want {
				t.Errorf("one byte at a time %v: %.80q\ngot  %.200q\nwant %.200q", one, c.in, got, c.want)
			}
		}
	}
}
