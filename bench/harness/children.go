package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy"
)

// The harness runs as one binary in several modes: the orchestrator (no
// -mode) re-executes itself as the origin, the bare proxy and this proxy, each
// its own process. A child listens on 127.0.0.1, prints "listening <addr>" on
// its standard output and exits when its standard input closes, so that it
// never outlives the orchestrator.

// Credentials shared by the orchestrator and the proxy child.
const (
	clientKey      = "harness-client"
	clientSecret   = "harness-client-secret"
	upstreamKey    = "harness-upstream"
	upstreamSecret = "harness-upstream-secret"
	warmAPIKey     = "harness-api-key-warm" // the IAM bucket of the load test
	coldAPIKey     = "harness-api-key-cold" // used only by the cold IAM test
	region         = "us-east-1"
	bucket         = "bench"
	iamBucket      = "bench-iam"
	coldBucket     = "bench-cold"
	smallSize      = 1 << 10
	// upstreamCheckPrefix is where the proxy child serves its instance with
	// WithUpstreamPayloadCheck(true).
	upstreamCheckPrefix = "/upstream-check"
	blockSize           = 64 << 10 // the origin's and the generators' repeated block
)

// block is the content every generated body repeats: 64 KiB of random bytes.
var block = func() []byte {
	b := make([]byte, blockSize)
	_, _ = rand.Read(b)
	return b
}()

func runChild(mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	origin := fs.String("origin", "", "origin address (bare, proxy)")
	iam := fs.String("iam", "", "IAM token endpoint URL (proxy)")
	scale := fs.String("scale", "", "growth: what the proxy has many of (proxy; see growth.ScaleKinds)")
	n := fs.Int("n", 0, "growth: how many (proxy, with -scale)")
	tag := fs.String("tag", "", "suffix of the CPU profile's file name")
	_ = fs.Parse(args)
	// HARNESS_CPUPROFILE=<prefix> profiles every child into <prefix>.<mode>
	// (<prefix>.<mode>-2 for the children of the GOMAXPROCS=2 rows).
	if prefix := os.Getenv("HARNESS_CPUPROFILE"); prefix != "" {
		f, err := os.Create(prefix + "." + mode + *tag)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	var h http.Handler
	switch mode {
	case "origin":
		h = http.HandlerFunc(serveOrigin)
	case "sha256":
		h = http.HandlerFunc(serveHash)
	case "bare":
		h = bareProxy(*origin)
	case "proxy-scale":
		p, err := newScaleProxy(*scale, *n, *origin, *iam)
		if err != nil {
			return err
		}
		defer p.Close()
		h = p
	case "proxy":
		p, err := newProxy(*origin, *iam)
		if err != nil {
			return err
		}
		defer p.Close()
		// A second instance leaves hex payload hashes to the upstream.
		checked, err := newProxy(*origin, *iam, proxy.WithUpstreamPayloadCheck(true), proxy.WithPathPrefix(upstreamCheckPrefix))
		if err != nil {
			return err
		}
		defer checked.Close()
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, upstreamCheckPrefix+"/") {
				checked.ServeHTTP(w, r)
				return
			}
			p.ServeHTTP(w, r)
		})
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: withMemStats(h), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveHash hashes ?n= bytes of block with crypto/sha256, as the proxy
// hashes a verified upload, and answers the sum: the hash alone, for the
// streaming rows' "forwarding plus one SHA-256 pass".
func serveHash(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 {
		http.Error(w, "n", http.StatusBadRequest)
		return
	}
	h := sha256.New()
	for ; n > 0; n -= blockSize {
		h.Write(block[:min(n, blockSize)])
	}
	_, _ = io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
}

// serveOrigin is a minimal S3 origin without storage: GET answers the number
// of bytes the key names ("size-<n>", or 1 KiB for any other key) by repeating
// block; PUT reads the body to its end, discards it and answers the payload
// length in X-Origin-Payload.
func serveOrigin(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	switch r.Method {
	case http.MethodGet:
		n := int64(smallSize)
		if v, ok := strings.CutPrefix(key, "size-"); ok {
			var err error
			if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				http.Error(w, "bad size", http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		for n > 0 {
			k := min(n, int64(len(block)))
			if _, err := w.Write(block[:k]); err != nil {
				return
			}
			n -= k
		}
	case http.MethodPut:
		buf := make([]byte, 256<<10)
		var total int64
		for {
			n, err := r.Body.Read(buf)
			total += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if r.ContentLength >= 0 && total != r.ContentLength {
			http.Error(w, "short body", http.StatusBadRequest)
			return
		}
		// The proxy may send an aws-chunked body on framed again: its payload
		// is what x-amz-decoded-content-length says.
		payload := strconv.FormatInt(total, 10)
		if v := r.Header.Get("X-Amz-Decoded-Content-Length"); v != "" {
			payload = v
		}
		w.Header().Set("X-Origin-Payload", payload)
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// upstreamTransport is what both proxies use towards the origin: the settings
// of the proxy's default transport.
func upstreamTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// bareProxy is Go's httputil.ReverseProxy doing nothing but forwarding: the
// baseline.
func bareProxy(origin string) http.Handler {
	target := &url.URL{Scheme: "http", Host: origin}
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: upstreamTransport(),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
}

// newProxy is this proxy in front of the origin: one HMAC bucket, two IAM
// buckets, verified client signatures, an authorizer that allows everything
// (cached), the default transport and the real clock.
func newProxy(origin, iam string, more ...proxy.Option) (*proxy.Proxy, error) {
	ep, err := originEndpoint(origin)
	if err != nil {
		return nil, err
	}
	return proxy.New(append([]proxy.Option{
		proxy.WithBuckets(
			proxy.Bucket{Name: bucket, Endpoint: ep,
				Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}},
			proxy.Bucket{Name: iamBucket, Endpoint: ep, Credentials: proxy.Credentials{APIKey: warmAPIKey}},
			proxy.Bucket{Name: coldBucket, Endpoint: ep, Credentials: proxy.Credentials{APIKey: coldAPIKey}},
		),
		proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
		proxy.WithAuthorizer(func(context.Context, string, string) (bool, error) { return true, nil }),
		proxy.WithIAMEndpoint(iam),
	}, more...)...)
}

// originEndpoint is the origin as the proxy's upstream.
func originEndpoint(origin string) (proxy.Endpoint, error) {
	host, portStr, err := net.SplitHostPort(origin)
	if err != nil {
		return proxy.Endpoint{}, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return proxy.Endpoint{}, err
	}
	return proxy.Endpoint{Host: host, Port: port, Scheme: "http", Region: region, PathStyle: true}, nil
}

// memStatsPath is where every child answers its memory figures (a path no
// bucket can have: bucket names do not start with "_").
const memStatsPath = "/_harness/memstats"

// memStats is what a child answers at memStatsPath, after a collection that
// also returns the free heap to the operating system (debug.FreeOSMemory), so
// that its RSS is settled too.
type memStats struct {
	HeapAlloc uint64 // live heap
	HeapInuse uint64
	Sys       uint64
	HookCalls int64 // calls of the hooks of a scale proxy (hookCalls)
}

func withMemStats(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != memStatsPath {
			h.ServeHTTP(w, r)
			return
		}
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(memStats{HeapAlloc: m.HeapAlloc, HeapInuse: m.HeapInuse, Sys: m.Sys, HookCalls: hookCalls.Load()})
	})
}
