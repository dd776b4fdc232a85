package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// tapTransport records, for each upstream request, how it ended: the error
// RoundTrip returned, or the status, and whether reading the request body
// failed.
type tapTransport struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	ends []tapEnd
}

type tapEnd struct {
	method, path string
	status       int
	err          error // from RoundTrip
	bodyErr      error // the first error other than EOF reading the request body
	bodyBytes    int64
}

func (t *tapTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body *tapBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &tapBody{rc: r.Body}
		r.Body = body
	}
	resp, err := t.rt.RoundTrip(r)
	e := tapEnd{method: r.Method, path: r.URL.Path, err: err}
	if resp != nil {
		e.status = resp.StatusCode
	}
	if body != nil {
		body.mu.Lock()
		e.bodyErr, e.bodyBytes = body.err, body.n
		body.mu.Unlock()
	}
	t.mu.Lock()
	t.ends = append(t.ends, e)
	t.mu.Unlock()
	return resp, err
}

func (t *tapTransport) last(method string) (tapEnd, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.ends) - 1; i >= 0; i-- {
		if t.ends[i].method == method {
			return t.ends[i], true
		}
	}
	return tapEnd{}, false
}

type tapBody struct {
	rc  io.ReadCloser
	mu  sync.Mutex
	n   int64
	err error
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	return n, err
}

func (b *tapBody) Close() error { return b.rc.Close() }

// stallReader yields n bytes of data, then blocks until release is closed.
type stallReader struct {
	data    []byte
	n       int
	off     int
	reached chan struct{}
	once    sync.Once
	release <-chan struct{}
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.off < s.n {
		k := copy(p, s.data[s.off:s.n])
		s.off += k
		return k, nil
	}
	s.once.Do(func() { close(s.reached) })
	<-s.release
	return 0, errors.New("stalled reader released")
}

