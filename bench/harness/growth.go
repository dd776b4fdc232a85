package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/osproxy/proxy/bench/internal/growth"
)

// The growth measurements (-growth): what the proxy costs as the load, its
// configuration and the objects grow, each against the bare proxy measured
// beside it, written as CSV and markdown tables and drawn as PNG plots into
// the plots directory (plot.go):
//
//   - concurrency: 1 KiB GETs with 1 to 512 connections: req/s, p99 latency
//     and the target's CPU per request;
//   - scale: CPU per request and heap with 10 to 100,000 static buckets,
//     hook-routed buckets, cached authorizations, IAM keys and client keys
//     (scale.go);
//   - size: PUT (UNSIGNED-PAYLOAD and hex SHA-256) and GET of 1 KiB to 4 GiB
//     objects: MiB/s and peak RSS.
//
// The processes are placed as for the other measurements: the targets on
// CPU 1 with GOMAXPROCS=1, the origin, the load generator and the clients on
// CPU 0.

var growthFamilies = []string{"concurrency", "scale", "size"}

// growthConfig is how much the growth measurements measure.
type growthConfig struct {
	quick         bool
	duration      time.Duration // one load run (concurrency)
	rounds        int           // load runs per point and target, interleaved (concurrency)
	conns         []int
	scaleNs       []int
	scaleDuration time.Duration // one load run (scale)
	scaleRounds   int
	scaleConns    int
	inProcessTime time.Duration // one in-process run (scale), two per target
	sizes         []int64
	sizeRounds    int           // transfers per size and row; the fastest is kept
	smallTime     time.Duration // repeated transfers of objects under 64 MiB last at least this long
}

func growthConfigOf(o options) growthConfig {
	const kib, mib, gib = 1 << 10, 1 << 20, 1 << 30
	if o.growthQuick {
		return growthConfig{quick: true, duration: time.Second, rounds: 1, conns: []int{1, 4, 16, 64, 256, 512},
			scaleNs: []int{10, 1_000, 10_000}, scaleDuration: time.Second, scaleRounds: 1, scaleConns: o.conns, inProcessTime: 300 * time.Millisecond,
			sizes: []int64{kib, mib, 256 * mib, gib}, sizeRounds: 1, smallTime: 300 * time.Millisecond}
	}
	return growthConfig{duration: 2 * time.Second, rounds: 3, conns: []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		scaleNs: []int{10, 100, 1_000, 10_000, 100_000}, scaleDuration: 2 * time.Second, scaleRounds: 2, scaleConns: o.conns, inProcessTime: 300 * time.Millisecond,
		sizes:      []int64{kib, 64 * kib, mib, 16 * mib, 256 * mib, gib, 4 * gib},
		sizeRounds: 3, smallTime: time.Second}
}

// plotsDir is where the tables and plots go: -plots, else "plots"
// (bench/plots when run with go -C bench), or a new temporary directory for
// -growth-quick.
func plotsDir(o options) (string, error) {
	switch {
	case o.plots != "":
		return o.plots, os.MkdirAll(o.plots, 0o755)
	case o.growthQuick:
		return os.MkdirTemp("", "harness-growth-")
	}
	return "plots", os.MkdirAll("plots", 0o755)
}

// drawPlots runs the plot command on dir: a command of its own, so that the
// harness's processes do not carry the plotting library (see package growth).
// It needs the go command and the bench module's directory as the working
// directory, as with go -C bench run ./harness.
func drawPlots(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join("plot", "main.go")); err != nil {
		fmt.Printf("note: not in the bench module's directory: draw the plots with go -C bench run ./plot -dir %s\n", abs)
		return nil
	}
	cmd := exec.Command("go", "run", "./plot", "-dir", abs)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go run ./plot -dir %s: %w", abs, err)
	}
	return nil
}

