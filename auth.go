package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jellydator/ttlcache/v3"
)

// Payload hash values of x-amz-content-sha256 besides a hex SHA-256.
const (
	unsignedPayload        = "UNSIGNED-PAYLOAD"
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsigned      = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256            = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	algorithmV4    = "AWS4-HMAC-SHA256"
	algorithmV4A   = "AWS4-ECDSA-P256-SHA256"
	amzDateFormat  = "20060102T150405Z"
	maxPresignSecs = 7 * 24 * 3600
)

// inbound is an authenticated client request: who sent it and the body to
// forward, verified as it streams.
type inbound struct {
	token       string        // the client's access key id (verified unless in token mode)
	body        io.ReadCloser // the payload to forward; nil when there is none
	length      int64         // the payload's length; -1 when unknown
	payloadHash string        // x-amz-content-sha256 for the upstream signature
	unchecked   io.ReadCloser // a hex-signed body as received, for an upstream that checks its hash (body checks it here)
	decoded     bool          // aws-chunked framing was removed from the body
	signed      []string      // the header names the client signed, lower case; nil in token mode

	// An aws-chunked client body: its decoder, its verified trailer's name
	// ("" for none) and whether its chunks were signed.
	chunked      *chunkedReader
	trailer      string
	signedChunks bool
}

// mayForward reports whether a client header may go upstream: in token mode
// every allowed header, when verified only the x-amz-* headers the client signed.
func (in *inbound) mayForward(canonicalName string) bool {
	if in.signed == nil || !strings.HasPrefix(canonicalName, "X-Amz-") {
		return true
	}
	return containsFold(in.signed, canonicalName)
}

// containsFold reports whether list holds s, ignoring case.
func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// sigV4 is a parsed SigV4 signature, from the Authorization header or from
// presign query parameters.
type sigV4 struct {
	accessKeyID   string
	date          string // scope date, yyyymmdd
	region        string
	service       string
	signedHeaders []string
	signature     string
	amzDate       string // the request time, X-Amz-Date
	presigned     bool
	expires       time.Duration
}

func (s *sigV4) scope() string { return string(appendScope(nil, s)) }

// appendScope appends the credential scope: date/region/service/aws4_request.
func appendScope(b []byte, s *sigV4) []byte {
	b = append(b, s.date...)
	b = append(b, '/')
	b = append(b, s.region...)
	b = append(b, '/')
	b = append(b, s.service...)
	return append(b, "/aws4_request"...)
}

// authenticate identifies the client and prepares the body to forward. With
// client secrets configured it verifies the SigV4 signature (header or
// presigned URL) and the payload; in token mode it only reads the access key id.
func (p *Proxy) authenticate(r *http.Request) (*inbound, error) {
	sig, v2key, err := parseAuth(r)
	if err != nil {
		return nil, err
	}
	if p.cfg.secrets == nil {
		return p.tokenMode(r, sig, v2key)
	}
	if sig == nil {
		if v2key != "" {
			return nil, errInvalidRequest.withMessage("AWS Signature Version 2 is not supported; sign requests with AWS Signature Version 4 (AWS4-HMAC-SHA256).")
		}
		return nil, ErrAccessDenied
	}
	secret, err := p.cfg.secrets(r.Context(), sig.accessKeyID)
	if err != nil {
		if errors.Is(err, ErrInvalidAccessKeyID) || errors.Is(err, ErrAccessDenied) {
			return nil, err
		}
		return nil, hookError("client secrets", err)
	}
	if err := p.checkTime(sig); err != nil {
		return nil, err
	}
	payloadHash, err := payloadHashOf(r, sig)
	if err != nil {
		return nil, err
	}
	if err := checkSignedHeaders(r, sig); err != nil {
		return nil, err
	}
	key := p.keys.signingKey(secret, sig.date, sig.region, sig.service)
	if err := verifySignature(r, sig, payloadHash, key); err != nil {
		return nil, err
	}
	in := &inbound{token: sig.accessKeyID, signed: sig.signedHeaders}
	var cs *chunkSigner
	if payloadHash == streamingSigned || payloadHash == streamingSignedTrailer {
		cs = &chunkSigner{key: key, amzDate: sig.amzDate, scope: sig.scope(), prev: sig.signature}
	}
	return in, prepareBody(r, in, payloadHash, cs, true)
}

// tokenMode takes the client's access key id as its token, unverified.
func (p *Proxy) tokenMode(r *http.Request, sig *sigV4, v2key string) (*inbound, error) {
	in := &inbound{token: v2key}
	if sig != nil {
		in.token = sig.accessKeyID
	}
	if in.token == "" {
		return nil, ErrAccessDenied
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		payloadHash = unsignedPayload
	}
	return in, prepareBody(r, in, payloadHash, nil, false)
}

