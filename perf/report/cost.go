package report

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/starling-xmpp/starling/perf/bench"
	"github.com/starling-xmpp/starling/perf/load"
)

// meterColumns are the eBPF-cost table's columns: Starling with each
// traffic meter, the unmetered one last (the ratios divide by it).
var meterColumns = []struct{ target, label string }{
	{"starling", "eBPF"},
	{"starling-userspace", "userspace"},
	{"starling-unmetered", "unmetered"},
}

// costMetrics are the rows per scenario: the headline figure and the
// server's CPU per unit of work, which contention changes far less.
var costMetrics = map[string][]metric{
	"throughput": {
		{"msgs_per_s", "messages/s", true},
		{"p99_ms", "p99 ms", false},
		{"total_cpu_us_per_msg", "server + generator CPU µs/msg", false},
		{"server_cpu_us_per_msg", "server CPU µs/msg", false},
	},
	"latency": {
		{"p50_ms", "p50 ms", false},
		{"p99_ms", "p99 ms", false},
		{"sent_p50_ms", "p50 ms from the actual send", false},
		{"pace_p99_ms", "generator lateness p99 ms", false},
		{"total_cpu_us_per_msg", "server + generator CPU µs/msg", false},
		{"server_cpu_us_per_msg", "server CPU µs/msg", false},
	},
	"login": {
		{"logins_per_s", "logins/s", true},
		{"p99_ms", "p99 ms", false},
		{"total_cpu_us_per_login", "server + generator CPU µs/login", false},
		{"server_cpu_us_per_login", "server CPU µs/login", false},
	},
}

// meterCost renders the eBPF-cost group: per scenario, the figure with each
// meter and the ratio of each metered one to the unmetered one.
func meterCost(b *strings.Builder, r *bench.Run) {
	var rs []load.Result
	unavailable := map[string]string{}
	failed := map[string]bool{} // the target did not start: no scenario ran
	for _, res := range r.Results {
		switch {
		case res.Group != bench.EBPFCost:
		case res.Unavailable:
			unavailable[res.Target] = firstLine(res.Error)
		case costMetrics[res.Scenario] == nil:
			failed[res.Target] = true
		default:
			rs = append(rs, res)
		}
	}
	if len(rs) == 0 && len(unavailable) == 0 && len(failed) == 0 {
		return
	}
	b.WriteString("### Cost of the eBPF accounting (the same client, Starling with each traffic meter)\n\n")
	b.WriteString("Limits are 0 (unlimited) in the metered cases, so only the counting costs; the unmetered node " +
		"leaves client connections out of the meter ('cm-traffic-throttling' = 'none'). Each node's meter was " +
		"read from its `GET /throttle` after start.")
	if n := rounds(rs); n > 1 {
		fmt.Fprintf(b, " Figures are medians of %d runs of each target, the targets taking turns (order rotating each round).", n)
	}
	b.WriteString("\n\n")
	cols := []string{"scenario / metric"}
	for _, c := range meterColumns {
		cols = append(cols, c.label)
	}
	cols = append(cols, "eBPF ÷ unmetered", "userspace ÷ unmetered")
	b.WriteString("| " + strings.Join(cols, " | ") + " |\n|" + strings.Repeat(" --- |", len(cols)) + "\n")
	var order []string // "scenario\x00variant" in first-seen order
	for _, res := range rs {
		k := res.Scenario + "\x00" + res.Variant
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	base := meterColumns[len(meterColumns)-1].target
	for _, k := range order {
		sc, v, _ := strings.Cut(k, "\x00")
		ms := costMetrics[sc]
		for _, m := range ms {
			row := []string{fmt.Sprintf("%s `%s` %s", sc, v, m.label)}
			vals := map[string]float64{}
			for _, c := range meterColumns {
				x, s := median(findAll(rs, sc, v, c.target), m.key)
				if s == "—" {
					switch {
					case unavailable[c.target] != "":
						s = "unavailable"
					case failed[c.target]:
						s = "failed"
					}
				}
				vals[c.target] = x
				row = append(row, s)
			}
			for _, c := range meterColumns[:len(meterColumns)-1] {
				row = append(row, ratio(vals[c.target], vals[base]))
			}
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
		// Each round's server CPU per unit and load average: the spread
		// behind the medians, and how busy the shared machine was.
		cpu := ms[len(ms)-1]
		row := []string{fmt.Sprintf("%s `%s` each run: %s (load avg)", sc, v, cpu.label)}
		for _, c := range meterColumns {
			var runs []string
			for _, res := range findAll(rs, sc, v, c.target) {
				if v, ok := metricOf(res, cpu.key); ok && res.Error == "" {
					runs = append(runs, fmt.Sprintf("%s (%.1f)", num(v), res.Metrics["loadavg_1m"]))
				}
			}
			row = append(row, orDash(strings.Join(runs, " · ")))
		}
		row = append(row, "", "")
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n")
	for _, c := range meterColumns {
		if why := unavailable[c.target]; why != "" {
			fmt.Fprintf(b, "- %s (%s) unavailable: %s\n", c.label, c.target, why)
		}
	}
	if len(unavailable) > 0 {
		b.WriteString("\n")
	}
}

// findAll returns a target's results of one scenario variant, every round.
func findAll(rs []load.Result, scenario, variant, target string) []load.Result {
	var out []load.Result
	for _, r := range rs {
		if r.Scenario == scenario && r.Variant == variant && r.Target == target {
			out = append(out, r)
		}
	}
	return out
}

// median is the median of a metric over the rounds that measured it, and
// its cell: "—" when none did, "failed" when every round failed.
func median(rs []load.Result, key string) (float64, string) {
	var xs []float64
	failed := 0
	for _, r := range rs {
		if r.Error != "" {
			failed++
			continue
		}
		if v, ok := metricOf(r, key); ok {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		if failed > 0 {
			return math.NaN(), "failed"
		}
		return math.NaN(), "—"
	}
	slices.Sort(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return m, num(m)
}

// rounds is how many rounds the results span.
func rounds(rs []load.Result) int {
	n := 1
	for _, r := range rs {
		n = max(n, r.Round)
	}
	return n
}

// metricOf reads a metric, or derives one: total_cpu_us_per_X is the
// server's and the generator's CPU per X together. On loopback the kernel
// runs a packet's receive path (and the server's ingress eBPF program) in
// the softirq of whoever sent it, often the generator, so part of the
// meter's cost can only show in the sum.
func metricOf(r load.Result, key string) (float64, bool) {
	if unit, ok := strings.CutPrefix(key, "total_cpu_us_per_"); ok {
		s, ok1 := r.Metrics["server_cpu_us_per_"+unit]
		g, ok2 := r.Metrics["generator_cpu_us_per_"+unit]
		return s + g, ok1 && ok2
	}
	v, ok := r.Metrics[key]
	return v, ok
}
