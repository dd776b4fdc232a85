package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/osproxy/proxy/internal/awschunked"
	"github.com/osproxy/proxy/internal/sigv4"
)

// clientBody is the payload of a client request as it goes upstream: verified
// as it streams, its aws-chunked framing removed.
type clientBody struct {
	body        io.ReadCloser // the payload to forward; nil when there is none
	length      int64         // the payload's length; -1 when unknown
	payloadHash string        // x-amz-content-sha256 of the plain payload, for the upstream signature
	unchecked   io.ReadCloser // a hex-signed body as received, for an upstream that checks its hash (body checks it here)
	decoded     bool          // the client's aws-chunked framing was removed
	// checksumHeader is "name:value" of a verified trailer checksum that goes
	// upstream as a header: the body was read whole (deleteKeys).
	checksumHeader string

	// An aws-chunked client body: its decoder (nil for other bodies), its
	// verified trailer's name ("" for none) and whether its chunks were signed.
	chunked      *awschunked.Reader
	trailer      string
	signedChunks bool
}

// openBody sets up the body to forward for the payload hash the client sent: a
// hex SHA-256 is checked as the body streams (when the signature was verified;
// the upstream checks it too), an aws-chunked body is decoded (and its chunk
// signatures checked), UNSIGNED-PAYLOAD passes as is.
func openBody(r *http.Request, id *identity) (clientBody, error) {
	b := clientBody{body: r.Body, length: r.ContentLength}
	if r.Body == nil || r.Body == http.NoBody {
		b.body, b.length = nil, 0
	}
	payloadHash := id.payloadHash
	switch payloadHash {
	case sigv4.UnsignedPayload:
		b.payloadHash = sigv4.UnsignedPayload
		return b, nil
	case sigv4.StreamingSigned, sigv4.StreamingSignedTrailer, sigv4.StreamingUnsigned:
		return b, b.openChunked(r, payloadHash, id.chunks)
	}
	if strings.HasPrefix(payloadHash, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD") { // SigV4a's streaming forms
		return b, errNotImplemented.withMessage("The payload signing method " + payloadHash + " is not supported (only AWS4-HMAC-SHA256 and unsigned streaming are).")
	}
	if !sigv4.IsHexSHA256(payloadHash) {
		return b, errInvalidArgument.withMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] or a lowercase hex SHA-256.")
	}
	b.payloadHash = payloadHash
	if !id.verified {
		return b, nil
	}
	if b.body == nil {
		if payloadHash != sigv4.EmptySHA256 {
			return b, contentSHA256Mismatch(payloadHash, sigv4.EmptySHA256)
		}
		return b, nil
	}
	b.unchecked = b.body
	want, _ := hex.DecodeString(payloadHash)
	b.body = readCloser{newHoldback(&sha256Reader{r: b.body, h: sha256.New(), want: want})}
	return b, nil
}

// openChunked sets up the decoding of an aws-chunked body.
func (b *clientBody) openChunked(r *http.Request, payloadHash string, cs *awschunked.Signer) error {
	dl := r.Header.Get("X-Amz-Decoded-Content-Length")
	if dl == "" {
		return errMissingContentLength.withMessage("An aws-chunked body needs the x-amz-decoded-content-length header.")
	}
	n, err := strconv.ParseInt(dl, 10, 64)
	if err != nil || n < 0 {
		return errInvalidArgument.withMessage("x-amz-decoded-content-length is not a valid length.")
	}
	trailer := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
	if payloadHash == sigv4.StreamingSigned && trailer != "" {
		return errInvalidRequest.withMessage("x-amz-trailer is set but the payload method has no trailer.")
	}
	if b.body == nil {
		return errIncompleteBody
	}
	b.payloadHash = sigv4.UnsignedPayload
	b.decoded = true
	b.length = n
	b.trailer = trailer
	b.signedChunks = payloadHash != sigv4.StreamingUnsigned
	b.chunked = awschunked.NewReader(b.body, awschunked.Options{
		Signed:        b.signedChunks,
		Signer:        cs,
		Trailer:       trailer,
		DecodedLength: n,
	})
	b.body = readCloser{newHoldback(b.chunked)} // the plain form; buildUpstream may frame it again
	return nil
}

// sha256Reader passes a body through and, at its end, compares its SHA-256 with
// the one the client signed: a mismatch is an error instead of io.EOF.
type sha256Reader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
	err  error
}

func (s *sha256Reader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err == io.EOF {
		if got := s.h.Sum(nil); !hmac.Equal(got, s.want) {
			err = contentSHA256Mismatch(hex.EncodeToString(s.want), hex.EncodeToString(got))
		}
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

// holdback withholds the last byte of a stream until the stream has ended
// cleanly, that is until its verification passed: an upstream that expects N
// bytes never receives all N from a body that turns out to be bad, so it
// stores nothing when the proxy then aborts the request.
type holdback struct {
	r       io.Reader
	last    byte
	hasLast bool
	one     [1]byte
	err     error
}

func newHoldback(r io.Reader) *holdback { return &holdback{r: r} }

func (h *holdback) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if h.err != nil {
			if h.err == io.EOF && h.hasLast {
				p[0], h.hasLast = h.last, false
				return 1, nil
			}
			return 0, h.err
		}
		if !h.hasLast {
			n, err := h.r.Read(p)
			h.keep(p[:n], err)
			if n > 1 {
				return n - 1, nil
			}
			continue
		}
		// One byte is held: it goes out first, the newest byte is held instead.
		buf := p[1:]
		if len(buf) == 0 {
			buf = h.one[:]
		}
		n, err := h.r.Read(buf)
		if n == 0 {
			h.err = err
			continue
		}
		p[0] = h.last
		copy(p[1:], buf[:n-1])
		h.keep(buf[n-1:n], err)
		return n, nil
	}
}

