// Package proxy is an S3 reverse proxy: one S3 endpoint in front of many
// buckets spread over many object-storage instances, each with its own endpoint
// and credentials (HMAC keys or an IBM Cloud IAM API key).
//
// Clients send path-style requests (http://proxy/bucket/key). The proxy
// authenticates the client, asks the caller's authorizer whether the client may
// use the bucket, resolves the bucket's endpoint and credentials, rewrites the
// request to virtual-hosted style, signs it for the upstream and streams both
// ways, answering errors the way S3 does.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Proxy is an S3 reverse proxy. It is an http.Handler; create it with New and
// stop it with Close.
type Proxy struct {
	cfg       *config
	log       *slog.Logger
	rp        *httputil.ReverseProxy
	signer    *v4.Signer
	transport http.RoundTripper
	resolver  *resolver
	auth      *authCache
	iam       *iamTokens
	keys      *signingKeys
	janitor   *janitor
	started   time.Time

	idPrefix  string
	idCounter atomic.Uint64
	closeOnce sync.Once
}

// New returns a Proxy configured by opts. It refuses a configuration that can
// never route a request, and one with neither client verification
// (WithClientSecrets) nor an authorizer (WithAuthorizer).
func New(opts ...Option) (*Proxy, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:       cfg,
		log:       cfg.logger,
		transport: cfg.transport,
		started:   cfg.now().UTC(),
		signer: v4.NewSigner(func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = true
		}),
	}
	if p.transport == nil {
		p.transport = defaultTransport(cfg.headerTimeout)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	p.idPrefix = hex.EncodeToString(b[:])
	p.resolver = newResolver(cfg)
	p.auth = newAuthCache(cfg)
	p.iam = newIAMTokens(cfg, p.transport)
	p.keys = newSigningKeys()
	p.janitor = startJanitor(janitorInterval, p.resolver.sweep, p.auth.sweep, p.keys.sweep)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        rewriteOutbound,
		Transport:      p.transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// Close stops every background goroutine of the proxy. It is safe to call more
// than once; requests in flight are not interrupted.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.janitor.close()
		p.iam.close()
		if t, ok := p.transport.(*http.Transport); ok && p.cfg.transport == nil {
			t.CloseIdleConnections()
		}
	})
	return nil
}

// janitorInterval is how often expired cache entries are swept out.
const janitorInterval = time.Minute

func defaultTransport(headerTimeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           resetOnClose(dialer.DialContext),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: headerTimeout,
		DisableCompression:    true,
	}
}

// resetOnClose makes the proxy's side close upstream connections with a TCP
// reset instead of a FIN. The transport closes a connection with a request
// in flight only to abort it (a client that went away, a body that failed
// verification): with a FIN, an upstream may take the cut body for a complete
// one and store it (versitygw does with UNSIGNED-PAYLOAD); a reset is an
// unmistakable abort. Idle connections closed this way lose nothing.
func resetOnClose(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return c, err
	}
}

// ServeHTTP proxies one S3 request: parse, authenticate, authorize, resolve,
// forward. Every failure is answered as an S3 XML error.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := p.requestID()
	if p.cfg.observer.Request != nil {
		p.serveObserved(w, r, id)
		return
	}
	if err := p.serve(w, r, id, nil); err != nil {
		p.fail(w, r, id, err)
	}
}

