// Command minimal is the smallest useful proxy: one IBM Cloud Object Storage
// bucket behind http://127.0.0.1:6190, reached with credentials from the
// environment. Clients are let in by token: their access key id must be one of
// OSP_ALLOWED_TOKENS (their signatures are not checked; see the README's
// security model).
//
//	OSP_BUCKET=my-bucket \
//	OSP_ENDPOINT_HOST=s3.eu-de.cloud-object-storage.appdomain.cloud \
//	OSP_API_KEY=... OSP_SERVICE_INSTANCE_ID=... \
//	OSP_ALLOWED_TOKENS=alice,bob \
//	go run ./minimal
//
// For HMAC keys set OSP_ACCESS_KEY_ID, OSP_SECRET_ACCESS_KEY and OSP_REGION
// instead of OSP_API_KEY. A real deployment would look buckets, endpoints and
// tokens up in a database; the hooks below are where that goes.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/osproxy/proxy"
)

func main() {
	bucket := os.Getenv("OSP_BUCKET")
	endpoint := proxy.Endpoint{
		Host:   os.Getenv("OSP_ENDPOINT_HOST"),
		Region: os.Getenv("OSP_REGION"),
	}
	creds := proxy.Credentials{
		AccessKeyID:       os.Getenv("OSP_ACCESS_KEY_ID"),
		SecretAccessKey:   os.Getenv("OSP_SECRET_ACCESS_KEY"),
		APIKey:            os.Getenv("OSP_API_KEY"),
		ServiceInstanceID: os.Getenv("OSP_SERVICE_INSTANCE_ID"),
	}
	allowed := strings.Split(os.Getenv("OSP_ALLOWED_TOKENS"), ",")

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	p, err := proxy.New(
		// Where a bucket lives.
		proxy.WithEndpoint(func(_ context.Context, b string) (proxy.Endpoint, error) {
			if b != bucket {
				return proxy.Endpoint{}, proxy.ErrNoSuchBucket
			}
			return endpoint, nil
		}),
		// How the proxy reaches it.
		proxy.WithCredentials(func(_ context.Context, b string) (proxy.Credentials, error) {
			if b != bucket {
				return proxy.Credentials{}, proxy.ErrNoSuchBucket
			}
			return creds, nil
		}),
		// Who may use it: the client's access key id is its token.
		proxy.WithAuthorizer(func(_ context.Context, token, _ string) (bool, error) {
			return token != "" && slices.Contains(allowed, token), nil
		}),
		proxy.WithLogger(log),
	)
	if err != nil {
		log.Error("configuration", slog.Any("error", err))
		os.Exit(1)
	}
	defer p.Close()

	// Loopback only: in token mode anyone who can reach the port and knows a
	// token gets in. Serve others behind TLS, or verify signatures with
	// proxy.WithClientSecrets.
	srv := &http.Server{Addr: "127.0.0.1:6190", Handler: p, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", slog.String("addr", srv.Addr), slog.String("bucket", bucket))
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serve", slog.Any("error", err))
	}
}