// keep holds the last byte of b and records err; a stream that failed loses
// its held byte for good.
func (h *holdback) keep(b []byte, err error) {
	h.err = err
	if len(b) > 0 {
		h.last, h.hasLast = b[len(b)-1], true
	}
	if err != nil && err != io.EOF {
		h.hasLast = false
	}
}

// readerCloser is a reader with the Close of what it reads from.
type readerCloser struct {
	io.Reader
	io.Closer
}

// readCloser gives a verifying reader a Close that does nothing: the server
// closes the client's body itself once the handler returns, and closing it
// early would hang a client waiting for 100 Continue.
type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }

// sideHash verifies a body's SHA-256 beside the copy that forwards it, on a
// core of its own: each block read from the client is hashed by a goroutine
// while the block is copied out and written upstream. It returns io.EOF only
// once every block is hashed and the sum is the one the client signed (a
// holdback above it withholds the last byte until then). The blocks are its
// own, up to sideHashBlocks of them, so the caller's buffer is never
// retained: a block is read while the hasher works through the ones before
// it, and a hasher that falls behind (a core shared with the client, the
// upstream or other requests) holds the copy back only once all of them wait.
// A block is allocated when the ring first reaches it. The goroutine starts
// with the first Read and ends with the body, or with Close.
type sideHash struct {
	src  io.Reader
	want []byte
	h    hash.Hash

	start   sync.Once
	todo    chan []byte   // blocks to hash, in order
	hashed  chan struct{} // one per block hashed
	stop    chan struct{} // closed once the body ended, or by Close
	stopped sync.Once
	pending int // blocks sent to the hasher and not yet known hashed

	bufs [sideHashBlocks][]byte // a ring of blocks, allocated as it first reaches each
	size int                    // the blocks' size
	next int                    // which block the next read fills
	out  []byte                 // read but not yet returned
	err  error                  // sticky
}

// sideHashBlock bounds sideHash's blocks: the reads from the client and the
// hashes run in these.
const sideHashBlock = 256 << 10

// sideHashBlocks bounds the blocks of one sideHash: at most 2 MiB per upload.
// With two, a hasher that lost its core for a moment stalled the copy; eight
// carried a 1 GiB upload on 2 CPUs shared with its client and upstream from
// 0.65 to 0.78 of what those CPUs allow (bench/README.md).
const sideHashBlocks = 8

// minSideHash is the smallest body worth hashing beside its copy.
const minSideHash = 1 << 20

// newSideHash verifies that src, of length n (-1: unknown), has the SHA-256
// want.
func newSideHash(src io.Reader, n int64, want []byte) *sideHash {
	size := int64(sideHashBlock)
	if n >= 0 && n < size {
		size = max(n, 1)
	}
	return &sideHash{src: src, want: want, h: sha256.New(), size: int(size),
		todo: make(chan []byte, sideHashBlocks), hashed: make(chan struct{}, sideHashBlocks), stop: make(chan struct{})}
}

// hash is the hasher goroutine.
func (s *sideHash) hash() {
	for {
		select {
		case b := <-s.todo:
			s.h.Write(b)
			s.hashed <- struct{}{}
		case <-s.stop:
			return
		}
	}
}

// wait waits until at most n blocks are left to hash.
func (s *sideHash) wait(n int) error {
	for s.pending > n {
		select {
		case <-s.hashed:
			s.pending--
		case <-s.stop:
			return errServiceUnavailable.with(errors.New("upstream body closed while it was read"))
		}
	}
	return nil
}

func (s *sideHash) Read(p []byte) (int, error) {
	if len(s.out) == 0 && s.err == nil {
		s.start.Do(func() { go s.hash() })
		s.fill()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	if len(s.out) == 0 && s.err != nil {
		return n, s.err
	}
	return n, nil
}

// fill reads the next block from the client and hands it to the hasher; at
// the end of the body it checks the sum.
func (s *sideHash) fill() {
	// The block read into must not be with the hasher: the others may be.
	if err := s.wait(sideHashBlocks - 1); err != nil {
		s.err = err
		return
	}
	if s.bufs[s.next] == nil {
		s.bufs[s.next] = make([]byte, s.size)
	}
	buf := s.bufs[s.next]
	n, err := s.src.Read(buf)
	if n > 0 {
		s.next = (s.next + 1) % sideHashBlocks
		s.pending++
		s.todo <- buf[:n]
		s.out = buf[:n]
	}
	if err == io.EOF {
		err = s.finish()
	}
	s.err = err
}

// finish waits for the last blocks to be hashed and compares the sum: io.EOF
// when it matches.
func (s *sideHash) finish() error {
	if err := s.wait(0); err != nil {
		return err
	}
	s.stopped.Do(func() { close(s.stop) })
	if got := s.h.Sum(nil); !hmac.Equal(got, s.want) {
		return contentSHA256Mismatch(hex.EncodeToString(s.want), hex.EncodeToString(got))
	}
	return io.EOF
}

// Close stops the hasher: the transport closes the body it sent, or gave up
// on. It does not close the client's body: the server does.
func (s *sideHash) Close() error {
	s.stopped.Do(func() { close(s.stop) })
	return nil
}
