package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
)

// Soak bounds.
const (
	soakWorkers      = 8                      // concurrent clients, half aws-sdk-go-v2, half minio-go
	soakOpsPerSecond = 25                     // per worker, at most
	soakMaxOps       = 1_000_000              // in all
	soakOpTimeout    = 30 * time.Second       // per request
	soakGoroutineMax = 50                     // allowed growth, last window over first
	soakRSSMax       = 64 << 20               // allowed growth, bytes (of RSS, and of the Go heap in use)
	soakRSSMaxRace   = 256 << 20              // allowed RSS growth under -race
	soakMaxObject    = 1 << 20                // object sizes 1 B to 1 MiB
	soakMaxObjects   = 40                     // per worker, then the oldest half is deleted
	soakPeriod       = 500 * time.Millisecond // sampling period
)

// soakDuration is OSP_SOAK_DURATION, else 5 minutes in CI
// (OSP_REQUIRE_INTEGRATION=1), else 20 seconds.
func soakDuration(t *testing.T) time.Duration {
	if s := os.Getenv("OSP_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, "OSP_SOAK_DURATION")
		return d
	}
	if requireIntegration() {
		return 5 * time.Minute
	}
	return 20 * time.Second
}

// vmRSS is this process's resident set size from /proc/self/status, in bytes
// (0 where there is no /proc).
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type soakSample struct {
	at         time.Duration
	goroutines int
	rss        int64
	heap       uint64 // runtime.MemStats.HeapInuse
}

// soakClient is what a soak worker does its requests with.
type soakClient interface {
	put(ctx context.Context, key string, body []byte) error
	// get returns the SHA-256 (hex) and length of the object, streamed.
	get(ctx context.Context, key string) (string, int64, error)
	list(ctx context.Context, prefix string) ([]string, error)
	del(ctx context.Context, key string) error
}

type sdkSoak struct {
	c      *s3.Client
	bucket string
}

func (s sdkSoak) put(ctx context.Context, key string, body []byte) error {
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body)})
	return err
}

func (s sdkSoak) get(ctx context.Context, key string) (string, int64, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return "", 0, err
	}
	defer out.Body.Close()
	return hashStream(out.Body)
}

