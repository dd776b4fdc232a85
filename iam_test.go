package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy/internal/testkit"
)

const testAPIKey = "tEsT-ApI-kEy-0123456789abcdefghijklmnopqrstuv" // 44 characters, like IBM's

// newTestClock returns a clock the test moves by hand, at 1,700,000,000 s.
func newTestClock() *testkit.Clock { return testkit.NewClock(time.Unix(1_700_000_000, 0)) }

// syncBuffer is a log sink safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newFakeIAM returns the fake IAM of these tests: it knows testAPIKey and
// tells time by clock.
func newFakeIAM(t testing.TB, clock *testkit.Clock) *testkit.IAM {
	return testkit.NewIAM(t, clock.Now, testAPIKey)
}

// checkLeaks verifies at cleanup, after every later-registered cleanup (the
// cache's close, the servers' Close), that the test left no goroutine behind.
func checkLeaks(t *testing.T) {
	t.Helper()
	testkit.CheckLeaks(t)
}

type testTokens struct {
	*iamTokens
	log *syncBuffer
}

// newTestTokens returns a cache calling endpoint through rt with the clock now,
// logging at debug level; it is closed at cleanup.
func newTestTokens(t *testing.T, endpoint string, rt http.RoundTripper, now func() time.Time, edit ...func(*config)) *testTokens {
	t.Helper()
	cfg := defaultConfig()
	cfg.iamEndpoint = endpoint
	cfg.now = now
	log := &syncBuffer{}
	cfg.logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, e := range edit {
		e(cfg)
	}
	tt := &testTokens{iamTokens: newIAMTokens(cfg, rt), log: log}
	t.Cleanup(tt.close)
	return tt
}

func newTokensFor(t *testing.T, f *testkit.IAM, edit ...func(*config)) *testTokens {
	return newTestTokens(t, f.URL, f.Client().Transport, f.Now, edit...)
}

// state returns the cache's state for testAPIKey.
func (tt *testTokens) state() *expKey[string] { return tt.lookup(iamDigest(testAPIKey)) }

func requireS3Error(t *testing.T, err error, want *Error) *Error {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.ErrorIs(t, err, want)
	assert.Equal(t, want.StatusCode, e.StatusCode)
	return e
}

func TestIAMConcurrentColdCallsShareOneExchange(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	g := f.Hold()
	tt := newTokensFor(t, f)

	const callers = 500
	var wg sync.WaitGroup
	start := make(chan struct{})
	tokens := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			<-start
			tokens[i], errs[i] = tt.token(context.Background(), testAPIKey)
		})
	}
	close(start)
	<-g.Arrived
	time.Sleep(50 * time.Millisecond) // let the callers pile up on the flight
	g.Open()
	wg.Wait()

	for i := range callers {
		require.NoError(t, errs[i])
		require.Equal(t, "tok-1", tokens[i])
	}
	assert.EqualValues(t, 1, f.Calls())
}

func TestIAMRefreshAhead(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	g := f.Hold(2)
	tt := newTokensFor(t, f)
	ctx := context.Background()

	tok, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	require.Equal(t, "tok-1", tok)

	// Half-life: served from the cache, no refresh started.
	clock.Advance(1800 * time.Second)
	tok, err = tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	require.Equal(t, "tok-1", tok)
	assert.False(t, tt.state().refreshing.Load())
	assert.EqualValues(t, 1, f.Calls())

	// Last fifth (past the jittered start): one background refresh, blocked in
	// IAM, while every caller gets the current token at once.
	clock.Advance(1500 * time.Second) // 3300 s of 3600
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			tok, err := tt.token(ctx, testAPIKey)
			assert.NoError(t, err)
			assert.Equal(t, "tok-1", tok)
		})
	}
	wg.Wait() // returned while IAM still holds the refresh
	select {
	case n := <-g.Arrived:
		assert.EqualValues(t, 2, n)
	case <-time.After(5 * time.Second):
		t.Fatal("no background refresh reached IAM")
	}
	for range 100 {
		tok, err := tt.token(ctx, testAPIKey)
		require.NoError(t, err)
		require.Equal(t, "tok-1", tok)
	}
	assert.EqualValues(t, 2, f.Calls())

	g.Open()
	require.Eventually(t, func() bool {
		tok, err := tt.token(ctx, testAPIKey)
		return err == nil && tok == "tok-2"
	}, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return !tt.state().refreshing.Load() }, 5*time.Second, time.Millisecond)
	for range 100 {
		tok, err := tt.token(ctx, testAPIKey)
		require.NoError(t, err)
		require.Equal(t, "tok-2", tok)
	}
	tt.close()
	assert.EqualValues(t, 2, f.Calls())
}

