package bench

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestPlans(t *testing.T) {
	for _, name := range PlanNames() {
		p, err := ByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != name || len(p.Groups) == 0 || p.Accounts() < 2 {
			t.Errorf("plan %s: %d groups, %d accounts", name, len(p.Groups), p.Accounts())
		}
	}
	if _, err := ByName("nope"); err == nil {
		t.Error("unknown plan accepted")
	}
	if n := Full().Accounts(); n != 19000 {
		t.Errorf("full plan needs %d accounts, want 19000 (the idle step)", n)
	}
}

func TestUnknownServer(t *testing.T) {
	_, err := Execute(context.Background(), Config{Plan: CI(), Servers: []string{"openfire"}, Dir: t.TempDir()})
	if err == nil {
		t.Fatal("unknown server accepted")
	}
}

func TestUnavailableStarling(t *testing.T) {
	// A checkout without cmd/starling: the run says so and measures nothing.
	r, err := Execute(context.Background(), Config{Plan: CI(), Servers: []string{"starling"}, Dir: t.TempDir(), Repo: t.TempDir()})
	if err == nil {
		t.Fatal("a run with no measurable server succeeded")
	}
	if len(r.Servers) != 1 || r.Servers[0].Available || r.Servers[0].Note == "" {
		t.Errorf("servers = %+v; want starling marked unavailable with a reason", r.Servers)
	}
}

// TestCIPlanOnStarling is the tiny CI run: the whole harness against a
// Starling built from this checkout, in seconds.
func TestCIPlanOnStarling(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Starling")
	}
	repo, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(repo, "cmd", "starling", "main.go")); err != nil {
		t.Skip("no cmd/starling in this checkout")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	r, err := Execute(ctx, Config{Plan: CI(), Servers: []string{"starling"}, Dir: t.TempDir(), Repo: repo, StarlingRev: "HEAD",
		StarlingPorts: freePorts(t), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]string{"login": "logins_per_s", "throughput": "msgs_per_s", "latency": "p99_ms", "idle": "kb_per_session"}
	want := maps.Clone(key)
	// The eBPF-cost group: every meter measured each scenario, except eBPF
	// without root, which must be reported unavailable (not failed).
	cost := map[string]int{}
	for _, res := range r.Results {
		if res.Group == EBPFCost {
			switch {
			case res.Unavailable && res.Target == "starling" && os.Geteuid() != 0:
				cost[res.Target] += 6
			case res.Error != "":
				t.Errorf("%s %s %s: %s", res.Target, res.Scenario, res.Variant, res.Error)
			case res.Metrics[key[res.Scenario]] <= 0:
				t.Errorf("%s %s: %s = %v", res.Target, res.Scenario, key[res.Scenario], res.Metrics[key[res.Scenario]])
			case res.Round < 1 || res.Round > 2:
				t.Errorf("%s %s: round %d of 2", res.Target, res.Scenario, res.Round)
			default:
				cost[res.Target]++
			}
			continue
		}
		if res.Error != "" {
			t.Errorf("%s %s: %s", res.Scenario, res.Variant, res.Error)
			continue
		}
		if k := want[res.Scenario]; res.Metrics[k] <= 0 {
			t.Errorf("%s: %s = %v", res.Scenario, k, res.Metrics[k])
		}
		delete(want, res.Scenario)
	}
	if len(want) > 0 {
		t.Errorf("scenarios without a result: %v", want)
	}
	for _, name := range []string{"starling", "starling-userspace", "starling-unmetered"} {
		if cost[name] != 6 {
			t.Errorf("eBPF cost: %s has %d of 6 results (3 scenarios, 2 rounds)", name, cost[name])
		}
	}
	meters := map[string]string{}
	for _, s := range r.Servers {
		meters[s.Name] = s.Meter
	}
	wantMeters := map[string]string{"starling-userspace": "userspace", "starling-unmetered": "none"}
	if os.Geteuid() == 0 {
		wantMeters["starling"] = "ebpf"
	}
	for name, m := range wantMeters {
		if meters[name] != m {
			t.Errorf("%s ran with meter %q, want %q (servers: %+v)", name, meters[name], m, r.Servers)
		}
	}
}

// freePorts finds three free ports below the kernel's ephemeral range (where a client socket of an earlier
// scenario could hold the port a restarted server needs), so that the test never collides with a
// benchmark running on the fixed ports.
func freePorts(t *testing.T) [3]int {
	t.Helper()
	var out [3]int
	n := 0
	for p := 20000 + rand.IntN(12000); n < len(out) && p < 32760; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		out[n] = p
		n++
	}
	if n < len(out) {
		t.Fatal("no three free ports below 32760")
	}
	return out
}

func TestAccountsOfSelectedGroups(t *testing.T) {
	tests := []struct {
		groups []string
		want   int
	}{
		{nil, 19000},
		{[]string{"latency"}, 200},
		{[]string{EBPFCost}, 1000},
		{[]string{"latency", "idle"}, 19000},
	}
	for _, tc := range tests {
		if got := (Config{Plan: Full(), Groups: tc.groups}).accounts(); got != tc.want {
			t.Errorf("groups %v: %d accounts, want %d", tc.groups, got, tc.want)
		}
	}
}
