package proxy

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/osproxy/proxy/internal/sigv4"
)

// Upstream answers name the upstream in Location: the Location header of a
// redirect, a CreateBucket or a POST Object, the <Location> of
// CompleteMultipartUpload and of a POST Object's 201 PostResponse. The
// client must see the proxy there instead, addressed as it addressed the
// proxy, since clients store and follow these URLs.

// clientLocation maps a URL of the upstream to the proxy's URL of the same
// resource; ok is false for a URL elsewhere (other hosts are the client's own
// business). The upstream URL of a bucket is <scheme>://<bucket>.<host>/<key>
// (virtual-hosted) or <scheme>://<host>/<bucket>/<key> (path style); the
// proxy's is <scheme>://<host><mount>/<bucket>/<key>, or
// <scheme>://<bucket>.<domain>/<key> for a client that named the bucket in
// the Host. A relative Location (a path, as S3 answers CreateBucket) stays
// relative: the proxy's path of the same resource.
func (x *exchange) clientLocation(loc string) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil {
		// Some servers leave a '%' of the key unescaped (s3rver's POST
		// Object Location): it can only be a literal percent sign.
		u, err = url.Parse(escapeStrayPercents(loc))
	}
	if err != nil || u.Opaque != "" {
		return "", false
	}
	relative := u.Host == "" && u.Scheme == "" && strings.HasPrefix(u.Path, "/")
	if !relative && (u.Host == "" || !strings.EqualFold(u.Host, x.out.url.Host)) {
		return "", false
	}
	path := u.EscapedPath()
	if x.target.endpoint.PathStyle {
		rest, ok := strings.CutPrefix(path, "/"+x.target.bucket)
		if !ok || rest != "" && rest[0] != '/' {
			return "", false
		}
		path = rest
	}
	scheme, host, base := x.clientBase()
	out := base + path
	if !relative {
		out = scheme + "://" + host + out
	}
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, true
}

// escapeStrayPercents escapes each '%' of s that does not begin an escape
// (two hex digits) as "%25".
func escapeStrayPercents(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2])) {
			b.WriteString("%25")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// clientBase is the proxy's URL of the request's bucket as the client
// addressed it: scheme (https when the client's connection is TLS), Host, and
// the path of the bucket: the prefix the proxy is mounted under (cut by
// http.StripPrefix or WithPathPrefix) and the bucket, or "" when the Host
// names the bucket.
func (x *exchange) clientBase() (scheme, host, path string) {
	r := x.in
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if x.req.vhost {
		return scheme, r.Host, ""
	}
	mount := x.p.cfg.pathPrefix
	if raw, _ := sigv4.RawTarget(r); strings.HasSuffix(raw, r.URL.EscapedPath()) {
		mount = raw[:len(raw)-len(r.URL.EscapedPath())] + mount
	}
	return scheme, r.Host, mount + "/" + x.target.bucket
}

// rewriteLocations makes the Locations of an upstream answer name the proxy:
// the Location header, and the <Location> of a CompleteMultipartUpload body,
// rewritten as the body streams (its length changes, so it goes chunked).
func (x *exchange) rewriteLocations(resp *http.Response) {
	if loc := resp.Header.Get("Location"); loc != "" {
		if x.createsBucket() {
			loc = x.bucketLocation(loc)
		} else if v, ok := x.clientLocation(loc); ok {
			loc = v
		}
		resp.Header.Set("Location", loc)
	}
	completes := resp.StatusCode == http.StatusOK && strings.Contains(x.in.URL.RawQuery, "uploadId=")
	posted := resp.StatusCode == http.StatusCreated && x.req.postObject // the PostResponse of success_action_status 201
	if x.in.Method != http.MethodPost || !completes && !posted || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	resp.Body = newElementRewriter(resp.Body, "Location", func(loc string) string {
		if v, ok := x.clientLocation(loc); ok {
			return v
		}
		return loc
	})
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
}

// createsBucket reports whether the request is CreateBucket.
func (x *exchange) createsBucket() bool {
	return x.in.Method == http.MethodPut && x.req.key == "" && x.in.URL.RawQuery == ""
}

// bucketLocation is the Location of CreateBucket, which names the bucket: the
// proxy's URL of it, relative when the upstream's was (S3 answers "/bucket";
// servers differ on what they answer a virtual-hosted request).
func (x *exchange) bucketLocation(upstream string) string {
	scheme, host, path := x.clientBase()
	if path == "" {
		path = "/"
	}
	if strings.HasPrefix(upstream, "/") {
		return path
	}
	return scheme + "://" + host + path
}

// maxElement bounds the text of an element an elementRewriter holds to
// rewrite it; a longer one passes as it is.
const maxElement = 16 << 10

// elementRewriter streams an XML document, replacing the text of each
// <name>…</name> element by f of it. It holds at most one such element (up to
// maxElement) and one read: constant memory whatever the document's size, and
// the whitespace S3 streams while it completes a multipart upload passes at
// once.
type elementRewriter struct {
	src         io.ReadCloser
	open, close []byte
	f           func(string) string
	in, out     []byte
	buf         [4 << 10]byte
	err         error
}

func newElementRewriter(src io.ReadCloser, name string, f func(string) string) *elementRewriter {
	return &elementRewriter{src: src, open: []byte("<" + name + ">"), close: []byte("</" + name + ">"), f: f}
}

func (e *elementRewriter) Read(p []byte) (int, error) {
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

func (e *elementRewriter) Close() error { return e.src.Close() }

// process moves what it can from in to out: text outside the elements as it
// is, each complete element rewritten. At the end of the input, all of it.
func (e *elementRewriter) process(end bool) {
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
			if end || len(rest) > maxElement { // not an element to rewrite: as it is
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
func (e *elementRewriter) rewrite(escaped []byte) []byte {
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
