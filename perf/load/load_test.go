package load

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/perf/hist"
	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/xmppclient"
	"github.com/starling-xmpp/starling/xmpp/sasl"
	"github.com/starling-xmpp/starling/xmpp/xml"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testEnv(n int) Env {
	return Env{Accounts: peer.Accounts(n), Cache: sasl.NewSaltCache(0), Log: slog.New(slog.DiscardHandler)}
}

func TestLogin(t *testing.T) {
	env := testEnv(8)
	f := newFakeServer(t, env.Accounts)
	s := &Login{Mechanism: "PLAIN", Security: xmppclient.Plain, Concurrency: 4, Users: 8, Count: 40, Duration: 20 * time.Second}
	res, err := s.Run(context.Background(), f.target(), env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics["logins"] != 40 || res.Errors != 0 {
		t.Fatalf("logins = %v errors = %d, want 40 and 0", res.Metrics["logins"], res.Errors)
	}
	if f.logins != 48 { // 8 warm-up + 40 measured
		t.Errorf("server saw %d logins, want 48", f.logins)
	}
	if res.Metrics["logins_per_s"] <= 0 || res.Metrics["p99_ms"] < res.Metrics["p50_ms"] {
		t.Errorf("bad metrics %v", res.Metrics)
	}
}

func TestLoginReportsUnsupportedMechanism(t *testing.T) {
	env := testEnv(2)
	f := newFakeServer(t, env.Accounts)
	s := &Login{Mechanism: "SCRAM-SHA-256", Concurrency: 1, Users: 2, Count: 5, Duration: time.Second}
	res, err := s.Run(context.Background(), f.target(), env)
	if err != nil || res.Error == "" {
		t.Fatalf("err = %v, result error %q; want a result that says unsupported", err, res.Error)
	}
}

func TestLoginBadPassword(t *testing.T) {
	env := testEnv(2)
	f := newFakeServer(t, env.Accounts)
	env.Accounts = []peer.Account{{User: "bench00000", Password: "wrong"}, {User: "bench00001", Password: "wrong"}}
	s := &Login{Mechanism: "PLAIN", Concurrency: 1, Users: 2, Count: 5, Duration: time.Second}
	if _, err := s.Run(context.Background(), f.target(), env); err == nil {
		t.Fatal("login with wrong passwords succeeded")
	}
}

func TestParameterChecks(t *testing.T) {
	env := testEnv(4)
	tgt := Target{Name: "none", Nodes: []Node{{Name: "none"}}}
	tests := []struct {
		name string
		s    Scenario
	}{
		{"login no concurrency", &Login{Mechanism: "PLAIN", Users: 1, Count: 1, Duration: time.Second}},
		{"login too many users", &Login{Mechanism: "PLAIN", Concurrency: 1, Users: 100, Count: 1, Duration: time.Second}},
		{"throughput no window", &Throughput{Messages: Messages{Pairs: 1, Duration: time.Second}}},
		{"throughput too many pairs", &Throughput{Messages: Messages{Pairs: 10, Duration: time.Second}, Window: 1}},
		{"latency no rate", &Latency{Messages: Messages{Pairs: 1, Duration: time.Second}}},
		{"idle descending", &Idle{Steps: []int{3, 2}, PerProcess: 10}},
		{"idle no per-process", &Idle{Steps: []int{1}}},
	}
	for _, tt := range tests {
		if _, err := tt.s.Run(context.Background(), tgt, env); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestThroughput(t *testing.T) {
	env := testEnv(8)
	f := newFakeServer(t, env.Accounts)
	s := &Throughput{Messages: Messages{Pairs: 4, Security: xmppclient.Plain, Mechanism: "PLAIN", Payload: 64,
		Warmup: 200 * time.Millisecond, Duration: 700 * time.Millisecond}, Window: 8}
	res, err := s.Run(context.Background(), f.target(), env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics["messages"] < 100 || res.Metrics["lost"] != 0 {
		t.Fatalf("metrics %v: want some messages and none lost", res.Metrics)
	}
	if res.Seconds < 0.5 || res.Seconds > 5 {
		t.Errorf("window %v s, want about 0.7", res.Seconds)
	}
}

func TestLatencyOpenLoop(t *testing.T) {
	for _, pacing := range []Pacing{PaceThread, PaceSpin, PaceTimers} {
		t.Run(pacing.String(), func(t *testing.T) {
			env := testEnv(6)
			f := newFakeServer(t, env.Accounts)
			f.dropEvery = 50
			s := &Latency{Messages: Messages{Pairs: 3, Security: xmppclient.Plain, Mechanism: "PLAIN", Payload: 16,
				Warmup: 200 * time.Millisecond, Duration: time.Second, Drain: 300 * time.Millisecond}, Rate: 1000, Pacing: pacing}
			res, err := s.Run(context.Background(), f.target(), env)
			if err != nil {
				t.Fatal(err)
			}
			// About 1000 messages meant for the window; every 50th routed one is dropped.
			if r := res.Metrics["achieved_rate"]; r < 900 || r > 1100 {
				t.Errorf("achieved rate %v, want about 1000", r)
			}
			if l := res.Metrics["lost"]; l < 15 || l > 30 {
				t.Errorf("lost %v, want about 24 (1 in 50 of 1200)", l)
			}
			if len(res.Points) != len(Percentiles) || res.Metrics["p99_ms"] < res.Metrics["p50_ms"] || res.Metrics["p50_ms"] <= 0 {
				t.Errorf("bad percentiles %v", res.Metrics)
			}
			// The generator's lateness is part of the latency from the intended time, never more.
			late, ok := res.Metrics["pace_p50_ms"]
			if !ok || late < 0 || late > res.Metrics["p50_ms"] || res.Metrics["pace_max_ms"] < res.Metrics["pace_p99_ms"] {
				t.Errorf("pacing lateness %v (p50 %v)", res.Metrics, res.Metrics["p50_ms"])
			}
			if (pacing == PaceThread) != !strings.Contains(res.Variant, "pacing=") {
				t.Errorf("variant %q for pacing %v", res.Variant, pacing)
			}
		})
	}
}

// TestSendAllSchedule checks the one-sender schedule: message k of the
// total rate goes to pair k mod n, each stamped with its intended time, and
// a late wake-up sends every message due at once (none skipped).
func TestSendAllSchedule(t *testing.T) {
	const pairs, rate = 3, 1000.0
	env := testEnv(2 * pairs)
	f := newFakeServer(t, env.Accounts)
	s := &Latency{Messages: Messages{Pairs: pairs, Security: xmppclient.Plain, Mechanism: "PLAIN", Duration: 30 * time.Millisecond}, Rate: rate}
	ps, err := s.setup(context.Background(), f.target(), env, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer closePairs(ps)
	clk := newClock()
	// A waiter that oversleeps: every wake-up is at least 5 ms late.
	w := waiterFunc(func(ctx context.Context, at int64) error {
		for clk.now() < at+int64(5*time.Millisecond) {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	var late hist.Histogram
	var inWindow atomic.Int64
	if err := s.sendAll(context.Background(), ps, w, clk, &late, &inWindow); err != nil {
		t.Fatal(err)
	}
	if inWindow.Load() != 30 || late.Count() != 30 {
		t.Fatalf("%d messages in the window, %d lateness samples; want 30", inWindow.Load(), late.Count())
	}
	// A wake-up sends every message due, each as late as it is (5 ms for the first of a batch).
	if l := time.Duration(late.Max()); l < 5*time.Millisecond {
		t.Errorf("lateness max %v, want at least the 5 ms oversleep", l)
	}
	for i, p := range ps {
		if p.sent.Load() != 10 {
			t.Errorf("pair %d: sent %d, want 10", i, p.sent.Load())
		}
		p.rcv.SetReadDeadline(time.Now().Add(5 * time.Second))
		for j := 0; j < 10; {
			tok, err := p.rcv.Next()
			if err != nil {
				t.Fatalf("pair %d: %v after %d messages", i, err, j)
			}
			if tok.Kind != xml.ElementKind || string(tok.Elem.Name()) != "message" {
				continue
			}
			a, b, _ := strings.Cut(string(tok.Elem.Attr("id")), ".")
			intended, _ := strconv.ParseInt(a, 10, 64)
			sent, err := strconv.ParseInt(b, 10, 64)
			want := int64(float64(i+pairs*j) * float64(time.Second) / rate)
			if err != nil || intended != want || sent < intended {
				t.Errorf("pair %d message %d: id %s.%s, want intended %d, sent no earlier", i, j, a, b, want)
			}
			j++
		}
	}
}

type waiterFunc func(ctx context.Context, at int64) error

func (f waiterFunc) wait(ctx context.Context, at int64) error { return f(ctx, at) }

func TestPacingNames(t *testing.T) {
	for name, p := range Pacings {
		got, err := ParsePacing(name)
		if err != nil || got != p || p.String() != name {
			t.Errorf("%s: %v %v %v", name, got, err, p.String())
		}
	}
	if _, err := ParsePacing("sleep"); err == nil {
		t.Error("unknown pacing accepted")
	}
}

func TestIdleLocal(t *testing.T) {
	env := testEnv(30)
	f := newFakeServer(t, env.Accounts)
	tgt := f.target()
	tgt.Nodes[0].PID = os.Getpid // the fake lives in this process
	s := &Idle{Steps: []int{10, 30}, PerProcess: 16, Security: xmppclient.Plain, Mechanism: "PLAIN", SourceIPs: SourceIPs(1, 2)}
	res, err := s.Run(context.Background(), tgt, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 2 || res.Points[1].X != 30 {
		t.Fatalf("points %v", res.Points)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logins != 30 {
		t.Errorf("server saw %d logins, want 30", f.logins)
	}
}

func TestHolderProtocol(t *testing.T) {
	env := testEnv(5)
	f := newFakeServer(t, env.Accounts)
	spec := HolderSpec{Addr: f.ln.Addr().String(), Domain: "localhost", Mechanism: "PLAIN", Accounts: env.Accounts}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeHolder(context.Background(), inR, outW); outW.Close() }()
	h := &procHolderTest{in: inW, out: outR}
	if err := h.send(spec); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cmd, want string
	}{{"3", "ok 3"}, {"5", "ok 5"}, {"9", "err"}, {"x", "err bad count"}} {
		got, err := h.ask(tt.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
			t.Errorf("%s -> %q, want %q", tt.cmd, got, tt.want)
		}
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAppendMsg is the send path: one message appended to the batch.
func BenchmarkAppendMsg(b *testing.B) {
	p := &pair{prefix: []byte("<message to='bench00051@localhost/r' type='chat' id='"),
		suffix: []byte("'><body>" + string(make([]byte, 100)) + "</body></message>")}
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
		buf = p.appendMsg(buf, int64(i)*1_000_003)
	}
	b.SetBytes(int64(len(p.prefix) + len(p.suffix) + 10))
}

func TestIDRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 7, 1234567890123, 999999999999999999} {
		got, ok := parseInt(appendInt(nil, v))
		if !ok || got != v {
			t.Errorf("round trip of %d gave %d, %v", v, got, ok)
		}
	}
	for _, bad := range []string{"", "-1", "12a", "1234567890123456789"} {
		if _, ok := parseInt([]byte(bad)); ok {
			t.Errorf("parseInt(%q) accepted", bad)
		}
	}
}