func runGrowth(o options) error {
	start := time.Now()
	cfg := growthConfigOf(o)
	only := map[string]bool{}
	for _, f := range strings.Split(o.growthOnly, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(growthFamilies, f) {
			return fmt.Errorf("-growth-only %q: want some of %s", f, strings.Join(growthFamilies, ","))
		}
		only[f] = true
	}
	want := func(f string) bool { return len(only) == 0 || only[f] }
	dir, err := plotsDir(o)
	if err != nil {
		return err
	}
	pl, err := place(o)
	if err != nil {
		return err
	}
	gen, genName, err := pickLoadGen(o.loadgen)
	if err != nil {
		return err
	}
	e := &env{}
	defer e.stop()
	handleSignals(e)
	if err := startEnv(e, pl, 0); err != nil { // the fake IAM answers at once
		return err
	}
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	fmt.Printf("harness -growth (%s): %s, %s, %d CPUs, %s; %s; plots and tables into %s\n",
		mode, runtime.Version(), genName, runtime.NumCPU(), pl, netDesc(), dir)
	if want("concurrency") {
		t0 := time.Now()
		rows, err := growConcurrency(cfg, e, gen)
		if err != nil {
			return err
		}
		if err := growth.WriteConcurrency(dir, rows); err != nil {
			return err
		}
		fmt.Printf("   concurrency: %s\n", time.Since(t0).Round(time.Second))
	}
	if want("scale") {
		t0 := time.Now()
		rows, err := growScale(cfg, e, pl, gen)
		if err != nil {
			return err
		}
		if err := growth.WriteScale(dir, rows); err != nil {
			return err
		}
		fmt.Printf("   scale: %s\n", time.Since(t0).Round(time.Second))
	}
	if want("size") {
		t0 := time.Now()
		rows, err := growSize(cfg, e)
		if err != nil {
			return err
		}
		if err := growth.WriteSize(dir, rows); err != nil {
			return err
		}
		fmt.Printf("   size: %s\n", time.Since(t0).Round(time.Second))
	}
	if err := drawPlots(dir); err != nil {
		return err
	}
	fmt.Printf("\ngrowth done in %s: tables and plots in %s\n", time.Since(start).Round(time.Second), dir)
	return nil
}

func growConcurrency(cfg growthConfig, e *env, gen loadGen) ([]growth.ConcRow, error) {
	fmt.Printf("\n== growth: 1 KiB GETs (SigV4 header) against connections, %d interleaved runs of %s per point (medians)\n",
		cfg.rounds, cfg.duration)
	proxyURL := "http://" + e.proxy.addr + "/" + bucket + "/small"
	bareURL := "http://" + e.bare.addr + "/" + bucket + "/small"
	targets := []struct {
		name string
		proc *child
		url  string
	}{{"bare", e.bare, bareURL}, {"proxy", e.proxy, proxyURL}}
	var rows []growth.ConcRow
	for _, conns := range cfg.conns {
		results := make([][]loadResult, len(targets))
		for r := -1; r < cfg.rounds; r++ {
			if r < 0 && cfg.quick && conns != cfg.conns[0] {
				continue // quick: warm up once
			}
			for i, t := range targets {
				// The bare proxy gets the requests signed for the proxy.
				h, err := signedHeaders(http.MethodGet, proxyURL, emptySHA256, 0, nil)
				if err != nil {
					return nil, err
				}
				d := cfg.duration
				if r < 0 {
					d = time.Second // warm up: connections, the upstream pool
				}
				cpu0, err := cpuTime(t.proc.pid())
				if err != nil {
					return nil, err
				}
				t0 := time.Now()
				res, err := gen([]getRequest{{t.url, h}}, conns, d)
				if err == nil && res.rps == 0 {
					err = errors.New("no request answered")
				}
				if err != nil {
					return nil, fmt.Errorf("%s, %d connections: %w", t.name, conns, err)
				}
				if res.bad > 0 {
					return nil, fmt.Errorf("%s, %d connections: %d failed requests", t.name, conns, res.bad)
				}
				res.elapsed = time.Since(t0)
				cpu1, _ := cpuTime(t.proc.pid())
				res.cpu = cpu1 - cpu0
				if r >= 0 {
					results[i] = append(results[i], res)
				}
			}
		}
		var line []string
		for i, t := range targets {
			m := medianLoad(results[i])
			rows = append(rows, growth.ConcRow{Conns: conns, Target: t.name, RPS: m.rps, P50: m.p50, P99: m.p99, CPUPerReq: cpuPerReq(m)})
			line = append(line, fmt.Sprintf("%s %.0f req/s, p99 %s, %.1f µs/req", t.name, m.rps, growth.Round(m.p99), cpuPerReq(m)))
		}
		b, p := rows[len(rows)-2], rows[len(rows)-1]
		fmt.Printf("%4d connections: %s; %.2f× req/s, %.2f× p99\n", conns, strings.Join(line, "; "), p.RPS/b.RPS, growth.Ratio(p.P99, b.P99))
	}
	return rows, nil
}

