package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/osproxy/proxy/internal/vgwtest"
)

// startIAMVersity starts a versitygw of the test's own that keeps accounts
// besides its root (its internal IAM) and writes its access log; without a
// versitygw binary the test is skipped, or fails when OSP_REQUIRE_INTEGRATION=1.
func startIAMVersity(t *testing.T) *vgwtest.Server {
	t.Helper()
	bin, missing, err := vgwtest.Binary()
	switch {
	case missing && !vgwtest.RequireIntegration():
		t.Skipf("skipped: %v (set VERSITYGW or put versitygw on PATH; OSP_REQUIRE_INTEGRATION=1 makes this a failure)", err)
	case err != nil:
		t.Fatalf("versitygw: %v", err)
	}
	v, err := vgwtest.StartWith(bin, vgwtest.Options{IAM: true, AccessLog: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	return v
}

// rotationScript is a credential_process that hands out the keys of user A,
// then of user B on its next run, and so on, each living life: the keys of an
// account that rotates them. Each run appends its time to runs.
const rotationScript = `#!/bin/sh
set -e
runs=%[1]q
date +%%s.%%N >> "$runs"
n=$(wc -l < "$runs")
if [ $((n %% 2)) -eq 1 ]; then id=%[2]q; secret=%[3]q; else id=%[4]q; secret=%[5]q; fi
expires=$(date -u -d "+%[6]d seconds" +%%Y-%%m-%%dT%%H:%%M:%%SZ)
printf '{"Version": 1, "AccessKeyId": "%%s", "SecretAccessKey": "%%s", "Expiration": "%%s"}\n' "$id" "$secret" "$expires"
`

// TestRotatingCredentials runs the server with a bucket whose keys come from
// an AWS shared config profile with a credential_process, in front of a
// versitygw with two accounts of its own. The process hands out one account's
// keys, then the other's, each living 20 seconds, while 16 clients write and
// read through the proxy for 50 seconds: every request succeeds, versitygw
// sees requests signed by both accounts, and the process runs once per
// rotation (the proxy retrieves keys ahead of their expiry, once for however
// many requests are in flight), not once per request.
func TestRotatingCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: it runs for a minute")
	}
	v := startIAMVersity(t)
	const (
		bucket  = "rotation"
		userA   = "rotation-user-a"
		userB   = "rotation-user-b"
		life    = 20 // seconds the keys live
		workers = 16
	)
	duration := 50 * time.Second
	secretA, secretB := userA+"-secret", userB+"-secret"
	for _, u := range [][2]string{{userA, secretA}, {userB, secretB}} {
		if err := v.CreateUser(u[0], u[1], "user"); err != nil {
			t.Fatal(err)
		}
	}
	root := newS3Client(v.URL(), vgwtest.AccessKey, vgwtest.SecretKey, nil)
	if _, err := root.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": [%q, %q]},
		"Action": "s3:*", "Resource": ["arn:aws:s3:::%s", "arn:aws:s3:::%s/*"]}]}`, userA, userB, bucket, bucket)
	if _, err := root.PutBucketPolicy(t.Context(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	script := filepath.Join(dir, "issue-keys")
	if err := os.WriteFile(script, fmt.Appendf(nil, rotationScript, runs, userA, secretA, userB, secretB, life), 0o700); err != nil {
		t.Fatal(err)
	}
	awsConfig := filepath.Join(dir, "aws-config")
	if err := os.WriteFile(awsConfig, []byte("[profile rotation]\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	awsCredentials := filepath.Join(dir, "aws-credentials")
	if err := os.WriteFile(awsCredentials, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadTest(t, fmt.Sprintf(`
clients:
  keys: [{access_key_id: rotation-client, secret_access_key: rotation-client-secret}]
buckets:
  - {name: %s, host: 127.0.0.1, port: %d, scheme: http, path_style: true, aws_profile: rotation}
