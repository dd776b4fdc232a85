// Command router mounts the S3 proxy under /s3/ of an existing HTTP service,
// next to the service's other routes, with the standard library's ServeMux.
//
//	go run ./router
//	curl http://127.0.0.1:8080/hello
//	export AWS_ACCESS_KEY_ID=router-demo AWS_SECRET_ACCESS_KEY=router-demo-secret AWS_DEFAULT_REGION=us-east-1
//	aws --endpoint-url http://127.0.0.1:8080/s3 s3 ls
//	aws --endpoint-url http://127.0.0.1:8080/s3 s3 cp ./README.md s3://files/
//
// Clients take the prefix as part of their endpoint: aws-cli's
// --endpoint-url http://127.0.0.1:8080/s3, aws-sdk-go-v2's BaseEndpoint,
// boto3's endpoint_url, all with path-style addressing. They sign the full
// path (/s3/files/key); the proxy checks signatures against the request line
// as it was received, so http.StripPrefix does not break them.
//
// To stay runnable anywhere, the bucket lives in an in-memory S3 on a
// loopback port; in a real service it would be your object store. The
// example's keys are public, so it listens on loopback only.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/osproxy/proxy"
)

const (
	bucket    = "files"
	keyID     = "router-demo"
	keySecret = "router-demo-secret"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("router", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	upstream, err := startInMemoryS3()
	if err != nil {
		return err
	}
	defer upstream.Close()

	p, err := newS3Proxy(upstream.Addr().(*net.TCPAddr).Port, log)
	if err != nil {
		return err
	}
	defer p.Close()

	srv := &http.Server{
		Addr:              "127.0.0.1:8080",
		Handler:           newMux(p),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // let uploads in flight finish
	}()
	log.Info("listening", slog.String("s3", "http://"+srv.Addr+"/s3"), slog.String("hello", "http://"+srv.Addr+"/hello"))
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newMux is the service's router: its own routes, and the S3 proxy under /s3/.
func newMux(s3 http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hello from the service; S3 is under /s3")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})

	// The proxy reads the bucket from the path, so it must not see the
	// prefix: http.StripPrefix takes it off. ("/s3" alone is ListBuckets
	// for clients that do not add a slash.) Without StripPrefix, give the
	// proxy proxy.WithPathPrefix("/s3") instead.
	//
	// Beware: ServeMux cleans paths before routing. A request whose path
	// holds "//", "/./" or "/../" (an S3 key such as "a//b" or "../x") is
	// answered with a redirect to the cleaned path, which the client's
	// signature does not cover: such keys fail. If your clients use them,
	// serve the proxy at the root of its own server, or route /s3/ before
	// the ServeMux sees the request:
	//
	//	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	//		if strings.HasPrefix(r.URL.Path, "/s3/") {
	//			s3.ServeHTTP(w, r) // with proxy.WithPathPrefix("/s3")
	//			return
	//		}
	//		mux.ServeHTTP(w, r)
	//	})
	strip := http.StripPrefix("/s3", s3)
	mux.Handle("/s3/", strip)
	mux.Handle("/s3", strip)
	return mux
}

// newS3Proxy returns the proxy in front of the in-memory S3 on port.
func newS3Proxy(port int, log *slog.Logger, more ...proxy.Option) (*proxy.Proxy, error) {
	return proxy.New(append([]proxy.Option{
		proxy.WithBuckets(proxy.Bucket{
			Name:     bucket,
			Endpoint: proxy.Endpoint{Host: "127.0.0.1", Port: port, Scheme: "http", PathStyle: true},
			// The in-memory S3 checks no signature; the proxy signs anyway.
			Credentials: proxy.Credentials{AccessKeyID: "upstream-key", SecretAccessKey: "upstream-secret"},
		}),
		proxy.WithClientKeys(map[string]string{keyID: keySecret}),
		proxy.WithLogger(log),
	}, more...)...)
}

// startInMemoryS3 serves an in-memory S3 holding the empty bucket on a
// loopback port of the OS's choosing, and returns its listener; closing
// the listener stops it.
func startInMemoryS3() (net.Listener, error) {
	mem := s3mem.New()
	if err := mem.CreateBucket(bucket); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: gofakes3.New(mem).Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l, nil
}
