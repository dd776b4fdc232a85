package proxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/sigv4"
)

// POST Object is a browser's upload: an HTML form (multipart/form-data) posted
// to the bucket, whose fields carry the key, the object's headers and a policy
// signed with the client's key; the file comes last.
//
// The proxy reads the fields (at most maxPostPreData bytes of them), verifies
// the policy's signature with the client's secret, checks the policy (its
// expiration, a condition for every field, each condition, the file's length
// against content-length-range), authorizes the upload as a PutObject of the
// key, and posts the upstream a form of its own: the client's fields, a policy
// with the client's conditions signed with the upstream's keys, and the file,
// streamed as it arrives. The upstream checks the conditions again.
//
// Every upstream needs a Content-Length, which the proxy announces before the
// file streams: that of the client's form, less its fields, plus the proxy's
// own. The file ends at the closing delimiter ("\r\n--boundary--"), found as
// it streams; its length is what the request's Content-Length leaves for it
// when the form ends as browsers, Go, Python and Node.js end it (a CRLF after
// the closing delimiter), and the policy's content-length-range is checked
// with that length before anything goes upstream, and again once the file
// ended elsewhere. The bytes after the closing delimiter (the epilogue),
// which S3 ignores, are ignored too: the upstream's form gets as many bytes of
// its own there. A form with a field after the file, or without a closing
// delimiter, is refused as malformed before the last byte goes upstream, so
// the upstream stores nothing.
//
// An upstream with an IAM bearer token cannot take a form (a POST form is
// signed in its policy, not with a token): the proxy answers 501
// NotImplemented for those buckets.

// maxPostPreData bounds the form before the file, as S3 does (20 KB):
// MaxPostPreDataLengthExceeded past it.
const maxPostPreData = 20 << 10

// maxBoundary is the longest multipart boundary (RFC 2046).
const maxBoundary = 70

// parseStep is how much more of a form's head is read before it is parsed
// again.
const parseStep = 1 << 10

