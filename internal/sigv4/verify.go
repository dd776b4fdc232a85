package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
)

// Signature is a parsed SigV4 signature, from the Authorization header or from
// presign query parameters.
type Signature struct {
	AccessKeyID   string
	Date          string // scope date, yyyymmdd
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	AmzDate       string // the request time, X-Amz-Date
	Presigned     bool
	Expires       time.Duration
}

func (s *Signature) Scope() string { return string(appendScope(nil, s)) }

// appendScope appends the credential scope: date/region/service/aws4_request.
func appendScope(b []byte, s *Signature) []byte {
	b = append(b, s.Date...)
	b = append(b, '/')
	b = append(b, s.Region...)
	b = append(b, '/')
	b = append(b, s.Service...)
	return append(b, "/aws4_request"...)
}

// Verify rebuilds the canonical request from exactly what the client
// sent and compares signatures in constant time. It works in pooled buffers:
// verifying a common request allocates nothing.
func Verify(r *http.Request, sig *Signature, payloadHash string, key []byte) error {
	v := verifiers.Get().(*verifier)
	defer v.release()
	creqs, err := v.canonicalRequests(r, sig, payloadHash)
	if err != nil {
		return err
	}
	for _, creq := range creqs {
		if v.matches(key, sig, creq) {
			return nil
		}
	}
	return s3err.SignatureDoesNotMatch
}

// SignatureOf computes the signature of r as sig describes it (signed headers,
// date, scope) with key, from r's URL exactly as it is: the signature a signer
// gives a request it builds itself.
func SignatureOf(r *http.Request, sig *Signature, payloadHash string, key []byte) (string, error) {
	v := verifiers.Get().(*verifier)
	defer v.release()
	creqs, err := v.canonicalRequests(r, sig, payloadHash)
	if err != nil {
		return "", err
	}
	return string(v.sign(key, sig, creqs[0])), nil
}

// verifier holds the buffers of one signature verification.
type verifier struct {
	buf    []byte    // the canonical requests, one after the other
	query  []byte    // the encoded query parameters
	sts    []byte    // the string to sign
	parts  []byte    // the encoded query names and values
	params []param   // the query parameters, slices of parts
	ends   [4]int    // where each canonical request ends in buf
	creqs  [4][]byte // the canonical requests, slices of buf
	h      hash.Hash // SHA-256
	pad    [64]byte  // HMAC key pad
	sum    [32]byte  // scratch digest
	hex    [64]byte  // scratch hex
}

type param struct{ k, v []byte }

var verifiers = sync.Pool{New: func() any { return &verifier{h: sha256.New()} }}

// maxPooledBuf bounds the buffers a verifier keeps for the next request: a
// request with huge headers or query leaves its buffers to the collector.
const maxPooledBuf = 16 << 10

func (v *verifier) release() {
	if cap(v.buf) > maxPooledBuf || cap(v.query) > maxPooledBuf || cap(v.parts) > maxPooledBuf || cap(v.sts) > maxPooledBuf {
		return
	}
	v.creqs = [4][]byte{}
	verifiers.Put(v)
}

// canonicalRequests builds the SigV4 canonical requests the client may have
// signed: one per candidate canonical URI (see canonicalURIs) and, when a
// signed header value holds a tab or line break, one per way SDKs fold them.
// The raw path and query come from RequestURI, so a proxy mounted under a
// prefix still verifies. The results are valid until v is released.
func (v *verifier) canonicalRequests(r *http.Request, sig *Signature, payloadHash string) ([][]byte, error) {
	rawPath, rawQuery := RawTarget(r)
	query, err := v.canonicalQuery(rawQuery, sig.Presigned)
	if err != nil {
		return nil, err
	}
	uris, nuris := canonicalURIs(rawPath)
	b := v.buf[:0]
	n := 0
	for _, uri := range uris[:nuris] {
		for _, foldAll := range [2]bool{false, true} {
			b = append(b, r.Method...)
			b = append(b, '\n')
			b = append(b, uri...)
			b = append(b, '\n')
			b = append(b, query...)
			b = append(b, '\n')
			headers := len(b)
			b = appendCanonicalHeaders(b, r, sig.SignedHeaders, foldAll)
			tabs := bytes.ContainsAny(b[headers:], "\t\r") // inside a value, as the Go SDK signs it
			b = append(b, '\n')
			for i, name := range sig.SignedHeaders {
				if i > 0 {
					b = append(b, ';')
				}
				b = append(b, name...)
			}
			b = append(b, '\n')
			b = append(b, payloadHash...)
			v.ends[n] = len(b)
			n++
			if !tabs { // rare: only then build botocore's form too
				break
			}
		}
	}
	v.buf = b
	start := 0
	for i := range n {
		v.creqs[i] = b[start:v.ends[i]]
		start = v.ends[i]
	}
	return v.creqs[:n], nil
}

