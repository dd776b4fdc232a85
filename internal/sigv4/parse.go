package sigv4

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
)

// Payload hash values of x-amz-content-sha256 besides a hex SHA-256.
const (
	UnsignedPayload        = "UNSIGNED-PAYLOAD"
	StreamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsigned      = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	EmptySHA256            = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	AlgorithmV4    = "AWS4-HMAC-SHA256"
	AlgorithmV4A   = "AWS4-ECDSA-P256-SHA256"
	AmzDateFormat  = "20060102T150405Z"
	MaxPresignSecs = 7 * 24 * 3600
)

// PayloadHash returns the payload hash the client signed: its
// x-amz-content-sha256, which a header-signed request must send, and which a
// presigned one covers only when it signs the header (UNSIGNED-PAYLOAD
// otherwise).
func PayloadHash(r *http.Request, sig *Signature) (string, error) {
	v := r.Header.Get("X-Amz-Content-Sha256")
	if sig.Presigned {
		if v == "" || !slices.Contains(sig.SignedHeaders, "x-amz-content-sha256") {
			return UnsignedPayload, nil
		}
		return v, nil
	}
	if v == "" {
		return "", s3err.InvalidRequest.WithMessage("Missing required header for this request: x-amz-content-sha256.")
	}
	return v, nil
}

// CheckTime applies S3's clock rules at now: a header-signed request must be
// within maxSkew of it; a presigned URL must not have expired and must not be
// dated in the future beyond maxSkew.
func CheckTime(sig *Signature, now time.Time, maxSkew time.Duration) error {
	t, err := ParseAmzDate(sig.AmzDate)
	if err != nil {
		return ErrNoDate
	}
	if sig.Presigned {
		if t.Sub(now) > maxSkew {
			return s3err.AccessDenied.WithMessage("Request is not valid yet")
		}
		if expires := t.Add(sig.Expires); now.After(expires) {
			return Expired(strconv.Itoa(int(sig.Expires/time.Second)), expires, now)
		}
		return nil
	}
	return CheckSkew(t, sig.AmzDate, now, maxSkew)
}

// CheckSkew refuses a header-signed request whose time t (as the client wrote
// it: sent) is further from now than maxSkew, with the fields SDKs use to
// correct their clocks.
func CheckSkew(t time.Time, sent string, now time.Time, maxSkew time.Duration) error {
	if d := now.Sub(t); d > maxSkew || -d > maxSkew {
		return s3err.RequestTimeTooSkewed.
			WithField("RequestTime", sent).
			WithField("ServerTime", now.Format(ISO8601)).
			WithField("MaxAllowedSkewMilliseconds", strconv.FormatInt(maxSkew.Milliseconds(), 10))
	}
	return nil
}

// Expired is S3's answer to a presigned URL used after expires; a SigV4 URL
// names its X-Amz-Expires too (xAmzExpires; "" for SigV2).
func Expired(xAmzExpires string, expires, now time.Time) *s3err.Error {
	e := s3err.AccessDenied.WithMessage("Request has expired")
	if xAmzExpires != "" {
		e = e.WithField("X-Amz-Expires", xAmzExpires)
	}
	return e.WithField("Expires", expires.UTC().Format(ISO8601)).WithField("ServerTime", now.Format(ISO8601))
}

// ISO8601 is how S3 writes times in error bodies.
const ISO8601 = "2006-01-02T15:04:05Z"

// ParseAmzDate parses an x-amz-date, yyyyMMdd'T'HHmmss'Z' (AmzDateFormat), as
// time.Parse(AmzDateFormat, v) does. The form every client sends, 16 digits
// and letters in place, is read directly: time.Parse interprets its layout
// first, which costs as much as the rest of a signature's parsing. Anything
// else, valid or not, goes to time.Parse, so the answers are the same.
func ParseAmzDate(v string) (time.Time, error) {
	if len(v) == len(AmzDateFormat) && v[8] == 'T' && v[15] == 'Z' {
		num := func(s string) int {
			n := 0
			for i := 0; i < len(s); i++ {
				if s[i] < '0' || s[i] > '9' {
					return -1
				}
				n = n*10 + int(s[i]-'0')
			}
			return n
		}
		year, month, day := num(v[0:4]), num(v[4:6]), num(v[6:8])
		hour, minute, sec := num(v[9:11]), num(v[11:13]), num(v[13:15])
		if year >= 0 && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, year) &&
			hour >= 0 && hour < 24 && minute >= 0 && minute < 60 && sec >= 0 && sec < 60 {
			return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), nil
		}
	}
	return time.Parse(AmzDateFormat, v)
}

