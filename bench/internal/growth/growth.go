// Package growth holds the rows of the harness's growth measurements
// (go -C bench run ./harness -growth) and their files: a CSV file per family,
// which the plot command draws from, and a markdown table, which
// bench/README.md shows. It imports no plotting library: the harness's
// processes (the bare proxy and the proxy among them) are the harness binary,
// and a plotting library's initialization (gonum.org/v1/plot parses its fonts
// at start) would add megabytes to the RSS they measure.
package growth

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ScaleKinds are the things the scale measurements have many of.
var ScaleKinds = []string{"static-buckets", "hook-buckets", "authorizations", "iam-keys", "client-keys"}

// ScaleTitles names them for tables and plots.
var ScaleTitles = map[string]string{
	"static-buckets": "static buckets",
	"hook-buckets":   "hook-routed buckets",
	"authorizations": "cached authorizations",
	"iam-keys":       "IAM keys",
	"client-keys":    "client keys",
}

// SizeOps are the operations of the size measurements: target, operation, and
// the bare operation it is compared with.
var SizeOps = []struct{ Target, Op, Base string }{
	{"bare", "PUT", "PUT"},
	{"proxy", "PUT UNSIGNED-PAYLOAD", "PUT"},
	{"proxy", "PUT hex SHA-256", "PUT"},
	{"bare", "GET", "GET"},
	{"proxy", "GET", "GET"},
}

// ConcRow is one target at one number of connections: 1 KiB GETs.
type ConcRow struct {
	Conns     int
	Target    string // "bare" or "proxy"
	RPS       float64
	P50, P99  time.Duration
	CPUPerReq float64 // the target's CPU µs per request
}

// ScaleRow is one configuration of the scale measurements.
type ScaleRow struct {
	Kind              string
	N                 int
	BareCPU, ProxyCPU float64 // CPU µs per request, the lowest of the rounds
	BareRPS, ProxyRPS float64 // with the lowest CPU per request
	Heap, BareHeap    uint64  // live heap after a collection, after the load
	RSS               int64   // the proxy's VmRSS after that collection
	Misses            int     // IAM exchanges and hook calls during the measured runs: cache misses
	Bad               int     // failed requests during the measured runs
	Warm              time.Duration
	// In process: ns and allocations per request, the lowest of the rounds,
	// and IAM exchanges per request.
	IPProxyNs, IPBareNs         float64
	IPProxyAllocs, IPBareAllocs float64
	IPIAM                       float64
}

// SizeRow is one operation on objects of one size through one target.
type SizeRow struct {
	Size      int64
	Target    string // "bare" or "proxy"
	Op        string // e.g. "PUT hex SHA-256"
	Base      string // the bare operation it is compared with: "PUT" or "GET"
	MiBps     float64
	CPUPerGiB float64 // s
	Peak      int64   // VmHWM over the transfers
	Transfers int     // transfers in the fastest measurement
}

// ---- concurrency

// WriteConcurrency writes concurrency.csv and concurrency.md into dir.
func WriteConcurrency(dir string, rows []ConcRow) error {
	recs := [][]string{{"connections", "target", "req_per_s", "p50_us", "p99_us", "cpu_us_per_req"}}
	for _, r := range rows {
		recs = append(recs, []string{strconv.Itoa(r.Conns), r.Target, ftoa(r.RPS, 1), ftoa(us(r.P50), 1), ftoa(us(r.P99), 1), ftoa(r.CPUPerReq, 2)})
	}
	if err := writeCSV(filepath.Join(dir, "concurrency.csv"), recs); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("| connections | bare req/s | proxy req/s | ×bare | bare p99 | proxy p99 | ×bare | bare CPU µs/req | proxy CPU µs/req | ×bare |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range ConcPairs(rows) {
		bare, prx := p[0], p[1]
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.2f | %s | %s | %.2f | %.1f | %.1f | %.2f |\n", bare.Conns, bare.RPS, prx.RPS, prx.RPS/bare.RPS,
			Round(bare.P99), Round(prx.P99), Ratio(prx.P99, bare.P99), bare.CPUPerReq, prx.CPUPerReq, prx.CPUPerReq/bare.CPUPerReq)
	}
	return os.WriteFile(filepath.Join(dir, "concurrency.md"), b.Bytes(), 0o644)
}