// matches reports whether creq, signed with key, gives the client's signature;
// the comparison takes constant time.
func (v *verifier) matches(key []byte, sig *Signature, creq []byte) bool {
	return EqualConstantTime(v.sign(key, sig, creq), sig.Signature)
}

// sign returns the hex signature of creq with key, for the date and scope of
// sig; it is valid until the next call.
func (v *verifier) sign(key []byte, sig *Signature, creq []byte) []byte {
	v.h.Reset()
	v.h.Write(creq)
	hex.Encode(v.hex[:], v.h.Sum(v.sum[:0]))
	b := append(v.sts[:0], AlgorithmV4...)
	b = append(b, '\n')
	b = append(b, sig.AmzDate...)
	b = append(b, '\n')
	b = appendScope(b, sig)
	b = append(b, '\n')
	b = append(b, v.hex[:]...)
	v.sts = b
	hex.Encode(v.hex[:], v.hmac(key, b))
	return v.hex[:]
}

// EqualConstantTime reports whether b and s hold the same bytes, in a time
// that depends on their lengths only.
func EqualConstantTime(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	var d byte
	for i := range b {
		d |= b[i] ^ s[i]
	}
	return subtle.ConstantTimeByteEq(d, 0) == 1
}

// hmac computes HMAC-SHA256 (RFC 2104) of msg with a key of at most one block
// (a SigV4 signing key is 32 bytes) into v.sum.
func (v *verifier) hmac(key, msg []byte) []byte {
	v.pad = [64]byte{}
	copy(v.pad[:], key)
	for i := range v.pad {
		v.pad[i] ^= 0x36
	}
	v.h.Reset()
	v.h.Write(v.pad[:])
	v.h.Write(msg)
	inner := v.h.Sum(v.sum[:0])
	for i := range v.pad {
		v.pad[i] ^= 0x36 ^ 0x5c
	}
	v.h.Reset()
	v.h.Write(v.pad[:])
	v.h.Write(inner)
	return v.h.Sum(v.sum[:0])
}

// canonicalURIs returns the canonical URIs a client may have signed for a raw
// path (n of them): the path exactly as sent, and S3's canonical encoding of
// the decoded path when it differs (a client that sent a character raw but
// signed it encoded). Neither is normalized: S3 does not remove dot segments.
func canonicalURIs(rawPath string) (uris [2]string, n int) {
	if rawPath == "" {
		rawPath = "/"
	}
	uris[0], n = rawPath, 1
	if dec, err := url.PathUnescape(rawPath); err == nil {
		if enc := EncodeKey(dec); enc != rawPath {
			uris[1], n = enc, 2
		}
	}
	return uris, n
}

// canonicalQuery builds SigV4's canonical query string of the raw query into
// v.query: every parameter decoded and re-encoded (space as %20), sorted by
// encoded name then value. X-Amz-Signature is left out of presigned requests.
func (v *verifier) canonicalQuery(raw string, presigned bool) ([]byte, error) {
	v.query = v.query[:0]
	if raw == "" {
		return v.query, nil
	}
	parts := v.parts[:0] // the encoded names and values, one after the other
	params := v.params[:0]
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, s3err.InvalidArgument.WithMessage("The query string is not validly encoded.")
		}
		if presigned && dk == "X-Amz-Signature" {
			continue
		}
		ks := len(parts)
		parts = AppendEncoded(parts, dk, false)
		vs := len(parts)
		parts = AppendEncoded(parts, dv, false)
		// Slices of the array parts has now; a later growth copies parts
		// elsewhere and leaves these intact.
		params = append(params, param{parts[ks:vs:vs], parts[vs:len(parts):len(parts)]})
	}
	v.parts = parts
	slices.SortFunc(params, func(x, y param) int {
		if c := bytes.Compare(x.k, y.k); c != 0 {
			return c
		}
		return bytes.Compare(x.v, y.v)
	})
	b := v.query
	for i, p := range params {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	clear(params) // no references into parts stay in the pooled array
	v.params, v.query = params[:0], b
	return b, nil
}

