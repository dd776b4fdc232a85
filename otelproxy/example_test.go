package otelproxy_test

import (
	"context"
	"log"
	"net/http"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/otelproxy"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A service that embeds the proxy sets up OpenTelemetry as it does for the
// rest of its code (here the SDK with no exporter; an OTLP exporter in
// production, see examples/server) and hands the proxy otelproxy's Observer.
func Example() {
	tp := sdktrace.NewTracerProvider()                    // sdktrace.WithBatcher(otlpExporter)…
	mp := sdkmetric.NewMeterProvider()                    // sdkmetric.WithReader(sdkmetric.NewPeriodicReader(…))
	otel.SetTextMapPropagator(propagation.TraceContext{}) // continue clients' traceparent, send it upstream
	defer func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) }()

	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "reports", Endpoint: proxy.Endpoint{Host: "s3.eu-de.cloud-object-storage.appdomain.cloud"},
			Credentials: proxy.Credentials{APIKey: "…"}}),
		proxy.WithClientKeys(map[string]string{"analytics": "…"}),
		proxy.WithObserver(otelproxy.Observer(otelproxy.WithTracerProvider(tp), otelproxy.WithMeterProvider(mp))),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	http.Handle("/", p)
}
