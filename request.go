package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// s3Request is what the proxy reads from a client request before anything else:
// the bucket and the object key it addresses.
type s3Request struct {
	bucket string // "" for the service (ListBuckets)
	key    string // decoded object key; "" for bucket operations

	// The source bucket of CopyObject and UploadPartCopy (x-amz-copy-source);
	// "" for other requests. copyErr is why the copy source is not valid; it
	// is answered once the client is authenticated.
	copyBucket string
	copyErr    error
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
		return withCopySource(r, s3Request{bucket: bucket, key: key}), nil
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
	return withCopySource(r, s3Request{bucket: bucket, key: key}), nil
}

// withCopySource adds the copy source of a request to req.
func withCopySource(r *http.Request, req s3Request) s3Request {
	if v := r.Header.Get("X-Amz-Copy-Source"); v != "" {
		req.copyBucket, req.copyErr = copySourceBucket(v)
	}
	return req
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