// prepareBody sets up the body to forward for a payload hash value: a hex
// SHA-256 is checked as the body streams (when verify is set; the upstream
// checks it too), an aws-chunked body is decoded, UNSIGNED-PAYLOAD passes as is.
func prepareBody(r *http.Request, in *inbound, payloadHash string, cs *chunkSigner, verify bool) error {
	in.length = r.ContentLength
	in.body = r.Body
	if r.Body == nil || r.Body == http.NoBody {
		in.body, in.length = nil, 0
	}
	switch payloadHash {
	case unsignedPayload:
		in.payloadHash = unsignedPayload
		return nil
	case streamingSigned, streamingSignedTrailer, streamingUnsigned:
		return prepareChunked(r, in, payloadHash, cs)
	}
	if strings.HasPrefix(payloadHash, "STREAMING-") {
		return errNotImplemented.withMessage("The payload signing method " + payloadHash + " is not supported (only AWS4-HMAC-SHA256 and unsigned streaming are).")
	}
	if !isHexSHA256(payloadHash) {
		return errInvalidArgument.withMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a lowercase hex SHA-256.")
	}
	in.payloadHash = payloadHash
	if !verify {
		return nil
	}
	if in.body == nil {
		if payloadHash != emptySHA256 {
			return errContentSHA256Mismatch
		}
		return nil
	}
	in.unchecked = in.body
	want, _ := hex.DecodeString(payloadHash)
	in.body = readCloser{newHoldback(&sha256Reader{r: in.body, h: sha256.New(), want: want})}
	return nil
}

// prepareChunked sets up the decoding of an aws-chunked body.
func prepareChunked(r *http.Request, in *inbound, payloadHash string, cs *chunkSigner) error {
	dl := r.Header.Get("X-Amz-Decoded-Content-Length")
	if dl == "" {
		return errMissingContentLength.withMessage("An aws-chunked body needs the x-amz-decoded-content-length header.")
	}
	n, err := strconv.ParseInt(dl, 10, 64)
	if err != nil || n < 0 {
		return errInvalidArgument.withMessage("x-amz-decoded-content-length is not a valid length.")
	}
	trailer := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
	if payloadHash == streamingSigned && trailer != "" {
		return errInvalidRequest.withMessage("x-amz-trailer is set but the payload method has no trailer.")
	}
	if in.body == nil {
		return errIncompleteBody
	}
	in.decoded = true
	in.payloadHash = unsignedPayload
	in.length = n
	in.trailer = trailer
	in.signedChunks = payloadHash != streamingUnsigned
	in.chunked = newChunkedReader(in.body, chunkedOptions{
		signed:        in.signedChunks,
		sig:           cs,
		trailer:       trailer,
		decodedLength: n,
	})
	in.body = readCloser{newHoldback(in.chunked)} // the plain form; outbound may frame it again
	return nil
}