// isPostObject reports whether a request is POST Object: a multipart form
// posted to a bucket without a sub-resource (POST /bucket?delete is
// DeleteObjects).
func isPostObject(r *http.Request, req s3Request) bool {
	if r.Method != http.MethodPost || req.bucket == "" || req.key != "" || req.op.SubResource != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// formField is a field of a form: its name as sent and lower case, its value.
type formField struct{ name, lower, value string }

// postForm is a POST Object form read up to its file.
type postForm struct {
	boundary string
	fields   []formField // in the order sent, before the file
	v2       bool        // signed with SigV2 (AWSAccessKeyId, signature)
	fileName string      // the file part's filename parameter
	fileType string      // the file part's Content-Type
	raw      []byte      // the body read: the fields, the file's header and maybe its first bytes
	fileAt   int         // where the file starts in raw
	fileLen  int64       // the file's length when the form ends as browsers end it
	checked  int64       // the file's length the policy was checked with (checkedLength)
}

// checkedLength is the file's length to check the policy with before the
// file streams: exact when the closing delimiter is among the bytes read
// (a small form), else fileLen.
func (f *postForm) checkedLength() int64 {
	rest, delim := f.raw[f.fileAt:], "\r\n--"+f.boundary
	if i := bytes.Index(rest, []byte(delim)); i >= 0 && bytes.HasPrefix(rest[i+len(delim):], []byte("--")) {
		return int64(i)
	}
	return f.fileLen
}

// value returns the value of a field, by its lower-case name.
func (f *postForm) value(lower string) (string, bool) {
	for _, fd := range f.fields {
		if fd.lower == lower {
			return fd.value, true
		}
	}
	return "", false
}

// missingField is S3's answer to a form without a field it needs.
func missingField(name string) error {
	return errInvalidArgument.withMessage("Bucket POST must contain a field named '"+name+"'.  If it is specified, please check the order of the fields.").
		withField("ArgumentName", name).withField("ArgumentValue", "")
}

// errNeedMore says the form's fields go on past what was read.
var errNeedMore = errors.New("form goes on")

// readPostForm reads a form's fields from body, up to its file, and works out
// the file's length from the request's Content-Length.
func readPostForm(body io.Reader, contentType string, length int64) (*postForm, error) {
	_, params, err := mime.ParseMediaType(contentType)
	boundary := params["boundary"]
	if err != nil || boundary == "" || len(boundary) > maxBoundary {
		return nil, errMalformedPOST
	}
	buf := make([]byte, 0, 4<<10)
	parsed := 0 // len(buf) when it was last parsed
	for {
		if len(buf) == cap(buf) && len(buf) <= maxPostPreData {
			buf = append(make([]byte, 0, min(2*cap(buf), maxPostPreData+1)), buf...)
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
		f, err := parseFormHead(buf, boundary)
		// A header cut short by the end of buf reads as malformed: that is
		// only the answer once the body or the bound ends.
		var e *Error
		malformed := errors.As(err, &e) && e.Code == errMalformedPOST.Code
		switch {
		case err == nil && f.fileAt > maxPostPreData:
			return nil, errPostPreDataTooLarge
		case err == nil:
			f.raw = buf
			if f.fileLen = length - int64(f.fileAt) - int64(len("\r\n--"+boundary+"--\r\n")); f.fileLen < 0 {
				return nil, errFileNotLast
			}
			return f, nil
		case !errors.Is(err, errNeedMore) && !malformed:
			return nil, err
		case malformed && (rerr != nil || len(buf) > maxPostPreData):
			return nil, err
		case len(buf) > maxPostPreData:
			return nil, errPostPreDataTooLarge
		case rerr == io.EOF:
			return nil, errMalformedPOST
		case rerr != nil:
			return nil, errIncompleteBody.with(rerr)
		}
	}
}

// parseFormHead parses the fields of a form up to and including its file's
// header, from the start of the body in buf; errNeedMore when buf ends first.
func parseFormHead(buf []byte, boundary string) (*postForm, error) {
	mr := multipart.NewReader(bytes.NewReader(buf), boundary)
	f := &postForm{boundary: boundary}
	for i := 0; ; i++ {
		part, err := mr.NextRawPart()
		switch {
		case err == io.EOF && bytes.Contains(buf, []byte("--"+boundary+"--")):
			return nil, errPostFileCount // the form ended without a file
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errNeedMore
		case err != nil:
			return nil, errMalformedPOST.with(err)
		}
		name := part.FormName()
		if name == "" {
			return nil, errMalformedPOST
		}
		lower := strings.ToLower(name)
		if lower == "file" {
			switch f.fileAt = partContent(buf, boundary, i); {
			case f.fileAt == -2:
				return nil, errMalformedPOST.withMessage("The body of your POST request is not well-formed multipart/form-data: its lines must end in CRLF.")
			case f.fileAt < 0:
				return nil, errNeedMore // a header cut short parses: its end is not in buf yet
			}
			if _, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition")); err == nil {
				f.fileName = params["filename"]
			}
			f.fileType = part.Header.Get("Content-Type")
			return f, nil
		}
		v, err := io.ReadAll(part)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errNeedMore
			}
			return nil, errMalformedPOST.with(err)
		}
		if _, dup := f.value(lower); dup {
			return nil, errInvalidArgument.withMessage("Bucket POST must contain each field once; '"+clip(name)+"' is there twice.").
				withField("ArgumentName", clip(name))
		}
		f.fields = append(f.fields, formField{name: name, lower: lower, value: string(v)})
	}
}

// partContent returns where the content of part n (from 0) of a multipart
// body starts in buf, found as mime/multipart finds it: the first delimiter
// is the first line that is one, the next ones are "\r\n--boundary" followed
// by what may follow a delimiter, and a part's header ends at its first empty
// line. It returns -1 when buf does not hold it yet, -2 when a line on the way
// ends in LF alone (mime/multipart takes those too; the file's end would then
// be elsewhere than where the proxy looks for it).
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