// appendCanonicalHeaders appends the canonical headers block for the signed
// header names: each value trimmed with inner runs of spaces folded, several
// values joined by commas. Headers that net/http keeps outside r.Header
// (Host, Content-Length, Transfer-Encoding) are put back. SDKs differ on
// inner tabs: the Go and Java SDKs fold runs of spaces only, botocore folds
// all white space; foldAll selects the latter.
func appendCanonicalHeaders(b []byte, r *http.Request, names []string, foldAll bool) []byte {
	for _, name := range names {
		b = append(b, name...)
		b = append(b, ':')
		switch name {
		case "host":
			b = appendTrimmed(b, r.Host, foldAll)
		case "content-length":
			if v := r.Header["Content-Length"]; len(v) > 0 {
				b = AppendValues(b, v, foldAll)
			} else if r.ContentLength >= 0 && !(r.ContentLength == 0 && len(r.TransferEncoding) > 0) {
				b = strconv.AppendInt(b, r.ContentLength, 10)
			}
		case "transfer-encoding":
			if len(r.TransferEncoding) > 0 {
				b = AppendValues(b, r.TransferEncoding, foldAll)
			} else {
				b = AppendValues(b, lookupHeader(r.Header, name), foldAll)
			}
		default:
			b = AppendValues(b, lookupHeader(r.Header, name), foldAll)
		}
		b = append(b, '\n')
	}
	return b
}

// AppendValues appends a header's values, trimmed, joined by commas.
func AppendValues(b []byte, values []string, foldAll bool) []byte {
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTrimmed(b, v, foldAll)
	}
	return b
}

// lookupHeader returns the values of a header by its lowercase name without
// allocating its canonical form (http.Header.Values would).
func lookupHeader(h http.Header, lower string) []string {
	var buf [64]byte
	if len(lower) > len(buf) {
		return h.Values(lower)
	}
	upper := true
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				c -= 'a' - 'A'
			}
		case '0' <= c && c <= '9', c == '-':
		default: // not a plain token: let textproto decide its canonical form
			return h.Values(lower)
		}
		buf[i] = c
		upper = c == '-'
	}
	return h[string(buf[:len(lower)])]
}

// appendTrimmed appends a header value trimmed, each inner run of spaces
// folded into one space; with foldAll, runs of any white space (tabs, line
// breaks).
func appendTrimmed(b []byte, v string, foldAll bool) []byte {
	v = strings.TrimSpace(v)
	isSpace := func(c byte) bool { return c == ' ' || foldAll && (c == '\t' || c == '\r' || c == '\n') }
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isSpace(c) {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	return b
}

// DeriveKey derives the SigV4 signing key of a secret for a date, region and
// service.
func DeriveKey(secret, date, region, service string) []byte {
	h := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	return h(h(h(h([]byte("AWS4"+secret), date), region), service), "aws4_request")
}

// IsHexSHA256 reports whether s is a SHA-256 in lowercase hex, as SigV4
// writes payload hashes and signatures.
func IsHexSHA256(s string) bool { return len(s) == 64 && isHex(s, true) }

// isHex reports whether s is made of hex digits only; lower refuses A-F.
func isHex[T string | []byte](s T, lower bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || !lower && 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// RawTarget returns the path and query as the client sent them on the request
// line, what signatures cover: from RequestURI, so that a proxy mounted under
// a prefix (http.StripPrefix) still sees it, or from the URL when RequestURI
// is empty or absolute.
func RawTarget(r *http.Request) (path, query string) {
	path, query, _ = strings.Cut(r.RequestURI, "?")
	if r.RequestURI == "" || strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return r.URL.EscapedPath(), r.URL.RawQuery
	}
	return path, query
}

// EncodeKey is the one encoder of object keys for the upstream: it is used for
// the URL sent and for the path signed. It percent-encodes every byte but the
// RFC 3986 unreserved characters and '/', with uppercase hex, which is S3's
// canonical URI encoding, so any S3 server decodes it to the same key and
// computes the same canonical request.
func EncodeKey(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if !keepInPath(key[i]) {
			n++
		}
	}
	if n == 0 {
		return key
	}
	return string(AppendEncoded(make([]byte, 0, len(key)+2*n), key, true))
}

// AppendEncoded appends s percent-encoded as SigV4's UriEncode does: every byte
// but the unreserved characters, and '/' unless keepSlash, as %XX in upper case.
func AppendEncoded(b []byte, s string, keepSlash bool) []byte {
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
