package proxy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// plainBucket is a static bucket on up whose server takes no aws-chunked
// bodies (Endpoint.PlainUploads).
func plainBucket(up *fakeUpstream, name string, c proxy.Credentials) proxy.Bucket {
	e := up.endpoint()
	e.PlainUploads = true
	return proxy.Bucket{Name: name, Endpoint: e, Credentials: c}
}

var upstreamHMAC = proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}

// An upstream of plain uploads gets every aws-chunked body decoded, verified
// by the proxy: a plain body of the decoded length, signed UNSIGNED-PAYLOAD,
// without the aws-chunked headers or the trailer's checksum.
func TestPlainUploads(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20_000)
	clk := testkit.NewClock(fixedNow)
	for _, c := range []struct {
		name   string
		bucket string
		req    func(t *testing.T) *http.Request
	}{
		{"signed chunks", "plain", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/plain/k", payload, 64<<10, nil)
		}},
		{"unsigned chunks with a CRC32 trailer", "plain", func(t *testing.T) *http.Request {
			return unsignedTrailerPut(t, "/plain/k", payload, 100_000, nil)
		}},
		{"signed chunks, bearer upstream", "plain-iam", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/plain-iam/k", payload, 64<<10, nil)
		}},
		{"unsigned trailer, bearer upstream", "plain-iam", func(t *testing.T) *http.Request {
			return unsignedTrailerPut(t, "/plain-iam/k", payload, 64<<10, nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			iam := testkit.NewIAM(t, clk.Now, "the-api-key")
			p := newProxy(t, up, proxy.WithBuckets(plainBucket(up, "plain", upstreamHMAC),
				plainBucket(up, "plain-iam", proxy.Credentials{APIKey: "the-api-key"})),
				proxy.WithIAMEndpoint("http://iam.test/identity/token"), proxy.WithTransport(routes(up, iam)))
			w := serve(p, c.req(t))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			got := up.last(t)
			assert.True(t, bytes.Equal(payload, got.Body), "the plain payload")
			assert.Empty(t, got.Trailer)
			assert.Equal(t, strconv.Itoa(len(payload)), got.Header.Get("Content-Length"))
			for _, h := range []string{"Content-Encoding", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer",
				"X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Crc32", "Transfer-Encoding"} {
				assert.Empty(t, got.Header.Get(h), h)
			}
			if c.bucket == "plain" {
				assert.True(t, got.SigOK, got.SigErr)
				assert.Equal(t, "UNSIGNED-PAYLOAD", got.Header.Get("X-Amz-Content-Sha256"))
			} else {
				assert.Equal(t, "Bearer tok-1", got.Header.Get("Authorization"))
				assert.Empty(t, got.Header.Get("X-Amz-Content-Sha256"))
			}
		})
	}
}

// A checksum the client sent as a header still goes upstream as one; a
// trailer the proxy cannot verify (XXHASH) is refused, for such an upstream
// only, before anything goes upstream.
func TestPlainUploadsChecksums(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithBuckets(plainBucket(up, "plain", upstreamHMAC)))
	payload := []byte("checksummed in a header")
	crc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(payload)))
	r := httptest.NewRequest(http.MethodPut, "/plain/h", bytes.NewReader(payload))
	r.Header.Set("X-Amz-Checksum-Crc32", crc)
	clientSign(t, r, sha256Hex(payload))
	require.Equal(t, http.StatusOK, serve(p, r).Code)
	assert.Equal(t, crc, up.last(t).Header.Get("X-Amz-Checksum-Crc32"))

	xxhash := func(bucket string) *http.Request {
		body := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-xxhash64:AAAAAAAAAAA=\r\n\r\n", len(payload), payload)
		r := httptest.NewRequest(http.MethodPut, "/"+bucket+"/x", bytes.NewReader([]byte(body)))
		r.Header.Set("Content-Encoding", "aws-chunked")
		r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-xxhash64")
		clientSign(t, r, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		return r
	}
	before := len(up.requests())
	w := serve(p, xxhash("plain"))
	assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	assert.Equal(t, "InvalidRequest", s3Code(w.Body.String()))
	assert.Len(t, up.requests(), before, "nothing forwarded")
	w = serve(p, xxhash("bucket"))
	assert.Equal(t, http.StatusOK, w.Code, "an upstream that decodes aws-chunked verifies it itself: "+w.Body.String())
	assert.Equal(t, "x-amz-checksum-xxhash64:AAAAAAAAAAA=", up.last(t).Trailer)
}

// A body that fails the proxy's check at its end is never stored by an
// upstream of plain uploads: the proxy holds its last byte back and aborts.
func TestPlainUploadsTamperedNeverStored(t *testing.T) {
	payload := bytes.Repeat([]byte("z"), 200_000)
	for _, c := range []struct {
		name string
		req  func(t *testing.T) *http.Request
		code string
	}{
		{"byte in the last signed chunk", func(t *testing.T) *http.Request {
			return signedChunkedPut(t, "/plain/k", payload, 64<<10, func(b []byte) []byte {
				b = bytes.Clone(b)
				b[len(b)-100-90] ^= 1
				return b
			})
		}, "SignatureDoesNotMatch"},
		{"trailer checksum", func(t *testing.T) *http.Request {
			return unsignedTrailerPut(t, "/plain/k", payload, 64<<10, []byte{1, 2, 3, 4})
		}, "BadDigest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			p := newProxy(t, up, proxy.WithBuckets(plainBucket(up, "plain", upstreamHMAC)))
			srv := httptest.NewServer(p) // a real server: the upstream request must be aborted for real
			defer srv.Close()
			r := c.req(t)
			out, err := http.NewRequest(r.Method, srv.URL+r.URL.Path, r.Body)
			require.NoError(t, err)
			out.Header, out.Host, out.ContentLength = r.Header, r.Host, r.ContentLength
			resp, err := http.DefaultClient.Do(out)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			assert.Equal(t, c.code, s3Code(b.String()), b.String())
			for _, s := range up.requests() {
				assert.Less(t, len(s.Body), len(payload), "the upstream never got the whole body")
			}
		})
	}
}