// postFile streams the file of a form from the client. The file ends at its
// first delimiter ("\r\n--boundary"), which must be the closing one ("--"
// follows): a form with a field after the file, or without a closing
// delimiter, is refused before the upstream has the bytes it expects. What
// follows the closing delimiter, the form's epilogue, is not the file's and S3
// ignores it; postEpilogue stands in for it upstream. The bytes that may
// start a delimiter are held back until what follows them is read.
type postFile struct {
	src   io.Reader
	left  int64  // bytes of src not read yet
	delim []byte // "\r\n--boundary"
	buf   []byte
	pend  []byte // of buf: read from src, not given yet
	n     int64  // file bytes given
	// check checks the file's length, once known, against the policy;
	// nil for none.
	check func(n int64) error
	ended bool // the closing delimiter was read
	err   error
}

// postFileBuf is the size of a postFile's buffer.
const postFileBuf = 32 << 10

// newPostFile returns the reader of a form's file in src, which holds the
// file and the rest of the form: n + len("\r\n--boundary--\r\n") bytes in
// all, n being the file's length when the form ends as browsers end it.
func newPostFile(src io.Reader, n int64, boundary string) *postFile {
	d := []byte("\r\n--" + boundary)
	return &postFile{src: src, left: n + int64(len(d)+len("--\r\n")), delim: d, buf: make([]byte, 0, postFileBuf)}
}

var errFileNotLast = errMalformedPOST.withMessage("The body of your POST request is not well-formed multipart/form-data: the file must be the last field, followed by the closing delimiter.")

func (f *postFile) Read(p []byte) (int, error) {
	for f.err == nil && !f.ended {
		i := bytes.Index(f.pend, f.delim)
		safe := i // what cannot be part of a delimiter
		if i < 0 {
			safe = len(f.pend) - (len(f.delim) - 1)
		}
		switch {
		case safe > 0:
			k := copy(p, f.pend[:safe])
			f.pend = f.pend[k:]
			f.n += int64(k)
			return k, nil
		case i == 0 && len(f.pend) >= len(f.delim)+2:
			f.err = f.close()
		case f.left == 0:
			f.err = errFileNotLast // no closing delimiter
		default:
			f.err = f.more()
		}
	}
	if f.err != nil {
		return 0, f.err
	}
	return 0, io.EOF
}

// close reads the delimiter at the start of pend: it must be the closing one.
// The file is then whole: its length is checked.
func (f *postFile) close() error {
	if string(f.pend[len(f.delim):len(f.delim)+2]) != "--" {
		return errFileNotLast
	}
	f.pend, f.ended = f.pend[len(f.delim)+2:], true
	if f.check != nil {
		return f.check(f.n)
	}
	return nil
}

// more reads more of src after what pend holds.
func (f *postFile) more() error {
	kept := copy(f.buf[:cap(f.buf)], f.pend)
	k, err := f.src.Read(f.buf[kept : kept+int(min(int64(cap(f.buf)-kept), f.left))])
	f.left -= int64(k)
	f.pend = f.buf[:kept+k]
	switch {
	case k > 0 || err == nil:
		return nil
	case err == io.EOF:
		return errIncompleteBody.with(errors.New("POST form: the body ends before its Content-Length"))
	default:
		return errIncompleteBody.with(err)
	}
}

// postEpilogue ends the upstream's form after its file: the upstream's
// closing delimiter ("\r\n--boundary--"), then as many bytes as the client's
// form holds after its own, so that the upstream's form has the length
// announced before the file streamed. Those bytes are an epilogue of CRLF and
// spaces (only spaces, transport padding, when there are fewer than two), not
// the client's: what the client sent there reaches nobody. The client's form
// is read to its end before the last byte goes.
type postEpilogue struct {
	file    *postFile
	closing []byte
	size    int64 // the epilogue's length; -1 until the closing delimiter went
	given   int64
}

func newPostEpilogue(file *postFile, closing []byte) *postEpilogue {
	return &postEpilogue{file: file, closing: closing, size: -1}
}

