package awschunked

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/osproxy/proxy/internal/s3err"
)

// Options describes an aws-chunked body (Content-Encoding: aws-chunked).
type Options struct {
	Signed        bool    // chunks carry ";chunk-signature=<64 hex>" (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])
	Signer        *Signer // non-nil: verify every chunk signature and the trailer signature; nil: do not verify them (token mode), but still parse/strip them
	Trailer       string  // the declared trailer header name from x-amz-trailer, lower-cased (e.g. "x-amz-checksum-crc32"); "" if none declared
	DecodedLength int64   // x-amz-decoded-content-length; -1 when absent
}

// Signer holds what chunk signatures chain from.
type Signer struct {
	Key     []byte // the SigV4 signing key (derived from secret/date/region/"s3")
	AmzDate string // the request's X-Amz-Date, e.g. "20130524T000000Z"
	Scope   string // "20130524/us-east-1/s3/aws4_request"
	Prev    string // the seed signature; the reader and the encoder chain from their own copies and leave this field as is
}

// Limits of the aws-chunked framing.
const (
	chunkedBufSize  = 256 << 10 // bufio buffer; larger reads of chunk data bypass it
	maxChunkLine    = 4 << 10   // longest chunk-size or trailer line, line ending included
	maxTrailerBytes = 16 << 10  // longest trailer section
	maxChunkSize    = 5 << 40   // largest chunk: the S3 object size limit
)

// Errors of the aws-chunked decoder. A body that ends early (anywhere before
// its framing is complete: in a chunk, before the final chunk, before a
// declared trailer or its signature) or that holds another number of bytes
// than it declares is S3's IncompleteBody, in S3's words; what happened is
// the internal cause.
var (
	errChunkedTruncated    = s3err.IncompleteBody.With(errors.New("aws-chunked: the body ends before its final chunk or inside a line"))
	errChunkedTruncData    = s3err.IncompleteBody.With(errors.New("aws-chunked: the body ends inside the data of a chunk"))
	errChunkedTruncTrailer = s3err.IncompleteBody.With(errors.New("aws-chunked: the body ends before its declared trailer or the trailer's signature"))
	errChunkedTooMuch      = s3err.IncompleteBody.With(errors.New("aws-chunked: the body holds more data than x-amz-decoded-content-length declares"))
	errChunkedLength       = s3err.IncompleteBody.With(errors.New("aws-chunked: the body does not hold the number of bytes x-amz-decoded-content-length declares"))
	errChunkedSize         = s3err.InvalidRequest.WithMessage("The aws-chunked body has a malformed chunk size.")
	errChunkedSizeTooLarge = s3err.InvalidRequest.WithMessage("The aws-chunked body declares a chunk size that is too large.")
	errChunkedLineTooLong  = s3err.InvalidRequest.WithMessage("The aws-chunked body has a chunk header or trailer line that is too long.")
	errChunkedNoCRLF       = s3err.InvalidRequest.WithMessage("The aws-chunked body does not have a CRLF where a chunk's data should end.")
	errTrailerTooLong      = s3err.MalformedTrailer.With(errors.New("aws-chunked: the trailer is too long"))
	errTrailerMalformed    = s3err.MalformedTrailer
	errTrailerUndeclared   = s3err.MalformedTrailer
)

// Names in aws-chunked bodies.
var (
	emptyPayloadSum = sha256.Sum256(nil)
	trailerSigName  = []byte("x-amz-trailer-signature")
	chunkSigName    = []byte("chunk-signature")
	colon           = []byte{':'}
)

