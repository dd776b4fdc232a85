// Package s3err is an error as S3 answers it: an HTTP status, S3's error
// code and message, the extra XML elements some codes carry, and an internal
// cause that is logged but never sent; and the errors the S3 protocol
// packages answer with. It knows nothing of the proxy, which turns these
// into its public proxy.Error where it answers.
package s3err

import (
	"net/http"
	"strconv"
)

// Error is an S3 error. Its methods return changed copies: an Error is never
// modified once made, so package variables can be shared.
type Error struct {
	Status  int    // HTTP status, e.g. 403
	Code    string // S3 error code, e.g. "AccessDenied"
	Message string // what the client is told
	Fields  []Field
	Cause   error // logged, never sent
}

// Field is an extra XML element of an error body, such as ServerTime.
type Field struct{ Name, Value string }

// New returns an S3 error.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same status and code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.Code == e.Code
}

// With returns a copy of e with cause as its internal error.
func (e *Error) With(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// WithMessage returns a copy of e with another message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// WithField returns a copy of e with one more XML element.
func (e *Error) WithField(name, value string) *Error {
	c := *e
	c.Fields = append(append([]Field(nil), e.Fields...), Field{name, value})
	return &c
}

// Field returns the value of e's XML element name.
func (e *Error) Field(name string) (string, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// The errors of the S3 protocol, with S3's codes and messages.
var (
	AccessDenied                 = New(http.StatusForbidden, "AccessDenied", "Access Denied.")
	InvalidArgument              = New(http.StatusBadRequest, "InvalidArgument", "Invalid Argument.")
	InvalidRequest               = New(http.StatusBadRequest, "InvalidRequest", "Invalid Request.")
	NotImplemented               = New(http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented.")
	InternalError                = New(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	ServiceUnavailable           = New(http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable. Please retry.")
	MissingContentLength         = New(http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
	IncompleteBody               = New(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
	BadDigest                    = New(http.StatusBadRequest, "BadDigest", "The checksum you specified did not match the calculated checksum.")
	XAmzContentSHA256Mismatch    = New(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	SignatureDoesNotMatch        = New(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	AuthorizationHeaderMalformed = New(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
	AuthorizationQueryMalformed  = New(http.StatusBadRequest, "AuthorizationQueryParametersError", "The authorization query parameters are malformed.")
	RequestTimeTooSkewed         = New(http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
	RequestHeaderTooLarge        = New(http.StatusBadRequest, "RequestHeaderSectionTooLarge", "Your request header section exceeds the maximum allowed size.")
	MalformedTrailer             = New(http.StatusBadRequest, "MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.")
	MalformedXML                 = New(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
	MalformedPOST                = New(http.StatusBadRequest, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")
	PostPreDataTooLarge          = New(http.StatusBadRequest, "MaxPostPreDataLengthExceeded", "Your POST request fields preceding the upload file were too large.")
	PostFileCount                = New(http.StatusBadRequest, "IncorrectNumberOfFilesInPostRequest", "POST requires exactly one file upload per request.")
	InvalidPolicyDocument        = New(http.StatusBadRequest, "InvalidPolicyDocument", "The content of the form does not meet the conditions specified in the policy document.")
	EntityTooLarge               = New(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	EntityTooSmall               = New(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
)

// InvalidArgumentOf is S3's InvalidArgument with msg, naming the argument and
// its value (clipped).
func InvalidArgumentOf(msg, name, value string) *Error {
	return InvalidArgument.WithMessage(msg).WithField("ArgumentName", name).WithField("ArgumentValue", Clip(value))
}

// ContentSHA256Mismatch is S3's answer to a body whose SHA-256 (computed, in
// hex) is not the one the client signed, with both, as S3 names them.
func ContentSHA256Mismatch(client, computed string) *Error {
	return XAmzContentSHA256Mismatch.
		WithField("ClientComputedContentSHA256", client).
		WithField("S3ComputedContentSHA256", computed)
}

// Clip shortens client-supplied text quoted in messages.
func Clip(s string) string { return Truncate(s, 64) }

// Truncate cuts s to its first n bytes and says so.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...[" + strconv.Itoa(len(s)) + " bytes]"
}