// payloadHashOf returns the payload hash the client signed.
func payloadHashOf(r *http.Request, sig *sigV4) (string, error) {
	v := r.Header.Get("X-Amz-Content-Sha256")
	if sig.presigned {
		if v == "" || !containsString(sig.signedHeaders, "x-amz-content-sha256") {
			return unsignedPayload, nil
		}
		return v, nil
	}
	if v == "" {
		return "", errInvalidRequest.withMessage("Missing required header for this request: x-amz-content-sha256.")
	}
	return v, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkTime applies the clock rules: a header-signed request must be within
// the allowed skew of the proxy's clock; a presigned URL must not have expired
// and must not be dated in the future beyond the skew.
func (p *Proxy) checkTime(sig *sigV4) error {
	t, err := time.Parse(amzDateFormat, sig.amzDate)
	if err != nil {
		return errAccessDenied("X-Amz-Date is not a valid date.")
	}
	now := p.cfg.now().UTC()
	if sig.presigned {
		if t.Sub(now) > p.cfg.maxSkew {
			return errAccessDenied("Request is not valid yet.")
		}
		if now.After(t.Add(sig.expires)) {
			return errAccessDenied("Request has expired.")
		}
		return nil
	}
	if d := now.Sub(t); d > p.cfg.maxSkew || -d > p.cfg.maxSkew {
		return errTimeTooSkewed.
			withField("RequestTime", sig.amzDate).
			withField("ServerTime", now.Format("2006-01-02T15:04:05Z")).
			withField("MaxAllowedSkewMilliseconds", strconv.FormatInt(p.cfg.maxSkew.Milliseconds(), 10))
	}
	return nil
}

func errAccessDenied(msg string) error {
	return ErrAccessDenied.(*Error).withMessage(msg)
}

// parseAuth finds how the request is signed: a SigV4 signature (header or
// query), or the access key id of a SigV2 one, or neither (anonymous).
func parseAuth(r *http.Request) (*sigV4, string, error) {
	auth := r.Header.Get("Authorization")
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	presignV4 := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential")
	presignV2 := q.Has("AWSAccessKeyId") && q.Has("Signature")
	if auth != "" && (presignV4 || presignV2) {
		return nil, "", errInvalidArgument.withMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	}
	switch {
	case strings.HasPrefix(auth, algorithmV4+" "):
		sig, err := parseAuthHeader(auth)
		if err != nil {
			return nil, "", err
		}
		sig.amzDate = r.Header.Get("X-Amz-Date")
		if sig.amzDate == "" {
			d, err := http.ParseTime(r.Header.Get("Date"))
			if err != nil {
				return nil, "", errAccessDenied("AWS authentication requires a valid Date or x-amz-date header.")
			}
			sig.amzDate = d.UTC().Format(amzDateFormat)
		}
		if len(sig.amzDate) < 8 || sig.amzDate[:8] != sig.date {
			return nil, "", errAuthHeaderMalformed.withMessage("The credential scope date does not match the request date.")
		}
		return sig, "", nil
	case strings.HasPrefix(auth, algorithmV4A+" "):
		return nil, "", errNotImplemented.withMessage("AWS Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	case strings.HasPrefix(auth, "AWS "):
		id, _, ok := strings.Cut(strings.TrimPrefix(auth, "AWS "), ":")
		if !ok || id == "" {
			return nil, "", errAuthHeaderMalformed
		}
		return nil, id, nil
	case auth != "":
		return nil, "", errInvalidArgument.withMessage("Unsupported Authorization Type.")
	case presignV4:
		sig, err := parsePresign(q)
		return sig, "", err
	case presignV2:
		return nil, q.Get("AWSAccessKeyId"), nil
	}
	return nil, "", nil
}

// parseAuthHeader parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" strictly: each part once, nothing else.
func parseAuthHeader(v string) (*sigV4, error) {
	rest := strings.TrimPrefix(v, algorithmV4+" ")
	var cred, signed, signature string
	var seen int
	for part := range strings.SplitSeq(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errAuthHeaderMalformed
		}
		switch name {
		case "Credential":
			cred, seen = value, seen|1
		case "SignedHeaders":
			signed, seen = value, seen|2
		case "Signature":
			signature, seen = value, seen|4
		default:
			return nil, errAuthHeaderMalformed
		}
	}
	if seen != 7 || strings.Count(rest, "=") != 3 {
		return nil, errAuthHeaderMalformed
	}
	sig := &sigV4{}
	if err := sig.parseCredential(cred, errAuthHeaderMalformed); err != nil {
		return nil, err
	}
	if err := sig.parseSignedHeaders(signed, errAuthHeaderMalformed); err != nil {
		return nil, err
	}
	if !isHexSHA256(signature) {
		return nil, errAuthHeaderMalformed.withMessage("The signature is not 64 lowercase hex digits.")
	}
	sig.signature = signature
	return sig, nil
}

// parsePresign parses the X-Amz-* query parameters of a presigned URL.
func parsePresign(q url.Values) (*sigV4, error) {
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[name]) != 1 {
			return nil, errAuthQueryMalformed.withMessage("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters, once each.")
		}
	}
	switch q.Get("X-Amz-Algorithm") {
	case algorithmV4:
	case algorithmV4A:
		return nil, errNotImplemented.withMessage("AWS Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	default:
		return nil, errAuthQueryMalformed.withMessage("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".")
	}
	sig := &sigV4{presigned: true, amzDate: q.Get("X-Amz-Date")}
	if err := sig.parseCredential(q.Get("X-Amz-Credential"), errAuthQueryMalformed); err != nil {
		return nil, err
	}
	if err := sig.parseSignedHeaders(q.Get("X-Amz-SignedHeaders"), errAuthQueryMalformed); err != nil {
		return nil, err
	}
	exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || exp < 1 || exp > maxPresignSecs {
		return nil, errAuthQueryMalformed.withMessage("X-Amz-Expires must be a number of seconds from 1 to 604800 (seven days).")
	}
	sig.expires = time.Duration(exp) * time.Second
	sig.signature = q.Get("X-Amz-Signature")
	if !isHexSHA256(sig.signature) {
		return nil, errAuthQueryMalformed.withMessage("X-Amz-Signature is not 64 lowercase hex digits.")
	}
	if len(sig.amzDate) != len(amzDateFormat) || sig.amzDate[:8] != sig.date {
		return nil, errAuthQueryMalformed.withMessage("X-Amz-Date is not valid or does not match the credential scope date.")
	}
	return sig, nil
}

// parseCredential parses "<key id>/<yyyymmdd>/<region>/s3/aws4_request".
func (s *sigV4) parseCredential(v string, malformed *Error) error {
	var parts [5]string // split without allocating: four slashes, five parts
	if strings.Count(v, "/") == len(parts)-1 {
		rest := v
		for i := range len(parts) - 1 {
			parts[i], rest, _ = strings.Cut(rest, "/")
		}
		parts[len(parts)-1] = rest
	}
	if parts[0] == "" || parts[2] == "" || parts[4] != "aws4_request" {
		return malformed.withMessage("The credential is not of the form <key id>/<date>/<region>/s3/aws4_request.")
	}
	if _, err := time.Parse("20060102", parts[1]); err != nil || len(parts[1]) != 8 {
		return malformed.withMessage("The credential scope date is not a yyyymmdd date.")
	}
	if parts[3] != "s3" {
		return malformed.withMessage("The credential scope is for service " + strconv.Quote(parts[3]) + "; this is s3.")
	}
	s.accessKeyID, s.date, s.region, s.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// parseSignedHeaders parses "host;x-amz-date;…": lowercase, sorted, unique,
// host included.
func (s *sigV4) parseSignedHeaders(v string, malformed *Error) error {
	names := strings.Split(v, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") || (i > 0 && names[i-1] >= n) {
			return malformed.withMessage("SignedHeaders must be lowercase header names, sorted, each once.")
		}
	}
	if !containsString(names, "host") {
		return malformed.withMessage("SignedHeaders must include host.")
	}
	s.signedHeaders = names
	return nil
}

// checkSignedHeaders enforces what a header-signed request must sign: every
// x-amz-* header present, and x-amz-content-sha256.
func checkSignedHeaders(r *http.Request, sig *sigV4) error {
	if sig.presigned {
		return nil
	}
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-") && !containsFold(sig.signedHeaders, name) {
			return errAccessDenied("There were headers present in the request which were not signed: " + strings.ToLower(name) + ".")
		}
	}
	if !containsString(sig.signedHeaders, "x-amz-content-sha256") {
		return errAccessDenied("x-amz-content-sha256 must be signed.")
	}
	return nil
}

