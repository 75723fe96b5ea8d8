// Package metrics holds the node's Prometheus metrics, registered on a registry the node owns (never
// the global one), so that several nodes can live in one test process.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/starling-xmpp/starling/node/conn"
)

// Metrics are the node's counters and gauges. Its methods match what node/c2s and node/router report.
type Metrics struct {
	connections      prometheus.Gauge
	connectionsTotal prometheus.Counter
	closes           *prometheus.CounterVec
	sessions         prometheus.Gauge
	stanzasIn        *prometheus.CounterVec
	stanzasOut       *prometheus.CounterVec
	auths            *prometheus.CounterVec
	route            *prometheus.HistogramVec

	// pre-resolved children: the hot path must not look labels up per stanza
	inMsg, inPres, inIQ             prometheus.Counter
	outMsg, outPres, outIQ, outElse prometheus.Counter
	routeMsg, routePres, routeIQ    prometheus.Observer
}

// New registers the node's metrics (and the Go and process collectors) on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "starling_c2s_connections", Help: "Open client connections.",
		}),
		connectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "starling_c2s_connections_total", Help: "Client connections accepted.",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "starling_c2s_connection_closes_total", Help: "Client connections closed, by reason.",
		}, []string{"reason"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "starling_c2s_sessions", Help: "Bound client sessions (resources).",
		}),
		stanzasIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "starling_c2s_stanzas_in_total", Help: "Stanzas received from clients, by kind.",
		}, []string{"kind"}),
		stanzasOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "starling_c2s_stanzas_out_total", Help: "Stanzas queued to clients, by kind.",
		}, []string{"kind"}),
		auths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "starling_c2s_authentications_total", Help: "SASL authentications, by mechanism and outcome.",
		}, []string{"mechanism", "outcome"}),
		route: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "starling_router_route_seconds",
			Help:    "Time to route one client stanza, from decoded to queued for its recipients.",
			Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1},
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.connectionsTotal, m.closes, m.sessions, m.stanzasIn,
		m.stanzasOut, m.auths, m.route, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range conn.Reasons() {
		m.closes.WithLabelValues(r.String())
	}
	m.inMsg, m.inPres, m.inIQ = m.stanzasIn.WithLabelValues("message"), m.stanzasIn.WithLabelValues("presence"), m.stanzasIn.WithLabelValues("iq")
	m.outMsg, m.outPres, m.outIQ, m.outElse = m.stanzasOut.WithLabelValues("message"), m.stanzasOut.WithLabelValues("presence"),
		m.stanzasOut.WithLabelValues("iq"), m.stanzasOut.WithLabelValues("other")
	m.routeMsg, m.routePres, m.routeIQ = m.route.WithLabelValues("message"), m.route.WithLabelValues("presence"), m.route.WithLabelValues("iq")
	return m, nil
}

// ConnOpened counts an accepted connection.
func (m *Metrics) ConnOpened() { m.connections.Inc(); m.connectionsTotal.Inc() }

// ConnClosed counts a closed connection by reason.
func (m *Metrics) ConnClosed(r conn.Reason) {
	m.connections.Dec()
	m.closes.WithLabelValues(r.String()).Inc()
}

// SessionBound counts a bound resource.
func (m *Metrics) SessionBound() { m.sessions.Inc() }

// SessionEnded counts a resource that went away.
func (m *Metrics) SessionEnded() { m.sessions.Dec() }

// Auth counts a SASL outcome.
func (m *Metrics) Auth(mechanism string, ok bool) {
	outcome := "failure"
	if ok {
		outcome = "success"
	}
	if mechanism == "" {
		mechanism = "none"
	}
	m.auths.WithLabelValues(mechanism, outcome).Inc()
}

// StanzaIn counts a stanza from a client.
func (m *Metrics) StanzaIn(kind string) {
	switch kind {
	case "message":
		m.inMsg.Inc()
	case "presence":
		m.inPres.Inc()
	case "iq":
		m.inIQ.Inc()
	}
}

// StanzaOut counts a stanza queued to a client.
func (m *Metrics) StanzaOut(kind string) {
	switch kind {
	case "message":
		m.outMsg.Inc()
	case "presence":
		m.outPres.Inc()
	case "iq":
		m.outIQ.Inc()
	default:
		m.outElse.Inc()
	}
}

// ObserveRoute records a routing time.
func (m *Metrics) ObserveRoute(kind string, d time.Duration) {
	s := d.Seconds()
	switch kind {
	case "message":
		m.routeMsg.Observe(s)
	case "presence":
		m.routePres.Observe(s)
	case "iq":
		m.routeIQ.Observe(s)
	}
}