func TestIAMNeverServesPastSafetyMargin(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	tt := newTokensFor(t, f)
	ctx := context.Background()

	_, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	f.Fail(http.StatusInternalServerError)
	clock.Advance(3600*time.Second - 25*time.Second) // inside the 30 s margin
	tok, err := tt.token(ctx, testAPIKey)
	requireS3Error(t, err, errServiceUnavailable)
	assert.Empty(t, tok)
}

func TestIAMOutageBackoff(t *testing.T) {
	for _, mode := range []string{"status 500", "connection refused"} {
		t.Run(mode, func(t *testing.T) {
			checkLeaks(t)
			clock := newTestClock()
			f := newFakeIAM(t, clock)
			rt := &switchTransport{base: &http.Transport{}, dead: deadAddr(t)}
			t.Cleanup(rt.base.CloseIdleConnections)
			setDown := func(d bool) {
				switch {
				case mode != "status 500":
					rt.down.Store(d)
				case d:
					f.Fail(http.StatusInternalServerError)
				default:
					f.Fail(0)
				}
			}
			tt := newTestTokens(t, f.URL, rt, clock.Now)
			ctx := context.Background()

			tok, err := tt.token(ctx, testAPIKey)
			require.NoError(t, err)
			require.Equal(t, "tok-1", tok)

			// Past expiry with IAM down: quick 503s, one IAM attempt per
			// backoff window however many calls.
			setDown(true)
			clock.Advance(3600 * time.Second)
			begin := time.Now()
			for range 1000 {
				tok, err := tt.token(ctx, testAPIKey)
				requireS3Error(t, err, errServiceUnavailable)
				require.Empty(t, tok)
			}
			assert.Less(t, time.Since(begin), 5*time.Second)
			assert.EqualValues(t, 2, rt.calls.Load()) // the first token, one failure

			for i := 2; i <= 8; i++ { // backoff grows to its 30 s cap
				clock.Advance(expBackoffMax + time.Second)
				for range 100 {
					_, err := tt.token(ctx, testAPIKey)
					requireS3Error(t, err, errServiceUnavailable)
				}
				assert.EqualValues(t, 1+i, rt.calls.Load())
			}
			assert.Equal(t, 8, tt.state().backoff.Load().failures)

			// IAM is back but the backoff still runs: no call yet.
			setDown(false)
			_, err = tt.token(ctx, testAPIKey)
			requireS3Error(t, err, errServiceUnavailable)
			assert.EqualValues(t, 9, rt.calls.Load())

			// Past the backoff: recovery without restart.
			clock.Advance(expBackoffMax + time.Second)
			tok, err = tt.token(ctx, testAPIKey)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(tok, "tok-"))
			assert.Nil(t, tt.state().backoff.Load())
			assert.EqualValues(t, 10, rt.calls.Load())
			tok2, err := tt.token(ctx, testAPIKey)
			require.NoError(t, err)
			assert.Equal(t, tok, tok2)
			assert.EqualValues(t, 10, rt.calls.Load())
		})
	}
}

