package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/osproxy/proxy/internal/sigv4"
)

// Credentials are what the proxy uses to reach one bucket upstream: an HMAC
// key pair, with which it signs requests with SigV4; a provider of HMAC keys
// that rotate; or an IBM Cloud IAM API key, which it exchanges for a bearer
// token. Exactly one of the three.
type Credentials struct {
	// AccessKeyID, SecretAccessKey and SessionToken are HMAC keys: the proxy
	// signs upstream requests with SigV4.
	AccessKeyID, SecretAccessKey, SessionToken string
	// Provider hands out HMAC keys that rotate (the AWS default chain, an
	// assumed role, web identity, credential_process… from aws-sdk-go-v2's
	// config and credentials packages). The proxy retrieves them once for a
	// burst of requests, on a context bounded by WithHookTimeout, keeps them
	// until shortly before they expire (min(30 s, a tenth of their
	// lifetime)), refreshes them in the background ahead of that
	// (WithIAMRefreshAhead), never signs with keys past their expiry, and
	// backs off after a failure (503 ServiceUnavailable meanwhile). Keys that
	// cannot expire are retrieved again every WithHookCacheTTL. Its state is
	// kept per provider value, so it must be comparable (a pointer such as
	// *aws.CredentialsCache, not an aws.CredentialsProviderFunc) and the same
	// value each time for the same keys.
	Provider aws.CredentialsProvider
	// APIKey is an IBM Cloud IAM API key: the proxy sends a bearer token
	// instead of a signature.
	APIKey string
	// ServiceInstanceID is IBM's ibm-service-instance-id, sent where IBM needs
	// it (CreateBucket).
	ServiceInstanceID string
}

// Endpoint is where one bucket lives upstream.
type Endpoint struct {
	// Host is the upstream S3 host without the bucket, e.g.
	// "s3.eu-de.cloud-object-storage.appdomain.cloud".
	Host string
	// Port is the TCP port; 0 means the scheme's default.
	Port int
	// Scheme is "https" (the default when empty) or "http".
	Scheme string
	// Region is the SigV4 region for HMAC signing; "" means "us-east-1".
	Region string
	// PathStyle sends path-style requests upstream (for servers without
	// virtual hosting); by default requests are virtual-hosted.
	PathStyle bool
	// PlainUploads sends upload bodies upstream decoded (for servers that do
	// not decode aws-chunked, which would store its framing as data): an
	// aws-chunked body, which current SDKs send by default, goes as a plain
	// body of its decoded length, signed UNSIGNED-PAYLOAD (or with the
	// bearer token), after the proxy verified its chunk signatures and its
	// trailer's checksum; a trailer the proxy cannot verify (the XXHASH ones)
	// is refused. The upstream then does not store the trailer's checksum.
	// By default a body goes as the client framed it.
	PlainUploads bool
}

// Bucket is a static bucket entry: its name, where it lives and how to reach it.
type Bucket struct {
	Name        string
	Endpoint    Endpoint
	Credentials Credentials
	// Anonymous lets requests without any signature through to this bucket,
	// forwarded WITHOUT the bucket's credentials: the upstream's own public
	// access rules (bucket policy, ACL) decide. Off by default.
	Anonymous bool
}

// CredentialsFunc returns the upstream credentials of a bucket. It returns (or
// wraps) ErrNoSuchBucket for an unknown bucket. It must be safe for concurrent use.
type CredentialsFunc func(ctx context.Context, bucket string) (Credentials, error)

// EndpointFunc returns the upstream endpoint of a bucket. It returns (or wraps)
// ErrNoSuchBucket for an unknown bucket. It must be safe for concurrent use.
type EndpointFunc func(ctx context.Context, bucket string) (Endpoint, error)

// ListedBucket is a bucket as ListBuckets (GET /) shows it.
type ListedBucket struct {
	Name         string
	Region       string    // shown as BucketRegion and matched by the bucket-region parameter; "" for none
	CreationDate time.Time // zero: the proxy's start
}

// BucketListFunc returns the buckets the hooks route (WithEndpoint,
// WithCredentials) for ListBuckets, in any order; the client's token is given
// so that a large deployment can return only the buckets of that client. The
// proxy adds the static buckets, keeps those the authorizer allows the client,
// and answers S3's prefix, bucket-region, max-buckets and continuation-token.
// It must be safe for concurrent use.
type BucketListFunc func(ctx context.Context, token string) ([]ListedBucket, error)

