package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/osproxy/proxy"
)

// The demo's bucket and keys. They are public: the demo listens on loopback only.
const (
	demoBucket = "demo"
	demoKeyID  = "osp-demo"
	demoSecret = "osp-demo-secret"

	// The in-memory S3 does not check signatures; the proxy signs anyway.
	fakeS3KeyID  = "fake-s3-key"
	fakeS3Secret = "fake-s3-secret"
)

// demo is a running demo: an in-memory S3 server on a loopback port and the
// proxy in front of it.
type demo struct {
	proxy  *proxy.Proxy
	front  *http.Server // the proxy
	frontL net.Listener
	s3     *http.Server // the in-memory S3
	s3L    net.Listener
	// errc receives the first error of either server.
	errc chan error
}

// startDemo starts the in-memory S3 and the proxy on cfg.Listen, which must be
// a loopback address. Both serve until shutdown.
func startDemo(cfg config, log *slog.Logger) (_ *demo, err error) {
	if err := checkLoopback(cfg.Listen); err != nil {
		return nil, err
	}
	d := &demo{errc: make(chan error, 2)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()

	if d.s3L, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("in-memory S3: %w", err)
	}
	s3, err := newFakeS3(log.With(slog.String("component", "fake-s3")))
	if err != nil {
		return nil, err
	}
	d.s3 = newHTTPServer(s3, log)

	port := d.s3L.Addr().(*net.TCPAddr).Port
	d.proxy, err = proxy.New(
		proxy.WithBuckets(proxy.Bucket{
			Name:        demoBucket,
			Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: port, Scheme: "http", PathStyle: true},
			Credentials: proxy.Credentials{AccessKeyID: fakeS3KeyID, SecretAccessKey: fakeS3Secret},
		}),
		proxy.WithClientKeys(map[string]string{demoKeyID: demoSecret}),
		proxy.WithLogger(log.With(slog.String("component", "proxy"))),
	)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	d.front = newHTTPServer(d.proxy, log)

	if d.frontL, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	// "localhost" could resolve to anything: check what was actually bound.
	if ip := d.frontL.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %s is not loopback; the demo's keys are public", d.frontL.Addr())
	}

	go d.serve(d.s3, d.s3L)
	go d.serve(d.front, d.frontL)
	return d, nil
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
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not loopback; the demo's keys are public", addr)
	}
	return nil
}

func (d *demo) serve(s *http.Server, l net.Listener) {
	if err := s.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		d.errc <- err
	}
}

// Addr is the proxy's listen address.
func (d *demo) Addr() string { return d.frontL.Addr().String() }

func (d *demo) s3Addr() string { return d.s3L.Addr().String() }

// shutdown stops accepting requests, waits until those in flight are done or
// ctx is, then stops the proxy and the in-memory S3. Past ctx, connections
// still open are closed.
func (d *demo) shutdown(ctx context.Context) error {
	err := d.front.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("draining requests: %w", err), d.front.Close())
	}
	_ = d.proxy.Close()
	// The upstream is ours alone: nothing is in flight there any more.
	return errors.Join(err, d.s3.Close())
}

// close releases whatever startDemo had set up before it failed.
func (d *demo) close() {
	for _, l := range []net.Listener{d.frontL, d.s3L} {
		if l != nil {
			_ = l.Close()
		}
	}
	if d.proxy != nil {
		_ = d.proxy.Close()
	}
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
