package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/s3xml"
)

// Error is an S3 error: an HTTP status, an S3 error code and a message, as S3
// itself answers them. Hooks may return an *Error (or wrap one with %w) to
// answer the client with that exact S3 error; Err carries an internal cause that
// is logged but never sent to the client.
type Error struct {
	StatusCode int    // HTTP status, e.g. 403
	Code       string // S3 error code, e.g. "AccessDenied"
	Message    string // human-readable message sent to the client
	Err        error  // internal cause: logged, never sent

	// extra holds additional XML elements some codes carry, such as ServerTime
	// and MaxAllowedSkewMilliseconds on RequestTimeTooSkewed.
	extra []s3xml.Field
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an S3 error (an *Error or a sentinel such as
// ErrNoSuchBucket) with the same code and status, so that
// errors.Is(err, ErrNoSuchBucket) holds for any NoSuchBucket error.
func (e *Error) Is(target error) bool {
	if pe, ok := target.(*s3err.Error); ok {
		return pe.Code == e.Code && pe.Status == e.StatusCode
	}
	t, ok := target.(coded)
	if !ok {
		return false
	}
	status, code := t.s3Code()
	return code == e.Code && status == e.StatusCode
}

func (e *Error) s3Code() (int, string) { return e.StatusCode, e.Code }

// coded is an S3 error of either kind: an *Error or a sentinel.
type coded interface{ s3Code() (int, string) }

// hasField reports whether e's body has the XML element name.
func (e *Error) hasField(name string) bool {
	for _, f := range e.extra {
		if f.XMLName.Local == name {
			return true
		}
	}
	return false
}

// with returns a copy of e carrying cause as its internal error.
func (e *Error) with(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// withMessage returns a copy of e with another client-facing message.
func (e *Error) withMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// withField returns a copy of e with one more XML element in its body.
func (e *Error) withField(name, value string) *Error {
	c := *e
	c.extra = append(append([]s3xml.Field(nil), e.extra...), s3xml.NewField(name, value))
	return &c
}

func s3Error(status int, code, msg string) *Error {
	return &Error{StatusCode: status, Code: code, Message: msg}
}

// sentinel is the type of the exported sentinel errors: a comparable value
// that nobody outside the package can change. errors.As turns it into a fresh
// *Error, and an *Error with its code and status is errors.Is it.
type sentinel struct {
	status        int
	code, message string
}

func (s sentinel) Error() string { return s.code + ": " + s.message }

func (s sentinel) s3Code() (int, string) { return s.status, s.code }

// Is reports whether target is an S3 error with the same code and status.
func (s sentinel) Is(target error) bool {
	t, ok := target.(coded)
	if !ok {
		return false
	}
	status, code := t.s3Code()
	return status == s.status && code == s.code
}

// As sets an **Error target to a new *Error of the sentinel.
func (s sentinel) As(target any) bool {
	t, ok := target.(**Error)
	if ok {
		*t = s.err()
	}
	return ok
}

// err returns a new *Error of the sentinel, for the package to answer with.
func (s sentinel) err() *Error { return s3Error(s.status, s.code, s.message) }

// Sentinel errors. Hooks return (or wrap) these to give the client the matching
// S3 answer; any other hook error is answered with 503 ServiceUnavailable.
// They are values that cannot be modified; errors.As gives a new *Error.
var (
	// ErrNoSuchBucket answers 404 NoSuchBucket: the bucket is unknown.
	ErrNoSuchBucket error = sentinel{http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist."}
	// ErrAccessDenied answers 403 AccessDenied.
	ErrAccessDenied error = sentinel{http.StatusForbidden, "AccessDenied", "Access Denied."}
	// ErrInvalidAccessKeyID answers 403 InvalidAccessKeyId: the client's access
	// key id is not known.
	ErrInvalidAccessKeyID error = sentinel{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
)

// The errors the proxy itself answers with.
var (
	errInvalidBucketName     = s3Error(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
	errInvalidURI            = s3Error(http.StatusBadRequest, "InvalidURI", "Couldn't parse the specified URI.")
	errInvalidRequest        = fromProtocol(s3err.InvalidRequest)
	errInvalidArgument       = fromProtocol(s3err.InvalidArgument)
	errMethodNotAllowed      = s3Error(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	errMissingContentLength  = fromProtocol(s3err.MissingContentLength)
	errIncompleteBody        = fromProtocol(s3err.IncompleteBody)
	errContentSHA256Mismatch = fromProtocol(s3err.XAmzContentSHA256Mismatch)
	errSignatureMismatch     = fromProtocol(s3err.SignatureDoesNotMatch)
	errInternal              = fromProtocol(s3err.InternalError)
	errServiceUnavailable    = fromProtocol(s3err.ServiceUnavailable)
	errBadGateway            = s3Error(http.StatusBadGateway, "BadGateway", "The upstream object store could not be reached.")
	errGatewayTimeout        = s3Error(http.StatusGatewayTimeout, "GatewayTimeout", "The upstream object store did not answer in time.")
	errNotImplemented        = fromProtocol(s3err.NotImplemented)
	errHeaderTooLarge        = fromProtocol(s3err.RequestHeaderTooLarge)
	errKeyTooLong            = s3Error(http.StatusBadRequest, "KeyTooLongError", "Your key is too long.")
	errSlowDown              = s3Error(http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	errAccessDenied          = ErrAccessDenied.(sentinel).err()
	errAnonymous             = errAccessDenied.withMessage("Anonymous users cannot invoke this API. Please authenticate.")
	errAnonymousCopy         = errAccessDenied.withMessage("Anonymous users cannot copy objects. Please authenticate.")
	errNoSuchBucket          = ErrNoSuchBucket.(sentinel).err()
)

// contentSHA256Mismatch is S3's answer to a body whose SHA-256 (computed, in
// hex) is not the one the client signed (client), with both, as S3 names them.
func contentSHA256Mismatch(client, computed string) *Error {
	return errContentSHA256Mismatch.
		withField("ClientComputedContentSHA256", client).
		withField("S3ComputedContentSHA256", computed)
}

// asS3Error turns any error into the *Error the client should see: the first
// S3 error in err's chain (the proxy's, or a protocol package's), or 500
// InternalError.
func asS3Error(err error) *Error {
	if e, ok := s3ErrorOf(err); ok {
		return e
	}
	return errInternal.with(err)
}

// s3ErrorOf returns the first S3 error in err's chain, an *Error or an
// *s3err.Error of the protocol packages made one.
func s3ErrorOf(err error) (*Error, bool) {
	var e *Error
	var pe *s3err.Error
	switch {
	case errors.As(err, &e):
		return e, true
	case errors.As(err, &pe):
		return fromProtocol(pe), true
	}
	return nil, false
}

// fromProtocol is the *Error of a protocol package's S3 error.
func fromProtocol(pe *s3err.Error) *Error {
	e := &Error{StatusCode: pe.Status, Code: pe.Code, Message: pe.Message, Err: pe.Cause}
	for _, f := range pe.Fields {
		e.extra = append(e.extra, s3xml.NewField(f.Name, f.Value))
	}
	return e
}

// fail answers err as an S3 error and logs it; server-side failures at Warn,
// client errors at Debug.
func (x *exchange) fail(err error) {
	e := asS3Error(err)
	x.code = e.Code
	level := slog.LevelDebug
	if e.StatusCode >= 500 {
		level = slog.LevelWarn
	}
	r := x.in
	if x.parsed && x.req.bucket != "" && (e.Code == "NoSuchBucket" || e.Code == "InvalidBucketName") && !e.hasField("BucketName") {
		e = e.withField("BucketName", truncate(x.req.bucket, maxResource)) // as S3 names it
	}
	x.p.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("request_id", x.id), slog.String("method", logText(r.Method)),
		slog.String("path", logText(r.URL.Path)), slog.Int("status", e.StatusCode),
		slog.String("code", e.Code), slog.Any("error", err))
	writeError(x.w, r, e, x.id)
}

// maxResource bounds the resource an error body names: the request's path,
// whose key S3 bounds at 1,024 bytes, so that a hostile path is not echoed whole.
const maxResource = 4 << 10

// writeError is the single place where errors reach the wire: an S3 XML body
// with the error's status, the request id and the resource. HEAD answers carry
// no body, and the Content-Length of the body a GET would have had, as S3's.
func writeError(w http.ResponseWriter, r *http.Request, e *Error, requestID string) {
	payload := (&s3xml.ErrorBody{
		Code:      e.Code,
		Message:   e.Message,
		Resource:  truncate(r.URL.Path, maxResource),
		RequestID: requestID,
		Fields:    e.extra,
	}).Marshal()
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("X-Amz-Request-Id", requestID)
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	w.WriteHeader(e.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = w.Write(payload)
	}
}

// clip shortens client-supplied text quoted in messages.
func clip(s string) string { return s3err.Clip(s) }

// logText shortens client-supplied text written to the logs.
func logText(s string) string { return truncate(s, 256) }

// truncate cuts s to its first n bytes and says so.
func truncate(s string, n int) string { return s3err.Truncate(s, n) }
