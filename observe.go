package proxy

import (
	"context"
	"io"
	"net/http"
	"strconv"
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
	// ("authorization", "request-authorization", "anonymous", "bucket",
	// "iam-token" or "credentials") and whether a valid entry was found.
	Cache func(cache string, hit bool)
	// IAMExchange is called after each token exchange with IBM Cloud IAM, with
	// its duration and its error (nil on success).
	IAMExchange func(d time.Duration, err error)
	// Step, for tracing, is called as each step of a request begins, with
	// the context the step starts in. It returns the context the step runs
	// in (a tracer's span in it) and the function the proxy calls once the
	// step has ended. The steps are the request itself (StepRequest, the
	// parent of all the others), the authentication of the client, each call
	// of a caller's hook, each IAM token exchange and credentials retrieval,
	// and the upstream round trip. A hook call or an exchange that several
	// requests wait for runs once, as a step of the request that started it.
	Step func(ctx context.Context, s Step) (context.Context, func(StepEnd))
}

// JoinObservers returns an Observer that calls the functions of each of
// observers in turn (metrics and tracing together, say). Their Steps nest: the
// first's context is the one the second starts in, and their ends are called
// in the reverse order.
func JoinObservers(observers ...Observer) Observer {
	var o Observer
	for _, b := range observers {
		o.Request = join1(o.Request, b.Request)
		o.Cache = join2(o.Cache, b.Cache)
		o.IAMExchange = join2(o.IAMExchange, b.IAMExchange)
		switch a := o.Step; {
		case b.Step == nil:
		case a == nil:
			o.Step = b.Step
		default:
			o.Step = func(ctx context.Context, s Step) (context.Context, func(StepEnd)) {
				ctx, endA := a(ctx, s)
				ctx, endB := b.Step(ctx, s)
				return ctx, func(e StepEnd) { endB(e); endA(e) }
			}
		}
	}
	return o
}

// join1 and join2 return a function calling a then b, either of which may be
// nil.
func join1[A any](a, b func(A)) func(A) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(x A) { a(x); b(x) }
}

func join2[A, B any](a, b func(A, B)) func(A, B) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(x A, y B) { a(x, y); b(x, y) }
}

// StepKind is the kind of a Step.
type StepKind int

// The kinds of steps.
const (
	StepRequest      StepKind = iota + 1 // a client request, from its arrival to the end of its response
	StepAuthenticate                     // verifying who sent the request
	StepHook                             // one call of a caller's hook; Step.Name says which
	StepIAM                              // an IBM Cloud IAM token exchange
	StepCredentials                      // a retrieval from a credentials provider (Credentials.Provider)
	StepUpstream                         // the upstream round trip, from sending the request to its response headers
)

var stepNames = [...]string{"", "request", "authenticate", "hook", "iam", "credentials", "upstream"}

// String names the kind: "request", "authenticate", "hook", "iam",
// "credentials" or "upstream".
func (k StepKind) String() string {
	if k > 0 && int(k) < len(stepNames) {
		return stepNames[k]
	}
	return "StepKind(" + strconv.Itoa(int(k)) + ")"
}

// Step describes a step of a request as it begins.
type Step struct {
	Kind StepKind
	// Name is the hook a StepHook calls: "authorization",
	// "request-authorization", "anonymous", "bucket", "client secrets" or
	// "bucket list".
	Name string
	// Request is the client's request (StepRequest) or the upstream request
	// as signed (StepUpstream); nil for the other kinds. It is the proxy's:
	// an observer reads it, except that for StepUpstream it may add header
	// fields to Request.Header (a trace context): they go upstream, outside
	// what the upstream signature covers.
	Request *http.Request
	// Operation, Bucket and Key are the S3 operation of the client's request
	// and what it addresses, for StepUpstream; "" for the other kinds (a
	// StepRequest learns them at its end, in StepEnd.Info).
	Operation, Bucket, Key string
}

// StepEnd describes how a step ended.
type StepEnd struct {
	// Err is why the step failed: for a request, the S3 error the proxy
	// answered with (an *Error), or what cut its answer short once the
	// status went to the client (the upstream's read error or the client's
	// write error; the client's connection is then aborted); nil when it
	// succeeded.
	Err error
	// StatusCode is the upstream's status (StepUpstream) or the client's
	// (StepRequest); 0 otherwise.
	StatusCode int
	// Info is the request as it went (StepRequest); nil otherwise.
	Info *RequestInfo
}

