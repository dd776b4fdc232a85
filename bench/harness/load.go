package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one run of the load generator against one target.
type loadResult struct {
	requests int
	rps      float64
	p50, p99 time.Duration
	bad      int           // non-2xx answers and socket errors
	cpu      time.Duration // CPU time the target process used meanwhile
	elapsed  time.Duration
}

// getRequest is one GET to send: a URL and its headers.
type getRequest struct {
	url string
	h   http.Header
}

// loadGen drives GETs for a duration: the requests in turn, round robin (all
// for the same host).
type loadGen func(reqs []getRequest, conns int, d time.Duration) (loadResult, error)

// wrkLoad runs wrk (one thread, conns connections) with --latency. More than
// one request goes through a Lua script that hands them out in turn.
func wrkLoad(reqs []getRequest, conns int, d time.Duration) (loadResult, error) {
	if len(reqs) == 0 {
		return loadResult{}, errors.New("wrk: no request")
	}
	secs := max(1, int(math.Ceil(d.Seconds())))
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(secs) + "s", "--latency", "--timeout", "10s"}
	if len(reqs) == 1 {
		for k, vs := range reqs[0].h {
			for _, v := range vs {
				args = append(args, "-H", k+": "+v)
			}
		}
	} else {
		dir, err := os.MkdirTemp("", "harness-wrk-")
		if err != nil {
			return loadResult{}, err
		}
		defer os.RemoveAll(dir)
		script, err := writeWrkScript(dir, reqs)
		if err != nil {
			return loadResult{}, err
		}
		args = append(args, "-s", script)
	}
	args = append(args, reqs[0].url)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(out)
}

// wrkScript reads the requests from a file, one a line (the path and query,
// then "name: value" headers, separated by tabs), formats each once and hands
// them out in turn. Reading them from a file keeps the script small: LuaJIT
// bounds the constants of one chunk. They are formatted in init, after wrk set
// the Host header from the URL.
const wrkScript = `local reqs, n, i = {}, 0, 0
init = function(args)
  for line in io.lines(%q) do
    local path, headers, first = nil, {}, true
    for f in string.gmatch(line, "[^\t]+") do
      if first then
        path, first = f, false
      else
        local k, v = string.match(f, "^([^:]+): (.*)$")
        headers[k] = v
      end
    end
    n = n + 1
    reqs[n] = wrk.format("GET", path, headers)
  end
end
request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
`

func writeWrkScript(dir string, reqs []getRequest) (string, error) {
	var b bytes.Buffer
	for _, r := range reqs {
		u, err := url.Parse(r.url)
		if err != nil {
			return "", err
		}
		b.WriteString(u.RequestURI())
		for k, vs := range r.h {
			for _, v := range vs {
				if strings.ContainsAny(k+v, "\t\r\n") {
					return "", fmt.Errorf("wrk: header %s: %q cannot go in the request file", k, v)
				}
				fmt.Fprintf(&b, "\t%s: %s", k, v)
			}
		}
		b.WriteByte('\n')
	}
	data := filepath.Join(dir, "requests.txt")
	if err := os.WriteFile(data, b.Bytes(), 0o600); err != nil {
		return "", err
	}
	script := filepath.Join(dir, "requests.lua")
	return script, os.WriteFile(script, fmt.Appendf(nil, wrkScript, data), 0o600)
}

// parseWrk reads wrk's report: Requests/sec, the 50% and 99% latencies of
// --latency, the request count and the error lines.
func parseWrk(out []byte) (loadResult, error) {
	var res loadResult
	var haveRPS bool
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		f := strings.Fields(s.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return res, fmt.Errorf("wrk: %q", s.Text())
			}
			res.rps, haveRPS = v, true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return res, err
			}
			if f[0] == "50%" {
				res.p50 = d
			} else {
				res.p99 = d
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			res.requests, _ = strconv.Atoi(f[0])
		case len(f) >= 4 && strings.Join(f[:3], " ") == "Non-2xx or 3xx":
			n, _ := strconv.Atoi(f[len(f)-1])
			res.bad += n
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				res.bad += n
			}
		}
	}
	if !haveRPS {
		return res, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	return res, nil
}

// parseWrkDuration parses wrk's "635.00us", "2.15ms", "1.02s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk latency %q", s)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk latency %q", s)
}

// goLoad is the load generator for machines without wrk: conns goroutines,
// each with its own keep-alive connection, sending back to back.
func goLoad(reqs []getRequest, conns int, d time.Duration) (loadResult, error) {
	if len(reqs) == 0 {
		return loadResult{}, errors.New("no request")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu   sync.Mutex
		all  []time.Duration
		bad  int
		wg   sync.WaitGroup
		errs []error
		next atomic.Uint64
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			nbad := 0
			for ctx.Err() == nil {
				req := reqs[(next.Add(1)-1)%uint64(len(reqs))]
				r, err := http.NewRequestWithContext(ctx, http.MethodGet, req.url, nil)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				r.Header = req.h.Clone()
				t0 := time.Now()
				resp, err := client.Do(r)
				if err != nil {
					if ctx.Err() == nil {
						nbad++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					nbad++
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			bad += nbad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) > 0 {
		return loadResult{}, errs[0]
	}
	slices.Sort(all)
	res := loadResult{requests: len(all), bad: bad, rps: float64(len(all)) / elapsed.Seconds()}
	if len(all) > 0 {
		res.p50 = all[len(all)*50/100]
		res.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return res, nil
}
