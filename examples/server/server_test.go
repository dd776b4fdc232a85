package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// testLogger logs through t, so a failing test shows what the servers said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startTestDemo starts the demo on a port of the OS's choosing, so that tests
// never clash with a demo already running, and stops it when the test ends.
func startTestDemo(t *testing.T) string {
	t.Helper()
	return startTestServer(t, demoConfig(t)).Addr()
}

// demoConfig is the demo's configuration with every listener on a port of
// the OS's choosing.
func demoConfig(t *testing.T) config {
	t.Helper()
	cfg, err := parseConfig([]string{"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-browser-listen", "127.0.0.1:0"}, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startTestServer starts a server and shuts it down when the test ends.
func startTestServer(t *testing.T, cfg config) *server {
	t.Helper()
	s, err := start(cfg, testLogger(t))
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
	return s
}

// newClient returns an S3 client of the proxy at addr, signing with the given
// key pair.
func newClient(addr, keyID, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + addr),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer:      aws.NopRetryer{},
	})
}

func TestDemoObjectRoundTrip(t *testing.T) {
	ctx := t.Context()
	c := newClient(startTestDemo(t), demoKeyID, demoSecret)

	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != demoBucket {
		t.Fatalf("ListBuckets = %v, want only %q", bucketNames(lb.Buckets), demoBucket)
	}

	bodies := map[string][]byte{
		"empty":            {},
		"small.txt":        []byte("hello, proxy\n"),
		"dir/large (3MiB)": randomBytes(t, 3<<20+17),
	}
	for key, body := range bodies {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(demoBucket),
			Key:    aws.String(key),
			Body:   bytes.NewReader(body),
		})
		if err != nil {
			t.Fatalf("PutObject %q: %v", key, err)
		}
	}
	for key, want := range bodies {
		got := getObject(t, c, key)
		if !bytes.Equal(got, want) {
			t.Errorf("GetObject %q: %d bytes, want %d bytes byte-exact", key, len(got), len(want))
		}
	}

	for key := range bodies {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(key)}); err != nil {
			t.Fatalf("DeleteObject %q: %v", key, err)
		}
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(demoBucket), Key: aws.String("small.txt")})
	if _, ok := errors.AsType[*types.NoSuchKey](err); !ok {
		t.Errorf("GetObject after DeleteObject: %v, want NoSuchKey", err)
	}
}

func TestDemoRefusesBadCredentials(t *testing.T) {
	addr := startTestDemo(t)
	tests := []struct {
		name, keyID, secret, code string
	}{
		{"wrong secret", demoKeyID, "not-the-secret", "SignatureDoesNotMatch"},
		{"unknown key id", "osp-stranger", demoSecret, "InvalidAccessKeyId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(addr, tt.keyID, tt.secret)
			_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
				Bucket: aws.String(demoBucket),
				Key:    aws.String("intruder"),
				Body:   strings.NewReader("x"),
			})
			checkS3Error(t, err, http.StatusForbidden, tt.code)
			_, err = c.ListBuckets(t.Context(), &s3.ListBucketsInput{})
			checkS3Error(t, err, http.StatusForbidden, tt.code)
		})
	}
	// Nothing got in.
	c := newClient(addr, demoKeyID, demoSecret)
	_, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(demoBucket), Key: aws.String("intruder")})
	checkS3Error(t, err, http.StatusNotFound, "NotFound")
}

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6190", "127.0.0.2:0", "[::1]:6190", "localhost:6190"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q) = %v, want nil", addr, err)
		}
	}
	for _, addr := range []string{":6190", "0.0.0.0:6190", "[::]:6190", "192.0.2.1:6190", "example.com:6190", "127.0.0.1"} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("checkLoopback(%q) = nil, want an error", addr)
		}
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-listen", "0.0.0.0:0"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("run -listen 0.0.0.0:0 = %v, want a not-loopback error", err)
	}
	if strings.Contains(stdout.String(), demoSecret) {
		t.Errorf("run printed the demo instructions although it refused to start:\n%s", stdout.String())
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-log-level", "loud"}, {"-no-such-flag"}, {"extra"}, {"-shutdown-timeout", "0s"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("run %q = %v, want a usage error", args, err)
		}
	}
}

// TestRunGracefulShutdown cancels run's context while an upload is in flight:
// the upload completes, then run returns nil.
func TestRunGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-browser-listen", "127.0.0.1:0", "-log-level", "debug"}, pw, t.Output())
		pw.Close()
	}()
	addr := readAddr(t, stdout)
	go io.Copy(io.Discard, stdout)

	up := startUpload(t, addr, "slow")

	cancel()
	time.Sleep(100 * time.Millisecond) // let Shutdown start: it must wait for the upload
	select {
	case err := <-done:
		t.Fatalf("run returned %v with an upload in flight", err)
	default:
	}
	up.finish(t)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the context was cancelled")
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/"); err == nil {
		t.Error("the proxy still answers after run returned")
	}
}

