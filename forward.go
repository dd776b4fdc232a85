package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osproxy/proxy/internal/s3xml"
)

// forward hands the built upstream request to httputil.ReverseProxy, which
// streams the body up and the answer down. The reverse proxy is configured for
// this exchange: its hooks are the exchange's methods, so they get the
// exchange itself rather than finding it in the request context.
func (p *Proxy) forward(x *exchange) {
	p.log.LogAttrs(x.in.Context(), slog.LevelDebug, "forward",
		slog.String("request_id", x.id), slog.String("method", x.in.Method),
		slog.String("bucket", x.req.bucket), slog.String("upstream", x.out.url.Host))
	x.rp = httputil.ReverseProxy{
		Rewrite:      x.rewrite,
		Transport:    x,
		ErrorHandler: x.upstreamError,
		BufferPool:   &x.buffers,
		ErrorLog:     p.errorLog,
	}
	// An answer the upstream sent without a Content-Type goes without one:
	// the server would sniff one from the body. A nil value keeps the key, so
	// it does not; the upstream's Content-Type, if any, is added to it.
	if _, set := x.w.Header()["Content-Type"]; !set {
		x.w.Header()["Content-Type"] = nil
	}
	x.rp.ServeHTTP(x.w, x.in)
}

// rewrite replaces the reverse proxy's copy of the client request with the
// built upstream request.
func (x *exchange) rewrite(pr *httputil.ProxyRequest) {
	o := &x.out
	pr.Out.URL = o.url
	pr.Out.Host = ""
	pr.Out.Header = o.header
	pr.Out.Body = o.body
	pr.Out.ContentLength = o.length
	pr.Out.TransferEncoding = nil
	pr.Out.Trailer = nil
	pr.Out.GetBody = nil
}

// RoundTrip sends the upstream request through the proxy's transport, as a
// StepUpstream for a tracer, and records when the upstream answered and with
// which request id. Every answer
// carries an x-amz-request-id: the upstream's when it sent one (the client may
// need it with the upstream's support), the proxy's otherwise.
func (x *exchange) RoundTrip(r *http.Request) (*http.Response, error) {
	end := noStepEnd
	if step := x.p.cfg.observer.Step; step != nil {
		var ctx context.Context
		ctx, end = step(r.Context(), Step{Kind: StepUpstream, Request: r,
			Operation: x.req.op.Name, Bucket: x.req.bucket, Key: x.req.key})
		r = r.WithContext(ctx)
	}
	x.sent = time.Now()
	resp, err := x.p.transport.RoundTrip(r)
	x.upstream = time.Since(x.sent)
	if err != nil {
		end(StepEnd{Err: stepError(err)})
		return nil, err
	}
	end(StepEnd{StatusCode: resp.StatusCode})
	scrubCredentialHeaders(resp.Header, r)
	x.upstreamID = resp.Header.Get("X-Amz-Request-Id")
	if x.upstreamID == "" {
		resp.Header.Set("X-Amz-Request-Id", x.id)
	}
	if x.p.cfg.cors != nil { // the proxy's policy speaks (corsHeaders), not the upstream's
		for name := range resp.Header {
			if strings.HasPrefix(name, "Access-Control-") {
				delete(resp.Header, name)
			}
		}
		if len(x.w.Header().Values("Vary")) > 0 { // corsHeaders said Vary: Origin; once is enough
			var keep []string
			for _, v := range resp.Header.Values("Vary") {
				for f := range strings.SplitSeq(v, ",") {
					if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "Origin") {
						keep = append(keep, f)
					}
				}
			}
			resp.Header.Del("Vary")
			if len(keep) > 0 {
				resp.Header.Set("Vary", strings.Join(keep, ", "))
			}
		}
	}
	if resp.StatusCode >= 400 && x.in.Method != http.MethodHead {
		code, err := scrubErrorBody(resp)
		if err != nil {
			return nil, err
		}
		x.upstreamCode = code
		return resp, nil
	}
	x.rewriteLocations(resp)
	// A body of unknown length is flushed after every write by the reverse
	// proxy itself (FlushInterval -1), from a goroutine of its own: leave it.
	if resp.Body != nil && resp.Body != http.NoBody && resp.ContentLength >= 0 {
		x.flushing = flushingBody{ReadCloser: resp.Body, w: x.w}
		resp.Body = &x.flushing
		x.buffers.large = resp.ContentLength >= largeAnswer
	}
	return resp, nil
}

// flushingBody is an upstream response body that flushes the client's
// response before each read after the first: what the upstream sent reaches
// the client even when the upstream then stalls, and a response read in one
// go is still written in one go. (httputil.ReverseProxy's FlushInterval -1
// also starts a timer per response that flushes the headers on their own.)
type flushingBody struct {
	io.ReadCloser
	w       http.ResponseWriter
	flusher http.Flusher
	read    bool
}

