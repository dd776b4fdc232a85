package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// faultBucket is the static bucket of the proxies in front of fake upstreams.
const faultBucket = "osp-fault"

// upstreamProxy is a proxy whose one static bucket lives at 127.0.0.1:port
// (path style, http), with the default transport, so that
// WithResponseHeaderTimeout applies.
func upstreamProxy(t testing.TB, port int, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	ep := proxy.Endpoint{Host: "127.0.0.1", Port: port, Scheme: "http", PathStyle: true}
	all := append([]proxy.Option{
		proxy.WithBuckets(proxy.Bucket{Name: faultBucket, Endpoint: ep,
			Credentials: proxy.Credentials{AccessKeyID: "upstream-key", SecretAccessKey: "upstream-secret"}}),
		proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
	}, debugLog()...)
	p, err := proxy.New(append(all, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// requestID is the x-amz-request-id of an SDK error's response.
func requestID(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

// TestFaultUpstream: an upstream that is down, refuses, resets or hangs is
// answered with an S3 error, 502 BadGateway or 504 GatewayTimeout, within the
// configured response header timeout, and nothing is left running.
func TestFaultUpstream(t *testing.T) {
	t.Parallel()
	const headerTimeout = time.Second
	const slack = 3 * time.Second // -race on 2 busy cores

	type upstream struct {
		port   int
		closed chan time.Time // when the proxy closed a hanging connection
	}
	hang := func(t *testing.T) upstream {
		closed := make(chan time.Time, 16)
		u := newRawUpstream(t, func(c net.Conn) {
			if _, _, err := readRequestHead(c); err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c) // until the proxy hangs up
			closed <- time.Now()
		})
		return upstream{port: u.port(), closed: closed}
	}
	cases := []struct {
		name  string
		start func(t *testing.T) upstream
		want  string
		hangs bool
	}{
		{"down (nothing listening)", func(t *testing.T) upstream {
			port, err := vgwtest.FreePort()
			require.NoError(t, err)
			return upstream{port: port}
		}, "502 BadGateway", false},
		{"refusing (accepts, then resets)", func(t *testing.T) upstream {
			u := newRawUpstream(t, func(c net.Conn) { _ = c.(*net.TCPConn).SetLinger(0) })
			return upstream{port: u.port()}
		}, "502 BadGateway", false},
		{"resetting after the request", func(t *testing.T) upstream {
			u := newRawUpstream(t, func(c net.Conn) {
				_, _, _ = readRequestHead(c)
				_ = c.(*net.TCPConn).SetLinger(0)
			})
			return upstream{port: u.port()}
		}, "502 BadGateway", false},
		{"answering garbage", func(t *testing.T) upstream {
			u := newRawUpstream(t, func(c net.Conn) {
				_, _, _ = readRequestHead(c)
				_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n\r\n")
			})
			return upstream{port: u.port()}
		}, "502 BadGateway", false},
		{"hanging (reads the request, never answers)", hang, "504 GatewayTimeout", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := tc.start(t)
			srv := serve(t, upstreamProxy(t, up.port, proxy.WithResponseHeaderTimeout(headerTimeout)), false)
			c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
			ops := map[string]func(context.Context) error{
				"GetObject": func(ctx context.Context) error {
					_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(faultBucket), Key: aws.String("k")})
					return err
				},
				"PutObject 64 KiB": func(ctx context.Context) error {
					_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(faultBucket), Key: aws.String("k"),
						Body: bytes.NewReader(randomBytes(64<<10, 1))})
					return err
				},
			}
			for name, op := range ops {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				start := time.Now()
				err := op(ctx)
				elapsed := time.Since(start)
				cancel()
				got := s3Code(err)
				t.Logf("%s: %s after %v", name, got, elapsed.Round(time.Millisecond))
				if got != tc.want {
					t.Errorf("%s: got %s, want %s (%v)", name, got, tc.want, err)
				}
				if requestID(err) == "" {
					t.Errorf("%s: the error has no x-amz-request-id", name)
				}
				if max := headerTimeout + slack; elapsed > max {
					t.Errorf("%s: answered after %v, more than the header timeout %v and %v of slack", name, elapsed, headerTimeout, slack)
				}
				if tc.hangs && elapsed < headerTimeout {
					t.Errorf("%s: 504 after %v, before the header timeout %v", name, elapsed, headerTimeout)
				}
				if tc.hangs {
					select {
					case at := <-up.closed:
						t.Logf("%s: the proxy closed its upstream connection %v after the client's request", name, at.Sub(start).Round(time.Millisecond))
					case <-time.After(headerTimeout + slack):
						t.Errorf("%s: the proxy did not close its connection to the hanging upstream", name)
					}
				}
			}
			if !waitFor(5*time.Second, func() bool { return srv.active.Load() == 0 }) {
				t.Errorf("%d proxy handlers still running", srv.active.Load())
			}
		})
	}

	// An upstream that stops reading a large request body: the header
	// timeout starts only once the body is written, so the client's own
	// deadline is what ends the request; the proxy must then let go at once.
	t.Run("hanging without reading a large body", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		closed := make(chan time.Time, 4)
		u := newRawUpstream(t, func(c net.Conn) {
			if _, _, err := readRequestHead(c); err != nil {
				return
			}
			<-release                     // reads nothing until the client gave up,
			_, _ = io.Copy(io.Discard, c) // then drains what is buffered, until the proxy hangs up
			closed <- time.Now()
		})
		srv := serve(t, upstreamProxy(t, u.port(), proxy.WithResponseHeaderTimeout(headerTimeout)), false)
		c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
		const clientDeadline = 3 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
		defer cancel()
		start := time.Now()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(faultBucket), Key: aws.String("big"),
			Body: bytes.NewReader(randomBytes(64<<20, 2))})
		gaveUp := time.Now()
		close(release)
		t.Logf("PutObject 64 MiB: %s after %v", s3Code(err), gaveUp.Sub(start).Round(time.Millisecond))
		require.Error(t, err)
		if code := s3Code(err); code != "504 GatewayTimeout" && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %s, want 504 GatewayTimeout or the client's own deadline", code)
		}
		select {
		case at := <-closed:
			t.Logf("the proxy closed its upstream connection %v after the client gave up", at.Sub(gaveUp).Round(time.Millisecond))
		case <-time.After(slack):
			t.Errorf("the proxy kept its connection to the stalled upstream after the client gave up")
		}
		if !waitFor(5*time.Second, func() bool { return srv.active.Load() == 0 }) {
			t.Errorf("%d proxy handlers still running", srv.active.Load())
		}
	})
}