// authenticateStep is authenticate, as a StepAuthenticate for a tracer: the
// client secrets hook it may call is a step of its own inside it.
func (p *Proxy) authenticateStep(r *http.Request, req *s3Request) (identity, error) {
	step := p.cfg.observer.Step
	if step == nil {
		return p.authenticate(r, req)
	}
	ctx, end := step(r.Context(), Step{Kind: StepAuthenticate})
	id, err := p.authenticate(r.WithContext(ctx), req)
	end(StepEnd{Err: stepError(err)})
	return id, err
}

// stepError is err as a Step's end reports it: an S3 error of the protocol
// packages as the public *Error it is answered with (so that an observer
// reads its Code), anything else (a hook's own error, a network error) as it
// is.
func stepError(err error) error {
	if e, ok := s3ErrorOf(err); ok {
		return e
	}
	return err
}

// stepper is Observer.Step; nil when nobody traces.
type stepper func(ctx context.Context, s Step) (context.Context, func(StepEnd))

// start begins a step: the context to run it in and the function that ends
// it. Without a tracer it costs nothing: ctx itself and a no-op.
func (o stepper) start(ctx context.Context, kind StepKind, name string, r *http.Request) (context.Context, func(StepEnd)) {
	if o == nil {
		return ctx, noStepEnd
	}
	return o(ctx, Step{Kind: kind, Name: name, Request: r})
}

func noStepEnd(StepEnd) {}

// RequestInfo describes one proxied request for an Observer.
type RequestInfo struct {
	RequestID         string        // the proxy's id of the request, in its error bodies and logs
	UpstreamRequestID string        // the upstream's x-amz-request-id, which the client sees on forwarded answers
	Operation         string        // S3 operation, e.g. "GetObject", "PutObject", "ListObjectsV2"; "" if unparsable
	Method            string        // HTTP method
	RemoteAddr        string        // the client's address, as http.Request.RemoteAddr
	AccessKeyID       string        // the client's access key id (its token); verified unless in token mode
	Bucket            string        // "" for ListBuckets and unparsable requests
	Key               string        // the object key; "" for bucket and service operations
	Status            int           // HTTP status sent to the client
	Code              string        // S3 error code, when the proxy itself answered with an error
	UpstreamCode      string        // the S3 error code of the upstream's error answer, relayed to the client
	Duration          time.Duration // from the request's arrival to the end of its response
	Upstream          time.Duration // from sending upstream to the upstream's response headers; 0 if not forwarded
	BytesIn           int64         // request body bytes read from the client
	BytesOut          int64         // response body bytes written to the client
}

// serveObserved serves a request while measuring it for the Observer, as a
// step of its own when it traces.
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
	end := noStepEnd
	if step := p.cfg.observer.Step; step != nil {
		var ctx context.Context
		ctx, end = step(x.in.Context(), Step{Kind: StepRequest, Request: x.in})
		x.in = x.in.WithContext(ctx)
	}
	err := p.serve(x)
	if err != nil {
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
	if p.cfg.observer.Request != nil {
		p.cfg.observer.Request(info)
	}
	stepErr := x.cut // what cut the answer short, or the S3 error answered, as an *Error
	if err != nil {
		stepErr = asS3Error(err)
	}
	end(StepEnd{Err: stepErr, StatusCode: info.Status, Info: &info})
	x.abortIfCut()
}

// info describes the exchange as it went.
func (x *exchange) info() RequestInfo {
	info := RequestInfo{
		RequestID:         x.id,
		Method:            x.in.Method,
		RemoteAddr:        x.in.RemoteAddr,
		AccessKeyID:       x.who.token,
		Code:              x.code,
		UpstreamCode:      x.upstreamCode,
		Upstream:          x.upstream,
		UpstreamRequestID: x.upstreamID,
	}
	if x.parsed {
		info.Bucket, info.Key, info.Operation = x.req.bucket, x.req.key, x.req.op.Name
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
