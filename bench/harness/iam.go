package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fakeIAM is an IBM Cloud IAM token endpoint stand-in that counts exchanges
// per API key and answers each after delay, so that concurrent cold requests
// overlap the exchange.
type fakeIAM struct {
	srv   *http.Server
	url   string
	delay time.Duration
	mu    sync.Mutex
	count map[string]int
}

func startFakeIAM(delay time.Duration) (*fakeIAM, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeIAM{delay: delay, count: map[string]int{}, url: "http://" + ln.Addr().String() + "/identity/token"}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *fakeIAM) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" {
		http.Error(w, `{"errorCode":"BXNIM0109E","errorMessage":"bad request"}`, http.StatusBadRequest)
		return
	}
	key := r.PostForm.Get("apikey")
	f.mu.Lock()
	f.count[key]++
	n := f.count[key]
	f.mu.Unlock()
	time.Sleep(f.delay)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": fmt.Sprintf("harness-token-%d", n),
		"token_type":   "Bearer",
		"expires_in":   3600,
		"expiration":   time.Now().Add(time.Hour).Unix(),
	})
}

func (f *fakeIAM) exchanges(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[key]
}

// total is the number of exchanges for all API keys.
func (f *fakeIAM) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.count {
		n += c
	}
	return n
}

func (f *fakeIAM) close() { _ = f.srv.Close() }

// coldResult is the outcome of n concurrent requests for a bucket whose API
// key has no token yet.
type coldResult struct {
	n, ok     int
	exchanges int
	p50, p99  time.Duration
	statuses  map[int]int
	errs      int
}

// coldIAM sends n concurrent signed GETs, released at once, for the cold IAM
// bucket through the proxy, each on its own connection.
func coldIAM(proxyAddr string, f *fakeIAM, n int) (coldResult, error) {
	rawURL := "http://" + proxyAddr + "/" + coldBucket + "/small"
	h, err := signedHeaders(http.MethodGet, rawURL, emptySHA256, 0, nil)
	if err != nil {
		return coldResult{}, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	res := coldResult{n: n, statuses: map[int]int{}}
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	var ready atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := http.NewRequest(http.MethodGet, rawURL, nil)
			if err != nil {
				return
			}
			r.Header = h.Clone()
			ready.Add(1)
			<-start
			t0 := time.Now()
			resp, err := client.Do(r)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errs++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			res.statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusOK {
				res.ok++
			}
			lat = append(lat, d)
		}()
	}
	for ready.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	close(start)
	wg.Wait()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.p50 = lat[len(lat)*50/100]
		res.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	res.exchanges = f.exchanges(coldAPIKey)
	return res, nil
}