// TestFaultClientDisconnectMidUpload: a client that goes away in the middle
// of an upload, in each body format, makes the proxy abort its upstream
// request, and versitygw stores nothing: no object, no part. Raw uploads are
// cut with a reset (a crashed host, a killed connection) and with a FIN (a
// killed process); each is also sent straight to versitygw, and through the
// proxy nothing may be stored where versitygw itself stores nothing.
func TestFaultClientDisconnectMidUpload(t *testing.T) {
	t.Parallel()
	v := versity(t, false)
	tap := &tapTransport{rt: v.transport(t)}
	bucket := "osp-fault-disconnect"
	o := oracle(t, v)
	ctx := context.Background()
	_, err := o.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	require.NoError(t, err)
	p := newVGWProxy(t, v, []string{bucket}, proxy.WithTransport(tap))
	srv := serve(t, p, false)
	tlsSrv := serve(t, p, true)
	const size, sent = 16 << 20, 6 << 20
	payload := randomBytes(size, 7)

	// waitProxy waits for the proxy's handlers to finish and checks that the
	// last upstream PUT was aborted.
	waitProxy := func(t *testing.T) {
		if !waitFor(10*time.Second, func() bool { return srv.active.Load() == 0 && tlsSrv.active.Load() == 0 }) {
			t.Fatalf("the proxy handler still runs after the client left")
		}
		e, ok := tap.last(http.MethodPut)
		if !ok {
			t.Fatalf("no upstream PUT was sent")
		}
		t.Logf("upstream PUT %s: %d body bytes read, body error %v; round trip error %v, status %d", e.path, e.bodyBytes, e.bodyErr, e.err, e.status)
		if e.err == nil {
			t.Errorf("the upstream request was not aborted: it ended with status %d", e.status)
		}
		if e.bodyBytes >= size {
			t.Errorf("the whole body (%d bytes) went upstream", e.bodyBytes)
		}
	}
	// stored reports what versitygw holds for key (or for part 1 of
	// uploadID) after the disconnect, and cleans up.
	stored := func(t *testing.T, key, uploadID string) string {
		time.Sleep(500 * time.Millisecond) // let versitygw finish whatever it does
		if uploadID != "" {
			parts, err := o.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: &key, UploadId: &uploadID})
			require.NoError(t, err)
			_, _ = o.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &uploadID})
			if len(parts.Parts) > 0 {
				return fmt.Sprintf("part 1 of %d bytes", aws.ToInt64(parts.Parts[0].Size))
			}
			return ""
		}
		h, err := o.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			require.Equal(t, "404 NotFound", s3Code(err))
			return ""
		}
		_, _ = o.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
		return fmt.Sprintf("an object of %d bytes", aws.ToInt64(h.ContentLength))
	}

	type rawCase struct {
		name string
		// build returns the head and the bytes to send before cutting.
		build func(t *testing.T, addr, key, secret, target string) (string, []byte)
		part  bool // an UploadPart
	}
	plain := func(hash string) func(t *testing.T, addr, key, secret, target string) (string, []byte) {
		return func(t *testing.T, addr, key, secret, target string) (string, []byte) {
			sr := signRawAs(t, addr, http.MethodPut, target, nil, hash, size, key, secret, time.Now())
			return sr.head, payload[:sent]
		}
	}
	cases := []rawCase{
		{"UNSIGNED-PAYLOAD", plain("UNSIGNED-PAYLOAD"), false},
		{"hex SHA-256", plain(sha256Hex(payload)), false},
		{"signed aws-chunked", func(t *testing.T, addr, key, secret, target string) (string, []byte) {
			h := http.Header{"X-Amz-Decoded-Content-Length": {fmt.Sprint(size)}, "Content-Encoding": {"aws-chunked"}}
			sr := signRawAs(t, addr, http.MethodPut, target, h, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
				signedChunkedLength(size, 64<<10), key, secret, time.Now())
			body := sr.signedChunks(payload, 64<<10)
			return sr.head, body[:len(body)*sent/size]
		}, false},
		{"UploadPart UNSIGNED-PAYLOAD", plain("UNSIGNED-PAYLOAD"), true},
	}
	// cut sends one raw upload to addr and cuts it; it returns what
	// versitygw then holds.
	cut := func(t *testing.T, c rawCase, addr, key, secret, objKey string, reset, viaProxy bool) string {
		target, uploadID := "/"+bucket+"/"+objKey, ""
		if c.part {
			up, err := o.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &objKey})
			require.NoError(t, err)
			uploadID = aws.ToString(up.UploadId)
			target += "?partNumber=1&uploadId=" + uploadID
		}
		head, body := c.build(t, addr, key, secret, target)
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = io.WriteString(conn, head)
		require.NoError(t, err)
		_, err = conn.Write(body)
		require.NoError(t, err)
		time.Sleep(300 * time.Millisecond) // streamed on
		if reset {
			_ = conn.(*net.TCPConn).SetLinger(0)
		}
		_ = conn.Close()
		if viaProxy {
			waitProxy(t)
		}
		return stored(t, objKey, uploadID)
	}
	// The raw subtests run one after the other: waitProxy reads the last
	// upstream PUT.
	for _, c := range cases {
		for _, reset := range []bool{true, false} {
			how := "FIN"
			if reset {
				how = "reset"
			}
			t.Run(c.name+", cut with a "+how, func(t *testing.T) {
				key := strings.ReplaceAll(strings.ToLower(c.name+"-"+how), " ", "-")
				direct := cut(t, c, v.Addr, vgwAccessKey, vgwSecretKey, key+"-direct", reset, false)
				viaProxy := cut(t, c, srv.addr(), clientKey, clientSecret, key+"-proxy", reset, true)
				switch {
				case viaProxy == "":
					if direct != "" {
						t.Logf("versitygw itself keeps %s when the client cuts it straight; through the proxy nothing", direct)
					}
				case direct != "":
					t.Logf("versitygw itself keeps %s of a cut upload (a versitygw bug); through the proxy too: %s", direct, viaProxy)
				default:
					t.Errorf("through the proxy versitygw keeps %s of the cut upload; straight to versitygw it keeps nothing", viaProxy)
				}
			})
		}
	}

	// stalledClient runs put with a body that stalls after sent bytes and
	// cancels it then, as a client's deadline or Ctrl-C does.
	stalledClient := func(t *testing.T, put func(ctx context.Context, body io.Reader) error) {
		release := make(chan struct{})
		sr := &stallReader{data: payload, n: sent, reached: make(chan struct{}), release: release}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- put(ctx, sr) }()
		select {
		case <-sr.reached:
		case err := <-done:
			t.Fatalf("the upload ended before the stall: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the client did not send its first bytes")
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
		close(release)
		t.Logf("client: %v", <-done)
		waitProxy(t)
	}
	t.Run("minio-go streaming signed chunks, cancelled", func(t *testing.T) {
		m, err := newMinio(target{url: srv.URL, scheme: "http", key: clientKey, secret: clientSecret})
		require.NoError(t, err)
		defer m.Close()
		stalledClient(t, func(ctx context.Context, body io.Reader) error {
			_, err := m.c.PutObject(ctx, bucket, "minio", body, size, minio.PutObjectOptions{})
			return err
		})
		if got := stored(t, "minio", ""); got != "" {
			t.Errorf("versitygw keeps %s", got)
		}
	})
	t.Run("aws-sdk-go-v2 over https, unsigned aws-chunked with trailer, cancelled", func(t *testing.T) {
		c, _ := goS3(t, tlsSrv.URL, clientKey, clientSecret, 0)
		stalledClient(t, func(ctx context.Context, body io.Reader) error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("sdk"), Body: body, ContentLength: aws.Int64(size)})
			return err
		})
		if got := stored(t, "sdk", ""); got != "" {
			t.Errorf("versitygw keeps %s", got)
		}
	})
	t.Run("aws-sdk-go-v2 UploadPart over https, cancelled", func(t *testing.T) {
		up, err := o.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("sdkpart")})
		require.NoError(t, err)
		c, _ := goS3(t, tlsSrv.URL, clientKey, clientSecret, 0)
		stalledClient(t, func(ctx context.Context, body io.Reader) error {
			_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("sdkpart"), UploadId: up.UploadId,
				PartNumber: aws.Int32(1), Body: body, ContentLength: aws.Int64(size)})
			return err
		})
		if got := stored(t, "sdkpart", aws.ToString(up.UploadId)); got != "" {
			t.Errorf("versitygw keeps %s", got)
		}
	})
	_ = emptyBucket(ctx, o, bucket)
	_, _ = o.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
}
