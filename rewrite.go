package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// s3Request is what the proxy reads from a client request before anything else:
// the bucket and the object key it addresses.
type s3Request struct {
	bucket string // "" for the service (ListBuckets)
	key    string // decoded object key; "" for bucket operations
}

// parseRequest reads the bucket and key from a client request: from the Host
// when it is <bucket>.<domain> for a configured domain, otherwise from the first
// segment of the path (path style). The path is split on its raw, escaped form,
// so an encoded slash can never move a request into another bucket.
func parseRequest(r *http.Request, c *config) (s3Request, error) {
	raw := r.URL.EscapedPath()
	if c.pathPrefix != "" {
		rest, ok := strings.CutPrefix(raw, c.pathPrefix)
		if !ok || (rest != "" && rest[0] != '/') {
			return s3Request{}, errInvalidURI.withMessage("The request path is outside the proxy's prefix.")
		}
		raw = rest
	}
	if raw == "" {
		raw = "/"
	}
	if raw[0] != '/' {
		return s3Request{}, errInvalidURI
	}
	raw = raw[1:]

	if bucket, ok := hostBucket(r.Host, c.vhostDomains); ok {
		if !validBucketName(bucket) {
			return s3Request{}, errInvalidBucketName
		}
		key, err := url.PathUnescape(raw)
		if err != nil {
			return s3Request{}, errInvalidURI.with(err)
		}
		return s3Request{bucket: bucket, key: key}, nil
	}

	rawBucket, rawKey, _ := strings.Cut(raw, "/")
	if rawBucket == "" {
		if rawKey != "" {
			return s3Request{}, errInvalidBucketName
		}
		return s3Request{}, nil
	}
	bucket, err := url.PathUnescape(rawBucket)
	if err != nil || !validBucketName(bucket) {
		return s3Request{}, errInvalidBucketName
	}
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		return s3Request{}, errInvalidURI.with(err)
	}
	return s3Request{bucket: bucket, key: key}, nil
}

// hostBucket returns the bucket of a virtual-hosted request, <bucket>.<domain>.
func hostBucket(host string, domains []string) (string, bool) {
	if len(domains) == 0 {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range domains {
		if b, ok := strings.CutSuffix(host, "."+d); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

// validBucketName applies S3's bucket naming rules: 3 to 63 characters of
// lowercase letters, digits, '.' and '-', starting and ending with a letter or
// digit, no "..", ".-" or "-.", and not in the form of an IPv4 address.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.' || c == '-':
			if i == 0 || i == len(name)-1 {
				return false
			}
			if p := name[i-1]; p == '.' || p == '-' && c == '.' {
				return false
			}
		default:
			return false
		}
	}
	if strings.Trim(name, "0123456789.") != "" {
		return true // not all digits and dots: cannot be an IP address
	}
	return net.ParseIP(name) == nil
}

// encodeKey is the one encoder of object keys for the upstream: it is used for
// the URL sent and for the path signed. It percent-encodes every byte but the
// RFC 3986 unreserved characters and '/', with uppercase hex, which is S3's
// canonical URI encoding, so any S3 server decodes it to the same key and
// computes the same canonical request.
func encodeKey(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if !keepInPath(key[i]) {
			n++
		}
	}
	if n == 0 {
		return key
	}
	return string(appendEncoded(make([]byte, 0, len(key)+2*n), key, true))
}

// appendEncoded appends s percent-encoded as SigV4's UriEncode does: every byte
// but the unreserved characters, and '/' unless keepSlash, as %XX in upper case.
func appendEncoded(b []byte, s string, keepSlash bool) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keepInPath(c) && (keepSlash || c != '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return b
}

func keepInPath(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '/'
}

// upstreamURL builds the URL of a request for key in t's bucket:
// virtual-hosted https://<bucket>.<host>[:port]/<key> by default, or path-style
// https://<host>[:port]/<bucket>/<key>. The query is set by the caller.
func upstreamURL(t *target, key string) *url.URL {
	u := &url.URL{Scheme: t.scheme, Host: t.host}
	switch {
	case !t.endpoint.PathStyle:
		u.Path = "/" + key
	case key == "":
		u.Path = "/" + t.bucket
	default:
		u.Path = "/" + t.bucket + "/" + key
	}
	u.RawPath = u.Path
	if enc := encodeKey(u.Path[1:]); enc != u.Path[1:] {
		u.RawPath = "/" + enc
	}
	return u
}

// upstreamHost returns the scheme and host of the upstream URLs of a bucket
// at endpoint e; see upstreamURL.
func upstreamHost(e Endpoint, bucket string) (scheme, host string) {
	scheme, host = e.Scheme, e.Host
	if scheme == "" {
		scheme = "https"
	}
	if e.Port != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(e.Port))
	}
	if !e.PathStyle {
		host = bucket + "." + host
	}
	return scheme, host
}

// leavesBucket reports whether resolving the dot segments of key, as a path
// below its bucket, would climb out of it: in a path-style URL or a copy
// source, /bucket/../other/key reaches another bucket on an upstream (or hop)
// that resolves dot segments. Empty segments are not counted, in case a hop
// also merges slashes.
func leavesBucket(key string) bool {
	depth := 0
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "..":
			if depth--; depth < 0 {
				return true
			}
		case ".", "":
		default:
			depth++
		}
	}
	return false
}