// switchTransport counts round trips and, while down, sends them to an address
// nobody listens on.
type switchTransport struct {
	base  *http.Transport
	dead  string
	down  atomic.Bool
	calls atomic.Int64
}

func (s *switchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.calls.Add(1)
	if s.down.Load() {
		r = r.Clone(r.Context())
		r.URL.Host = s.dead
		r.Host = ""
	}
	return s.base.RoundTrip(r)
}

// deadAddr returns a loopback address that refuses connections.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestIAMBackgroundRefreshFailureKeepsToken(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	tt := newTokensFor(t, f)
	ctx := context.Background()
	_, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)

	f.Fail(http.StatusServiceUnavailable)
	clock.Advance(3300 * time.Second)
	settle := func(calls int64) {
		t.Helper()
		require.Eventually(t, func() bool {
			return f.Calls() == calls && !tt.state().refreshing.Load()
		}, 5*time.Second, time.Millisecond)
	}
	for range 100 {
		tok, err := tt.token(ctx, testAPIKey)
		require.NoError(t, err)
		require.Equal(t, "tok-1", tok)
	}
	settle(2)
	require.NotNil(t, tt.state().backoff.Load())

	// Within the backoff: the current token, no new attempt.
	for range 100 {
		tok, err := tt.token(ctx, testAPIKey)
		require.NoError(t, err)
		require.Equal(t, "tok-1", tok)
	}
	settle(2)

	// Past the backoff: another background attempt, still failing.
	clock.Advance(expBackoffMax + time.Second)
	tok, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	require.Equal(t, "tok-1", tok)
	settle(3)

	// IAM back: the next attempt replaces the token.
	f.Fail(0)
	clock.Advance(expBackoffMax + time.Second)
	_, err = tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	settle(4)
	tok, err = tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	assert.Equal(t, "tok-4", tok)
	assert.Nil(t, tt.state().backoff.Load())
}

func TestIAMSlowExchangeOutlivesCaller(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	g := f.Hold()
	tt := newTokensFor(t, f, func(c *config) { c.iamTimeout = 30 * time.Second })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := tt.token(ctx, testAPIKey)
	requireS3Error(t, err, errServiceUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), 2*time.Second)

	<-g.Arrived
	g.Open()
	require.Eventually(t, func() bool { return tt.state().entry.Load() != nil }, 5*time.Second, time.Millisecond,
		"the exchange completes without its caller")
	tok, err := tt.token(context.Background(), testAPIKey)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok)
	assert.EqualValues(t, 1, f.Calls())
}

func TestIAMExchangeTimeout(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	g := f.Hold()
	tt := newTokensFor(t, f, func(c *config) { c.iamTimeout = 100 * time.Millisecond })

	begin := time.Now()
	_, err := tt.token(context.Background(), testAPIKey)
	requireS3Error(t, err, errServiceUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), 5*time.Second)
	assert.NotNil(t, tt.state().backoff.Load())
	g.Open()
}

func TestIAMRefusedKey(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			checkLeaks(t)
			clock := newTestClock()
			f := newFakeIAM(t, clock)
			f.Answer(func(w http.ResponseWriter, _ *http.Request, _ int64) {
				testkit.WriteJSON(w, status, map[string]any{
					"errorCode":    "BXNIM0415E",
					"errorMessage": "Provided API key could not be found: " + testAPIKey,
					"context":      map[string]string{"requestId": "req-42"},
				})
			})
			tt := newTokensFor(t, f)

			_, err := tt.token(context.Background(), testAPIKey)
			e := requireS3Error(t, err, errIAMKeyRefused)
			assert.Equal(t, "AccessDenied", e.Code)
			assert.Equal(t, "The upstream IBM Cloud API key was refused by IAM.", e.Message)
			assert.Contains(t, err.Error(), "BXNIM0415E")
			assert.NotContains(t, err.Error(), testAPIKey)

			// The key backs off too, with the same answer.
			_, err = tt.token(context.Background(), testAPIKey)
			requireS3Error(t, err, errIAMKeyRefused)
			assert.EqualValues(t, 1, f.Calls())

			tt.close()
			log := tt.log.String()
			assert.Contains(t, log, `"level":"WARN"`)
			assert.Contains(t, log, `"error_code":"BXNIM0415E"`)
			assert.Contains(t, log, "Provided API key could not be found: [redacted]")
			assert.Contains(t, log, `"iam_request_id":"req-42"`)
			assert.NotContains(t, log, testAPIKey)
		})
	}
}

