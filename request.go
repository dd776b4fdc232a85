package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/osproxy/proxy/internal/s3op"
)

// Bounds of a request, checked before anything else is done with it. They keep
// the work done before a signature is verified linear in the request's size,
// with small constants.
const (
	// maxHeadBytes bounds the request head: the names and values of its
	// header fields, its path and its query. Past it: 400
	// RequestHeaderSectionTooLarge, as S3 answers.
	maxHeadBytes = 64 << 10
	// maxFields bounds the number of header fields, of query parameters and of
	// signed header names, each. Past it: 400 RequestHeaderSectionTooLarge.
	maxFields = 500
	// maxKeyLength is S3's bound of an object key, in bytes. Past it: 400
	// KeyTooLongError.
	maxKeyLength = 1024
)

// s3Request is what the proxy reads from a client request before anything else:
// the bucket and the object key it addresses, and the S3 operation it is.
type s3Request struct {
	bucket string  // "" for the service (ListBuckets)
	key    string  // decoded object key; "" for bucket operations
	vhost  bool    // the bucket was named in the Host (WithVirtualHostDomains), not in the path
	op     s3op.Op // read from the method and the query that goes upstream

	// The source bucket of CopyObject and UploadPartCopy (x-amz-copy-source);
	// "" for other requests. copyErr is why the copy (or rename) source is
	// not valid; it is answered once the client is authenticated.
	copyBucket, copyKey string
	copyVersioned       bool // the copy source names a version (?versionId=)
	copyErr             error
	// renameKey is the key RenameObject renames (x-amz-rename-source, in
	// the same bucket); "" for other requests.
	renameKey string

	postObject bool // POST Object: key is the form's (postobject.go)
}

// parseRequest reads the bucket and key from a client request: from the Host
// when it is <bucket>.<domain> for a configured domain, otherwise from the first
// segment of the path (path style). The path is split on its raw, escaped form,
// so an encoded slash can never move a request into another bucket.
//
// Only S3's methods are served (GET, HEAD, PUT, POST, DELETE, and OPTIONS for
// CORS preflights): anything else is 405 MethodNotAllowed. A request head past the bounds above is refused.
func parseRequest(r *http.Request, c *config) (s3Request, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
	default:
		return s3Request{}, errMethodNotAllowed
	}
	if err := checkHead(r); err != nil {
		return s3Request{}, err
	}
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
		req, err := newS3Request(r, bucket, raw)
		req.vhost = true
		return req, err
	}

	rawBucket, rawKey, _ := strings.Cut(raw, "/")
	if rawBucket == "" {
		if rawKey != "" {
			return s3Request{}, errInvalidBucketName
		}
		op, err := s3op.Classify(r.Method, s3op.Service, r.URL.RawQuery, false)
		return s3Request{op: op}, err
	}
	bucket, err := url.PathUnescape(rawBucket)
	if err != nil || !validBucketName(bucket) {
		return s3Request{}, errInvalidBucketName
	}
	return newS3Request(r, bucket, rawKey)
}

// newS3Request decodes the key of a request for bucket, reads its copy source
// and names its operation. The query is read once, here: what the authorizer
// is asked and what the upstream gets come from the same bytes.
func newS3Request(r *http.Request, bucket, rawKey string) (s3Request, error) {
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		return s3Request{}, errInvalidURI.with(err)
	}
	if len(key) > maxKeyLength {
		return s3Request{}, errKeyTooLong
	}
	req := s3Request{bucket: bucket, key: key}
	req.copyBucket, req.copyKey, req.copyVersioned, req.copyErr = copySource(r)
	level := s3op.Bucket
	if key != "" {
		level = s3op.Object
	}
	if req.op, err = s3op.Classify(r.Method, level, r.URL.RawQuery, req.copyBucket != ""); err != nil {
		return s3Request{}, queryError(err)
	}
	if req.op.Name == "RenameObject" && req.copyErr == nil {
		req.renameKey, req.copyErr = renameSource(r, bucket)
	}
	return req, nil
}

// queryError is the S3 error of a query s3op.Classify refuses.
func queryError(err error) error {
	var e *s3op.Error
	if !errors.As(err, &e) {
		return err
	}
	out := s3Error(e.Status, e.Code, e.Message)
	if e.ArgumentName != "" {
		out = out.withField("ArgumentName", e.ArgumentName)
	}
	if e.ArgumentValue != "" {
		out = out.withField("ArgumentValue", e.ArgumentValue)
	}
	return out
}

