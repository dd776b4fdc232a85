package awschunked

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/osproxy/proxy/internal/s3err"
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

	// Reading ahead (NewEncoder's ahead): a ring of buffers read into in
	// turn, the payload offset at which each one's last chunk ended, and the
	// chunks read and not yet framed, oldest first.
	ahead  bool
	size   int
	ring   [][]byte
	ends   []int64
	turn   int // the buffer the next read fills
	queue  [][]byte
	readTo int64 // payload bytes read
	ended  bool  // the payload ended, verified, with the last chunk read
}

// aheadBytes bounds the chunks an Encoder reads ahead of the one it frames:
// 1 MiB, from 2 to 16 chunks. With one chunk ahead, a hasher that lost its core
// for a moment stalled the copy.
const (
	aheadBytes     = 1 << 20
	minAheadChunks = 2
	maxAheadChunks = 16
)

// NewEncoder frames the payload src decodes in chunks of size bytes,
// signed in a chain from seed unless it is nil. With ahead, src's chunks are
// hashed beside the reads (Reader.hashBeside) and the encoder reads up to
// 1 MiB of chunks ahead of the one it frames, so that the hashes run while
// earlier chunks are written upstream and later ones are read. A buffer is
// read into again only once the hasher is done with what it held, whether or
// not the client's chunks are the encoder's.
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
		n := min(max(aheadBytes/size, minAheadChunks), maxAheadChunks)
		e.ahead, e.size = true, size
		e.ring, e.ends = make([][]byte, n), make([]int64, n)
		e.ring[0] = *e.buf
		e.queue = make([][]byte, 0, n)
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

// frameAhead is frame behind the reads: it reads chunks into the ring until
// it holds as many as the ring has buffers or the payload ended, then frames
// the oldest, whose digest the side hasher has been computing meanwhile.
// Read frames only once all of the chunk framed before was returned, so every
// buffer that holds no queued chunk is free but for the hasher.
func (e *Encoder) frameAhead() error {
	for !e.ended && len(e.queue) < len(e.ring) {
		k := e.turn
		if e.ring[k] == nil {
			e.ring[k] = make([]byte, e.size)
		}
		if err := e.src.waitHashed(e.ends[k]); err != nil {
			return err
		}
		data, end, err := e.next(e.ring[k])
		if err != nil {
			return err
		}
		e.readTo += int64(len(data))
		e.ends[k], e.turn = e.readTo, (k+1)%len(e.ring)
		if len(data) > 0 {
			e.queue = append(e.queue, data)
		}
		e.ended = end
	}
	if len(e.queue) > 0 {
		data := e.queue[0]
		e.queue = e.queue[:copy(e.queue, e.queue[1:])]
		return e.chunk(data)
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
