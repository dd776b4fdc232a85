package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Tuning of the caches of values that expire (IAM tokens, temporary
// credentials). The refresh-ahead fraction comes from the config
// (WithIAMRefreshAhead).
const (
	// expMaxKeys bounds the number of keys whose state a cache keeps.
	expMaxKeys = 10_000
	// expSafetyMargin is the most a value's use stops short of its expiry;
	// for values living less than ten times that, the margin is a tenth of
	// the lifetime instead.
	expSafetyMargin = 30 * time.Second
	// expMaxLifetime caps the lifetime believed of a value, so a wrong
	// answer cannot pin it (or overflow time arithmetic).
	expMaxLifetime = 24 * time.Hour
	// expBackoffMin and expBackoffMax bound the wait after a failed fetch: it
	// doubles per consecutive failure from expBackoffMin to expBackoffMax,
	// and is then drawn uniformly from its upper half (jitter).
	expBackoffMin = time.Second
	expBackoffMax = 30 * time.Second
	// expRefreshJitter is the part of the refresh-ahead window, at its start,
	// across which the start of a background refresh is spread, so that keys
	// fetched together do not all refresh together.
	expRefreshJitter = 0.25
)

// expiring caches values that expire, per key K, fetched with an argument A
// (an IAM token by the digest of its API key; temporary credentials by their
// provider).
//
// It is modelled on aws-sdk-go-v2's CredentialsCache, per key:
//
//   - A usable value is served lock-free: one sync.Map load, one atomic load
//     of an immutable *expEntry, one clock read.
//   - From refreshAt on (the last cfg.iamRefreshAhead of its lifetime, its
//     start jittered across the first quarter of that window) one background
//     refresh runs while callers keep getting the current value. A value is
//     never served past useUntil: its expiry minus min(30 s, lifetime/10). A
//     value that does not expire is fetched again every refreshEvery, in the
//     background, and served meanwhile.
//   - Without a usable value, callers share one fetch (singleflight on the
//     key) run on a context detached from them, bounded by timeout and
//     cancelled by close; each caller still gives up on its own context.
//   - Failures are not cached, but each one makes the key back off: no fetch
//     before 1 s, 2 s, 4 s … 30 s (the upper half of which, at random) has
//     passed. Meanwhile callers without a usable value get the last failure's
//     S3 error at once, and background refreshes wait too. Success resets it.
//
// The key→state index is bounded by maxKeys; at the bound, keys without a
// usable value are dropped first, then any. Values are never logged.
type expiring[K comparable, A, V any] struct {
	cfg     *config
	name    string   // of the cache, for the Observer ("iam-token", "credentials")
	step    StepKind // of a fetch, for a tracer
	title   string   // of a value, in the log and in errors ("IAM token")
	maxKeys int64
	timeout time.Duration // of one fetch
	// refreshEvery is how often a value that does not expire is fetched again.
	refreshEvery time.Duration
	// fetch gets the value of a key from its argument; it returns the
	// value's expiry (zero: it does not expire) and, on failure, the S3 error
	// callers get.
	fetch func(ctx context.Context, arg A, log *slog.Logger) (V, time.Time, *Error)
	// logKey names a key in the log without revealing it.
	logKey func(K) slog.Attr
	// observeFetch, when set, is told each fetch's duration and error.
	observeFetch func(d time.Duration, err error)

	keys  sync.Map // K → *expKey[V]
	nkeys atomic.Int64
	ids   atomic.Uint64 // of the keys' flights
	prune sync.Mutex    // one pruning scan at a time
	sf    singleflight.Group

	life   context.Context // cancelled by close
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed and every wg.Add
	closed bool
	wg     sync.WaitGroup // fetches and background refreshes
}

// expKey is the state of one key. Its fields are only loaded and stored
// atomically, so the hit path takes no lock.
type expKey[V any] struct {
	flight     string                      // the key's singleflight key
	entry      atomic.Pointer[expEntry[V]] // nil before the first success
	backoff    atomic.Pointer[expBackoff]  // nil unless the last fetch failed
	refreshing atomic.Bool                 // a background refresh is running
}

// expEntry is one value and the times that govern its use. It is immutable
// once stored.
type expEntry[V any] struct {
	v         V
	expiry    time.Time // as the source says (capped at expMaxLifetime); zero: none
	refreshAt time.Time // from here on, refresh in the background
	useUntil  time.Time // from here on, never serve the value
}

// expBackoff records consecutive failed fetches of one key.
type expBackoff struct {
	failures int
	until    time.Time // no fetch before this
	err      *Error    // what callers without a value get meanwhile
}

// errExpiringClosed is the cause given once close has been called.
var errExpiringClosed = errors.New("cache closed")

// newExpiring returns a cache of values fetched by fetch, each fetch bounded
// by timeout. Call close to stop its background work.
func newExpiring[K comparable, A, V any](cfg *config, name, title string, step StepKind, timeout time.Duration,
	fetch func(context.Context, A, *slog.Logger) (V, time.Time, *Error), logKey func(K) slog.Attr) *expiring[K, A, V] {
	life, cancel := context.WithCancel(context.Background())
	return &expiring[K, A, V]{
		cfg: cfg, name: name, title: title, step: step, maxKeys: expMaxKeys, timeout: timeout, refreshEvery: cfg.hookCacheTTL,
		fetch: fetch, logKey: logKey, life: life, cancel: cancel,
	}
}

// get returns the value of k, fetched with arg when there is none to use. A
// usable cached value is returned at once (starting a background refresh when
// it is due); otherwise the caller waits for the key's shared fetch or for
// ctx. Errors are *Error: the fetch's, or 503 ServiceUnavailable when the
// caller gave up or the cache is closed.
func (c *expiring[K, A, V]) get(ctx context.Context, k K, arg A) (V, error) {
	st := c.lookup(k)
	if st != nil {
		if e := st.entry.Load(); e != nil {
			now := c.cfg.now()
			if now.Before(e.useUntil) {
				if !now.Before(e.refreshAt) {
					c.refreshAhead(ctx, st, k, arg, now)
				}
				c.observeCache(true)
				return e.v, nil
			}
		}
	} else {
		st = c.add(k)
	}
	c.observeCache(false)
	return c.wait(ctx, st, k, arg)
}

func (c *expiring[K, A, V]) observeCache(hit bool) {
	if obs := c.cfg.observer.Cache; obs != nil {
		obs(c.name, hit)
	}
}

// close cancels the running fetches and waits for every goroutine the cache
// started. Values already cached may still be served; no fetch starts any
// more. It is safe to call more than once.
func (c *expiring[K, A, V]) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// enter registers one unit of background work, unless close was called.
func (c *expiring[K, A, V]) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// wait returns a usable value for a key that had none: from the cache, from
// the key's running fetch or from a new one, unless the key backs off.
func (c *expiring[K, A, V]) wait(ctx context.Context, st *expKey[V], k K, arg A) (V, error) {
	var zero V
	now := c.cfg.now()
	if e := st.entry.Load(); e.usable(now) { // stored since the first look
		return e.v, nil
	}
	if b := st.backoff.Load(); b != nil && now.Before(b.until) {
		return zero, b.err
	}
	ch := c.sf.DoChan(st.flight, func() (any, error) {
		return c.fetchShared(ctx, st, k, arg)
	})
	select {
	case r := <-ch:
		if e, ok := r.Val.(*expEntry[V]); ok && r.Err == nil && e != nil {
			return e.v, nil
		}
		if e := st.entry.Load(); e.usable(c.cfg.now()) {
			return e.v, nil
		}
		if r.Err == nil {
			return zero, errInternal.with(errors.New(c.title + " fetch returned nothing"))
		}
		return zero, r.Err
	case <-ctx.Done():
		return zero, errServiceUnavailable.with(fmt.Errorf("waiting for %s: %w", c.title, ctx.Err()))
	}
}

// refreshAhead starts the key's background refresh, unless one runs, the key
// backs off or the cache is closed. Callers keep the current value meanwhile.
func (c *expiring[K, A, V]) refreshAhead(ctx context.Context, st *expKey[V], k K, arg A, now time.Time) {
	if st.refreshing.Load() {
		return
	}
	if b := st.backoff.Load(); b != nil && now.Before(b.until) {
		return
	}
	if !st.refreshing.CompareAndSwap(false, true) {
		return
	}
	if !c.enter() {
		st.refreshing.Store(false)
		return
	}
	go c.refresh(ctx, st, k, arg)
}

// refresh runs one background refresh through the key's shared fetch. A
// failure leaves the current value in use; the fetch has recorded the backoff
// and logged the cause.
func (c *expiring[K, A, V]) refresh(ctx context.Context, st *expKey[V], k K, arg A) {
	defer c.wg.Done()
	defer st.refreshing.Store(false)
	_, _, _ = c.sf.Do(st.flight, func() (any, error) {
		return c.fetchShared(ctx, st, k, arg)
	})
}

// fetchShared is the body of a key's single flight: it looks at the cache a
// second time, honours the backoff, then fetches on a context detached from
// the caller, bounded by c.timeout and cancelled by close, and records the
// outcome.
func (c *expiring[K, A, V]) fetchShared(ctx context.Context, st *expKey[V], k K, arg A) (*expEntry[V], error) {
	if !c.enter() {
		return nil, errServiceUnavailable.with(errExpiringClosed)
	}
	defer c.wg.Done()

	now := c.cfg.now()
	if e := st.entry.Load(); e != nil && now.Before(e.refreshAt) {
		return e, nil // another flight has just stored a fresh value
	}
	if b := st.backoff.Load(); b != nil && now.Before(b.until) {
		return nil, b.err
	}

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()

	log := c.cfg.logger.With(c.logKey(k))
	fctx, end := stepper(c.cfg.observer.Step).start(fctx, c.step, "", nil)
	start := time.Now()
	v, expiry, ferr := c.callFetch(fctx, arg, log)
	var e *expEntry[V]
	if ferr == nil {
		var err error
		if e, err = c.newEntry(v, c.cfg.now(), expiry); err != nil {
			ferr = errServiceUnavailable.with(err)
		}
	}
	var oerr error // not a nil *Error inside an interface
	if ferr != nil {
		oerr = ferr
	}
	if obs := c.observeFetch; obs != nil {
		obs(time.Since(start), oerr)
	}
	end(StepEnd{Err: oerr})
	if ferr != nil {
		if c.life.Err() != nil { // closing: not the source's fault
			return nil, errServiceUnavailable.with(errExpiringClosed)
		}
		c.failed(st, ferr, log)
		return nil, ferr
	}
	if old := st.entry.Load(); old.usable(now) && !e.expiry.After(old.expiry) && !old.expiry.IsZero() {
		// The source gave the value it gave before (or an older one): keep
		// the current entry, whose margins come from its whole lifetime, and
		// ask again after a while rather than at every request.
		c.failed(st, errServiceUnavailable.with(errors.New("the source gave no newer value")), log)
		return old, nil
	}
	st.backoff.Store(nil)
	st.entry.Store(e)
	log.Debug(c.title+" obtained", slog.Time("expiry", e.expiry), slog.Time("refresh_at", e.refreshAt))
	return e, nil
}

// callFetch calls fetch with a panic turned into 500 InternalError.
func (c *expiring[K, A, V]) callFetch(ctx context.Context, arg A, log *slog.Logger) (v V, expiry time.Time, err *Error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, expiry, err = zero, time.Time{}, errInternal.with(fmt.Errorf("%s fetch panicked: %v", c.title, r))
		}
	}()
	return c.fetch(ctx, arg, log)
}

