// Package postform reads POST Object forms as S3 takes them: a browser's
// upload, an HTML form (multipart/form-data) whose fields carry the key, the
// object's headers and a policy signed with the client's key, the file last.
//
// Read reads a form's fields, at most MaxPreData bytes of them, up to its
// file, and works out the file's length from the request's Content-Length
// (the form ends as browsers, Go, Python and Node.js end it: a CRLF after the
// closing delimiter). A Form says how it is signed (SigV4, SigV2 or not at
// all) and signs a policy; ParsePolicy parses the policy document and checks
// a form against it with S3's messages, and issues the policy again with
// other credentials. Reframe posts the form on: a form of the caller's with
// the client's fields, and the file streamed to its closing delimiter, which
// must end the form (a field after the file, or no closing delimiter, is
// refused before the last byte goes). Errors are *s3err.Error with S3's
// codes. The package knows nothing of proxies: the caller passes secrets,
// keys, time and the credentials of the form it posts on.
package postform

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/sigv4"
)

// MaxPreData bounds the form before the file, as S3 does (20 KB):
// MaxPostPreDataLengthExceeded past it.
const MaxPreData = 20 << 10

// maxBoundary is the longest multipart boundary (RFC 2046).
const maxBoundary = 70

// parseStep is how much more of a form's head is read before it is parsed
// again.
const parseStep = 1 << 10

// Field is a field of a form: its name as sent and lower case, its value.
type Field struct{ Name, Lower, Value string }

// Form is a POST Object form read up to its file.
type Form struct {
	Boundary string
	Fields   []Field // in the order sent, before the file
	FileName string  // the file part's filename parameter
	FileType string  // the file part's Content-Type
	Raw      []byte  // the body read: the fields, the file's header and maybe its first bytes
	FileAt   int     // where the file starts in Raw
	FileLen  int64   // the file's length when the form ends as browsers end it
}

// Value returns the value of a field, by its lower-case name.
func (f *Form) Value(lower string) (string, bool) {
	for _, fd := range f.Fields {
		if fd.Lower == lower {
			return fd.Value, true
		}
	}
	return "", false
}

// KnownLength is the file's length to check a policy with before the file
// streams: exact when the closing delimiter is among the bytes read (a small
// form), else FileLen.
func (f *Form) KnownLength() int64 {
	rest, delim := f.Raw[f.FileAt:], "\r\n--"+f.Boundary
	if i := bytes.Index(rest, []byte(delim)); i >= 0 && bytes.HasPrefix(rest[i+len(delim):], []byte("--")) {
		return int64(i)
	}
	return f.FileLen
}

// MissingField is S3's answer to a form without a field it needs.
func MissingField(name string) *s3err.Error {
	return s3err.InvalidArgument.WithMessage("Bucket POST must contain a field named '"+name+"'.  If it is specified, please check the order of the fields.").
		WithField("ArgumentName", name).WithField("ArgumentValue", "")
}

// errNeedMore says the form's fields go on past what was read.
var errNeedMore = errors.New("form goes on")

// ErrFileNotLast refuses a form whose file is not followed by the closing
// delimiter.
var ErrFileNotLast = s3err.MalformedPOST.WithMessage("The body of your POST request is not well-formed multipart/form-data: the file must be the last field, followed by the closing delimiter.")

