package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// Keys used across the unit tests.
const (
	unitKey        = "client-key"
	unitSecret     = "client-secret"
	upstreamKey    = "upstream-key"
	upstreamSecret = "upstream-secret"
	upstreamHost   = "s3.upstream.test"
)

// emptyPayloadHash is the hex SHA-256 of an empty body.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// fixedNow is the proxy's clock in the unit tests.
var fixedNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// seen is one request as the fake upstream received it.
type seen struct {
	Method     string
	Host       string
	RequestURI string
	Header     http.Header
	Body       []byte // the payload: an aws-chunked body is decoded (and its chunk signatures checked)
	Trailer    string // the aws-chunked trailer line, if any
	FirstChunk int    // the size of an aws-chunked body's first chunk
	SigOK      bool   // the upstream signature verified with the upstream keys
	SigErr     string // why not
}

// fakeUpstream is an httptest S3 stand-in that records every request,
// verifies its SigV4 signature independently (re-signing with the AWS SDK's
// signer) and answers with handler (default: 200 and "ok").
type fakeUpstream struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []seen
	handler http.HandlerFunc
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	s := seen{Method: r.Method, Host: r.Host, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body}
	if err != nil {
		s.SigErr = "body: " + err.Error()
	} else {
		s.SigOK, s.SigErr = checkUpstreamSignature(r, body)
		if s.SigOK && strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			s.Body, s.Trailer, err = decodeUpstreamChunked(r, body)
			if err != nil {
				s.SigOK, s.SigErr = false, "aws-chunked: "+err.Error()
			}
			line, _, _ := bytes.Cut(body, []byte("\r\n"))
			size, _, _ := bytes.Cut(line, []byte(";"))
			first, _ := strconv.ParseInt(string(size), 16, 64)
			s.FirstChunk = int(first)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	h := f.handler
	f.mu.Unlock()
	if err != nil {
		return
	}
	if h != nil {
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
		return
	}
	w.Header().Set("X-Amz-Request-Id", "UPSTREAM-ID")
	_, _ = io.WriteString(w, "ok")
}

func (f *fakeUpstream) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fakeUpstream) last(t *testing.T) seen {
	t.Helper()
	r := f.requests()
	require.NotEmpty(t, r, "the upstream received no request")
	return r[len(r)-1]
}

func (f *fakeUpstream) addr() string { return f.srv.Listener.Addr().String() }

func (f *fakeUpstream) port() int { return f.srv.Listener.Addr().(*net.TCPAddr).Port }

// transport dials the fake upstream whatever host the proxy asks for, so that
// virtual-hosted names like bucket.s3.upstream.test reach it.
func (f *fakeUpstream) transport() *http.Transport {
	addr := f.addr()
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
}

func (f *fakeUpstream) endpoint() proxy.Endpoint {
	return proxy.Endpoint{Host: upstreamHost, Port: f.port(), Scheme: "http", Region: "eu-de"}
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

// checkUpstreamSignature re-signs what the upstream received with the AWS SDK
// signer and the upstream keys, and compares the signatures.
func checkUpstreamSignature(r *http.Request, body []byte) (bool, string) {
	auth := r.Header.Get("Authorization")
	if strings.HasPrefix(auth, "Bearer ") {
		return true, ""
	}
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		return false, "authorization header malformed: " + auth
	}
	if m[1] != upstreamKey {
		return false, "signed with key " + m[1]
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false, "x-amz-date: " + err.Error()
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload != "UNSIGNED-PAYLOAD" && !strings.HasPrefix(payload, "STREAMING-") {
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != payload {
			return false, "payload hash does not match the body"
		}
	}
	path, query, _ := strings.Cut(r.RequestURI, "?")
	u := &url.URL{Scheme: "http", Host: r.Host, RawQuery: query}
	u.Path, _ = url.PathUnescape(path)
	u.RawPath = path
	re := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}, ContentLength: r.ContentLength}
	for _, h := range strings.Split(m[4], ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	re.Header.Del("Authorization")
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	err = signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret},
		re, payload, "s3", m[3], when)
	if err != nil {
		return false, err.Error()
	}
	if got := re.Header.Get("Authorization"); got != auth {
		return false, "signature mismatch:\n got  " + auth + "\n want " + got
	}
	return true, ""
}

