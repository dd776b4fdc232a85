package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"
)

// IAM token cache tuning. The refresh-ahead fraction and the exchange timeout
// come from the config (WithIAMRefreshAhead, WithIAMTimeout).
const (
	// iamGrantType is the OAuth grant type of an API key exchange.
	iamGrantType = "urn:ibm:params:oauth:grant-type:apikey"
	// iamMaxBody bounds the bytes read from an IAM answer. A token answer is a
	// few KiB (access and refresh JWTs).
	iamMaxBody = 1 << 20
	// iamMaxKeys bounds the number of API keys whose state is kept.
	iamMaxKeys = 10_000
	// iamSafetyMargin is the most a token's use stops short of its expiry; for
	// tokens living less than ten times that, the margin is a tenth of the
	// lifetime instead.
	iamSafetyMargin = 30 * time.Second
	// iamMaxLifetime caps the lifetime believed from IAM, so a wrong answer
	// cannot pin a token (or overflow time arithmetic).
	iamMaxLifetime = 24 * time.Hour
	// iamBackoffMin and iamBackoffMax bound the wait after a failed exchange:
	// it doubles per consecutive failure from iamBackoffMin to iamBackoffMax,
	// and is then drawn uniformly from its upper half (jitter).
	iamBackoffMin = time.Second
	iamBackoffMax = 30 * time.Second
	// iamRefreshJitter is the part of the refresh-ahead window, at its start,
	// across which the start of a background refresh is spread, so that keys
	// exchanged together do not all refresh together.
	iamRefreshJitter = 0.25
	// iamMaxLogMessage bounds the length of an IAM error message in the log.
	iamMaxLogMessage = 512
)

// signBearer gives the upstream request (its headers h) t's IAM bearer token;
// a body framed again as aws-chunked declares its payload method.
func (p *Proxy) signBearer(ctx context.Context, h http.Header, t *target, f framing) error {
	tok, err := p.iam.token(ctx, t.creds.APIKey)
	if err != nil {
		return err
	}
	h.Set("Authorization", "Bearer "+tok)
	if f.reframe {
		h.Set("X-Amz-Content-Sha256", f.payloadHash)
	}
	return nil
}

// errIAMKeyRefused answers requests for a bucket whose IBM Cloud API key IAM
// refuses: a configuration problem upstream, not an outage.
var errIAMKeyRefused = errAccessDenied.withMessage("The upstream IBM Cloud API key was refused by IAM.")

// errIAMClosed is the cause given once close has been called.
var errIAMClosed = errors.New("IAM token cache closed")

// iamTokens exchanges IBM Cloud IAM API keys for bearer tokens and caches them.
//
// It is modelled on aws-sdk-go-v2's CredentialsCache, per API key:
//
//   - A usable token is served lock-free: one sync.Map load by the key's
//     sha256 digest, one atomic load of an immutable *iamEntry, one clock read.
//   - From refreshAt on (the last cfg.iamRefreshAhead of its lifetime, its
//     start jittered across the first quarter of that window) one background
//     refresh runs while callers keep getting the current token. A token is
//     never served past useUntil: its expiry minus min(30 s, lifetime/10).
//   - Without a usable token, callers share one exchange (singleflight on the
//     digest) run on a context detached from them, bounded by cfg.iamTimeout
//     and cancelled by close; each caller still gives up on its own context.
//   - Failures are not cached, but each one makes the key back off: no exchange
//     before 1 s, 2 s, 4 s … 30 s (the upper half of which, at random) has
//     passed. Meanwhile callers without a usable token get the last failure's
//     S3 error at once, and background refreshes wait too. Success resets it.
//
// The key→state index is bounded by iamMaxKeys; at the bound, keys without a
// usable token are dropped first, then any. Neither the API key nor a token is
// ever logged or put in an error.
type iamTokens struct {
	cfg     *config
	client  *http.Client
	maxKeys int64

	keys  sync.Map // [sha256.Size]byte → *iamKey
	nkeys atomic.Int64
	prune sync.Mutex // one pruning scan at a time
	sf    singleflight.Group

	life   context.Context // cancelled by close
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed and every wg.Add
	closed bool
	wg     sync.WaitGroup // exchanges and background refreshes
}