aws: {config_file: %q, credentials_file: %q}
`, bucket, v.Port, awsConfig, awsCredentials), "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Not a line per request: the warnings, and what the proxy says of the
	// keys it obtains.
	s, err := start(cfg, slog.New(credentialsLog{slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer hc.CloseIdleConnections()
	client := newS3Client(s.URL(), "rotation-client", "rotation-client-secret", hc)
	var requests, failures atomic.Int64
	var mu sync.Mutex
	var failed []string
	fail := func(format string, args ...any) {
		failures.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(failed) < 10 {
			failed = append(failed, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
		}
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(duration))
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			body := make([]byte, 1024)
			for n := 0; ctx.Err() == nil; n++ {
				_, _ = rand.Read(body)
				key := fmt.Sprintf("w%d/%d", w, n%8)
				// Each request gets its own context: the deadline ends the
				// loop, never a request halfway.
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				requests.Add(1)
				if err := put(t, client, bucket, key, body); err != nil {
					fail("PUT %s: %v", key, err)
				}
				requests.Add(1)
				out, err := client.GetObject(rctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err != nil {
					fail("GET %s: %v", key, err)
				} else {
					var got bytes.Buffer
					_, err := got.ReadFrom(out.Body)
					out.Body.Close()
					if err != nil || !bytes.Equal(got.Bytes(), body) {
						fail("GET %s: %d bytes, %v: not what was written", key, got.Len(), err)
					}
				}
				rcancel()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	n := requests.Load()
	t.Logf("%d requests in %s by %d clients, %d failed", n, elapsed.Round(time.Millisecond), workers, failures.Load())
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed; the first:\n%s", failures.Load(), n, strings.Join(failed, "\n"))
	}
	if n < 200 {
		t.Errorf("only %d requests", n)
	}

	// The process ran once per rotation: about every 16 seconds (the keys'
	// last fifth, jittered, is when the proxy retrieves new ones), whatever
	// the number of requests in flight.
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	var times []float64
	for _, line := range strings.Fields(string(b)) {
		f, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatalf("runs file: %q", line)
		}
		times = append(times, f)
	}
	var gaps []string
	for i := 1; i < len(times); i++ {
		gap := times[i] - times[i-1]
		gaps = append(gaps, fmt.Sprintf("%.1fs", gap))
		if gap < 0.7*life {
			t.Errorf("run %d came %.1fs after the one before: keys living %ds are retrieved once per rotation", i+1, gap, life)
		}
	}
	t.Logf("credential_process ran %d times, %s apart", len(times), strings.Join(gaps, ", "))
	if most := int(elapsed.Seconds()/(0.75*life)) + 2; len(times) < 4 || len(times) > most {
		t.Errorf("credential_process ran %d times in %s: want at least 4 (3 rotations) and at most %d", len(times), elapsed.Round(time.Second), most)
	}

	// The proxy's cache of the keys answered nearly every request.
	metrics := scrape(t, s)
	hits, misses := metric(metrics, `osproxy_cache_lookups_total{cache="credentials",result="hit"}`),
		metric(metrics, `osproxy_cache_lookups_total{cache="credentials",result="miss"}`)
	t.Logf("the proxy's credentials cache: %v hits, %v misses", hits, misses)
	if hits+misses != float64(n) || misses > 2*workers {
		t.Errorf("credentials cache: %v hits and %v misses for %d requests", hits, misses, n)
	}

	// versitygw saw the requests signed by both accounts, and refused none.
	log, err := v.AccessLog()
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	var refused []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		f := strings.Fields(line)
		if len(f) < 12 || f[1] != bucket || f[5] == vgwtest.AccessKey { // the root set the bucket up

			continue
		}
		by[f[5]]++
		if status := f[10]; status != "200" {
			refused = append(refused, line)
		}
	}
	t.Logf("versitygw's requests by signer: %v", by)
	if by[userA] == 0 || by[userB] == 0 {
		t.Errorf("versitygw saw requests by %v: want both %s and %s", by, userA, userB)
	}
	if len(refused) > 0 {
		t.Errorf("versitygw refused %d requests, the first: %s", len(refused), refused[0])
	}
	if got := by[userA] + by[userB]; int64(got) != n {
		t.Errorf("versitygw logged %d requests signed by the two accounts, the clients sent %d", got, n)
	}
	if others := slices.DeleteFunc(keys(by), func(k string) bool { return k == userA || k == userB }); len(others) > 0 {
		t.Errorf("requests signed by %q", others)
	}
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// credentialsLog passes on warnings and errors, and the proxy's messages
// about upstream credentials.
type credentialsLog struct{ slog.Handler }

func (h credentialsLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn || strings.HasPrefix(r.Message, "upstream credentials") {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h credentialsLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return credentialsLog{h.Handler.WithAttrs(attrs)}
}

func (h credentialsLog) WithGroup(name string) slog.Handler {
	return credentialsLog{h.Handler.WithGroup(name)}
}
