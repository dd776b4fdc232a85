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
// gives its last byte otherwise.
func TestSideHash(t *testing.T) {
	for _, n := range []int{0, 1, 1000, sideHashBlock - 1, sideHashBlock, 3*sideHashBlock + 17} {
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
// the read fails, and no goroutine is left (TestMain's goleak).
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

// encodeUpstream decodes w and frames it again for an upstream, with signed
// chunks chained from the seed, in or ahead of the reads, with reads of
// readSize bytes.
func encodeUpstream(t *testing.T, w *wire, ahead bool, readSize int) ([]byte, error) {
	t.Helper()
	cr := newChunkedReader(iotest.HalfReader(bytes.NewReader(w.body)), w.opts)
	size, err := cr.firstChunkSize()
	require.NoError(t, err)
	chain, ok := newChunkChain(docSigner(testSeed))
	require.True(t, ok)
	e := newChunkEncoder(cr, "", chain, size, ahead)
	defer e.Close()
	require.Equal(t, ahead, cr.side != nil)
	return readAllBuf(e, readSize)
}

// Signed chunks hashed beside the reads, one chunk ahead of the framing: the
// upstream gets exactly what the in-line encoder sends, and a chunk that
// fails its signature anywhere stops the body before its final chunk.
func TestChunkEncoderAhead(t *testing.T) {
	for _, chunk := range []int{8 << 10, 64 << 10, 100_000, 256 << 10} {
		for _, n := range []int{1, chunk - 1, chunk, chunk + 1, 3*chunk + 5, (1 << 20) + 3} {
			payload := randomPayload(n, uint64(n+chunk))
			w := encodeWire(t, payload, wireOpts{signed: true, chunkSize: chunk})
			want, err := encodeUpstream(t, w, false, 32<<10)
			require.NoError(t, err)
			for _, readSize := range []int{1000, 256 << 10} {
				got, err := encodeUpstream(t, w, true, readSize)
				require.NoError(t, err, "chunk %d n %d", chunk, n)
				require.True(t, bytes.Equal(want, got), "chunk %d n %d read %d", chunk, n, readSize)
			}
			// A byte changed in the first, a middle and the last chunk.
			for _, k := range []int{0, len(w.data) / 2, len(w.data) - 1} {
				bad := *w
				bad.body = bytes.Clone(w.body)
				bad.body[w.data[k][0]] ^= 1
				got, err := encodeUpstream(t, &bad, true, 64<<10)
				var e *Error
				require.ErrorAs(t, err, &e, "chunk %d n %d tampered %d", chunk, n, k)
				assert.Equal(t, "SignatureDoesNotMatch", e.Code)
				assert.NotContains(t, string(got), "\r\n0;chunk-signature=", "no final chunk upstream")
			}
		}
	}
}