// iamKey is the state of one API key. Its fields are only loaded and stored
// atomically, so the hit path takes no lock.
type iamKey struct {
	entry      atomic.Pointer[iamEntry]   // nil before the first success
	backoff    atomic.Pointer[iamBackoff] // nil unless the last exchange failed
	refreshing atomic.Bool                // a background refresh is running
}

// iamEntry is one token and the times that govern its use. It is immutable
// once stored.
type iamEntry struct {
	token     string
	expiry    time.Time // as IAM says (capped at iamMaxLifetime)
	refreshAt time.Time // from here on, refresh in the background
	useUntil  time.Time // from here on, never serve the token
}

// iamBackoff records consecutive failed exchanges of one key.
type iamBackoff struct {
	failures int
	until    time.Time // no exchange before this
	err      *Error    // what callers without a token get meanwhile
}

// iamTokenAnswer is IAM's answer to a successful exchange.
type iamTokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Expiration  int64  `json:"expiration"`
}

// iamErrorAnswer is the body of an IAM error answer.
type iamErrorAnswer struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	Context      struct {
		RequestID string `json:"requestId"`
	} `json:"context"`
}

// newIAMTokens returns a token cache that calls cfg.iamEndpoint through rt,
// which must not be nil. Redirects are not followed, so an API key is only ever
// posted to the configured endpoint. Call close to stop its background work.
func newIAMTokens(cfg *config, rt http.RoundTripper) *iamTokens {
	life, cancel := context.WithCancel(context.Background())
	return &iamTokens{
		cfg: cfg,
		client: &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		maxKeys: iamMaxKeys,
		life:    life,
		cancel:  cancel,
	}
}

// token returns the bearer token to send upstream for apiKey. A usable cached
// token is returned at once (starting a background refresh when it is due);
// otherwise the caller waits for the key's shared exchange or for ctx. Errors
// are *Error: 403 AccessDenied when IAM refuses the key, 503
// ServiceUnavailable when IAM cannot be used (outage, backoff, ctx done).
func (t *iamTokens) token(ctx context.Context, apiKey string) (string, error) {
	if apiKey == "" {
		return "", errIAMKeyRefused.with(errors.New("empty IBM Cloud API key"))
	}
	d := iamDigest(apiKey)
	st := t.lookup(d)
	if st != nil {
		if e := st.entry.Load(); e != nil {
			now := t.cfg.now()
			if now.Before(e.useUntil) {
				if !now.Before(e.refreshAt) {
					t.refreshAhead(ctx, st, d, apiKey, now)
				}
				t.observeCache(true)
				return e.token, nil
			}
		}
	} else {
		st = t.add(d)
	}
	t.observeCache(false)
	return t.wait(ctx, st, d, apiKey)
}

func (t *iamTokens) observeCache(hit bool) {
	if obs := t.cfg.observer.Cache; obs != nil {
		obs("iam-token", hit)
	}
}

// close cancels the running exchanges and waits for every goroutine the cache
// started. Tokens already cached may still be served; no exchange starts any
// more. It is safe to call more than once.
func (t *iamTokens) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
}

