package redisuse_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/redisuse"
	"github.com/redis/go-redis/v9"
)

// redisServer is Debian's redis-server on 127.0.0.1, started by the test
// and stopped when it ends.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("OSP_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("redis-server: %v (apt-get install -y redis-server)", err)
		}
		t.Skip("no redis-server (apt-get install -y redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &redisServer{t: t, port: port}
	s.start(bin)
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *redisServer) start(bin string) {
	s.t.Helper()
	s.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(s.port), "--save", "", "--appendonly", "no",
		"--dir", s.t.TempDir())
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not start")
		}
	}
}

func (s *redisServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

const key, secret = "client", "client-secret"

func presigned(t *testing.T, base, path string) string {
	t.Helper()
	u, _ := url.Parse(base + path)
	q := u.Query()
	q.Set("X-Amz-Expires", "3600")
	u.RawQuery = q.Encode()
	r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	signed, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(
		context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// A use limit of 3 across two replicas sharing one real Redis: 50 concurrent
// attempts on one URL give exactly 3 successes; Redis going down gives
// fail-closed answers, and its return recovery without a restart.
func TestUseLimitAcrossReplicas(t *testing.T) {
	rs := startRedis(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer upstream.Close()
	port := upstream.Listener.Addr().(*net.TCPAddr).Port
	client := redis.NewClient(&redis.Options{Addr: rs.addr(), MaxRetries: -1, DialTimeout: 300 * time.Millisecond})
	defer client.Close()
	counter := redisuse.New(client, "test:")
	var replicas []*httptest.Server
	for range 2 {
		p, err := proxy.New(
			proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: proxy.Endpoint{Host: "127.0.0.1", Port: port, Scheme: "http", PathStyle: true},
				Credentials: proxy.Credentials{AccessKeyID: "up", SecretAccessKey: "up-secret"}}),
			proxy.WithClientKeys(map[string]string{key: secret}),
			proxy.WithPresignedUseLimit(3, counter),
		)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(p)
		defer func() { srv.Close(); _ = p.Close() }()
		replicas = append(replicas, srv)
	}
	// The client sees one endpoint (a load balancer's): replica 0's host,
	// whichever replica answers.
	get := func(i int, u string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, replicas[i].URL+u[len(replicas[0].URL):], nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = replicas[0].Listener.Addr().String()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	u := presigned(t, replicas[0].URL, "/bucket/k")
	var ok, denied atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch code, body := get(i%2, u); {
			case code == 200:
				ok.Add(1)
			case code == 403 && strings.Contains(body, "used as many times as it may be"):
				denied.Add(1)
			default:
				t.Errorf("status %d: %s", code, body)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 3 || denied.Load() != 47 {
		t.Errorf("%d successes and %d refusals, want 3 and 47", ok.Load(), denied.Load())
	}

	u2 := presigned(t, replicas[0].URL, "/bucket/k2")
	if code, _ := get(0, u2); code != 200 {
		t.Fatalf("a fresh URL: %d", code)
	}
	rs.stop()
	for i := range 2 {
		if code, _ := get(i, u2); code != http.StatusServiceUnavailable {
			t.Errorf("replica %d with Redis down: %d, want 503 (fail closed)", i, code)
		}
	}
	bin, _ := exec.LookPath("redis-server")
	rs.start(bin)
	if code, _ := get(1, u2); code != 200 {
		t.Errorf("after Redis is back: %d, want 200 without a restart", code)
	}
}

// freeze stops redis-server with SIGSTOP, a hang: the kernel still accepts
// connections and takes what clients write, but nothing is answered. It is
// resumed at the test's end (before it is killed) whatever happens.
func (s *redisServer) freeze() {
	s.t.Helper()
	s.t.Cleanup(s.resume)
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
}

func (s *redisServer) resume() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// waitCalls waits until c has no Redis call in flight, abandoned ones
// included.
func waitCalls(t *testing.T, c *redisuse.Counter) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); redisuse.CallsInFlight(c) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d Redis calls still in flight 10 s after Redis resumed", redisuse.CallsInFlight(c))
		}
	}
}