// serveObserved serves a request while measuring it for the Observer.
func (p *Proxy) serveObserved(w http.ResponseWriter, r *http.Request, id string) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	var in *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		r2 := *r // a handler must not modify the request it was given
		in = &countingBody{ReadCloser: r.Body}
		r2.Body = in
		r = &r2
	}
	info := RequestInfo{RequestID: id, Method: r.Method, RemoteAddr: r.RemoteAddr}
	if err := p.serve(rec, r, id, &info); err != nil {
		p.fail(rec, r, id, err)
	}
	info.Status, info.Code, info.BytesOut = rec.status, rec.code, rec.written
	if info.Status == 0 {
		info.Status = http.StatusOK
	}
	if in != nil {
		info.BytesIn = in.n.Load()
	}
	info.Duration = time.Since(start)
	p.cfg.observer.Request(info)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, id string, info *RequestInfo) error {
	req, err := parseRequest(r, p.cfg)
	if err != nil {
		return err
	}
	if info != nil {
		info.Bucket, info.Operation = req.bucket, operationName(r, req)
	}
	in, err := p.authenticate(r)
	if err != nil {
		return err
	}
	if info != nil {
		info.AccessKeyID = in.token
	}
	if req.bucket == "" {
		return p.listBuckets(w, r, id, in.token)
	}
	if err := p.authorize(r.Context(), in.token, req.bucket); err != nil {
		return err
	}
	t, err := p.resolver.resolve(r.Context(), req.bucket)
	if err != nil {
		return err
	}
	if err := p.checkCopySource(r, in, t); err != nil {
		return err
	}
	out, err := p.outbound(r, req, in, t)
	if err != nil {
		return err
	}
	p.log.LogAttrs(r.Context(), slog.LevelDebug, "forward",
		slog.String("request_id", id), slog.String("method", r.Method),
		slog.String("bucket", req.bucket), slog.String("upstream", out.url.Host))
	out.id, out.sent = id, time.Now()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), outboundKey{}, out)))
	if info != nil {
		info.Upstream, info.UpstreamRequestID = out.upstream, out.upstreamID
	}
	return nil
}

// fail answers err as an S3 error and logs it; server-side failures at Warn,
// client errors at Debug.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	e := asS3Error(err)
	level := slog.LevelDebug
	if e.StatusCode >= 500 {
		level = slog.LevelWarn
	}
	p.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("request_id", id), slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", e.StatusCode),
		slog.String("code", e.Code), slog.Any("error", err))
	writeError(w, r, e, id)
}

func (p *Proxy) requestID() string {
	var b [16]byte
	n := p.idCounter.Add(1)
	s := strconv.AppendUint(append(b[:0], p.idPrefix...), n, 16)
	return string(s)
}

// authorize asks the (cached) authorizer whether token may use bucket. Without
// an authorizer every verified client may use every bucket.
func (p *Proxy) authorize(ctx context.Context, token, bucket string) error {
	if p.cfg.authorize == nil {
		return nil
	}
	ok, err := p.auth.allowed(ctx, token, bucket)
	if err != nil {
		return err
	}
	if !ok {
		return ErrAccessDenied
	}
	return nil
}

// checkCopySource authorizes the source bucket of CopyObject and UploadPartCopy
// and makes sure it lives on the same endpoint with the same credentials as the
// destination: the upstream copies within one instance only.
func (p *Proxy) checkCopySource(r *http.Request, in *inbound, dst *target) error {
	v := r.Header.Get("X-Amz-Copy-Source")
	if v == "" {
		return nil
	}
	bucket, err := copySourceBucket(v)
	if err != nil {
		return err
	}
	if bucket == dst.bucket {
		return nil
	}
	if err := p.authorize(r.Context(), in.token, bucket); err != nil {
		return err
	}
	src, err := p.resolver.resolve(r.Context(), bucket)
	if err != nil {
		return err
	}
	if src.endpoint != dst.endpoint || src.creds != dst.creds {
		return errInvalidRequest.withMessage("The copy source bucket lives on another endpoint or instance than the destination; copy through a client instead.")
	}
	return nil
}

// outbound is the upstream request prepared before the hand-off to the
// reverse proxy, which cannot fail any more.
type outbound struct {
	url    *url.URL
	header http.Header
	body   io.ReadCloser
	length int64

	id         string        // the request's id
	sent       time.Time     // when it was handed to the reverse proxy
	upstream   time.Duration // until the upstream's response headers
	upstreamID string        // the upstream's x-amz-request-id
}