// readAddr reads run's instructions up to the endpoint URL and returns the
// proxy's address, checking the commands printed on the way.
func readAddr(t *testing.T, r io.Reader) string {
	t.Helper()
	sc := bufio.NewScanner(r)
	re := regexp.MustCompile(`^aws --endpoint-url http://(127\.0\.0\.1:[0-9]+) s3 ls$`)
	var export bool
	for sc.Scan() {
		line := sc.Text()
		if line == "export AWS_ACCESS_KEY_ID=osp-demo AWS_SECRET_ACCESS_KEY=osp-demo-secret AWS_DEFAULT_REGION=us-east-1" {
			export = true
		}
		if m := re.FindStringSubmatch(line); m != nil {
			if !export {
				t.Error("the export line was not printed before the aws commands")
			}
			return m[1]
		}
	}
	t.Fatalf("run printed no endpoint URL (%v)", sc.Err())
	return ""
}

// signedPut returns a PutObject request of body (size bytes) signed for the
// demo with UNSIGNED-PAYLOAD, which lets the body stream.
func signedPut(t *testing.T, addr, key string, body io.Reader, size int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/"+demoBucket+"/"+key, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: demoKeyID, SecretAccessKey: demoSecret}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// signalReader closes first on its first Read.
// inFlightUpload is a 6-byte PUT whose body the test writes itself: 3 bytes
// at once, 3 more on finish. With Expect: 100-continue the client sends the
// body only once the proxy's handler reads it, so once startUpload returns the
// request is in flight.
type inFlightUpload struct {
	bw   *io.PipeWriter
	resp chan *http.Response
}

func startUpload(t *testing.T, addr, key string) *inFlightUpload {
	t.Helper()
	body, bw := io.Pipe()
	firstRead := make(chan struct{})
	req := signedPut(t, addr, key, &signalReader{r: body, first: firstRead}, 6)
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	up := &inFlightUpload{bw: bw, resp: make(chan *http.Response, 1)}
	go func() {
		r, err := client.Do(req)
		if err != nil {
			t.Errorf("upload: %v", err)
		}
		up.resp <- r
	}()
	go bw.Write([]byte("abc"))
	select {
	case <-firstRead:
	case <-time.After(10 * time.Second):
		t.Fatal("the upload never reached the proxy")
	}
	return up
}

// finish sends the rest of the body and expects the upload to succeed.
func (up *inFlightUpload) finish(t *testing.T) {
	t.Helper()
	up.bw.Write([]byte("def"))
	up.bw.Close()
	if r := <-up.resp; r != nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Errorf("upload during shutdown: %s\n%s", r.Status, b)
		}
	}
}

type signalReader struct {
	r     io.Reader
	first chan struct{}
	seen  bool
}

func (s *signalReader) Read(p []byte) (int, error) {
	if !s.seen {
		s.seen = true
		close(s.first)
	}
	return s.r.Read(p)
}

func getObject(t *testing.T, c *s3.Client, key string) []byte {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %q: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %q: reading the body: %v", key, err)
	}
	return b
}

func checkS3Error(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d %s", status, code)
	}
	if re, ok := errors.AsType[*awshttp.ResponseError](err); !ok || re.HTTPStatusCode() != status {
		t.Errorf("error %v, want HTTP status %d", err, status)
	}
	if ae, ok := errors.AsType[smithy.APIError](err); !ok || ae.ErrorCode() != code {
		t.Errorf("error %v, want code %s", err, code)
	}
}

func bucketNames(bs []types.Bucket) []string {
	var names []string
	for _, b := range bs {
		names = append(names, aws.ToString(b.Name))
	}
	return names
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// The demo takes the SigV2 presigned URLs of aws-cli v1's `aws s3 presign`,
// a newcomer's first try.
func TestDemoSigV2Presign(t *testing.T) {
	addr := startTestDemo(t)
	c := newClient(addr, demoKeyID, demoSecret)
	body := []byte("shared by a link\n")
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(demoBucket), Key: aws.String("link.txt"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	expires := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	m := hmac.New(sha1.New, []byte(demoSecret))
	m.Write([]byte("GET\n\n\n" + expires + "\n/" + demoBucket + "/link.txt"))
	q := url.Values{"AWSAccessKeyId": {demoKeyID}, "Expires": {expires}, "Signature": {base64.StdEncoding.EncodeToString(m.Sum(nil))}}
	resp, err := http.Get("http://" + addr + "/" + demoBucket + "/link.txt?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("SigV2 presigned GET: %s %q", resp.Status, got)
	}
}