// A frozen Redis (SIGSTOP) holds a presigned request no longer than
// DefaultTimeout, whatever the client: 503 ServiceUnavailable within
// DefaultTimeout + 0.5 s, nothing forwarded; once Redis resumes (SIGCONT) the
// frozen use has been counted, and the URL has exactly its remaining uses.
func TestFrozenRedis(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  redis.Options
	}{
		{"default client", redis.Options{}},
		{"ContextTimeoutEnabled", redis.Options{ContextTimeoutEnabled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := startRedis(t)
			var forwarded atomic.Int32
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				forwarded.Add(1)
				_, _ = io.WriteString(w, "ok")
			}))
			defer upstream.Close()
			opt := tc.opt
			opt.Addr = rs.addr()
			client := redis.NewClient(&opt)
			defer client.Close()
			counter := redisuse.New(client, "frozen:")
			p, err := proxy.New(
				proxy.WithBuckets(proxy.Bucket{Name: "bucket",
					Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: upstream.Listener.Addr().(*net.TCPAddr).Port, Scheme: "http", PathStyle: true},
					Credentials: proxy.Credentials{AccessKeyID: "up", SecretAccessKey: "up-secret"}}),
				proxy.WithClientKeys(map[string]string{key: secret}),
				proxy.WithPresignedUseLimit(3, counter),
			)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(p)
			defer func() { srv.Close(); _ = p.Close() }()
			u := presigned(t, srv.URL, "/bucket/k")
			get := func() (int, string) {
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(b)
			}
			// The first use loads the script and leaves a connection in
			// the client's pool.
			if code, body := get(); code != 200 {
				t.Fatalf("first use: %d %s", code, body)
			}

			rs.freeze()
			start := time.Now()
			code, body := get()
			took := time.Since(start)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "<Code>ServiceUnavailable</Code>") {
				t.Errorf("frozen Redis: %d %s, want 503 ServiceUnavailable", code, body)
			}
			if took > redisuse.DefaultTimeout+500*time.Millisecond {
				t.Errorf("frozen Redis held the request %v, want at most %v", took, redisuse.DefaultTimeout+500*time.Millisecond)
			}
			t.Logf("frozen Redis: %d after %v", code, took.Round(time.Millisecond))
			if n := forwarded.Load(); n != 1 {
				t.Errorf("upstream received %d requests, want 1 (nothing forwarded while Redis is frozen)", n)
			}

			rs.resume()
			waitCalls(t, counter)
			// The frozen attempt's EVALSHA was written on the pooled
			// connection before Redis was frozen into not reading it: the
			// kernel took it, and Redis ran it when resumed, before
			// anything sent after (that connection was readable first),
			// whether the client was still waiting for the answer or had
			// closed the connection. So it counted: use 2 of 3, refused.
			keys, err := client.Keys(context.Background(), "frozen:*").Result()
			if err != nil || len(keys) != 1 {
				t.Fatalf("keys %q, %v: want one", keys, err)
			}
			if n, err := client.Get(context.Background(), keys[0]).Int64(); err != nil || n != 2 {
				t.Fatalf("after SIGCONT the count is %d (%v), want 2: the first use and the frozen one", n, err)
			}
			if code, body := get(); code != 200 {
				t.Errorf("third use after SIGCONT: %d %s, want 200", code, body)
			}
			if code, body := get(); code != 403 || !strings.Contains(body, "used as many times as it may be") {
				t.Errorf("fourth use: %d %s, want 403 past the limit", code, body)
			}
			if n := forwarded.Load(); n != 2 {
				t.Errorf("upstream received %d requests, want 2", n)
			}
		})
	}
}

// Against a frozen Redis, the calls Add abandoned stay bounded: with room for
// 4 in flight, 4 Adds fail at DefaultTimeout and hold their calls (stuck in
// socket reads, the client's ReadTimeout is 30 s), the next fails at once
// without a call; once Redis resumes, the calls end, and their uses, which
// reached Redis before it was frozen, have been counted.
func TestFrozenRedisBound(t *testing.T) {
	rs := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.addr(), ReadTimeout: 30 * time.Second, PoolSize: 4})
	defer client.Close()
	counter := redisuse.New(client, "bound:")
	redisuse.LimitCalls(counter, 4)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour)
	// The script loaded, and 4 connections in the pool, made and set up
	// (HELLO) by 4 calls that hold them at once: each abandoned call writes
	// its script and waits for the answer, not for a dial or a HELLO (which
	// go-redis gives up at the context's deadline).
	if n, err := counter.Add(ctx, "warm", expires); n != 1 || err != nil {
		t.Fatalf("Add: %d, %v", n, err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client.Do(ctx, "BLPOP", "nothing", "0.2").Err(); err != redis.Nil {
				t.Errorf("BLPOP: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := client.PoolStats().IdleConns; n != 4 {
		t.Fatalf("%d idle connections, want 4", n)
	}

	rs.freeze()
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := counter.Add(ctx, fmt.Sprint("abandoned", i), expires)
			if took := time.Since(start); err == nil || took > redisuse.DefaultTimeout+500*time.Millisecond {
				t.Errorf("Add %d on a frozen Redis: %v after %v, want an error within %v", i, err, took, redisuse.DefaultTimeout+500*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if n := redisuse.CallsInFlight(counter); n != 4 {
		t.Fatalf("%d calls in flight, want the 4 abandoned", n)
	}
	start := time.Now()
	_, err := counter.Add(ctx, "refused", expires)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "calls in flight") || took > 100*time.Millisecond {
		t.Errorf("Add past the bound: %v after %v, want an error at once", err, took)
	}
	t.Logf("past the bound: %v", err)
	if n := redisuse.CallsInFlight(counter); n != 4 {
		t.Errorf("%d calls in flight after a refused Add, want 4", n)
	}

	rs.resume()
	waitCalls(t, counter)
	// Each abandoned use was counted when Redis resumed; the refused Add
	// sent nothing.
	for i := range 4 {
		if n, err := counter.Add(ctx, fmt.Sprint("abandoned", i), expires); n != 2 || err != nil {
			t.Errorf("abandoned%d after SIGCONT: %d, %v, want its second use", i, n, err)
		}
	}
	if n, err := counter.Add(ctx, "refused", expires); n != 1 || err != nil {
		t.Errorf("refused after SIGCONT: %d, %v, want its first use", n, err)
	}
}
