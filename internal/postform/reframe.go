package postform

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"

	"github.com/osproxy/proxy/internal/s3err"
)

// File streams the file of a form from the client. The file ends at its
// first delimiter ("\r\n--boundary"), which must be the closing one ("--"
// follows): a form with a field after the file, or without a closing
// delimiter, is refused (ErrFileNotLast) before the reader has given the
// bytes the form's length promised. What follows the closing delimiter, the
// form's epilogue, is not the file's and S3 ignores it; an Epilogue stands in
// for it. The bytes that may start a delimiter are held back until what
// follows them is read.
type File struct {
	src   io.Reader
	left  int64  // bytes of src not read yet
	delim []byte // "\r\n--boundary"
	buf   []byte
	pend  []byte // of buf: read from src, not given yet
	n     int64  // file bytes given
	check func(n int64) error
	ended bool // the closing delimiter was read
	err   error
}

// fileBuf is the size of a File's buffer.
const fileBuf = 32 << 10

// NewFile returns the reader of a form's file in src, which holds the file
// and the rest of the form: n + len("\r\n--boundary--\r\n") bytes in all, n
// being the file's length when the form ends as browsers end it. check, when
// not nil, is called with the file's length once its end was read, before
// the reader says io.EOF; its error is the reader's.
func NewFile(src io.Reader, n int64, boundary string, check func(n int64) error) *File {
	d := []byte("\r\n--" + boundary)
	return &File{src: src, left: n + int64(len(d)+len("--\r\n")), delim: d, buf: make([]byte, 0, fileBuf), check: check}
}

func (f *File) Read(p []byte) (int, error) {
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
			f.err = ErrFileNotLast // no closing delimiter
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
func (f *File) close() error {
	if string(f.pend[len(f.delim):len(f.delim)+2]) != "--" {
		return ErrFileNotLast
	}
	f.pend, f.ended = f.pend[len(f.delim)+2:], true
	if f.check != nil {
		return f.check(f.n)
	}
	return nil
}

// more reads more of src after what pend holds.
func (f *File) more() error {
	kept := copy(f.buf[:cap(f.buf)], f.pend)
	k, err := f.src.Read(f.buf[kept : kept+int(min(int64(cap(f.buf)-kept), f.left))])
	f.left -= int64(k)
	f.pend = f.buf[:kept+k]
	switch {
	case k > 0 || err == nil:
		return nil
	case err == io.EOF:
		return s3err.IncompleteBody.With(errors.New("POST form: the body ends before its Content-Length"))
	default:
		return s3err.IncompleteBody.With(err)
	}
}

// epilogue ends a form posted on after its file: its closing delimiter
// ("\r\n--boundary--"), then as many bytes as the client's form holds after
// its own, so that the form has the length announced before the file
// streamed. Those bytes are an epilogue of CRLF and spaces (only spaces,
// transport padding, when there are fewer than two), not the client's: what
// the client sent there reaches nobody. The client's form is read to its end
// before the last byte goes.
type epilogue struct {
	file    *File
	closing []byte
	size    int64 // the epilogue's length; -1 until the closing delimiter went
	given   int64
}

func (e *epilogue) Read(p []byte) (int, error) {
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

// Onward is what a form posted on carries in place of the client's
// signature.
type Onward struct {
	// Key replaces the form's key field when not "" (the key with
	// ${filename} put in).
	Key string
	// Auth are the fields of the new signature (x-amz-algorithm,
	// x-amz-credential, x-amz-date, maybe x-amz-security-token), in order.
	Auth [][2]string
	// Policy and Signature are the new policy (Policy.Onward) and its
	// signature.
	Policy, Signature string
	// Check is called with the file's length once it ended (NewFile).
	Check func(n int64) error
}

// Reframe returns the form to post on: the client's fields but those of its
// signature (IsAuthField), o's fields, and the client's file streamed from
// the bytes of Raw after FileAt and then rest (the client's body after Raw).
// The length is the form's, exactly, known before the file streams: the
// body ends with an epilogue as long as the client's (see File).
func (f *Form) Reframe(rest io.Reader, o Onward) (contentType string, body io.Reader, length int64) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, fd := range f.Fields {
		switch {
		case IsAuthField(fd.Lower):
		case fd.Lower == "key" && o.Key != "":
			_ = mw.WriteField(fd.Name, o.Key)
		default:
			_ = mw.WriteField(fd.Name, fd.Value) // into a bytes.Buffer: no error
		}
	}
	for _, kv := range o.Auth {
		_ = mw.WriteField(kv[0], kv[1])
	}
	_ = mw.WriteField("policy", o.Policy)
	_ = mw.WriteField("x-amz-signature", o.Signature)
	h := textproto.MIMEHeader{}
	disposition := `form-data; name="file"`
	if f.FileName != "" {
		disposition += `; filename="` + quoteEscaper.Replace(f.FileName) + `"`
	}
	h.Set("Content-Disposition", disposition)
	if f.FileType != "" {
		h.Set("Content-Type", f.FileType)
	}
	_, _ = mw.CreatePart(h)
	head := bytes.Clone(b.Bytes())
	b.Reset()
	_ = mw.Close()
	tail := b.Bytes() // "\r\n--boundary--\r\n"

	file := NewFile(io.MultiReader(bytes.NewReader(f.Raw[f.FileAt:]), rest), f.FileLen, f.Boundary, o.Check)
	ep := &epilogue{file: file, closing: tail[:len(tail)-len("\r\n")], size: -1}
	return mw.FormDataContentType(), io.MultiReader(bytes.NewReader(head), file, ep), int64(len(head)) + f.FileLen + int64(len(tail))
}

// quoteEscaper escapes a quoted parameter of a part's header as
// mime/multipart does; line breaks go, as no header may hold them.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")
