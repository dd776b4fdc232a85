// Command plot draws the plots of the harness's growth measurements
// (go -C bench run ./harness -growth, which runs it) from their CSV files,
// with gonum.org/v1/plot: PNGs of 800×560 pixels beside the CSV files. It
// writes the markdown tables again from the CSV files too.
//
//	go -C bench run ./plot                 # redraws bench/plots
//	go -C bench run ./plot -dir /tmp/g     # another directory
//
// It is a command of its own, not part of the harness, so that the harness's
// processes do not carry the plotting library (see package growth).
package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io/fs"
	"log"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/bench/internal/growth"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

const (
	plotWidth  = 800 // pixels
	plotHeight = 560
	plotDPI    = 96
)

func main() {
	dir := flag.String("dir", "plots", "directory of the CSV files, where the PNGs go")
	flag.Parse()
	if err := drawAll(*dir); err != nil {
		log.Fatal(err)
	}
}

// drawAll draws every family whose CSV file is in dir.
func drawAll(dir string) error {
	var drawn []string
	for _, f := range []struct {
		name string
		draw func() error
	}{
		{"concurrency", func() error {
			rows, err := growth.ReadConcurrency(dir)
			if err != nil {
				return err
			}
			if err := growth.WriteConcurrency(dir, rows); err != nil {
				return err
			}
			return drawConcurrency(dir, rows)
		}},
		{"scale", func() error {
			rows, err := growth.ReadScale(dir)
			if err != nil {
				return err
			}
			if err := growth.WriteScale(dir, rows); err != nil {
				return err
			}
			return drawScale(dir, rows)
		}},
		{"size", func() error {
			rows, err := growth.ReadSize(dir)
			if err != nil {
				return err
			}
			if err := growth.WriteSize(dir, rows); err != nil {
				return err
			}
			return drawSize(dir, rows)
		}},
	} {
		err := f.draw()
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("%s: %w", f.name, err)
		default:
			drawn = append(drawn, f.name)
		}
	}
	if len(drawn) == 0 {
		return fmt.Errorf("no concurrency.csv, scale.csv or size.csv in %s", dir)
	}
	fmt.Printf("tables and plots of %s drawn in %s\n", strings.Join(drawn, ", "), dir)
	return nil
}

func drawConcurrency(dir string, rows []growth.ConcRow) error {
	ps := growth.ConcPairs(rows)
	var xs []float64
	var bRPS, pRPS, bP99, pP99, rRPS, rP99 []float64
	for _, p := range ps {
		xs = append(xs, float64(p[0].Conns))
		bRPS, pRPS = append(bRPS, p[0].RPS), append(pRPS, p[1].RPS)
		bP99, pP99 = append(bP99, ms(p[0].P99)), append(pP99, ms(p[1].P99))
		rRPS, rP99 = append(rRPS, p[1].RPS/p[0].RPS), append(rP99, growth.Ratio(p[1].P99, p[0].P99))
	}
	ticks := powTicks(xs)
	rps := newPlot("1 KiB GET: req/s", "connections", "req/s", true, false)
	addSeries(rps, series{"bare", xs, bRPS, 0}, series{"proxy", xs, pRPS, 1})
	p99 := newPlot("1 KiB GET: p99 latency", "connections", "ms", true, true)
	addSeries(p99, series{"bare", xs, bP99, 0}, series{"proxy", xs, pP99, 1})
	rr := newPlot("req/s, proxy ÷ bare", "connections", "× bare", true, false)
	addRatio(rr, series{"req/s", xs, rRPS, 1})
	rl := newPlot("p99, proxy ÷ bare", "connections", "× bare", true, false)
	addRatio(rl, series{"p99", xs, rP99, 1})
	for _, p := range []*plot.Plot{rps, p99, rr, rl} {
		p.X.Tick.Marker = ticks
	}
	rps.Y.Min = 0
	keepLegend(rps, p99, rr, rl)
	return savePNG(filepath.Join(dir, "concurrency.png"), [][]*plot.Plot{{rps, p99}, {rr, rl}})
}

