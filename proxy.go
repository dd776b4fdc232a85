// Package proxy is an S3 reverse proxy: one S3 endpoint in front of many
// buckets spread over many object-storage instances, each with its own endpoint
// and credentials (HMAC keys or an IBM Cloud IAM API key).
//
// Clients send path-style requests (http://proxy/bucket/key). The proxy
// authenticates the client, asks the caller's authorizer whether the client may
// use the bucket, resolves the bucket's endpoint and credentials, rewrites the
// request to virtual-hosted style, signs it for the upstream and streams both
// ways, answering errors the way S3 does.
//
// # How a request flows
//
// ServeHTTP (proxy.go) makes one exchange per request and serve takes it
// through these steps, each one call into the file that owns it; data flows one
// way, from each step into the exchange:
//
//  1. parseRequest (request.go): the bucket and key, from the raw path.
//  2. authenticate (auth.go): who sent it; SigV4 is verified by
//     internal/sigv4, SigV2 (WithSigV2) by internal/sigv2.
//  3. openBody (body.go): the body to forward, verified as it streams; an
//     aws-chunked body is decoded by internal/awschunked.
//     (ListBuckets is answered here, by listbuckets.go.)
//  4. authorize (cache.go): the caller's authorizer (for an anonymous
//     request, whether the bucket takes them), cached; every hook is
//     called through callHook (hooks.go).
//  5. resolve (cache.go): the bucket's endpoint and credentials.
//  6. buildUpstream (rewrite.go): URL, headers and body framing of the
//     upstream request (aws-chunked framed again by internal/awschunked),
//     signed with HMAC keys (rewrite.go) or an IAM bearer token (iam.go).
//  7. forward (forward.go): the upstream round trip, and the answer streamed
//     back without its hop-by-hop headers; the upstream's Locations are
//     rewritten to name the proxy (location.go).
//
// A CORS preflight (OPTIONS) is answered by cors.go after step 1; a form
// posted to a bucket (POST Object, a browser's upload) by postobject.go, which
// authenticates, checks and re-signs the form its own way (the form, its
// policy and the form posted on by internal/postform) before step 7.
//
// A failing step returns an error that fail (errors.go) answers as S3 does;
// observe.go measures the exchange for an Observer.
//
// # Documentation
//
// The repository's docs folder tells each subject in a file of its own: the
// security model and bounds (docs/security.md), fine-grained authorization
// (docs/authorization.md), IBM Cloud IAM (docs/ibm-iam.md), rotating
// upstream keys (docs/rotating-credentials.md), clients, upstream servers and
// what clients see (docs/clients-and-upstreams.md), browsers
// (docs/browsers.md), caches (docs/caches.md), observability and
// OpenTelemetry (docs/observability.md), performance (docs/performance.md),
// how a request flows (docs/request-flow.md) and the layers of the code
// (docs/architecture.md): https://github.com/osproxy/proxy/tree/main/docs.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osproxy/proxy/internal/postform"
)

// Proxy is an S3 reverse proxy. It is an http.Handler; create it with New and
// stop it with Close.
type Proxy struct {
	cfg       *config
	log       *slog.Logger
	transport http.RoundTripper
	resolver  *resolver
	auth      *authCache
	iam       *iamTokens
	providers *providerCreds // Credentials.Provider
	keys      *signingKeys
	decisions *decisions // WithRequestAuthorizer; nil without
	janitor   *janitor

	secretsGate *hookGate // the client secrets hook is called uncached
	listGate    *hookGate // and so is the bucket list hook
	// unsignedGate bounds the bucket hook calls of requests anyone may send
	// (preflights): a quarter of the hook's slots, the rest kept for signed
	// clients.
	unsignedGate *hookGate
	started      time.Time

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
	}
	if p.transport == nil {
		p.transport = defaultTransport(cfg.headerTimeout)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	p.idPrefix = hex.EncodeToString(b[:])
	signers := newUpstreamSigners()
	p.resolver = newResolver(cfg, signers)
	p.auth = newAuthCache(cfg)
	p.iam = newIAMTokens(cfg, p.transport)
	p.providers = newProviderCreds(cfg, signers)
	p.keys = newSigningKeys()
	p.decisions = newDecisions(cfg)
	if m, ok := cfg.useCounter.(*memoryUses); ok {
		m.mu.Lock()
		m.now = cfg.now // expiry on the proxy's clock
		m.mu.Unlock()
	}
	p.secretsGate = newHookGate(cfg.hookConcurrency, cfg.observer.Step)
	p.listGate = newHookGate(cfg.hookConcurrency, cfg.observer.Step)
	p.unsignedGate = newHookGate(max(1, cfg.hookConcurrency/4), cfg.observer.Step)
	p.janitor = startJanitor(janitorInterval, p.resolver.sweep, p.auth.sweep, p.keys.sweep, p.decisions.sweep)
	return p, nil
}

