package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"

	"github.com/osproxy/proxy/internal/testkit"
	"github.com/osproxy/proxy/internal/vgwtest"
)

// hookMode is what a test hook does on its next calls.
type hookMode int32

const (
	hookOK hookMode = iota
	hookError
	hookDenied // returns (a wrapped) ErrAccessDenied / ErrNoSuchBucket
	hookPanic
	hookBlock // until its context ends or the test releases it
)

// testHook is an authorizer, endpoint and credentials hook whose behaviour a
// test switches, counting its calls and recording how blocked calls ended.
type testHook struct {
	mode    atomic.Int32
	calls   atomic.Int64
	release chan struct{}
	blocked chan blockedCall // one per blocked call, when it returns
	once    sync.Once
}

type blockedCall struct {
	ctxErr      error
	hadDeadline bool
	deadlineIn  time.Duration // from the start of the call
	returnedIn  time.Duration
}

func newTestHook(t testing.TB) *testHook {
	h := &testHook{release: make(chan struct{}), blocked: make(chan blockedCall, 64)}
	t.Cleanup(h.unblock)
	return h
}

func (h *testHook) set(m hookMode) { h.mode.Store(int32(m)) }
func (h *testHook) unblock()       { h.once.Do(func() { close(h.release) }) }

// run does what the mode says; denied is the error of hookDenied.
func (h *testHook) run(ctx context.Context, denied error) error {
	h.calls.Add(1)
	switch hookMode(h.mode.Load()) {
	case hookError:
		return errors.New("the hook's backend is down")
	case hookDenied:
		return fmt.Errorf("hook: %w", denied)
	case hookPanic:
		panic("the hook panicked")
	case hookBlock:
		start := time.Now()
		dl, ok := ctx.Deadline()
		select {
		case <-ctx.Done():
		case <-h.release:
		}
		h.blocked <- blockedCall{ctxErr: ctx.Err(), hadDeadline: ok, deadlineIn: dl.Sub(start), returnedIn: time.Since(start)}
		return ctx.Err()
	}
	return nil
}

