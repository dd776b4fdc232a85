package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// The upload reaches the upstream while the client is still sending it: the
// second half is only written after the upstream has read the first half.
func TestUploadStreams(t *testing.T) {
	for _, payload := range []string{"UNSIGNED-PAYLOAD", "hex"} {
		t.Run(payload, func(t *testing.T) {
			const half = 1 << 20
			firstHalfSeen := make(chan struct{})
			up := newFakeUpstream(t)
			up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
			// Replace the recording server with one that reads incrementally.
			streamed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				buf := make([]byte, half/2) // the proxy holds back the last byte it has until the body ends
				if _, err := io.ReadFull(r.Body, buf); !assert.NoError(t, err) {
					return
				}
				close(firstHalfSeen)
				rest, err := io.ReadAll(r.Body)
				assert.NoError(t, err)
				assert.Equal(t, half+half/2, len(rest))
				w.WriteHeader(http.StatusOK)
			}))
			defer streamed.Close()
			up.srv = streamed
			p := newProxy(t, up)
			srv := httptest.NewServer(p)
			defer srv.Close()

			body := bytes.Repeat([]byte("x"), 2*half)
			pr, pw := io.Pipe()
			go func() {
				_, _ = pw.Write(body[:half])
				select {
				case <-firstHalfSeen:
				case <-time.After(10 * time.Second):
					pw.CloseWithError(io.ErrUnexpectedEOF)
					return
				}
				_, _ = pw.Write(body[half:])
				pw.Close()
			}()
			r, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/big", pr)
			require.NoError(t, err)
			r.ContentLength = int64(len(body))
			hash := "UNSIGNED-PAYLOAD"
			if payload == "hex" {
				hash = sha256Hex(body)
			}
			clientSign(t, r, hash)
			resp, err := http.DefaultClient.Do(r)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
}

// The download reaches the client while the upstream is still sending it.
func TestDownloadStreams(t *testing.T) {
	clientGotFirst := make(chan struct{})
	url := proxyBefore(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(2<<20))
		_, _ = w.Write(bytes.Repeat([]byte("a"), 1<<20))
		w.(http.Flusher).Flush()
		select {
		case <-clientGotFirst:
		case <-time.After(10 * time.Second):
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("b"), 1<<20))
	})
	resp := signedGet(t, url+"/bucket/big")
	defer resp.Body.Close()
	assert.Equal(t, int64(2<<20), resp.ContentLength)
	first := make([]byte, 1<<20)
	_, err := io.ReadFull(resp.Body, first)
	require.NoError(t, err)
	close(clientGotFirst)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte("b"), 1<<20), rest)
}

// An answer of unknown length goes to the client as it arrives, and as it was
// sent: chunked, each piece flushed, not gathered into one answer with a
// Content-Length.
func TestUnknownLengthAnswerStreams(t *testing.T) {
	clientGotFirst := make(chan struct{})
	url := proxyBefore(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first")
		w.(http.Flusher).Flush() // no Content-Length: chunked
		if r.URL.Path == "/bucket/slow" {
			select {
			case <-clientGotFirst:
			case <-time.After(10 * time.Second):
				return
			}
		}
		_, _ = io.WriteString(w, "second")
	})
	get := func(key string) *http.Response {
		resp := signedGet(t, url+"/bucket/"+key)
		assert.Equal(t, int64(-1), resp.ContentLength, "no Content-Length")
		assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		return resp
	}

	resp := get("slow")
	first := make([]byte, len("first"))
	_, err := io.ReadFull(resp.Body, first)
	require.NoError(t, err, "the first piece arrives before the upstream sends the rest")
	close(clientGotFirst)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "firstsecond", string(first)+string(rest))

	resp = get("fast") // read by the proxy in one go: still chunked
	all, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "firstsecond", string(all))
}

