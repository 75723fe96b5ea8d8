// Package bench runs a benchmark plan side by side on Starling, ejabberd and
// Prosody: for every group of scenarios each server is started fresh (Prosody
// slows down after thousands of logins in one process, so a restart per
// group keeps the comparison fair), measured with the same generator, and
// stopped; servers that cannot run here are reported as unavailable.
package bench

import (
	"fmt"
	"sort"
	"time"

	"github.com/starling-xmpp/starling/perf/load"
	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/xmppclient"
)

// Plan is a named list of scenario groups.
type Plan struct {
	Name   string
	Groups []Group
}

// Group is a set of scenarios measured on one fresh start of each server.
type Group struct {
	Name      string
	Scenarios []load.Scenario
	// Targets, when set, are what the group measures instead of the run's
	// servers: other ways of running them (Starling with each traffic
	// meter; clusters later), each started fresh in turn.
	Targets []TargetSpec
	// Rounds repeats the group, every target in turn each round (the order
	// rotating), so that a comparison of targets on a shared machine rests
	// on more than one run of each; 0 is one round.
	Rounds int
}

// EBPFCost is the group that runs the same scenarios against Starling with
// each traffic meter: the cost of the eBPF accounting.
const EBPFCost = "ebpf-cost"

// meterTargets are Starling counted by eBPF (required: a node that fell
// back to userspace is reported unavailable), in userspace, and not at all.
var meterTargets = []TargetSpec{
	{Server: "starling", Meter: peer.MeterEBPF},
	{Server: "starling", Meter: peer.MeterUserspace},
	{Server: "starling", Meter: peer.MeterNone},
}

// Accounts is the number of test accounts the plan needs.
func (p Plan) Accounts() int {
	n := 0
	for _, g := range p.Groups {
		for _, s := range g.Scenarios {
			n = max(n, s.Accounts())
		}
	}
	return n
}

// Plans returns the built-in plans by name.
func Plans() map[string]func() Plan {
	return map[string]func() Plan{"quick": Quick, "full": Full, "ci": CI}
}

