// Package otelproxy connects the proxy's Observer (github.com/osproxy/proxy)
// to OpenTelemetry: each request is traced as a tree of spans (the request,
// the client's authentication, each call of a hook, IBM Cloud IAM token
// exchanges, credentials retrievals and the upstream round trip, whose trace
// context goes upstream) and measured with metrics that follow OpenTelemetry's
// semantic conventions. It lives in a module of its own, beside the library,
// so that the library needs no OpenTelemetry dependency.
//
//	p, err := proxy.New(..., proxy.WithObserver(otelproxy.Observer()))
//
// By default it uses the global TracerProvider, MeterProvider and
// TextMapPropagator of go.opentelemetry.io/otel (otel.SetTracerProvider…); the
// options give others. The global propagator does nothing until one is set:
// set otel.SetTextMapPropagator(propagation.TraceContext{}) (or pass
// WithPropagators) for the client's trace context to be continued and sent
// upstream.
//
// # Spans
//
// The attributes are those of the OpenTelemetry semantic conventions v1.43.0
// (go.opentelemetry.io/otel/semconv/v1.43.0), where they define one:
//
//   - The request: a server span, continuing the trace context of the
//     client's headers (extracted with the propagator), or, when the handler
//     is already inside a span (otelhttp, a router's middleware), an internal
//     span under it. It is named after the S3 operation as AWS's conventions
//     name an API call, "S3.GetObject", once the operation is known (the HTTP
//     method until then, or for a request that does not parse): HTTP server
//     spans are "{method} {http.route}", and the proxy has no route
//     templates, but the operation is what the S3 API calls a route, and
//     "S3.GetObject" is also the name an instrumented AWS SDK gives its
//     client span of the same call. Attributes:
//     http.request.method, url.scheme, url.path, url.query (presigned URLs'
//     signatures and credentials REDACTED), server.address, server.port,
//     client.address, network.peer.address, network.peer.port,
//     network.protocol.version, user_agent.original; at its end
//     http.response.status_code, http.request.body.size,
//     http.response.body.size, rpc.system "aws-api", rpc.service "S3",
//     rpc.method (the S3 operation, e.g. "GetObject"), aws.s3.bucket,
//     aws.s3.key, aws.request_id (the x-amz-request-id the client got: the
//     upstream's, or the proxy's own), osproxy.request_id (the proxy's id, in
//     its logs and error bodies) and, for a request that ended with an error,
//     error.type: the S3 error code the proxy answered with
//     ("AccessDenied", "SignatureDoesNotMatch", "ServiceUnavailable"…), or
//     that of an upstream's error answer ("NoSuchKey"; its HTTP status, e.g.
//     "404", on metrics, and when its body names none). Its
//     status is Error for a 5xx answer, as HTTP server spans have it.
//   - "authenticate" (internal): verifying who sent the request.
//   - "hook <name>" (internal), e.g. "hook authorization": one call of a
//     caller's hook, with osproxy.hook; Error status and error.type when the
//     hook failed. A call several requests wait for is a span of the request
//     that started it.
//   - "IAM token exchange" and "credentials retrieval" (internal): an API
//     key exchanged with IBM Cloud IAM, keys retrieved from a
//     proxy.Credentials.Provider.
//   - The upstream round trip: a client span named after the HTTP method
//     ("PUT"), with http.request.method, url.full, server.address,
//     server.port, http.response.status_code and, for a 4xx or 5xx answer or
//     a failed round trip, error.type and Error status, as HTTP client spans
//     have them. Its trace context is injected into the upstream request's
//     headers with the propagator: outside what the upstream signature
//     covers, which stays valid.
//
// A step that fails has error.type: the S3 error code of an S3 error,
// "timeout" for a deadline, "canceled", or "_OTHER" (a hook's own errors
// are anything; their text is in the span's status). The client's access key
// id is not recorded: in token mode it is the client's secret.
//
// # Metrics
//
//   - http.server.request.duration (s; http.request.method, url.scheme,
//     http.response.status_code, rpc.method, error.type)
//   - http.server.active_requests ({request}; http.request.method, url.scheme)
//   - http.server.request.body.size and http.server.response.body.size (By;
//     as the duration): the bytes read from and written to clients
//   - http.client.request.duration (s; http.request.method, url.scheme,
//     http.response.status_code, error.type): the upstream round trip, to the
//     upstream's response headers. Without server.address: with
//     virtual-hosted upstreams each bucket would make series of its own.
//   - osproxy.cache.lookups ({lookup}; osproxy.cache: authorization,
//     request-authorization, anonymous, bucket, iam-token or credentials;
//     osproxy.cache.result: hit or miss)
//   - osproxy.hook.duration (s; osproxy.hook, error.type on failure)
//   - osproxy.iam.exchange.duration and osproxy.credentials.duration (s;
//     error.type on failure)
//
// Failures are the points with error.type: for instance the hook calls that
// failed are the count of osproxy.hook.duration with error.type set.
//
// Methods other than the HTTP ones are recorded as "_OTHER" (the method in
// http.request.method_original on the span), and so is their operation, so
// that clients cannot make series without end; buckets and keys are on spans
// only, never on metrics.
package otelproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osproxy/proxy"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/osproxy/proxy/otelproxy"

