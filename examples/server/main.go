// Command server runs the S3 proxy. With no configuration it starts a
// self-contained demo: an in-memory S3 server on a loopback port and the proxy
// in front of it, with one bucket, "demo", and one client key pair.
//
//	go run ./server
//	go run ./server -listen 127.0.0.1:7000 -log-level debug
//
// The demo's keys are public, so it only ever listens on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is the server's configuration, filled from flags.
type config struct {
	// Listen is the proxy's listen address; the demo refuses a non-loopback one.
	Listen string
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout time.Duration
}

// errUsage marks a command-line error already reported, with the usage, to
// stderr.
var errUsage = errors.New("usage")

// parseConfig fills a config from the command-line arguments (without the
// program name). Usage and flag errors are written to stderr.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:6190", "proxy listen `address` (loopback only for the demo)")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "lowest `level` logged: debug, info, warn or error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return config{}, err
	case err != nil:
		return config{}, fmt.Errorf("%w: %w", errUsage, err) // flag reported it
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments: %q", fs.Args())
	case cfg.ShutdownTimeout <= 0:
		err = errors.New("-shutdown-timeout must be positive")
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return config{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run starts the demo and serves until ctx is done, then drains in-flight
// requests and stops. It writes the instructions for trying the demo to stdout
// and its logs to stderr. It returns nil after a clean shutdown.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	d, err := startDemo(cfg, log)
	if err != nil {
		return err
	}
	log.Info("proxy listening", slog.String("addr", d.Addr()), slog.String("upstream", d.s3Addr()))
	printUsage(stdout, d.Addr())

	select {
	case <-ctx.Done():
		log.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
		err = nil
	case err = <-d.errc:
		log.Error("server stopped", slog.Any("error", err))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err = errors.Join(err, d.shutdown(sctx)); err == nil {
		log.Info("stopped")
	}
	return err
}

// printUsage tells how to try the demo listening on addr.
func printUsage(w io.Writer, addr string) {
	fmt.Fprintf(w, `S3 proxy demo on http://%[1]s: bucket %[2]q in memory, client key %[3]s. Try:

export AWS_ACCESS_KEY_ID=%[3]s AWS_SECRET_ACCESS_KEY=%[4]s AWS_DEFAULT_REGION=us-east-1
aws --endpoint-url http://%[1]s s3 ls
aws --endpoint-url http://%[1]s s3 cp ./README.md s3://%[2]s/

`, addr, demoBucket, demoKeyID, demoSecret)
}

// newHTTPServer returns a server for h with the timeouts every listener here
// uses. There is no ReadTimeout or WriteTimeout: bodies of any size stream
// through, and the proxy bounds its waits on the upstream itself.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
