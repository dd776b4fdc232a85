package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/osproxy/proxy"
)

// server is a running proxy: its listener, its admin listener and, for the
// demo, the in-memory S3 behind it.
type server struct {
	cfg     config
	log     *slog.Logger
	proxy   *proxy.Proxy
	metrics *metrics
	tel     *telemetry // the OpenTelemetry export; nil without

	front  *http.Server // the proxy
	frontL net.Listener
	admin  *http.Server // health and metrics; nil when turned off
	adminL net.Listener
	s3     *http.Server // the demo's in-memory S3; nil otherwise
	s3L    net.Listener
	page   *http.Server // the browser page; nil when turned off
	pageL  net.Listener

	// ready is true from the moment the listeners are up until shutdown
	// begins: /readyz answers 503 when it is false.
	ready atomic.Bool
	// errc receives the first error of any of the servers.
	errc chan error
}

// start starts the proxy as cfg says: the demo when cfg has no file, else the
// buckets and clients of the file. cfg must be validated.
func start(cfg config, log *slog.Logger) (_ *server, err error) {
	s := &server{cfg: cfg, log: log, metrics: newMetrics(), errc: make(chan error, 4)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	// The browser page's listener comes first: the demo's CORS policy names
	// its origin.
	var pageAddr net.Addr
	if addr := cfg.Browser.Listen.Value; addr != "" {
		if cfg.path == "" {
			if err := checkLoopback(addr); err != nil {
				return nil, fmt.Errorf("browser page: %w", err)
			}
		}
		if s.pageL, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("browser page listener: %w", err)
		}
		pageAddr = s.pageL.Addr()
		if ip := pageAddr.(*net.TCPAddr).IP; cfg.path == "" && !ip.IsLoopback() {
			return nil, fmt.Errorf("browser page listen address %s is not loopback; the demo's keys are public", pageAddr)
		}
	}

	var opts []proxy.Option
	if cfg.path == "" {
		if err := checkLoopback(cfg.Server.Listen.Value); err != nil {
			return nil, err
		}
		var port int
		if s.s3, s.s3L, port, err = listenFakeS3(log.With(slog.String("component", "fake-s3"))); err != nil {
			return nil, err
		}
		opts = demoOptions(port, pageAddr)
	} else {
		opts = s.cfg.proxyOptions() // s.cfg keeps what the options hold open (a Redis client)
	}
	obs := s.metrics.observer(log.With(slog.String("component", "access")))
	if cfg.Telemetry.OTLPEndpoint.Value != "" {
		if s.tel, err = startTelemetry(cfg.Telemetry, log.With(slog.String("component", "telemetry"))); err != nil {
			return nil, err
		}
		obs = proxy.JoinObservers(obs, s.tel.observer)
	}
	opts = append(opts,
		proxy.WithLogger(log.With(slog.String("component", "proxy"))),
		proxy.WithObserver(obs))
	if s.proxy, err = proxy.New(opts...); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}

	s.front = newHTTPServer(s.metrics.instrument(s.proxy), cfg, log)
	if cfg.cert != nil {
		s.front.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cfg.cert}, MinVersion: tls.VersionTLS12}
	}
	if s.frontL, err = net.Listen("tcp", cfg.Server.Listen.Value); err != nil {
		return nil, err
	}
	if cfg.path == "" {
		// "localhost" could resolve to anything: check what was actually bound.
		if ip := s.frontL.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			return nil, fmt.Errorf("listen address %s is not loopback; the demo's keys are public", s.frontL.Addr())
		}
	}
	if s.pageL != nil {
		page, err := s.browserPage()
		if err != nil {
			return nil, err
		}
		s.page = newHTTPServer(page, cfg, log)
		s.page.TLSConfig = s.front.TLSConfig
	}
	if addr := cfg.Admin.Listen.Value; addr != "" {
		s.admin = newHTTPServer(s.adminHandler(), cfg, log)
		if s.adminL, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}

	if s.s3 != nil {
		go s.serve(s.s3, s.s3L, false)
	}
	if s.admin != nil {
		go s.serve(s.admin, s.adminL, false)
	}
	if s.page != nil {
		go s.serve(s.page, s.pageL, cfg.cert != nil)
	}
	go s.serve(s.front, s.frontL, cfg.cert != nil)
	s.ready.Store(true)
	return s, nil
}