// Attributes of this package that the semantic conventions do not define.
const (
	// The AWS SDK conventions' "rpc.system" and "rpc.service", whose Go
	// constants semconv v1.39.0 and later no longer have.
	RPCSystemKey  = attribute.Key("rpc.system")
	RPCServiceKey = attribute.Key("rpc.service")

	RequestIDKey   = attribute.Key("osproxy.request_id")   // the proxy's request id
	HookKey        = attribute.Key("osproxy.hook")         // the hook a step calls
	CacheKey       = attribute.Key("osproxy.cache")        // the cache of a lookup
	CacheResultKey = attribute.Key("osproxy.cache.result") // hit or miss
)

// Option configures Observer.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	prop   propagation.TextMapPropagator
	public bool
}

// WithTracerProvider sets the TracerProvider. By default, otel's global one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the MeterProvider. By default, otel's global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithPropagators sets how trace context is read from clients' requests and
// written into upstream requests. By default, otel's global
// TextMapPropagator (which does nothing until one is set).
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithPublicEndpoint makes each request the root of a trace of its own,
// linked to the client's trace context rather than its child: for a proxy
// that the public reaches, whose clients must not decide what is sampled. By
// default a request continues its client's trace.
func WithPublicEndpoint() Option {
	return optionFunc(func(c *config) { c.public = true })
}

// Observer returns a proxy.Observer that traces and measures the proxy with
// OpenTelemetry (see the package documentation). An instrument that cannot be
// created is reported to otel.Handle and does nothing.
func Observer(opts ...Option) proxy.Observer {
	c := config{}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = otel.GetTextMapPropagator()
	}
	o := newObserver(c)
	return proxy.Observer{Step: o.step, Cache: o.cache}
}

// Bucket boundaries: S3 requests run from a millisecond (a cached HEAD) to
// many minutes (a large object), and bodies from nothing to gigabytes.
var (
	durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300, 600}
	stepBounds     = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	sizeBounds     = []float64{0, 1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30, 4 << 30}
)

type observer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	public bool

	duration metric.Float64Histogram
	active   metric.Int64UpDownCounter
	reqBody  metric.Int64Histogram
	respBody metric.Int64Histogram
	upstream metric.Float64Histogram
	lookups  metric.Int64Counter
	hooks    metric.Float64Histogram
	iam      metric.Float64Histogram
	creds    metric.Float64Histogram

	// The attribute sets of measurements, made once each: they are as many
	// as the series, which are bounded.
	cacheSets    sets[cacheKey]
	activeSets   sets[activeKey]
	requestSets  sets[requestKey]
	upstreamSets sets[upstreamKey]
	stepSets     sets[stepKey]
}

