package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
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
		BufferPool:   bufferPool{},
		ErrorLog:     p.errorLog,
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

// RoundTrip sends the upstream request through the proxy's transport and
// records when the upstream answered and with which request id. Every answer
// carries an x-amz-request-id: the upstream's when it sent one (the client may
// need it with the upstream's support), the proxy's otherwise.
func (x *exchange) RoundTrip(r *http.Request) (*http.Response, error) {
	x.sent = time.Now()
	resp, err := x.p.transport.RoundTrip(r)
	x.upstream = time.Since(x.sent)
	if err != nil {
		return nil, err
	}
	x.upstreamID = resp.Header.Get("X-Amz-Request-Id")
	if x.upstreamID == "" {
		resp.Header.Set("X-Amz-Request-Id", x.id)
	}
	return resp, nil
}

// upstreamError answers a failed upstream exchange: the S3 error a body check
// raised, 504 on timeouts, 502 otherwise. A client that went away gets nothing.
func (x *exchange) upstreamError(_ http.ResponseWriter, _ *http.Request, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(x.in.Context().Err(), context.Canceled):
		x.p.log.LogAttrs(x.in.Context(), slog.LevelDebug, "client went away",
			slog.String("request_id", x.id), slog.String("path", x.in.URL.Path))
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

// bufferPool recycles the 32 KiB buffers used to copy bodies.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