// Reader decodes an aws-chunked body; see NewReader.
type Reader struct {
	br        *bufio.Reader
	signed    bool
	verify    bool      // check signatures (signed with a Signer)
	want      int64     // decoded length, < 0 when unknown
	total     int64     // data bytes returned so far
	remaining int64     // data bytes left in the current chunk
	start     int64     // payload offset of the current chunk's data
	chunks    int       // chunks read, for error causes
	err       error     // sticky error, io.EOF once all is valid
	algo      *Checksum // trailer checksum; nil without trailer
	sum       hash.Hash // checksum of the payload; nil without trailer or one the proxy cannot compute

	// Signature verification; set only when verify.
	chain    *Chain
	dataHash hash.Hash // SHA-256 of the current chunk's data, then of the trailer
	got      [32]byte  // signature carried by the chunk or trailer
	digest   [32]byte  // scratch for SHA-256 sums

	// The last chunk whose signature verified: its payload offsets [from, to)
	// and the SHA-256 of its data, which the upstream chunk encoder reuses.
	verifiedFrom, verifiedTo int64
	verifiedSum              [32]byte

	// side hashes chunk data beside the reads (hashBeside); nil: in line.
	side *chunkSide

	trailerHash [32]byte // SHA-256 of the canonical trailer line
	trailerVal  [64]byte // decoded checksum value of the trailer
	computed    [64]byte // scratch for the computed checksum
}

// NewReader returns a reader of the payload inside an aws-chunked body.
// It streams with constant memory: chunk data is returned as it arrives and
// each chunk signature is checked when its data ends, before the next chunk's
// data is released. It returns io.EOF only once the final chunk, the trailer
// (checksum and signature) and the decoded length are all verified; any other
// failure is an *s3err.Error, returned again on every later Read.
func NewReader(body io.Reader, o Options) *Reader {
	c := &Reader{
		br:     bufio.NewReaderSize(body, chunkedBufSize),
		signed: o.Signed,
		want:   o.DecodedLength,
	}
	if o.Trailer != "" {
		name := strings.ToLower(strings.TrimSpace(o.Trailer))
		c.algo = LookupChecksum(name)
		if c.algo == nil {
			c.err = s3err.InvalidArgument.WithMessage("The x-amz-trailer header names an unsupported trailer: " + s3err.Clip(name) + ".")
			return c
		}
		if c.algo.New != nil {
			c.sum = c.algo.New()
		}
	}
	if o.Signed && o.Signer != nil {
		chain, ok := NewChain(o.Signer)
		if !ok {
			c.err = s3err.SignatureDoesNotMatch.With(errors.New("aws-chunked: seed signature is not 64 hex digits"))
			return c
		}
		c.verify = true
		c.chain = chain
		c.dataHash = sha256.New()
	}
	return c
}

// Read implements io.Reader. A read that ends a chunk goes on into the next
// one rather than returning short. When a chunk fails its CRLF or signature
// check, the last piece of its data is withheld and the error returned
// instead, after the bytes read before it.
func (c *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && c.err == nil && (n == 0 || c.remaining == 0) {
		k, err := c.readChunk(p[n:])
		n += k
		c.err = err
	}
	if n > 0 {
		return n, nil
	}
	return 0, c.err
}