// TestFaultUpstreamDropsMidDownload: an upstream that closes the connection in
// the middle of a response body makes the client see a truncated response (an
// error), never a short body taken for the whole object.
func TestFaultUpstreamDropsMidDownload(t *testing.T) {
	t.Parallel()
	const size, sent = 1 << 20, 300 << 10
	body := randomBytes(size, 3)
	cases := []struct {
		name    string
		chunked bool // upstream answers with Transfer-Encoding: chunked
		reset   bool // RST instead of FIN
	}{
		{"Content-Length, FIN", false, false},
		{"Content-Length, RST", false, true},
		{"chunked, FIN", true, false},
		{"chunked, RST", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := newRawUpstream(t, func(c net.Conn) {
				r, _, err := readRequestHead(c)
				if err != nil {
					return
				}
				if tc.reset {
					defer c.(*net.TCPConn).SetLinger(0)
				}
				h := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nETag: \"0123456789abcdef0123456789abcdef\"\r\n"
				if tc.chunked {
					_, _ = io.WriteString(c, h+"Transfer-Encoding: chunked\r\n\r\n")
					if r.Method == http.MethodHead {
						return
					}
					for off := 0; off < sent; off += 64 << 10 {
						_, _ = fmt.Fprintf(c, "%x\r\n%s\r\n", 64<<10, body[off:off+64<<10])
					}
					return
				}
				_, _ = fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n", h, size)
				if r.Method != http.MethodHead {
					_, _ = c.Write(body[:sent])
				}
			})
			srv := serve(t, upstreamProxy(t, u.port()), false)
			c, hc := goS3(t, srv.URL, clientKey, clientSecret, 0)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(faultBucket), Key: aws.String("k")})
			if err == nil {
				got, rerr := io.ReadAll(out.Body)
				_ = out.Body.Close()
				err = rerr
				t.Logf("aws-sdk-go-v2: read %d of %d bytes, then %v", len(got), size, rerr)
				if rerr == nil {
					t.Errorf("aws-sdk-go-v2 GetObject: a silent success with %d of %d bytes", len(got), size)
				}
			} else {
				t.Logf("aws-sdk-go-v2: %v", err)
			}

			// A presigned GET read by a plain HTTP client (curl's view).
			ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(faultBucket), Key: aws.String("k")})
			require.NoError(t, err)
			resp, err := hc.Get(ps.URL)
			if err == nil {
				got, rerr := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				t.Logf("net/http: status %d, read %d bytes, then %v", resp.StatusCode, len(got), rerr)
				if rerr == nil {
					t.Errorf("net/http GET: a silent success with %d of %d bytes", len(got), size)
				}
			}

			// aws-cli, where the machine has it: a non-zero exit.
			if aws := awsCLIv2(); aws != "" {
				dir := t.TempDir()
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
				defer ccancel()
				cmd := exec.CommandContext(cctx, aws, "s3api", "get-object", "--bucket", faultBucket, "--key", "k",
					filepath.Join(dir, "out"), "--endpoint-url", srv.URL)
				cmd.Env = clientEnv("AWS_ACCESS_KEY_ID="+clientKey, "AWS_SECRET_ACCESS_KEY="+clientSecret,
					"AWS_DEFAULT_REGION="+region, "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"))
				out, err := cmd.CombinedOutput()
				t.Logf("aws-cli: %v: %s", err, truncate(string(out), 200))
				if err == nil {
					t.Errorf("aws-cli get-object exited 0 on a truncated download: %s", out)
				}
			}
			if !waitFor(5*time.Second, func() bool { return srv.active.Load() == 0 }) {
				t.Errorf("%d proxy handlers still running", srv.active.Load())
			}
		})
	}
}

// awsCLIv2 is the path of aws-cli v2 (Debian's /usr/bin/aws), or "".
func awsCLIv2() string {
	for _, p := range candidates("aws", "/usr/bin/aws") {
		if out, err := probe(p, "--version"); err == nil && strings.HasPrefix(out, "aws-cli/2.") {
			return p
		}
	}
	return ""
}