// verifySignature rebuilds the canonical request from exactly what the client
// sent and compares signatures in constant time. It works in pooled buffers:
// verifying a common request allocates nothing.
func verifySignature(r *http.Request, sig *sigV4, payloadHash string, key []byte) error {
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
	return errSignatureMismatch
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
func (v *verifier) canonicalRequests(r *http.Request, sig *sigV4, payloadHash string) ([][]byte, error) {
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if r.RequestURI == "" || strings.HasPrefix(rawPath, "http://") || strings.HasPrefix(rawPath, "https://") {
		rawPath, rawQuery = r.URL.EscapedPath(), r.URL.RawQuery
	}
	query, err := v.canonicalQuery(rawQuery, sig.presigned)
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
			b = appendCanonicalHeaders(b, r, sig.signedHeaders, foldAll)
			tabs := bytes.ContainsAny(b[headers:], "\t\r") // inside a value, as the Go SDK signs it
			b = append(b, '\n')
			for i, name := range sig.signedHeaders {
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
func (v *verifier) matches(key []byte, sig *sigV4, creq []byte) bool {
	v.h.Reset()
	v.h.Write(creq)
	hex.Encode(v.hex[:], v.h.Sum(v.sum[:0]))
	b := append(v.sts[:0], algorithmV4...)
	b = append(b, '\n')
	b = append(b, sig.amzDate...)
	b = append(b, '\n')
	b = appendScope(b, sig)
	b = append(b, '\n')
	b = append(b, v.hex[:]...)
	v.sts = b
	hex.Encode(v.hex[:], v.hmac(key, b))
	return equalConstantTime(v.hex[:], sig.signature)
}

// equalConstantTime reports whether b and s hold the same bytes, in a time
// that depends on their lengths only.
func equalConstantTime(b []byte, s string) bool {
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
		if enc := encodeKey(dec); enc != rawPath {
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
			return nil, errInvalidArgument.withMessage("The query string is not validly encoded.")
		}
		if presigned && dk == "X-Amz-Signature" {
			continue
		}
		ks := len(parts)
		parts = appendEncoded(parts, dk, false)
		vs := len(parts)
		parts = appendEncoded(parts, dv, false)
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
				b = appendValues(b, v, foldAll)
			} else if r.ContentLength >= 0 && !(r.ContentLength == 0 && len(r.TransferEncoding) > 0) {
				b = strconv.AppendInt(b, r.ContentLength, 10)
			}
		case "transfer-encoding":
			if len(r.TransferEncoding) > 0 {
				b = appendValues(b, r.TransferEncoding, foldAll)
			} else {
				b = appendValues(b, lookupHeader(r.Header, name), foldAll)
			}
		default:
			b = appendValues(b, lookupHeader(r.Header, name), foldAll)
		}
		b = append(b, '\n')
	}
	return b
}