type (
	cacheKey struct {
		name string
		hit  bool
	}
	activeKey  struct{ method, scheme string }
	requestKey struct {
		method, scheme string
		status         int
		op, etype      string
	}
	upstreamKey struct {
		method, scheme string
		status         int
		etype          string
	}
	stepKey struct{ hook, etype string }
)

// sets holds the attribute set of each key, as the options of a
// measurement. Past maxSets keys it makes sets without keeping them.
type sets[K comparable] struct {
	mu sync.RWMutex
	m  map[K]*measure
}

// measure is one attribute set as the options of Add and Record.
type measure struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

const maxSets = 4096

func (s *sets[K]) get(k K, attrs func(K) []attribute.KeyValue) *measure {
	s.mu.RLock()
	m, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return m
	}
	o := metric.WithAttributeSet(attribute.NewSet(attrs(k)...))
	m = &measure{add: []metric.AddOption{o}, record: []metric.RecordOption{o}}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[K]*measure{}
	}
	if len(s.m) < maxSets {
		s.m[k] = m
	}
	s.mu.Unlock()
	return m
}

// Span kinds, made once.
var (
	kindServer   = trace.WithSpanKind(trace.SpanKindServer)
	kindInternal = trace.WithSpanKind(trace.SpanKindInternal)
	kindClient   = trace.WithSpanKind(trace.SpanKindClient)
)

func newObserver(c config) *observer {
	o := &observer{
		tracer: c.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   c.prop,
		public: c.public,
	}
	m := c.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	var errs []error
	// An instrument that could not be made is replaced by a no-op one.
	f64 := func(name, unit, desc string, bounds []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		if h == nil {
			return noop.Float64Histogram{}
		}
		return h
	}
	i64 := func(name, desc string) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit("By"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(sizeBounds...))
		errs = append(errs, err)
		if h == nil {
			return noop.Int64Histogram{}
		}
		return h
	}
	o.duration = f64("http.server.request.duration", "s", "Duration of HTTP server requests.", durationBounds)
	o.reqBody = i64("http.server.request.body.size", "Size of HTTP server request bodies.")
	o.respBody = i64("http.server.response.body.size", "Size of HTTP server response bodies.")
	o.upstream = f64("http.client.request.duration", "s",
		"Duration of HTTP client requests: the proxy's upstream round trips, to the response headers.", durationBounds)
	o.hooks = f64("osproxy.hook.duration", "s", "Duration of the calls of the proxy's hooks.", stepBounds)
	o.iam = f64("osproxy.iam.exchange.duration", "s", "Duration of the API key to token exchanges with IBM Cloud IAM.", stepBounds)
	o.creds = f64("osproxy.credentials.duration", "s", "Duration of the retrievals of upstream keys from credentials providers.", stepBounds)
	var err error
	o.active, err = m.Int64UpDownCounter("http.server.active_requests", metric.WithUnit("{request}"),
		metric.WithDescription("Number of active HTTP server requests."))
	errs = append(errs, err)
	if o.active == nil {
		o.active = noop.Int64UpDownCounter{}
	}
	o.lookups, err = m.Int64Counter("osproxy.cache.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups in the proxy's caches, by cache and result (hit or miss)."))
	errs = append(errs, err)
	if o.lookups == nil {
		o.lookups = noop.Int64Counter{}
	}
	if err := errors.Join(errs...); err != nil {
		otel.Handle(err)
	}
	return o
}

// cache is Observer.Cache: a count per cache and result.
func (o *observer) cache(name string, hit bool) {
	o.lookups.Add(context.Background(), 1, o.cacheSets.get(cacheKey{name, hit}, func(k cacheKey) []attribute.KeyValue {
		result := "miss"
		if k.hit {
			result = "hit"
		}
		return []attribute.KeyValue{CacheKey.String(k.name), CacheResultKey.String(result)}
	}).add...)
}

