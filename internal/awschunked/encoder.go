package awschunked

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/osproxy/proxy/internal/s3err"
	"sync"
)

// ChunkSize is the size of the chunks the proxy frames upstream bodies
// in: the data of one chunk is buffered to frame (and sign) it. Signed chunks
// follow the client's chunk size instead when it is from minFollowedChunk to
// maxFollowedChunk (see firstChunkSize).
const (
	ChunkSize        = 64 << 10
	minFollowedChunk = 8 << 10
	maxFollowedChunk = 256 << 10
)

var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// Encoder frames a verified payload as an aws-chunked body for the
// upstream, so that the upstream itself can tell a complete body from a cut
// one: STREAMING-UNSIGNED-PAYLOAD-TRAILER carrying the client's verified
// checksum trailer, or STREAMING-AWS4-HMAC-SHA256-PAYLOAD with every chunk
// signed for the upstream's keys. The final chunk and the trailer are only
// produced once src has returned io.EOF, that is once the client's body
// verified; any failure before is returned as is, and the upstream request is
// aborted without its final chunk.
type Encoder struct {
	src     *Reader
	trailer string    // trailer header name; "" for none
	chain   *Chain    // upstream chunk signing; nil for unsigned chunks
	pos     int64     // payload offset of the next chunk
	head    [160]byte // backing array of out: a chunk's size line, or the final chunk and trailer
	buf     *[]byte
	out     []byte // framed bytes not yet returned
	data    []byte // chunk data not yet returned, after out
	tail    []byte // CRLF after data
	done    bool
	err     error

	// Reading ahead (NewEncoder's ahead): a second buffer, and the
	// chunk read into one of them and not yet framed.
	ahead   bool
	spare   []byte
	held    []byte
	heldEnd bool // the payload ended, verified, after held
	started bool // held is set
}

// NewEncoder frames the payload src decodes in chunks of size bytes,
// signed in a chain from seed unless it is nil. With ahead, src's chunks are
// hashed beside the reads (Reader.hashBeside) and the encoder reads one
// chunk ahead of the one it frames, so that the hash of one chunk runs while
// the previous one is written upstream and the next is read.
func NewEncoder(src *Reader, trailer string, seed *Chain, size int, ahead bool) *Encoder {
	e := &Encoder{src: src, trailer: trailer, chain: seed}
	if size == ChunkSize {
		e.buf = chunkBuffers.Get().(*[]byte)
	} else {
		b := make([]byte, size)
		e.buf = &b
	}
	if ahead && seed != nil && src.verify {
		src.hashBeside()
		e.ahead, e.spare = true, make([]byte, size)
	}
	return e
}

// Close stops what the encoder started beside it (the transport closes the
// body it sent, or gave up on).
func (e *Encoder) Close() error {
	e.src.close()
	return nil
}

// EncodedLength is the length of the aws-chunked encoding of n payload bytes
// framed by a Encoder in chunks of chunkSize bytes; trailerLen is the
// length of the trailer line without its CRLF (0 for none).
func EncodedLength(n int64, chunkSize int, signed bool, trailerLen int) int64 {
	const sigExt = len(";chunk-signature=") + 64
	chunk := func(size int64) int64 {
		l := int64(len(strconv.FormatInt(size, 16))) + 2 + size + 2
		if signed {
			l += int64(sigExt)
		}
		return l
	}
	full := n / int64(chunkSize)
	total := full * chunk(int64(chunkSize))
	if rest := n % int64(chunkSize); rest > 0 {
		total += chunk(rest)
	}
	total += chunk(0) // the final chunk: "0[;chunk-signature=…]\r\n" and, without trailer, "\r\n"
	if trailerLen > 0 {
		total += int64(trailerLen) + 2
	}
	return total
}

// TrailerLength is the length of "name:base64-value" for a checksum trailer.
func TrailerLength(name string) int {
	a := LookupChecksum(name)
	if a == nil {
		return 0
	}
	return len(name) + 1 + base64.StdEncoding.EncodedLen(a.Size)
}

