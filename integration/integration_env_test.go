package integration_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/integration/internal/s3servers"
	"github.com/osproxy/proxy/internal/testkit"
)

// The integration suite runs every step twice, once against versitygw directly
// (the baseline, with versitygw's root keys) and once through the proxy (with a
// client key of the proxy), and requires the same outcome: success or the same
// failure, the same bytes, the same names listed. Each step reduces its result
// to a short outcome string that does not depend on the side (no bucket names,
// request ids or ETags), so comparing outcomes is comparing behaviour.

const (
	itgClientKey    = "osp-client"
	itgClientSecret = "osp-client-secret"
	itgRegion       = "us-east-1"
	itgMountPath    = "/s3"
)

// itgMount says how the proxy is served.
type itgMount int

const (
	itgMountRoot        itgMount = iota // httptest.NewServer(p)
	itgMountStripPrefix                 // mux.Handle("/s3/", http.StripPrefix("/s3", p))
	itgMountPathPrefix                  // mux.Handle("/s3/", p) with proxy.WithPathPrefix("/s3")
)

// itgEachUpstreamStyle runs steps in parallel subtests, on an environment of
// two buckets per side whose upstream requests are virtual-hosted (the
// proxy's default) and on one whose upstream requests are path-style.
func itgEachUpstreamStyle(t *testing.T, steps func(t *testing.T, e *itgEnv)) {
	t.Helper()
	for _, tc := range []struct {
		name      string
		pathStyle bool
	}{{"virtual-hosted upstream", false}, {"path-style upstream", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			steps(t, newItgEnv(t, itgConfig{buckets: 2, pathStyle: tc.pathStyle}))
		})
	}
}

type itgConfig struct {
	buckets   int            // buckets per side (default 1)
	pathStyle bool           // path-style upstream requests instead of virtual-hosted
	mount     itgMount       // how the proxy is mounted
	tls       bool           // clients speak https: to the proxy, and to versitygw through a TLS-terminating pass-through
	opts      []proxy.Option // more proxy options
	hooks     bool           // route the buckets with WithEndpoint, WithCredentials and WithBucketList, not WithBuckets
	anonymous bool           // the proxy's buckets take anonymous requests
	// upstream, when set, is the S3 server of both sides instead of
	// versitygw (integration_upstreams_test.go), reached with its keys;
	// plainUploads sets its endpoint's PlainUploads.
	upstream     *s3servers.Server
	plainUploads bool
}

// itgSide is one way to reach versitygw: directly or through the proxy.
type itgSide struct {
	name    string // "direct" or "proxy"
	c       *s3.Client
	hc      *http.Client // the client's HTTP client, for presigned requests
	buckets []string
	base    string // the client's base endpoint
	key     string // the client's access key and secret
	secret  string
}

// itgEnv is a proxy in front of versitygw and two clients, one for each side.
type itgEnv struct {
	direct    *itgSide
	proxy     *itgSide
	pathStyle bool // the proxy's upstream is path-style
	// judge, when set, decides each step of both instead of requiring the
	// same outcome on the two sides (integration_upstreams_test.go).
	judge func(t *testing.T, step, want, direct, proxy string)
}

func (e *itgEnv) sides() []*itgSide { return []*itgSide{e.direct, e.proxy} }

