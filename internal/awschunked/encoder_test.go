package awschunked

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encodeUpstream decodes w and frames it again for an upstream, with signed
// chunks chained from the seed, in or ahead of the reads, with reads of
// readSize bytes.
func encodeUpstream(t *testing.T, w *wire, ahead bool, readSize int) ([]byte, error) {
	t.Helper()
	cr := NewReader(iotest.HalfReader(bytes.NewReader(w.body)), w.opts)
	size, err := cr.FirstChunkSize()
	require.NoError(t, err)
	chain, ok := NewChain(docSigner(testSeed))
	require.True(t, ok)
	e := NewEncoder(cr, "", chain, size, ahead)
	defer e.Close()
	require.Equal(t, ahead, cr.side != nil)
	out, err := drain(e, readSize)
	if err == io.EOF {
		err = nil
	}
	return out, err
}

// Signed chunks hashed beside the reads, up to 1 MiB ahead of the framing:
// the upstream gets exactly what the in-line encoder sends, and a chunk that
// fails its signature anywhere stops the body before its final chunk. The
// client's chunks are the encoder's from 8 to 256 KiB; smaller and larger
// ones are framed in 64 KiB chunks, so that a buffer holds part of a client
// chunk the hasher may not have reached (with -race, a buffer read into again
// too early is a race and a false SignatureDoesNotMatch), and chunks of 64
// bytes end hundreds at a time while the encoder reads ahead (their digests
// once filled the hasher's channel, and the upload hung).
func TestChunkEncoderAhead(t *testing.T) {
	for _, chunk := range []int{64, 4 << 10, 8 << 10, 64 << 10, 100_000, 256 << 10, 1 << 20} {
		for _, n := range []int{1, chunk - 1, chunk, chunk + 1, 3*chunk + 5, (1 << 20) + 3} {
			payload := randomPayload(n, uint64(n+chunk))
			w := encodeWire(t, payload, wireOpts{Signed: true, chunkSize: chunk})
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
				var e *s3err.Error
				require.ErrorAs(t, err, &e, "chunk %d n %d tampered %d", chunk, n, k)
				assert.Equal(t, "SignatureDoesNotMatch", e.Code)
				assert.NotContains(t, string(got), "\r\n0;chunk-signature=", "no final chunk upstream")
			}
		}
	}
}