func (b *flushingBody) Read(p []byte) (int, error) {
	if b.read {
		if b.flusher == nil {
			b.flusher = flusherOf(b.w)
		}
		b.flusher.Flush()
	}
	b.read = true
	return b.ReadCloser.Read(p)
}

// flusherOf returns w's Flusher, found through Unwrap if need be.
func flusherOf(w http.ResponseWriter) http.Flusher {
	if f, ok := w.(http.Flusher); ok {
		return f
	}
	return controllerFlusher{http.NewResponseController(w)}
}

type controllerFlusher struct{ rc *http.ResponseController }

func (c controllerFlusher) Flush() { _ = c.rc.Flush() }

// scrubCredentialHeaders removes from an upstream answer's headers every one
// that carries a credential of the upstream request out, echoed by the
// upstream or a hop between: its signature, its bearer token, its security
// token. They are long random strings: nothing else contains them.
func scrubCredentialHeaders(h http.Header, out *http.Request) {
	var secrets [3]string
	auth := out.Header.Get("Authorization")
	if _, sig, ok := strings.Cut(auth, "Signature="); ok {
		secrets[0] = sig
	} else if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		secrets[1] = tok
	}
	secrets[2] = out.Header.Get("X-Amz-Security-Token")
	for name, values := range h {
		for _, v := range values {
			if slices.ContainsFunc(secrets[:], func(s string) bool { return len(s) >= 16 && strings.Contains(v, s) }) {
				delete(h, name)
				break
			}
		}
	}
}

// maxUpstreamErrorBody bounds the error body of an upstream answer the proxy
// reads to scrub it. An S3 error body is a few hundred bytes; past the bound
// the client gets 502 BadGateway instead.
const maxUpstreamErrorBody = 64 << 10

// upstreamDiagnostics are the elements of an S3 error body that describe the
// signature of the request the upstream received: the proxy's upstream
// signature, with the upstream's access key id, not the client's. They are
// removed from the error bodies the client gets.
var upstreamDiagnostics = map[string]bool{
	"AWSAccessKeyId": true, "StringToSign": true, "StringToSignBytes": true,
	"SignatureProvided": true, "CanonicalRequest": true, "CanonicalRequestBytes": true,
}

// scrubErrorBody replaces the body of an upstream error answer with the same
// XML error without upstreamDiagnostics (Code, Message, Resource, RequestId and
// the rest stay), and returns its S3 error code. A body that is not an XML
// <Error>, or is content-encoded, passes as it is.
func scrubErrorBody(resp *http.Response) (code string, err error) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return "", nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamErrorBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return "", errBadGateway.with(fmt.Errorf("reading the upstream's error answer: %w", err))
	}
	if len(body) > maxUpstreamErrorBody {
		return "", errBadGateway.with(fmt.Errorf("the upstream's error answer (status %d) exceeds %d bytes", resp.StatusCode, maxUpstreamErrorBody))
	}
	if clean, c, ok := s3xml.ScrubError(body, upstreamDiagnostics); ok {
		body, code = clean, c
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.TransferEncoding = nil
	return code, nil
}

// upstreamError answers a failed upstream exchange: the S3 error a body check
// raised, 504 on timeouts, 502 otherwise. A client that went away gets nothing.
func (x *exchange) upstreamError(_ http.ResponseWriter, _ *http.Request, err error) {
	e, isS3 := s3ErrorOf(err)
	switch {
	case isS3:
	case errors.Is(x.in.Context().Err(), context.Canceled):
		x.p.log.LogAttrs(x.in.Context(), slog.LevelDebug, "client went away",
			slog.String("request_id", x.id), slog.String("path", logText(x.in.URL.Path)))
		return
	case isTimeout(err):
		e = errGatewayTimeout.with(err)
	default:
		e = errBadGateway.with(err)
	}
	x.fail(e)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bufferPool gives the reverse proxy the buffer it copies an answer's body
// with, recycled: 32 KiB, or a block of upstreamCopyBlock for a body of
// largeAnswer bytes or more. A large block takes what the upstream's socket
// holds in one read and writes it to the client in one write, where 32 KiB
// cost a read and a write syscall every 32 KiB of a large GET.
type bufferPool struct{ large bool }

// largeAnswer is the smallest answer body copied in blocks of
// upstreamCopyBlock.
const largeAnswer = 1 << 20

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (p *bufferPool) Get() []byte {
	if p.large {
		return copyBlocks.Get().(*[upstreamCopyBlock]byte)[:]
	}
	return *buffers.Get().(*[]byte)
}

func (p *bufferPool) Put(b []byte) {
	if len(b) == upstreamCopyBlock {
		copyBlocks.Put((*[upstreamCopyBlock]byte)(b))
		return
	}
	buffers.Put(&b)
}