type outboundKey struct{}

// outbound builds and signs the upstream request.
func (p *Proxy) outbound(r *http.Request, req s3Request, in *inbound, t *target) (*outbound, error) {
	if t.endpoint.PathStyle && leavesBucket(req.key) {
		return nil, errInvalidURI.withMessage("The key's dot segments would leave the bucket on this bucket's path-style upstream.")
	}
	u := upstreamURL(t, req.key)
	u.RawQuery = upstreamQuery(r.URL.RawQuery)
	bearer := t.creds.APIKey != ""
	reframe := reframeChunked(in, bearer)

	h := make(http.Header, len(r.Header))
	for name, values := range r.Header {
		if !forwardedHeader(name) || !in.mayForward(name) {
			continue
		}
		if in.decoded && name == "Content-Encoding" {
			if values = stripAWSChunked(values); values == nil {
				continue // set below when the body is framed again
			}
		}
		if in.decoded && !reframe && name == "X-Amz-Sdk-Checksum-Algorithm" {
			continue // the checksum travelled in the trailer and was verified here
		}
		h[name] = values
	}
	if t.creds.ServiceInstanceID != "" && r.Method == http.MethodPut && req.key == "" && r.URL.RawQuery == "" {
		h.Set("Ibm-Service-Instance-Id", t.creds.ServiceInstanceID)
	}

	out := &outbound{url: u, header: h, body: in.body, length: in.length}
	if p.cfg.upstreamHashes && !bearer && in.unchecked != nil {
		out.body = in.unchecked // the upstream signature carries the client's hash: the upstream checks it
	}
	payloadHash := in.payloadHash
	chunk := upstreamChunkSize // of a body framed again
	if reframe {
		h.Set("Content-Encoding", strings.Join(append([]string{"aws-chunked"}, stripAWSChunked(r.Header.Values("Content-Encoding"))...), ","))
		h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(in.length, 10))
		payloadHash = streamingUnsigned
		if in.trailer != "" {
			h.Set("X-Amz-Trailer", in.trailer)
		} else {
			payloadHash = streamingSigned
			// Chunks on the client's boundaries share the client chunks' SHA-256.
			var err error
			if chunk, err = in.chunked.firstChunkSize(); err != nil {
				return nil, err
			}
		}
		out.length = encodedLength(in.length, chunk, payloadHash == streamingSigned, trailerLength(in.trailer))
	}
	if out.length == 0 {
		out.body = nil
	}
	if bearer {
		tok, err := p.iam.token(r.Context(), t.creds.APIKey)
		if err != nil {
			return nil, err
		}
		h.Set("Authorization", "Bearer "+tok)
		if reframe {
			h.Set("X-Amz-Content-Sha256", payloadHash)
			out.body = readCloser{newChunkEncoder(in.chunked, in.trailer, nil, chunk)}
		}
	} else {
		h.Set("X-Amz-Content-Sha256", payloadHash)
		sr := &http.Request{Method: r.Method, URL: u, Header: h, ContentLength: max(out.length, 0)}
		creds := aws.Credentials{AccessKeyID: t.creds.AccessKeyID, SecretAccessKey: t.creds.SecretAccessKey, SessionToken: t.creds.SessionToken}
		now := p.cfg.now()
		if err := p.signer.SignHTTP(r.Context(), creds, sr, payloadHash, "s3", t.region(), now); err != nil {
			return nil, errInternal.with(err)
		}
		if reframe {
			var cs *chunkSigner
			if payloadHash == streamingSigned {
				auth := h.Get("Authorization")
				date := now.UTC().Format("20060102")
				cs = &chunkSigner{
					key:     p.keys.signingKey(t.creds.SecretAccessKey, date, t.region(), "s3"),
					amzDate: h.Get("X-Amz-Date"),
					scope:   date + "/" + t.region() + "/s3/aws4_request",
					prev:    auth[len(auth)-64:],
				}
			}
			out.body = readCloser{newChunkEncoder(in.chunked, in.trailer, cs, chunk)}
		}
	}
	// Added after signing: a hop in between may change it.
	if ae := r.Header.Values("Accept-Encoding"); len(ae) > 0 {
		h["Accept-Encoding"] = ae
	} else {
		h.Set("Accept-Encoding", "identity")
	}
	return out, nil
}