// readChunk reads from the current chunk, or the next one when the current one
// is done: data and no error, or an error and no data.
func (c *Reader) readChunk(p []byte) (int, error) {
	if c.remaining == 0 {
		if err := c.nextChunk(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	if err != nil {
		return 0, bodyError(err, errChunkedTruncData)
	}
	p = p[:n]
	switch {
	case c.side != nil:
		select {
		case c.side.todo <- p:
		case <-c.side.stop:
			return 0, errSideClosed
		}
	case c.verify:
		c.dataHash.Write(p)
	}
	if c.sum != nil {
		c.sum.Write(p)
	}
	c.remaining -= int64(n)
	c.total += int64(n)
	if c.remaining == 0 {
		if err := c.endChunk(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// nextChunk reads a chunk-size line. At the final chunk it reads and checks
// the rest of the body and returns io.EOF when all is valid.
func (c *Reader) nextChunk() error {
	line, eof, err := c.readLine()
	if err != nil {
		return err
	}
	if eof {
		return errChunkedTruncated
	}
	size, err := c.parseChunkHeader(line)
	if err != nil {
		return err
	}
	if size == 0 {
		return c.finish()
	}
	if size > math.MaxInt64-c.total || (c.want >= 0 && size > c.want-c.total) {
		return errChunkedTooMuch
	}
	c.remaining = size
	c.start = c.total
	if c.verify {
		c.dataHash.Reset()
	}
	return nil
}

// endChunk checks the CRLF after a chunk's data and the chunk's signature.
func (c *Reader) endChunk() error {
	b, err := c.br.Peek(2)
	if len(b) < 2 {
		return bodyError(err, errChunkedTruncData)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errChunkedNoCRLF
	}
	_, _ = c.br.Discard(2)
	c.chunks++
	switch {
	case c.side != nil: // checked once its data is hashed (settle)
		c.side.chunks = append(c.side.chunks, sideChunk{got: c.got, n: c.chunks, from: c.start, to: c.total})
		select {
		case c.side.todo <- nil:
		case <-c.side.stop:
			return errSideClosed
		}
		// Chunks smaller than the caller's reads end faster than it asks for
		// their digests: check the oldest here, so that the hasher never
		// waits with a digest nobody takes while the reads wait for it.
		if len(c.side.chunks) > maxUnsettled {
			return c.settle(maxUnsettled / 2)
		}
	case c.verify:
		if !c.checkSignature(false, c.dataHash.Sum(c.digest[:0])) {
			return chunkMismatch(c.chunks)
		}
		c.verifiedFrom, c.verifiedTo, c.verifiedSum = c.start, c.total, c.digest
	}
	return nil
}

func chunkMismatch(n int) error {
	return s3err.SignatureDoesNotMatch.With(fmt.Errorf("aws-chunked: signature of chunk %d does not match", n))
}

// chunkSide hashes the data of signed chunks on a goroutine of its own,
// beside the reads that return it (see hashBeside). Each chunk's signature is
// checked, in order, once its digest is ready.
type chunkSide struct {
	todo     chan []byte   // chunk data in order; nil ends a chunk
	digests  chan [32]byte // one per chunk ended, in order
	stop     chan struct{} // closed at the end of the body, or by close
	stopped  sync.Once
	chunks   []sideChunk   // ended chunks not yet checked
	hashed   atomic.Int64  // payload bytes the hasher is done with
	progress chan struct{} // a token after hashed grew (capacity 1)
}

// maxUnsettled bounds the ended chunks whose digests wait to be checked; the
// digests channel holds more, so the hasher never blocks on it.
const maxUnsettled = 32

var errSideClosed = s3err.ServiceUnavailable.With(errors.New("aws-chunked: body closed while it was read"))

// sideChunk is a chunk whose data has ended: the signature it carried, its
// number and its payload offsets.
type sideChunk struct {
	got      [32]byte
	n        int
	from, to int64
}

// hashBeside has the data of signed chunks hashed on a goroutine of its own,
// beside the reads, for a caller that leaves each chunk's data in its buffer
// until it has asked verifiedDigest for it, and closes the reader (close)
// when it gives up. A chunk's signature is then checked once its digest is
// ready: after later chunks' data may have been returned, but always before
// the body ends (finish) and before verifiedDigest answers for it. It must be
// called before the first Read, and only when chunks are verified.
func (c *Reader) hashBeside() {
	if !c.verify || c.side != nil || c.total > 0 || c.chunks > 0 {
		return
	}
	side := &chunkSide{todo: make(chan []byte, 128), digests: make(chan [32]byte, 2*maxUnsettled),
		stop: make(chan struct{}), progress: make(chan struct{}, 1)}
	c.side = side
	go func() {
		h := sha256.New()
		var sum [32]byte
		for {
			select {
			case b := <-side.todo:
				if b != nil {
					h.Write(b)
					side.hashed.Add(int64(len(b)))
					select {
					case side.progress <- struct{}{}:
					default:
					}
					continue
				}
				h.Sum(sum[:0])
				h.Reset()
				select {
				case side.digests <- sum:
				case <-side.stop:
					return
				}
			case <-side.stop:
				return
			}
		}
	}()
}

// settle checks the signatures of ended chunks, in order, as their digests
// come, until at most keep are left unchecked.
func (c *Reader) settle(keep int) error {
	s := c.side
	for len(s.chunks) > keep {
		var sum [32]byte
		select {
		case sum = <-s.digests:
		case <-s.stop:
			return errSideClosed
		}
		ch := s.chunks[0]
		s.chunks = s.chunks[1:]
		if !c.checkSignatureOf(false, sum[:], ch.got[:]) {
			return chunkMismatch(ch.n)
		}
		c.verifiedFrom, c.verifiedTo, c.verifiedSum = ch.from, ch.to, sum
	}
	return nil
}

// waitHashed waits until the side hasher, if any, is done with the payload
// bytes before offset to: a buffer that held them may then be read into again.
// The digests of the chunks that ended there are not needed; the data of a
// chunk that goes on past them is.
func (c *Reader) waitHashed(to int64) error {
	s := c.side
	if s == nil {
		return nil
	}
	for s.hashed.Load() < to {
		select {
		case <-s.progress:
		case <-s.stop:
			return errSideClosed
		}
	}
	return nil
}

// close stops the side hasher, if any.
func (c *Reader) close() {
	if c.side != nil {
		c.side.stopped.Do(func() { close(c.side.stop) })
	}
}

// firstChunkSize returns the size of the client's first chunk when the
// upstream body can be framed on the client's chunk boundaries, so that each
// chunk is hashed once: from minFollowedChunk to maxFollowedChunk; otherwise
// ChunkSize. It reads the first chunk-size line if no Read has yet,
// waiting for the client's first body bytes; an error is the body's.
func (c *Reader) FirstChunkSize() (int, error) {
	if c.err == nil && c.total == 0 && c.remaining == 0 && c.chunks == 0 {
		if err := c.nextChunk(); err != nil {
			c.err = err
			if err != io.EOF {
				return 0, err
			}
		}
	}
	if c.total == 0 && c.remaining >= minFollowedChunk && c.remaining <= maxFollowedChunk {
		return int(c.remaining), nil
	}
	return ChunkSize, nil
}

// verifiedDigest returns the SHA-256 of the payload bytes [from, to) when they
// are exactly the data of the last chunk whose signature verified: a chunk
// framed upstream on the client's chunk boundaries is then hashed only once.
func (c *Reader) verifiedDigest(from, to int64) (sum [32]byte, ok bool, err error) {
	if c.side != nil {
		// Check the chunks that ended before [from, to) and that one.
		keep := 0
		for i, ch := range c.side.chunks {
			if ch.to == to {
				keep = len(c.side.chunks) - i - 1
				break
			}
		}
		if err := c.settle(keep); err != nil {
			c.err = err
			return sum, false, err
		}
	}
	if !c.verify || from != c.verifiedFrom || to != c.verifiedTo || to == from {
		return sum, false, nil
	}
	return c.verifiedSum, true, nil
}

// finish handles the final chunk: its signature, the decoded length and the
// trailer. It returns io.EOF when the body is valid.
func (c *Reader) finish() error {
	if c.side != nil {
		if err := c.settle(0); err != nil {
			return err
		}
		c.close()
	}
	if c.verify && !c.checkSignature(false, emptyPayloadSum[:]) {
		return s3err.SignatureDoesNotMatch.With(errors.New("aws-chunked: signature of the final chunk does not match"))
	}
	if c.want >= 0 && c.total != c.want {
		return errChunkedLength.With(fmt.Errorf("%w: decoded %d bytes, x-amz-decoded-content-length is %d", errChunkedLength.Cause, c.total, c.want))
	}
	if err := c.readTrailer(); err != nil {
		return err
	}
	return io.EOF
}

// readTrailer reads the trailer section up to the end of the body and checks
// the trailer signature and checksum. Blank lines are skipped: clients differ
// in where they put them, and a missing final one is tolerated. A body that
// ends without the declared trailer (or, signed, its signature) and without
// a blank line that ends the section was cut short: IncompleteBody, where a
// section ended without them is malformed.
func (c *Reader) readTrailer() error {
	var seenSum, seenSig, blank bool
	size := 0
	for {
		line, eof, err := c.readLine()
		if err != nil {
			return err
		}
		if eof {
			break
		}
		if size += len(line) + 2; size > maxTrailerBytes {
			return errTrailerTooLong
		}
		if len(line) == 0 {
			blank = true
			continue
		}
		if seenSig {
			return errTrailerMalformed.With(errors.New("aws-chunked: trailer header after x-amz-trailer-signature"))
		}
		name, value, ok := bytes.Cut(line, colon)
		if !ok {
			return errTrailerMalformed.With(errors.New("aws-chunked: trailer line without a colon"))
		}
		name, value = trimOWS(name), trimOWS(value)
		if bytes.EqualFold(name, trailerSigName) {
			if !c.signed {
				continue // unsigned bodies: nothing to verify
			}
			if c.algo == nil {
				return errTrailerUndeclared.With(errors.New("aws-chunked: trailer signature without a declared trailer"))
			}
			if !seenSum {
				return c.missingTrailer()
			}
			if len(value) != 2*len(c.got) || !isHex(value, false) {
				return s3err.SignatureDoesNotMatch.With(errors.New("aws-chunked: malformed trailer signature"))
			}
			_, _ = hex.Decode(c.got[:], value)
			seenSig = true
			continue
		}
		if c.algo == nil || !bytes.EqualFold(name, []byte(c.algo.Header)) {
			return errTrailerUndeclared.With(fmt.Errorf("aws-chunked: undeclared trailer %q", s3err.Clip(string(name))))
		}
		if seenSum {
			return errTrailerMalformed.With(errors.New("aws-chunked: trailer " + c.algo.Header + " given twice"))
		}
		if err := c.parseChecksum(value); err != nil {
			return err
		}
		seenSum = true
	}
	if c.algo == nil {
		return nil
	}
	if !blank && (!seenSum || c.signed && !seenSig) {
		return errChunkedTruncTrailer
	}
	if !seenSum {
		return c.missingTrailer()
	}
	if c.signed {
		if !seenSig {
			return s3err.SignatureDoesNotMatch.With(errors.New("aws-chunked: missing trailer signature"))
		}
		if c.verify && !c.checkSignature(true, c.trailerHash[:]) {
			return s3err.SignatureDoesNotMatch.With(errors.New("aws-chunked: trailer signature does not match"))
		}
	}
	if c.sum != nil && !bytes.Equal(c.sum.Sum(c.computed[:0]), c.trailerVal[:c.algo.Size]) {
		return s3err.BadDigest.WithMessage("The " + c.algo.Name + " you specified did not match the calculated checksum.")
	}
	return nil
}

// missingTrailer is the error of a body without its declared trailer.
func (c *Reader) missingTrailer() error {
	return s3err.MalformedTrailer.With(errors.New("aws-chunked: the body lacks the " + c.algo.Header + " trailer that x-amz-trailer declares"))
}

// parseChecksum decodes the trailer's checksum value and, when verifying,
// hashes the canonical trailer line "name:value\n" the trailer signature signs.
func (c *Reader) parseChecksum(value []byte) error {
	enc := base64.StdEncoding.Strict()
	if len(value) != enc.EncodedLen(c.algo.Size) {
		return c.invalidChecksum()
	}
	if n, err := enc.Decode(c.trailerVal[:], value); err != nil || n != c.algo.Size {
		return c.invalidChecksum()
	}
	if c.verify {
		h := c.dataHash
		h.Reset()
		_, _ = io.WriteString(h, c.algo.Header)
		_, _ = h.Write(colon)
		_, _ = h.Write(value)
		_, _ = h.Write(newline)
		h.Sum(c.trailerHash[:0])
	}
	return nil
}

// invalidChecksum is the error of a malformed trailer checksum value.
func (c *Reader) invalidChecksum() error {
	return s3err.InvalidRequest.WithMessage("Value for " + c.algo.Header + " trailing header is invalid.")
}

// parseChunkHeader parses "<hex-size>[;name[=value]]..." and, in signed mode,
// stores the chunk-signature in c.got.
func (c *Reader) parseChunkHeader(line []byte) (int64, error) {
	hexSize, exts, _ := bytes.Cut(line, []byte{';'})
	hexSize = trimOWS(hexSize)
	if len(hexSize) == 0 {
		return 0, errChunkedSize
	}
	var size int64
	for _, ch := range hexSize {
		v, ok := unhex(ch)
		if !ok {
			return 0, errChunkedSize
		}
		if size > maxChunkSize>>4 {
			return 0, errChunkedSizeTooLarge
		}
		size = size<<4 | int64(v)
	}
	if size > maxChunkSize {
		return 0, errChunkedSizeTooLarge
	}
	if !c.signed {
		return size, nil // extensions carry nothing to check
	}
	found := false
	for len(exts) > 0 {
		var ext []byte
		ext, exts, _ = bytes.Cut(exts, []byte{';'})
		name, value, _ := bytes.Cut(ext, []byte{'='})
		if !bytes.EqualFold(trimOWS(name), chunkSigName) {
			continue
		}
		value = trimOWS(value)
		if found || len(value) != 2*len(c.got) || !isHex(value, false) {
			return 0, s3err.SignatureDoesNotMatch.With(fmt.Errorf("aws-chunked: malformed chunk-signature in chunk %d", c.chunks+1))
		}
		_, _ = hex.Decode(c.got[:], value)
		found = true
	}
	if !found {
		return 0, s3err.SignatureDoesNotMatch.With(fmt.Errorf("aws-chunked: chunk %d has no chunk-signature", c.chunks+1))
	}
	return size, nil
}

// checkSignature computes the signature of a chunk (over the hash of its
// data) or of the trailer (over the hash of its canonical lines), compares it
// with c.got and, on a match, chains from it.
func (c *Reader) checkSignature(trailer bool, digest []byte) bool {
	return c.checkSignatureOf(trailer, digest, c.got[:])
}

// checkSignatureOf is checkSignature against the signature got.
func (c *Reader) checkSignatureOf(trailer bool, digest, got []byte) bool {
	if !hmac.Equal(c.chain.sign(trailer, digest), got) {
		return false
	}
	c.chain.advance(got)
	return true
}

// readLine returns the next line without its LF or CRLF. eof reports that the
// body ended cleanly before the line; a line cut by the end is an error.
func (c *Reader) readLine() (line []byte, eof bool, err error) {
	line, err = c.br.ReadSlice('\n')
	switch {
	case len(line) > maxChunkLine, errors.Is(err, bufio.ErrBufferFull):
		return nil, false, errChunkedLineTooLong
	case err == nil:
	case err == io.EOF && len(line) == 0:
		return nil, true, nil
	default:
		return nil, false, bodyError(err, errChunkedTruncated)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, false, nil
}

// bodyError turns an error of the underlying body into an *s3err.Error: io.EOF
// becomes eofErr, other causes are kept inside eofErr with its own, *Errors
// pass as is.
func bodyError(err error, eofErr *s3err.Error) error {
	var e *s3err.Error
	switch {
	case errors.As(err, &e):
		return err
	case err == io.EOF:
		return eofErr
	case eofErr.Cause != nil:
		return eofErr.With(fmt.Errorf("%w: %w", eofErr.Cause, err))
	default:
		return eofErr.With(err)
	}
}

// trimOWS trims spaces and tabs.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// unhex returns the value of a hex digit.
func unhex(ch byte) (byte, bool) {
	switch {
	case '0' <= ch && ch <= '9':
		return ch - '0', true
	case 'a' <= ch && ch <= 'f':
		return ch - 'a' + 10, true
	case 'A' <= ch && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}

// trailerLine returns the verified trailer, "name:base64-value", once Read has
// returned io.EOF; "" when the body had no trailer.
func (c *Reader) TrailerLine() string {
	if c.algo == nil || c.err != io.EOF {
		return ""
	}
	return c.algo.Header + ":" + base64.StdEncoding.EncodeToString(c.trailerVal[:c.algo.Size])
}