// Read reads a form's fields from body, up to its file, and works out the
// file's length from the request's Content-Length.
func Read(body io.Reader, contentType string, length int64) (*Form, error) {
	_, params, err := mime.ParseMediaType(contentType)
	boundary := params["boundary"]
	if err != nil || boundary == "" || len(boundary) > maxBoundary {
		return nil, s3err.MalformedPOST
	}
	buf := make([]byte, 0, 4<<10)
	parsed := 0 // len(buf) when it was last parsed
	for {
		if len(buf) == cap(buf) && len(buf) <= MaxPreData {
			buf = append(make([]byte, 0, min(2*cap(buf), MaxPreData+1)), buf...)
		}
		n, rerr := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		// Each parse starts over: parse again once a KiB more came (or the
		// body or buf ended), so that a client sending a byte at a time
		// costs at most a score of parses.
		if len(buf)-parsed < parseStep && rerr == nil && len(buf) < cap(buf) {
			continue
		}
		parsed = len(buf)
		f, err := parseHead(buf, boundary)
		// A header cut short by the end of buf reads as malformed: that is
		// only the answer once the body or the bound ends.
		var e *s3err.Error
		malformed := errors.As(err, &e) && e.Code == s3err.MalformedPOST.Code
		switch {
		case err == nil && f.FileAt > MaxPreData:
			return nil, s3err.PostPreDataTooLarge
		case err == nil:
			f.Raw = buf
			if f.FileLen = length - int64(f.FileAt) - int64(len("\r\n--"+boundary+"--\r\n")); f.FileLen < 0 {
				return nil, ErrFileNotLast
			}
			return f, nil
		case !errors.Is(err, errNeedMore) && !malformed:
			return nil, err
		case malformed && (rerr != nil || len(buf) > MaxPreData):
			return nil, err
		case len(buf) > MaxPreData:
			return nil, s3err.PostPreDataTooLarge
		case rerr == io.EOF:
			return nil, s3err.MalformedPOST
		case rerr != nil:
			return nil, s3err.IncompleteBody.With(rerr)
		}
	}
}

// parseHead parses the fields of a form up to and including its file's
// header, from the start of the body in buf; errNeedMore when buf ends first.
func parseHead(buf []byte, boundary string) (*Form, error) {
	mr := multipart.NewReader(bytes.NewReader(buf), boundary)
	f := &Form{Boundary: boundary}
	for i := 0; ; i++ {
		part, err := mr.NextRawPart()
		switch {
		case err == io.EOF && bytes.Contains(buf, []byte("--"+boundary+"--")):
			return nil, s3err.PostFileCount // the form ended without a file
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errNeedMore
		case err != nil:
			return nil, s3err.MalformedPOST.With(err)
		}
		name := part.FormName()
		if name == "" {
			return nil, s3err.MalformedPOST
		}
		lower := strings.ToLower(name)
		if lower == "file" {
			switch f.FileAt = partContent(buf, boundary, i); {
			case f.FileAt == -2:
				return nil, s3err.MalformedPOST.WithMessage("The body of your POST request is not well-formed multipart/form-data: its lines must end in CRLF.")
			case f.FileAt < 0:
				return nil, errNeedMore // a header cut short parses: its end is not in buf yet
			}
			if _, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition")); err == nil {
				f.FileName = params["filename"]
			}
			f.FileType = part.Header.Get("Content-Type")
			return f, nil
		}
		v, err := io.ReadAll(part)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errNeedMore
			}
			return nil, s3err.MalformedPOST.With(err)
		}
		if _, dup := f.Value(lower); dup {
			return nil, s3err.InvalidArgument.WithMessage("Bucket POST must contain each field once; '"+s3err.Clip(name)+"' is there twice.").
				WithField("ArgumentName", s3err.Clip(name))
		}
		f.Fields = append(f.Fields, Field{Name: name, Lower: lower, Value: string(v)})
	}
}

// partContent returns where the content of part n (from 0) of a multipart
// body starts in buf, found as mime/multipart finds it: the first delimiter
// is the first line that is one, the next ones are "\r\n--boundary" followed
// by what may follow a delimiter, and a part's header ends at its first empty
// line. It returns -1 when buf does not hold it yet, -2 when a line on the way
// ends in LF alone (mime/multipart takes those too; the file's end would then
// be elsewhere than where File looks for it).
func partContent(buf []byte, boundary string, n int) int {
	dash := []byte("--" + boundary)
	pos := -1 // just after the delimiter of the part
	for start := 0; pos < 0; {
		end := bytes.IndexByte(buf[start:], '\n')
		if end < 0 {
			return -1
		}
		line := buf[start : start+end+1]
		if rest, ok := bytes.CutPrefix(line, dash); ok {
			switch string(bytes.TrimLeft(rest, " \t")) {
			case "\r\n":
				pos = start + len(dash)
			case "\n":
				return -2
			}
		}
		start += end + 1
	}
	delim := append([]byte("\r\n"), dash...)
	for range n {
		for {
			i := bytes.Index(buf[pos:], delim)
			if i < 0 || pos+i+len(delim) == len(buf) {
				return -1
			}
			pos += i + len(delim)
			if c := buf[pos]; c == '-' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				break
			}
		}
	}
	// The rest of the delimiter line, then the header's lines up to an empty one.
	for first := true; ; first = false {
		end := bytes.IndexByte(buf[pos:], '\n')
		if end < 0 {
			return -1
		}
		if end == 0 || buf[pos+end-1] != '\r' {
			return -2
		}
		line := buf[pos : pos+end+1]
		pos += end + 1
		if !first && len(line) == 2 {
			return pos
		}
	}
}

