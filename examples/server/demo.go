package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/osproxy/proxy"
)

// The demo's bucket and keys. They are public: the demo listens on loopback only.
const (
	demoBucket = "demo"
	demoKeyID  = "osp-demo"
	demoSecret = "osp-demo-secret"

	// demoBrowserListen is where the demo serves the browser page.
	demoBrowserListen = "127.0.0.1:6192"

	// The in-memory S3 does not check signatures; the proxy signs anyway.
	fakeS3KeyID  = "fake-s3-key"
	fakeS3Secret = "fake-s3-secret"
)

// listenFakeS3 returns the demo's in-memory S3, holding the empty demo bucket,
// and a listener for it on a loopback port of the OS's choosing.
func listenFakeS3(log *slog.Logger) (*http.Server, net.Listener, int, error) {
	h, err := newFakeS3(log)
	if err != nil {
		return nil, nil, 0, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, 0, fmt.Errorf("in-memory S3: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return srv, l, l.Addr().(*net.TCPAddr).Port, nil
}

// demoOptions are the proxy options of the demo: the demo bucket on the
// in-memory S3 at 127.0.0.1:port, and the demo's client key, verified; with
// the browser page at page (nil: none), a CORS policy that lets the page in.
func demoOptions(port int, page net.Addr) []proxy.Option {
	opts := []proxy.Option{
		proxy.WithBuckets(proxy.Bucket{
			Name:        demoBucket,
			Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: port, Scheme: "http", PathStyle: true},
			Credentials: proxy.Credentials{AccessKeyID: fakeS3KeyID, SecretAccessKey: fakeS3Secret},
		}),
		proxy.WithClientKeys(map[string]string{demoKeyID: demoSecret}),
		proxy.WithSigV2(true), // aws-cli v1's `aws s3 presign` signs with SigV2
	}
	if page != nil {
		opts = append(opts, proxy.WithCORS(browserCORSRule(pageOrigins(page)...)))
	}
	return opts
}

// browserCORSRule is the CORS rule the browser page needs from the proxy:
// its origins may list, read, and upload with PUT and POST, send any header,
// and read the ETag, the request id and a POST's Location.
func browserCORSRule(origins ...string) proxy.CORSRule {
	return proxy.CORSRule{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodHead},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  []string{"ETag", "x-amz-request-id", "Location"},
		MaxAgeSeconds:  600,
	}
}

// pageOrigins are the origins of a page served at addr, a loopback address:
// http://<its IP>:<port>, and http://localhost:<port>.
func pageOrigins(addr net.Addr) []string {
	ta := addr.(*net.TCPAddr)
	return []string{"http://" + ta.String(), "http://localhost:" + strconv.Itoa(ta.Port)}
}

// newFakeS3 returns an in-memory S3 server holding the empty demo bucket.
func newFakeS3(log *slog.Logger) (http.Handler, error) {
	backend := s3mem.New()
	if err := backend.CreateBucket(demoBucket); err != nil {
		return nil, fmt.Errorf("in-memory S3: create bucket: %w", err)
	}
	return gofakes3.New(backend, gofakes3.WithLogger(fakeS3Logger{log})).Server(), nil
}

// checkLoopback refuses a listen address whose host is not a loopback IP or
// "localhost". An empty host means every interface, and is refused too.
func checkLoopback(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if !loopbackAddr(addr) {
		return fmt.Errorf("listen address %q is not loopback; the demo's keys are public", addr)
	}
	return nil
}

// fakeS3Logger sends gofakes3's log lines to slog at debug level; its errors
// at warn.
type fakeS3Logger struct{ log *slog.Logger }

func (l fakeS3Logger) Print(level gofakes3.LogLevel, v ...any) {
	lv := slog.LevelDebug
	if level == gofakes3.LogErr {
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