func newItgEnv(t *testing.T, cfg itgConfig) *itgEnv {
	t.Helper()
	up := itgUpstream{key: vgwAccessKey, secret: vgwSecretKey, domain: vgwDomain}
	if u := cfg.upstream; u != nil {
		up = itgUpstream{addr: u.Addr, url: u.URL(), port: u.Port, key: u.AccessKey, secret: u.SecretKey, domain: u.Domain, tr: u.Transport()}
		t.Cleanup(up.tr.CloseIdleConnections)
	} else {
		v := versity(t)
		up.addr, up.url, up.port, up.tr = v.Addr, v.url(), v.Port, v.transport(t)
	}
	if cfg.buckets == 0 {
		cfg.buckets = 1
	}
	e := &itgEnv{pathStyle: cfg.pathStyle}
	e.direct = &itgSide{name: "direct", base: up.url, key: up.key, secret: up.secret}
	e.proxy = &itgSide{name: "proxy", key: itgClientKey, secret: itgClientSecret}
	for range cfg.buckets {
		e.direct.buckets = append(e.direct.buckets, itgBucketName(t, "d"))
		e.proxy.buckets = append(e.proxy.buckets, itgBucketName(t, "p"))
	}

	ep := proxy.Endpoint{Host: up.domain, Port: up.port, Scheme: "http", PathStyle: cfg.pathStyle, PlainUploads: cfg.plainUploads}
	var buckets []proxy.Bucket
	for _, name := range e.proxy.buckets {
		buckets = append(buckets, proxy.Bucket{Name: name, Endpoint: ep, Anonymous: cfg.anonymous,
			Credentials: proxy.Credentials{AccessKeyID: up.key, SecretAccessKey: up.secret}})
	}
	routing := []proxy.Option{proxy.WithBuckets(buckets...)}
	if cfg.hooks {
		routing = itgHookRouting(buckets)
	}
	opts := append(routing,
		proxy.WithClientKeys(map[string]string{itgClientKey: itgClientSecret}),
		proxy.WithAuthorizer(func(_ context.Context, token, _ string) (bool, error) {
			return token == itgClientKey, nil
		}),
		proxy.WithTransport(up.tr),
	)
	if cfg.mount == itgMountPathPrefix {
		opts = append(opts, proxy.WithPathPrefix(itgMountPath))
	}
	opts = append(opts, cfg.opts...)
	p, err := proxy.New(opts...)
	require.NoError(t, err)

	var h http.Handler
	base := ""
	switch cfg.mount {
	case itgMountRoot:
		h = p
	case itgMountStripPrefix:
		mux := http.NewServeMux()
		mux.Handle(itgMountPath+"/", http.StripPrefix(itgMountPath, p))
		h, base = mux, itgMountPath
	case itgMountPathPrefix:
		mux := http.NewServeMux()
		mux.Handle(itgMountPath+"/", p)
		h, base = mux, itgMountPath
	}
	var tlsConf *tls.Config
	var srv *httptest.Server
	if cfg.tls {
		srv = httptest.NewTLSServer(h)
		tlsConf = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		front := httptest.NewTLSServer(s3servers.PassThrough(up.addr))
		t.Cleanup(front.Close)
		e.direct.base = front.URL
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		srv.Close()
		_ = p.Close()
	})
	e.proxy.base = srv.URL + base

	for _, s := range e.sides() {
		s.c, s.hc = itgS3Client(t, s.base, s.key, s.secret, tlsConf)
	}
	return e
}

// itgUpstream is the S3 server behind the proxy and the direct side's
// client: where it listens, its keys and its virtual-host domain.
type itgUpstream struct {
	addr, url, domain, key, secret string
	port                           int
	tr                             *http.Transport
}

// itgHookRouting routes buckets with hooks instead of as static buckets, and
// lists them with WithBucketList.
func itgHookRouting(buckets []proxy.Bucket) []proxy.Option {
	byName := map[string]proxy.Bucket{}
	var listed []proxy.ListedBucket
	for _, b := range buckets {
		byName[b.Name] = b
		listed = append(listed, proxy.ListedBucket{Name: b.Name, Region: itgRegion})
	}
	return []proxy.Option{
		proxy.WithEndpoint(func(_ context.Context, name string) (proxy.Endpoint, error) {
			if b, ok := byName[name]; ok {
				return b.Endpoint, nil
			}
			return proxy.Endpoint{}, proxy.ErrNoSuchBucket
		}),
		proxy.WithCredentials(func(_ context.Context, name string) (proxy.Credentials, error) {
			if b, ok := byName[name]; ok {
				return b.Credentials, nil
			}
			return proxy.Credentials{}, proxy.ErrNoSuchBucket
		}),
		proxy.WithBucketList(func(context.Context, string) ([]proxy.ListedBucket, error) { return listed, nil }),
	}
}

