//go:build linux

package loader

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	const limit = 1000
	for _, mode := range meterModes {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, time.Minute)
			reg := prometheus.NewPedanticRegistry()
			c, err := NewCollector(reg, r.m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewCollector(reg, r.m); err == nil {
				t.Fatal("registered twice")
			}
			node, id, peer := r.link(t, "tcp4", BytePolicy{PerWindow: limit, Action: ActionDisc})
			if _, err := node.Write(make([]byte, 300)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(peer, make([]byte, 300)); err != nil {
				t.Fatal(err)
			}
			// 1000 bytes in pass; 200 more hit the fence (the kernel
			// passes or drops whole segments, so they go separately).
			if _, err := peer.Write(make([]byte, limit)); err != nil {
				t.Fatal(err)
			}
			received := make(chan int64, 1)
			go func() {
				n, _ := io.Copy(io.Discard, node)
				received <- n
			}()
			sent := writeAsync(peer, make([]byte, 200))
			if ev := waitEvent(t, r.m, id, 5*time.Second); ev.Kind != EventLimit {
				t.Fatalf("event %+v", ev)
			}
			c.CountXMPP(ActionDrop)
			node.Close()
			peer.Close()
			<-sent
			if n := <-received; n != limit {
				t.Fatalf("node read %d", n)
			}

			problems, err := testutil.CollectAndLint(c)
			if err != nil || len(problems) > 0 {
				t.Fatalf("lint: %v %+v", err, problems)
			}
			port := node.LocalAddr().String()[strings.LastIndexByte(node.LocalAddr().String(), ':')+1:]
			other := "userspace"
			if mode == "userspace" {
				other = "ebpf"
			}
			want := fmt.Sprintf(`
# HELP starling_throttle_bytes_total TCP payload bytes passed on policed connections, by listener port and direction.
# TYPE starling_throttle_bytes_total counter
starling_throttle_bytes_total{direction="in",listener="%[1]s"} 1000
starling_throttle_bytes_total{direction="out",listener="%[1]s"} 300
# HELP starling_throttle_limit_events_total Throttling limits reached, by type (bin here) and action.
# TYPE starling_throttle_limit_events_total counter
starling_throttle_limit_events_total{action="disc",type="bin"} 1
starling_throttle_limit_events_total{action="drop",type="bin"} 0
starling_throttle_limit_events_total{action="disc",type="xmpp"} 0
starling_throttle_limit_events_total{action="drop",type="xmpp"} 1
# HELP starling_throttle_mode Traffic throttling mode: 1 for the active one.
# TYPE starling_throttle_mode gauge
starling_throttle_mode{mode="%[2]s"} 1
starling_throttle_mode{mode="%[3]s"} 0
`, port, mode, other)
			if err := testutil.CollectAndCompare(c, strings.NewReader(want),
				"starling_throttle_bytes_total", "starling_throttle_limit_events_total", "starling_throttle_mode"); err != nil {
				t.Fatal(err)
			}
			// Dropped bytes: the kernel drops whole segments (and their
			// retransmissions), the wrapper the bytes past the limit.
			if got := testutil.ToFloat64(collectorOnly(c, "starling_throttle_dropped_bytes_total")); got < 200 {
				t.Fatalf("dropped bytes %v, want at least 200", got)
			}
		})
	}
}

// collectorOnly narrows c to one metric, for testutil.ToFloat64.
func collectorOnly(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		f.c.Collect(all)
		close(all)
	}()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}