// forwardedHeader reports whether a client request header is an end-to-end
// header passed to the upstream. Authentication headers, hop-by-hop headers and
// the aws-chunked framing headers are never forwarded; the proxy sets its own.
func forwardedHeader(canonicalName string) bool {
	switch canonicalName {
	case "Content-Type", "Content-Md5", "Content-Encoding", "Content-Language",
		"Content-Disposition", "Cache-Control", "Expires", "Range",
		"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since":
		return true
	case "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
		"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-User-Agent":
		return false
	}
	return strings.HasPrefix(canonicalName, "X-Amz-")
}

// stripAWSChunked removes the aws-chunked coding from a Content-Encoding value;
// what remains (e.g. "gzip") describes the stored object.
func stripAWSChunked(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part != "" && !strings.EqualFold(part, "aws-chunked") {
				out = append(out, part)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return []string{strings.Join(out, ",")}
}

// presignParams are the query parameters of a presigned request; they are
// never forwarded upstream.
var presignParams = map[string]bool{
	"X-Amz-Algorithm": true, "X-Amz-Credential": true, "X-Amz-Date": true,
	"X-Amz-Expires": true, "X-Amz-SignedHeaders": true, "X-Amz-Signature": true,
	"X-Amz-Security-Token": true, "AWSAccessKeyId": true, "Signature": true, "Expires": true,
}

// upstreamQuery returns the client's raw query without presign parameters,
// keeping the client's encoding of everything else.
func upstreamQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	if !strings.Contains(rawQuery, "X-Amz-") && !strings.Contains(rawQuery, "Signature") && !strings.Contains(rawQuery, "Expires") {
		return rawQuery
	}
	var b strings.Builder
	for part := range strings.SplitSeq(rawQuery, "&") {
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil && presignParams[n] {
			continue
		}
		if part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// copySourceBucket returns the bucket named by an x-amz-copy-source header value,
// "[/]<bucket>/<key>[?versionId=…]", URL-encoded.
func copySourceBucket(v string) (string, error) {
	v = strings.TrimPrefix(v, "/")
	rawBucket, rest, ok := strings.Cut(v, "/")
	if !ok || rest == "" {
		return "", errInvalidArgument.withMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	bucket, err := url.PathUnescape(rawBucket)
	if err != nil || !validBucketName(bucket) {
		return "", errInvalidBucketName.withMessage("The copy source bucket is not valid.")
	}
	key, _, _ := strings.Cut(rest, "?")
	if key, err = url.PathUnescape(key); err != nil || leavesBucket(key) {
		return "", errInvalidArgument.withMessage("The copy source key is not valid or leaves its bucket.")
	}
	return bucket, nil
}

// operationName names the S3 operation of a request, for observers: one of a
// fixed set of names, "Unknown" for anything else, so metric labels stay few.
func operationName(r *http.Request, req s3Request) string {
	if req.bucket == "" {
		return "ListBuckets"
	}
	q := r.URL.Query()
	has := func(name string) bool { _, ok := q[name]; return ok }
	copying := r.Header.Get("X-Amz-Copy-Source") != ""
	if req.key != "" {
		switch r.Method {
		case http.MethodGet:
			switch {
			case has("uploadId"):
				return "ListParts"
			case has("tagging"):
				return "GetObjectTagging"
			case has("acl"):
				return "GetObjectAcl"
			case has("attributes"):
				return "GetObjectAttributes"
			}
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		case http.MethodPut:
			switch {
			case has("partNumber") && copying:
				return "UploadPartCopy"
			case has("partNumber"):
				return "UploadPart"
			case has("tagging"):
				return "PutObjectTagging"
			case has("acl"):
				return "PutObjectAcl"
			case copying:
				return "CopyObject"
			}
			return "PutObject"
		case http.MethodPost:
			switch {
			case has("uploads"):
				return "CreateMultipartUpload"
			case has("uploadId"):
				return "CompleteMultipartUpload"
			case has("restore"):
				return "RestoreObject"
			}
		case http.MethodDelete:
			switch {
			case has("uploadId"):
				return "AbortMultipartUpload"
			case has("tagging"):
				return "DeleteObjectTagging"
			}
			return "DeleteObject"
		}
		return "Unknown"
	}
	switch r.Method {
	case http.MethodGet:
		switch {
		case has("uploads"):
			return "ListMultipartUploads"
		case has("versions"):
			return "ListObjectVersions"
		case q.Get("list-type") == "2":
			return "ListObjectsV2"
		case len(q) == 0 || has("prefix") || has("delimiter") || has("marker") || has("max-keys") || has("encoding-type"):
			return "ListObjects"
		}
		return "GetBucket" + subresource(q)
	case http.MethodHead:
		return "HeadBucket"
	case http.MethodPut:
		if len(q) == 0 {
			return "CreateBucket"
		}
		return "PutBucket" + subresource(q)
	case http.MethodDelete:
		if len(q) == 0 {
			return "DeleteBucket"
		}
		return "DeleteBucket" + subresource(q)
	case http.MethodPost:
		if has("delete") {
			return "DeleteObjects"
		}
	}
	return "Unknown"
}

// subresource names a bucket subresource query ("acl" → "Acl") for
// operationName; unknown ones are "Subresource", so names stay few.
func subresource(q url.Values) string {
	for _, name := range []string{"acl", "cors", "lifecycle", "location", "logging", "policy", "tagging", "versioning",
		"website", "encryption", "replication", "notification", "object-lock", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment"} {
		if _, ok := q[name]; ok {
			switch name {
			case "object-lock":
				return "ObjectLockConfiguration"
			case "ownershipControls":
				return "OwnershipControls"
			case "publicAccessBlock":
				return "PublicAccessBlock"
			case "requestPayment":
				return "RequestPayment"
			}
			return strings.ToUpper(name[:1]) + name[1:]
		}
	}
	return "Subresource"
}