func TestIAMSecretsNeverLogged(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	const secretToken = "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-BODY.sig"
	var step atomic.Int64
	f.Answer(func(w http.ResponseWriter, _ *http.Request, _ int64) {
		switch step.Load() {
		case 0:
			f.Token(w, secretToken, 3600)
		case 1:
			testkit.WriteJSON(w, http.StatusInternalServerError, map[string]string{"errorCode": "E", "errorMessage": "apikey " + testAPIKey})
		default:
			_, _ = w.Write([]byte(`{"access_token":"` + secretToken + `",`)) // truncated JSON
		}
	})
	tt := newTokensFor(t, f)
	ctx := context.Background()
	tok, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	require.Equal(t, secretToken, tok)
	var errs []error
	for s := int64(1); s <= 2; s++ {
		step.Store(s)
		clock.Advance(time.Hour)
		_, err := tt.token(ctx, testAPIKey)
		requireS3Error(t, err, errServiceUnavailable)
		errs = append(errs, err)
	}
	tt.close()
	log := tt.log.String()
	assert.Contains(t, log, "IAM token obtained")
	assert.Contains(t, log, "IAM error answer")
	for _, s := range append([]string{log}, errs[0].Error(), errs[1].Error()) {
		assert.NotContains(t, s, testAPIKey)
		assert.NotContains(t, s, "SECRET-TOKEN")
	}
}

func TestIAMAnswers(t *testing.T) {
	checkLeaks(t)
	now := newTestClock().Now()
	cases := []struct {
		name   string
		status int
		body   string
		expiry time.Time // zero: an error is expected
		errHas string
	}{
		{"expiration trusted over expires_in", 200,
			fmt.Sprintf(`{"access_token":"a","expires_in":3600,"expiration":%d}`, now.Unix()+600), now.Add(600 * time.Second), ""},
		{"expires_in alone", 200, `{"access_token":"a","expires_in":1200}`, now.Add(1200 * time.Second), ""},
		{"lifetime capped", 200, `{"access_token":"a","expires_in":99999999999}`, now.Add(expMaxLifetime), ""},
		{"already expired", 200,
			fmt.Sprintf(`{"access_token":"a","expires_in":3600,"expiration":%d}`, now.Unix()-10), time.Time{}, "already expired"},
		{"expires now", 200, fmt.Sprintf(`{"access_token":"a","expiration":%d}`, now.Unix()), time.Time{}, "already expired"},
		{"no expiry", 200, `{"access_token":"a"}`, time.Time{}, "without expiration"},
		{"no token", 200, `{"expires_in":3600}`, time.Time{}, "without access_token"},
		{"malformed JSON", 200, `{"access_token":`, time.Time{}, "decoding IAM answer"},
		{"not JSON", 200, `<html>proxy error</html>`, time.Time{}, "decoding IAM answer"},
		{"wrong type", 200, `{"access_token":"a","expiration":"soon"}`, time.Time{}, "decoding IAM answer"},
		{"too large", 200, `{"access_token":"` + strings.Repeat("a", iamMaxBody) + `","expires_in":3600}`, time.Time{}, "exceeds"},
		{"server error", 500, `{"errorCode":"BXNIM0001E","errorMessage":"x"}`, time.Time{}, "status 500"},
		{"rate limited", 429, `Too Many Requests`, time.Time{}, "status 429"},
		{"not found", 404, ``, time.Time{}, "status 404"},
		{"redirect not followed", 307, ``, time.Time{}, "status 307"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newTestClock()
			f := newFakeIAM(t, clock)
			f.Answer(func(w http.ResponseWriter, r *http.Request, n int64) {
				if n > 1 {
					t.Error("redirect followed")
				}
				if c.status == http.StatusTemporaryRedirect {
					http.Redirect(w, r, "/elsewhere", c.status)
					return
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			})
			tt := newTokensFor(t, f)
			tok, err := tt.token(context.Background(), testAPIKey)
			if !c.expiry.IsZero() {
				require.NoError(t, err)
				assert.Equal(t, "a", tok)
				e := tt.state().entry.Load()
				assert.True(t, e.expiry.Equal(c.expiry), "expiry %v, want %v", e.expiry, c.expiry)
				return
			}
			requireS3Error(t, err, errServiceUnavailable)
			assert.Contains(t, err.Error(), c.errHas)
			assert.Nil(t, tt.state().entry.Load())
		})
	}
}