func (e *postEpilogue) Read(p []byte) (int, error) {
	if len(e.closing) > 0 {
		k := copy(p, e.closing)
		e.closing = e.closing[k:]
		return k, nil
	}
	f := e.file
	if e.size < 0 {
		e.size = int64(len(f.pend)) + f.left
	}
	if len(f.pend) == 0 {
		if f.left == 0 {
			return 0, io.EOF
		}
		if err := f.more(); err != nil {
			return 0, err
		}
	}
	k := min(len(p), len(f.pend))
	for i := range k {
		p[i] = epilogueByte(e.given+int64(i), e.size)
	}
	f.pend = f.pend[k:]
	e.given += int64(k)
	return k, nil
}

// epilogueByte is byte i of an epilogue of size bytes: CRLF then spaces, or
// spaces alone when there is no room for the CRLF.
func epilogueByte(i, size int64) byte {
	switch {
	case size >= 2 && i == 0:
		return '\r'
	case size >= 2 && i == 1:
		return '\n'
	}
	return ' '
}

// maxPostDrain bounds what the proxy reads of a refused form's file before it
// answers: a client that is still sending the file reads an answer only once
// it has sent it (browsers and most HTTP clients), so a refusal is read to
// the end when the rest is this short; past it the connection is closed, as
// net/http does past its own 256 KiB.
const maxPostDrain = 8 << 20

// postObject answers POST Object; see the top of this file.
func (p *Proxy) postObject(x *exchange) error {
	r := x.in
	if r.ContentLength < 0 {
		return errMissingContentLength
	}
	f, err := readPostForm(r.Body, r.Header.Get("Content-Type"), r.ContentLength)
	if err == nil {
		err = p.postChecked(x, f)
	}
	if err != nil && r.ContentLength <= maxPostDrain {
		_, _ = io.Copy(io.Discard, r.Body) // bounded by the Content-Length
	}
	return err
}

// postChecked authenticates, checks and authorizes a form read up to its
// file, and hands it over to forward.
func (p *Proxy) postChecked(x *exchange, f *postForm) error {
	r := x.in
	var err error
	key, ok := f.value("key")
	if !ok || key == "" {
		return missingField("key")
	}
	// S3 puts the file's name for ${filename}; the key is authorized so.
	x.req.key, x.req.postObject = strings.ReplaceAll(key, "${filename}", f.fileName), true
	x.req.op.Name, x.req.op.Action = "PostObject", "s3:PutObject"
	if len(x.req.key) > maxKeyLength {
		return errKeyTooLong
	}
	var pol *postPolicy
	if x.who, pol, err = p.authenticatePost(r.Context(), f); err != nil {
		return err
	}
	if pol != nil {
		f.checked = f.checkedLength()
		if err := pol.evaluate(f, x.req.bucket, f.checked); err != nil {
			return err
		}
	}
	if err := p.authorize(r.Context(), &x.who, x.req.bucket); err != nil {
		return err
	}
	if x.target, err = p.resolver.resolve(r.Context(), x.req.bucket); err != nil {
		return err
	}
	x.form = f
	if err := p.authorizeRequest(x); err != nil {
		return err
	}
	if x.out, err = p.postUpstream(x, f, pol); err != nil {
		return err
	}
	p.forward(x)
	return nil
}

