// Command ratios reads `go test -bench` output (any number of runs of the same
// benchmarks) and prints, per benchmark, the median ns/op, MB/s, B/op and
// allocs/op, and the ratio of each to its bare-proxy baseline from the same
// input: the proxy's GETs to BenchmarkBareReverseProxy/GET-1KiB, its PUTs to
// BenchmarkBareReverseProxy/PUT-1MiB, BenchmarkInProcess/proxy-* to
// BenchmarkInProcess/bare. Other benchmarks are listed without a ratio.
//
//	go test -run '^$' -bench . -benchmem -count 5 . | go -C bench run ./ratios
//	go -C bench run ./ratios /tmp/bench-*.txt
package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// baselines maps a benchmark name pattern to the name of its baseline.
var baselines = []struct {
	re   *regexp.Regexp
	base string
}{
	{regexp.MustCompile(`^BenchmarkProxy\w*GET$`), "BenchmarkBareReverseProxy/GET-1KiB"},
	{regexp.MustCompile(`^BenchmarkProxy\w*PUT$`), "BenchmarkBareReverseProxy/PUT-1MiB"},
	{regexp.MustCompile(`^BenchmarkInProcess/`), "BenchmarkInProcess/bare"},
}

// Targets of issue 6 for the full GET path, against the bare proxy.
const targetRatio = 1.2

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type sample struct{ ns, mbs, bytes, allocs float64 }

func main() {
	var in []io.Reader
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}
	runs := map[string][]sample{}
	var order []string
	for _, r := range in {
		s := bufio.NewScanner(r)
		for s.Scan() {
			m := lineRE.FindStringSubmatch(s.Text())
			if m == nil {
				continue
			}
			name := m[1]
			if _, seen := runs[name]; !seen {
				order = append(order, name)
			}
			runs[name] = append(runs[name], parse(m[2]))
		}
		if err := s.Err(); err != nil {
			log.Fatal(err)
		}
	}
	if len(order) == 0 {
		log.Fatal("no benchmark results in the input")
	}
	med := map[string]sample{}
	for name, ss := range runs {
		med[name] = median(ss)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "benchmark\truns\tns/op\t×bare\tMB/s\tB/op\t×bare\tallocs/op\t×bare\tbaseline\t")
	var verdicts []string
	for _, name := range order {
		m := med[name]
		base, baseName := sample{}, ""
		for _, b := range baselines {
			if b.re.MatchString(name) && name != b.base {
				base, baseName = med[b.base], b.base
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t\n", name, len(runs[name]),
			m.ns, rat(m.ns, base.ns), mbs(m.mbs), m.bytes, rat(m.bytes, base.bytes), m.allocs, rat(m.allocs, base.allocs),
			strings.TrimPrefix(baseName, "Benchmark"))
		if name == "BenchmarkProxyGET" && base.ns > 0 {
			verdicts = append(verdicts,
				verdict(m.ns/base.ns, "BenchmarkProxyGET ns/op"),
				verdict(m.allocs/base.allocs, "BenchmarkProxyGET allocs/op"))
		}
	}
	_ = w.Flush()
	if len(verdicts) > 0 {
		fmt.Println()
		for _, v := range verdicts {
			fmt.Println(v)
		}
	}
}

func verdict(r float64, what string) string {
	mark := "PASS"
	if r > targetRatio {
		mark = "FAIL"
	}
	return fmt.Sprintf("%s  %s: %.2f× bare (target ≤ %.1f)", mark, what, r, targetRatio)
}

// parse reads the "<value> <unit>" pairs after the iteration count.
func parse(s string) sample {
	var r sample
	f := strings.Fields(s)
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case "ns/op":
			r.ns = v
		case "MB/s":
			r.mbs = v
		case "B/op":
			r.bytes = v
		case "allocs/op":
			r.allocs = v
		}
	}
	return r
}

func median(ss []sample) sample {
	pick := func(get func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = get(s)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return sample{
		ns:     pick(func(s sample) float64 { return s.ns }),
		mbs:    pick(func(s sample) float64 { return s.mbs }),
		bytes:  pick(func(s sample) float64 { return s.bytes }),
		allocs: pick(func(s sample) float64 { return s.allocs }),
	}
}

func rat(v, base float64) string {
	if base == 0 {
		return ""
	}
	return strconv.FormatFloat(v/base, 'f', 2, 64)
}

func mbs(v float64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