// itgS3Client returns an aws-sdk-go-v2 S3 client for a path-style endpoint,
// with retries off so that no failure is hidden.
func itgS3Client(t testing.TB, endpoint, key, secret string, tlsConf *tls.Config) (*s3.Client, *http.Client) {
	tr := &http.Transport{ // as the SDK's default transport, whose idle connections could not be closed
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: awshttp.DefaultHTTPTransportExpectContinueTimeout,
		TLSClientConfig:       tlsConf,
	}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	return s3.New(s3.Options{
		Region:       itgRegion,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:   hc,
		Retryer:      aws.NopRetryer{},
		// What config.LoadDefaultConfig gives every SDK client since 2025:
		// CRC32 checksums on uploads (over https in an aws-chunked trailer).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,

		DisableLogOutputChecksumValidationSkipped: true,
	}), hc
}

var itgBucketSeq atomic.Int64

// itgBucketName returns a unique, valid bucket name derived from the test name,
// of the same length on both sides (answers that name the bucket have the
// same Content-Length).
func itgBucketName(t testing.TB, side string) string {
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(strings.TrimPrefix(t.Name(), "Test")) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	return fmt.Sprintf("osp-%s-%s-%05d", side, name, itgBucketSeq.Add(1))
}

// both runs one step on each side and requires the same outcome. When want is
// not empty and versitygw itself does not give it, that is logged (it is the
// server's behaviour, not the proxy's) and the proxy must then behave the same.
func (e *itgEnv) both(t *testing.T, step, want string, fn func(s *itgSide) string) string {
	t.Helper()
	d := fn(e.direct)
	p := fn(e.proxy)
	if e.judge != nil {
		e.judge(t, step, want, d, p)
		return p
	}
	if want != "" && d != want {
		t.Logf("versitygw itself cannot %s: got %q, want %q (proxy: %q)", step, d, want, p)
	}
	if d != p {
		t.Errorf("%s: direct %q, proxy %q", step, d, p)
	}
	return p
}

// itgSign signs a request by hand with the side's keys, for requests the SDK
// does not make or whose answer it does not show.
func itgSign(ctx context.Context, s *itgSide, req *http.Request, payloadHash string) error {
	return itgSignAt(ctx, s, req, payloadHash, time.Now())
}

// itgSignAt is itgSign at a given time.
func itgSignAt(ctx context.Context, s *itgSide, req *http.Request, payloadHash string, at time.Time) error {
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret}
	return signer.SignHTTP(ctx, creds, req, payloadHash, "s3", itgRegion, at)
}

// createBuckets creates every bucket of both sides.
func (e *itgEnv) createBuckets(t *testing.T) {
	t.Helper()
	for i := range e.direct.buckets {
		out := e.both(t, fmt.Sprintf("create bucket %d", i), "ok", func(s *itgSide) string {
			_, err := s.c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &s.buckets[i]})
			return itgOutcome(err)
		})
		if out != "ok" {
			t.FailNow()
		}
	}
}

// deleteBuckets deletes every bucket of both sides and checks they are gone.
func (e *itgEnv) deleteBuckets(t *testing.T) {
	t.Helper()
	for i := range e.direct.buckets {
		e.both(t, fmt.Sprintf("delete bucket %d", i), "ok", func(s *itgSide) string {
			_, err := s.c.DeleteBucket(t.Context(), &s3.DeleteBucketInput{Bucket: &s.buckets[i]})
			return itgOutcome(err)
		})
		e.both(t, fmt.Sprintf("head deleted bucket %d", i), "ERR 404 NotFound", func(s *itgSide) string {
			_, err := s.c.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: &s.buckets[i]})
			return itgOutcome(err)
		})
	}
}