// enter registers one unit of background work, unless close was called.
func (t *iamTokens) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// wait returns a usable token for a key that had none: from the cache, from
// the key's running exchange or from a new one, unless the key backs off.
func (t *iamTokens) wait(ctx context.Context, st *iamKey, d [sha256.Size]byte, apiKey string) (string, error) {
	now := t.cfg.now()
	if e := st.entry.Load(); e.usable(now) { // stored since the first look
		return e.token, nil
	}
	if b := st.backoff.Load(); b != nil && now.Before(b.until) {
		return "", b.err
	}
	ch := t.sf.DoChan(string(d[:]), func() (any, error) {
		return t.exchangeShared(ctx, st, d, apiKey)
	})
	select {
	case r := <-ch:
		if e, ok := r.Val.(*iamEntry); ok && r.Err == nil && e != nil {
			return e.token, nil
		}
		if e := st.entry.Load(); e.usable(t.cfg.now()) {
			return e.token, nil
		}
		if r.Err == nil {
			return "", errInternal.with(errors.New("IAM exchange returned no token"))
		}
		return "", r.Err
	case <-ctx.Done():
		return "", errServiceUnavailable.with(fmt.Errorf("waiting for IAM token: %w", ctx.Err()))
	}
}

// refreshAhead starts the key's background refresh, unless one runs, the key
// backs off or the cache is closed. Callers keep the current token meanwhile.
func (t *iamTokens) refreshAhead(ctx context.Context, st *iamKey, d [sha256.Size]byte, apiKey string, now time.Time) {
	if st.refreshing.Load() {
		return
	}
	if b := st.backoff.Load(); b != nil && now.Before(b.until) {
		return
	}
	if !st.refreshing.CompareAndSwap(false, true) {
		return
	}
	if !t.enter() {
		st.refreshing.Store(false)
		return
	}
	go t.refresh(ctx, st, d, apiKey)
}

// refresh runs one background refresh through the key's shared exchange. A
// failure leaves the current token in use; the exchange has recorded the
// backoff and logged the cause.
func (t *iamTokens) refresh(ctx context.Context, st *iamKey, d [sha256.Size]byte, apiKey string) {
	defer t.wg.Done()
	defer st.refreshing.Store(false)
	_, _, _ = t.sf.Do(string(d[:]), func() (any, error) {
		return t.exchangeShared(ctx, st, d, apiKey)
	})
}

// exchangeShared is the body of a key's single flight: it looks at the cache
// a second time, honours the backoff, then exchanges the key on a context
// detached from the caller, bounded by cfg.iamTimeout and cancelled by close,
// and records the outcome.
func (t *iamTokens) exchangeShared(ctx context.Context, st *iamKey, d [sha256.Size]byte, apiKey string) (*iamEntry, error) {
	if !t.enter() {
		return nil, errServiceUnavailable.with(errIAMClosed)
	}
	defer t.wg.Done()

	now := t.cfg.now()
	if e := st.entry.Load(); e != nil && now.Before(e.refreshAt) {
		return e, nil // another flight has just stored a fresh token
	}
	if b := st.backoff.Load(); b != nil && now.Before(b.until) {
		return nil, b.err
	}

	xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.iamTimeout)
	defer cancel()
	stop := context.AfterFunc(t.life, cancel)
	defer stop()

	log := t.cfg.logger.With(slog.String("key_digest", hex.EncodeToString(d[:6])))
	start := time.Now()
	e, err := t.exchange(xctx, apiKey, log)
	if obs := t.cfg.observer.IAMExchange; obs != nil {
		var oerr error // not a nil *Error inside an interface
		if err != nil {
			oerr = err
		}
		obs(time.Since(start), oerr)
	}
	if err != nil {
		if t.life.Err() != nil { // closing: not IAM's fault
			return nil, errServiceUnavailable.with(errIAMClosed)
		}
		t.failed(st, err, log)
		return nil, err
	}
	st.backoff.Store(nil)
	st.entry.Store(e)
	log.Debug("IAM token obtained", slog.Time("expiry", e.expiry), slog.Time("refresh_at", e.refreshAt))
	return e, nil
}

