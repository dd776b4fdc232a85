package proxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

func TestObserver(t *testing.T) {
	up := newFakeUpstream(t)
	var mu sync.Mutex
	var infos []proxy.RequestInfo
	cache := map[string]int{}
	o := proxy.Observer{
		Request: func(i proxy.RequestInfo) { mu.Lock(); infos = append(infos, i); mu.Unlock() },
		Cache: func(name string, hit bool) {
			mu.Lock()
			defer mu.Unlock()
			if hit {
				cache[name+" hit"]++
			} else {
				cache[name+" miss"]++
			}
		},
	}
	p := newProxy(t, up, proxy.WithObserver(o),
		proxy.WithAuthorizer(func(ctx context.Context, token, bucket string) (bool, error) { return true, nil }))
	srv := httptest.NewServer(p)
	defer srv.Close()

	done := 0
	do := func(method, path, body string) {
		r, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		clientSign(t, r, sha256Hex([]byte(body)))
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		// The observer runs once the response is written, which the client
		// may see first: wait for it, so that infos are in request order.
		done++
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(infos) == done }, 5*time.Second, time.Millisecond)
	}
	do(http.MethodPut, "/bucket/k", "twelve bytes")
	do(http.MethodGet, "/bucket/k", "")
	do(http.MethodGet, "/bucket?list-type=2&prefix=a", "")
	do(http.MethodGet, "/nosuchbucket/k", "")
	do(http.MethodPost, "/bucket/k?uploads", "")

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(infos) == 5 }, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		op     string
		bucket string
		status int
		code   string
	}{
		{"PutObject", "bucket", 200, ""},
		{"GetObject", "bucket", 200, ""},
		{"ListObjectsV2", "bucket", 200, ""},
		{"GetObject", "nosuchbucket", 404, "NoSuchBucket"},
		{"CreateMultipartUpload", "bucket", 200, ""},
	}
	for i, w := range want {
		got := infos[i]
		assert.Equal(t, w.op, got.Operation, i)
		assert.Equal(t, w.bucket, got.Bucket, i)
		assert.Equal(t, w.status, got.Status, i)
		assert.Equal(t, w.code, got.Code, i)
		assert.NotEmpty(t, got.RequestID)
		assert.Positive(t, got.Duration)
	}
	assert.Equal(t, int64(12), infos[0].BytesIn)
	assert.Equal(t, int64(2), infos[1].BytesOut, `the fake upstream answers "ok"`)
	assert.Positive(t, infos[1].Upstream)
	assert.Zero(t, infos[3].Upstream, "not forwarded")
	assert.Equal(t, unitKey, infos[1].AccessKeyID)
	assert.NotEmpty(t, infos[1].RemoteAddr)
	assert.Equal(t, "UPSTREAM-ID", infos[1].UpstreamRequestID)
	assert.Empty(t, infos[3].UpstreamRequestID)
	assert.Equal(t, 2, cache["authorization miss"], "bucket and nosuchbucket")
	assert.Equal(t, 3, cache["authorization hit"])
}

// stepRecorder is an Observer.Step that records each step with its parent,
// found in the context as a tracer finds its span, and how it ended.
type stepRecorder struct {
	mu    sync.Mutex
	steps []*recordedStep
}

type recordedStep struct {
	id, parent int
	kind       proxy.StepKind
	name       string
	op         string // the Step's Operation/Bucket/Key
	end        *proxy.StepEnd
}

type stepKey struct{}

func (s *stepRecorder) step(ctx context.Context, st proxy.Step) (context.Context, func(proxy.StepEnd)) {
	s.mu.Lock()
	parent, _ := ctx.Value(stepKey{}).(int)
	rs := &recordedStep{id: len(s.steps) + 1, parent: parent, kind: st.Kind, name: st.Name,
		op: st.Operation + " " + st.Bucket + "/" + st.Key}
	s.steps = append(s.steps, rs)
	s.mu.Unlock()
	if st.Kind == proxy.StepUpstream {
		st.Request.Header.Set("Traceparent", "00-trace-"+strconv.Itoa(rs.id)+"-01")
	}
	return context.WithValue(ctx, stepKey{}, rs.id), func(e proxy.StepEnd) {
		s.mu.Lock()
		rs.end = &e
		s.mu.Unlock()
	}
}

// tree is each step as "kind[/name] < parent kind", in order.
func (s *stepRecorder) tree() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, st := range s.steps {
		line := st.kind.String()
		if st.name != "" {
			line += "/" + st.name
		}
		if st.parent > 0 {
			line += " < " + s.steps[st.parent-1].kind.String()
		}
		out = append(out, line)
	}
	s.steps = nil
	return out
}