// AnonymousFunc reports whether requests without any signature may go to a
// hook-routed bucket, forwarded WITHOUT the bucket's credentials so that the
// upstream's own public access rules decide. It must be safe for concurrent
// use.
type AnonymousFunc func(ctx context.Context, bucket string) (bool, error)

// AuthorizeFunc reports whether the client identified by token may use bucket.
// The token is the client's access key id: verified when client secrets are
// configured (WithClientSecrets), taken on trust otherwise. It must be safe for
// concurrent use.
type AuthorizeFunc func(ctx context.Context, token, bucket string) (bool, error)

// SecretFunc returns the secret access key of a client's access key id, or
// (a wrapped) ErrInvalidAccessKeyID when the id is unknown. It must be safe for
// concurrent use.
type SecretFunc func(ctx context.Context, accessKeyID string) (secretAccessKey string, err error)

// Option configures a Proxy. Options are created by the With functions of this
// package.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults of the options.
const (
	DefaultAuthCacheTTL          = 5 * time.Minute
	DefaultAuthCacheCapacity     = 100_000
	DefaultHookCacheTTL          = time.Minute
	DefaultHookCacheCapacity     = 100_000
	DefaultHookTimeout           = 30 * time.Second
	DefaultHookConcurrency       = 256
	DefaultIAMEndpoint           = "https://iam.cloud.ibm.com/identity/token"
	DefaultIAMTimeout            = 10 * time.Second
	DefaultIAMRefreshAhead       = 0.2
	DefaultMaxClockSkew          = 15 * time.Minute
	DefaultResponseHeaderTimeout = 2 * time.Minute
)

type config struct {
	observer        Observer
	buckets         map[string]Bucket
	credentials     CredentialsFunc
	endpoint        EndpointFunc
	authorize       AuthorizeFunc
	bucketList      BucketListFunc
	anonymous       AnonymousFunc
	requestAuth     RequestAuthorizeFunc
	useLimit        int
	useCounter      UseCounter
	trusted         []netip.Prefix
	secrets         SecretFunc
	clientKeys      map[string]string // static client secrets: looked up, not a hook
	authCacheTTL    time.Duration
	authCacheCap    int
	hookCacheTTL    time.Duration
	hookCacheCap    int
	hookTimeout     time.Duration
	hookConcurrency int
	iamEndpoint     string
	iamTimeout      time.Duration
	iamRefreshAhead float64
	transport       http.RoundTripper
	headerTimeout   time.Duration
	logger          *slog.Logger
	now             func() time.Time
	vhostDomains    []string
	pathPrefix      string
	maxSkew         time.Duration
	regions         []string // the regions signatures may be scoped to; none: any
	sigV2           bool     // verify AWS Signature Version 2 (WithSigV2)
	cors            []CORSRule
	upstreamHashes  bool // HMAC upstreams check hex payload hashes themselves
	errs            []error
}

func defaultConfig() *config {
	return &config{
		buckets:         map[string]Bucket{},
		authCacheTTL:    DefaultAuthCacheTTL,
		authCacheCap:    DefaultAuthCacheCapacity,
		hookCacheTTL:    DefaultHookCacheTTL,
		hookCacheCap:    DefaultHookCacheCapacity,
		hookTimeout:     DefaultHookTimeout,
		hookConcurrency: DefaultHookConcurrency,
		iamEndpoint:     DefaultIAMEndpoint,
		iamTimeout:      DefaultIAMTimeout,
		iamRefreshAhead: DefaultIAMRefreshAhead,
		headerTimeout:   DefaultResponseHeaderTimeout,
		logger:          slog.New(slog.DiscardHandler),
		now:             time.Now,
		maxSkew:         DefaultMaxClockSkew,
	}
}

// WithBuckets adds static buckets. They are consulted before the hooks, are
// never cached (they already are in memory) and are what ListBuckets (GET /)
// answers with. Names must be valid S3 bucket names and unique. By default
// there are none: every bucket comes from WithEndpoint and WithCredentials.
func WithBuckets(b ...Bucket) Option {
	return optionFunc(func(c *config) {
		for _, bk := range b {
			if _, dup := c.buckets[bk.Name]; dup {
				c.errs = append(c.errs, fmt.Errorf("bucket %q: listed twice", bk.Name))
				continue
			}
			c.buckets[bk.Name] = bk
		}
	})
}

// WithCredentials sets the hook that returns a bucket's upstream credentials
// when the bucket is not static. It goes with WithEndpoint. By default only
// static buckets are served.
func WithCredentials(f CredentialsFunc) Option {
	return optionFunc(func(c *config) { c.credentials = f })
}

// WithEndpoint sets the hook that returns a bucket's upstream endpoint when the
// bucket is not static. It goes with WithCredentials. By default only static
// buckets (WithBuckets) are served.
func WithEndpoint(f EndpointFunc) Option {
	return optionFunc(func(c *config) { c.endpoint = f })
}

// WithBucketList sets the hook that lists the buckets the hooks route, for
// ListBuckets (GET /, aws s3 ls). By default ListBuckets shows the static
// buckets (WithBuckets) only.
func WithBucketList(f BucketListFunc) Option {
	return optionFunc(func(c *config) { c.bucketList = f })
}

// WithRequestAuthorizer sets a hook that decides each request from its S3
// action (as AWS names them in policies), bucket, key, copy source, listing
// prefix, client address, presigning and token, beside the token + bucket
// authorizer (WithAuthorizer), which keeps working and is asked first. Its
// Decision says for how long and for what scope the answer may be reused: a
// per-bucket rule (ScopeBucket) costs one call per TTL, a per-key rule
// (ScopeKey) one per key; answers are cached like the authorizer's
// (WithAuthCacheCapacity) and concurrent identical calls collapse into one. A
// copy is asked about s3:GetObject on its source, then its own action;
// DeleteObjects about s3:DeleteObject on every key it names (its body, at most
// 1,000 keys, is read first), and one denied key refuses the whole request
// with 403 AccessDenied. Anonymous requests (WithAnonymous) are not asked. By
// default there is none.
func WithRequestAuthorizer(f RequestAuthorizeFunc) Option {
	return optionFunc(func(c *config) { c.requestAuth = f })
}

// WithPresignedUseLimit lets each presigned URL (SigV4, or SigV2 with
// WithSigV2) be used at most n times until it expires. A use is a request
// whose presigned signature verified and that is authorized, whatever the
// upstream answers; it needs verified signatures (New refuses it in token
// mode). The counts live in c: nil is NewMemoryUseCounter(DefaultUseCounterCapacity),
// this process only (on the proxy's clock, WithClock); give every replica the
// same shared counter to enforce the limit across them. A use past the limit is
// 403 AccessDenied; a counter that fails fails the request closed, 503
// ServiceUnavailable, logged at Warn. By default presigned URLs work until they
// expire.
func WithPresignedUseLimit(n int, c UseCounter) Option {
	return optionFunc(func(cfg *config) {
		if c == nil {
			c = NewMemoryUseCounter(DefaultUseCounterCapacity)
		}
		cfg.useLimit, cfg.useCounter = n, c
	})
}

// WithTrustedProxies names the proxies (CIDR prefixes, e.g. "10.0.0.0/8")
// whose X-Forwarded-For the proxy believes for AccessRequest.ClientIP: the
// client is the last address of X-Forwarded-For that is not a trusted proxy.
// By default none: the client is the connection's peer.
func WithTrustedProxies(cidrs ...string) Option {
	return optionFunc(func(c *config) {
		for _, s := range cidrs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				c.errs = append(c.errs, fmt.Errorf("trusted proxy %q: %w", s, err))
				continue
			}
			c.trusted = append(c.trusted, p)
		}
	})
}

// WithAnonymous sets the hook that says which hook-routed buckets take
// anonymous requests (no signature at all); static buckets say so with
// Bucket.Anonymous. Such a request is forwarded without the bucket's
// credentials, so the upstream's own public access rules decide and nothing
// is escalated; it cannot copy, and its body cannot be signed aws-chunked.
// The answers are cached like the authorizer's (WithAuthCacheTTL). By
// default anonymous requests are refused: 403 AccessDenied "Anonymous users
// cannot invoke this API. Please authenticate."
func WithAnonymous(f AnonymousFunc) Option {
	return optionFunc(func(c *config) { c.anonymous = f })
}

// WithAuthorizer sets the hook that decides whether a client token may use a
// bucket. Its answers (true and false) are cached for WithAuthCacheTTL. By
// default, with WithClientSecrets set, every verified client may use every
// bucket; without either, New refuses the configuration.
func WithAuthorizer(f AuthorizeFunc) Option {
	return optionFunc(func(c *config) { c.authorize = f })
}

// WithClientSecrets makes the proxy verify every client request's SigV4
// signature with the secret f returns for the request's access key id; the
// verified access key id is then the token given to the authorizer. By
// default (token mode) the access key id is passed to the authorizer
// unverified: see the README's security model.
func WithClientSecrets(f SecretFunc) Option {
	return optionFunc(func(c *config) { c.secrets, c.clientKeys = f, nil })
}

// WithClientKeys is WithClientSecrets for a fixed map of access key id to
// secret access key. The map is copied. By default there are no client keys
// (token mode, unless WithClientSecrets is given).
func WithClientKeys(keys map[string]string) Option {
	m := make(map[string]string, len(keys))
	for k, v := range keys {
		m[k] = v
	}
	return optionFunc(func(c *config) { c.secrets, c.clientKeys = nil, m })
}

// WithAuthCacheTTL sets how long an authorizer answer is cached. By default,
// DefaultAuthCacheTTL (5 minutes). It must be positive.
func WithAuthCacheTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.authCacheTTL = d })
}

// WithAuthCacheCapacity bounds the number of cached authorizer answers. By
// default, DefaultAuthCacheCapacity (100,000). It must be positive. The bucket
// cache has its own bound, WithHookCacheCapacity.
func WithAuthCacheCapacity(n int) Option {
	return optionFunc(func(c *config) { c.authCacheCap = n })
}

// WithHookCacheTTL sets how long the answers of the credentials and endpoint
// hooks are cached per bucket. By default, DefaultHookCacheTTL (1 minute). It
// must be positive.
func WithHookCacheTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.hookCacheTTL = d })
}

// WithHookCacheCapacity bounds the number of buckets whose endpoint and
// credentials hook answers are cached. By default, DefaultHookCacheCapacity
// (100,000). It must be positive.
func WithHookCacheCapacity(n int) Option {
	return optionFunc(func(c *config) { c.hookCacheCap = n })
}

// WithHookTimeout bounds each call of a hook (client secrets, authorizer,
// endpoint, credentials): the hook's context ends after d, and a hook that
// returns the context's error is answered with 503 ServiceUnavailable. A
// cached hook runs detached from the request that started it, so one client
// giving up does not fail the others waiting for the same answer; each client
// still stops waiting when its own request ends. A hook that panics is
// answered with 500 InternalError and nothing is forwarded. By default,
// DefaultHookTimeout (30 seconds). It must be positive.
func WithHookTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.hookTimeout = d })
}

// WithHookConcurrency bounds the calls in flight of each hook: client
// secrets, authorizer, and the endpoint and credentials hooks of one bucket
// (called one after the other, they count once). A request that needs one
// more call is refused at once with 503 SlowDown, which S3 clients retry with
// backoff: a burst of requests for unknown buckets or tokens cannot pile up
// calls. Cached answers and calls already running that a request joins do not
// count. By default, DefaultHookConcurrency (256 per hook). It must be
// positive.
func WithHookConcurrency(n int) Option {
	return optionFunc(func(c *config) { c.hookConcurrency = n })
}

// WithIAMEndpoint sets the IBM Cloud IAM token endpoint used for buckets with an
// APIKey. By default, DefaultIAMEndpoint.
func WithIAMEndpoint(u string) Option {
	return optionFunc(func(c *config) { c.iamEndpoint = u })
}

// WithIAMTimeout bounds each IAM token exchange. By default, DefaultIAMTimeout
// (10 seconds).
func WithIAMTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.iamTimeout = d })
}

// WithIAMRefreshAhead sets the fraction of a token's lifetime, counted back from
// its expiry, during which one background refresh runs while the current token
// stays in use. By default, DefaultIAMRefreshAhead (0.2: the last fifth). It
// must be in (0, 1).
func WithIAMRefreshAhead(fraction float64) Option {
	return optionFunc(func(c *config) { c.iamRefreshAhead = fraction })
}

// WithTransport sets the transport for upstream requests (and IAM). By default a
// transport like http.DefaultTransport with bounded dial, TLS handshake and
// response header timeouts, compression off and more idle connections per host.
// A custom transport brings its own timeouts.
func WithTransport(rt http.RoundTripper) Option {
	return optionFunc(func(c *config) { c.transport = rt })
}

// WithResponseHeaderTimeout bounds the wait for an upstream's response headers
// after the request was sent; past it the client gets 504 GatewayTimeout. By
// default, DefaultResponseHeaderTimeout (2 minutes). It applies to the default
// transport only.
func WithResponseHeaderTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.headerTimeout = d })
}

// WithLogger sets the structured logger. By default nothing is logged. Secrets,
// tokens and Authorization headers are never logged.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithClock replaces time.Now, for tests: signing times, clock skew, token and
// cache expiry. By default, time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithVirtualHostDomains makes the proxy also accept virtual-hosted requests,
// <bucket>.<domain>, for each domain given (e.g. "s3.example.com"). Path-style
// requests are always accepted. By default there are none: path style only.
func WithVirtualHostDomains(domains ...string) Option {
	return optionFunc(func(c *config) {
		for _, d := range domains {
			c.vhostDomains = append(c.vhostDomains, strings.ToLower(strings.TrimSuffix(d, ".")))
		}
	})
}

// WithPathPrefix tells the proxy that it is mounted under prefix (e.g. "/s3")
// by a router that does not strip it; the prefix is removed before the bucket
// is read from the path. Not needed under http.StripPrefix. By default the
// proxy serves from "/".
func WithPathPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.pathPrefix = strings.TrimSuffix(prefix, "/") })
}

// WithObserver sets the hooks that observe requests, caches and IAM
// exchanges, for metrics. By default nothing is observed and nothing is
// measured.
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) { c.observer = o })
}

// WithMaxClockSkew sets how far a signed request's date may be from the
// proxy's clock. By default, DefaultMaxClockSkew (15 minutes), as S3.
func WithMaxClockSkew(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxSkew = d })
}

// WithCORS gives the proxy a CORS policy of its own, for upstreams that have
// none or should not be consulted: preflights (OPTIONS) for the buckets the
// proxy routes are answered from rules (the first that allows the origin, the
// method and every requested header; else 403 AccessForbidden, as S3), and
// every cross-origin answer (the upstream's, or the proxy's own error) carries
// the matching Access-Control-Allow-Origin and Access-Control-Expose-Headers,
// the upstream's own Access-Control-* headers dropped. By default preflights
// for routed buckets are forwarded to the upstream without credentials and
// its answer (from the bucket's own CORS configuration) is relayed, as are its
// Access-Control-* headers on actual requests.
func WithCORS(rules ...CORSRule) Option {
	return optionFunc(func(c *config) { c.cors = append(c.cors, rules...) })
}

// WithSigV2 makes the proxy verify AWS Signature Version 2 as well, in the
// Authorization header ("AWS <key>:<signature>") and in presigned URLs
// (AWSAccessKeyId, Expires, Signature), with the same client secrets and S3's
// SigV2 string to sign (Content-MD5, Content-Type, date, every x-amz-* header,
// the path and its sub-resources). It is what aws-cli v1's `s3 presign`,
// s3cmd (signurl, signature_v2), boto2 and old Hadoop connectors send. The
// request then goes upstream signed with SigV4 or a bearer token as any other.
// SigV2 signs no body hash (a body is only as safe as its Content-MD5) and
// HMAC-SHA1; a SigV2 presigned URL may expire at most seven days ahead. By
// default SigV2 is refused with S3's InvalidRequest "The authorization
// mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
func WithSigV2(on bool) Option {
	return optionFunc(func(c *config) { c.sigV2 = on })
}

// WithRegions names the regions the proxy answers for: a signature scoped to
// another region is refused with S3's AuthorizationHeaderMalformed (or, for a
// presigned URL, AuthorizationQueryParametersError) "the region 'x' is wrong;
// expecting 'y'", whose <Region> SDKs use to sign again for the right one. The
// first region given is the one named. By default every region is accepted:
// one endpoint in front of buckets in many regions.
func WithRegions(regions ...string) Option {
	return optionFunc(func(c *config) { c.regions = append(c.regions, regions...) })
}

// WithUpstreamPayloadCheck leaves the check of a hex SHA-256 payload
// (x-amz-content-sha256) to upstreams reached with HMAC keys. The proxy still
// verifies the client's signature, which covers the hash; it signs the
// upstream request with that same hash and streams the body without hashing
// it, and the upstream refuses a body that does not match it
// (XAmzContentSHA256Mismatch) and stores nothing. Turn it on only for
// upstreams that check the hash, as AWS S3, IBM COS with HMAC keys, MinIO and
// versitygw do: it saves the proxy a SHA-256 of every uploaded byte, which on
// one core costs more than the rest of the transfer. Bearer (IAM) upstreams
// and aws-chunked bodies are verified by the proxy either way.
//
// By default the proxy hashes every hex-signed body itself and withholds its
// last byte until the hash matches.
func WithUpstreamPayloadCheck(on bool) Option {
	return optionFunc(func(c *config) { c.upstreamHashes = on })
}

func (c *config) validate() error {
	errs := append([]error(nil), c.errs...)
	for name, b := range c.buckets {
		if err := validateBucket(b); err != nil {
			errs = append(errs, fmt.Errorf("bucket %q: %w", name, err))
		}
	}
	if (c.credentials == nil) != (c.endpoint == nil) {
		errs = append(errs, errors.New("WithCredentials and WithEndpoint go together"))
	}
	if len(c.buckets) == 0 && c.endpoint == nil {
		errs = append(errs, errors.New("no bucket can ever be routed: give WithBuckets or WithEndpoint and WithCredentials"))
	}
	if c.authorize == nil && !c.verifying() {
		errs = append(errs, errors.New("no client authentication: give WithClientSecrets, WithAuthorizer or both (the proxy is never open)"))
	}
	if c.authCacheTTL <= 0 || c.hookCacheTTL <= 0 || c.hookTimeout <= 0 || c.iamTimeout <= 0 || c.maxSkew <= 0 || c.headerTimeout <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if c.authCacheCap <= 0 || c.hookCacheCap <= 0 {
		errs = append(errs, errors.New("cache capacities must be positive"))
	}
	if c.hookConcurrency <= 0 {
		errs = append(errs, errors.New("hook concurrency must be positive"))
	}
	if c.iamRefreshAhead <= 0 || c.iamRefreshAhead >= 1 {
		errs = append(errs, errors.New("IAM refresh-ahead fraction must be in (0, 1)"))
	}
	if u, err := url.Parse(c.iamEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("IAM endpoint %q is not an http(s) URL", c.iamEndpoint))
	}
	for _, d := range c.vhostDomains {
		if d == "" || strings.ContainsAny(d, "/:@ ") {
			errs = append(errs, fmt.Errorf("virtual host domain %q is not a host name", d))
		}
	}
	if c.useCounter != nil && c.useLimit <= 0 {
		errs = append(errs, errors.New("a presigned-URL use limit must be positive"))
	}
	if c.useCounter != nil && !c.verifying() {
		// An unverified signature is anything a client writes: a count
		// keyed by it is no limit.
		errs = append(errs, errors.New("a presigned-URL use limit needs verified signatures (WithClientSecrets or WithClientKeys), not token mode"))
	}
	if err := validateCORS(c.cors); err != nil {
		errs = append(errs, err)
	}
	for _, r := range c.regions {
		if !sigv4.ValidScopePart(r, sigv4.MaxRegion, sigv4.IsRegionByte) {
			errs = append(errs, fmt.Errorf("region %q is not a region name", r))
		}
	}
	if c.pathPrefix != "" && !strings.HasPrefix(c.pathPrefix, "/") {
		errs = append(errs, fmt.Errorf("path prefix %q must start with /", c.pathPrefix))
	}
	return errors.Join(errs...)
}

// verifying reports whether client signatures are verified (WithClientSecrets
// or WithClientKeys) rather than taken on trust (token mode).
func (c *config) verifying() bool { return c.secrets != nil || c.clientKeys != nil }

func validateBucket(b Bucket) error {
	if !validBucketName(b.Name) {
		return errors.New("not a valid S3 bucket name")
	}
	if err := validateEndpoint(b.Endpoint); err != nil {
		return err
	}
	return validateCredentials(b.Credentials)
}

func validateEndpoint(e Endpoint) error {
	if e.Host == "" || strings.ContainsAny(e.Host, "/?#@ ") {
		return fmt.Errorf("endpoint host %q is not a host name", e.Host)
	}
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("endpoint port %d out of range", e.Port)
	}
	if e.Scheme != "" && e.Scheme != "https" && e.Scheme != "http" {
		return fmt.Errorf("endpoint scheme %q is not http or https", e.Scheme)
	}
	return nil
}

func validateCredentials(c Credentials) error {
	hmac := c.AccessKeyID != "" || c.SecretAccessKey != ""
	kinds := 0
	for _, set := range []bool{hmac, c.APIKey != "", c.Provider != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return errors.New("credentials hold more than one of HMAC keys, a provider and an API key")
	case kinds == 0:
		return errors.New("credentials hold neither HMAC keys, a provider nor an API key")
	case hmac && (c.AccessKeyID == "" || c.SecretAccessKey == ""):
		return errors.New("HMAC credentials need both an access key id and a secret")
	case c.Provider != nil && !reflect.ValueOf(c.Provider).Comparable():
		return fmt.Errorf("credentials provider of type %T cannot be compared: give a pointer (aws.NewCredentialsCache wraps any provider in one)", c.Provider)
	}
	return nil
}