// newEntry makes the cache entry of v, fetched at now and expiring at expiry
// (zero: never). A value already expired is an error.
func (c *expiring[K, A, V]) newEntry(v V, now, expiry time.Time) (*expEntry[V], error) {
	if expiry.IsZero() {
		return &expEntry[V]{v: v, refreshAt: now.Add(c.refreshEvery), useUntil: now.Add(expMaxLifetime * 365)}, nil
	}
	life := expiry.Sub(now)
	if life <= 0 {
		return nil, fmt.Errorf("%s already expired (%s ago)", c.title, (-life).Round(time.Second))
	}
	return newExpEntry(v, now, life, c.cfg.iamRefreshAhead), nil
}

// newExpEntry is the entry of a value fetched at now that lives life (> 0).
func newExpEntry[V any](v V, now time.Time, life time.Duration, refreshAhead float64) *expEntry[V] {
	life = min(life, expMaxLifetime)
	margin := min(expSafetyMargin, life/10)
	ahead := time.Duration(float64(life) * refreshAhead)
	ahead -= time.Duration(rand.Float64() * expRefreshJitter * float64(ahead))
	expiry := now.Add(life) // keeps now's monotonic reading
	e := &expEntry[V]{v: v, expiry: expiry, refreshAt: expiry.Add(-ahead), useUntil: expiry.Add(-margin)}
	if e.refreshAt.After(e.useUntil) {
		e.refreshAt = e.useUntil
	}
	return e
}

