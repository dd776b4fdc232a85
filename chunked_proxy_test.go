package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// signedChunkedPut builds a PUT with a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body
// the way minio-go sends it over http: the headers signed with the seed
// signature, then each chunk signed in a chain (with the AWS SDK's stream
// signer), tamper applied to the encoded body last.
func signedChunkedPut(t *testing.T, path string, payload []byte, chunk int, tamper func([]byte) []byte) *http.Request {
	return signedChunkedPutLen(t, path, payload, chunk, tamper, true)
}

// signedChunkedPutLen is signedChunkedPut; without withLength the request is
// signed without Content-Length, as sent with Transfer-Encoding: chunked.
func signedChunkedPutLen(t *testing.T, path string, payload []byte, chunk int, tamper func([]byte) []byte, withLength bool) *http.Request {
	t.Helper()
	const mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	r := httptest.NewRequest(http.MethodPut, path, nil)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	var chunks [][]byte // the data chunks, then the empty final one
	for off := 0; off < len(payload); off += chunk {
		chunks = append(chunks, payload[off:min(off+chunk, len(payload))])
	}
	chunks = append(chunks, nil)
	var encodedLen int
	for _, c := range chunks {
		encodedLen += len(strconv.FormatInt(int64(len(c)), 16)) + len(";chunk-signature=") + 64 + 2 + len(c) + 2
	}
	r.ContentLength = int64(encodedLen)
	if !withLength {
		r.ContentLength = -1
	}
	clientSign(t, r, mode)
	auth := r.Header.Get("Authorization")
	seed, err := hex.DecodeString(auth[strings.LastIndex(auth, "=")+1:])
	require.NoError(t, err)
	ss := v4.NewStreamSigner(aws.Credentials{AccessKeyID: unitKey, SecretAccessKey: unitSecret}, "s3", "us-east-1", seed)
	var body bytes.Buffer
	for _, data := range chunks {
		sig, err := ss.GetSignature(context.Background(), nil, data, fixedNow)
		require.NoError(t, err)
		fmt.Fprintf(&body, "%x;chunk-signature=%x\r\n", len(data), sig)
		body.Write(data)
		body.WriteString("\r\n")
	}
	require.Equal(t, encodedLen, body.Len())
	b := body.Bytes()
	if tamper != nil {
		b = tamper(b)
	}
	r.Body = httpBody(b)
	return r
}

// unsignedTrailerPut builds a STREAMING-UNSIGNED-PAYLOAD-TRAILER PUT with a
// CRC32 trailer, as aws-cli ≥ 2.23 and boto3 ≥ 1.36 send over https.
func unsignedTrailerPut(t *testing.T, path string, payload []byte, chunk int, checksum []byte) *http.Request {
	t.Helper()
	var body bytes.Buffer
	for off := 0; off < len(payload); off += chunk {
		n := min(chunk, len(payload)-off)
		fmt.Fprintf(&body, "%x\r\n", n)
		body.Write(payload[off : off+n])
		body.WriteString("\r\n")
	}
	if checksum == nil {
		checksum = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload))
	}
	fmt.Fprintf(&body, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", base64.StdEncoding.EncodeToString(checksum))
	r := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body.Bytes()))
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32")
	clientSign(t, r, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	return r
}