// newIAMEntry is the cache entry of a token of IAM's answer a, received at
// now.
func newIAMEntry(a iamTokenAnswer, now time.Time, refreshAhead float64) (*expEntry[string], error) {
	expiry, err := iamExpiry(a, now)
	if err != nil {
		return nil, err
	}
	return newExpEntry(a.AccessToken, now, expiry.Sub(now), refreshAhead), nil
}

func TestNewIAMEntryTimes(t *testing.T) {
	now := newTestClock().Now()
	for _, c := range []struct {
		life, margin time.Duration
	}{
		{time.Hour, 30 * time.Second},         // long-lived: 30 s
		{100 * time.Second, 10 * time.Second}, // short-lived: a tenth
	} {
		for range 50 {
			e, err := newIAMEntry(iamTokenAnswer{AccessToken: "a", ExpiresIn: int64(c.life / time.Second)}, now, 0.2)
			require.NoError(t, err)
			assert.True(t, e.useUntil.Equal(e.expiry.Add(-c.margin)))
			window := time.Duration(float64(c.life) * 0.2)
			earliest := e.expiry.Add(-window)
			latest := e.expiry.Add(-window + time.Duration(expRefreshJitter*float64(window)))
			assert.False(t, e.refreshAt.Before(earliest), "refresh starts inside the last fifth")
			assert.False(t, e.refreshAt.After(latest), "refresh start jittered across the window's first quarter")
		}
	}
	// A refresh-ahead window narrower than the margin: no background phase.
	e, err := newIAMEntry(iamTokenAnswer{AccessToken: "a", ExpiresIn: 100}, now, 0.05)
	require.NoError(t, err)
	assert.True(t, e.refreshAt.Equal(e.useUntil))
}

func TestIAMBackoffDelay(t *testing.T) {
	for n := 1; n <= 12; n++ {
		want := min(expBackoffMin<<min(n-1, 6), expBackoffMax)
		for range 100 {
			d := expBackoffDelay(n)
			assert.GreaterOrEqual(t, d, want/2)
			assert.LessOrEqual(t, d, want)
		}
	}
}

func TestIAMKeyIndexBounded(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := testkit.NewIAM(t, clock.Now) // every key
	f.Answer(func(w http.ResponseWriter, r *http.Request, _ int64) {
		f.Token(w, "t-"+r.PostFormValue("apikey"), 3600)
	})
	tt := newTokensFor(t, f)
	tt.maxKeys = 10
	for i := range 35 {
		key := fmt.Sprintf("key-%02d", i)
		tok, err := tt.token(context.Background(), key)
		require.NoError(t, err)
		require.Equal(t, "t-"+key, tok)
		require.LessOrEqual(t, tt.nkeys.Load(), int64(10))
	}
	n := 0
	tt.keys.Range(func(any, any) bool { n++; return true })
	assert.EqualValues(t, tt.nkeys.Load(), n)
	assert.EqualValues(t, 35, f.Calls())
}