// Signing is how a form is signed.
type Signing int

const (
	Anonymous Signing = iota // no signature and no policy
	SigV4                    // x-amz-algorithm, x-amz-credential, x-amz-date, policy, x-amz-signature
	SigV2                    // AWSAccessKeyId, policy, signature
)

var (
	v4Fields = []string{"policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"}
	v2Fields = []string{"awsaccesskeyid", "policy", "signature"}
)

// Signing says how the form is signed, as S3 tells: any SigV4 field, or a
// policy without SigV2's fields, makes it SigV4, and then it needs all of
// SigV4's fields; AWSAccessKeyId or signature makes it SigV2, which needs all
// of its own; a form with none of them is anonymous. A field missing is S3's
// InvalidArgument naming it.
func (f *Form) Signing() (Signing, error) {
	has := func(names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { _, ok := f.Value(n); return ok })
	}
	var s Signing
	var need []string
	switch {
	case has("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature") || !has("awsaccesskeyid", "signature") && has("policy"):
		s, need = SigV4, v4Fields
	case has("awsaccesskeyid", "signature"):
		s, need = SigV2, v2Fields
	default:
		return Anonymous, nil
	}
	for _, n := range need {
		if !has(n) {
			return s, MissingField(n)
		}
	}
	return s, nil
}

// Credential reads the SigV4 fields of a form: the algorithm, the credential
// and the date. regions, when not empty, are the regions a credential may
// name: another is S3's InvalidArgument expecting the first.
func (f *Form) Credential(regions []string) (*sigv4.Signature, error) {
	if alg, _ := f.Value("x-amz-algorithm"); alg != sigv4.AlgorithmV4 {
		return nil, s3err.InvalidArgumentOf("Only AWS4-HMAC-SHA256 is supported for the POST form's x-amz-algorithm.", "x-amz-algorithm", alg)
	}
	cred, _ := f.Value("x-amz-credential")
	sig := &sigv4.Signature{}
	if err := sig.ParseCredential(cred, sigv4.PostForm); err != nil {
		msg := err.Error()
		if e := (*s3err.Error)(nil); errors.As(err, &e) {
			msg = e.Message
		}
		return nil, s3err.InvalidArgumentOf(msg, "x-amz-credential", cred)
	}
	if len(regions) > 0 && !slices.Contains(regions, sig.Region) {
		return nil, s3err.InvalidArgumentOf("the region '"+s3err.Clip(sig.Region)+"' is wrong; expecting '"+regions[0]+"'", "x-amz-credential", cred)
	}
	date, _ := f.Value("x-amz-date")
	if _, err := time.Parse(sigv4.AmzDateFormat, date); err != nil || len(date) != len(sigv4.AmzDateFormat) {
		return nil, s3err.InvalidArgumentOf("The x-amz-date field must be in the format yyyyMMdd'T'HHmmss'Z'.", "x-amz-date", date)
	}
	sig.AmzDate = date
	return sig, nil
}

// SignatureV4 is the SigV4 signature of a form's policy: the hex HMAC-SHA256
// of the base64 policy with the signing key.
func SignatureV4(key []byte, policy string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(policy))
	return hex.EncodeToString(m.Sum(nil))
}

// SignatureV2 is the SigV2 signature of a form's policy: the base64
// HMAC-SHA1 of the base64 policy with the secret.
func SignatureV2(secret, policy string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(policy))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
