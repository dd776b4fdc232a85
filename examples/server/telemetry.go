package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/otelproxy"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// telemetryConfig is the OpenTelemetry export: the proxy's spans and metrics
// (otelproxy) sent to an OTLP/HTTP endpoint, a collector usually.
type telemetryConfig struct {
	// OTLPEndpoint is the collector's base URL, e.g. http://127.0.0.1:4318;
	// spans go to its /v1/traces and metrics to its /v1/metrics. "": no
	// export (the default).
	OTLPEndpoint setting[string] `yaml:"otlp_endpoint"`
	// Headers are sent with every export, e.g. an authorization.
	Headers map[string]setting[string] `yaml:"headers"`
	// ServiceName is the resource's service.name (OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES win over it).
	ServiceName setting[string] `yaml:"service_name"`
	// SampleRatio is the fraction of the traces started here that are
	// sampled; a client's sampled flag is followed.
	SampleRatio setting[float64] `yaml:"sample_ratio"`
	// MetricInterval is how often metrics are exported.
	MetricInterval setting[time.Duration] `yaml:"metric_interval"`
	// PublicEndpoint starts a trace of its own for each request, linked to
	// the client's: clients cannot decide what is sampled.
	PublicEndpoint setting[bool] `yaml:"public_endpoint"`
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (c *config) validateTelemetry(p *problems) {
	t := c.Telemetry
	e := t.OTLPEndpoint
	if e.Value == "" {
		if len(t.Headers) > 0 {
			for _, v := range t.Headers {
				at(p, v, "telemetry.headers without telemetry.otlp_endpoint")
				break
			}
		}
		return
	}
	if u, err := url.Parse(e.Value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		at(p, e, "telemetry.otlp_endpoint %q: want the collector's http(s)://host:port (4318 is OTLP/HTTP's), its base path if any", e.Value)
	}
	for name, v := range t.Headers {
		if !headerName.MatchString(name) {
			at(p, v, "telemetry.headers: %q is not a header name", name)
		}
	}
	if t.ServiceName.Value == "" {
		at(p, t.ServiceName, "telemetry.service_name must not be empty")
	}
	if r := t.SampleRatio; r.Value < 0 || r.Value > 1 {
		at(p, r, "telemetry.sample_ratio must be from 0 to 1, not %v", r.Value)
	}
	if d := t.MetricInterval; d.Value <= 0 {
		at(p, d, "the duration must be positive, not %s", d.Value)
	}
}

// telemetry is the running export: its providers, flushed and stopped by
// shutdown, and the Observer that feeds them.
type telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	observer proxy.Observer
}

// startTelemetry sets up the OTLP/HTTP exporters (gzip) and the SDK's
// providers of the configuration, and otelproxy's Observer on them. The
// trace context of W3C's traceparent is read from clients and sent upstream;
// baggage is not, as clients are not trusted to add to what goes upstream.
// Export failures are logged at warn. Nothing is global but otel's error
// handler.
func startTelemetry(c telemetryConfig, log *slog.Logger) (*telemetry, error) {
	base := strings.TrimSuffix(c.OTLPEndpoint.Value, "/")
	headers := map[string]string{}
	for k, v := range c.Headers {
		headers[k] = v.Value
	}
	ctx := context.Background()
	traces, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(base+"/v1/traces"),
		otlptracehttp.WithHeaders(headers), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		return nil, fmt.Errorf("telemetry: traces exporter: %w", err)
	}
	metrics, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(base+"/v1/metrics"),
		otlpmetrichttp.WithHeaders(headers), otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(semconv.ServiceName(c.ServiceName.Value)), resource.WithFromEnv())
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry", slog.Any("error", err))
	}))
	t := &telemetry{
		tp: sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(traces),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio.Value)))),
		mp: sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(c.MetricInterval.Value)))),
	}
	opts := []otelproxy.Option{otelproxy.WithTracerProvider(t.tp), otelproxy.WithMeterProvider(t.mp),
		otelproxy.WithPropagators(propagation.TraceContext{})}
	if c.PublicEndpoint.Value {
		opts = append(opts, otelproxy.WithPublicEndpoint())
	}
	t.observer = otelproxy.Observer(opts...)
	return t, nil
}

// shutdown exports what is left and stops the providers.
func (t *telemetry) shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}
