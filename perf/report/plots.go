package report

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/starling-xmpp/starling/perf/bench"
	"github.com/starling-xmpp/starling/perf/load"
)

// serverColor keeps one colour per server across every plot.
var serverColor = map[string]color.Color{
	"starling": color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff},
	"ejabberd": color.RGBA{R: 0x1b, G: 0x9e, B: 0x77, A: 0xff},
	"prosody":  color.RGBA{R: 0x75, G: 0x70, B: 0xb3, A: 0xff},
}

func colorOf(name string, i int) color.Color {
	if c, ok := serverColor[name]; ok {
		return c
	}
	return color.Gray{Y: uint8(60 + 40*i%160)}
}

// Plots draws the PNGs for r into dir and returns their paths. Names start
// with the scenario so the markdown places each under its table.
func Plots(dir string, r *bench.Run) ([]string, error) {
	names := targets(r)
	var out []string
	save := func(p *plot.Plot, name string, w vg.Length) error {
		path := filepath.Join(dir, name)
		if err := p.Save(w, 10*vg.Centimeter, path); err != nil {
			return fmt.Errorf("save %s: %w", name, err)
		}
		out = append(out, path)
		return nil
	}
	for _, b := range []struct{ sc, key, title, unit string }{
		{"login", "logins_per_s", "Logins per second", "logins/s"},
		{"throughput", "msgs_per_s", "One-to-one messages per second (closed loop)", "messages/s"},
	} {
		rs := byScenario(r, b.sc)
		if len(rs) == 0 {
			continue
		}
		p, err := bars(rs, names, b.key, b.title, b.unit)
		if err != nil {
			return out, err
		}
		if err := save(p, b.sc+".png", vg.Length(10+3*len(variants(rs)))*vg.Centimeter); err != nil {
			return out, err
		}
	}
	lat := byScenario(r, "latency")
	for _, v := range variants(lat) {
		p, err := percentiles(lat, names, v)
		if err != nil {
			return out, err
		}
		if err := save(p, "latency-"+slug(v)+".png", 14*vg.Centimeter); err != nil {
			return out, err
		}
	}
	if idle := byScenario(r, "idle"); len(idle) > 0 {
		p, err := memory(idle, names)
		if err != nil {
			return out, err
		}
		if err := save(p, "idle.png", 16*vg.Centimeter); err != nil {
			return out, err
		}
	}
	return out, nil
}

func slug(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '=' || c == ' ' || c == '/':
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func bars(rs []load.Result, names []string, key, title, unit string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	vs := variants(rs)
	w := vg.Points(14)
	top := 0.0
	for i, n := range names {
		vals := make(plotter.Values, len(vs))
		for j, v := range vs {
			res, ok := find(rs, v, n)
			if ok && res.Error == "" {
				vals[j] = res.Metrics[key]
				top = math.Max(top, vals[j])
			}
		}
		bc, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, fmt.Errorf("bar chart: %w", err)
		}
		bc.Color = colorOf(n, i)
		bc.LineStyle.Width = 0
		bc.Offset = vg.Length(float64(i)-float64(len(names)-1)/2) * w
		p.Add(bc)
		p.Legend.Add(n, bc)
	}
	p.Legend.Top = true
	p.NominalX(vs...)
	p.Y.Min = 0
	p.Y.Max = top * 1.25 // room for the legend above the bars
	p.Y.Tick.Marker = niceTicks{}
	return p, nil
}

func percentiles(rs []load.Result, names []string, variant string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency percentiles, " + variant
	p.Y.Label.Text = "ms (log scale)"
	p.X.Label.Text = "percentile"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	labels := make([]string, len(load.Percentiles))
	for i, q := range load.Percentiles {
		labels[i] = fmt.Sprintf("p%v", q)
	}
	drawn := false
	for i, n := range names {
		res, ok := find(rs, variant, n)
		if !ok || res.Error != "" {
			continue
		}
		var xy plotter.XYs
		for j, pt := range res.Points {
			if pt.Series == "latency_ms" {
				xy = append(xy, plotter.XY{X: float64(j), Y: math.Max(pt.Y, 0.001)})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, fmt.Errorf("latency line: %w", err)
		}
		l.Color, pts.Color = colorOf(n, i), colorOf(n, i)
		l.Width = vg.Points(2)
		p.Add(l, pts)
		p.Legend.Add(n, l, pts)
		drawn = true
	}
	if !drawn {
		p.Y.Scale = plot.LinearScale{}
		p.Y.Tick.Marker = plot.DefaultTicks{}
	}
	p.NominalX(labels...)
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func memory(rs []load.Result, names []string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Server memory per idle session"
	p.X.Label.Text = "idle sessions"
	p.Y.Label.Text = "KB per session"
	vs := variants(rs)
	top, bottom := 0.0, math.Inf(1)
	for i, n := range names {
		for k, v := range vs {
			res, ok := find(rs, v, n)
			if !ok || len(res.Points) == 0 {
				continue
			}
			var xy plotter.XYs
			for _, pt := range res.Points {
				xy = append(xy, plotter.XY{X: pt.X, Y: pt.Y})
				top = math.Max(top, pt.Y)
				if pt.Y > 0 {
					bottom = math.Min(bottom, pt.Y)
				}
			}
			label := n
			if len(vs) > 1 {
				label += " " + v
			}
			l, pts, err := plotter.NewLinePoints(xy)
			if err != nil {
				return nil, fmt.Errorf("memory line: %w", err)
			}
			l.Color, pts.Color = colorOf(n, i), colorOf(n, i)
			l.Width = vg.Points(2)
			if k > 0 {
				l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			}
			p.Add(l, pts)
			p.Legend.Add(label, l, pts)
		}
	}
	p.X.Min = 0
	p.X.Tick.Marker = niceTicks{}
	if top > 20*bottom {
		// One server uses far more than the others: a log scale keeps
		// every line readable.
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min = bottom / 2
		p.Y.Max = top * 30 // room for the legend above the lines
		p.Y.Label.Text += ", log scale"
	} else {
		p.Y.Min = 0
		p.Y.Max = top * 1.3
		p.Y.Tick.Marker = niceTicks{}
	}
	p.Legend.Top = true
	return p, nil
}

// niceTicks labels an axis at 1, 2 or 5 × 10^k steps with plain numbers
// (gonum's default can leave only the two ends labelled, with decimals).
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return []plot.Tick{{Value: lo, Label: num(lo)}}
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9 && len(ts) < 50; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: tickLabel(v)})
	}
	return ts
}

func tickLabel(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return num(v)
}