// The upstream's trailers reach the client: announced ones as trailers.
func TestAnswerTrailers(t *testing.T) {
	url := proxyBefore(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Amz-Checksum-Crc32")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Amz-Checksum-Crc32", "AAAAAA==")
	})
	resp := signedGet(t, url+"/bucket/k")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "body", string(body))
	assert.Equal(t, "AAAAAA==", resp.Trailer.Get("X-Amz-Checksum-Crc32"))
}

// A body whose SHA-256 is not the signed one never completes upstream: the
// upstream sees a truncated request, the client gets XAmzContentSHA256Mismatch.
// Small bodies are hashed in line, large ones beside their copy when a core is
// to spare (GOMAXPROCS > 1): both ways.
func TestSHA256MismatchAbortsUpstream(t *testing.T) {
	for _, c := range []struct {
		size, procs int
	}{{256 << 10, 2}, {4 << 20, 1}, {4 << 20, 2}} {
		t.Run(fmt.Sprintf("%d bytes, GOMAXPROCS %d", c.size, c.procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(c.procs))
			got := make(chan error, 1)
			up := newFakeUpstream(t)
			streamed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err == nil && int64(len(b)) != r.ContentLength {
					err = io.ErrShortBuffer
				}
				got <- err
			}))
			defer streamed.Close()
			up.srv = streamed
			p := newProxy(t, up)
			srv := httptest.NewServer(p)
			defer srv.Close()

			body := bytes.Repeat([]byte("z"), c.size)
			r, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k", bytes.NewReader(body))
			require.NoError(t, err)
			tampered := bytes.Clone(body)
			tampered[len(tampered)-1] = 'y'
			clientSign(t, r, sha256Hex(tampered))
			resp, err := http.DefaultClient.Do(r)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "XAmzContentSHA256Mismatch", s3Code(string(b)))
			select {
			case err := <-got:
				assert.Error(t, err, "the upstream must not receive a complete body")
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream never saw the request")
			}
		})
	}
}

// A client that goes away mid-upload aborts the upstream request.
func TestClientDisconnectAbortsUpstream(t *testing.T) {
	got := make(chan error, 1)
	up := newFakeUpstream(t)
	streamed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
	}))
	defer streamed.Close()
	up.srv = streamed
	p := newProxy(t, up)
	srv := httptest.NewServer(p)
	defer srv.Close()

	r, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k", nil)
	require.NoError(t, err)
	r.ContentLength = 1 << 20
	clientSign(t, r, "UNSIGNED-PAYLOAD")
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	var head bytes.Buffer
	head.WriteString("PUT /bucket/k HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	require.NoError(t, r.Header.Write(&head))
	head.WriteString("Content-Length: 1048576\r\n\r\n")
	_, err = conn.Write(head.Bytes())
	require.NoError(t, err)
	_, err = conn.Write(bytes.Repeat([]byte("q"), 4096))
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	select {
	case err := <-got:
		assert.Error(t, err, "the upstream body must end in an error, not a clean EOF")
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not aborted")
	}
}