// authenticatePost finds who signed a form: SigV4 (x-amz-algorithm,
// x-amz-credential, x-amz-date, policy, x-amz-signature), SigV2
// (AWSAccessKeyId, policy, signature) or nobody (anonymous, no policy). It
// verifies the signature of the policy with the client's secret (in token
// mode it takes the access key id on trust) and parses the policy.
func (p *Proxy) authenticatePost(ctx context.Context, f *postForm) (identity, *postPolicy, error) {
	v4 := []string{"policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"}
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := f.value(n); ok {
				return true
			}
		}
		return false
	}
	var token, secret string
	var check func(secret string) bool
	switch {
	case has("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature") || !has("awsaccesskeyid", "signature") && has("policy"):
		for _, n := range v4 {
			if !has(n) {
				return identity{}, nil, missingField(n)
			}
		}
		sig, err := p.postCredential(f)
		if err != nil {
			return identity{}, nil, err
		}
		token = sig.AccessKeyID
		policy, _ := f.value("policy")
		signature, _ := f.value("x-amz-signature")
		check = func(secret string) bool {
			key, cached := p.keys.lookup(secret, sig.Date, sig.Region, sig.Service)
			if !cached {
				key = sigv4.DeriveKey(secret, sig.Date, sig.Region, sig.Service)
			}
			ok := sigv4.EqualConstantTime([]byte(policySignature(key, policy)), signature)
			if ok && !cached { // as for requests: a key is kept once a signature verified with it
				p.keys.store(secret, sig.Date, sig.Region, sig.Service, key)
			}
			return ok
		}
	case has("awsaccesskeyid", "signature"):
		for _, n := range []string{"awsaccesskeyid", "policy", "signature"} {
			if !has(n) {
				return identity{}, nil, missingField(n)
			}
		}
		if p.cfg.verifying() && !p.cfg.sigV2 {
			return identity{}, nil, errInvalidRequest.withMessage("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
		}
		f.v2 = true
		token, _ = f.value("awsaccesskeyid")
		policy, _ := f.value("policy")
		signature, _ := f.value("signature")
		check = func(secret string) bool {
			m := hmac.New(sha1.New, []byte(secret))
			m.Write([]byte(policy))
			want := base64.StdEncoding.EncodeToString(m.Sum(nil))
			return subtle.ConstantTimeCompare([]byte(want), []byte(signature)) == 1
		}
	default:
		return identity{anonymous: true, payloadHash: sigv4.UnsignedPayload}, nil, nil
	}
	if token == "" {
		return identity{}, nil, errAccessDenied
	}
	id := identity{token: token, payloadHash: sigv4.UnsignedPayload}
	if p.cfg.verifying() {
		var err error
		if secret, err = p.clientSecret(ctx, token); err != nil {
			return identity{}, nil, err
		}
		if !check(secret) {
			return identity{}, nil, errSignatureMismatch
		}
		id.verified = true
	}
	policy, _ := f.value("policy")
	pol, err := parsePostPolicy(policy, p.cfg.now())
	if err != nil {
		return identity{}, nil, err
	}
	return id, pol, nil
}

// policySignature is the SigV4 signature of a form's policy: the hex HMAC of
// the base64 policy with the signing key. The client's is checked with it,
// the upstream's made with it.
func policySignature(key []byte, policy string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(policy))
	return hex.EncodeToString(m.Sum(nil))
}

// postCredential reads the SigV4 fields of a form: the algorithm, the
// credential (with WithRegions, its region) and the date.
func (p *Proxy) postCredential(f *postForm) (*sigv4.Signature, error) {
	invalid := func(name, value, msg string) error {
		return errInvalidArgument.withMessage(msg).withField("ArgumentName", name).withField("ArgumentValue", clip(value))
	}
	if alg, _ := f.value("x-amz-algorithm"); alg != sigv4.AlgorithmV4 {
		return nil, invalid("x-amz-algorithm", alg, "Only AWS4-HMAC-SHA256 is supported for the POST form's x-amz-algorithm.")
	}
	cred, _ := f.value("x-amz-credential")
	sig := &sigv4.Signature{}
	if err := sig.ParseCredential(cred, sigv4.PostForm); err != nil {
		e, _ := s3ErrorOf(err)
		return nil, invalid("x-amz-credential", cred, e.Message)
	}
	if len(p.cfg.regions) > 0 && !slices.Contains(p.cfg.regions, sig.Region) {
		return nil, invalid("x-amz-credential", cred, "the region '"+clip(sig.Region)+"' is wrong; expecting '"+p.cfg.regions[0]+"'")
	}
	date, _ := f.value("x-amz-date")
	if _, err := time.Parse(sigv4.AmzDateFormat, date); err != nil || len(date) != len(sigv4.AmzDateFormat) {
		return nil, invalid("x-amz-date", date, "The x-amz-date field must be in the format yyyyMMdd'T'HHmmss'Z'.")
	}
	sig.AmzDate = date
	return sig, nil
}

