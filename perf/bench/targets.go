package bench

import (
	"context"
	"fmt"

	"github.com/starling-xmpp/starling/perf/peer"
)

// TargetSpec is one way a group runs a server other than the run's own
// instance of it: a Starling with another traffic meter (the eBPF-cost
// group), and later a cluster of nodes. The target derives from the run's
// server named Server, so `-servers` selects it and it shares that
// server's binary, state and accounts.
type TargetSpec struct {
	Server string     // the run's server it derives from: "starling"
	Meter  peer.Meter // Starling's traffic meter
}

// String names the target as results do.
func (t TargetSpec) String() string {
	switch t.Meter {
	case peer.MeterUserspace:
		return t.Server + "-userspace"
	case peer.MeterNone:
		return t.Server + "-unmetered"
	}
	return t.Server
}

// derive makes the target from the run's server.
func (t TargetSpec) derive(base peer.Server) (peer.Server, error) {
	st, ok := base.(*peer.Starling)
	if !ok {
		return nil, fmt.Errorf("target %s: %s has no variants", t, base.Name())
	}
	return st.WithMeter(t.Meter), nil
}

// target is one server a group runs, or why it cannot.
type target struct {
	name   string
	family string // the run's server it derives from; accounts are per family
	server peer.Server
	err    error
}

// targets makes (once) and tracks the servers the groups of a run measure,
// and keeps the run's server list up to date with the derived ones.
type targets struct {
	base    []peer.Server
	run     *Run
	derived map[TargetSpec]target
	order   []peer.Server
}

func newTargets(base []peer.Server, run *Run) *targets {
	return &targets{base: base, run: run, derived: map[TargetSpec]target{}, order: append([]peer.Server(nil), base...)}
}

// all is every server made so far, to stop on the way out.
func (ts *targets) all() []peer.Server { return ts.order }

// of lists the targets of g: the run's servers, or g's own targets derived
// from those of the run's servers that are available (the others are left
// out: the run measures only what -servers names).
func (ts *targets) of(ctx context.Context, g Group) []target {
	if len(g.Targets) == 0 {
		out := make([]target, len(ts.base))
		for i, s := range ts.base {
			out[i] = target{name: s.Name(), family: s.Name(), server: s}
		}
		return out
	}
	var out []target
	for _, spec := range g.Targets {
		if t, ok := ts.derived[spec]; ok {
			out = append(out, t)
			continue
		}
		var base peer.Server
		for _, s := range ts.base {
			if s.Name() == spec.Server {
				base = s
			}
		}
		if base == nil {
			continue
		}
		t := target{name: spec.String(), family: spec.Server}
		t.server, t.err = spec.derive(base)
		if t.err == nil {
			t.err = t.server.Check(ctx)
		}
		ts.derived[spec] = t
		if t.server != nil {
			ts.order = append(ts.order, t.server)
		}
		// The run's own instance keeps its record: it is available even when
		// this way of running it is not (the group's results say so).
		if t.name != spec.Server {
			info := ts.info(t.name, spec.Server)
			info.Available = t.err == nil
			if t.err != nil {
				info.Note = t.err.Error()
			}
		}
		out = append(out, t)
	}
	return out
}

// info returns the run's record of the named server, adding one (with the
// version and endpoint of the server it derives from) if needed.
func (ts *targets) info(name, family string) *ServerInfo {
	var base ServerInfo
	for i := range ts.run.Servers {
		switch ts.run.Servers[i].Name {
		case name:
			return &ts.run.Servers[i]
		case family:
			base = ts.run.Servers[i]
		}
	}
	ts.run.Servers = append(ts.run.Servers, ServerInfo{Name: name, Version: base.Version, Endpoint: base.Endpoint})
	return &ts.run.Servers[len(ts.run.Servers)-1]
}

// started records which meter a Starling target ran with, once it started.
func (ts *targets) started(s peer.Server, err error) {
	st, ok := s.(*peer.Starling)
	if !ok {
		return
	}
	info := ts.info(s.Name(), "starling")
	if err != nil {
		if st.Meter() != peer.MeterDefault && st.Meter() != peer.MeterEBPF && info.Note == "" {
			// A derived target's record is its own: it did not run.
			info.Available, info.Note = false, err.Error()
		}
		return
	}
	switch {
	case st.Meter() == peer.MeterNone:
		info.Meter = "none"
	case st.MeterMode() != "":
		info.Meter = st.MeterMode()
	}
}