func TestExpectContinue(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	srv := httptest.NewServer(p)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	defer client.CloseIdleConnections()

	body := strings.Repeat("e", 100_000)
	r, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k", strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Expect", "100-continue")
	clientSign(t, r, sha256Hex([]byte(body))) // signs expect, as some clients do
	resp, err := client.Do(r)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, body, string(up.last(t).Body))

	// Refused before the body is read: the client never has to send it.
	r, err = http.NewRequest(http.MethodPut, srv.URL+"/nosuchbucket/k", strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Expect", "100-continue")
	clientSign(t, r, sha256Hex([]byte(body)))
	resp, err = client.Do(r)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestUpstreamDownOrHanging(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	// A server that accepts and never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	creds := proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}
	p, err := proxy.New(
		proxy.WithBuckets(
			proxy.Bucket{Name: "dead", Endpoint: proxy.Endpoint{Host: "127.0.0.1", Port: deadPort, Scheme: "http", PathStyle: true}, Credentials: creds},
			proxy.Bucket{Name: "hang", Endpoint: proxy.Endpoint{Host: "127.0.0.1", Port: hang.Addr().(*net.TCPAddr).Port, Scheme: "http", PathStyle: true}, Credentials: creds},
		),
		proxy.WithClientKeys(map[string]string{unitKey: unitSecret}),
		proxy.WithClock(func() time.Time { return fixedNow }),
		proxy.WithResponseHeaderTimeout(300*time.Millisecond),
	)
	require.NoError(t, err)
	defer p.Close()

	for bucket, want := range map[string]struct {
		status int
		code   string
	}{"dead": {502, "BadGateway"}, "hang": {504, "GatewayTimeout"}} {
		r := httptest.NewRequest(http.MethodGet, "/"+bucket+"/k", nil)
		clientSign(t, r, sha256Hex(nil))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w := serve(p, r.WithContext(ctx))
		cancel()
		assert.Equal(t, want.status, w.Code, bucket)
		assert.Equal(t, want.code, s3Code(w.Body.String()), bucket)
		assert.NotEmpty(t, w.Header().Get("X-Amz-Request-Id"))
	}
}

// WithUpstreamPayloadCheck: a hex-signed body goes to an HMAC upstream as
// received, with the client's hash in the upstream signature, and the upstream's
// own check refuses a body that does not match; a bearer upstream still gets
// the body only once the proxy has checked it.
func TestUpstreamPayloadCheck(t *testing.T) {
	body := bytes.Repeat([]byte("z"), 256<<10)
	other := bytes.Clone(body)
	other[len(other)-1] = 'y'
	// An upstream that checks the hash as S3 does.
	checking := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if want := r.Header.Get("X-Amz-Content-Sha256"); !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && sha256Hex(b) != want {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "<Error><Code>XAmzContentSHA256Mismatch</Code></Error>")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}
	put := func(bucket string, signedFor []byte) *http.Request {
		r := httptest.NewRequest(http.MethodPut, "/"+bucket+"/k", bytes.NewReader(body))
		clientSign(t, r, sha256Hex(signedFor))
		return r
	}
	up := newFakeUpstream(t)
	up.handler = checking
	iam := testkit.NewIAM(t, testkit.NewClock(fixedNow).Now, "the-api-key")
	p := newProxy(t, up, proxy.WithUpstreamPayloadCheck(true),
		proxy.WithBuckets(proxy.Bucket{Name: "ibm-bucket", Endpoint: up.endpoint(), Credentials: proxy.Credentials{APIKey: "the-api-key"}}),
		proxy.WithIAMEndpoint("http://iam.test/identity/token"),
		proxy.WithTransport(routes(up, iam)),
	)

	w := serve(p, put("bucket", body))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	got := up.last(t)
	assert.True(t, got.SigOK, got.SigErr)
	assert.Equal(t, sha256Hex(body), got.Header.Get("X-Amz-Content-Sha256"))

	w = serve(p, put("bucket", other))
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, "XAmzContentSHA256Mismatch", s3Code(w.Body.String()), "the upstream's answer")
	got = up.last(t)
	assert.Len(t, got.Body, len(body), "the upstream received the whole body and refused it itself")
	assert.Equal(t, sha256Hex(other), got.Header.Get("X-Amz-Content-Sha256"))

	n := len(up.requests())
	w = serve(p, put("ibm-bucket", other))
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, "XAmzContentSHA256Mismatch", s3Code(w.Body.String()))
	for _, r := range up.requests()[n:] {
		assert.Less(t, len(r.Body), len(body), "a bearer upstream never receives a whole unchecked body")
	}
}