// ReadConcurrency reads concurrency.csv in dir.
func ReadConcurrency(dir string) ([]ConcRow, error) {
	recs, err := readCSV(filepath.Join(dir, "concurrency.csv"), 6)
	if err != nil {
		return nil, err
	}
	var rows []ConcRow
	for _, r := range recs {
		var p parser
		rows = append(rows, ConcRow{Conns: p.int(r[0]), Target: r[1], RPS: p.float(r[2]), P50: p.us(r[3]), P99: p.us(r[4]), CPUPerReq: p.float(r[5])})
		if p.err != nil {
			return nil, fmt.Errorf("concurrency.csv: %w", p.err)
		}
	}
	return rows, nil
}

// ConcPairs groups the rows into [bare, proxy] pairs by connections.
func ConcPairs(rows []ConcRow) [][2]ConcRow {
	var out [][2]ConcRow
	for i := 0; i+1 < len(rows); i += 2 {
		if rows[i].Conns == rows[i+1].Conns && rows[i].Target == "bare" {
			out = append(out, [2]ConcRow{rows[i], rows[i+1]})
		}
	}
	return out
}

// ---- scale

// WriteScale writes scale.csv and scale.md into dir.
func WriteScale(dir string, rows []ScaleRow) error {
	recs := [][]string{{"kind", "n", "bare_cpu_us_per_req", "proxy_cpu_us_per_req", "bare_req_per_s", "proxy_req_per_s",
		"proxy_heap_bytes", "bare_heap_bytes", "proxy_rss_bytes", "cache_misses", "failed", "warm_s",
		"inprocess_bare_ns", "inprocess_proxy_ns", "inprocess_bare_allocs", "inprocess_proxy_allocs", "inprocess_iam_per_req"}}
	for _, r := range rows {
		recs = append(recs, []string{r.Kind, strconv.Itoa(r.N), ftoa(r.BareCPU, 2), ftoa(r.ProxyCPU, 2), ftoa(r.BareRPS, 1), ftoa(r.ProxyRPS, 1),
			strconv.FormatUint(r.Heap, 10), strconv.FormatUint(r.BareHeap, 10), strconv.FormatInt(r.RSS, 10),
			strconv.Itoa(r.Misses), strconv.Itoa(r.Bad), ftoa(r.Warm.Seconds(), 1),
			ftoa(r.IPBareNs, 0), ftoa(r.IPProxyNs, 0), ftoa(r.IPBareAllocs, 1), ftoa(r.IPProxyAllocs, 1), ftoa(r.IPIAM, 3)})
	}
	if err := writeCSV(filepath.Join(dir, "scale.csv"), recs); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("| what | n | bare CPU µs/req | proxy CPU µs/req | ×bare | in process: bare µs | proxy µs | ×bare | proxy allocs | " +
		"proxy live heap MiB | heap per item, bytes | proxy RSS MiB | cache misses under load |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		per := "—"
		if v, ok := HeapPerItem(rows, r); ok {
			per = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f | %.0f | %.1f | %s | %.1f | %d |\n", ScaleTitles[r.Kind], r.N,
			r.BareCPU, r.ProxyCPU, r.ProxyCPU/r.BareCPU, r.IPBareNs/1e3, r.IPProxyNs/1e3, r.IPProxyNs/r.IPBareNs, r.IPProxyAllocs,
			float64(r.Heap)/(1<<20), per, float64(r.RSS)/(1<<20), r.Misses)
	}
	return os.WriteFile(filepath.Join(dir, "scale.md"), b.Bytes(), 0o644)
}

// HeapPerItem is the heap a row's configuration holds per thing beyond the
// smallest configuration of its kind, when it has at least a thousand times as
// many things (with fewer the difference is within the noise of a collected
// heap).
func HeapPerItem(rows []ScaleRow, r ScaleRow) (float64, bool) {
	var first *ScaleRow
	for i := range rows {
		if rows[i].Kind == r.Kind && (first == nil || rows[i].N < first.N) {
			first = &rows[i]
		}
	}
	if first == nil || r.N < first.N*1000 {
		return 0, false
	}
	return (float64(r.Heap) - float64(first.Heap)) / float64(r.N-first.N), true
}