// A tracer sees each request as a tree of steps, each ended with its error,
// and its trace context reaches the upstream unsigned.
func TestObserverSteps(t *testing.T) {
	up := newFakeUpstream(t)
	rec := &stepRecorder{}
	clk := testkit.NewClock(fixedNow)
	iam := testkit.NewIAM(t, clk.Now, "the-api-key")
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: up.endpoint(), Credentials: upstreamHMAC},
			proxy.Bucket{Name: "ibm", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "the-api-key"}}),
		proxy.WithClientSecrets(func(_ context.Context, id string) (string, error) { return unitSecret, nil }),
		proxy.WithAuthorizer(func(_ context.Context, token, bucket string) (bool, error) {
			if bucket == "ibm" && token == "refused" {
				return false, errors.New("directory down")
			}
			return true, nil
		}),
		proxy.WithObserver(proxy.Observer{Step: rec.step}),
		proxy.WithIAMEndpoint("http://iam.test/identity/token"), proxy.WithTransport(routes(up, iam)),
		proxy.WithClock(clk.Now))
	require.NoError(t, err)
	defer p.Close()

	require.Equal(t, 200, serve(p, signedRequest(t, "GET", "/bucket/k", nil)).Code)
	assert.Equal(t, []string{"request", "authenticate < request", "hook/client secrets < authenticate",
		"hook/authorization < request", "upstream < request"}, rec.tree())
	got := up.last(t)
	assert.True(t, got.SigOK, "the trace context is outside the signature: "+got.SigErr)
	assert.True(t, strings.HasPrefix(got.Header.Get("Traceparent"), "00-trace-"))

	require.Equal(t, 200, serve(p, signedRequest(t, "GET", "/ibm/k", nil)).Code)
	assert.Equal(t, []string{"request", "authenticate < request", "hook/client secrets < authenticate",
		"hook/authorization < request", "iam < request", "upstream < request"}, rec.tree())

	// A failing hook, then an upstream that answers 500: each step ends with
	// what happened.
	r := httptest.NewRequest("GET", "/ibm/k", nil)
	clientSignAt(t, r, sha256Hex(nil), fixedNow, "refused", unitSecret)
	require.Equal(t, 503, serve(p, r).Code)
	rec.mu.Lock()
	steps := rec.steps
	rec.mu.Unlock()
	require.NotEmpty(t, steps)
	last := steps[len(steps)-1]
	assert.Equal(t, proxy.StepHook, last.kind)
	assert.ErrorContains(t, last.end.Err, "directory down")
	assert.Equal(t, 503, steps[0].end.StatusCode)
	assert.Equal(t, "ServiceUnavailable", steps[0].end.Info.Code)
	assert.Equal(t, "k", steps[0].end.Info.Key)
	rec.tree()

	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>")
	}
	require.Equal(t, 404, serve(p, signedRequest(t, "GET", "/bucket/k", nil)).Code)
	rec.mu.Lock()
	steps = rec.steps
	rec.mu.Unlock()
	upstream := steps[len(steps)-1]
	assert.Equal(t, proxy.StepUpstream, upstream.kind)
	assert.Equal(t, 404, upstream.end.StatusCode, "the upstream step")
	assert.Equal(t, "GetObject bucket/k", upstream.op)
	assert.Equal(t, 404, steps[0].end.StatusCode, "the request")
	assert.Equal(t, "NoSuchKey", steps[0].end.Info.UpstreamCode)
	assert.Empty(t, steps[0].end.Info.Code, "the proxy's own code: none")

	// A signature that does not verify ends the authenticate step with the
	// S3 error answered, an *Error whose Code an observer reads.
	r = httptest.NewRequest("GET", "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, "not the secret")
	require.Equal(t, 403, serve(p, r).Code)
	rec.mu.Lock()
	steps = rec.steps
	rec.mu.Unlock()
	var authEnd *proxy.StepEnd
	for i := range steps {
		if steps[i].kind == proxy.StepAuthenticate {
			authEnd = steps[i].end // the last one: this request's
		}
	}
	require.NotNil(t, authEnd, "an authenticate step")
	var auth *proxy.Error
	require.ErrorAs(t, authEnd.Err, &auth)
	assert.Equal(t, "SignatureDoesNotMatch", auth.Code)
}

// JoinObservers calls every observer's functions, their Steps nested.
func TestJoinObservers(t *testing.T) {
	var calls []string
	type key struct{}
	mk := func(name string) proxy.Observer {
		return proxy.Observer{
			Request:     func(proxy.RequestInfo) { calls = append(calls, name+" request") },
			Cache:       func(string, bool) { calls = append(calls, name+" cache") },
			IAMExchange: func(time.Duration, error) { calls = append(calls, name+" iam") },
			Step: func(ctx context.Context, s proxy.Step) (context.Context, func(proxy.StepEnd)) {
				outer, _ := ctx.Value(key{}).(string)
				calls = append(calls, name+" step in "+outer)
				return context.WithValue(ctx, key{}, name), func(proxy.StepEnd) { calls = append(calls, name+" end") }
			},
		}
	}
	o := proxy.JoinObservers(mk("a"), proxy.Observer{}, mk("b"))
	o.Request(proxy.RequestInfo{})
	o.Cache("bucket", true)
	o.IAMExchange(time.Second, nil)
	ctx, end := o.Step(context.Background(), proxy.Step{Kind: proxy.StepRequest})
	end(proxy.StepEnd{})
	assert.Equal(t, []string{"a request", "b request", "a cache", "b cache", "a iam", "b iam",
		"a step in ", "b step in a", "b end", "a end"}, calls)
	assert.Equal(t, "b", ctx.Value(key{}))
	assert.Equal(t, proxy.Observer{}, proxy.JoinObservers(proxy.Observer{}, proxy.Observer{}), "nothing to call")
}