func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestChunkedBodiesFramedAgainForUpstream(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // 320,000 bytes: several 64 KiB chunks
	crc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload)))
	signed := func(chunk int) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request { return signedChunkedPut(t, "/bucket/chunked", payload, chunk, nil) }
	}
	// Signed chunks go upstream on the client's boundaries, sharing their
	// SHA-256, when the client's chunks are from 8 to 256 KiB; in 64 KiB
	// chunks otherwise, hashed again. Unsigned chunks go in 64 KiB chunks.
	for _, c := range []struct {
		name, mode, trailer string
		req                 func(t *testing.T) *http.Request
		upstreamChunk       int
	}{
		{"signed 64 KiB chunks are signed again for the upstream keys", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", signed(64 << 10), 64 << 10},
		{"signed 8 KiB chunks", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", signed(8 << 10), 8 << 10},
		{"signed chunks off the 64 KiB boundaries", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", signed(100_000), 100_000},
		{"signed chunks of the largest size followed", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", signed(256 << 10), 256 << 10},
		{"signed chunks too small to follow", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", signed(4000), 64 << 10},
		{"signed chunks too large to follow", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", signed(300_000), 64 << 10},
		{"an unsigned trailer goes on with its verified checksum", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32:" + crc,
			func(t *testing.T) *http.Request {
				return unsignedTrailerPut(t, "/bucket/chunked", payload, 100_000, nil)
			}, 64 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			p := newProxy(t, up)
			w := serve(p, c.req(t))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			got := up.last(t)
			require.True(t, got.SigOK, got.SigErr)
			assert.True(t, bytes.Equal(payload, got.Body), "the upstream decodes the exact payload")
			assert.Equal(t, c.trailer, got.Trailer)
			assert.Equal(t, c.mode, got.Header.Get("X-Amz-Content-Sha256"))
			assert.Equal(t, "aws-chunked", got.Header.Get("Content-Encoding"))
			assert.Equal(t, strconv.Itoa(len(payload)), got.Header.Get("X-Amz-Decoded-Content-Length"))
			assert.Equal(t, c.upstreamChunk, got.FirstChunk, "the upstream's first chunk size")
		})
	}
}

// A bearer (IBM IAM) upstream cannot get signed chunks: it gets the plain,
// verified payload.
func TestSignedChunksPlainForBearerUpstream(t *testing.T) {
	up := newFakeUpstream(t)
	clk := testkit.NewClock(fixedNow)
	iam := testkit.NewIAM(t, clk.Now, "the-api-key")
	p := newProxy(t, up,
		proxy.WithBuckets(proxy.Bucket{Name: "ibm-bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "the-api-key"}}),
		proxy.WithIAMEndpoint("http://iam.test/identity/token"),
		proxy.WithTransport(routes(up, iam)),
	)
	payload := bytes.Repeat([]byte("p"), 150_000)
	w := serve(p, signedChunkedPut(t, "/ibm-bucket/k", payload, 64<<10, nil))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got := up.last(t)
	assert.True(t, bytes.Equal(payload, got.Body))
	assert.Equal(t, strconv.Itoa(len(payload)), got.Header.Get("Content-Length"))
	assert.Empty(t, got.Header.Get("Content-Encoding"))
	assert.Empty(t, got.Header.Get("X-Amz-Decoded-Content-Length"))
}

func TestTamperedChunkedBodiesNeverStored(t *testing.T) {
	payload := bytes.Repeat([]byte("z"), 200_000)
	flip := func(at func(b []byte) int) func([]byte) []byte {
		return func(b []byte) []byte {
			c := bytes.Clone(b)
			c[at(c)] ^= 1
			return c
		}
	}
	cases := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		code   string
		early  bool // refused before the upstream is contacted
	}{
		{"byte in the first chunk", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/bucket/k", payload, 64<<10, flip(func(b []byte) int { return 200 }))
		}, 403, "SignatureDoesNotMatch", false},
		{"byte in the last chunk", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/bucket/k", payload, 64<<10, flip(func(b []byte) int { return len(b) - 100 - 90 }))
		}, 403, "SignatureDoesNotMatch", false},
		{"chunk signature", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/bucket/k", payload, 64<<10, flip(func(b []byte) int {
				return bytes.Index(b, []byte("chunk-signature=")) + 20
			}))
		}, 403, "SignatureDoesNotMatch", false},
		{"truncated body", func(t *testing.T) *http.Request {
			return signedChunkedPutLen(t, "/bucket/k", payload, 64<<10, func(b []byte) []byte { return b[:len(b)/2] }, false)
		}, 400, "IncompleteBody", false},
		// The first chunk-size line is read before the upstream request is made.
		{"malformed first chunk size", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/bucket/k", payload, 64<<10, func(b []byte) []byte {
				return append([]byte("1x000"), b[len("10000"):]...)
			})
		}, 400, "InvalidRequest", true},
		{"first chunk larger than the declared length", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/bucket/k", payload, 64<<10, func(b []byte) []byte {
				return append([]byte("fffff"), b[len("10000"):]...)
			})
		}, 400, "IncompleteBody", true},
		{"no body at all", func(t *testing.T) *http.Request {
			return signedChunkedPutLen(t, "/bucket/k", payload, 64<<10, func(b []byte) []byte { return nil }, false)
		}, 400, "IncompleteBody", true},
		{"trailer checksum", func(t *testing.T) *http.Request {
			return unsignedTrailerPut(t, "/bucket/k", payload, 64<<10, []byte{1, 2, 3, 4})
		}, 400, "BadDigest", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			p := newProxy(t, up)
			srv := httptest.NewServer(p) // a real server: the upstream request must be aborted for real
			defer srv.Close()
			r := c.req(t)
			out, err := http.NewRequest(r.Method, srv.URL+r.URL.Path, r.Body)
			require.NoError(t, err)
			out.Header = r.Header
			out.Host = r.Host
			out.ContentLength = r.ContentLength // -1 for the truncated body: Transfer-Encoding chunked
			resp, err := http.DefaultClient.Do(out)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			assert.Equal(t, c.status, resp.StatusCode, b.String())
			assert.Equal(t, c.code, s3Code(b.String()))
			assert.Zero(t, completeRequests(up), "the object must not exist upstream")
			if c.early {
				assert.Empty(t, up.requests(), "nothing reaches the upstream")
			}
		})
	}
}