func growScale(cfg growthConfig, e *env, pl placement, gen loadGen) ([]growth.ScaleRow, error) {
	fmt.Printf("\n== growth: CPU per request and heap against n things, 1 KiB GETs spread over all n, %d connections, "+
		"%d interleaved runs of %s per target (lowest CPU per request)\n", cfg.scaleConns, cfg.scaleRounds, cfg.scaleDuration)
	rng := rand.New(rand.NewPCG(22, 4))
	var rows []growth.ScaleRow
	for _, kind := range growth.ScaleKinds {
		for _, n := range cfg.scaleNs {
			row, err := scalePoint(cfg, e, pl, gen, rng, kind, n)
			if err != nil {
				return nil, fmt.Errorf("%s=%d: %w", kind, n, err)
			}
			rows = append(rows, row)
			extra := ""
			if row.Misses > 0 {
				extra = fmt.Sprintf(", %d cache misses (IAM exchanges, hook calls) under load", row.Misses)
			}
			if row.Bad > 0 {
				extra += fmt.Sprintf(", %d FAILED requests", row.Bad)
			}
			if row.IPIAM > 0 {
				extra += fmt.Sprintf(", in process %.2f IAM exchanges per request", row.IPIAM)
			}
			fmt.Printf("%-15s %7d: bare %.1f µs/req, proxy %.1f µs/req (%.2f×); in process bare %.1f µs, proxy %.1f µs (%.2f×), %.0f allocs; "+
				"proxy heap %.1f MiB, RSS %.1f MiB; warmed in %s%s\n",
				kind, n, row.BareCPU, row.ProxyCPU, row.ProxyCPU/row.BareCPU, row.IPBareNs/1e3, row.IPProxyNs/1e3, row.IPProxyNs/row.IPBareNs,
				row.IPProxyAllocs, float64(row.Heap)/(1<<20), float64(row.RSS)/(1<<20), row.Warm.Round(100*time.Millisecond), extra)
		}
	}
	return rows, nil
}

func scalePoint(cfg growthConfig, e *env, pl placement, gen loadGen, rng *rand.Rand, kind string, n int) (growth.ScaleRow, error) {
	row := growth.ScaleRow{Kind: kind, N: n}
	c, err := startChild(fmt.Sprintf("proxy %s=%d", kind, n), "proxy-scale", pl.targetCPU, []string{"GOMAXPROCS=1"},
		"-origin", e.origin.addr, "-iam", e.iam.url, "-scale", kind, "-n", strconv.Itoa(n))
	if err != nil {
		return row, err
	}
	e.extra = append(e.extra, c)
	defer func() {
		c.stop()
		e.extra = slices.DeleteFunc(e.extra, func(x *child) bool { return x == c })
	}()
	order := rng.Perm(n)
	reqs, err := scaleRequests(kind, n, c.addr, order)
	if err != nil {
		return row, err
	}
	t0 := time.Now()
	if err := warm(reqs, 32); err != nil {
		return row, err
	}
	row.Warm = time.Since(t0)
	// The bare proxy gets the same requests.
	bareReqs := make([]getRequest, len(reqs))
	for i, r := range reqs {
		bareReqs[i] = getRequest{strings.Replace(r.url, c.addr, e.bare.addr, 1), r.h}
	}
	before, err := childMem(c.addr) // also settles the heap before the load
	if err != nil {
		return row, err
	}
	exchanges := e.iam.total()
	for range cfg.scaleRounds {
		for _, t := range []struct {
			proc *child
			reqs []getRequest
			cpu  *float64
			rps  *float64
		}{{e.bare, bareReqs, &row.BareCPU, &row.BareRPS}, {c, reqs, &row.ProxyCPU, &row.ProxyRPS}} {
			cpu0, err := cpuTime(t.proc.pid())
			if err != nil {
				return row, err
			}
			t1 := time.Now()
			res, err := gen(t.reqs, cfg.scaleConns, cfg.scaleDuration)
			if err != nil {
				return row, err
			}
			res.elapsed = time.Since(t1)
			cpu1, _ := cpuTime(t.proc.pid())
			res.cpu = cpu1 - cpu0
			row.Bad += res.bad
			v := cpuPerReq(res)
			if v <= 0 { // no request counted, or no CPU time: a run that did not happen
				fmt.Printf("   note: %s=%d, %s: a run without requests or CPU time (%d requests, %s), left out\n",
					kind, n, t.proc.name, res.requests, res.cpu)
				continue
			}
			if *t.cpu == 0 || v < *t.cpu {
				*t.cpu, *t.rps = v, res.rps
			}
		}
	}
	m, err := childMem(c.addr)
	if err != nil {
		return row, err
	}
	row.Misses = e.iam.total() - exchanges + int(m.HookCalls-before.HookCalls)
	bm, err := childMem(e.bare.addr)
	if err != nil {
		return row, err
	}
	row.Heap, row.BareHeap = m.HeapAlloc, bm.HeapAlloc
	if row.RSS, err = vmRSS(c.pid()); err != nil {
		return row, err
	}
	c.stop()

	// The same requests in process, in the harness (on the load CPU, idle now).
	ip, err := newInProcess(kind, n, reqs)
	if err != nil {
		return row, err
	}
	defer ip.close()
	for r := range 2 {
		pr, br := ip.run(ip.proxy, cfg.inProcessTime), ip.run(ip.bare, cfg.inProcessTime)
		if pr.bad+br.bad > 0 {
			return row, fmt.Errorf("in process: %d failed requests", pr.bad+br.bad)
		}
		if r == 0 || pr.ns < row.IPProxyNs {
			row.IPProxyNs, row.IPProxyAllocs, row.IPIAM = pr.ns, pr.allocs, pr.iam
		}
		if r == 0 || br.ns < row.IPBareNs {
			row.IPBareNs, row.IPBareAllocs = br.ns, br.allocs
		}
	}
	return row, nil
}

