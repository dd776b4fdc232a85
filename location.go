package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/osproxy/proxy/internal/s3xml"
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
	resp.Body = s3xml.NewElementRewriter(resp.Body, "Location", func(loc string) string {
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
