package proxy

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
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

// identity is who sent a request, as authentication established it, and what
// the client's signature covers.
type identity struct {
	token       string       // the client's access key id: verified, or taken on trust in token mode
	verified    bool         // the signature was verified (WithClientSecrets)
	signed      []string     // the header names the client signed, lower case; nil in token mode
	payloadHash string       // the client's x-amz-content-sha256 (UNSIGNED-PAYLOAD when it sent none)
	chunks      *chunkSigner // what verified chunk signatures chain from; nil unless the body has signed chunks
}

// mayForward reports whether a client header may go upstream: in token mode
// every allowed header, when verified only the x-amz-* headers the client signed.
func (id *identity) mayForward(canonicalName string) bool {
	if !id.verified || !strings.HasPrefix(canonicalName, "X-Amz-") {
		return true
	}
	return hasFold(id.signed, canonicalName)
}

// hasFold reports whether sorted, a sorted list of lowercase header names,
// holds name in any case: a binary search, without allocating.
func hasFold(sorted []string, name string) bool {
	_, found := slices.BinarySearchFunc(sorted, name, compareLower)
	return found
}

// compareLower compares a lowercase name with the lowercase form of name.
func compareLower(lower, name string) int {
	for i := 0; i < len(lower) && i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if lower[i] != c {
			return cmp.Compare(lower[i], c)
		}
	}
	return cmp.Compare(len(lower), len(name))
}

// authenticate identifies the client. With client secrets configured it
// verifies the SigV4 signature (header or presigned URL), which covers the
// payload hash; in token mode it only reads the access key id.
func (p *Proxy) authenticate(r *http.Request) (identity, error) {
	sig, v2key, err := parseAuth(r)
	if err != nil {
		return identity{}, err
	}
	if !p.cfg.verifying() {
		return tokenMode(r, sig, v2key)
	}
	if sig == nil {
		if v2key != "" {
			return identity{}, errInvalidRequest.withMessage("AWS Signature Version 2 is not supported; sign requests with AWS Signature Version 4 (AWS4-HMAC-SHA256).")
		}
		return identity{}, errAccessDenied
	}
	secret, err := p.clientSecret(r.Context(), sig.accessKeyID)
	if err != nil {
		return identity{}, err
	}
	if err := p.checkTime(sig); err != nil {
		return identity{}, err
	}
	payloadHash, err := payloadHashOf(r, sig)
	if err != nil {
		return identity{}, err
	}
	if err := checkSignedHeaders(r, sig); err != nil {
		return identity{}, err
	}
	key, cached := p.keys.lookup(secret, sig.date, sig.region, sig.service)
	if !cached {
		key = deriveKey(secret, sig.date, sig.region, sig.service)
	}
	if err := verifySignature(r, sig, payloadHash, key); err != nil {
		return identity{}, err
	}
	if !cached {
		p.keys.store(secret, sig.date, sig.region, sig.service, key)
	}
	id := identity{token: sig.accessKeyID, verified: true, signed: sig.signedHeaders, payloadHash: payloadHash}
	if payloadHash == streamingSigned || payloadHash == streamingSignedTrailer {
		id.chunks = &chunkSigner{key: key, amzDate: sig.amzDate, scope: sig.scope(), prev: sig.signature}
	}
	return id, nil
}

// clientSecret returns the secret access key of a client's access key id: from
// WithClientKeys, or from the WithClientSecrets hook.
func (p *Proxy) clientSecret(ctx context.Context, accessKeyID string) (string, error) {
	if p.cfg.clientKeys != nil {
		if s, ok := p.cfg.clientKeys[accessKeyID]; ok {
			return s, nil
		}
		return "", ErrInvalidAccessKeyID
	}
	if !p.secretsGate.enter() {
		return "", errSlowDown.with(fmt.Errorf("client secrets hook: %d calls in flight", p.cfg.hookConcurrency))
	}
	defer p.secretsGate.leave()
	secret, err := callHook(ctx, p.cfg.hookTimeout, "client secrets", func(ctx context.Context) (string, error) {
		return p.cfg.secrets(ctx, accessKeyID)
	})
	if err != nil {
		return "", hookError("client secrets", err)
	}
	return secret, nil
}