// TestFaultHooks: an authorizer or credentials (endpoint) hook that fails,
// refuses, panics or blocks past the client's deadline, with a real client
// (aws-sdk-go-v2) in front and versitygw behind: the S3 error the README
// promises, the proxy still serving afterwards, nothing left running.
func TestFaultHooks(t *testing.T) {
	t.Parallel()
	v := versity(t, false)
	bucket := "osp-fault-hooks"
	o := oracle(t, v)
	ctx := context.Background()
	_, err := o.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	require.NoError(t, err)
	require.NoError(t, oraclePut(ctx, o, bucket, "k", []byte("hooked")))
	t.Cleanup(func() {
		_ = emptyBucket(context.Background(), o, bucket)
		_, _ = o.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: &bucket})
	})

	for _, which := range []string{"authorizer", "credentials hook"} {
		t.Run(which, func(t *testing.T) {
			t.Parallel()
			h := newTestHook(t)
			ep := vgwEndpoint(v)
			opts := []proxy.Option{
				proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
				proxy.WithTransport(v.transport(t)),
				// Answers are cached: a short TTL lets each case reach the hook.
				proxy.WithAuthCacheTTL(time.Millisecond), proxy.WithHookCacheTTL(time.Millisecond),
			}
			denied := proxy.ErrAccessDenied
			if which == "authorizer" {
				opts = append(opts, proxy.WithBuckets(proxy.Bucket{Name: bucket, Endpoint: ep, Credentials: vgwCreds}),
					proxy.WithAuthorizer(func(ctx context.Context, _, _ string) (bool, error) {
						if err := h.run(ctx, denied); err != nil {
							if errors.Is(err, proxy.ErrAccessDenied) {
								return false, nil
							}
							return false, err
						}
						return true, nil
					}))
			} else {
				denied = proxy.ErrNoSuchBucket
				opts = append(opts,
					proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return ep, nil }),
					proxy.WithCredentials(func(ctx context.Context, _ string) (proxy.Credentials, error) {
						if err := h.run(ctx, denied); err != nil {
							return proxy.Credentials{}, err
						}
						return vgwCreds, nil
					}))
			}
			p, err := proxy.New(append(opts, debugLog()...)...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			srv := serve(t, p, false)
			c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
			get := func(ctx context.Context) string {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
				if err != nil {
					return s3Code(err)
				}
				b, err := io.ReadAll(out.Body)
				_ = out.Body.Close()
				if err != nil {
					return err.Error()
				}
				return "ok " + string(b)
			}
			wantDenied := "403 AccessDenied"
			if which != "authorizer" {
				wantDenied = "404 NoSuchBucket"
			}
			for _, tc := range []struct {
				mode hookMode
				name string
				want string
			}{
				{hookOK, "answers", "ok hooked"},
				{hookError, "returns an error", "503 ServiceUnavailable"},
				{hookDenied, "refuses", wantDenied},
				{hookPanic, "panics", "500 InternalError"},
				{hookOK, "answers again", "ok hooked"},
			} {
				h.set(tc.mode)
				time.Sleep(5 * time.Millisecond) // past the cache TTL
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				got := get(rctx)
				cancel()
				t.Logf("the %s %s: %s", which, tc.name, got)
				if got != tc.want {
					t.Errorf("the %s %s: got %q, want %q", which, tc.name, got, tc.want)
				}
			}

			// Blocking past the client's deadline: the client gets its
			// own timeout, the proxy lets go of the request at once; the
			// hook call runs on, detached (so that other clients waiting
			// on it are not failed), bounded by the proxy; once it
			// answers, traffic flows again.
			h.set(hookBlock)
			time.Sleep(5 * time.Millisecond)
			const clientDeadline = time.Second
			rctx, cancel := context.WithTimeout(ctx, clientDeadline)
			start := time.Now()
			got := get(rctx)
			elapsed := time.Since(start)
			cancel()
			t.Logf("the %s blocks: the client got %q after %v", which, got, elapsed.Round(time.Millisecond))
			if !strings.Contains(got, "deadline exceeded") {
				t.Errorf("the %s blocks: the client got %q, want its own deadline", which, got)
			}
			if elapsed > clientDeadline+2*time.Second {
				t.Errorf("the client's deadline of %v was not kept: %v", clientDeadline, elapsed)
			}
			if !waitFor(3*time.Second, func() bool { return srv.active.Load() == 0 }) {
				t.Errorf("the proxy handler still waits on the blocked %s after the client left", which)
			}
			h.set(hookOK)
			h.unblock()
			select {
			case b := <-h.blocked:
				t.Logf("the blocked %s call returned after %v (its context: deadline %v, %v in; error %v)", which,
					b.returnedIn.Round(time.Millisecond), b.hadDeadline, b.deadlineIn.Round(time.Second), b.ctxErr)
				if !b.hadDeadline {
					t.Errorf("the %s ran without a deadline", which)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("the blocked %s call did not return once released", which)
			}
			time.Sleep(5 * time.Millisecond)
			if got := get(ctx); got != "ok hooked" {
				t.Errorf("after the blocked %s: %q", which, got)
			}
		})
	}

	// One client giving up does not fail another waiting on the same hook
	// call.
	t.Run("slow authorizer shared by two clients", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		p, err := proxy.New(
			proxy.WithBuckets(proxy.Bucket{Name: bucket, Endpoint: vgwEndpoint(v), Credentials: vgwCreds}),
			proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
			proxy.WithTransport(v.transport(t)),
			proxy.WithAuthorizer(func(ctx context.Context, _, _ string) (bool, error) {
				calls.Add(1)
				select {
				case <-time.After(1500 * time.Millisecond):
					return true, nil
				case <-ctx.Done():
					return false, ctx.Err()
				}
			}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		srv := serve(t, p, false)
		c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
		var wg sync.WaitGroup
		res := make([]error, 2)
		for i, d := range []time.Duration{500 * time.Millisecond, 10 * time.Second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				_, res[i] = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("k")})
			}()
			time.Sleep(100 * time.Millisecond)
		}
		wg.Wait()
		t.Logf("impatient client: %v; patient client: %v; authorizer calls: %d", s3Code(res[0]), s3Code(res[1]), calls.Load())
		if !errors.Is(res[0], context.DeadlineExceeded) {
			t.Errorf("the impatient client: %v, want its deadline", res[0])
		}
		if res[1] != nil {
			t.Errorf("the patient client failed with the other one: %v", res[1])
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%d authorizer calls, want 1 shared", n)
		}
	})
}