// ReadScale reads scale.csv in dir.
func ReadScale(dir string) ([]ScaleRow, error) {
	recs, err := readCSV(filepath.Join(dir, "scale.csv"), 17)
	if err != nil {
		return nil, err
	}
	var rows []ScaleRow
	for _, r := range recs {
		var p parser
		rows = append(rows, ScaleRow{Kind: r[0], N: p.int(r[1]), BareCPU: p.float(r[2]), ProxyCPU: p.float(r[3]),
			BareRPS: p.float(r[4]), ProxyRPS: p.float(r[5]), Heap: uint64(p.int(r[6])), BareHeap: uint64(p.int(r[7])),
			RSS: int64(p.int(r[8])), Misses: p.int(r[9]), Bad: p.int(r[10]), Warm: time.Duration(p.float(r[11]) * float64(time.Second)),
			IPBareNs: p.float(r[12]), IPProxyNs: p.float(r[13]), IPBareAllocs: p.float(r[14]), IPProxyAllocs: p.float(r[15]), IPIAM: p.float(r[16])})
		if p.err != nil {
			return nil, fmt.Errorf("scale.csv: %w", p.err)
		}
	}
	return rows, nil
}

// ---- size

// WriteSize writes size.csv and size.md into dir.
func WriteSize(dir string, rows []SizeRow) error {
	recs := [][]string{{"size_bytes", "target", "operation", "baseline", "mib_per_s", "cpu_s_per_gib", "peak_rss_bytes", "transfers"}}
	for _, r := range rows {
		recs = append(recs, []string{strconv.FormatInt(r.Size, 10), r.Target, r.Op, r.Base, ftoa(r.MiBps, 2), ftoa(r.CPUPerGiB, 3),
			strconv.FormatInt(r.Peak, 10), strconv.Itoa(r.Transfers)})
	}
	if err := writeCSV(filepath.Join(dir, "size.csv"), recs); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("| size | target | operation | MiB/s | ×bare | CPU s/GiB | ×bare | peak RSS MiB | ×bare | transfers |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		base := SizeBase(rows, r)
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.2f | %.2f | %.2f | %.1f | %.2f | %d |\n", SizeLabel(r.Size), r.Target, r.Op, r.MiBps,
			r.MiBps/base.MiBps, r.CPUPerGiB, r.CPUPerGiB/base.CPUPerGiB, float64(r.Peak)/(1<<20), float64(r.Peak)/float64(base.Peak), r.Transfers)
	}
	return os.WriteFile(filepath.Join(dir, "size.md"), b.Bytes(), 0o644)
}

// SizeBase is the bare row a row is compared with.
func SizeBase(rows []SizeRow, r SizeRow) SizeRow {
	for _, b := range rows {
		if b.Size == r.Size && b.Target == "bare" && b.Op == r.Base {
			return b
		}
	}
	return SizeRow{}
}

// ReadSize reads size.csv in dir.
func ReadSize(dir string) ([]SizeRow, error) {
	recs, err := readCSV(filepath.Join(dir, "size.csv"), 8)
	if err != nil {
		return nil, err
	}
	var rows []SizeRow
	for _, r := range recs {
		var p parser
		rows = append(rows, SizeRow{Size: int64(p.int(r[0])), Target: r[1], Op: r[2], Base: r[3], MiBps: p.float(r[4]),
			CPUPerGiB: p.float(r[5]), Peak: int64(p.int(r[6])), Transfers: p.int(r[7])})
		if p.err != nil {
			return nil, fmt.Errorf("size.csv: %w", p.err)
		}
	}
	return rows, nil
}

// SizeLabel names a size for tables and plots: 1 KiB, 64 KiB, 4 GiB.
func SizeLabel(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// ---- numbers and files

// Ratio is a / b, 0 when b is.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Round rounds a latency for printing.
func Round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

func writeCSV(path string, recs [][]string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(recs); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// readCSV reads a CSV file with a header line and width fields a record, and
// returns the records after the header.
func readCSV(path string, width int) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = width
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("%s: no records", path)
	}
	return recs[1:], nil
}

// parser parses numbers and keeps the first error.
type parser struct{ err error }

func (p *parser) float(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && p.err == nil {
		p.err = err
	}
	return v
}

func (p *parser) int(s string) int {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = err
	}
	return int(v)
}

func (p *parser) us(s string) time.Duration {
	return time.Duration(p.float(s) * float64(time.Microsecond))
}

func ftoa(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