// step is Observer.Step.
func (o *observer) step(ctx context.Context, s proxy.Step) (context.Context, func(proxy.StepEnd)) {
	switch s.Kind {
	case proxy.StepRequest:
		return o.request(ctx, s.Request)
	case proxy.StepUpstream:
		return o.upstreamStep(ctx, s)
	case proxy.StepAuthenticate:
		return o.internal(ctx, "authenticate", nil, "")
	case proxy.StepHook:
		return o.internal(ctx, hookSpanName(s.Name), o.hooks, s.Name)
	case proxy.StepIAM:
		return o.internal(ctx, "IAM token exchange", o.iam, "")
	case proxy.StepCredentials:
		return o.internal(ctx, "credentials retrieval", o.creds, "")
	}
	return o.internal(ctx, s.Kind.String(), nil, "")
}

// hookSpanName is "hook " + the hook's name.
func hookSpanName(name string) string {
	switch name {
	case "authorization":
		return "hook authorization"
	case "request-authorization":
		return "hook request-authorization"
	case "anonymous":
		return "hook anonymous"
	case "bucket":
		return "hook bucket"
	case "client secrets":
		return "hook client secrets"
	case "bucket list":
		return "hook bucket list"
	}
	return "hook " + name
}

// internal starts the span of a step inside the proxy, measured by h when it
// is not nil; hook names the hook a StepHook calls.
func (o *observer) internal(ctx context.Context, name string, h metric.Float64Histogram, hook string) (context.Context, func(proxy.StepEnd)) {
	var span trace.Span
	if hook != "" {
		ctx, span = o.tracer.Start(ctx, name, trace.WithAttributes(HookKey.String(hook)))
	} else {
		ctx, span = o.tracer.Start(ctx, name)
	}
	start := time.Now()
	return ctx, func(e proxy.StepEnd) {
		d := time.Since(start)
		var etype string
		if e.Err != nil {
			etype = errorType(e.Err)
			if span.IsRecording() {
				span.SetAttributes(semconv.ErrorTypeKey.String(etype))
				span.SetStatus(codes.Error, e.Err.Error())
			}
		}
		span.End()
		if h != nil {
			h.Record(ctx, d.Seconds(), o.stepSets.get(stepKey{hook, etype}, func(k stepKey) []attribute.KeyValue {
				var kv []attribute.KeyValue
				if k.hook != "" {
					kv = append(kv, HookKey.String(k.hook))
				}
				if k.etype != "" {
					kv = append(kv, semconv.ErrorTypeKey.String(k.etype))
				}
				return kv
			}).record...)
		}
	}
}

