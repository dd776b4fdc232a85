package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// IAMPath is the path of IBM Cloud IAM's token endpoint, the one path the fake
// answers.
const IAMPath = "/identity/token"

const iamGrantType = "urn:ibm:params:oauth:grant-type:apikey"

// IAM is a fake IBM Cloud IAM token endpoint on 127.0.0.1. It answers a POST
// of the form grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=<key>
// as IAM does: by default with the token "tok-<n>" for its n-th exchange
// (every request counts), valid for an hour by both expires_in and expiration
// on its clock. Its knobs (Hold, Delay, Answer, Fail, Refuse) apply from the
// next exchange on; all methods are safe for concurrent use. An exchange is
// first held (Hold, then Delay), then answered by the first that applies:
// Answer's function, Fail's error, Refuse's refusal, a token.
//
// A request IAM would not accept from a correct client (another path or
// method, a missing form or Accept header, another grant type, a key that is
// neither known nor refused) fails the test and is answered 400.
type IAM struct {
	// URL is the token endpoint: http://127.0.0.1:<port>/identity/token.
	URL string

	t      testing.TB
	srv    *httptest.Server
	now    func() time.Time
	known  map[string]bool // nil: every non-empty key
	calls  atomic.Int64
	closed chan struct{} // closed at cleanup: held and delayed exchanges end

	mu      sync.Mutex
	perKey  map[string]int64
	issued  map[string]bool
	refused map[string]bool
	status  int
	delay   time.Duration
	gate    *Gate
	answer  func(w http.ResponseWriter, r *http.Request, n int64)
}

