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