// request starts the span of a client request.
func (o *observer) request(ctx context.Context, r *http.Request) (context.Context, func(proxy.StepEnd)) {
	kind := kindServer
	var link []trace.Link
	newRoot := false
	if trace.SpanContextFromContext(ctx).IsValid() {
		// The handler runs inside a server span already (otelhttp, a
		// router's middleware), which continued the client's context.
		kind = kindInternal
	} else if o.public {
		if remote := trace.SpanContextFromContext(o.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))); remote.IsValid() {
			link = []trace.Link{{SpanContext: remote}}
		}
		newRoot = true
	} else {
		ctx = o.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	method, original := normalizeMethod(r.Method)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// What a sampler may look at comes with the start; the rest only when
	// the span records.
	host, port := splitHostPort(r.Host)
	opts := []trace.SpanStartOption{kind, trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(method), semconv.URLScheme(scheme), semconv.URLPath(r.URL.Path),
		semconv.ServerAddress(host), semconv.ServerPort(port))}
	if newRoot {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(link...))
	}
	ctx, span := o.tracer.Start(ctx, method, opts...)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 8)
		if original != "" {
			attrs = append(attrs, semconv.HTTPRequestMethodOriginal(original))
		}
		if q := r.URL.RawQuery; q != "" {
			attrs = append(attrs, semconv.URLQuery(redactQuery(q)))
		}
		if host, port := splitHostPort(r.RemoteAddr); host != "" {
			attrs = append(attrs, semconv.ClientAddress(host), semconv.NetworkPeerAddress(host))
			if port > 0 {
				attrs = append(attrs, semconv.NetworkPeerPort(port))
			}
		}
		if v := protocolVersion(r); v != "" {
			attrs = append(attrs, semconv.NetworkProtocolVersion(v))
		}
		if ua := r.UserAgent(); ua != "" {
			attrs = append(attrs, semconv.UserAgentOriginal(ua))
		}
		span.SetAttributes(attrs...)
	}
	activeSet := o.activeSets.get(activeKey{method, scheme}, func(k activeKey) []attribute.KeyValue {
		return []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method), semconv.URLScheme(k.scheme)}
	})
	o.active.Add(ctx, 1, activeSet.add...)
	start := time.Now()
	return ctx, func(e proxy.StepEnd) {
		o.active.Add(ctx, -1, activeSet.add...)
		info := e.Info
		if info == nil {
			info = &proxy.RequestInfo{Status: e.StatusCode, Duration: time.Since(start)}
		}
		status := info.Status
		op := info.Operation
		if original != "" && op != "" {
			op = "_OTHER" // named after a method any client chooses
		}
		etype := info.Code
		switch {
		case etype != "":
		case status >= 400:
			etype = strconv.Itoa(status)
		case e.Err != nil: // an answer cut short after its status went out
			etype = errorType(e.Err)
		}
		if span.IsRecording() {
			spanType := etype // the upstream's S3 code on the span; on metrics, its status (a bounded set)
			if info.Code == "" && info.UpstreamCode != "" {
				spanType = info.UpstreamCode
			}
			o.endRequestSpan(span, e, info, op, spanType, original == "")
		}
		span.End()

		set := o.requestSets.get(requestKey{method, scheme, status, op, etype}, func(k requestKey) []attribute.KeyValue {
			kv := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method), semconv.URLScheme(k.scheme),
				semconv.HTTPResponseStatusCode(k.status)}
			if k.op != "" {
				kv = append(kv, semconv.RPCMethod(k.op))
			}
			if k.etype != "" {
				kv = append(kv, semconv.ErrorTypeKey.String(k.etype))
			}
			return kv
		})
		o.duration.Record(ctx, info.Duration.Seconds(), set.record...)
		o.reqBody.Record(ctx, info.BytesIn, set.record...)
		o.respBody.Record(ctx, info.BytesOut, set.record...)
	}
}

