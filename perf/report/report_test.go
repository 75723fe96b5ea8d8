package report

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/perf/bench"
	"github.com/starling-xmpp/starling/perf/load"
)

func sampleRun() *bench.Run {
	lat := func(target string, p99 float64) load.Result {
		r := load.Result{Scenario: "latency", Variant: "rate=5000", Target: target, Seconds: 4,
			Metrics: map[string]float64{"p50_ms": p99 / 10, "p99_ms": p99, "achieved_rate": 5000, "pace_p99_ms": p99 / 100}}
		for i, q := range load.Percentiles {
			r.Points = append(r.Points, load.Point{Series: "latency_ms", X: q, Y: p99 * float64(i+1) / 3})
		}
		return r
	}
	return &bench.Run{
		Plan: "quick", Started: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), Seconds: 120,
		Machine:  bench.Machine{NProc: 2, Model: "Test CPU", MemTotal: "24 GB", Kernel: "6.18", Go: "go1.26"},
		Commands: []string{"starling-bench run -plan quick"},
		Servers: []bench.ServerInfo{{Name: "starling", Version: "dev", Available: true},
			{Name: "ejabberd", Version: "23.01", Available: true}, {Name: "prosody", Version: "0.12.3", Available: true}},
		Results: []load.Result{
			{Scenario: "throughput", Variant: "pairs=50", Target: "starling", Metrics: map[string]float64{"msgs_per_s": 60000}, ServerCPU: 3, GeneratorCPU: 1, Seconds: 4},
			{Scenario: "throughput", Variant: "pairs=50", Target: "ejabberd", Metrics: map[string]float64{"msgs_per_s": 20000}},
			{Scenario: "throughput", Variant: "pairs=50", Target: "prosody", Metrics: map[string]float64{"msgs_per_s": 15000}},
			{Scenario: "login", Variant: "SCRAM-SHA-256/plain", Target: "prosody", Error: "SASL mechanism SCRAM-SHA-256 not offered by the server"},
			{Scenario: "login", Variant: "SCRAM-SHA-256/plain", Target: "starling", Metrics: map[string]float64{"logins_per_s": 2000}},
			lat("starling", 1), lat("ejabberd", 2), lat("prosody", 20),
			{Scenario: "idle", Target: "starling", Points: []load.Point{{X: 1000, Y: 20}, {X: 5000, Y: 18}}, Metrics: map[string]float64{"baseline_rss_mb": 12}},
			{Scenario: "idle", Target: "prosody", Points: []load.Point{{X: 1000, Y: 36}, {X: 5000, Y: 36}}, Metrics: map[string]float64{"baseline_rss_mb": 15}},
			{Scenario: "idle", Target: "ejabberd", Error: "boom\nsecond line"},
			// A group that failed as a whole, named like a scenario: listed, not a table row.
			{Scenario: "latency", Group: "latency", Target: "prosody", Error: "prosody is no longer running"},
		},
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown(sampleRun(), []string{"throughput.png", "idle.png"}, "results/")
	for _, want := range []string{
		"| variant / metric | starling | ejabberd | prosody | starling ÷ ejabberd | starling ÷ prosody |",
		"| `pairs=50` messages/s | 60000 | 20000 | 15000 | ×3.00 | ×4.00 |",
		"| `SCRAM-SHA-256/plain` logins/s | 2000 | — | n/a | — | — |",
		"| `rate=5000` p99 ms | 1.00 | 2.00 | 20.0 | ×0.50 | ×0.05 |",
		"| `rate=5000` generator lateness p99 ms | 0.01 | 0.02 | 0.20 |  |  |",
		"| 5000: KB per session | 18.0 | failed | 36.0 | — | ×0.50 |",
		"3.00 / 1.00 in 4.0 s (0.0)",
		"![throughput.png](results/throughput.png)",
		"- ejabberd idle : boom\n",
		"2 × Test CPU",
		"starling-bench run -plan quick",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
	if strings.Contains(md, "| `` ") || !strings.Contains(md, "- prosody latency : prosody is no longer running") {
		t.Errorf("a failed group shows as a table row, or is not listed:\n%s", md)
	}
	if strings.Contains(md, "second line") {
		t.Error("multi-line error leaked into the table")
	}
}

func TestWriteAndReadme(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	os.WriteFile(readme, []byte("# perf\n\nintro\n\n"+BeginMarker+"\nold\n"+EndMarker+"\n\nfooter\n"), 0o644)
	files, err := Write(filepath.Join(dir, "results"), readme, sampleRun())
	if err != nil {
		t.Fatal(err)
	}
	var pngs int
	for _, f := range files {
		if filepath.Ext(f) != ".png" {
			continue
		}
		pngs++
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s: not a usable PNG (%v)", f, err)
		}
	}
	if pngs != 4 { // login, throughput, one latency variant, idle
		t.Errorf("%d plots, want 4: %v", pngs, files)
	}
	b, _ := os.ReadFile(readme)
	s := string(b)
	if !strings.Contains(s, "intro") || !strings.Contains(s, "footer") || strings.Contains(s, "\nold\n") ||
		!strings.Contains(s, "(results/idle.png)") {
		t.Errorf("README not updated in place:\n%s", s)
	}
	// Broken markers are an error, not a silent rewrite.
	os.WriteFile(readme, []byte(EndMarker+"\n"+BeginMarker), 0o644)
	if err := UpdateReadme(readme, "x"); err == nil {
		t.Error("broken markers accepted")
	}
	if err := Failed(sampleRun()); err == nil || !strings.Contains(err.Error(), "boom") || strings.Contains(err.Error(), "SCRAM-SHA-256") {
		t.Errorf("Failed = %v; want the ejabberd failure only", err)
	}
}

