package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// TestFaultMalformedRequests sends, from a raw socket, what no well-behaved
// client sends: bad Authorization headers, broken aws-chunked framing, huge
// headers, headers that never end, paths that try to leave their bucket. The
// proxy runs in an http.Server configured as in production (ReadHeaderTimeout,
// MaxHeaderBytes) in front of versitygw. Each gets a 4xx answer, S3 XML where
// the proxy answers, nothing is stored, and the proxy serves on.
func TestFaultMalformedRequests(t *testing.T) {
	t.Parallel()
	v := versity(t, false)
	const bucket, other = "osp-fault-malformed", "osp-fault-other"
	o := oracle(t, v)
	ctx := context.Background()
	for _, b := range []string{bucket, other} {
		_, err := o.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		require.NoError(t, err)
	}
	require.NoError(t, oraclePut(ctx, o, other, "secret", []byte("top secret")))
	require.NoError(t, oraclePut(ctx, o, bucket, "plain", []byte("plain")))
	t.Cleanup(func() {
		for _, b := range []string{bucket, other} {
			_ = emptyBucket(context.Background(), o, b)
			_, _ = o.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(b)})
		}
	})
	const headerTimeout = time.Second
	srv := serveWith(t, newVGWProxy(t, v, []string{bucket, other}, debugLog()...), false, headerTimeout)
	addr := srv.addr()
	const timeout = 15 * time.Second

	// expect checks an answer's status and S3 code ("" for a non-S3
	// answer from net/http itself).
	expect := func(t *testing.T, what string, got rawResponse, status int, codes ...string) {
		t.Helper()
		t.Logf("%s: %s %q", what, got, got.message)
		if got.err != nil {
			t.Errorf("%s: %v", what, got.err)
			return
		}
		if got.status != status {
			t.Errorf("%s: status %d (%s), want %d", what, got.status, truncate(got.body, 200), status)
		}
		if len(codes) > 0 {
			if !hasCode(got, codes...) {
				t.Errorf("%s: code %q, want one of %q", what, got.code, codes)
			}
			if got.requestID == "" {
				t.Errorf("%s: no x-amz-request-id", what)
			}
		}
	}
	notStored := func(t *testing.T, key string) {
		t.Helper()
		if _, err := o.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); s3Code(err) != "404 NotFound" {
			t.Errorf("%q after a refused upload: %s, want 404 NotFound", key, s3Code(err))
		}
	}
	get := func(target string) string {
		return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nX-Amz-Date: %s\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\n",
			target, addr, time.Now().UTC().Format("20060102T150405Z"))
	}

	t.Run("bad Authorization", func(t *testing.T) {
		date := time.Now().UTC().Format("20060102")
		cred := clientKey + "/" + date + "/us-east-1/s3/aws4_request"
		sig := strings.Repeat("ab", 32)
		for _, tc := range []struct {
			name, auth string
			status     int
			codes      []string
		}{
			{"garbage after the algorithm", "AWS4-HMAC-SHA256 garbage", 400, []string{"AuthorizationHeaderMalformed"}},
			{"SigV2", "AWS " + clientKey + ":c2lnbmF0dXJl", 400, []string{"InvalidRequest"}},
			{"SigV4a", "AWS4-ECDSA-P256-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=" + sig, 501, []string{"NotImplemented"}},
			{"unknown algorithm", "Bearer abc", 400, []string{"InvalidArgument"}},
			{"service ec2 in the scope", "AWS4-HMAC-SHA256 Credential=" + clientKey + "/" + date + "/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig, 400, []string{"AuthorizationHeaderMalformed"}},
			{"short signature", "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=abc", 400, []string{"AuthorizationHeaderMalformed"}},
			{"host not signed", "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=x-amz-date, Signature=" + sig, 400, []string{"AuthorizationHeaderMalformed"}},
			{"60 KB of junk", "AWS4-HMAC-SHA256 " + strings.Repeat("x", 60<<10), 400, []string{"AuthorizationHeaderMalformed", "InvalidArgument"}},
		} {
			head := get("/"+bucket+"/plain") + "Authorization: " + tc.auth + "\r\n\r\n"
			expect(t, tc.name, roundTripRaw(addr, head, nil, timeout), tc.status, tc.codes...)
		}
		signed := func(key, secret string, at time.Time) string {
			return signRawAs(t, addr, http.MethodGet, "/"+bucket+"/plain", nil, "UNSIGNED-PAYLOAD", -1, key, secret, at).head
		}
		expect(t, "unknown access key", roundTripRaw(addr, signed("nobody", "x", time.Now()), nil, timeout), 403, "InvalidAccessKeyId")
		expect(t, "wrong secret", roundTripRaw(addr, signed(clientKey, "wrong", time.Now()), nil, timeout), 403, "SignatureDoesNotMatch")
		expect(t, "one hour skew", roundTripRaw(addr, signed(clientKey, clientSecret, time.Now().Add(-time.Hour)), nil, timeout), 403, "RequestTimeTooSkewed")
		tampered := strings.Replace(signed(clientKey, clientSecret, time.Now()), "/plain ", "/plaiN ", 1)
		expect(t, "path changed after signing", roundTripRaw(addr, tampered, nil, timeout), 403, "SignatureDoesNotMatch")
		unsignedMeta := strings.Replace(signed(clientKey, clientSecret, time.Now()), "\r\n\r\n", "\r\nX-Amz-Meta-Sneaky: 1\r\n\r\n", 1)
		expect(t, "an unsigned x-amz-* header", roundTripRaw(addr, unsignedMeta, nil, timeout), 403, "AccessDenied", "SignatureDoesNotMatch")
		both := strings.Replace(signed(clientKey, clientSecret, time.Now()), "/plain ", "/plain?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature="+sig+" ", 1)
		expect(t, "header and query signature", roundTripRaw(addr, both, nil, timeout), 400, "InvalidArgument")
		expect(t, "anonymous", roundTripRaw(addr, get("/"+bucket+"/plain")+"\r\n", nil, timeout), 403, "AccessDenied")
	})

	t.Run("bad aws-chunked framing", func(t *testing.T) {
		payload := randomBytes(200<<10, 9)
		const chunk = 64 << 10
		// signedPut returns the head for a signed aws-chunked PUT of a body of
		// wireLen bytes declaring decoded bytes, and the valid body.
		signedPut := func(key string, decoded int, wireLen int64) (*signedRequest, []byte) {
			h := http.Header{"X-Amz-Decoded-Content-Length": {fmt.Sprint(decoded)}, "Content-Encoding": {"aws-chunked"}}
			sr := signRaw(t, addr, http.MethodPut, "/"+bucket+"/"+key, h, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", wireLen)
			return sr, sr.signedChunks(payload, chunk)
		}
		valid := signedChunkedLength(len(payload), chunk)
		cases := []struct {
			name    string
			decoded int
			edit    func(sr *signedRequest, body []byte) []byte
			status  int
			codes   []string
		}{
			{"valid (control)", len(payload), func(_ *signedRequest, b []byte) []byte { return b }, 200, nil},
			{"non-hex chunk size", len(payload), func(_ *signedRequest, b []byte) []byte {
				return append([]byte("zz000"), b[5:]...)
			}, 400, []string{"InvalidRequest"}},
			{"no CRLF after the chunk data", len(payload), func(_ *signedRequest, b []byte) []byte {
				i := bytes.Index(b, []byte("\r\n")) + 2 + chunk
				return append(append(append([]byte{}, b[:i]...), "XX"...), b[i+2:]...)
			}, 400, []string{"InvalidRequest"}},
			{"a chunk signature flipped", len(payload), func(_ *signedRequest, b []byte) []byte {
				i := bytes.Index(b, []byte("chunk-signature=")) + len("chunk-signature=")
				c := append([]byte{}, b...)
				if c[i] == '0' { // always a different hex digit
					c[i] = '1'
				} else {
					c[i] = '0'
				}
				return c
			}, 403, []string{"SignatureDoesNotMatch"}},
			{"decoded length smaller than the chunks", 100 << 10, func(_ *signedRequest, b []byte) []byte { return b }, 400, []string{"IncompleteBody"}},
			{"decoded length larger than the chunks", 300 << 10, func(_ *signedRequest, b []byte) []byte { return b }, 400, []string{"IncompleteBody"}},
			{"no final chunk", len(payload), func(_ *signedRequest, b []byte) []byte {
				return b[:bytes.LastIndex(b, []byte("0;chunk-signature="))]
			}, 400, []string{"IncompleteBody"}},
			{"chunk size beyond the body", len(payload), func(_ *signedRequest, b []byte) []byte {
				return append([]byte("30000"), b[5:]...)
			}, 400, []string{"IncompleteBody", "InvalidRequest", "SignatureDoesNotMatch"}},
		}
		for i, tc := range cases {
			key := fmt.Sprintf("chunked-%d", i)
			sr, body := signedPut(key, tc.decoded, valid)
			body = tc.edit(sr, body)
			if int64(len(body)) != valid { // keep the HTTP framing right: only aws-chunked is broken
				sr, _ = signedPut(key, tc.decoded, int64(len(body)))
				body = tc.edit(sr, sr.signedChunks(payload, chunk))
			}
			got := roundTripRaw(addr, sr.head, body, timeout)
			expect(t, tc.name, got, tc.status, tc.codes...)
			if tc.status != 200 {
				notStored(t, key)
			}
		}

		// Unsigned aws-chunked with a CRC32 trailer.
		unsigned := func(key string, trailer string) (string, []byte) {
			var b []byte
			for off := 0; off < len(payload); off += chunk {
				d := payload[off:min(off+chunk, len(payload))]
				b = fmt.Appendf(b, "%x\r\n%s\r\n", len(d), d)
			}
			b = append(b, "0\r\n"...)
			b = append(b, trailer...)
			b = append(b, "\r\n"...)
			h := http.Header{"X-Amz-Decoded-Content-Length": {fmt.Sprint(len(payload))}, "Content-Encoding": {"aws-chunked"},
				"X-Amz-Trailer": {"x-amz-checksum-crc32"}}
			sr := signRaw(t, addr, http.MethodPut, "/"+bucket+"/"+key, h, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", int64(len(b)))
			return sr.head, b
		}
		head, body := unsigned("trailer-ok", "x-amz-checksum-crc32:"+crc32Base64(payload)+"\r\n")
		expect(t, "unsigned trailer, valid (control)", roundTripRaw(addr, head, body, timeout), 200)
		head, body = unsigned("trailer-bad", "x-amz-checksum-crc32:"+crc32Base64([]byte("other"))+"\r\n")
		expect(t, "unsigned trailer, wrong CRC32", roundTripRaw(addr, head, body, timeout), 400, "BadDigest")
		notStored(t, "trailer-bad")
		head, body = unsigned("trailer-missing", "")
		expect(t, "unsigned trailer declared, missing", roundTripRaw(addr, head, body, timeout), 400, "MalformedTrailerError")
		notStored(t, "trailer-missing")
		head, body = unsigned("trailer-other", "x-amz-checksum-sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n")
		expect(t, "unsigned trailer, undeclared header", roundTripRaw(addr, head, body, timeout), 400, "MalformedTrailerError")
		notStored(t, "trailer-other")
	})

	t.Run("huge headers", func(t *testing.T) {
		before := srv.handled.Load()
		var many strings.Builder
		for i := 0; many.Len() < 1<<20; i++ {
			fmt.Fprintf(&many, "X-Junk-%d: %s\r\n", i, strings.Repeat("j", 100))
		}
		expect(t, "1 MiB of headers", roundTripRaw(addr, get("/"+bucket+"/plain")+many.String()+"\r\n", nil, timeout), 431)
		expect(t, "one 100 KiB header", roundTripRaw(addr, get("/"+bucket+"/plain")+"X-Big: "+strings.Repeat("b", 100<<10)+"\r\n\r\n", nil, timeout), 431)
		if n := srv.handled.Load() - before; n != 0 {
			t.Errorf("%d requests with huge headers reached the proxy", n)
		}
	})

	t.Run("slow headers", func(t *testing.T) {
		before := srv.handled.Load()
		// closedAfter dials, runs feed and returns when the server closed
		// the connection.
		closedAfter := func(feed func(c net.Conn, stop <-chan struct{})) time.Duration {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			require.NoError(t, err)
			defer c.Close()
			start := time.Now()
			stop := make(chan struct{})
			fed := make(chan struct{})
			go func() {
				defer close(fed)
				feed(c, stop)
			}()
			_ = c.SetReadDeadline(time.Now().Add(timeout))
			_, _ = io.Copy(io.Discard, c)
			close(stop)
			<-fed
			return time.Since(start)
		}
		silent := closedAfter(func(net.Conn, <-chan struct{}) {})
		trickle := closedAfter(func(c net.Conn, stop <-chan struct{}) {
			head := get("/"+bucket+"/plain") + "X-Slow: " + strings.Repeat("s", 200) + "\r\n\r\n"
			for i := 0; i < len(head); i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{head[i]}); err != nil {
					return
				}
			}
		})
		t.Logf("ReadHeaderTimeout %v: a silent connection closed after %v, a trickling one after %v",
			headerTimeout, silent.Round(time.Millisecond), trickle.Round(time.Millisecond))
		for _, d := range []time.Duration{silent, trickle} {
			if d < headerTimeout/2 || d > headerTimeout+3*time.Second {
				t.Errorf("connection closed after %v, want about the ReadHeaderTimeout %v", d, headerTimeout)
			}
		}
		if n := srv.handled.Load() - before; n != 0 {
			t.Errorf("%d slow requests reached the proxy", n)
		}
	})

	t.Run("paths and framing", func(t *testing.T) {
		signed := func(target string) string {
			return signRaw(t, addr, http.MethodGet, target, nil, "UNSIGNED-PAYLOAD", -1).head
		}
		for _, target := range []string{
			"/" + bucket + "/..%2F" + other + "%2Fsecret",
			"/" + bucket + "/../" + other + "/secret",
			"/" + bucket + "/%2E%2E/" + other + "/secret",
			"/" + bucket + "%2F..%2F" + other + "/secret",
		} {
			got := roundTripRaw(addr, signed(target), nil, timeout)
			t.Logf("GET %s: %s", target, got)
			if got.err != nil || got.status == 200 || strings.Contains(got.body, "top secret") {
				t.Errorf("GET %s left its bucket: %s %q", target, got, truncate(got.body, 100))
			}
		}
		expect(t, "invalid percent-encoding", roundTripRaw(addr, get("/"+bucket+"/%zz")+"\r\n", nil, timeout), 400)
		expect(t, "invalid bucket name", roundTripRaw(addr, signed("/Not_A_Bucket/key"), nil, timeout), 400, "InvalidBucketName")
		// net/http drops the Content-Length (RFC 9112 6.3); the
		// anonymous request is then refused.
		expect(t, "Content-Length and Transfer-Encoding, anonymous", roundTripRaw(addr,
			"PUT /"+bucket+"/x HTTP/1.1\r\nHost: "+addr+"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", nil, timeout), 403, "AccessDenied")
		notStored(t, "x")
		expect(t, "unknown method", roundTripRaw(addr, strings.Replace(signed("/"+bucket+"/plain"), "GET ", "BREW ", 1), nil, timeout), 405, "MethodNotAllowed")
	})

	// The proxy serves on.
	c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain")})
	require.NoError(t, err, "the proxy after the malformed requests")
}
