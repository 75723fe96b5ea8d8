package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/starling-xmpp/starling/node/conn"
)

func TestCountsAndLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	// A second node in the same process gets its own registry and must not collide.
	if _, err := New(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	m.ConnOpened()
	m.ConnOpened()
	m.ConnClosed(conn.ReasonSlowConsumer)
	m.Auth("SCRAM-SHA-256", true)
	m.Auth("PLAIN", false)
	m.StanzaIn("message")
	m.StanzaOut("presence")
	m.ObserveRoute("message", 3*time.Microsecond)
	if got := testutil.ToFloat64(m.connections); got != 1 {
		t.Errorf("open connections %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.closes.WithLabelValues("slow_consumer")); got != 1 {
		t.Errorf("slow consumer closes %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.auths.WithLabelValues("SCRAM-SHA-256", "success")); got != 1 {
		t.Errorf("auth successes %v", got)
	}
	problems, err := testutil.CollectAndLint(m.closes)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	for _, c := range []prometheus.Collector{m.connections, m.stanzasIn, m.stanzasOut, m.auths, m.route, m.sessions} {
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Fatalf("lint: %v %v", err, problems)
		}
	}
	n, err := testutil.GatherAndCount(reg, "starling_c2s_stanzas_in_total")
	if err != nil || n != 3 {
		t.Fatalf("stanza series %d %v", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP starling_c2s_connections_total Client connections accepted.
# TYPE starling_c2s_connections_total counter
starling_c2s_connections_total 2
`), "starling_c2s_connections_total"); err != nil {
		t.Fatal(err)
	}
}
