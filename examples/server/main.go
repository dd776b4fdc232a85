// Command server runs the S3 proxy as a service.
//
// With no configuration it starts a self-contained demo: an in-memory S3
// server on a loopback port and the proxy in front of it, with one bucket,
// "demo", and one client key pair. The demo's keys are public, so it only ever
// listens on loopback.
//
//	go run ./server
//	go run ./server -listen 127.0.0.1:7000 -log-level debug
//
// With a YAML config file (see config.example.yaml) it serves the buckets and
// clients the file lists; flags override the file:
//
//	go run ./server -config /etc/osproxy/config.yaml -log-level debug
//
// Either way an admin listener (default 127.0.0.1:6191) serves /healthz,
// /readyz and Prometheus /metrics, and SIGINT or SIGTERM shuts down gracefully.
// A browser page (browser.go), on in the demo at http://127.0.0.1:6192/ and off
// unless configured otherwise, lists a bucket and uploads files to it through
// the proxy from another origin, with presigned PUTs and POSTs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// errUsage marks a command-line error already reported, with the usage, to
// stderr.
var errUsage = errors.New("usage")

// parseConfig builds the configuration from the command-line arguments
// (without the program name): the defaults, then the -config file if any,
// then the other flags. Usage and flag errors are written to stderr; a bad
// file or a bad combination is a *configError.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: server [-config file.yaml] [flags]\n\n"+
			"Without -config, runs the demo: an in-memory S3 behind the proxy on loopback.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "YAML config `file`; without it, the demo runs")
	listen := fs.String("listen", "127.0.0.1:6190", "proxy listen `address` (loopback only for the demo)")
	adminListen := fs.String("admin-listen", "127.0.0.1:6191", "admin listen `address` for /healthz, /readyz and /metrics; empty turns it off")
	browserListen := fs.String("browser-listen", "", "listen `address` of the browser page (default 127.0.0.1:6192 for the demo, browser.listen with -config); empty turns it off")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` (PEM) of the proxy listener; needs -config")
	tlsKey := fs.String("tls-key", "", "TLS private key `file` (PEM) of the proxy listener; needs -config")
	var level, format string
	fs.Func("log-level", "lowest `level` logged: debug, info (default), warn or error", oneOf(&level, "debug", "info", "warn", "error"))
	fs.Func("log-format", "log `format`: json (default with -config) or text (default for the demo)", oneOf(&format, "json", "text"))
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	check := fs.Bool("check", false, "check the configuration, print what it serves and exit")

	err := fs.Parse(args)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case errors.Is(err, flag.ErrHelp):
		return config{}, err
	case err != nil:
		return config{}, fmt.Errorf("%w: %w", errUsage, err) // flag reported it
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments: %q", fs.Args())
	case set["shutdown-timeout"] && *shutdownTimeout <= 0:
		err = errors.New("-shutdown-timeout must be positive")
	case *path == "" && (set["tls-cert"] || set["tls-key"]):
		err = errors.New("-tls-cert and -tls-key need -config: the demo serves plain HTTP on loopback")
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return config{}, fmt.Errorf("%w: %w", errUsage, err)
	}

	cfg := defaultConfig()
	if *path == "" {
		cfg.Log.Format = value("text")
		cfg.Browser = browserConfig{Listen: value(demoBrowserListen), ClientKey: value(demoKeyID), Bucket: value(demoBucket)}
	} else if err := loadConfig(*path, &cfg); err != nil {
		return config{}, err
	}
	// Flags override the file.
	for name, apply := range map[string]func(){
		"listen":           func() { cfg.Server.Listen.set(*listen, "-listen") },
		"admin-listen":     func() { cfg.Admin.Listen.set(*adminListen, "-admin-listen") },
		"browser-listen":   func() { cfg.Browser.Listen.set(*browserListen, "-browser-listen") },
		"tls-cert":         func() { cfg.Server.TLS.CertFile.set(*tlsCert, "-tls-cert") },
		"tls-key":          func() { cfg.Server.TLS.KeyFile.set(*tlsKey, "-tls-key") },
		"log-level":        func() { cfg.Log.Level.set(level, "-log-level") },
		"log-format":       func() { cfg.Log.Format.set(format, "-log-format") },
		"shutdown-timeout": func() { cfg.Server.ShutdownTimeout.set(*shutdownTimeout, "-shutdown-timeout") },
	} {
		if set[name] {
			apply()
		}
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	cfg.check = *check
	return cfg, nil
}

// oneOf is a flag function that accepts one of the values given.
func oneOf(dst *string, values ...string) func(string) error {
	return func(s string) error {
		for _, v := range values {
			if s == v {
				*dst = s
				return nil
			}
		}
		return fmt.Errorf("want one of %q", values)
	}
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

// run starts the server and serves until ctx is done, then drains in-flight
// requests and stops. For the demo it writes the instructions for trying it to
// stdout. Logs go to stderr. It returns nil after a clean shutdown.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	if cfg.check {
		fmt.Fprintln(stdout, cfg.summary())
		return nil
	}
	log := newLogger(cfg.Log, stderr)

	s, err := start(cfg, log)
	if err != nil {
		return err
	}
	attrs := []any{slog.String("addr", s.Addr()), slog.Bool("tls", cfg.cert != nil), slog.String("admin", s.AdminAddr())}
	if u := s.PageURL(); u != "" {
		attrs = append(attrs, slog.String("browser_page", u))
	}
	if cfg.path == "" {
		attrs = append(attrs, slog.String("upstream", s.s3L.Addr().String()))
	} else {
		attrs = append(attrs, slog.String("config", cfg.path), slog.Int("buckets", len(cfg.Buckets)),
			slog.String("clients", cfg.Clients.Mode.Value))
		for _, w := range cfg.insecure() {
			log.Warn(w)
		}
	}
	log.Info("proxy listening", attrs...)
	if cfg.path == "" {
		printUsage(stdout, s.Addr(), s.AdminAddr(), s.PageURL())
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", slog.Duration("timeout", cfg.Server.ShutdownTimeout.Value))
		err = nil
	case err = <-s.errc:
		log.Error("server stopped", slog.Any("error", err))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Server.ShutdownTimeout.Value)
	defer cancel()
	if err = errors.Join(err, s.shutdown(sctx)); err == nil {
		log.Info("stopped")
	}
	return err
}

// newLogger returns the logger the configuration asks for, writing to w.
func newLogger(c logConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level.Value)) // validated
	opts := &slog.HandlerOptions{Level: level}
	if c.Format.Value == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// printUsage tells how to try the demo listening on addr.
func printUsage(w io.Writer, addr, admin, page string) {
	fmt.Fprintf(w, `S3 proxy demo on http://%[1]s: bucket %[2]q in memory, client key %[3]s. Try:

export AWS_ACCESS_KEY_ID=%[3]s AWS_SECRET_ACCESS_KEY=%[4]s AWS_DEFAULT_REGION=us-east-1
aws --endpoint-url http://%[1]s s3 ls
aws --endpoint-url http://%[1]s s3 cp ./README.md s3://%[2]s/

`, addr, demoBucket, demoKeyID, demoSecret)
	if admin != "" {
		fmt.Fprintf(w, "Health and metrics: curl http://%[1]s/readyz, curl http://%[1]s/metrics\n\n", admin)
	}
	if page != "" {
		fmt.Fprintf(w, "In a browser: %s lists the bucket and uploads files to it through the proxy (presigned PUT and POST)\n\n", page)
	}
}
