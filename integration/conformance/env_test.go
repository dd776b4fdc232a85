package conformance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// The proxy's client key pair (verified mode) and the region every client
// signs for.
const (
	clientKey    = "osp-client"
	clientSecret = "osp-client-secret"
	region       = "us-east-1"
)

// cert is the self-signed certificate of every TLS server of the suite
// (versitygw over https and the proxy over https), for 127.0.0.1 and
// localhost. Clients run with certificate verification off.
type cert struct {
	tls               tls.Certificate
	certFile, keyFile string
	err               error
}

var (
	certOnce sync.Once
	certVal  cert
	certDir  string
)

func testCert() *cert {
	certOnce.Do(func() { certVal = makeCert() })
	return &certVal
}

func makeCert() cert {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert{err: err}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "osp conformance"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cert{err: err}
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return cert{err: err}
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return cert{err: err}
	}
	// The versitygw processes read the files; they live as long as the
	// binary and go with the versitygw directories' parent at exit.
	dir, err := os.MkdirTemp("", "osp-conformance-cert-")
	if err != nil {
		return cert{err: err}
	}
	certDir = dir
	out := cert{tls: c, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(out.certFile, certPEM, 0o600); err != nil {
		return cert{err: err}
	}
	if err := os.WriteFile(out.keyFile, keyPEM, 0o600); err != nil {
		return cert{err: err}
	}
	return out
}

// insecureTLS is the client TLS configuration: verification off.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// server is an http.Server on a loopback port, configured as a production
// server would be (ReadHeaderTimeout, bounded header size), serving h over
// http or https. It counts the handlers running.
type server struct {
	URL     string
	srv     *http.Server
	ln      net.Listener
	active  atomic.Int64
	handled atomic.Int64
}

// serverHeaderTimeout is the ReadHeaderTimeout of the suite's servers, as in
// examples/server (it also bounds the TLS handshake).
const serverHeaderTimeout = 10 * time.Second

func serve(t testing.TB, h http.Handler, useTLS bool) *server {
	t.Helper()
	return serveWith(t, h, useTLS, serverHeaderTimeout)
}

// serveWith is serve with another ReadHeaderTimeout.
func serveWith(t testing.TB, h http.Handler, useTLS bool, headerTimeout time.Duration) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &server{ln: ln}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.active.Add(1)
			defer s.active.Add(-1)
			defer s.handled.Add(1)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	scheme := "http"
	if useTLS {
		c := testCert()
		require.NoError(t, c.err)
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{c.tls}}
		scheme = "https"
	}
	s.URL = scheme + "://" + s.ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if useTLS {
			_ = s.srv.ServeTLS(ln, "", "") // HTTP/2 as well, as ListenAndServeTLS
		} else {
			_ = s.srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-done
		// Handlers of hijacked or aborted connections may still be
		// finishing: wait for them, bounded.
		waitFor(5*time.Second, func() bool { return s.active.Load() == 0 })
	})
	return s
}

// addr is the server's host:port.
func (s *server) addr() string { return s.ln.Addr().String() }

// waitFor polls cond every 10 ms until it holds or d passed; it reports
// whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// debugLog is the proxy's logger when OSP_PROXY_LOG=1: debug events on
// stderr. By default the proxy logs nothing.
func debugLog() []proxy.Option {
	if os.Getenv("OSP_PROXY_LOG") != "1" {
		return nil
	}
	return []proxy.Option{proxy.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))}
}

// vgwCreds are versitygw's root keys as proxy upstream credentials.
var vgwCreds = proxy.Credentials{AccessKeyID: vgwAccessKey, SecretAccessKey: vgwSecretKey}

// vgwEndpoint is the proxy's upstream endpoint for versitygw v: virtual-hosted
// names under s3.osp.test, which v.transport dials to v.
func vgwEndpoint(v *versityGW) proxy.Endpoint {
	scheme := "http"
	if v.TLS {
		scheme = "https"
	}
	return proxy.Endpoint{Host: vgwDomain, Port: v.Port, Scheme: scheme}
}

// newVGWProxy is the proxy of the matrix, the scale-out test and the soak:
// verified mode with the client key pair; static buckets (listed by
// ListBuckets) and a hook that sends any other valid bucket name to
// versitygw too, so that clients can create buckets; upstream keys are
// versitygw's root keys.
func newVGWProxy(t testing.TB, v *versityGW, static []string, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	ep := vgwEndpoint(v)
	var buckets []proxy.Bucket
	for _, b := range static {
		buckets = append(buckets, proxy.Bucket{Name: b, Endpoint: ep, Credentials: vgwCreds})
	}
	all := []proxy.Option{
		proxy.WithClientKeys(map[string]string{clientKey: clientSecret}),
		proxy.WithEndpoint(func(context.Context, string) (proxy.Endpoint, error) { return ep, nil }),
		proxy.WithCredentials(func(context.Context, string) (proxy.Credentials, error) { return vgwCreds, nil }),
		proxy.WithTransport(v.transport(t)),
	}
	if len(buckets) > 0 {
		all = append(all, proxy.WithBuckets(buckets...))
	}
	p, err := proxy.New(append(all, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// goS3 returns an aws-sdk-go-v2 S3 client for a path-style endpoint with the
// settings config.LoadDefaultConfig gives every client (CRC32 checksums on
// uploads). retries 0 turns retries off. Its idle connections are closed when
// the test ends.
func goS3(t testing.TB, endpoint, key, secret string, retries int) (*s3.Client, *http.Client) {
	tr := &http.Transport{
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: awshttp.DefaultHTTPTransportExpectContinueTimeout,
		TLSClientConfig:       insecureTLS(),
		ForceAttemptHTTP2:     true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	o := s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,

		DisableLogOutputChecksumValidationSkipped: true,
	}
	if retries == 0 {
		o.Retryer = aws.NopRetryer{}
	}
	return s3.New(o), hc
}

// oracle is an aws-sdk-go-v2 client straight to a versitygw with its root
// keys: what the suite uses to set up state and to check what was stored,
// independently of the client under test.
func oracle(t testing.TB, v *versityGW) *s3.Client {
	c, _ := goS3(t, v.url(), vgwAccessKey, vgwSecretKey, 0)
	return c
}

// s3Code reduces an aws-sdk-go-v2 error to "ok" or "<status> <code>".
func s3Code(err error) string {
	if err == nil {
		return "ok"
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", status, ae.ErrorCode())
	}
	if status != 0 {
		return fmt.Sprint(status)
	}
	return err.Error()
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed byte) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8(s).Read(b)
	return b
}

// oracleGet reads an object with the oracle; err for a missing object.
func oracleGet(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// oraclePut stores an object with the oracle.
func oraclePut(ctx context.Context, c *s3.Client, bucket, key string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
	return err
}

// oracleKeys lists every key under prefix.
func oracleKeys(ctx context.Context, c *s3.Client, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