// failed records a failed fetch: the key backs off, longer each time.
func (c *expiring[K, A, V]) failed(st *expKey[V], err *Error, log *slog.Logger) {
	n := 1
	if prev := st.backoff.Load(); prev != nil {
		n = prev.failures + 1
	}
	delay := expBackoffDelay(n)
	st.backoff.Store(&expBackoff{
		failures: n,
		until:    c.cfg.now().Add(delay),
		err:      err.with(fmt.Errorf("%s backing off for %s: %w", c.title, delay.Round(time.Millisecond), err.Err)),
	})
	log.Warn(c.title+" fetch failed", slog.Any("error", err), slog.Int("failures", n), slog.Duration("backoff", delay))
}

// expBackoffDelay is the wait after the n-th consecutive failure (n ≥ 1):
// expBackoffMin doubled n-1 times, capped at expBackoffMax, then drawn
// uniformly from its upper half.
func expBackoffDelay(n int) time.Duration {
	d := expBackoffMax
	if n >= 1 && n <= 6 {
		d = min(expBackoffMin<<(n-1), expBackoffMax)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// usable reports whether e holds a value that may be served at now.
func (e *expEntry[V]) usable(now time.Time) bool {
	return e != nil && now.Before(e.useUntil)
}

// lookup returns the state of key k, or nil.
func (c *expiring[K, A, V]) lookup(k K) *expKey[V] {
	v, ok := c.keys.Load(k)
	if !ok {
		return nil
	}
	st, _ := v.(*expKey[V])
	return st
}

// add returns the state of key k, creating it (and making room for it) when
// it is new.
func (c *expiring[K, A, V]) add(k K) *expKey[V] {
	if st := c.lookup(k); st != nil {
		return st
	}
	if c.nkeys.Load() >= c.maxKeys {
		c.makeRoom()
	}
	st := &expKey[V]{flight: strconv.FormatUint(c.ids.Add(1), 36)}
	v, loaded := c.keys.LoadOrStore(k, st)
	if !loaded {
		c.nkeys.Add(1)
		return st
	}
	if old, ok := v.(*expKey[V]); ok && old != nil {
		return old
	}
	return st // not reached: only *expKey values are stored
}

// makeRoom brings the index under nine tenths of its bound: it drops keys
// without a usable value that are neither backing off nor refreshing, then,
// if that was not enough, any keys. A dropped key only costs a new fetch.
func (c *expiring[K, A, V]) makeRoom() {
	if !c.prune.TryLock() {
		return // another caller is pruning
	}
	defer c.prune.Unlock()
	target := c.maxKeys * 9 / 10
	now := c.cfg.now()
	c.dropKeys(target, func(st *expKey[V]) bool {
		b := st.backoff.Load()
		return !st.entry.Load().usable(now) && !st.refreshing.Load() && (b == nil || !now.Before(b.until))
	})
	c.dropKeys(target, func(*expKey[V]) bool { return true })
}

// dropKeys deletes the keys for which drop reports true until at most target
// remain.
func (c *expiring[K, A, V]) dropKeys(target int64, drop func(*expKey[V]) bool) {
	c.keys.Range(func(k, v any) bool {
		if c.nkeys.Load() <= target {
			return false
		}
		if st, ok := v.(*expKey[V]); !ok || st == nil || drop(st) {
			if c.keys.CompareAndDelete(k, v) {
				c.nkeys.Add(-1)
			}
		}
		return true
	})
}