// An answer cut short once its headers went to the client, by the upstream or
// by the client, aborts the client's connection (the client must not take the
// part it got for the whole) and is still observed: the Observer's Request
// with what was written, the request step ended with what cut it.
func TestCutAnswerAborts(t *testing.T) {
	const size, sent = 2 << 20, 1 << 20
	clientRead := make(chan struct{})
	infos := make(chan proxy.RequestInfo, 2)
	steps := &stepRecorder{}
	url := proxyBefore(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(bytes.Repeat([]byte("a"), sent))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/bucket/client-leaves" {
			select { // the client goes away: the proxy's write fails
			case <-clientRead:
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			<-r.Context().Done()
			return
		}
		panic(http.ErrAbortHandler) // the upstream's connection breaks after half the body
	}, proxy.WithObserver(proxy.Observer{
		Request: func(i proxy.RequestInfo) { infos <- i },
		Step:    steps.step,
	}))

	requestEnd := func() *proxy.StepEnd { // the last request step's end, once it has ended
		var end *proxy.StepEnd
		assert.Eventually(t, func() bool {
			steps.mu.Lock()
			defer steps.mu.Unlock()
			for i := len(steps.steps) - 1; i >= 0; i-- {
				if steps.steps[i].kind == proxy.StepRequest {
					end = steps.steps[i].end
					return end != nil
				}
			}
			return false
		}, 10*time.Second, time.Millisecond)
		return end
	}
	get := func(key string) *http.Response {
		resp := signedGet(t, url+"/bucket/"+key)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, int64(size), resp.ContentLength)
		return resp
	}

	t.Run("upstream", func(t *testing.T) {
		resp := get("upstream-cuts")
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the client sees the cut")
		assert.Len(t, got, sent)
		select {
		case info := <-infos:
			assert.Equal(t, http.StatusOK, info.Status)
			assert.Equal(t, int64(sent), info.BytesOut)
		case <-time.After(10 * time.Second):
			t.Fatal("the cut request was not observed")
		}
		end := requestEnd()
		require.NotNil(t, end, "the request step ended")
		assert.Error(t, end.Err, "the request step ends with what cut it")
	})

	t.Run("client", func(t *testing.T) {
		resp := get("client-leaves")
		_, err := io.ReadFull(resp.Body, make([]byte, 64<<10))
		require.NoError(t, err)
		resp.Body.Close() // the client goes away with the answer half sent
		close(clientRead)
		select {
		case info := <-infos:
			assert.Equal(t, http.StatusOK, info.Status)
			assert.Less(t, info.BytesOut, int64(size))
		case <-time.After(10 * time.Second):
			t.Fatal("the request its client left was not observed")
		}
		end := requestEnd()
		require.NotNil(t, end, "the request step ended")
		assert.Error(t, end.Err)
	})
}

// bodylessTransport answers every request with status and no Body at all, as
// a caller's RoundTripper may.
type bodylessTransport struct{ status int }

func (t bodylessTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: t.status, Header: http.Header{}, Request: r}, nil
}

// An answer without a Body from a caller's RoundTripper is an empty answer,
// not a panic; one that switches protocols unasked is a bad gateway.
func TestBodylessAnswers(t *testing.T) {
	for _, c := range []struct{ status, want int }{{204, 204}, {200, 200}, {404, 404}, {101, 502}} {
		up := newFakeUpstream(t)
		p := newProxy(t, up, proxy.WithTransport(bodylessTransport{c.status}))
		w := serve(p, signedRequest(t, "GET", "/bucket/k", nil))
		assert.Equal(t, c.want, w.Code, "upstream status %d", c.status)
		if c.want != 502 {
			assert.Empty(t, w.Body.String())
		}
	}
}

// proxyBefore serves h as the fake upstream, behind a proxy (with opts) served
// over HTTP, closed at the test's end; it returns the proxy's URL.
func proxyBefore(t *testing.T, h http.HandlerFunc, opts ...proxy.Option) string {
	t.Helper()
	up := newFakeUpstream(t)
	up.srv.Close()
	up.srv = httptest.NewServer(h)
	t.Cleanup(up.srv.Close)
	srv := httptest.NewServer(newProxy(t, up, opts...))
	t.Cleanup(srv.Close)
	return srv.URL
}

// signedGet sends a GET of url signed with the client keys, on a connection
// of its own.
func signedGet(t *testing.T, url string) *http.Response {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	clientSign(t, r, sha256Hex(nil))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(r)
	require.NoError(t, err)
	return resp
}