// PlanNames lists the built-in plans.
func PlanNames() []string {
	var out []string
	for n := range Plans() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ByName returns a built-in plan.
func ByName(name string) (Plan, error) {
	f, ok := Plans()[name]
	if !ok {
		return Plan{}, fmt.Errorf("unknown plan %q (have %v)", name, PlanNames())
	}
	return f(), nil
}

// loginIPs spread short-lived login connections over source addresses;
// idleIPs give each idle-session holder process its own.
var (
	loginIPs = load.SourceIPs(1, 8)
	idleIPs  = load.SourceIPs(20, 8)
)

// msgs is the message set-up every plan uses: plain streams (the XMPP core
// is measured, not TLS), SCRAM-SHA-1 logins (offered by all three servers).
func msgs(pairs int, warm, dur time.Duration) load.Messages {
	return load.Messages{Pairs: pairs, Security: xmppclient.Plain, Mechanism: "SCRAM-SHA-1", Payload: 100, Warmup: warm, Duration: dur}
}

func login(mech string, sec xmppclient.Security, c, users, count int, dur time.Duration) *load.Login {
	return &load.Login{Mechanism: mech, Security: sec, Concurrency: c, Users: users, Count: count, Duration: dur, SourceIPs: loginIPs}
}

// Quick is the comparison `make bench` runs: a few minutes for all three.
func Quick() Plan {
	return Plan{Name: "quick", Groups: []Group{
		{Name: "login", Scenarios: []load.Scenario{
			login("SCRAM-SHA-1", xmppclient.Plain, 8, 200, 20000, 4*time.Second),
			login("PLAIN", xmppclient.StartTLS, 8, 200, 20000, 4*time.Second),
		}},
		{Name: "messages", Scenarios: []load.Scenario{
			&load.Throughput{Messages: msgs(50, time.Second, 4*time.Second), Window: 16},
			&load.Latency{Messages: msgs(50, time.Second, 4*time.Second), Rate: 5000},
		}},
		{Name: "idle", Scenarios: []load.Scenario{
			&load.Idle{Steps: []int{1000, 2000}, PerProcess: 9000, Security: xmppclient.Plain, Mechanism: "SCRAM-SHA-1", Settle: 2 * time.Second, SourceIPs: idleIPs},
		}},
	}}
}

// Full is everything `make bench-full` runs.
func Full() Plan {
	var logins []Group
	for _, sec := range []xmppclient.Security{xmppclient.Plain, xmppclient.StartTLS, xmppclient.DirectTLS} {
		g := Group{Name: "login-" + sec.String()}
		for _, mech := range []string{"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"} {
			g.Scenarios = append(g.Scenarios, login(mech, sec, 16, 1000, 100000, 8*time.Second))
		}
		logins = append(logins, g)
	}
	return Plan{Name: "full", Groups: append(logins,
		Group{Name: "throughput", Scenarios: []load.Scenario{
			&load.Throughput{Messages: msgs(10, time.Second, 8*time.Second), Window: 1},
			&load.Throughput{Messages: msgs(100, 2*time.Second, 10*time.Second), Window: 16},
			&load.Throughput{Messages: msgs(100, 2*time.Second, 10*time.Second), Window: 64},
		}},
		Group{Name: "latency", Scenarios: []load.Scenario{
			&load.Latency{Messages: msgs(100, 2*time.Second, 10*time.Second), Rate: 1000},
			&load.Latency{Messages: msgs(100, 2*time.Second, 10*time.Second), Rate: 5000},
			&load.Latency{Messages: msgs(100, 2*time.Second, 10*time.Second), Rate: 10000},
			&load.Latency{Messages: msgs(100, 2*time.Second, 10*time.Second), Rate: 15000},
		}},
		Group{Name: "idle", Scenarios: []load.Scenario{
			&load.Idle{Steps: []int{1000, 5000, 10000, 19000}, PerProcess: 9500, Security: xmppclient.Plain, Mechanism: "SCRAM-SHA-1", Settle: 3 * time.Second, SourceIPs: idleIPs},
		}},
		// The login mechanism changes what some servers keep per session
		// (ejabberd's processes keep the heap SCRAM grew), and TLS costs
		// memory of its own: measure that case too, on a fresh start.
		Group{Name: "idle-tls", Scenarios: []load.Scenario{
			&load.Idle{Steps: []int{1000, 5000}, PerProcess: 9500, Security: xmppclient.StartTLS, Mechanism: "PLAIN", Settle: 3 * time.Second, SourceIPs: idleIPs},
		}},
		// The same client against Starling metered by eBPF, in userspace, and
		// not at all (limits are 0 in both metered cases: only counting costs).
		Group{Name: EBPFCost, Targets: meterTargets, Rounds: 3, Scenarios: []load.Scenario{
			&load.Throughput{Messages: msgs(100, 2*time.Second, 10*time.Second), Window: 16},
			&load.Throughput{Messages: msgs(100, 2*time.Second, 10*time.Second), Window: 64},
			&load.Latency{Messages: msgs(100, 2*time.Second, 10*time.Second), Rate: 5000},
			&load.Latency{Messages: msgs(100, 2*time.Second, 10*time.Second), Rate: 10000},
			login("SCRAM-SHA-256", xmppclient.Plain, 16, 1000, 100000, 8*time.Second),
		}},
	)}
}

// CI is a run of seconds against Starling alone, so the harness keeps working.
func CI() Plan {
	return Plan{Name: "ci", Groups: []Group{
		{Name: "all", Scenarios: []load.Scenario{
			login("SCRAM-SHA-1", xmppclient.Plain, 2, 20, 200, 2*time.Second),
			&load.Throughput{Messages: msgs(5, 300*time.Millisecond, time.Second), Window: 4},
			&load.Latency{Messages: msgs(5, 300*time.Millisecond, time.Second), Rate: 500},
			&load.Idle{Steps: []int{50, 100}, PerProcess: 60, Security: xmppclient.Plain, Mechanism: "SCRAM-SHA-1", Settle: 500 * time.Millisecond, SourceIPs: idleIPs},
		}},
		// Every meter starts, is verified, and carries a little traffic, in
		// two rounds; the eBPF one is reported unavailable when not root.
		{Name: EBPFCost, Targets: meterTargets, Rounds: 2, Scenarios: []load.Scenario{
			&load.Throughput{Messages: msgs(5, 200*time.Millisecond, 500*time.Millisecond), Window: 4},
			&load.Latency{Messages: msgs(5, 200*time.Millisecond, 500*time.Millisecond), Rate: 500},
			login("SCRAM-SHA-256", xmppclient.Plain, 2, 20, 200, time.Second),
		}},
	}}
}