// Close stops every background goroutine of the proxy. It is safe to call more
// than once; requests in flight are not interrupted.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.janitor.close()
		p.iam.close()
		p.providers.close()
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
			return upstreamConn{tc}, err
		}
		return c, err
	}
}

// upstreamConn is a plain TCP connection to an upstream that copies request
// bodies in large blocks. The transport hands a request body to the
// connection's ReadFrom, which *net.TCPConn does in 32 KiB reads and writes: an
// upload then costs a read syscall from the client and a write syscall
// upstream every 32 KiB. A block of upstreamCopyBlock takes what the client's
// socket holds in one read, and sends it in one write.
type upstreamConn struct{ *net.TCPConn }

// upstreamCopyBlock is the block of upstreamConn's copies.
const upstreamCopyBlock = 256 << 10

var copyBlocks = sync.Pool{New: func() any { return new([upstreamCopyBlock]byte) }}

// ReadFrom copies r to the connection in blocks of upstreamCopyBlock.
func (c upstreamConn) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBlocks.Get().(*[upstreamCopyBlock]byte)
	defer copyBlocks.Put(buf)
	return io.CopyBuffer(writerOnly{c.TCPConn}, r, buf[:])
}

// writerOnly hides a writer's ReadFrom, so that io.CopyBuffer uses its buffer.
type writerOnly struct{ io.Writer }

// exchange is one request on its way through the proxy. serve owns it and
// each step fills in what it establishes: what the request is, who sent it,
// where it goes and what was observed. Nothing about a request lives anywhere
// else; the request context carries cancellation only.
type exchange struct {
	p  *Proxy
	id string              // the proxy's request id
	w  http.ResponseWriter // the client's response
	in *http.Request       // the client's request

	parsed bool      // req is set
	req    s3Request // what the request addresses (parseRequest)
	who    identity  // who sent it (authenticate)
	body   clientBody
	target *target        // where it goes (resolve)
	form   *postform.Form // POST Object: the form's fields (postobject.go)
	out    upstream       // the upstream request (buildUpstream)

	// Observed on the way.
	code         string        // the S3 error code the proxy answered with
	sent         time.Time     // when the upstream request was sent
	upstream     time.Duration // from sending upstream to its response headers
	upstreamID   string        // the upstream's x-amz-request-id
	upstreamCode string        // the S3 code of the upstream's error answer
	cut          error         // what cut the answer short once its headers went out (forward)
}

// ServeHTTP proxies one S3 request: parse, authenticate, authorize, resolve,
// forward. Every failure is answered as an S3 XML error.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{p: p, id: p.requestID(), w: w, in: r}
	if p.cfg.observer.Request != nil || p.cfg.observer.Step != nil {
		p.serveObserved(x)
		return
	}
	if err := p.serve(x); err != nil {
		x.fail(err)
	}
	x.abortIfCut()
}

// serve takes a request through the proxy's steps, in order; see the package
// documentation.
func (p *Proxy) serve(x *exchange) error {
	r := x.in
	req, err := parseRequest(r, p.cfg)
	if err != nil {
		return err
	}
	x.req, x.parsed = req, true
	if r.Method == http.MethodOptions {
		return p.preflight(x) // carries no credentials; cors.go
	}
	p.corsHeaders(x)
	if isPostObject(r, req) {
		return p.postObject(x) // a browser's form upload; postobject.go
	}
	if x.who, err = p.authenticateStep(r, &x.req); err != nil {
		return err
	}
	if x.body, err = openBody(r, &x.who); err != nil {
		return err
	}
	if req.bucket == "" {
		return p.listBuckets(x)
	}
	if err := p.authorize(r.Context(), &x.who, req.bucket); err != nil {
		return err
	}
	if x.target, err = p.resolver.resolve(r.Context(), req.bucket); err != nil {
		return err
	}
	if err := p.authorizeCopySource(r.Context(), &x.who, req, x.target); err != nil {
		return err
	}
	if err := p.authorizeRequest(x); err != nil {
		return err
	}
	// A use is counted once the request is authorized: a client allowed
	// nothing cannot fill the counter (uselimit.go).
	if err := p.countUse(x); err != nil {
		return err
	}
	if x.out, err = p.buildUpstream(r, req, &x.who, &x.body, x.target); err != nil {
		return err
	}
	p.forward(x)
	return nil
}

func (p *Proxy) requestID() string {
	var b [32]byte // 12 hex digits of prefix and up to 16 of the counter: never grown
	n := p.idCounter.Add(1)
	s := strconv.AppendUint(append(b[:0], p.idPrefix...), n, 16)
	return string(s)
}