func hashStream(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (s sdkSoak) list(ctx context.Context, prefix string) ([]string, error) {
	return oracleKeys(ctx, s.c, s.bucket, prefix)
}

func (s sdkSoak) del(ctx context.Context, key string) error {
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	return err
}

type minioSoak struct {
	m      *minioGo
	bucket string
}

func (s minioSoak) put(ctx context.Context, key string, body []byte) error {
	_, err := s.m.c.PutObject(ctx, s.bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	return err
}

func (s minioSoak) get(ctx context.Context, key string) (string, int64, error) {
	o, err := s.m.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", 0, err
	}
	defer o.Close()
	return hashStream(o)
}

func (s minioSoak) list(ctx context.Context, prefix string) ([]string, error) {
	keys, _, err := s.m.List(ctx, s.bucket, prefix, "")
	return keys, err
}

func (s minioSoak) del(ctx context.Context, key string) error {
	return s.m.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

// TestSoak runs a bounded mixed load through the proxy to versitygw:
// concurrent clients putting, getting (checking the bytes), listing (checking
// the keys) and deleting their own objects. Zero unexpected errors; the
// goroutine count, RSS and Go heap of the process (proxy, servers and Go clients) of
// the last minute no higher than of the first, within a generous bound. It
// runs alone (not parallel) so that the counts are its own, and first (its
// file sorts before the matrix's) so that its first minute is not the
// matrix's.
func TestSoak(t *testing.T) {
	v := versity(t, false)
	dur := soakDuration(t)
	window := min(time.Minute, dur/4)
	const bucket = "osp-soak"
	srv := serve(t, newVGWProxy(t, v, []string{bucket}), false)
	o := oracle(t, v)
	_, err := o.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)

	var clients []soakClient
	for i := range soakWorkers {
		if i%2 == 0 {
			c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
			clients = append(clients, sdkSoak{c: c, bucket: bucket})
		} else {
			m, err := newMinio(target{url: srv.URL, scheme: "http", key: clientKey, secret: clientSecret})
			require.NoError(t, err)
			defer m.Close()
			clients = append(clients, minioSoak{m: m, bucket: bucket})
		}
	}

	pool := randomBytes(2*soakMaxObject, 99) // bodies are slices of it
	var (
		ops      atomic.Int64
		bytesIO  atomic.Int64
		errMu    sync.Mutex
		errs     []string
		errCount atomic.Int64
	)
	fail := func(w int, op string, err error) {
		errCount.Add(1)
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf("worker %d %s: %v", w, op, err))
		}
	}
	// What the tests before left (the matrix's buffers) goes back to the
	// system first, so that the first minute is the soak's own.
	runtime.GC()
	debug.FreeOSMemory()
	ctx, stop := context.WithTimeout(context.Background(), dur)
	defer stop()
	start := time.Now()

	var samples []soakSample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(soakPeriod)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, soakSample{at: time.Since(start), goroutines: runtime.NumGoroutine(), rss: vmRSS(), heap: ms.HeapInuse})
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			objects := map[string]string{} // key → SHA-256 of what was put
			prefix := fmt.Sprintf("w%d/", w)
			pace := time.NewTicker(time.Second / soakOpsPerSecond)
			defer pace.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-pace.C:
				}
				if ops.Add(1) > soakMaxOps {
					return
				}
				rctx, cancel := context.WithTimeout(context.Background(), soakOpTimeout)
				keys := slices.Sorted(maps.Keys(objects))
				switch r := rng.IntN(10); {
				case r < 4 || len(keys) == 0: // put
					key := fmt.Sprintf("%sobj %d+%d", prefix, n, rng.IntN(1000))
					size := rng.IntN(soakMaxObject) + 1
					if rng.IntN(4) == 0 {
						size = rng.IntN(1024) + 1
					}
					off := rng.IntN(len(pool) - size + 1)
					body := pool[off : off+size]
					if err := c.put(rctx, key, body); err != nil {
						fail(w, "put", err)
					} else {
						objects[key] = sha256Hex(body)
						bytesIO.Add(int64(size))
					}
				case r < 7: // get
					key := keys[rng.IntN(len(keys))]
					sum, n, err := c.get(rctx, key)
					if err != nil {
						fail(w, "get", err)
					} else if sum != objects[key] {
						fail(w, "get", fmt.Errorf("%q: the %d bytes read are not those put", key, n))
					} else {
						bytesIO.Add(n)
					}
				case r < 8: // list
					got, err := c.list(rctx, prefix)
					if err != nil {
						fail(w, "list", err)
					} else if sort.Strings(got); !slices.Equal(got, keys) {
						fail(w, "list", fmt.Errorf("listed %d keys, want %d", len(got), len(keys)))
					}
				default: // delete
					key := keys[rng.IntN(len(keys))]
					if err := c.del(rctx, key); err != nil {
						fail(w, "delete", err)
					} else {
						delete(objects, key)
					}
				}
				cancel()
				if len(objects) > soakMaxObjects { // bounded: trim the oldest half
					for _, k := range keys[:len(keys)/2] {
						if err := c.del(context.Background(), k); err != nil {
							fail(w, "delete", err)
						}
						delete(objects, k)
					}
				}
			}
		}()
	}
	wg.Wait()
	<-sampled
	elapsed := time.Since(start)
	for _, c := range clients {
		if m, ok := c.(minioSoak); ok {
			m.m.tr.CloseIdleConnections()
		}
	}

	first, last := soakWindow(samples, 0, window), soakWindow(samples, elapsed-window, elapsed)
	t.Logf("soak: %v, %d workers, %d requests (%.0f/s), %.0f MiB moved, %d unexpected errors, %d proxy requests",
		elapsed.Round(time.Second), soakWorkers, ops.Load(), float64(ops.Load())/elapsed.Seconds(),
		float64(bytesIO.Load())/(1<<20), errCount.Load(), srv.handled.Load())
	fmt.Printf("\nsoak %v (%d workers, %d requests, %d unexpected errors)\n"+
		"goroutines: first %v max %d mean %.0f, last %v max %d mean %.0f\n"+
		"RSS:        first %v max %.1f MiB mean %.1f MiB, last %v max %.1f MiB mean %.1f MiB\n"+
		"Go heap in use: first %v max %.1f MiB, last %v max %.1f MiB\n",
		elapsed.Round(time.Second), soakWorkers, ops.Load(), errCount.Load(),
		window, first.maxG, first.meanG, window, last.maxG, last.meanG,
		window, mib(first.maxRSS), mib(int64(first.meanRSS)), window, mib(last.maxRSS), mib(int64(last.meanRSS)),
		window, mib(int64(first.maxHeap)), window, mib(int64(last.maxHeap)))
	for _, e := range errs {
		t.Error(e)
	}
	if last.maxG > first.maxG+soakGoroutineMax {
		t.Errorf("goroutines grew from %d (first %v) to %d (last %v)", first.maxG, window, last.maxG, window)
	}
	rssMax := int64(soakRSSMax)
	if raceBuild {
		rssMax = soakRSSMaxRace
	}
	if vmRSS() > 0 && last.maxRSS > first.maxRSS+rssMax {
		t.Errorf("RSS grew from %.1f MiB (first %v) to %.1f MiB (last %v), more than %.0f MiB", mib(first.maxRSS), window, mib(last.maxRSS), window, mib(rssMax))
	}
	if last.maxHeap > first.maxHeap+soakRSSMax {
		t.Errorf("the Go heap in use grew from %.1f MiB (first %v) to %.1f MiB (last %v)", mib(int64(first.maxHeap)), window, mib(int64(last.maxHeap)), window)
	}
	_ = emptyBucket(context.Background(), o, bucket)
	_, _ = o.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
}

type windowStats struct {
	maxHeap uint64
	maxG    int
	meanG   float64
	maxRSS  int64
	meanRSS float64
}

func soakWindow(samples []soakSample, from, to time.Duration) windowStats {
	var w windowStats
	var n int
	for _, s := range samples {
		if s.at < from || s.at > to {
			continue
		}
		n++
		w.maxG = max(w.maxG, s.goroutines)
		w.maxRSS = max(w.maxRSS, s.rss)
		w.maxHeap = max(w.maxHeap, s.heap)
		w.meanG += float64(s.goroutines)
		w.meanRSS += float64(s.rss)
	}
	if n > 0 {
		w.meanG /= float64(n)
		w.meanRSS /= float64(n)
	}
	return w
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