// newHTTPServer returns a server for h with the timeouts every listener here
// uses. There is no ReadTimeout or WriteTimeout: bodies of any size stream
// through, and the proxy bounds its waits on the upstream itself.
func newHTTPServer(h http.Handler, cfg config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.Value,
		IdleTimeout:       cfg.Server.IdleTimeout.Value,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

func (s *server) serve(srv *http.Server, l net.Listener, withTLS bool) {
	var err error
	if withTLS {
		err = srv.ServeTLS(l, "", "") // the certificate is in srv.TLSConfig
	} else {
		err = srv.Serve(l)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		s.errc <- err
	}
}

// adminHandler serves /healthz (the process is alive), /readyz (it serves
// requests; 503 once shutdown began) and /metrics (Prometheus).
func (s *server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	return mux
}

// Addr is the proxy's listen address.
func (s *server) Addr() string { return s.frontL.Addr().String() }

// AdminAddr is the admin listener's address, "" when it is off.
func (s *server) AdminAddr() string {
	if s.adminL == nil {
		return ""
	}
	return s.adminL.Addr().String()
}

// PageURL is the browser page's URL, "" when it is off.
func (s *server) PageURL() string {
	switch {
	case s.pageL == nil:
		return ""
	case s.cfg.cert != nil:
		return "https://" + s.pageL.Addr().String() + "/"
	}
	return "http://" + s.pageL.Addr().String() + "/"
}

// browserPage is the browser page of the configuration.
func (s *server) browserPage() (*browserPage, error) {
	b := s.cfg.Browser
	bucket, keyID, secret, region := b.Bucket.Value, b.ClientKey.Value, "", "us-east-1"
	if s.cfg.path == "" {
		secret = demoSecret
	} else {
		if bucket == "" {
			bucket = s.cfg.Buckets[0].Name.Value
		}
		for _, k := range s.cfg.Clients.Keys {
			if k.AccessKeyID.Value == keyID {
				secret = k.SecretAccessKey.Value
			}
		}
		if len(s.cfg.Clients.Regions) > 0 {
			region = s.cfg.Clients.Regions[0].Value
		}
	}
	return newBrowserPage(bucket, keyID, secret, region, b.ProxyURL.Value, s.frontL.Addr(), s.cfg.cert != nil,
		s.log.With(slog.String("component", "browser")))
}

// URL is the proxy's endpoint URL.
func (s *server) URL() string {
	if s.cfg.cert != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// shutdown stops the server gracefully: /readyz turns 503 at once; after the
// shutdown delay (during which requests are still served, so that load
// balancers notice) the proxy stops accepting connections and waits for the
// requests in flight until they are done or ctx is. Past ctx, connections
// still open are closed. The admin listener stops last.
func (s *server) shutdown(ctx context.Context) error {
	s.ready.Store(false)
	if d := s.cfg.Server.ShutdownDelay.Value; d > 0 {
		s.log.Info("not ready; still serving during the shutdown delay", slog.Duration("delay", d))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	err := s.front.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("draining requests: %w", err), s.front.Close())
	}
	_ = s.proxy.Close()
	if s.cfg.redis != nil {
		_ = s.cfg.redis.Close()
	}
	if s.tel != nil {
		// What the last requests left is exported before the process ends.
		if terr := s.tel.shutdown(ctx); terr != nil {
			s.log.Warn("telemetry: the last export failed", slog.Any("error", terr))
		}
	}
	if s.s3 != nil {
		// The upstream is ours alone: nothing is in flight there any more.
		err = errors.Join(err, s.s3.Close())
	}
	if s.page != nil {
		if s.page.Shutdown(ctx) != nil {
			_ = s.page.Close()
		}
	}
	if s.admin != nil {
		if s.admin.Shutdown(ctx) != nil {
			_ = s.admin.Close()
		}
	}
	return err
}

// close releases whatever start had set up before it failed.
func (s *server) close() {
	for _, l := range []net.Listener{s.frontL, s.adminL, s.s3L, s.pageL} {
		if l != nil {
			_ = l.Close()
		}
	}
	if s.proxy != nil {
		_ = s.proxy.Close()
	}
	if s.cfg.redis != nil {
		_ = s.cfg.redis.Close()
	}
	if s.tel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.tel.shutdown(ctx)
	}
}
