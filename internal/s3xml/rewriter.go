package s3xml

import (
	"bytes"
	"encoding/xml"
	"io"
)

// MaxElement bounds the text of an element an ElementRewriter holds to
// rewrite it; a longer one passes as it is.
const MaxElement = 16 << 10

// ElementRewriter streams an XML document, replacing the text of each
// <name>…</name> element by f of it (the Location of a
// CompleteMultipartUploadResult or a PostResponse). It holds at most one
// such element (up to MaxElement) and one read: constant memory whatever the
// document's size, and the whitespace S3 streams while it completes a
// multipart upload passes at once. Text that does not unescape passes as it
// is.
type ElementRewriter struct {
	src         io.ReadCloser
	open, close []byte
	f           func(string) string
	in, out     []byte
	buf         [4 << 10]byte
	err         error
}

// NewElementRewriter returns the reader of src with the text of each element
// name replaced by f of it (unescaped, then escaped again).
func NewElementRewriter(src io.ReadCloser, name string, f func(string) string) *ElementRewriter {
	return &ElementRewriter{src: src, open: []byte("<" + name + ">"), close: []byte("</" + name + ">"), f: f}
}

func (e *ElementRewriter) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		n, err := e.src.Read(e.buf[:])
		e.in = append(e.in, e.buf[:n]...)
		if err != nil {
			e.err = err
		}
		e.process(err != nil)
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

func (e *ElementRewriter) Close() error { return e.src.Close() }

// process moves what it can from in to out: text outside the elements as it
// is, each complete element rewritten. At the end of the input, all of it.
func (e *ElementRewriter) process(end bool) {
	out := e.out[:0]
	for {
		i := bytes.Index(e.in, e.open)
		if i < 0 {
			keep := 0
			if !end {
				keep = partialPrefix(e.in, e.open)
			}
			out = append(out, e.in[:len(e.in)-keep]...)
			e.in = append(e.in[:0], e.in[len(e.in)-keep:]...)
			break
		}
		out = append(out, e.in[:i]...)
		rest := e.in[i+len(e.open):]
		j := bytes.Index(rest, e.close)
		if j < 0 {
			if end || len(rest) > MaxElement { // not an element to rewrite: as it is
				out = append(out, e.in[i:]...)
				e.in = e.in[:0]
				break
			}
			e.in = append(e.in[:0], e.in[i:]...)
			break
		}
		out = append(out, e.open...)
		out = append(out, e.rewrite(rest[:j])...)
		out = append(out, e.close...)
		e.in = rest[j+len(e.close):]
	}
	e.out = out
}

// rewrite returns the escaped text of f of an element's escaped text; text
// that does not unescape passes as it is.
func (e *ElementRewriter) rewrite(escaped []byte) []byte {
	var v struct {
		Text string `xml:",chardata"`
	}
	doc := append(append([]byte("<e>"), escaped...), "</e>"...)
	if xml.Unmarshal(doc, &v) != nil {
		return escaped
	}
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(e.f(v.Text)))
	return b.Bytes()
}

// partialPrefix returns the length of the longest end of b that begins tag.
func partialPrefix(b, tag []byte) int {
	for n := min(len(b), len(tag)-1); n > 0; n-- {
		if bytes.HasPrefix(tag, b[len(b)-n:]) {
			return n
		}
	}
	return 0
}
