package conformance

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"
)

// Raw requests: written byte by byte on a TCP connection, signed with
// aws-sdk-go-v2's signer, for what no well-behaved client sends.

// signedRequest is the head of a SigV4-signed request, ready to be written,
// and what chunk signatures chain from.
type signedRequest struct {
	head    string // request line and headers, with the blank line
	seed    string // the header signature
	amzDate string
	scope   string
	key     []byte // signing key
}

// signRaw signs method target (raw path and query) for host with the client
// key pair and returns the head to write. h holds extra headers (signed);
// contentLength < 0 means none is sent.
func signRaw(t testing.TB, host, method, target string, h http.Header, payloadHash string, contentLength int64) *signedRequest {
	t.Helper()
	return signRawAs(t, host, method, target, h, payloadHash, contentLength, clientKey, clientSecret, time.Now())
}

func signRawAs(t testing.TB, host, method, target string, h http.Header, payloadHash string, contentLength int64, key, secret string, at time.Time) *signedRequest {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+host+target, nil)
	require.NoError(t, err)
	if h != nil {
		req.Header = h.Clone()
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if contentLength > 0 {
		req.ContentLength = contentLength
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	require.NoError(t, signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, payloadHash, "s3", region, at.UTC()))

	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range req.Header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("\r\n")

	auth := req.Header.Get("Authorization")
	_, seed, _ := strings.Cut(auth, "Signature=")
	amzDate := req.Header.Get("X-Amz-Date")
	date := amzDate[:8]
	return &signedRequest{
		head: b.String(), seed: seed, amzDate: amzDate,
		scope: date + "/" + region + "/s3/aws4_request",
		key:   signingKey(secret, date),
	}
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func signingKey(secret, date string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// chunkSig signs one aws-chunked chunk after the signature prev.
func (s *signedRequest) chunkSig(prev string, data []byte) string {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + s.amzDate + "\n" + s.scope + "\n" + prev + "\n" + sha256Hex(nil) + "\n" + sha256Hex(data)
	return hex.EncodeToString(hmacSHA256(s.key, sts))
}

// signedChunks encodes payload as STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunks of
// size chunk, the final empty chunk included.
func (s *signedRequest) signedChunks(payload []byte, chunk int) []byte {
	var out []byte
	prev := s.seed
	for {
		n := min(chunk, len(payload))
		data := payload[:n]
		payload = payload[n:]
		prev = s.chunkSig(prev, data)
		out = fmt.Appendf(out, "%x;chunk-signature=%s\r\n", n, prev)
		out = append(append(out, data...), "\r\n"...)
		if n == 0 {
			return out
		}
	}
}

// signedChunkedLength is the wire length of signedChunks(payload, chunk).
func signedChunkedLength(n, chunk int) int64 {
	var total int64
	for {
		c := min(chunk, n)
		n -= c
		total += int64(len(fmt.Sprintf("%x", c)) + len(";chunk-signature=") + 64 + 2 + c + 2)
		if c == 0 {
			return total
		}
	}
}

func crc32Base64(p []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(p)))
}

// rawResponse is what a raw request got back.
type rawResponse struct {
	status    int
	code      string // S3 error code of an XML body
	message   string
	requestID string
	closed    bool // the server closed the connection after answering
	body      string
	err       error
}

func (r rawResponse) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, r.code)
}

// roundTripRaw writes head and body on a new connection to addr and reads one
// answer, all within timeout.
func roundTripRaw(addr, head string, body []byte, timeout time.Duration) rawResponse {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return rawResponse{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, head); err != nil {
		return rawResponse{err: err}
	}
	// The server may answer before it has read the body: write it on the side.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if len(body) > 0 {
			_, _ = conn.Write(body)
		}
	}()
	defer func() { <-wrote }()
	defer conn.Close() // unblocks the writer first
	return readRawResponse(conn)
}

func readRawResponse(conn net.Conn) rawResponse {
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return rawResponse{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := rawResponse{status: resp.StatusCode, body: string(b), requestID: resp.Header.Get("X-Amz-Request-Id"), closed: resp.Close, err: err}
	var e struct{ Code, Message, RequestId string }
	if xml.Unmarshal(b, &e) == nil {
		out.code, out.message = e.Code, e.Message
	}
	return out
}

// rawUpstream is a fake upstream on a loopback port that hands each accepted
// connection to handle. Cleanup closes the listener and every connection and
// waits for the handlers.
type rawUpstream struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
	closed chan struct{}
}

func newRawUpstream(t testing.TB, handle func(c net.Conn)) *rawUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &rawUpstream{ln: ln, conns: map[net.Conn]bool{}, closed: make(chan struct{})}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = true
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() {
					_ = c.Close()
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(u.closed)
		_ = ln.Close()
		u.mu.Lock()
		for c := range u.conns {
			_ = c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) port() int { return u.ln.Addr().(*net.TCPAddr).Port }

// readRequestHead reads one request's head from c (the body is left).
func readRequestHead(c net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(c)
	r, err := http.ReadRequest(br)
	return r, br, err
}

// forwarder is a round-robin TCP load balancer: each accepted connection goes
// to the next backend, bytes copied both ways until either side closes.
type forwarder struct {
	ln       net.Listener
	backends []string
	mu       sync.Mutex
	next     int
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	perConn  []int // connections sent to each backend
}

func newForwarder(t testing.TB, backends ...string) *forwarder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &forwarder{ln: ln, backends: backends, conns: map[net.Conn]bool{}, perConn: make([]int, len(backends))}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) track(c net.Conn, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.conns[c] = true
	} else {
		delete(f.conns, c)
	}
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		i := f.next
		f.next = (f.next + 1) % len(f.backends)
		f.perConn[i]++
		f.mu.Unlock()
		f.wg.Add(1)
		go f.pipe(c, f.backends[i])
	}
}

func (f *forwarder) pipe(c net.Conn, backend string) {
	defer f.wg.Done()
	f.track(c, true)
	defer f.track(c, false)
	defer c.Close()
	b, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		return
	}
	f.track(b, true)
	defer f.track(b, false)
	defer b.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(b, c)
	go cp(c, b)
	<-done
	<-done
}

func (f *forwarder) counts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.perConn...)
}

// hasCode reports whether a raw response is an S3 XML error with one of the
// codes.
func hasCode(r rawResponse, codes ...string) bool {
	for _, c := range codes {
		if r.code == c {
			return true
		}
	}
	return false
}