// postUpstream builds the upstream request of a form. An anonymous form goes
// as it came, without credentials; a signed one as a form of the proxy's,
// signed with the bucket's HMAC keys.
func (p *Proxy) postUpstream(x *exchange, f *postForm, pol *postPolicy) (upstream, error) {
	r, t := x.in, x.target
	out := upstream{url: upstreamURL(t, ""), header: make(http.Header, 4)}
	if v := r.Header.Values("Origin"); len(v) > 0 {
		out.header["Origin"] = v
	}
	out.header.Set("Accept-Encoding", "identity")
	if x.who.anonymous {
		out.header.Set("Content-Type", r.Header.Get("Content-Type"))
		out.body = readCloser{io.MultiReader(bytes.NewReader(f.raw), r.Body)}
		out.length = r.ContentLength
		return out, nil
	}
	if t.creds.APIKey != "" {
		return upstream{}, errNotImplemented.withMessage("POST Object (browser form upload) is not implemented for this bucket: its object store takes IAM bearer tokens, which cannot sign a form's policy. Upload with PUT (a presigned PUT URL) instead.")
	}
	creds, err := p.hmacKeys(r.Context(), t)
	if err != nil {
		return upstream{}, err
	}
	now := p.cfg.now().UTC()
	date := now.Format(sigv4.AmzDateFormat)
	auth := [][2]string{
		{"x-amz-algorithm", sigv4.AlgorithmV4},
		{"x-amz-credential", creds.AccessKeyID + "/" + date[:8] + "/" + t.region() + "/s3/aws4_request"},
		{"x-amz-date", date},
	}
	if creds.SessionToken != "" {
		auth = append(auth, [2]string{"x-amz-security-token", creds.SessionToken})
	}
	// The key the proxy authorized is the one the upstream gets: with
	// ${filename} put in here, not left to an upstream that may not put it
	// (versitygw stores it as it is) or put another name (a base name).
	key := ""
	if sent, _ := f.value("key"); sent != x.req.key {
		key = x.req.key
	}
	policy, err := pol.upstream(auth, key)
	if err != nil {
		return upstream{}, errInternal.with(err)
	}
	signature := policySignature(p.keys.signingKey(creds.SecretAccessKey, date[:8], t.region(), "s3"), policy)

	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, fd := range f.fields {
		switch {
		case postAuthFields[fd.lower]:
		case fd.lower == "key" && key != "":
			_ = mw.WriteField(fd.name, key)
		default:
			_ = mw.WriteField(fd.name, fd.value) // into a bytes.Buffer: no error
		}
	}
	for _, kv := range auth {
		_ = mw.WriteField(kv[0], kv[1])
	}
	_ = mw.WriteField("policy", policy)
	_ = mw.WriteField("x-amz-signature", signature)
	h := textproto.MIMEHeader{}
	disposition := `form-data; name="file"`
	if f.fileName != "" {
		disposition += `; filename="` + quoteEscaper.Replace(f.fileName) + `"`
	}
	h.Set("Content-Disposition", disposition)
	if f.fileType != "" {
		h.Set("Content-Type", f.fileType)
	}
	_, _ = mw.CreatePart(h)
	head := bytes.Clone(b.Bytes())
	b.Reset()
	_ = mw.Close()
	tail := b.Bytes() // "\r\n--boundary--\r\n"

	file := newPostFile(io.MultiReader(bytes.NewReader(f.raw[f.fileAt:]), r.Body), f.fileLen, f.boundary)
	file.check = func(n int64) error {
		if n == f.checked { // checked before the file streamed
			return nil
		}
		return pol.lengthError(n)
	}
	out.header.Set("Content-Type", mw.FormDataContentType())
	out.body = readCloser{io.MultiReader(bytes.NewReader(head), file, newPostEpilogue(file, tail[:len(tail)-len("\r\n")]))}
	out.length = int64(len(head)) + f.fileLen + int64(len(tail))
	return out, nil
}

// quoteEscaper escapes a quoted parameter of a part's header as
// mime/multipart does; line breaks go, as no header may hold them.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")