// failed records a failed exchange: the key backs off, longer each time.
func (t *iamTokens) failed(st *iamKey, err *Error, log *slog.Logger) {
	n := 1
	if prev := st.backoff.Load(); prev != nil {
		n = prev.failures + 1
	}
	delay := iamBackoffDelay(n)
	st.backoff.Store(&iamBackoff{
		failures: n,
		until:    t.cfg.now().Add(delay),
		err:      err.with(fmt.Errorf("IAM exchange backing off for %s: %w", delay.Round(time.Millisecond), err.Err)),
	})
	log.Warn("IAM token exchange", slog.Any("error", err), slog.Int("failures", n), slog.Duration("backoff", delay))
}

// iamBackoffDelay is the wait after the n-th consecutive failure (n ≥ 1):
// iamBackoffMin doubled n-1 times, capped at iamBackoffMax, then drawn
// uniformly from its upper half.
func iamBackoffDelay(n int) time.Duration {
	d := iamBackoffMax
	if n >= 1 && n <= 6 {
		d = min(iamBackoffMin<<(n-1), iamBackoffMax)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// exchange posts apiKey to IAM and returns the token it answers. Every error is
// an *Error: errIAMKeyRefused for 400, 401 and 403, errServiceUnavailable for
// anything else. IAM's error code and message are logged, never the key.
func (t *iamTokens) exchange(ctx context.Context, apiKey string, log *slog.Logger) (*iamEntry, *Error) {
	form := url.Values{"grant_type": {iamGrantType}, "apikey": {apiKey}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.iamEndpoint, strings.NewReader(form))
	if err != nil {
		return nil, errServiceUnavailable.with(fmt.Errorf("IAM request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	resp, err := t.client.Do(req)
	if err != nil {
		return nil, errServiceUnavailable.with(fmt.Errorf("IAM request: %w", err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, iamMaxBody+1))
	if err != nil {
		return nil, errServiceUnavailable.with(fmt.Errorf("reading IAM answer: %w", err))
	}
	if len(body) > iamMaxBody {
		return nil, errServiceUnavailable.with(fmt.Errorf("IAM answer (status %d) exceeds %d bytes", resp.StatusCode, iamMaxBody))
	}

	if resp.StatusCode != http.StatusOK {
		return nil, t.iamFailure(resp.StatusCode, body, apiKey, log)
	}
	var a iamTokenAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, errServiceUnavailable.with(fmt.Errorf("decoding IAM answer: %w", err))
	}
	e, err := newIAMEntry(a, t.cfg.now(), t.cfg.iamRefreshAhead)
	if err != nil {
		return nil, errServiceUnavailable.with(err)
	}
	return e, nil
}

// iamFailure logs an IAM error answer and maps it to the S3 error to return.
func (t *iamTokens) iamFailure(status int, body []byte, apiKey string, log *slog.Logger) *Error {
	var a iamErrorAnswer
	_ = json.Unmarshal(body, &a) // best effort: the status decides
	attrs := []any{
		slog.Int("status", status),
		slog.String("error_code", iamLogText(a.ErrorCode, apiKey)),
		slog.String("error_message", iamLogText(a.ErrorMessage, apiKey)),
		slog.String("iam_request_id", iamLogText(a.Context.RequestID, apiKey)),
	}
	code := iamLogText(a.ErrorCode, apiKey)
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		log.Warn("IAM refused the API key", attrs...)
		return errIAMKeyRefused.with(fmt.Errorf("IAM refused the API key: status %d, code %q", status, code))
	default:
		log.Warn("IAM error answer", attrs...)
		return errServiceUnavailable.with(fmt.Errorf("IAM answered status %d, code %q", status, code))
	}
}

// iamLogText makes a string from an IAM answer fit for the log: the API key
// redacted should IAM ever echo it, bounded in length, valid UTF-8.
func iamLogText(s, apiKey string) string {
	if apiKey != "" {
		s = strings.ReplaceAll(s, apiKey, "[redacted]")
	}
	if len(s) > iamMaxLogMessage {
		s = s[:iamMaxLogMessage]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// newIAMEntry turns IAM's answer, received at now, into a cache entry.
// `expiration` (absolute) is trusted over `expires_in` (relative) when both are
// given; a token already expired, or without either, is an error.
func newIAMEntry(a iamTokenAnswer, now time.Time, refreshAhead float64) (*iamEntry, error) {
	if a.AccessToken == "" {
		return nil, errors.New("IAM answer without access_token")
	}
	var life time.Duration
	switch {
	case a.Expiration > 0:
		life = time.Unix(a.Expiration, 0).Sub(now)
	case a.ExpiresIn > 0:
		life = time.Duration(min(a.ExpiresIn, int64(iamMaxLifetime/time.Second))) * time.Second
	default:
		return nil, errors.New("IAM answer without expiration or expires_in")
	}
	if life <= 0 {
		return nil, fmt.Errorf("IAM token already expired (%s ago)", (-life).Round(time.Second))
	}
	life = min(life, iamMaxLifetime)

	margin := min(iamSafetyMargin, life/10)
	ahead := time.Duration(float64(life) * refreshAhead)
	ahead -= time.Duration(rand.Float64() * iamRefreshJitter * float64(ahead))
	expiry := now.Add(life) // keeps now's monotonic reading
	e := &iamEntry{
		token:     a.AccessToken,
		expiry:    expiry,
		refreshAt: expiry.Add(-ahead),
		useUntil:  expiry.Add(-margin),
	}
	if e.refreshAt.After(e.useUntil) {
		e.refreshAt = e.useUntil
	}
	return e, nil
}

// usable reports whether e holds a token that may be served at now.
func (e *iamEntry) usable(now time.Time) bool {
	return e != nil && now.Before(e.useUntil)
}

// iamDigest returns the sha256 of apiKey without allocating for keys of up to
// 256 bytes (IBM API keys have 44).
func iamDigest(apiKey string) [sha256.Size]byte {
	var buf [256]byte
	if len(apiKey) <= len(buf) {
		n := copy(buf[:], apiKey)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(apiKey))
}

// lookup returns the state of the key with digest d, or nil.
func (t *iamTokens) lookup(d [sha256.Size]byte) *iamKey {
	v, ok := t.keys.Load(d)
	if !ok {
		return nil
	}
	st, _ := v.(*iamKey)
	return st
}

// add returns the state of the key with digest d, creating it (and making room
// for it) when it is new.
func (t *iamTokens) add(d [sha256.Size]byte) *iamKey {
	if st := t.lookup(d); st != nil {
		return st
	}
	if t.nkeys.Load() >= t.maxKeys {
		t.makeRoom()
	}
	st := &iamKey{}
	v, loaded := t.keys.LoadOrStore(d, st)
	if !loaded {
		t.nkeys.Add(1)
		return st
	}
	if old, ok := v.(*iamKey); ok && old != nil {
		return old
	}
	return st // not reached: only *iamKey values are stored
}

// makeRoom brings the index under nine tenths of its bound: it drops keys
// without a usable token that are neither backing off nor refreshing, then,
// if that was not enough, any keys. A dropped key only costs a new exchange.
func (t *iamTokens) makeRoom() {
	if !t.prune.TryLock() {
		return // another caller is pruning
	}
	defer t.prune.Unlock()
	target := t.maxKeys * 9 / 10
	now := t.cfg.now()
	t.dropKeys(target, func(st *iamKey) bool {
		b := st.backoff.Load()
		return !st.entry.Load().usable(now) && !st.refreshing.Load() && (b == nil || !now.Before(b.until))
	})
	t.dropKeys(target, func(*iamKey) bool { return true })
}

// dropKeys deletes the keys for which drop reports true until at most target
// remain.
func (t *iamTokens) dropKeys(target int64, drop func(*iamKey) bool) {
	t.keys.Range(func(k, v any) bool {
		if t.nkeys.Load() <= target {
			return false
		}
		if st, ok := v.(*iamKey); !ok || st == nil || drop(st) {
			if t.keys.CompareAndDelete(k, v) {
				t.nkeys.Add(-1)
			}
		}
		return true
	})
}
