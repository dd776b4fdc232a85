package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/osproxy/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, fed by the proxy's Observer.
// The library knows nothing of Prometheus: this is the only place that does.
type metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec   // operation, status
	errors      *prometheus.CounterVec   // code
	duration    *prometheus.HistogramVec // operation
	upstream    *prometheus.HistogramVec // operation
	bytesIn     *prometheus.CounterVec   // operation
	bytesOut    *prometheus.CounterVec   // operation
	inFlight    prometheus.Gauge
	cache       *prometheus.CounterVec // cache, result
	iamTotal    prometheus.Counter
	iamFailures prometheus.Counter
	iamDuration prometheus.Histogram
}

// s3Methods are the HTTP methods of S3 operations.
var s3Methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPut: true, http.MethodPost: true, http.MethodDelete: true,
}

// The caches the proxy reports on, each shown from the start, at zero.
var cacheNames = []string{"authorization", "bucket", "iam-token", "credentials"}

func newMetrics() *metrics {
	const ns = "osproxy"
	// From a HEAD answered from a cache to a multi-gigabyte stream.
	requestBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "requests_total",
			Help: "Requests answered, by S3 operation and HTTP status.",
		}, []string{"operation", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "request_errors_total",
			Help: "Requests the proxy refused or failed itself (not the upstream), by S3 error code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by S3 operation.",
			Buckets: requestBuckets,
		}, []string{"operation"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "upstream_duration_seconds",
			Help:    "Time from sending a request upstream to the upstream's response headers, by S3 operation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"operation"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "request_bytes_total",
			Help: "Request body bytes read from clients, by S3 operation.",
		}, []string{"operation"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "response_bytes_total",
			Help: "Response body bytes written to clients, by S3 operation.",
		}, []string{"operation"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "requests_in_flight",
			Help: "Requests being served.",
		}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "cache_lookups_total",
			Help: "Cache lookups, by cache (authorization, bucket, iam-token, credentials) and result (hit, miss).",
		}, []string{"cache", "result"}),
		iamTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "iam_exchanges_total",
			Help: "API key to token exchanges with IBM Cloud IAM.",
		}),
		iamFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "iam_exchange_failures_total",
			Help: "API key to token exchanges with IBM Cloud IAM that failed.",
		}),
		iamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "iam_exchange_duration_seconds",
			Help:    "Duration of the exchanges with IBM Cloud IAM.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	m.reg.MustRegister(m.requests, m.errors, m.duration, m.upstream, m.bytesIn, m.bytesOut, m.inFlight,
		m.cache, m.iamTotal, m.iamFailures, m.iamDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cacheNames {
		m.cache.WithLabelValues(c, "hit")
		m.cache.WithLabelValues(c, "miss")
	}
	return m
}

// observer returns the proxy Observer that feeds the metrics and writes one
// access log line per request, at info, with the proxy's request id.
func (m *metrics) observer(log *slog.Logger) proxy.Observer {
	return proxy.Observer{
		Request: func(i proxy.RequestInfo) {
			op := i.Operation
			if op == "" || !s3Methods[i.Method] {
				// The library names operations of other methods after the
				// method, which any client chooses: one label each would let
				// clients create series without end.
				op = "Unknown"
			}
			m.requests.WithLabelValues(op, strconv.Itoa(i.Status)).Inc()
			if i.Code != "" {
				m.errors.WithLabelValues(i.Code).Inc()
			}
			m.duration.WithLabelValues(op).Observe(i.Duration.Seconds())
			if i.Upstream > 0 {
				m.upstream.WithLabelValues(op).Observe(i.Upstream.Seconds())
			}
			m.bytesIn.WithLabelValues(op).Add(float64(i.BytesIn))
			m.bytesOut.WithLabelValues(op).Add(float64(i.BytesOut))

			attrs := []slog.Attr{
				slog.String("request_id", i.RequestID),
				slog.String("operation", op),
				slog.String("method", i.Method),
				slog.String("bucket", i.Bucket),
				slog.Int("status", i.Status),
				slog.Float64("duration_ms", ms(i.Duration)),
				slog.Int64("bytes_in", i.BytesIn),
				slog.Int64("bytes_out", i.BytesOut),
			}
			if i.Code != "" {
				attrs = append(attrs, slog.String("code", i.Code))
			}
			if i.Upstream > 0 {
				attrs = append(attrs, slog.Float64("upstream_ms", ms(i.Upstream)))
			}
			log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
		},
		Cache: func(cache string, hit bool) {
			result := "miss"
			if hit {
				result = "hit"
			}
			m.cache.WithLabelValues(cache, result).Inc()
		},
		IAMExchange: func(d time.Duration, err error) {
			m.iamTotal.Inc()
			if err != nil {
				m.iamFailures.Inc()
			}
			m.iamDuration.Observe(d.Seconds())
		},
	}
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// instrument counts the requests in flight through h.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerInFlight(m.inFlight, h)
}

// handler serves the metrics in Prometheus' formats.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