// daysIn is the number of days of a month (1 to 12) of a year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// RequestDate returns the time of a header-signed SigV4 request in the form
// X-Amz-Date has: its X-Amz-Date, or else its Date. A request with neither,
// or with one that is not a valid date, is refused as S3 refuses it (403,
// not a 400 about the credential's date).
func RequestDate(r *http.Request) (string, error) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		if _, err := ParseAmzDate(v); err != nil {
			return "", ErrNoDate
		}
		return v, nil
	}
	d, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return "", ErrNoDate
	}
	return d.UTC().Format(AmzDateFormat), nil
}

// UnsupportedAuth is S3's answer to an Authorization header of no scheme it
// knows: without a space between scheme and credentials, or of another
// scheme, which it names.
func UnsupportedAuth(auth string) error {
	scheme, _, ok := strings.Cut(auth, " ")
	if !ok {
		return s3err.InvalidArgumentOf("Authorization header is invalid -- one and only one ' ' (space) required.", "Authorization", auth)
	}
	return s3err.InvalidArgumentOf("Unsupported Authorization Type", "Authorization", scheme)
}

// Form is where a SigV4 signature came from: the Authorization header or
// a presigned URL's query. S3 words the errors of each form its own way.
type Form struct {
	base       *s3err.Error // AuthorizationHeaderMalformed or AuthorizationQueryParametersError
	prefix     string       // of every message (header) or of credential messages (query)
	credPrefix string
}

var (
	HeaderForm = Form{base: s3err.AuthorizationHeaderMalformed, prefix: "The authorization header is malformed; "}
	QueryForm  = Form{base: s3err.AuthorizationQueryMalformed, credPrefix: "Error parsing the X-Amz-Credential parameter; "}
	// PostForm is a browser form's x-amz-credential: S3 answers its
	// faults with a plain InvalidArgument.
	PostForm = Form{base: s3err.InvalidArgument}
)

// Malformed is the form's error with S3's message.
func (f Form) Malformed(msg string) *s3err.Error { return f.base.WithMessage(f.prefix + msg) }

// Credential is the form's error about the credential, with S3's message.
func (f Form) Credential(msg string) *s3err.Error { return f.Malformed(f.credPrefix + msg) }

// ParseHeader parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" strictly: three parts, each once, nothing else. S3 counts the
// parts first: two or four is "requires three components", whatever they are.
func ParseHeader(v string) (*Signature, error) {
	rest := strings.TrimPrefix(v, AlgorithmV4+" ")
	if strings.Count(rest, ",") != 2 {
		return nil, HeaderForm.Malformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
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
			return nil, HeaderForm.Malformed("the authorization component " + strconv.Quote(s3err.Clip(part)) + " is malformed.")
		}
		seen |= bit
	}
	// Three parts, each a different one of the three: all are there.
	sig := &Signature{}
	if err := sig.ParseCredential(cred, HeaderForm); err != nil {
		return nil, err
	}
	if err := sig.parseSignedHeaders(signed, HeaderForm); err != nil {
		return nil, err
	}
	if !IsHexSHA256(signature) {
		return nil, HeaderForm.Malformed("the signature is not 64 lowercase hex digits.")
	}
	sig.Signature = signature
	return sig, nil
}

