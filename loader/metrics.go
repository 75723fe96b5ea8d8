package loader

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Meter's counters to Prometheus. It reads them at
// scrape time (from the kernel's maps in eBPF mode), so there is no delta
// bookkeeping: the kernel's per-port counters only grow, closed
// connections included.
type Collector struct {
	m       Meter
	mode    *prometheus.Desc
	bytes   *prometheus.Desc
	events  *prometheus.Desc
	dropped *prometheus.Desc
	lost    *prometheus.Desc
	// xmpp limit events are counted by the node (CountXMPP) and exported
	// here, since one metric cannot have two collectors.
	xmpp [3]atomic.Uint64
}

// modes are the values of the mode label; the active one is 1.
var modes = []string{"ebpf", "userspace"}

// NewCollector registers a collector of m's counters with reg.
func NewCollector(reg prometheus.Registerer, m Meter) (*Collector, error) {
	c := &Collector{
		m: m,
		mode: prometheus.NewDesc("starling_throttle_mode",
			"Traffic throttling mode: 1 for the active one.", []string{"mode"}, nil),
		bytes: prometheus.NewDesc("starling_throttle_bytes_total",
			"TCP payload bytes passed on policed connections, by listener port and direction.",
			[]string{"listener", "direction"}, nil),
		events: prometheus.NewDesc("starling_throttle_limit_events_total",
			"Throttling limits reached, by type (bin here) and action.", []string{"type", "action"}, nil),
		dropped: prometheus.NewDesc("starling_throttle_dropped_bytes_total",
			"TCP payload bytes dropped by a throttling fence.", nil, nil),
		lost: prometheus.NewDesc("starling_throttle_lost_events_total",
			"Throttling events lost because the event buffer was full.", nil, nil),
	}
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register throttle metrics: %w", err)
	}
	return c, nil
}

// CountXMPP counts an `xmpp` (stanza) limit reached by the node, exported
// as starling_throttle_limit_events_total{type="xmpp"}.
func (c *Collector) CountXMPP(a Action) {
	if a <= ActionDrop {
		c.xmpp[a].Add(1)
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.mode, c.bytes, c.events, c.dropped, c.lost} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	active := c.m.Mode()
	for _, mode := range modes {
		v := 0.0
		if mode == active {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.mode, prometheus.GaugeValue, v, mode)
	}
	var disc, drop, dropped, lost uint64
	for _, t := range c.m.Totals() {
		port := strconv.Itoa(int(t.Port))
		for _, d := range []Direction{Ingress, Egress} {
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(t.Bytes[d]), port, d.String())
		}
		disc += t.DiscEvents
		drop += t.DropEvents
		dropped += t.Dropped[Ingress] + t.Dropped[Egress]
		lost += t.LostEvents
	}
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(disc), "bin", ActionDisc.String())
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(drop), "bin", ActionDrop.String())
	for _, a := range []Action{ActionDisc, ActionDrop} {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(c.xmpp[a].Load()), "xmpp", a.String())
	}
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(dropped))
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(lost))
}