func TestIAMClose(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	g := f.Hold(2)
	tt := newTokensFor(t, f)
	ctx := context.Background()
	_, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)

	// A background refresh stuck in IAM is cancelled by close.
	clock.Advance(3300 * time.Second)
	tok, err := tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	require.Equal(t, "tok-1", tok)
	<-g.Arrived
	done := make(chan struct{})
	go func() { tt.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close waits for IAM")
	}
	tt.close() // twice is fine
	assert.Nil(t, tt.state().backoff.Load(), "cancellation by close is no IAM failure")

	// Closed: the cached token is still served, nothing new is exchanged.
	tok, err = tt.token(ctx, testAPIKey)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok)
	_, err = tt.token(ctx, "another-key")
	requireS3Error(t, err, errServiceUnavailable)
	assert.ErrorIs(t, err, errExpiringClosed)
	g.Open()
}

func TestIAMEmptyKey(t *testing.T) {
	clock := newTestClock()
	tt := newTestTokens(t, "http://127.0.0.1:1/identity/token", http.DefaultTransport, clock.Now)
	_, err := tt.token(context.Background(), "")
	requireS3Error(t, err, errIAMKeyRefused)
}

func TestIAMErrorsAreS3Errors(t *testing.T) {
	assert.True(t, errors.Is(errIAMKeyRefused, ErrAccessDenied))
	assert.Equal(t, http.StatusForbidden, errIAMKeyRefused.StatusCode)
	assert.NotSame(t, errAccessDenied, errIAMKeyRefused)
	assert.Equal(t, "Access Denied.", errAccessDenied.Message, "the base error is not modified")
}

func BenchmarkIAMTokenHit(b *testing.B) {
	clock := newTestClock()
	f := newFakeIAM(b, clock)
	cfg := defaultConfig()
	cfg.iamEndpoint = f.URL
	cfg.now = clock.Now
	tt := newIAMTokens(cfg, f.Client().Transport)
	defer tt.close()
	ctx := context.Background()
	if _, err := tt.token(ctx, testAPIKey); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tt.token(ctx, testAPIKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tt.token(ctx, testAPIKey); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func TestIAMSharedExchangeLooksAgain(t *testing.T) {
	checkLeaks(t)
	clock := newTestClock()
	f := newFakeIAM(t, clock)
	tt := newTokensFor(t, f)
	ctx := context.Background()
	d := iamDigest(testAPIKey)
	st := tt.add(d)

	// Another flight has just stored a fresh token: no IAM call.
	fresh, err := newIAMEntry(iamTokenAnswer{AccessToken: "stored", ExpiresIn: 3600}, clock.Now(), 0.2)
	require.NoError(t, err)
	st.entry.Store(fresh)
	got, err := tt.fetchShared(ctx, st, d, testAPIKey)
	require.NoError(t, err)
	assert.Same(t, fresh, got)

	// The key backs off: no IAM call either, the backoff's error.
	st.entry.Store(nil)
	st.backoff.Store(&expBackoff{failures: 1, until: clock.Now().Add(time.Second), err: errServiceUnavailable.with(errors.New("earlier failure"))})
	_, err = tt.fetchShared(ctx, st, d, testAPIKey)
	requireS3Error(t, err, errServiceUnavailable)
	assert.ErrorContains(t, err, "earlier failure")
	assert.EqualValues(t, 0, f.Calls())

	// A token in its refresh window is exchanged for a new one.
	st.backoff.Store(nil)
	st.entry.Store(fresh)
	clock.Advance(3300 * time.Second)
	got, err = tt.fetchShared(ctx, st, d, testAPIKey)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", got.v)
	assert.Same(t, got, st.entry.Load())
}