func drawScale(dir string, rows []growth.ScaleRow) error {
	cpu := newPlot("CPU per 1 KiB GET (processes, wrk)", "n", "target CPU µs per request", true, false)
	rat := newPlot("the same, proxy ÷ bare", "n", "× bare", true, false)
	ipc := newPlot("in process: time per request", "n", "µs per request", true, false)
	ipa := newPlot("in process: allocations per request", "n", "allocations", true, false)
	heap := newPlot("proxy live heap against n things", "n", "MiB (after GC)", true, true)
	per := newPlot("heap per thing beyond the smallest n", "n", "bytes per thing", true, false)
	bareCPU, bareIP, bareAllocs, bareHeap := map[int][]float64{}, map[int][]float64{}, map[int][]float64{}, map[int][]float64{}
	for i, kind := range growth.ScaleKinds {
		var xs, cy, ry, iy, ia, hy, px, py []float64
		for _, r := range rows {
			if r.Kind != kind {
				continue
			}
			x := float64(r.N)
			xs, cy, ry = append(xs, x), append(cy, r.ProxyCPU), append(ry, r.ProxyCPU/r.BareCPU)
			iy, ia = append(iy, r.IPProxyNs/1e3), append(ia, r.IPProxyAllocs)
			hy = append(hy, float64(r.Heap)/(1<<20))
			if v, ok := growth.HeapPerItem(rows, r); ok {
				px, py = append(px, x), append(py, v)
			}
			bareCPU[r.N] = append(bareCPU[r.N], r.BareCPU)
			bareIP[r.N] = append(bareIP[r.N], r.IPBareNs/1e3)
			bareAllocs[r.N] = append(bareAllocs[r.N], r.IPBareAllocs)
			bareHeap[r.N] = append(bareHeap[r.N], float64(r.BareHeap)/(1<<20))
		}
		if len(xs) == 0 {
			continue
		}
		name := growth.ScaleTitles[kind]
		addSeries(cpu, series{name, xs, cy, i + 1})
		addRatio(rat, series{name, xs, ry, i + 1})
		addSeries(ipc, series{name, xs, iy, i + 1})
		addSeries(ipa, series{name, xs, ia, i + 1})
		addSeries(heap, series{name, xs, hy, i + 1})
		if len(px) > 0 {
			addSeries(per, series{name, px, py, i + 1})
		}
	}
	medians := func(m map[int][]float64) (xs, ys []float64) {
		for _, n := range slices.Sorted(maps.Keys(m)) {
			xs, ys = append(xs, float64(n)), append(ys, median(m[n]))
		}
		return xs, ys
	}
	if xs, ys := medians(bareCPU); len(xs) > 0 {
		addSeries(cpu, series{"bare (median of the five)", xs, ys, 0})
		xs, ys = medians(bareIP)
		addSeries(ipc, series{"bare (median of the five)", xs, ys, 0})
		xs, ys = medians(bareAllocs)
		addSeries(ipa, series{"bare (median of the five)", xs, ys, 0})
		xs, ys = medians(bareHeap)
		addSeries(heap, series{"bare", xs, ys, 0})
	}
	cpu.Y.Min, ipc.Y.Min, ipa.Y.Min, per.Y.Min = 0, 0, 0, 0
	for _, p := range []*plot.Plot{cpu, rat, ipc, ipa, heap, per} {
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	keepLegend(cpu, rat, ipc, ipa)
	keepLegend(heap, per)
	if err := savePNG(filepath.Join(dir, "scale-cpu.png"), [][]*plot.Plot{{cpu, rat}, {ipc, ipa}}); err != nil {
		return err
	}
	return savePNG(filepath.Join(dir, "scale-heap.png"), [][]*plot.Plot{{heap}, {per}})
}

func drawSize(dir string, rows []growth.SizeRow) error {
	thr := newPlot("throughput against object size (one connection)", "object size", "MiB/s", true, true)
	thrR := newPlot("throughput, proxy ÷ bare", "object size", "× bare", true, false)
	rss := newPlot("peak RSS against object size", "object size", "MiB (VmHWM)", true, false)
	rssR := newPlot("peak RSS, proxy ÷ bare", "object size", "× bare", true, false)
	var all []float64
	for i, op := range growth.SizeOps {
		var xs, ty, tr, ry, rr []float64
		for _, r := range rows {
			if r.Target != op.Target || r.Op != op.Op {
				continue
			}
			base := growth.SizeBase(rows, r)
			x := float64(r.Size)
			xs, ty, ry = append(xs, x), append(ty, r.MiBps), append(ry, float64(r.Peak)/(1<<20))
			tr, rr = append(tr, r.MiBps/base.MiBps), append(rr, float64(r.Peak)/float64(base.Peak))
		}
		if len(xs) == 0 {
			continue
		}
		all = append(all, xs...)
		name := op.Target + " " + op.Op
		addSeries(thr, series{name, xs, ty, i})
		addSeries(rss, series{name, xs, ry, i})
		if op.Target != "bare" {
			addRatio(thrR, series{name, xs, tr, i})
			addRatio(rssR, series{name, xs, rr, i})
		}
	}
	ticks := sizeTicks(all)
	for _, p := range []*plot.Plot{thr, thrR, rss, rssR} {
		p.X.Tick.Marker = ticks
	}
	rss.Y.Min = 0
	keepLegend(thr, thrR)
	keepLegend(rss, rssR)
	if err := savePNG(filepath.Join(dir, "size-throughput.png"), [][]*plot.Plot{{thr}, {thrR}}); err != nil {
		return err
	}
	return savePNG(filepath.Join(dir, "size-rss.png"), [][]*plot.Plot{{rss}, {rssR}})
}

// ---- drawing

type series struct {
	name  string
	xs    []float64
	ys    []float64
	style int // 0 is the bare proxy's
}

func newPlot(title, x, y string, logX, logY bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	if logX {
		p.X.Scale = plot.LogScale{}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	return p
}

// style is the color, marker and dashes of a series: the bare proxy black and
// dashed, the others in plotutil's colors.
func style(i int) (color.Color, draw.GlyphDrawer, []vg.Length) {
	if i == 0 {
		return color.Black, draw.CircleGlyph{}, []vg.Length{vg.Points(4), vg.Points(3)}
	}
	return plotutil.Color(i - 1), plotutil.Shape(i), nil
}

func addSeries(p *plot.Plot, ss ...series) {
	for _, s := range ss {
		pts := make(plotter.XYs, 0, len(s.xs))
		for i := range s.xs {
			if s.ys[i] > 0 && !math.IsInf(s.ys[i], 0) && !math.IsNaN(s.ys[i]) {
				pts = append(pts, plotter.XY{X: s.xs[i], Y: s.ys[i]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			continue
		}
		c, g, dashes := style(s.style)
		l.Color, l.Dashes, l.Width = c, dashes, vg.Points(1.5)
		sc.Color, sc.Shape, sc.Radius = c, g, vg.Points(2.5)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
		legendEntries[p]++
	}
}

// legendEntries counts the entries of each plot's legend.
var legendEntries = map[*plot.Plot]int{}

// keepLegend leaves the legend of the first plot of a figure, which gives the
// series' colors for all of them, and raises its Y axis so that the legend
// sits above the lines; the other plots lose theirs.
func keepLegend(first *plot.Plot, others ...*plot.Plot) {
	for _, p := range others {
		l := plot.NewLegend()
		l.Top, l.Left = true, true
		p.Legend = l
	}
	frac := min(0.6, 0.075*float64(legendEntries[first])+0.05)
	y := &first.Y
	if _, isLog := y.Scale.(plot.LogScale); isLog && y.Min > 0 && y.Max > y.Min {
		y.Max = y.Min * math.Pow(y.Max/y.Min, 1/(1-frac))
	} else if y.Max > y.Min {
		y.Max = y.Min + (y.Max-y.Min)/(1-frac)
	}
}

// addRatio adds ratio series and the line at 1×.
func addRatio(p *plot.Plot, ss ...series) {
	addSeries(p, ss...)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, x := range s.xs {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	if math.IsInf(lo, 0) {
		return
	}
	one, err := plotter.NewLine(plotter.XYs{{X: lo, Y: 1}, {X: hi, Y: 1}})
	if err == nil {
		one.Color, one.Dashes = color.Gray{Y: 96}, []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(one)
	}
	p.Y.Min = 0
	p.Y.Max = math.Max(p.Y.Max, 1.1)
}

// powTicks labels each x (powers of two).
func powTicks(xs []float64) plot.ConstantTicks {
	var t plot.ConstantTicks
	for _, x := range xs {
		t = append(t, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
	}
	return t
}

// sizeTicks labels each size.
func sizeTicks(xs []float64) plot.ConstantTicks {
	slices.Sort(xs)
	xs = slices.Compact(xs)
	var t plot.ConstantTicks
	for _, x := range xs {
		t = append(t, plot.Tick{Value: x, Label: strings.ReplaceAll(growth.SizeLabel(int64(x)), " ", "\u00a0")})
	}
	return t
}

// savePNG draws a grid of plots, aligned, into one PNG.
func savePNG(path string, grid [][]*plot.Plot) error {
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(plotWidth)*vg.Inch/plotDPI, vg.Length(plotHeight)*vg.Inch/plotDPI), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(grid), Cols: len(grid[0]), PadX: vg.Points(12), PadY: vg.Points(8),
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(grid, t, dc)
	for j := range grid {
		for i := range grid[j] {
			grid[j][i].Draw(canvases[j][i])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
