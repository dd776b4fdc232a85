package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Observer receives what the proxy does, for metrics and tracing. Every field
// is optional. The functions are called synchronously on the request path:
// they must be fast and safe for concurrent use.
type Observer struct {
	// Request is called once per request, after its response was written.
	Request func(RequestInfo)
	// Cache is called on each cache lookup with the cache's name
	// ("authorization", "bucket" or "iam-token") and whether a valid entry was
	// found.
	Cache func(cache string, hit bool)
	// IAMExchange is called after each token exchange with IBM Cloud IAM, with
	// its duration and its error (nil on success).
	IAMExchange func(d time.Duration, err error)
}

// RequestInfo describes one proxied request for an Observer.
type RequestInfo struct {
	RequestID         string        // the proxy's id of the request, in its error bodies and logs
	UpstreamRequestID string        // the upstream's x-amz-request-id, which the client sees on forwarded answers
	Operation         string        // S3 operation, e.g. "GetObject", "PutObject", "ListObjectsV2"; "" if unparsable
	Method            string        // HTTP method
	RemoteAddr        string        // the client's address, as http.Request.RemoteAddr
	AccessKeyID       string        // the client's access key id (its token); verified unless in token mode
	Bucket            string        // "" for ListBuckets and unparsable requests
	Status            int           // HTTP status sent to the client
	Code              string        // S3 error code, when the proxy itself answered with an error
	Duration          time.Duration // from the request's arrival to the end of its response
	Upstream          time.Duration // from sending upstream to the upstream's response headers; 0 if not forwarded
	BytesIn           int64         // request body bytes read from the client
	BytesOut          int64         // response body bytes written to the client
}

// serveObserved serves a request while measuring it for the Observer.
func (p *Proxy) serveObserved(x *exchange) {
	start := time.Now()
	rec := &recorder{ResponseWriter: x.w}
	x.w = rec
	var in *countingBody
	if r := x.in; r.Body != nil && r.Body != http.NoBody {
		r2 := *r // a handler must not modify the request it was given
		in = &countingBody{ReadCloser: r.Body}
		r2.Body = in
		x.in = &r2
	}
	if err := p.serve(x); err != nil {
		x.fail(err)
	}
	info := x.info()
	info.Status, info.BytesOut = rec.status, rec.written
	if info.Status == 0 {
		info.Status = http.StatusOK
	}
	if in != nil {
		info.BytesIn = in.n.Load()
	}
	info.Duration = time.Since(start)
	p.cfg.observer.Request(info)
}

// info describes the exchange as it went.
func (x *exchange) info() RequestInfo {
	info := RequestInfo{
		RequestID:         x.id,
		Method:            x.in.Method,
		RemoteAddr:        x.in.RemoteAddr,
		AccessKeyID:       x.who.token,
		Code:              x.code,
		Upstream:          x.upstream,
		UpstreamRequestID: x.upstreamID,
	}
	if x.parsed {
		info.Bucket, info.Operation = x.req.bucket, x.req.op.Name
	}
	return info
}

// recorder remembers what a response was, for the Observer.
type recorder struct {
	http.ResponseWriter
	status  int
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