// tokenMode takes the client's access key id as its token, unverified.
func tokenMode(r *http.Request, sig *sigV4, v2key string) (identity, error) {
	id := identity{token: v2key, payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	if sig != nil {
		id.token = sig.accessKeyID
	}
	if id.token == "" {
		return identity{}, errAccessDenied
	}
	if id.payloadHash == "" {
		id.payloadHash = unsignedPayload
	}
	return id, nil
}

// payloadHashOf returns the payload hash the client signed.
func payloadHashOf(r *http.Request, sig *sigV4) (string, error) {
	v := r.Header.Get("X-Amz-Content-Sha256")
	if sig.presigned {
		if v == "" || !slices.Contains(sig.signedHeaders, "x-amz-content-sha256") {
			return unsignedPayload, nil
		}
		return v, nil
	}
	if v == "" {
		return "", errInvalidRequest.withMessage("Missing required header for this request: x-amz-content-sha256.")
	}
	return v, nil
}

// checkTime applies the clock rules: a header-signed request must be within
// the allowed skew of the proxy's clock; a presigned URL must not have expired
// and must not be dated in the future beyond the skew.
func (p *Proxy) checkTime(sig *sigV4) error {
	t, err := time.Parse(amzDateFormat, sig.amzDate)
	if err != nil {
		return accessDenied("X-Amz-Date is not a valid date.")
	}
	now := p.cfg.now().UTC()
	if sig.presigned {
		if t.Sub(now) > p.cfg.maxSkew {
			return accessDenied("Request is not valid yet.")
		}
		if now.After(t.Add(sig.expires)) {
			return accessDenied("Request has expired.")
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

func accessDenied(msg string) error {
	return errAccessDenied.withMessage(msg)
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
				return nil, "", accessDenied("AWS authentication requires a valid Date or x-amz-date header.")
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
	if !validScopePart(parts[0], maxAccessKeyID, isKeyIDByte) {
		return malformed.withMessage("The access key id is not valid.")
	}
	if !validScopePart(parts[2], maxRegion, isRegionByte) {
		return malformed.withMessage("The credential scope region is not valid.")
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

// Bounds of the parts of a credential scope, checked before anything is done
// with them.
const (
	maxAccessKeyID = 128 // AWS: 16 to 128 characters
	maxRegion      = 64
)

// validScopePart reports whether s has 1 to max bytes, each one that ok
// accepts.
func validScopePart(s string, max int, ok func(byte) bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// isKeyIDByte accepts the printable ASCII characters but space.
func isKeyIDByte(c byte) bool { return '!' <= c && c <= '~' }

// isRegionByte accepts letters, digits, '-', '_' and '.'.
func isRegionByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// parseSignedHeaders parses "host;x-amz-date;…": lowercase, sorted, unique,
// host included.
func (s *sigV4) parseSignedHeaders(v string, malformed *Error) error {
	if strings.Count(v, ";") >= maxFields {
		return errHeaderTooLarge.withMessage("The request signs more header names than the proxy accepts.")
	}
	names := strings.Split(v, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") || (i > 0 && names[i-1] >= n) {
			return malformed.withMessage("SignedHeaders must be lowercase header names, sorted, each once.")
		}
	}
	if !slices.Contains(names, "host") {
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
		if strings.HasPrefix(name, "X-Amz-") && !hasFold(sig.signedHeaders, name) {
			return accessDenied("There were headers present in the request which were not signed: " + clip(strings.ToLower(name)) + ".")
		}
	}
	if !slices.Contains(sig.signedHeaders, "x-amz-content-sha256") {
		return accessDenied("x-amz-content-sha256 must be signed.")
	}
	return nil
}
