package awschunked

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
)

// Chain computes the chained signatures of aws-chunked bodies, one string
// to sign for chunks and trailers alike:
//
//	AWS4-HMAC-SHA256-PAYLOAD | AWS4-HMAC-SHA256-TRAILER
//	<amz date>
//	<scope>
//	<previous signature>
//	<hex SHA-256 of ""> (chunks only)
//	<hex SHA-256 of the chunk's data, or of the trailer's canonical lines>
//
// The client's chunks are verified with it (Reader) and the upstream's
// chunks signed (Encoder).
type Chain struct {
	mac       hash.Hash // HMAC-SHA256 with the signing key
	lines     []byte    // amzDate + "\n" + scope + "\n"
	prev      [64]byte  // hex of the previous signature
	hexDigest [64]byte  // scratch
	sum       [32]byte  // scratch for the HMAC
}

// Pieces of the strings to sign of chunks and trailers.
var (
	chunkAlgoLine   = []byte("AWS4-HMAC-SHA256-PAYLOAD\n")
	trailerAlgoLine = []byte("AWS4-HMAC-SHA256-TRAILER\n")
	emptyHashLine   = []byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n") // the hex SHA-256 of ""
	newline         = []byte{'\n'}
)

// NewChain starts a chain at the seed signature of s, in either case; it
// reports false when the seed is not 64 hex digits.
func NewChain(s *Signer) (*Chain, bool) {
	if len(s.Prev) != 64 || !isHex(s.Prev, false) {
		return nil, false
	}
	c := &Chain{mac: hmac.New(sha256.New, s.Key), lines: []byte(s.AmzDate + "\n" + s.Scope + "\n")}
	copy(c.prev[:], strings.ToLower(s.Prev))
	return c, true
}

// sign returns the signature of the next chunk (or of the trailer) over the
// SHA-256 digest of its data; it is valid until the next call.
func (c *Chain) sign(trailer bool, digest []byte) []byte {
	m := c.mac
	m.Reset()
	if trailer {
		m.Write(trailerAlgoLine)
	} else {
		m.Write(chunkAlgoLine)
	}
	m.Write(c.lines)
	m.Write(c.prev[:])
	m.Write(newline)
	if !trailer {
		m.Write(emptyHashLine)
	}
	hex.Encode(c.hexDigest[:], digest)
	m.Write(c.hexDigest[:])
	return m.Sum(c.sum[:0])
}

// advance chains from signature sig: the next chunk's string to sign holds it.
func (c *Chain) advance(sig []byte) { hex.Encode(c.prev[:], sig) }

// isHex reports whether s is made of hex digits only; lower refuses A-F.
func isHex[T string | []byte](s T, lower bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || !lower && 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
