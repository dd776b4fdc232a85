package integration_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// TestIntegrationCorruptUploadsStoreNothing sends uploads whose body does not
// match what was signed or declared, 1 MiB each so that most of the body has
// gone upstream when the proxy finds out: the proxy must abort the upstream
// request so that versitygw stores nothing, and answer as versitygw does. With
// WithUpstreamPayloadCheck a mismatching hex SHA-256 body reaches versitygw
// whole, and versitygw's own check must refuse it.
func TestIntegrationCorruptUploadsStoreNothing(t *testing.T) {
	t.Parallel()
	t.Run("checked by the proxy", func(t *testing.T) {
		t.Parallel()
		itgCorruptUploads(t, newItgEnv(t, itgConfig{}))
	})
	// The hex SHA-256 cases are left to versitygw's own check.
	t.Run("payload hash checked upstream", func(t *testing.T) {
		t.Parallel()
		itgCorruptUploads(t, newItgEnv(t, itgConfig{opts: []proxy.Option{proxy.WithUpstreamPayloadCheck(true)}}))
	})
}

func itgCorruptUploads(t *testing.T, e *itgEnv) {
	ctx := t.Context()
	e.createBuckets(t)
	data := itgRandom(1<<20, 7)
	other := itgRandom(1<<20, 8)

	// The control: the same request with an intact body is stored.
	intact := e.both(t, "intact put", "", func(s *itgSide) string {
		o := itgRawPut(ctx, s, s.buckets[0], "intact", itgSHA256(data), nil, data, false)
		defer itgDelete(ctx, s.c, s.buckets[0], "intact")
		return o + "; then head: " + itgHead(ctx, s.c, s.buckets[0], "intact")
	})
	require.True(t, strings.HasPrefix(intact, "200; then head: ok size 1048576"), intact)

	cases := []struct {
		name        string
		payloadHash string
		header      http.Header
		body        []byte
		cut         bool // the client goes away 100 bytes before the end
	}{
		{"sha256 of another body", itgSHA256(other), nil, data, false},
		{"unsigned trailer with a wrong CRC32", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", http.Header{
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data))},
			"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
		}, itgAWSChunked(data, 64<<10, "x-amz-checksum-crc32:AAAAAA=="), false},
		{"unsigned trailer, shorter than declared", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", http.Header{
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data) + 1)},
			"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
		}, itgAWSChunked(data, 64<<10, "x-amz-checksum-crc32:"+itgCRC32(data)), false},
		{"unsigned trailer, client goes away", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", http.Header{
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data))},
			"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
		}, itgAWSChunked(data, 64<<10, "x-amz-checksum-crc32:"+itgCRC32(data)), true},
		{"sha256, client goes away", itgSHA256(data), nil, data, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("corrupt/%d", i)
			defer func() { // so that a leftover does not also fail the bucket's deletion
				for _, s := range e.sides() {
					_ = itgDelete(ctx, s.c, s.buckets[0], key)
				}
			}()
			out := e.both(t, "corrupt put", "", func(s *itgSide) string {
				o := itgRawPut(ctx, s, s.buckets[0], key, tc.payloadHash, tc.header, tc.body, tc.cut)
				time.Sleep(100 * time.Millisecond) // let the server finish with a cut request
				return o + "; then head: " + itgHead(ctx, s.c, s.buckets[0], key)
			})
			if !strings.HasSuffix(out, "then head: ERR 404 NotFound") {
				t.Errorf("a corrupt upload through the proxy left an object behind: %s", out)
			}
		})
	}
	e.deleteBuckets(t)
}

// itgRawPut sends a PutObject signed by hand with the side's keys, for bodies
// the SDK will not produce. It returns the status and S3 error code.
func itgRawPut(ctx context.Context, s *itgSide, bucket, key, payloadHash string, h http.Header, body []byte, cut bool) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+bucket+"/"+key, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	if cut {
		req.Body = io.NopCloser(&itgCutReader{r: bytes.NewReader(body), n: len(body) - 100})
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if err := itgSign(ctx, s, req, payloadHash); err != nil {
		return "sign: " + err.Error()
	}
	return itgDo(s, req)
}

// itgDo sends a request of the side and returns "200" or the status and S3
// error code.
func itgDo(s *itgSide, req *http.Request) string {
	resp, err := s.hc.Do(req)
	if errors.Is(err, errItgCut) {
		return "client went away"
	}
	if err != nil {
		return "ERR " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return "200"
	}
	var e struct{ Code string }
	_ = xml.Unmarshal(b, &e)
	return fmt.Sprintf("ERR %d %s", resp.StatusCode, e.Code)
}

// itgAWSChunked frames data as an unsigned aws-chunked body with one trailer.
func itgAWSChunked(data []byte, chunk int, trailer string) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(chunk, len(data))
		fmt.Fprintf(&b, "%x\r\n", n)
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	b.WriteString("0\r\n" + trailer + "\r\n\r\n")
	return b.Bytes()
}

func itgSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func itgCRC32(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

var errItgCut = errors.New("client went away")

// itgCutReader fails after n bytes, as a client whose connection drops.
type itgCutReader struct {
	r io.Reader
	n int
}

func (c *itgCutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errItgCut
	}
	n, err := c.r.Read(p[:min(len(p), c.n)])
	c.n -= n
	return n, err
}