// endRequestSpan sets what is known of a request at its end on its span: op
// is its operation ("" when unknown), etype its error.type ("" for none).
func (o *observer) endRequestSpan(span trace.Span, e proxy.StepEnd, info *proxy.RequestInfo, op, etype string, rename bool) {
	status := info.Status
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs, semconv.HTTPResponseStatusCode(status),
		semconv.HTTPRequestBodySize(int(info.BytesIn)), semconv.HTTPResponseBodySize(int(info.BytesOut)))
	if op != "" {
		attrs = append(attrs, RPCSystemKey.String("aws-api"), RPCServiceKey.String("S3"), semconv.RPCMethod(op))
		if rename {
			span.SetName("S3." + op)
		}
	}
	if info.Bucket != "" {
		attrs = append(attrs, semconv.AWSS3Bucket(info.Bucket))
	}
	if info.Key != "" {
		attrs = append(attrs, semconv.AWSS3Key(info.Key))
	}
	if info.RequestID != "" {
		attrs = append(attrs, RequestIDKey.String(info.RequestID), semconv.AWSRequestID(firstOf(info.UpstreamRequestID, info.RequestID)))
	}
	if etype != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(etype))
	}
	span.SetAttributes(attrs...)
	// 5xx, or an answer cut short after a status below 400 went out (the
	// upstream's connection broke, the client went away): an error, whose
	// description is the error when there is one. A 4xx is the client's.
	if status >= 500 || status < 400 && e.Err != nil {
		desc := etype
		if e.Err != nil {
			desc = e.Err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
}

// upstreamStep starts the client span of the upstream round trip and sends
// its trace context upstream in r's headers.
func (o *observer) upstreamStep(ctx context.Context, s proxy.Step) (context.Context, func(proxy.StepEnd)) {
	r := s.Request
	method, original := normalizeMethod(r.Method)
	scheme := r.URL.Scheme
	host, port := splitHostPort(r.URL.Host)
	if port == 0 {
		switch scheme {
		case "http":
			port = 80
		case "https":
			port = 443
		}
	}
	ctx, span := o.tracer.Start(ctx, method, kindClient, trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(method), semconv.ServerAddress(host), semconv.ServerPort(port)))
	if span.IsRecording() {
		span.SetAttributes(semconv.URLFull(redactURL(r.URL)))
		if original != "" {
			span.SetAttributes(semconv.HTTPRequestMethodOriginal(original))
		}
		if s.Operation != "" {
			span.SetAttributes(RPCSystemKey.String("aws-api"), RPCServiceKey.String("S3"), semconv.RPCMethod(s.Operation))
		}
		if s.Bucket != "" {
			span.SetAttributes(semconv.AWSS3Bucket(s.Bucket))
		}
		if s.Key != "" {
			span.SetAttributes(semconv.AWSS3Key(s.Key))
		}
	}
	o.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	start := time.Now()
	return ctx, func(e proxy.StepEnd) {
		d := time.Since(start)
		var etype string
		switch {
		case e.Err != nil:
			etype = errorType(e.Err)
		case e.StatusCode >= 400:
			etype = strconv.Itoa(e.StatusCode)
		}
		if span.IsRecording() {
			if e.StatusCode > 0 {
				span.SetAttributes(semconv.HTTPResponseStatusCode(e.StatusCode))
			}
			if etype != "" {
				span.SetAttributes(semconv.ErrorTypeKey.String(etype))
				desc := ""
				if e.Err != nil {
					desc = e.Err.Error()
				}
				span.SetStatus(codes.Error, desc)
			}
		}
		span.End()
		o.upstream.Record(ctx, d.Seconds(), o.upstreamSets.get(upstreamKey{method, scheme, e.StatusCode, etype}, func(k upstreamKey) []attribute.KeyValue {
			kv := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method), semconv.URLScheme(k.scheme)}
			if k.status > 0 {
				kv = append(kv, semconv.HTTPResponseStatusCode(k.status))
			}
			if k.etype != "" {
				kv = append(kv, semconv.ErrorTypeKey.String(k.etype))
			}
			return kv
		}).record...)
	}
}

// errorType is the error.type of a failed step: the S3 error code of an S3
// error, "timeout" or "canceled" for a context's end or a timeout, else
// "_OTHER": a hook's own errors are anything, and error.type must stay of
// low cardinality.
func errorType(err error) string {
	var pe *proxy.Error
	if errors.As(err, &pe) && pe.Code != "" {
		return pe.Code
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "_OTHER"
}

// normalizeMethod returns the method as http.request.method has it, and the
// method itself when that is "_OTHER".
func normalizeMethod(m string) (method, original string) {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete,
		http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace:
		return m, ""
	}
	return "_OTHER", m
}

func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 3:
		return "3"
	}
	return ""
}

// splitHostPort splits host[:port]; port is 0 when absent or not a number.
func splitHostPort(hp string) (string, int) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return strings.Trim(hp, "[]"), 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// redacted are the query parameters whose values are credentials: SigV4 and
// SigV2 presigned URLs' (and those the semantic conventions name).
var redacted = map[string]bool{
	"x-amz-signature": true, "x-amz-credential": true, "x-amz-security-token": true,
	"awsaccesskeyid": true, "signature": true, "sig": true, "x-goog-signature": true,
}

// redactQuery returns a raw query with the values of credential parameters
// replaced by REDACTED.
func redactQuery(q string) string {
	var b strings.Builder
	changed := false
	for i, part := range strings.Split(q, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		rawName, _, hasValue := strings.Cut(part, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			name = rawName
		}
		if hasValue && redacted[strings.ToLower(name)] {
			b.WriteString(rawName)
			b.WriteString("=REDACTED")
			changed = true
			continue
		}
		b.WriteString(part)
	}
	if !changed {
		return q
	}
	return b.String()
}

// redactURL is u as url.full has it: without user information, with the
// values of credential parameters REDACTED.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = redactQuery(c.RawQuery)
	return c.String()
}