// reframeChunked reports whether an aws-chunked client body goes upstream
// framed again as aws-chunked rather than plain: when it carried a checksum
// trailer (which the upstream then stores, as it would from the client) or
// signed chunks (signed again for the upstream's keys; a bearer upstream has
// no key, so it gets the plain body). Either way the upstream itself can tell
// a cut body from a complete one.
func reframeChunked(in *inbound, bearer bool) bool {
	if in.chunked == nil {
		return false
	}
	return in.trailer != "" || (in.signedChunks && !bearer)
}

// rewriteOutbound hands the prepared request to the reverse proxy.
func rewriteOutbound(pr *httputil.ProxyRequest) {
	o, _ := pr.In.Context().Value(outboundKey{}).(*outbound)
	if o == nil {
		return
	}
	pr.Out.URL = o.url
	pr.Out.Host = ""
	pr.Out.Header = o.header
	pr.Out.Body = o.body
	pr.Out.ContentLength = o.length
	pr.Out.TransferEncoding = nil
	pr.Out.Trailer = nil
	pr.Out.GetBody = nil
}

// modifyResponse makes sure every answer carries an x-amz-request-id: the
// upstream's when it sent one (the client may need it with the upstream's
// support), the proxy's otherwise.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	o, _ := resp.Request.Context().Value(outboundKey{}).(*outbound)
	if o == nil {
		return nil
	}
	o.upstream = time.Since(o.sent)
	o.upstreamID = resp.Header.Get("X-Amz-Request-Id")
	if o.upstreamID == "" {
		resp.Header.Set("X-Amz-Request-Id", o.id)
	}
	return nil
}

// upstreamError answers a failed upstream exchange: the S3 error a body check
// raised, 504 on timeouts, 502 otherwise. A client that went away gets nothing.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	id := p.requestID()
	if o, _ := r.Context().Value(outboundKey{}).(*outbound); o != nil {
		id = o.id
	}
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(r.Context().Err(), context.Canceled):
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "client went away",
			slog.String("request_id", id), slog.String("path", r.URL.Path))
		return
	case isTimeout(err):
		e = errGatewayTimeout.with(err)
	default:
		e = errBadGateway.with(err)
	}
	p.fail(w, r, id, e)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// listBuckets answers ListBuckets (GET /) from the static buckets the client
// may use.
func (p *Proxy) listBuckets(w http.ResponseWriter, r *http.Request, id, token string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethodNotAllowed
	}
	names := make([]string, 0, len(p.cfg.buckets))
	for name := range p.cfg.buckets {
		if err := p.authorize(r.Context(), token, name); err == nil {
			names = append(names, name)
		} else if !errors.Is(err, ErrAccessDenied) {
			return err
		}
	}
	sort.Strings(names)
	res := listAllMyBucketsResult{Owner: owner{ID: token, DisplayName: token}}
	created := p.started.Format("2006-01-02T15:04:05.000Z")
	for _, n := range names {
		res.Buckets = append(res.Buckets, bucketEntry{Name: n, CreationDate: created})
	}
	body, err := xml.Marshal(res)
	if err != nil {
		return errInternal.with(err)
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Amz-Request-Id", id)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

type listAllMyBucketsResult struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

// recorder remembers what a response was, for the Observer.
type recorder struct {
	http.ResponseWriter
	status  int
	code    string
	written int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Flush and Unwrap keep streaming and http.ResponseController working.
func (w *recorder) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes read from a client's body.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64 // the transport may still read while the handler returns
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// bufferPool recycles the 32 KiB buffers used to copy bodies.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