// warm sends every request once, conc at a time, and wants 200 for each.
func warm(reqs []getRequest, conc int) error {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var (
		next  int
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= len(reqs) {
					return
				}
				err := getOnce(client, reqs[i])
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("warming up, %s: %w", reqs[i].url, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func getOnce(client *http.Client, req getRequest) error {
	r, err := http.NewRequest(http.MethodGet, req.url, nil)
	if err != nil {
		return err
	}
	r.Header = req.h.Clone()
	resp, err := client.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// childMem asks a child for its memory figures.
func childMem(addr string) (memStats, error) {
	var m memStats
	resp, err := http.Get("http://" + addr + memStatsPath)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("%s: status %d", memStatsPath, resp.StatusCode)
	}
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// vmRSS returns a process's resident set size in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func growSize(cfg growthConfig, e *env) ([]growth.SizeRow, error) {
	fmt.Printf("\n== growth: throughput and peak RSS against object size, one connection, best of %d; "+
		"objects under 64 MiB sent again and again for at least %s\n", cfg.sizeRounds, cfg.smallTime)
	client := streamClient()
	defer client.CloseIdleConnections()
	var rows []growth.SizeRow
	for _, size := range cfg.sizes {
		key := "/" + bucket + "/size-" + strconv.FormatInt(size, 10)
		proxyURL := "http://" + e.proxy.addr + key
		bareURL := "http://" + e.bare.addr + key
		sum := bodySum(size)
		// Signed once per size: the proxy does not refuse replays, and the
		// signatures stay within the clock skew for the rounds.
		hUnsigned, err := signedHeaders(http.MethodPut, proxyURL, unsignedPayload, size, nil)
		if err != nil {
			return nil, err
		}
		hSum, err := signedHeaders(http.MethodPut, proxyURL, sum, size, nil)
		if err != nil {
			return nil, err
		}
		hGet, err := signedHeaders(http.MethodGet, proxyURL, emptySHA256, 0, nil)
		if err != nil {
			return nil, err
		}
		runs := []func() (int64, error){
			func() (int64, error) { return put(client, bareURL, hUnsigned, newGenerator(size), size, size) },
			func() (int64, error) { return put(client, proxyURL, hUnsigned, newGenerator(size), size, size) },
			func() (int64, error) { return put(client, proxyURL, hSum, newGenerator(size), size, size) },
			func() (int64, error) { return get(client, bareURL, hGet, size) },
			func() (int64, error) { return get(client, proxyURL, hGet, size) },
		}
		minTime := time.Duration(0)
		if size < 64<<20 {
			minTime = cfg.smallTime
		}
		best := make([]growth.SizeRow, len(growth.SizeOps))
		for r := range cfg.sizeRounds {
			for i, op := range growth.SizeOps {
				proc := e.bare
				if op.Target == "proxy" {
					proc = e.proxy
				}
				// Settle the target's heap and RSS first, so that the peak is
				// this size's and not what earlier measurements left.
				if _, err := childMem(proc.addr); err != nil {
					return nil, err
				}
				count := 0
				res, err := measure(proc.pid(), func() (int64, error) {
					var total int64
					t0 := time.Now()
					for {
						n, err := runs[i]()
						total += n
						count++
						if err != nil || time.Since(t0) >= minTime {
							return total, err
						}
					}
				})
				if err != nil {
					return nil, fmt.Errorf("%s %s through %s: %w", sizeName(size), op.Op, op.Target, err)
				}
				row := growth.SizeRow{Size: size, Target: op.Target, Op: op.Op, Base: op.Base, MiBps: res.mibps(),
					CPUPerGiB: res.cpuPerGiB().Seconds(), Peak: res.peak, Transfers: count}
				if r == 0 || row.MiBps > best[i].MiBps {
					row.Peak = max(row.Peak, best[i].Peak)
					best[i] = row
				} else {
					best[i].Peak = max(best[i].Peak, row.Peak)
				}
			}
		}
		rows = append(rows, best...)
		var line []string
		for _, b := range best {
			line = append(line, fmt.Sprintf("%s %s %.0f MiB/s %.1f MiB", b.Target, b.Op, b.MiBps, float64(b.Peak)/(1<<20)))
		}
		fmt.Printf("%6s: %s\n", growth.SizeLabel(size), strings.Join(line, "; "))
	}
	return rows, nil
}
