package proxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A body hashed beside its copy reads as the body it is, ends with io.EOF
// only when its SHA-256 is the one signed, and, under a holdback, never
// gives its last byte otherwise. The largest body goes twice round the ring
// of blocks (with -race, a block read into while it is hashed is a race).
func TestSideHash(t *testing.T) {
	for _, n := range []int{0, 1, 1000, sideHashBlock - 1, sideHashBlock, 3*sideHashBlock + 17, 2*sideHashBlocks*sideHashBlock + 17} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(rand.N(256))
		}
		sum := sha256.Sum256(body)
		for _, bufSize := range []int{1, 7, 4 << 10, 32 << 10, 1 << 20} {
			// Reads of every size from the client; copies of bufSize out.
			src := iotest.HalfReader(bytes.NewReader(body))
			sh := newSideHash(src, int64(n), sum[:])
			got, err := readAllBuf(newHoldback(sh), bufSize)
			require.NoError(t, err, "n=%d buf=%d", n, bufSize)
			require.True(t, bytes.Equal(body, got), "n=%d buf=%d", n, bufSize)
			require.NoError(t, sh.Close())

			if n == 0 {
				continue
			}
			bad := sum
			bad[0] ^= 1
			sh = newSideHash(iotest.HalfReader(bytes.NewReader(body)), -1, bad[:])
			got, err = readAllBuf(newHoldback(sh), bufSize)
			var e *Error
			require.ErrorAs(t, err, &e, "n=%d buf=%d", n, bufSize)
			assert.Equal(t, "XAmzContentSHA256Mismatch", e.Code)
			assert.Len(t, got, n-1, "the last byte is never given")
		}
	}
}

// A body closed while it is read (the transport gave up) stops its hasher:
// the read fails, and no goroutine is left (TestMain's leak check).
func TestSideHashClosed(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(make([]byte, 300<<10))
		_ = pw.CloseWithError(errors.New("client gone"))
	}()
	sum := sha256.Sum256(nil)
	sh := newSideHash(pr, -1, sum[:])
	buf := make([]byte, 64<<10)
	_, err := sh.Read(buf)
	require.NoError(t, err)
	require.NoError(t, sh.Close())
	for err == nil {
		_, err = sh.Read(buf)
	}
	assert.Error(t, err)
	assert.NotErrorIs(t, err, io.EOF)
}

// readAllBuf reads r to its end with reads of size bytes.
func readAllBuf(r io.Reader, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