// Read fills p with as much of the encoding as it can: a chunk's end and the
// next chunk's start go out together rather than as a short read (a small
// write upstream of its own). An error comes after the bytes framed before it.
func (e *Encoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.out) == 0 && len(e.data) == 0 && len(e.tail) == 0 {
			switch {
			case e.err != nil:
				if n > 0 {
					return n, nil
				}
				return 0, e.err
			case e.done:
				e.err = io.EOF
				if len(*e.buf) == ChunkSize {
					chunkBuffers.Put(e.buf)
				}
			default:
				e.err = e.frame()
			}
			continue
		}
		for _, seg := range []*[]byte{&e.out, &e.data, &e.tail} {
			c := copy(p[n:], *seg)
			*seg = (*seg)[c:]
			n += c
		}
	}
	return n, nil
}

// frame reads the next chunk of payload and frames it, or the final chunk and
// trailer once the payload has ended and verified.
func (e *Encoder) frame() error {
	if e.ahead {
		return e.frameAhead()
	}
	data, end, err := e.next(*e.buf)
	switch {
	case err != nil:
		return err
	case len(data) > 0:
		return e.chunk(data) // at the end, the final chunk comes on the next call
	case !end:
		return nil
	}
	return e.final()
}

// frameAhead is frame one chunk behind the reads: it reads the next chunk
// into the buffer that is free, then frames the chunk read before, whose
// digest the side hasher has been computing meanwhile.
func (e *Encoder) frameAhead() error {
	if !e.started {
		data, end, err := e.next(*e.buf)
		if err != nil {
			return err
		}
		e.held, e.heldEnd, e.started = data, end, true
	}
	if !e.heldEnd {
		// The free buffer is the one whose chunk went out before: Read frames
		// only once all of it was returned.
		free := e.spare
		if len(e.held) > 0 && &e.held[0] == &free[0] {
			free = *e.buf
		}
		data, end, err := e.next(free)
		if err != nil {
			return err
		}
		if err := e.chunk(e.held); err != nil {
			return err
		}
		e.held, e.heldEnd = data, end
		return nil
	}
	if len(e.held) > 0 {
		held := e.held
		e.held = nil
		return e.chunk(held)
	}
	return e.final()
}

// next reads the next chunk of payload into buf: its data, and whether the
// payload ended (and so verified) with it.
func (e *Encoder) next(buf []byte) (data []byte, end bool, err error) {
	k, err := io.ReadFull(e.src, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return buf[:k], true, nil
	case err != nil:
		return nil, false, err
	}
	return buf[:k], false, nil
}

// final frames the final chunk and the trailer: the payload ended and
// verified (src returns io.EOF only then).
func (e *Encoder) final() error {
	if err := e.chunk(nil); err != nil {
		return err
	}
	if e.trailer != "" {
		line := e.src.TrailerLine()
		if line == "" || !strings.HasPrefix(line, e.trailer+":") {
			return s3err.InternalError.With(errors.New("aws-chunked: verified trailer missing"))
		}
		e.out = append(e.out, line...)
		e.out = append(e.out, "\r\n"...)
	}
	e.out = append(e.out, "\r\n"...)
	e.tail = nil
	e.done = true
	return nil
}

// chunk frames one chunk: its size line (signed when e.chain is set), its data
// and CRLF; a nil data is the final chunk, whose CRLF the caller writes.
func (e *Encoder) chunk(data []byte) error {
	e.out = strconv.AppendInt(e.head[:0], int64(len(data)), 16)
	if e.chain != nil {
		if err := e.sign(data); err != nil {
			return err
		}
		e.out = append(e.out, ";chunk-signature="...)
		e.out = append(e.out, e.chain.prev[:]...)
	}
	e.pos += int64(len(data))
	e.out = append(e.out, "\r\n"...)
	e.data = data
	if data != nil {
		e.tail = crlf
	}
	return nil
}

var crlf = []byte("\r\n")

// sign computes the signature of a chunk, chained from the previous one. The
// data's SHA-256 is the one the client's chunk signature was checked with when
// the chunk has the client's boundaries.
func (e *Encoder) sign(data []byte) error {
	sum, ok, err := e.src.verifiedDigest(e.pos, e.pos+int64(len(data)))
	if err != nil {
		return err
	}
	if !ok {
		sum = sha256.Sum256(data)
	}
	e.chain.advance(e.chain.sign(false, sum[:]))
	return nil
}