// checkHead refuses a request head past maxHeadBytes or maxFields.
func checkHead(r *http.Request) error {
	n := len(r.URL.RawQuery) + len(r.URL.Path) + len(r.URL.RawPath)
	fields := 0
	for name, values := range r.Header {
		fields += len(values)
		for _, v := range values {
			n += len(name) + len(v)
		}
		if n > maxHeadBytes || fields > maxFields {
			return errHeaderTooLarge
		}
	}
	if n > maxHeadBytes || strings.Count(r.URL.RawQuery, "&") >= maxFields {
		return errHeaderTooLarge
	}
	return nil
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

// copySource returns the source bucket of a copy: the one value of the
// x-amz-copy-source header or, hoisted there by a presigner, of the query
// parameter of that name (any case). More than one value is 400
// InvalidArgument: an upstream might copy from another one than the proxy
// authorized. "" without a copy source.
func copySource(r *http.Request) (bucket, key string, versioned bool, err error) {
	values, err := sourceValues(r, "X-Amz-Copy-Source")
	if err != nil {
		return "", "", false, err
	}
	switch len(values) {
	case 0:
		return "", "", false, nil
	case 1:
		return copySourceBucket(values[0])
	}
	return "", "", false, errInvalidArgument.withMessage("A request may name one copy source (x-amz-copy-source) only.")
}

// sourceValues returns the values of a source header (x-amz-copy-source,
// x-amz-rename-source): the header's, and those of the query parameter of
// that name (any case), where a presigner hoists it.
func sourceValues(r *http.Request, canonicalName string) ([]string, error) {
	values := r.Header.Values(canonicalName)
	for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
		name, value, _ := strings.Cut(part, "=")
		if !queryNameIs(name, canonicalName) {
			continue
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			return nil, errInvalidArgument.withMessage("The " + strings.ToLower(canonicalName) + " query parameter is not validly encoded.")
		}
		values = append(values[:len(values):len(values)], v)
	}
	return values, nil
}

// renameSource returns the key RenameObject renames: the one value of
// x-amz-rename-source, "[/]<bucket>/<key>" as a copy source is written,
// which must name bucket, the request's own (S3 renames within a bucket). ""
// without one: the upstream answers the request it cannot do.
func renameSource(r *http.Request, bucket string) (string, error) {
	values, err := sourceValues(r, "X-Amz-Rename-Source")
	if err != nil || len(values) == 0 {
		return "", err
	}
	if len(values) > 1 {
		return "", errInvalidArgument.withMessage("A request may name one rename source (x-amz-rename-source) only.")
	}
	b, key, versioned, err := copySourceBucket(values[0])
	switch {
	case err != nil:
		return "", err
	case versioned:
		return "", errInvalidArgument.withMessage("A rename source cannot name a version.")
	case b != bucket:
		return "", errInvalidArgument.withMessage("The rename source must be an object of the bucket renamed in: /" + bucket + "/<key>.")
	}
	return key, nil
}

// queryNameIs reports whether the raw (encoded) name of a query parameter is
// name, ignoring case.
func queryNameIs(raw, name string) bool { return strings.EqualFold(queryName(raw), name) }

// queryName decodes the raw name of a query parameter; one that does not
// decode is taken as it is.
func queryName(raw string) string {
	if strings.ContainsAny(raw, "%+") {
		if dec, err := url.QueryUnescape(raw); err == nil {
			return dec
		}
	}
	return raw
}

// copySourceBucket returns the bucket and key named by a copy source, and
// whether it names a version, as S3 parses it:
// "[/]<bucket>/<key>[?versionId=<id>]", bucket and key URL-encoded. Only
// "?versionId=" starts a query: any other '?' belongs to the key, whose every
// segment is checked.
func copySourceBucket(v string) (bucket, key string, versioned bool, err error) {
	path, version, versioned := strings.Cut(strings.TrimPrefix(v, "/"), "?versionId=")
	if versioned && (version == "" || strings.ContainsAny(version, "/?&#%")) {
		return "", "", false, errInvalidArgument.withMessage("The copy source version id is not valid.")
	}
	rawBucket, rawKey, ok := strings.Cut(path, "/")
	if !ok || rawKey == "" {
		return "", "", false, errInvalidArgument.withMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	bucket, err = url.PathUnescape(rawBucket)
	if err != nil || !validBucketName(bucket) {
		return "", "", false, errInvalidBucketName.withMessage("The copy source bucket is not valid.")
	}
	key, err = url.PathUnescape(rawKey)
	if err != nil || leavesBucket(key) || len(key) > maxKeyLength {
		return "", "", false, errInvalidArgument.withMessage("The copy source key is not valid or leaves its bucket.")
	}
	return bucket, key, versioned, nil
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