// NewIAM starts a fake IAM that tells time by now (time.Now when nil) and
// knows keys (every non-empty key when none is given). It is closed at the
// test's cleanup, after any held exchange is let go.
func NewIAM(t testing.TB, now func() time.Time, keys ...string) *IAM {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	f := &IAM{t: t, now: now, closed: make(chan struct{}),
		perKey: map[string]int64{}, issued: map[string]bool{}, refused: map[string]bool{}}
	if len(keys) > 0 {
		f.known = map[string]bool{}
		for _, k := range keys {
			f.known[k] = true
		}
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL + IAMPath
	t.Cleanup(func() {
		close(f.closed)
		f.srv.Close()
	})
	return f
}

// Addr returns the fake's host:port, for a transport that sends IAM's host
// there.
func (f *IAM) Addr() string { return f.srv.Listener.Addr().String() }

// Client returns an HTTP client for the fake.
func (f *IAM) Client() *http.Client { return f.srv.Client() }

// Now returns the time by the fake's clock.
func (f *IAM) Now() time.Time { return f.now() }

// Calls returns the number of exchanges so far, answered or not.
func (f *IAM) Calls() int64 { return f.calls.Load() }

// CallsFor returns the number of exchanges so far for key, answered or not.
func (f *IAM) CallsFor(key string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perKey[key]
}

// Issued reports whether the fake has answered with the token tok.
func (f *IAM) Issued(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[tok]
}

// Fail makes the exchanges fail with status and an IAM error body
// (BXNIM0001E); status 0 ends the failure.
func (f *IAM) Fail(status int) {
	f.mu.Lock()
	f.status = status
	f.mu.Unlock()
}

// Delay holds each exchange for d before answering it, or until the request
// ends; 0 ends the delay.
func (f *IAM) Delay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// Refuse makes IAM refuse keys as it refuses a key it cannot find: 400 with
// BXNIM0415E.
func (f *IAM) Refuse(keys ...string) {
	f.mu.Lock()
	for _, k := range keys {
		f.refused[k] = true
	}
	f.mu.Unlock()
}

// Answer makes fn answer the exchanges instead of the fake (a token, or the
// failure Fail set); n is the exchange's number. nil ends it. Token and
// WriteJSON help fn write IAM's answers.
func (f *IAM) Answer(fn func(w http.ResponseWriter, r *http.Request, n int64)) {
	f.mu.Lock()
	f.answer = fn
	f.mu.Unlock()
}

// Gate holds exchanges until it is opened (see IAM.Hold).
type Gate struct {
	// Arrived receives the number of each held exchange as it arrives.
	Arrived <-chan int64

	arrived chan int64
	calls   map[int64]bool // nil: every exchange
	open    chan struct{}
	once    sync.Once
}

// Open lets the held exchanges, and those to come, go on. It may be called
// more than once.
func (g *Gate) Open() { g.once.Do(func() { close(g.open) }) }

// Hold holds the exchanges numbered calls (every exchange when none is given)
// until the returned gate opens, the request ends or the test is over. A new
// Hold opens the previous gate.
func (f *IAM) Hold(calls ...int64) *Gate {
	g := &Gate{arrived: make(chan int64, 1000), open: make(chan struct{})}
	g.Arrived = g.arrived
	if len(calls) > 0 {
		g.calls = map[int64]bool{}
		for _, n := range calls {
			g.calls[n] = true
		}
	}
	f.mu.Lock()
	old := f.gate
	f.gate = g
	f.mu.Unlock()
	if old != nil {
		old.Open()
	}
	return g
}

func (f *IAM) serve(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	key, ok := f.check(r, n)
	if !ok {
		f.refuse(w, n)
		return
	}
	f.mu.Lock()
	gate, delay := f.gate, f.delay
	f.mu.Unlock()
	if gate != nil && (gate.calls == nil || gate.calls[n]) {
		select {
		case gate.arrived <- n:
		case <-gate.open:
		case <-r.Context().Done():
		case <-f.closed:
		}
		select {
		case <-gate.open:
		case <-r.Context().Done():
			return
		case <-f.closed:
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-f.closed:
			return
		}
	}
	f.mu.Lock()
	answer, status, refused := f.answer, f.status, f.refused[key]
	f.mu.Unlock()
	switch {
	case answer != nil:
		answer(w, r, n)
	case status != 0:
		WriteJSON(w, status, iamError("BXNIM0001E", http.StatusText(status), n))
	case refused:
		f.refuse(w, n)
	default:
		f.Token(w, fmt.Sprintf("tok-%d", n), 3600)
	}
}

// check checks what a correct client sends, failing the test on anything
// else, counts the exchange for its key and returns the key.
func (f *IAM) check(r *http.Request, n int64) (key string, ok bool) {
	ok = true
	fail := func(format string, args ...any) {
		f.t.Errorf("fake IAM, exchange %d: "+format, append([]any{n}, args...)...)
		ok = false
	}
	if r.URL.Path != IAMPath {
		fail("path %q, want %q", r.URL.Path, IAMPath)
	}
	if r.Method != http.MethodPost {
		fail("method %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		fail("Content-Type %q, want application/x-www-form-urlencoded", ct)
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		fail("Accept %q, want application/json", a)
	}
	if err := r.ParseForm(); err != nil {
		fail("form: %v", err)
	}
	if g := r.PostForm.Get("grant_type"); g != iamGrantType {
		fail("grant_type %q, want %q", g, iamGrantType)
	}
	key = r.PostForm.Get("apikey")
	f.mu.Lock()
	f.perKey[key]++
	known := f.refused[key] || (f.known == nil && key != "") || f.known[key]
	f.mu.Unlock()
	if !known {
		fail("an API key the fake does not know (%d bytes)", len(key))
	}
	return key, ok
}

// refuse answers as IAM does for an API key it cannot find.
func (f *IAM) refuse(w http.ResponseWriter, n int64) {
	WriteJSON(w, http.StatusBadRequest, iamError("BXNIM0415E", "Provided API key could not be found.", n))
}

// Token answers with the token tok, living life seconds by the fake's clock.
func (f *IAM) Token(w http.ResponseWriter, tok string, life int64) {
	f.mu.Lock()
	f.issued[tok] = true
	f.mu.Unlock()
	WriteJSON(w, http.StatusOK, map[string]any{
		"access_token":  tok,
		"refresh_token": "not-used",
		"token_type":    "Bearer",
		"expires_in":    life,
		"expiration":    f.now().Unix() + life,
		"scope":         "ibm openid",
	})
}

func iamError(code, message string, n int64) map[string]any {
	return map[string]any{"errorCode": code, "errorMessage": message,
		"context": map[string]string{"requestId": fmt.Sprintf("fake-iam-%d", n)}}
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