// itgOutcome reduces an error to "ok" or "ERR <status> <code>".
func itgOutcome(err error) string {
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
		return fmt.Sprintf("ERR %d %s", status, ae.ErrorCode())
	}
	if status != 0 {
		return fmt.Sprintf("ERR %d", status)
	}
	return "ERR " + err.Error()
}

// itgBodyOutcome describes a body read against the bytes expected.
func itgBodyOutcome(got, want []byte) string {
	if bytes.Equal(got, want) {
		return fmt.Sprintf("ok %d bytes, equal", len(got))
	}
	return fmt.Sprintf("ok %d bytes, DIFFERENT from the %d expected", len(got), len(want))
}

func itgGet(ctx context.Context, c *s3.Client, bucket, key, rng string, want []byte) string {
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return itgOutcome(err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		return "ERR reading body: " + err.Error()
	}
	s := itgBodyOutcome(got, want)
	if rng != "" {
		s += ", Content-Range " + aws.ToString(out.ContentRange)
	}
	return s
}

func itgHead(ctx context.Context, c *s3.Client, bucket, key string) string {
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return itgOutcome(err)
	}
	return fmt.Sprintf("ok size %d, type %q, meta %s", aws.ToInt64(out.ContentLength), aws.ToString(out.ContentType), itgMeta(out.Metadata))
}

func itgMeta(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// itgListing is the result of listing a bucket to the end.
type itgListing struct {
	keys     []string
	prefixes []string
	pages    []int // keys+prefixes per page
	err      error
}

func (l itgListing) String() string {
	if l.err != nil {
		return itgOutcome(l.err)
	}
	return fmt.Sprintf("ok keys %q prefixes %q", l.keys, l.prefixes)
}

// itgList lists with ListObjectsV2 to the end, following continuation tokens.
func itgList(ctx context.Context, c *s3.Client, bucket, prefix, delimiter string, maxKeys int32) itgListing {
	var l itgListing
	in := &s3.ListObjectsV2Input{Bucket: &bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if delimiter != "" {
		in.Delimiter = &delimiter
	}
	if maxKeys > 0 {
		in.MaxKeys = &maxKeys
	}
	for page := 0; page < 100; page++ {
		out, err := c.ListObjectsV2(ctx, in)
		if err != nil {
			l.err = err
			return l
		}
		for _, o := range out.Contents {
			l.keys = append(l.keys, aws.ToString(o.Key))
		}
		for _, p := range out.CommonPrefixes {
			l.prefixes = append(l.prefixes, aws.ToString(p.Prefix))
		}
		l.pages = append(l.pages, len(out.Contents)+len(out.CommonPrefixes))
		if !aws.ToBool(out.IsTruncated) {
			return l
		}
		if out.NextContinuationToken == nil {
			l.err = errors.New("truncated listing without a continuation token")
			return l
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	l.err = errors.New("listing did not end after 100 pages")
	return l
}

func itgPut(ctx context.Context, c *s3.Client, bucket, key string, body []byte, meta map[string]string) string {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String("application/octet-stream"), Metadata: meta,
	})
	return itgOutcome(err)
}

func itgDelete(ctx context.Context, c *s3.Client, bucket, key string) string {
	_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	return itgOutcome(err)
}

// itgCopySource is the x-amz-copy-source value for bucket/key: every byte of the
// key but the unreserved characters and '/' percent-encoded.
func itgCopySource(bucket, key string) string {
	var b strings.Builder
	b.WriteString(bucket + "/")
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func itgCopy(ctx context.Context, c *s3.Client, srcBucket, srcKey, dstBucket, dstKey string) string {
	_, err := c.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &dstBucket, Key: &dstKey, CopySource: aws.String(itgCopySource(srcBucket, srcKey)),
	})
	return itgOutcome(err)
}

// itgRandom returns n reproducible pseudo-random bytes.
func itgRandom(n int, seed uint64) []byte { return testkit.Random(n, seed) }

func itgHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}