// Large signed bodies, whose chunks are hashed beside the copy when a core is
// to spare, reach the upstream decoded and signed again exactly as they do
// hashed in line, in the client's chunks of 64 KiB and in chunks of 1 KiB and
// 1 MiB, which the proxy frames in 64 KiB (a hasher behind a reused buffer
// once failed the 1 MiB ones, and the 1 KiB ones hung); a byte changed in any
// chunk stores nothing.
func TestLargeSignedChunkedBodies(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: 49 chunks of 64 KiB
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("GOMAXPROCS %d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			for _, chunk := range []int{1 << 10, 64 << 10, 1 << 20} {
				up := newFakeUpstream(t)
				p := newProxy(t, up)
				w := serve(p, signedChunkedPut(t, "/bucket/big", payload, chunk, nil))
				require.Equal(t, http.StatusOK, w.Code, "chunks of %d: %s", chunk, w.Body.String())
				got := up.last(t)
				require.True(t, got.SigOK, got.SigErr)
				assert.True(t, bytes.Equal(payload, got.Body), "chunks of %d: the upstream decodes the exact payload, its chunk signatures checked", chunk)
			}

			for _, at := range []func(b []byte) int{
				func(b []byte) int { return 300 },
				func(b []byte) int { return len(b) / 2 },
				func(b []byte) int { return len(b) - 100 - 90 },
			} {
				up := newFakeUpstream(t)
				p := newProxy(t, up)
				srv := httptest.NewServer(p)
				r := signedChunkedPut(t, "/bucket/big", payload, 64<<10, func(b []byte) []byte {
					c := bytes.Clone(b)
					c[at(c)] ^= 1
					return c
				})
				out, err := http.NewRequest(r.Method, srv.URL+r.URL.Path, r.Body)
				require.NoError(t, err)
				out.Header, out.Host, out.ContentLength = r.Header, r.Host, r.ContentLength
				resp, err := http.DefaultClient.Do(out)
				require.NoError(t, err)
				var b bytes.Buffer
				_, _ = b.ReadFrom(resp.Body)
				resp.Body.Close()
				srv.Close()
				assert.Equal(t, "SignatureDoesNotMatch", s3Code(b.String()), b.String())
				assert.Zero(t, completeRequests(up), "the object must not exist upstream")
			}
		})
	}
}
