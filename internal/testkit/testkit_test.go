package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchange posts one token exchange for key as the proxy does and returns the
// status and the decoded answer (status 0 after an error).
func exchange(t *testing.T, f *IAM, key string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {iamGrantType}, "apikey": {key}}.Encode()
	req, err := http.NewRequest(http.MethodPost, f.URL, strings.NewReader(form))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := f.Client().Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Error(err)
		return 0, nil
	}
	return res.StatusCode, body
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) || got.Location() != time.UTC {
		t.Fatalf("Now %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(start.Add(90 * time.Second)) {
		t.Fatalf("after Advance: %v", got)
	}
}

func TestIAMTokensAndCounts(t *testing.T) {
	c := NewClock(time.Unix(1_700_000_000, 0))
	f := NewIAM(t, c.Now, "a", "b")
	for i, key := range []string{"a", "b", "a"} {
		status, body := exchange(t, f, key)
		want := fmt.Sprintf("tok-%d", i+1)
		if status != 200 || body["access_token"] != want || body["expires_in"] != 3600.0 ||
			body["expiration"] != float64(1_700_003_600) {
			t.Fatalf("exchange %d: %d %v", i+1, status, body)
		}
		if !f.Issued(want) {
			t.Errorf("%s not issued", want)
		}
	}
	if f.Calls() != 3 || f.CallsFor("a") != 2 || f.CallsFor("b") != 1 || f.Issued("tok-4") {
		t.Errorf("calls %d, a %d, b %d", f.Calls(), f.CallsFor("a"), f.CallsFor("b"))
	}
}

func TestIAMKnobs(t *testing.T) {
	f := NewIAM(t, nil, "key")
	f.Fail(http.StatusServiceUnavailable)
	if status, body := exchange(t, f, "key"); status != 503 || body["errorCode"] != "BXNIM0001E" {
		t.Errorf("Fail: %d %v", status, body)
	}
	f.Fail(0)
	f.Refuse("key")
	if status, body := exchange(t, f, "key"); status != 400 || body["errorCode"] != "BXNIM0415E" {
		t.Errorf("Refuse: %d %v", status, body)
	}
	f.Answer(func(w http.ResponseWriter, _ *http.Request, n int64) { f.Token(w, fmt.Sprint("custom-", n), 60) })
	if status, body := exchange(t, f, "key"); status != 200 || body["access_token"] != "custom-3" || body["expires_in"] != 60.0 {
		t.Errorf("Answer: %d %v", status, body)
	}
	f.Answer(nil)
	f.Delay(100 * time.Millisecond)
	start := time.Now()
	if status, _ := exchange(t, f, "key"); status != 400 || time.Since(start) < 100*time.Millisecond {
		t.Errorf("Delay: %d after %v", status, time.Since(start))
	}
}

func TestIAMHold(t *testing.T) {
	f := NewIAM(t, nil)
	g := f.Hold(2)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { exchange(t, f, fmt.Sprint("key-", i)) })
		if i == 1 {
			if n := <-g.Arrived; n != 2 {
				t.Errorf("held exchange %d, want 2", n)
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); !(f.Issued("tok-1") && f.Issued("tok-3")) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if f.Issued("tok-2") || !f.Issued("tok-1") || !f.Issued("tok-3") {
		t.Errorf("exchange 2 answered while held, or another one held")
	}
	g.Open()
	wg.Wait()
	if !f.Issued("tok-2") {
		t.Errorf("exchange 2 not answered once the gate opened")
	}
}

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestIAMFailsTheTestOnWrongRequests(t *testing.T) {
	rec := &recorder{TB: t}
	f := NewIAM(rec, nil, "key")
	if status, _ := exchange(t, f, "unknown"); status != 400 {
		t.Errorf("unknown key: %d", status)
	}
	res, err := f.Client().Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("GET: %d", res.StatusCode)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 6 { // the key; then method, Content-Type, Accept, grant_type, the empty key
		t.Errorf("errors: %q", rec.errs)
	}
	if len(rec.errs) > 0 && strings.Contains(rec.errs[0], "unknown") {
		t.Errorf("the key is in the error: %q", rec.errs[0])
	}
}