func TestMeterCost(t *testing.T) {
	tp := func(target string, rate, cpu float64) load.Result {
		return load.Result{Scenario: "throughput", Group: bench.EBPFCost, Variant: "pairs=100 window=16 plain", Target: target, Seconds: 10,
			ServerCPU: 5, Metrics: map[string]float64{"msgs_per_s": rate, "p99_ms": 2, "server_cpu_us_per_msg": cpu, "generator_cpu_us_per_msg": 1}}
	}
	tests := []struct {
		name    string
		results []load.Result
		want    []string
		notWant []string
		failed  bool
	}{
		{
			name: "all three meters",
			results: []load.Result{tp("starling", 500000, 2.2), tp("starling-userspace", 400000, 2.5), tp("starling-unmetered", 550000, 2),
				// The side-by-side tables must not pick up the group's results.
				{Scenario: "throughput", Variant: "pairs=100 window=16 plain", Target: "starling", Metrics: map[string]float64{"msgs_per_s": 1}}},
			want: []string{
				"### Cost of the eBPF accounting",
				"| scenario / metric | eBPF | userspace | unmetered | eBPF ÷ unmetered | userspace ÷ unmetered |",
				"| throughput `pairs=100 window=16 plain` messages/s | 500000 | 400000 | 550000 | ×0.91 | ×0.73 |",
				"| throughput `pairs=100 window=16 plain` server CPU µs/msg | 2.20 | 2.50 | 2.00 | ×1.10 | ×1.25 |",
				"| throughput `pairs=100 window=16 plain` server + generator CPU µs/msg | 3.20 | 3.50 | 3.00 | ×1.07 | ×1.17 |",
				"| `pairs=100 window=16 plain` messages/s | 1.00 |",
			},
			notWant: []string{"starling-unmetered |", "unavailable"},
		},
		{
			name: "medians of rounds",
			results: func() []load.Result {
				var out []load.Result
				for i, x := range []float64{1, 3, 2} {
					for _, r := range []load.Result{tp("starling", 500000*x, 2*x), tp("starling-userspace", 400000, 2.5), tp("starling-unmetered", 250000*x, x)} {
						r.Round = i + 1
						r.Metrics["loadavg_1m"] = float64(i + 1)
						out = append(out, r)
					}
				}
				return out
			}(),
			want: []string{
				"medians of 3 runs of each target",
				"| throughput `pairs=100 window=16 plain` messages/s | 1000000 | 400000 | 500000 | ×2.00 | ×0.80 |",
				"| throughput `pairs=100 window=16 plain` each run: server CPU µs/msg (load avg) | 2.00 (1.0) · 6.00 (2.0) · 4.00 (3.0) |",
			},
		},
		{
			name: "eBPF unavailable without root",
			results: []load.Result{tp("starling-userspace", 400000, 2.5), tp("starling-unmetered", 550000, 2),
				{Scenario: bench.EBPFCost, Group: bench.EBPFCost, Target: "starling", Error: "starling: target unavailable: the eBPF meter needs root", Unavailable: true}},
			want: []string{
				"| throughput `pairs=100 window=16 plain` messages/s | unavailable | 400000 | 550000 | — | ×0.73 |",
				"- eBPF (starling) unavailable: starling: target unavailable: the eBPF meter needs root",
			},
		},
		{
			name:    "a metered target failed",
			results: []load.Result{tp("starling-unmetered", 550000, 2), {Scenario: "throughput", Group: bench.EBPFCost, Variant: "pairs=100 window=16 plain", Target: "starling-userspace", Error: "boom"}},
			want:    []string{"| throughput `pairs=100 window=16 plain` messages/s | — | failed | 550000 | — | — |"},
			failed:  true,
		},
		{
			name: "a metered target did not start",
			results: []load.Result{tp("starling-unmetered", 550000, 2),
				{Scenario: bench.EBPFCost, Group: bench.EBPFCost, Target: "starling-userspace", Error: "start starling-userspace: server exited"}},
			want:    []string{"| throughput `pairs=100 window=16 plain` messages/s | — | failed | 550000 | — | — |"},
			notWant: []string{"ebpf-cost ``"},
			failed:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &bench.Run{Plan: "full", Results: tc.results}
			md := Markdown(r, nil, "")
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("markdown lacks %q\n%s", w, md)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(md, w) {
					t.Errorf("markdown has %q\n%s", w, md)
				}
			}
			if err := Failed(r); (err != nil) != tc.failed {
				t.Errorf("Failed = %v, want failure %v", err, tc.failed)
			}
		})
	}
}
