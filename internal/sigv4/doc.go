// Package sigv4 reads and checks AWS Signature Version 4 as S3 takes it: the
// Authorization header and presigned URLs parsed strictly (Signature, with
// S3's messages for what is wrong), the clock rules, the headers a request
// must sign, the canonical request rebuilt from exactly what the client sent
// and the signature compared in constant time, signing keys derived from a
// secret. It also holds S3's one encoder of object keys (EncodeKey). It knows
// nothing of proxies: the caller passes the secret or key, the time and the
// allowed skew.
package sigv4

import "github.com/osproxy/proxy/internal/s3err"

// Bounds of what the package reads before a signature is verified.
const (
	MaxSignedHeaders = 500 // signed header names
	MaxAccessKeyID   = 128 // AWS: 16 to 128 characters
	MaxRegion        = 64
)

// Answers to requests without what S3 requires.
var (
	ErrNoDate           = s3err.AccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
	errHeadersNotSigned = s3err.AccessDenied.WithMessage("There were headers present in the request which were not signed")
)