// appendValues appends a header's values, trimmed, joined by commas.
func appendValues(b []byte, values []string, foldAll bool) []byte {
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

// signingKeys caches derived SigV4 signing keys by (secret digest, date,
// region, service): a rotated secret misses the cache at once.
type signingKeys struct {
	cache *ttlcache.Cache[keyID, []byte]
}

type keyID struct {
	secret                [sha256.Size]byte
	date, region, service string
}

const signingKeyCapacity = 10_000

func newSigningKeys() *signingKeys {
	c := ttlcache.New(
		ttlcache.WithTTL[keyID, []byte](24*time.Hour),
		ttlcache.WithCapacity[keyID, []byte](signingKeyCapacity),
		ttlcache.WithDisableTouchOnHit[keyID, []byte](),
	)
	return &signingKeys{cache: c}
}

func (k *signingKeys) signingKey(secret, date, region, service string) []byte {
	id := keyID{secret: sha256.Sum256([]byte(secret)), date: date, region: region, service: service}
	if it := k.cache.Get(id); it != nil {
		return it.Value()
	}
	key := deriveKey(secret, date, region, service)
	k.cache.Set(id, key, ttlcache.DefaultTTL)
	return key
}

func (k *signingKeys) sweep() { k.cache.DeleteExpired() }

// deriveKey derives the SigV4 signing key of a secret for a date, region and
// service.
func deriveKey(secret, date, region, service string) []byte {
	h := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	return h(h(h(h([]byte("AWS4"+secret), date), region), service), "aws4_request")
}

// sha256Reader passes a body through and, at its end, compares its SHA-256 with
// the one the client signed: a mismatch is an error instead of io.EOF.
type sha256Reader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
	err  error
}

func (s *sha256Reader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err == io.EOF {
		if !hmac.Equal(s.h.Sum(nil), s.want) {
			err = errContentSHA256Mismatch
		}
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

// holdback withholds the last byte of a stream until the stream has ended
// cleanly, that is until its verification passed: an upstream that expects N
// bytes never receives all N from a body that turns out to be bad, so it
// stores nothing when the proxy then aborts the request.
type holdback struct {
	r       io.Reader
	last    byte
	hasLast bool
	one     [1]byte
	err     error
}

func newHoldback(r io.Reader) *holdback { return &holdback{r: r} }

func (h *holdback) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if h.err != nil {
			if h.err == io.EOF && h.hasLast {
				p[0], h.hasLast = h.last, false
				return 1, nil
			}
			return 0, h.err
		}
		if !h.hasLast {
			n, err := h.r.Read(p)
			h.keep(p[:n], err)
			if n > 1 {
				return n - 1, nil
			}
			continue
		}
		// One byte is held: it goes out first, the newest byte is held instead.
		buf := p[1:]
		if len(buf) == 0 {
			buf = h.one[:]
		}
		n, err := h.r.Read(buf)
		if n == 0 {
			h.err = err
			continue
		}
		p[0] = h.last
		copy(p[1:], buf[:n-1])
		h.keep(buf[n-1:n], err)
		return n, nil
	}
}

// keep holds the last byte of b and records err; a stream that failed loses
// its held byte for good.
func (h *holdback) keep(b []byte, err error) {
	h.err = err
	if len(b) > 0 {
		h.last, h.hasLast = b[len(b)-1], true
	}
	if err != nil && err != io.EOF {
		h.hasLast = false
	}
}

// readCloser gives a verifying reader a Close that does nothing: the server
// closes the client's body itself once the handler returns, and closing it
// early would hang a client waiting for 100 Continue.
type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }
