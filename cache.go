package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jellydator/ttlcache/v3"
	"github.com/osproxy/proxy/internal/sigv4"
)

// target is a resolved bucket: where it lives and how to reach it.
type target struct {
	bucket       string
	endpoint     Endpoint
	creds        Credentials
	keys         upstreamKeys // static HMAC keys (creds), with their signer
	scheme, host string       // of the upstream URLs (see upstreamHost)
}

func newTarget(bucket string, e Endpoint, c Credentials, signers *upstreamSigners) *target {
	t := &target{bucket: bucket, endpoint: e, creds: c}
	t.scheme, t.host = upstreamHost(e, bucket)
	if c.AccessKeyID != "" && c.Provider == nil {
		t.keys = signers.keys(aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken})
	}
	return t
}

func (t *target) region() string {
	if t.endpoint.Region == "" {
		return "us-east-1"
	}
	return t.endpoint.Region
}

// entry is a cached value with its expiry on the proxy's clock (WithClock); the
// ttlcache's own TTL, on the wall clock, only bounds memory.
type entry[V any] struct {
	value   V
	expires time.Time
}

// loadingCache is a bounded TTL cache whose misses are filled by one call of a
// hook however many callers miss at once with the same flight key F: a value
// holding everything the hook is given, so that requests that differ in
// anything it may decide on never share a call. Errors are not cached; each
// caller stops waiting when its own context ends, and a call whose callers
// have all gone is cancelled. At most gate's capacity of calls run at once.
type loadingCache[K, F comparable, V any] struct {
	cache   *ttlcache.Cache[K, entry[V]]
	gate    *hookGate
	ttl     time.Duration
	timeout time.Duration // of one call of a hook
	now     func() time.Time
	name    string
	observe func(cache string, hit bool) // nil: not observed
	// place says where and for how long an answer is kept; nil: under the
	// key it was loaded for, for ttl.
	place func(key K, v V) (K, time.Duration, bool)

	mu      sync.Mutex
	flights map[F]*flight[V] // the calls in flight, by flight key
}

// flight is one call of a hook and the callers waiting for it.
type flight[V any] struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int           // under the cache's mu
	done    chan struct{} // closed once v and err are set
	v       V
	err     error
}

func newLoadingCache[K, F comparable, V any](name string, ttl time.Duration, capacity int, cfg *config) *loadingCache[K, F, V] {
	c := ttlcache.New(
		ttlcache.WithTTL[K, entry[V]](ttl),
		ttlcache.WithCapacity[K, entry[V]](uint64(capacity)),
		ttlcache.WithDisableTouchOnHit[K, entry[V]](),
	)
	return &loadingCache[K, F, V]{
		cache: c, gate: newHookGate(cfg.hookConcurrency, cfg.observer.Step), ttl: ttl, timeout: cfg.hookTimeout,
		now: cfg.now, name: name, observe: cfg.observer.Cache, flights: map[F]*flight[V]{},
	}
}

// lookup returns the cached value of key if it has not expired.
func (c *loadingCache[K, F, V]) lookup(key K) (V, bool) {
	if it := c.cache.Get(key); it != nil {
		if e := it.Value(); c.now().Before(e.expires) {
			if c.observe != nil {
				c.observe(c.name, true)
			}
			return e.value, true
		}
	}
	if c.observe != nil {
		c.observe(c.name, false)
	}
	var zero V
	return zero, false
}

// load fills key with one call of load however many callers miss at once
// with an equal flight key fk. The call runs through callHook on a context
// detached from any one caller, so that one client giving up does not fail
// the others waiting on it; each caller stops waiting when its own context
// ends, and when the last one has, the call's context is cancelled and new
// callers start a call of their own. A new call beyond the gate's capacity is
// refused with 503 SlowDown at once.
func (c *loadingCache[K, F, V]) load(ctx context.Context, key K, fk F, load func(context.Context) (V, error)) (V, error) {
	var zero V
	c.mu.Lock()
	f := c.flights[fk]
	if f == nil {
		// A second look: a flight stores its answer before it leaves
		// flights, so one that ended since the caller's lookup left it here.
		if it := c.cache.Get(key); it != nil && c.now().Before(it.Value().expires) {
			c.mu.Unlock()
			return it.Value().value, nil
		}
		if !c.gate.enter() {
			c.mu.Unlock()
			return zero, c.gate.busy(c.name)
		}
		f = &flight[V]{done: make(chan struct{})}
		f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
		c.flights[fk] = f
		go c.run(fk, f, key, load)
	}
	f.waiters++
	c.mu.Unlock()
	select {
	case <-f.done:
		c.leave(fk, f)
		return f.v, f.err
	case <-ctx.Done():
		c.leave(fk, f)
		return zero, ctx.Err()
	}
}

// run is the call of a flight: the hook through callHook, its answer cached
// and handed to the flight's callers. Its gate slot is held until the hook
// has returned, so a hook that ignores its context still counts.
func (c *loadingCache[K, F, V]) run(fk F, f *flight[V], key K, load func(context.Context) (V, error)) {
	defer c.gate.leave()
	v, err := callHook(f.ctx, c.timeout, c.name, c.gate.step, load)
	if err == nil {
		k, ttl, keep := key, c.ttl, true
		if c.place != nil {
			k, ttl, keep = c.place(key, v)
		}
		if keep {
			c.cache.Set(k, entry[V]{value: v, expires: c.now().Add(ttl)}, ttl)
		}
	}
	c.mu.Lock()
	f.v, f.err = v, err
	c.forget(fk, f)
	c.mu.Unlock()
	close(f.done)
}

// leave takes a caller off a flight; the last one out cancels it (a no-op
// once the call has returned).
func (c *loadingCache[K, F, V]) leave(fk F, f *flight[V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.waiters--; f.waiters == 0 {
		c.forget(fk, f)
	}
}

// forget cancels f and, if it is still fk's flight, removes it, so that the
// next caller starts a new call. c.mu is held.
func (c *loadingCache[K, F, V]) forget(fk F, f *flight[V]) {
	f.cancel()
	if c.flights[fk] == f {
		delete(c.flights, fk)
	}
}

func (c *loadingCache[K, F, V]) sweep() { c.cache.DeleteExpired() }

// resolver finds a bucket's endpoint and credentials: static buckets first,
// then the (cached) hooks.
type resolver struct {
	static  map[string]*target
	hooks   *loadingCache[string, string, *target]
	cfg     *config
	signers *upstreamSigners
}

func newResolver(cfg *config, signers *upstreamSigners) *resolver {
	r := &resolver{static: make(map[string]*target, len(cfg.buckets)), cfg: cfg, signers: signers}
	for name, b := range cfg.buckets {
		r.static[name] = newTarget(name, b.Endpoint, b.Credentials, signers)
	}
	if cfg.endpoint != nil {
		r.hooks = newLoadingCache[string, string, *target]("bucket", cfg.hookCacheTTL, cfg.hookCacheCap, cfg)
	}
	return r
}

func (r *resolver) resolve(ctx context.Context, bucket string) (*target, error) {
	if t, ok := r.cached(bucket); ok {
		return t, nil
	}
	if r.hooks == nil {
		return nil, errNoSuchBucket
	}
	bucket = strings.Clone(bucket) // kept in the cache: not a slice of the request
	t, err := r.hooks.load(ctx, bucket, bucket, func(ctx context.Context) (*target, error) {
		return r.load(ctx, bucket)
	})
	if err != nil {
		return nil, hookError("bucket", err)
	}
	return t, nil
}

// cached returns bucket's target when the resolver has it without calling a
// hook: a static bucket, or a hook answer in the cache.
func (r *resolver) cached(bucket string) (*target, bool) {
	if t, ok := r.static[bucket]; ok {
		return t, true
	}
	if r.hooks == nil {
		return nil, false
	}
	return r.hooks.lookup(bucket)
}

func (r *resolver) load(ctx context.Context, bucket string) (*target, error) {
	ep, err := r.cfg.endpoint(ctx, bucket)
	if err != nil {
		return nil, err
	}
	if err := validateEndpoint(ep); err != nil {
		return nil, fmt.Errorf("endpoint hook for %q: %w", bucket, err)
	}
	creds, err := r.cfg.credentials(ctx, bucket)
	if err != nil {
		return nil, err
	}
	if err := validateCredentials(creds); err != nil {
		return nil, fmt.Errorf("credentials hook for %q: %w", bucket, err)
	}
	return newTarget(bucket, ep, creds, r.signers), nil
}

func (r *resolver) sweep() {
	if r.hooks != nil {
		r.hooks.sweep()
	}
}

// authorize decides whether who may use bucket: an anonymous request where
// the bucket takes them (Bucket.Anonymous, WithAnonymous), any other as the
// authorizer says (authorizeToken).
func (p *Proxy) authorize(ctx context.Context, who *identity, bucket string) error {
	if !who.anonymous {
		return p.authorizeToken(ctx, who.token, bucket)
	}
	if b, ok := p.cfg.buckets[bucket]; ok {
		if b.Anonymous {
			return nil
		}
		return errAnonymous
	}
	ok, err := p.auth.anonymousAllowed(ctx, bucket)
	if err != nil {
		return err
	}
	if !ok {
		return errAnonymous
	}
	return nil
}

// authorizeToken asks the (cached) authorizer whether token may use bucket.
// Without an authorizer every verified client may use every bucket.
func (p *Proxy) authorizeToken(ctx context.Context, token, bucket string) error {
	if p.cfg.authorize == nil {
		return nil
	}
	ok, err := p.auth.allowed(ctx, token, bucket)
	if err != nil {
		return err
	}
	if !ok {
		return errAccessDenied
	}
	return nil
}

// authorizeCopySource authorizes the source bucket of CopyObject and
// UploadPartCopy and makes sure it lives on the same endpoint with the same
// credentials as the destination dst: the upstream copies within one instance
// only.
func (p *Proxy) authorizeCopySource(ctx context.Context, who *identity, req s3Request, dst *target) error {
	if req.copyErr != nil {
		return req.copyErr
	}
	if req.copyBucket != "" && who.anonymous {
		return errAnonymousCopy
	}
	if req.copyBucket == "" || req.copyBucket == dst.bucket {
		return nil
	}
	if err := p.authorizeToken(ctx, who.token, req.copyBucket); err != nil {
		return err
	}
	src, err := p.resolver.resolve(ctx, req.copyBucket)
	if errors.Is(err, ErrNoSuchBucket) {
		return asS3Error(err).withField("BucketName", req.copyBucket) // the source's, not the request's
	}
	if err != nil {
		return err
	}
	if src.endpoint != dst.endpoint || src.creds != dst.creds {
		return errInvalidRequest.withMessage("The copy source bucket lives on another endpoint or instance than the destination; copy through a client instead.")
	}
	return nil
}

// authKey keys the authorization cache by a digest of the token (never the
// token itself) and the bucket.
type authKey struct {
	token  [sha256.Size]byte
	bucket string
}

// authCache caches the authorizer's answers, true and false alike, and those
// of the anonymous hook.
type authCache struct {
	f     AuthorizeFunc
	cache *loadingCache[authKey, authKey, bool]
	anonF AnonymousFunc
	anon  *loadingCache[string, string, bool]
}

func newAuthCache(cfg *config) *authCache {
	a := &authCache{f: cfg.authorize, anonF: cfg.anonymous}
	if cfg.authorize != nil {
		a.cache = newLoadingCache[authKey, authKey, bool]("authorization", cfg.authCacheTTL, cfg.authCacheCap, cfg)
	}
	if cfg.anonymous != nil {
		a.anon = newLoadingCache[string, string, bool]("anonymous", cfg.authCacheTTL, cfg.authCacheCap, cfg)
	}
	return a
}

// anonymousAllowed asks the (cached) anonymous hook whether bucket takes
// anonymous requests; without the hook none does.
func (a *authCache) anonymousAllowed(ctx context.Context, bucket string) (bool, error) {
	if a.anon == nil {
		return false, nil
	}
	if ok, hit := a.anon.lookup(bucket); hit {
		return ok, nil
	}
	bucket = strings.Clone(bucket) // kept in the cache: not a slice of the request
	ok, err := a.anon.load(ctx, bucket, bucket, func(ctx context.Context) (bool, error) {
		return a.anonF(ctx, bucket)
	})
	if err != nil {
		return false, hookError("anonymous", err)
	}
	return ok, nil
}

func (a *authCache) allowed(ctx context.Context, token, bucket string) (bool, error) {
	k := authKey{token: sha256.Sum256([]byte(token)), bucket: bucket}
	if ok, hit := a.cache.lookup(k); hit {
		return ok, nil
	}
	k.bucket = strings.Clone(bucket) // kept in the cache: not a slice of the request
	ok, err := a.cache.load(ctx, k, k, func(ctx context.Context) (bool, error) {
		return a.f(ctx, token, bucket)
	})
	if err != nil {
		return false, hookError("authorization", err)
	}
	return ok, nil
}

func (a *authCache) sweep() {
	if a.cache != nil {
		a.cache.sweep()
	}
	if a.anon != nil {
		a.anon.sweep()
	}
}

// janitor is the proxy's one background goroutine for its caches: it removes
// expired entries every interval until closed. (ttlcache's own Start/Stop pair
// leaks its goroutine when Stop comes before Start has run.)
type janitor struct {
	stop chan struct{}
	done chan struct{}
}

func startJanitor(every time.Duration, sweeps ...func()) *janitor {
	j := &janitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(j.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-j.stop:
				return
			case <-t.C:
				for _, s := range sweeps {
					s()
				}
			}
		}
	}()
	return j
}

// close stops the janitor and waits for it.
func (j *janitor) close() {
	close(j.stop)
	<-j.done
}

// signingKeys caches derived SigV4 signing keys by (secret digest, date,
// region, service): a rotated secret misses the cache at once.
type signingKeys struct {
	cache *ttlcache.Cache[keyID, []byte]
}

type keyID struct {
	secret                [sha256.Size]byte
	date, region, service string
}

const signingKeyCapacity = 10_000

func newSigningKeys() *signingKeys {
	c := ttlcache.New(
		ttlcache.WithTTL[keyID, []byte](24*time.Hour),
		ttlcache.WithCapacity[keyID, []byte](signingKeyCapacity),
		ttlcache.WithDisableTouchOnHit[keyID, []byte](),
	)
	return &signingKeys{cache: c}
}

// signingKey returns the signing key of a secret the proxy holds (an
// upstream's), derived once and cached.
func (k *signingKeys) signingKey(secret, date, region, service string) []byte {
	key, ok := k.lookup(secret, date, region, service)
	if !ok {
		key = sigv4.DeriveKey(secret, date, region, service)
		k.store(secret, date, region, service, key)
	}
	return key
}

// lookup returns the cached signing key of a secret for a scope.
func (k *signingKeys) lookup(secret, date, region, service string) ([]byte, bool) {
	id := keyID{secret: sha256.Sum256([]byte(secret)), date: date, region: region, service: service}
	if it := k.cache.Get(id); it != nil {
		return it.Value(), true
	}
	return nil, false
}

// store caches the signing key of a secret for a scope. A client's key is
// stored only once a signature verified with it, so a request without the
// secret adds nothing; the scope's strings are copied, so an entry never
// holds on to the request it came from.
func (k *signingKeys) store(secret, date, region, service string, key []byte) {
	id := keyID{secret: sha256.Sum256([]byte(secret)), date: strings.Clone(date), region: strings.Clone(region), service: strings.Clone(service)}
	k.cache.Set(id, key, ttlcache.DefaultTTL)
}

func (k *signingKeys) sweep() { k.cache.DeleteExpired() }