// clientSign signs a client request with SigV4 the way an AWS SDK does, at the
// proxy's fixed clock, with the client keys.
func clientSign(t *testing.T, r *http.Request, payloadHash string) {
	t.Helper()
	clientSignAt(t, r, payloadHash, fixedNow, unitKey, unitSecret)
}

func clientSignAt(t *testing.T, r *http.Request, payloadHash string, at time.Time, key, secret string) {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	require.NoError(t, signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		r, payloadHash, "s3", "us-east-1", at))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newProxy builds a proxy with one static bucket, "bucket", on the fake
// upstream, verifying the client keys, plus opts.
func newProxy(t *testing.T, up *fakeUpstream, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	return startProxy(t, up, append([]proxy.Option{proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}})}, opts...)...)
}

// startProxy builds a proxy on the fake upstream, verifying the client keys
// at the fixed clock, with opts; it is closed at the test's end.
func startProxy(t *testing.T, up *fakeUpstream, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	base := []proxy.Option{
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithTransport(up.transport()),
		proxy.WithClock(func() time.Time { return fixedNow }),
	}
	p, err := proxy.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// serve runs one request through h and returns the recorded response.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// s3Code extracts the <Code> of an S3 XML error body.
func s3Code(body string) string { return testkit.S3Code(body) }

// presign returns a SigV4 presigned URL for the client keys, as SDK presigners
// make them.
func presign(t *testing.T, method, rawURL string, at time.Time, expires time.Duration) *url.URL {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	u.RawQuery = q.Encode()
	r := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: unitKey, SecretAccessKey: unitSecret},
		r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
	require.NoError(t, err)
	out, err := url.Parse(signed)
	require.NoError(t, err)
	return out
}

// decodeUpstreamChunked decodes an aws-chunked body the proxy sent upstream,
// independently of the proxy's decoder: it checks the framing, the decoded
// length and, for signed chunks, each chunk signature with the AWS SDK's
// stream signer and the upstream keys.
func decodeUpstreamChunked(r *http.Request, body []byte) ([]byte, string, error) {
	signed := r.Header.Get("X-Amz-Content-Sha256") == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	var ss *v4.StreamSigner
	var when time.Time
	if signed {
		auth := r.Header.Get("Authorization")
		seed, err := hex.DecodeString(auth[strings.LastIndex(auth, "=")+1:])
		if err != nil {
			return nil, "", err
		}
		m := authRE.FindStringSubmatch(auth)
		when, _ = time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		ss = v4.NewStreamSigner(aws.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}, "s3", m[3], seed)
	}
	var payload []byte
	rest := body
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return nil, "", fmt.Errorf("no chunk header in %q", clipBytes(rest))
		}
		sizeHex, ext, _ := strings.Cut(string(line), ";")
		size, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil || int64(len(after)) < size+2 || string(after[size:size+2]) != "\r\n" && size > 0 {
			return nil, "", fmt.Errorf("bad chunk %q", clipBytes(line))
		}
		data := after[:size]
		if signed {
			want, err := ss.GetSignature(context.Background(), nil, data, when)
			if err != nil || ext != "chunk-signature="+hex.EncodeToString(want) {
				return nil, "", fmt.Errorf("chunk signature %q, want %x", ext, want)
			}
		} else if ext != "" {
			return nil, "", fmt.Errorf("unsigned chunk with extension %q", ext)
		}
		payload = append(payload, data...)
		if size == 0 {
			rest = after
			break
		}
		rest = after[size+2:]
	}
	var trailer string
	if t := r.Header.Get("X-Amz-Trailer"); t != "" {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok || !strings.HasPrefix(string(line), t+":") {
			return nil, "", fmt.Errorf("trailer %q missing in %q", t, clipBytes(rest))
		}
		trailer, rest = string(line), after
	}
	if string(rest) != "\r\n" {
		return nil, "", fmt.Errorf("body ends in %q", clipBytes(rest))
	}
	if dl := r.Header.Get("X-Amz-Decoded-Content-Length"); dl != strconv.Itoa(len(payload)) {
		return nil, "", fmt.Errorf("decoded %d bytes, header says %s", len(payload), dl)
	}
	return payload, trailer, nil
}

func clipBytes(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}