// bearerUpstream is an S3 stand-in that accepts only bearer tokens IAM issued
// and keeps objects in memory.
type bearerUpstream struct {
	srv      *httptest.Server
	mu       sync.Mutex
	objects  map[string][]byte
	requests atomic.Int64
	refused  atomic.Int64
}

func newBearerUpstream(t testing.TB, iam *testkit.IAM) *bearerUpstream {
	u := &bearerUpstream{objects: map[string][]byte{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !iam.Issued(tok) {
			u.refused.Add(1)
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `<Error><Code>AccessDenied</Code><Message>bad token</Message></Error>`)
			return
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			u.objects[r.URL.Path] = b
			w.Header().Set("ETag", `"`+sha256Hex(b)[:32]+`"`)
		case http.MethodGet, http.MethodHead:
			b, ok := u.objects[r.URL.Path]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `<Error><Code>NoSuchKey</Code></Error>`)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(b)
			}
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// TestFaultIAM: a bucket reached with an IBM Cloud API key, end to end through
// aws-sdk-go-v2, while IAM is up, down, slow, refusing the key or
// unreachable: quick 503s and nothing forwarded without a token during an
// outage, recovery on its own, a cached token riding out an outage.
func TestFaultIAM(t *testing.T) {
	t.Parallel()
	const apiKey = "ibm-api-key-for-the-test"
	const iamTimeout = time.Second
	const bucket = "osp-iam"
	setup := func(t *testing.T, iamURL string, iam *testkit.IAM) (*bearerUpstream, *s3.Client, *server) {
		up := newBearerUpstream(t, iam)
		port := up.srv.Listener.Addr().(*net.TCPAddr).Port
		p, err := proxy.New(append([]proxy.Option{
			proxy.WithBuckets(proxy.Bucket{Name: bucket,
				Endpoint:    proxy.Endpoint{Host: "127.0.0.1", Port: port, Scheme: "http", PathStyle: true},
				Credentials: proxy.Credentials{APIKey: apiKey}}),
			proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
			proxy.WithIAMEndpoint(iamURL),
			proxy.WithIAMTimeout(iamTimeout),
		}, debugLog()...)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		srv := serve(t, p, false)
		c, _ := goS3(t, srv.URL, clientKey, clientSecret, 0)
		return up, c, srv
	}
	put := func(c *s3.Client, body string) (string, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte(body))})
		return s3Code(err), time.Since(start)
	}
	get := func(c *s3.Client) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
		if err != nil {
			return s3Code(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return "ok " + string(b)
	}

	t.Run("up, then down with a token cached", func(t *testing.T) {
		t.Parallel()
		iam := testkit.NewIAM(t, time.Now, apiKey)
		up, c, _ := setup(t, iam.URL, iam)
		for i := range 10 {
			if got, _ := put(c, fmt.Sprint("v", i)); got != "ok" {
				t.Fatalf("put %d: %s", i, got)
			}
		}
		if got := get(c); got != "ok v9" {
			t.Errorf("get: %s", got)
		}
		if n := iam.Calls(); n != 1 {
			t.Errorf("%d IAM exchanges for 11 requests, want 1", n)
		}
		iam.Fail(http.StatusInternalServerError)
		if got := get(c); got != "ok v9" {
			t.Errorf("get with IAM down and a token cached: %s", got)
		}
		t.Logf("IAM calls %d, upstream requests %d (refused %d)", iam.Calls(), up.requests.Load(), up.refused.Load())
		if up.refused.Load() != 0 {
			t.Errorf("the upstream refused %d tokens", up.refused.Load())
		}
	})

	t.Run("down from the start, then back", func(t *testing.T) {
		t.Parallel()
		iam := testkit.NewIAM(t, time.Now, apiKey)
		iam.Fail(http.StatusInternalServerError)
		up, c, _ := setup(t, iam.URL, iam)
		got, took := put(c, "x")
		t.Logf("IAM down: %s after %v", got, took.Round(time.Millisecond))
		if got != "503 ServiceUnavailable" || took > iamTimeout+2*time.Second {
			t.Errorf("IAM down: %s after %v, want a quick 503 ServiceUnavailable", got, took)
		}
		calls := iam.Calls()
		got, took = put(c, "x")
		t.Logf("again, backing off: %s after %v, IAM calls %d → %d", got, took.Round(time.Millisecond), calls, iam.Calls())
		if got != "503 ServiceUnavailable" || took > time.Second {
			t.Errorf("during the backoff: %s after %v, want an immediate 503", got, took)
		}
		if up.requests.Load() != 0 {
			t.Errorf("%d requests reached the upstream without a token", up.requests.Load())
		}
		iam.Fail(0)
		start := time.Now()
		ok := waitFor(10*time.Second, func() bool {
			got, _ := put(c, "back")
			return got == "ok"
		})
		t.Logf("IAM back: traffic recovered after %v", time.Since(start).Round(time.Millisecond))
		if !ok {
			t.Errorf("traffic did not recover within 10 s of IAM coming back")
		}
		if got := get(c); got != "ok back" {
			t.Errorf("get after recovery: %s", got)
		}
	})

	t.Run("slow", func(t *testing.T) {
		t.Parallel()
		iam := testkit.NewIAM(t, time.Now, apiKey)
		iam.Delay(5 * time.Second)
		up, c, srv := setup(t, iam.URL, iam)
		got, took := put(c, "x")
		t.Logf("IAM slower than WithIAMTimeout(%v): %s after %v", iamTimeout, got, took.Round(time.Millisecond))
		if got != "503 ServiceUnavailable" || took < iamTimeout/2 || took > iamTimeout+2*time.Second {
			t.Errorf("slow IAM: %s after %v, want 503 ServiceUnavailable after about %v", got, took, iamTimeout)
		}
		// A client with a shorter deadline than the IAM timeout keeps it.
		time.Sleep(2 * time.Second) // past the first backoff
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
		cancel()
		t.Logf("impatient client: %s after %v", s3Code(err), time.Since(start).Round(time.Millisecond))
		if !errors.Is(err, context.DeadlineExceeded) && s3Code(err) != "503 ServiceUnavailable" {
			t.Errorf("impatient client: %v", err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("the client's 300 ms deadline was not kept")
		}
		if up.requests.Load() != 0 {
			t.Errorf("%d requests reached the upstream without a token", up.requests.Load())
		}
		if !waitFor(3*time.Second, func() bool { return srv.active.Load() == 0 }) {
			t.Errorf("proxy handlers still running")
		}
	})

	t.Run("refusing the key", func(t *testing.T) {
		t.Parallel()
		iam := testkit.NewIAM(t, time.Now, apiKey)
		iam.Refuse(apiKey)
		up, c, _ := setup(t, iam.URL, iam)
		if got, _ := put(c, "x"); got != "403 AccessDenied" {
			t.Errorf("key refused by IAM: %s, want 403 AccessDenied", got)
		}
		if up.requests.Load() != 0 {
			t.Errorf("%d requests reached the upstream without a token", up.requests.Load())
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		port, err := vgwtest.FreePort()
		require.NoError(t, err)
		iam := testkit.NewIAM(t, time.Now, apiKey) // for the upstream's token check only
		up, c, _ := setup(t, fmt.Sprintf("http://127.0.0.1:%d/identity/token", port), iam)
		got, took := put(c, "x")
		t.Logf("IAM unreachable: %s after %v", got, took.Round(time.Millisecond))
		if got != "503 ServiceUnavailable" || took > iamTimeout+2*time.Second {
			t.Errorf("IAM unreachable: %s after %v, want a quick 503 ServiceUnavailable", got, took)
		}
		if up.requests.Load() != 0 {
			t.Errorf("%d requests reached the upstream without a token", up.requests.Load())
		}
	})
}