// ParsePresign parses the X-Amz-* query parameters of a presigned URL.
func ParsePresign(q url.Values) (*Signature, error) {
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[name]) != 1 {
			return nil, QueryForm.Malformed("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	switch q.Get("X-Amz-Algorithm") {
	case AlgorithmV4:
	case AlgorithmV4A:
		return nil, s3err.NotImplemented.WithMessage("AWS Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	default:
		return nil, QueryForm.Malformed("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
	}
	sig := &Signature{Presigned: true, AmzDate: q.Get("X-Amz-Date")}
	if err := sig.ParseCredential(q.Get("X-Amz-Credential"), QueryForm); err != nil {
		return nil, err
	}
	if _, err := ParseAmzDate(sig.AmzDate); err != nil {
		return nil, QueryForm.Malformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if sig.AmzDate[:8] != sig.Date {
		return nil, QueryForm.Malformed("Invalid credential date " + strconv.Quote(sig.Date) + ". This date is not the same as X-Amz-Date: " + strconv.Quote(sig.AmzDate[:8]) + ".")
	}
	exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	switch {
	case err != nil:
		return nil, QueryForm.Malformed("X-Amz-Expires should be a number")
	case exp < 0:
		return nil, QueryForm.Malformed("X-Amz-Expires must be non-negative")
	case exp > MaxPresignSecs:
		return nil, QueryForm.Malformed("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	sig.Expires = time.Duration(exp) * time.Second
	if err := sig.parseSignedHeaders(q.Get("X-Amz-SignedHeaders"), QueryForm); err != nil {
		return nil, err
	}
	sig.Signature = q.Get("X-Amz-Signature")
	if !IsHexSHA256(sig.Signature) {
		return nil, QueryForm.Malformed("X-Amz-Signature is not 64 lowercase hex digits.")
	}
	return sig, nil
}

// ParseCredential parses "<key id>/<yyyymmdd>/<region>/s3/aws4_request",
// with S3's messages for what is wrong.
func (s *Signature) ParseCredential(v string, form Form) error {
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
		return form.Credential("missing Credential.")
	case parts[0] == "" || parts[2] == "":
		return form.Credential("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	case !ValidScopePart(parts[0], MaxAccessKeyID, IsKeyIDByte):
		return form.Credential("the access key id is not valid.")
	case len(parts[1]) != 8 || !isDate(parts[1]):
		return form.Credential("incorrect date format " + strconv.Quote(s3err.Clip(parts[1])) + ". This date in the credential must be in the format \"yyyyMMdd\".")
	case !ValidScopePart(parts[2], MaxRegion, IsRegionByte):
		return form.Credential("the region " + strconv.Quote(s3err.Clip(parts[2])) + " is not valid.")
	case parts[3] != "s3":
		return form.Credential("incorrect service " + strconv.Quote(s3err.Clip(parts[3])) + ". This endpoint belongs to \"s3\".")
	case parts[4] != "aws4_request":
		return form.Credential("incorrect terminal " + strconv.Quote(s3err.Clip(parts[4])) + ". This endpoint uses \"aws4_request\".")
	}
	s.AccessKeyID, s.Date, s.Region, s.Service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// isDate reports whether s is a valid yyyymmdd date.
func isDate(s string) bool {
	_, err := time.Parse("20060102", s)
	return err == nil
}

// ValidScopePart reports whether s has 1 to max bytes, each one that ok
// accepts.
func ValidScopePart(s string, max int, ok func(byte) bool) bool {
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

// IsKeyIDByte accepts the printable ASCII characters but space.
func IsKeyIDByte(c byte) bool { return '!' <= c && c <= '~' }

// IsRegionByte accepts letters, digits, '-', '_' and '.'.
func IsRegionByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// parseSignedHeaders parses "host;x-amz-date;…": lowercase, sorted, unique,
// host included.
func (s *Signature) parseSignedHeaders(v string, form Form) error {
	if strings.Count(v, ";") >= MaxSignedHeaders {
		return s3err.RequestHeaderTooLarge.WithMessage("The request signs more header names than the proxy accepts.")
	}
	names := strings.Split(v, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") || (i > 0 && names[i-1] >= n) {
			return form.Malformed("SignedHeaders must be lowercase header names, sorted, each once.")
		}
	}
	if !slices.Contains(names, "host") {
		return form.Malformed("SignedHeaders must include host.")
	}
	s.SignedHeaders = names
	return nil
}

// CheckSignedHeaders enforces what a request must sign, as S3 does: every
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
func CheckSignedHeaders(r *http.Request, sig *Signature) error {
	var unsigned []string
	for name := range r.Header {
		if !strings.HasPrefix(name, "X-Amz-") || HasFold(sig.SignedHeaders, name) {
			continue
		}
		if sig.Presigned && name == "X-Amz-Content-Sha256" {
			continue
		}
		unsigned = append(unsigned, strings.ToLower(name))
	}
	if unsigned != nil {
		return headersNotSigned(unsigned)
	}
	if !sig.Presigned && !slices.Contains(sig.SignedHeaders, "x-amz-content-sha256") {
		return s3err.AccessDenied.WithMessage("x-amz-content-sha256 must be signed.")
	}
	return nil
}

// maxHeadersNotSigned bounds the HeadersNotSigned list of an answer.
const maxHeadersNotSigned = 1 << 10

// headersNotSigned is S3's answer to a request with x-amz-* headers its
// signature does not cover: their lowercase names, sorted, in HeadersNotSigned.
func headersNotSigned(names []string) *s3err.Error {
	slices.Sort(names)
	return errHeadersNotSigned.WithField("HeadersNotSigned", s3err.Truncate(strings.Join(names, ", "), maxHeadersNotSigned))
}

// HasFold reports whether sorted, a sorted list of lowercase header names,
// holds name in any case: a binary search, without allocating.
func HasFold(sorted []string, name string) bool {
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
