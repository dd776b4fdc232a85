package proxy

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/awschunked"
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
	token     string // the client's access key id: verified, or taken on trust in token mode
	verified  bool   // the signature was verified (WithClientSecrets)
	anonymous bool   // no signature at all: forwarded without credentials where a bucket allows it
	presigned bool   // signed in the query (verified or, in token mode, not)
	// A verified presigned URL: its signature, which names it, and when it
	// expires (for WithPresignedUseLimit); "" otherwise.
	presignedURL string
	urlExpires   time.Time
	signed       []string           // the header names the client signed, lower case; nil in token mode
	payloadHash  string             // the client's x-amz-content-sha256 (UNSIGNED-PAYLOAD when it sent none)
	chunks       *awschunked.Signer // what verified chunk signatures chain from; nil unless the body has signed chunks
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
func (p *Proxy) authenticate(r *http.Request, req *s3Request) (identity, error) {
	sig, sig2, err := parseAuth(r)
	if err != nil {
		return identity{}, err
	}
	if err := p.checkRegion(sig); err != nil {
		return identity{}, err
	}
	switch {
	case sig == nil && sig2 == nil:
		return anonymous(r)
	case !p.cfg.verifying():
		return tokenMode(r, sig, sig2)
	case sig2 != nil && !p.cfg.sigV2:
		return identity{}, errInvalidRequest.withMessage("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	case sig2 != nil:
		return p.authenticateV2(r, sig2, req)
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
	id := identity{token: sig.accessKeyID, verified: true, presigned: sig.presigned, signed: sig.signedHeaders, payloadHash: payloadHash}
	if sig.presigned {
		t, _ := time.Parse(amzDateFormat, sig.amzDate) // checked by checkTime
		id.presignedURL, id.urlExpires = "v4:"+sig.signature, t.Add(sig.expires)
	}
	if payloadHash == streamingSigned || payloadHash == streamingSignedTrailer {
		id.chunks = &awschunked.Signer{Key: key, AmzDate: sig.amzDate, Scope: sig.scope(), Prev: sig.signature}
	}
	return id, nil
}

// checkRegion refuses a signature scoped to a region the proxy does not answer
// for (WithRegions), naming the region it expects as S3 does.
func (p *Proxy) checkRegion(sig *sigV4) error {
	if sig == nil || len(p.cfg.regions) == 0 || slices.Contains(p.cfg.regions, sig.region) {
		return nil
	}
	form := headerAuth
	if sig.presigned {
		form = queryAuth
	}
	want := p.cfg.regions[0]
	return form.credential("the region '"+sig.region+"' is wrong; expecting '"+want+"'").withField("Region", want)
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
	return callGated(ctx, p.secretsGate, p.cfg.hookTimeout, "client secrets", func(ctx context.Context) (string, error) {
		return p.cfg.secrets(ctx, accessKeyID)
	})
}

// authenticateV2 verifies a SigV2 signature (WithSigV2). Every x-amz-* header
// is signed in SigV2; the body is not, unless an x-amz-content-sha256 the
// signature covers says what it is.
func (p *Proxy) authenticateV2(r *http.Request, sig *sigV2, req *s3Request) (identity, error) {
	secret, err := p.clientSecret(r.Context(), sig.accessKeyID)
	if err != nil {
		return identity{}, err
	}
	vhost := ""
	if req.vhost {
		vhost = req.bucket
	}
	if err := p.verifySigV2(r, sig, secret, vhost); err != nil {
		return identity{}, err
	}
	id := identity{token: sig.accessKeyID, verified: true, presigned: sig.presigned, payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	if sig.presigned {
		exp, _ := strconv.ParseInt(sig.expires, 10, 64) // checked by verifySigV2
		// The signature as verified: a '+' sent unencoded (read as ' ') and
		// one sent as %2B are the same URL, counted once.
		id.presignedURL, id.urlExpires = "v2:"+strings.ReplaceAll(sig.signature, " ", "+"), time.Unix(exp, 0)
	}
	switch id.payloadHash {
	case "":
		id.payloadHash = unsignedPayload
	case streamingSigned, streamingSignedTrailer:
		return identity{}, errInvalidRequest.withMessage("Signed aws-chunked bodies need AWS Signature Version 4.")
	}
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-") {
			id.signed = append(id.signed, strings.ToLower(name))
		}
	}
	slices.Sort(id.signed)
	return id, nil
}

// anonymous is the identity of a request without any signature: authorize
// lets it through only to a bucket that takes anonymous requests.
func anonymous(r *http.Request) (identity, error) {
	id := identity{anonymous: true, payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	switch id.payloadHash {
	case "":
		id.payloadHash = unsignedPayload
	case streamingSigned, streamingSignedTrailer:
		return identity{}, errInvalidRequest.withMessage("Anonymous requests don't support this x-amz-content-sha256 value. Please use UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER.")
	}
	return id, nil
}

// tokenMode takes the client's access key id as its token, unverified.
func tokenMode(r *http.Request, sig *sigV4, sig2 *sigV2) (identity, error) {
	id := identity{payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	if sig != nil {
		id.token, id.presigned = sig.accessKeyID, sig.presigned
	} else {
		id.token, id.presigned = sig2.accessKeyID, sig2.presigned
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
		return errNoDate
	}
	now := p.cfg.now().UTC()
	if sig.presigned {
		if t.Sub(now) > p.cfg.maxSkew {
			return accessDenied("Request is not valid yet")
		}
		if expires := t.Add(sig.expires); now.After(expires) {
			return expired(strconv.Itoa(int(sig.expires/time.Second)), expires, now)
		}
		return nil
	}
	return p.checkSkew(t, sig.amzDate, now)
}

// checkSkew refuses a header-signed request whose time t (as the client wrote
// it: sent) is further from now than the allowed skew, with the fields SDKs
// use to correct their clocks.
func (p *Proxy) checkSkew(t time.Time, sent string, now time.Time) error {
	if d := now.Sub(t); d > p.cfg.maxSkew || -d > p.cfg.maxSkew {
		return errTimeTooSkewed.
			withField("RequestTime", sent).
			withField("ServerTime", now.Format(iso8601)).
			withField("MaxAllowedSkewMilliseconds", strconv.FormatInt(p.cfg.maxSkew.Milliseconds(), 10))
	}
	return nil
}

// expired is S3's answer to a presigned URL used after expires; a SigV4 URL
// names its X-Amz-Expires too (xAmzExpires; "" for SigV2).
func expired(xAmzExpires string, expires, now time.Time) *Error {
	e := errAccessDenied.withMessage("Request has expired")
	if xAmzExpires != "" {
		e = e.withField("X-Amz-Expires", xAmzExpires)
	}
	return e.withField("Expires", expires.UTC().Format(iso8601)).withField("ServerTime", now.Format(iso8601))
}

// iso8601 is how S3 writes times in error bodies.
const iso8601 = "2006-01-02T15:04:05Z"

func accessDenied(msg string) error {
	return errAccessDenied.withMessage(msg)
}

// parseAuth finds how the request is signed: a SigV4 signature (header or
// query), a SigV2 one, or neither (anonymous).
func parseAuth(r *http.Request) (*sigV4, *sigV2, error) {
	auth := r.Header.Get("Authorization")
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	presignV4 := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential")
	presignV2 := q.Has("AWSAccessKeyId") && q.Has("Signature")
	if auth != "" && (presignV4 || presignV2) {
		return nil, nil, errInvalidArgument.withMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	}
	switch {
	case strings.HasPrefix(auth, algorithmV4+" "):
		sig, err := parseAuthHeader(auth)
		if err != nil {
			return nil, nil, err
		}
		if sig.amzDate, err = requestDate(r); err != nil {
			return nil, nil, err
		}
		if sig.amzDate[:8] != sig.date {
			return nil, nil, headerAuth.malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
		}
		return sig, nil, nil
	case strings.HasPrefix(auth, algorithmV4A+" "):
		return nil, nil, errNotImplemented.withMessage("AWS Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	case strings.HasPrefix(auth, "AWS "):
		sig2, err := parseSigV2Header(auth)
		return nil, sig2, err
	case auth != "":
		return nil, nil, unsupportedAuth(auth)
	case presignV4:
		sig, err := parsePresign(q)
		return sig, nil, err
	case presignV2:
		sig2, err := parseSigV2Query(q)
		return nil, sig2, err
	}
	return nil, nil, nil
}

// requestDate returns the time of a header-signed SigV4 request in the form
// X-Amz-Date has: its X-Amz-Date, or else its Date. A request with neither,
// or with one that is not a valid date, is refused as S3 refuses it (403,
// not a 400 about the credential's date).
func requestDate(r *http.Request) (string, error) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		if _, err := time.Parse(amzDateFormat, v); err != nil {
			return "", errNoDate
		}
		return v, nil
	}
	d, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return "", errNoDate
	}
	return d.UTC().Format(amzDateFormat), nil
}

// unsupportedAuth is S3's answer to an Authorization header of no scheme it
// knows: without a space between scheme and credentials, or of another
// scheme, which it names.
func unsupportedAuth(auth string) error {
	scheme, _, ok := strings.Cut(auth, " ")
	if !ok {
		return invalidArgument("Authorization header is invalid -- one and only one ' ' (space) required.", "Authorization", auth)
	}
	return invalidArgument("Unsupported Authorization Type", "Authorization", scheme)
}

// authForm is where a SigV4 signature came from: the Authorization header or
// a presigned URL's query. S3 words the errors of each form its own way.
type authForm struct {
	base       *Error // AuthorizationHeaderMalformed or AuthorizationQueryParametersError
	prefix     string // of every message (header) or of credential messages (query)
	credPrefix string
}

var (
	headerAuth = authForm{base: errAuthHeaderMalformed, prefix: "The authorization header is malformed; "}
	queryAuth  = authForm{base: errAuthQueryMalformed, credPrefix: "Error parsing the X-Amz-Credential parameter; "}
)

// malformed is the form's error with S3's message.
func (f authForm) malformed(msg string) *Error { return f.base.withMessage(f.prefix + msg) }

// credential is the form's error about the credential, with S3's message.
func (f authForm) credential(msg string) *Error { return f.malformed(f.credPrefix + msg) }

// parseAuthHeader parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" strictly: three parts, each once, nothing else. S3 counts the
// parts first: two or four is "requires three components", whatever they are.
func parseAuthHeader(v string) (*sigV4, error) {
	rest := strings.TrimPrefix(v, algorithmV4+" ")
	if strings.Count(rest, ",") != 2 {
		return nil, headerAuth.malformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	var cred, signed, signature string
	var seen int
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		name, value, ok := strings.Cut(part, "=")
		bit := 0
		switch name {
		case "Credential":
			cred, bit = value, 1
		case "SignedHeaders":
			signed, bit = value, 2
		case "Signature":
			signature, bit = value, 4
		}
		if !ok || bit == 0 || seen&bit != 0 || strings.Contains(value, "=") {
			return nil, headerAuth.malformed("the authorization component " + strconv.Quote(clip(part)) + " is malformed.")
		}
		seen |= bit
	}
	// Three parts, each a different one of the three: all are there.
	sig := &sigV4{}
	if err := sig.parseCredential(cred, headerAuth); err != nil {
		return nil, err
	}
	if err := sig.parseSignedHeaders(signed, headerAuth); err != nil {
		return nil, err
	}
	if !isHexSHA256(signature) {
		return nil, headerAuth.malformed("the signature is not 64 lowercase hex digits.")
	}
	sig.signature = signature
	return sig, nil
}

// parsePresign parses the X-Amz-* query parameters of a presigned URL.
func parsePresign(q url.Values) (*sigV4, error) {
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[name]) != 1 {
			return nil, queryAuth.malformed("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	switch q.Get("X-Amz-Algorithm") {
	case algorithmV4:
	case algorithmV4A:
		return nil, errNotImplemented.withMessage("AWS Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	default:
		return nil, queryAuth.malformed("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	sig := &sigV4{presigned: true, amzDate: q.Get("X-Amz-Date")}
	if err := sig.parseCredential(q.Get("X-Amz-Credential"), queryAuth); err != nil {
		return nil, err
	}
	if _, err := time.Parse(amzDateFormat, sig.amzDate); err != nil {
		return nil, queryAuth.malformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if sig.amzDate[:8] != sig.date {
		return nil, queryAuth.malformed("Invalid credential date " + strconv.Quote(sig.date) + ". This date is not the same as X-Amz-Date: " + strconv.Quote(sig.amzDate[:8]) + ".")
	}
	exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	switch {
	case err != nil:
		return nil, queryAuth.malformed("X-Amz-Expires should be a number")
	case exp < 0:
		return nil, queryAuth.malformed("X-Amz-Expires must be non-negative")
	case exp > maxPresignSecs:
		return nil, queryAuth.malformed("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	sig.expires = time.Duration(exp) * time.Second
	if err := sig.parseSignedHeaders(q.Get("X-Amz-SignedHeaders"), queryAuth); err != nil {
		return nil, err
	}
	sig.signature = q.Get("X-Amz-Signature")
	if !isHexSHA256(sig.signature) {
		return nil, queryAuth.malformed("X-Amz-Signature is not 64 lowercase hex digits.")
	}
	return sig, nil
}

// parseCredential parses "<key id>/<yyyymmdd>/<region>/s3/aws4_request",
// with S3's messages for what is wrong.
func (s *sigV4) parseCredential(v string, form authForm) error {
	var parts [5]string // split without allocating: four slashes, five parts
	if strings.Count(v, "/") == len(parts)-1 {
		rest := v
		for i := range len(parts) - 1 {
			parts[i], rest, _ = strings.Cut(rest, "/")
		}
		parts[len(parts)-1] = rest
	}
	switch {
	case v == "":
		return form.credential("missing Credential.")
	case parts[0] == "" || parts[2] == "":
		return form.credential("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	case !validScopePart(parts[0], maxAccessKeyID, isKeyIDByte):
		return form.credential("the access key id is not valid.")
	case len(parts[1]) != 8 || !isDate(parts[1]):
		return form.credential("incorrect date format " + strconv.Quote(clip(parts[1])) + ". This date in the credential must be in the format \"yyyyMMdd\".")
	case !validScopePart(parts[2], maxRegion, isRegionByte):
		return form.credential("the region " + strconv.Quote(clip(parts[2])) + " is not valid.")
	case parts[3] != "s3":
		return form.credential("incorrect service " + strconv.Quote(clip(parts[3])) + ". This endpoint belongs to \"s3\".")
	case parts[4] != "aws4_request":
		return form.credential("incorrect terminal " + strconv.Quote(clip(parts[4])) + ". This endpoint uses \"aws4_request\".")
	}
	s.accessKeyID, s.date, s.region, s.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// isDate reports whether s is a valid yyyymmdd date.
func isDate(s string) bool {
	_, err := time.Parse("20060102", s)
	return err == nil
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
func (s *sigV4) parseSignedHeaders(v string, form authForm) error {
	if strings.Count(v, ";") >= maxFields {
		return errHeaderTooLarge.withMessage("The request signs more header names than the proxy accepts.")
	}
	names := strings.Split(v, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") || (i > 0 && names[i-1] >= n) {
			return form.malformed("SignedHeaders must be lowercase header names, sorted, each once.")
		}
	}
	if !slices.Contains(names, "host") {
		return form.malformed("SignedHeaders must include host.")
	}
	s.signedHeaders = names
	return nil
}

// checkSignedHeaders enforces what a request must sign, as S3 does: every
// x-amz-* header present, header-signed or presigned, else 403 AccessDenied
// naming them in HeadersNotSigned; and, header-signed, x-amz-content-sha256.
//
// A presigned request's unsigned x-amz-* header is refused rather than
// dropped: dropped, the client would believe it set the ACL, tags, storage
// class or metadata it sent. S3 refuses even a header whose value the URL
// carries as a signed query parameter (aws-sdk-go-v2 #2387 and aws-sdk-js-v3
// #3906: x-amz-checksum-sha256; aws-sdk #338: x-amz-sdk-checksum-algorithm;
// aws-sdk-rust #1253: x-amz-checksum-mode), so a query parameter does not
// stand for the header. Only x-amz-content-sha256 may go unsigned on a
// presigned request: a presigned payload is UNSIGNED-PAYLOAD unless the URL
// signs the header, so an unsigned one changes nothing (it is neither read nor
// forwarded), and the AWS CRT signer (aws-c-auth #248) sends it with
// presigned requests; MinIO, Ceph RGW and s3s take it too (versitygw refuses
// it).
func checkSignedHeaders(r *http.Request, sig *sigV4) error {
	var unsigned []string
	for name := range r.Header {
		if !strings.HasPrefix(name, "X-Amz-") || hasFold(sig.signedHeaders, name) {
			continue
		}
		if sig.presigned && name == "X-Amz-Content-Sha256" {
			continue
		}
		unsigned = append(unsigned, strings.ToLower(name))
	}
	if unsigned != nil {
		return headersNotSigned(unsigned)
	}
	if !sig.presigned && !slices.Contains(sig.signedHeaders, "x-amz-content-sha256") {
		return accessDenied("x-amz-content-sha256 must be signed.")
	}
	return nil
}

// maxHeadersNotSigned bounds the HeadersNotSigned list of an answer.
const maxHeadersNotSigned = 1 << 10

// headersNotSigned is S3's answer to a request with x-amz-* headers its
// signature does not cover: their lowercase names, sorted, in HeadersNotSigned.
func headersNotSigned(names []string) *Error {
	slices.Sort(names)
	return errHeadersNotSigned.withField("HeadersNotSigned", truncate(strings.Join(names, ", "), maxHeadersNotSigned))
}
