// Package load is starling-bench's load generator: the scenarios (login
// rate, one-to-one throughput in a closed loop, latency at a fixed rate in an
// open loop, memory per idle session) and the types they share. A scenario
// drives a Target, which is a list of nodes with endpoints: a single server
// is a one-node target, and cluster scenarios (senders on one node,
// receivers on another) use the same shape with more nodes.
package load

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/starling-xmpp/starling/perf/peer"
	"github.com/starling-xmpp/starling/perf/procstat"
	"github.com/starling-xmpp/starling/perf/progress"
	"github.com/starling-xmpp/starling/perf/xmppclient"
	"github.com/starling-xmpp/starling/xmpp/sasl"
)

// Node is one server process of a target.
type Node struct {
	Name      string
	Endpoints []peer.Endpoint
	// PID returns the node's main process id (0 if unknown); its process
	// tree's CPU time and RSS are read from /proc.
	PID func() int
}

// Addr returns the node's listener for a security mode.
func (n Node) Addr(sec xmppclient.Security) (string, error) {
	for _, e := range n.Endpoints {
		if e.Security == sec {
			return e.Addr, nil
		}
	}
	return "", fmt.Errorf("node %s has no %v listener", n.Name, sec)
}

// Target is what a scenario measures: one server or a cluster of nodes
// serving one domain.
type Target struct {
	Name   string // "starling", "ejabberd", "prosody", "starling-cluster"
	Domain string
	Nodes  []Node
}

// SingleNode makes a one-node target from a running server.
func SingleNode(s peer.Server) Target {
	var eps []peer.Endpoint
	for _, sec := range []xmppclient.Security{xmppclient.Plain, xmppclient.StartTLS, xmppclient.DirectTLS} {
		eps = append(eps, s.Endpoint(sec))
	}
	return Target{Name: s.Name(), Domain: s.Domain(), Nodes: []Node{{Name: s.Name(), Endpoints: eps, PID: s.PID}}}
}

// Env is what every scenario run shares.
type Env struct {
	Accounts []peer.Account
	Cache    *sasl.SaltCache
	Log      *slog.Logger
	// Progress is where bars are drawn (stderr); nil draws nothing.
	Progress io.Writer
	// Holder starts helper processes that hold idle sessions (see Idle);
	// nil holds them in this process.
	Holder HolderFactory
}

func (e Env) bar(label string, total int64, unit string) *progress.Bar {
	if e.Progress == nil {
		return progress.Discard(label, total)
	}
	return progress.New(e.Progress, label, total, unit)
}

// Scenario is one kind of measurement.
type Scenario interface {
	// Name is the scenario's short name in results ("login", "throughput"...).
	Name() string
	// Variant describes its parameters ("SCRAM-SHA-1/starttls c=16").
	Variant() string
	// Run measures the target and returns one result.
	Run(ctx context.Context, t Target, env Env) (Result, error)
	// Accounts is the number of accounts the scenario needs.
	Accounts() int
}

// Result is one scenario's measurement of one target.
type Result struct {
	Scenario string `json:"scenario"`
	// Group is the plan's group that measured it: groups that compare ways
	// of running one server (the eBPF cost) get a section of their own.
	Group string `json:"group,omitempty"`
	// Round is the round of a group run more than once (1, 2...), else 0.
	Round   int                `json:"round,omitempty"`
	Variant string             `json:"variant"`
	Target  string             `json:"target"`
	Version string             `json:"version,omitempty"`
	Seconds float64            `json:"seconds"` // length of the measured window
	Metrics map[string]float64 `json:"metrics"`
	// Points are series a plot draws (memory per session at each step,
	// latency at each percentile).
	Points []Point `json:"points,omitempty"`
	// ServerCPU and GeneratorCPU are CPU seconds spent in the measured
	// window; the generator shares the cores with the server.
	ServerCPU    float64 `json:"server_cpu_s"`
	ServerRSS    int64   `json:"server_rss_bytes"`
	GeneratorCPU float64 `json:"generator_cpu_s"`
	Errors       int64   `json:"errors"`
	// ErrorSample is the first of Errors, to tell what went wrong.
	ErrorSample string `json:"error_sample,omitempty"`
	Error       string `json:"error,omitempty"`
	// Unavailable marks an Error that says the target cannot run here
	// (e.g. the eBPF meter without root): reported, not a failed run.
	Unavailable bool `json:"unavailable,omitempty"`
}

// Point is one (x, y) of a series.
type Point struct {
	Series string  `json:"series"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
}

// meter snapshots the server's and the generator's resource use.
type meter struct {
	pids   []func() int
	srv    procstat.Usage
	gen    time.Duration
	extra  func() time.Duration // CPU of helper processes, if any
	extra0 time.Duration
	start  time.Time
}

func newMeter(t Target, extra func() time.Duration) *meter {
	m := &meter{extra: extra}
	for _, n := range t.Nodes {
		if n.PID != nil {
			m.pids = append(m.pids, n.PID)
		}
	}
	return m
}

func (m *meter) server() procstat.Usage {
	var u procstat.Usage
	for _, pid := range m.pids {
		if p := pid(); p > 0 {
			one, err := procstat.Reader{}.Tree(p)
			if err == nil {
				u.CPU += one.CPU
				u.RSS += one.RSS
				u.Procs += one.Procs
			}
		}
	}
	return u
}

// selfCPU is this process's user+system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *meter) begin() {
	m.srv = m.server()
	m.gen = selfCPU()
	if m.extra != nil {
		m.extra0 = m.extra()
	}
	m.start = time.Now()
}

// end fills the window's figures into r.
func (m *meter) end(r *Result) {
	r.Seconds = time.Since(m.start).Seconds()
	u := m.server()
	r.ServerCPU = (u.CPU - m.srv.CPU).Seconds()
	r.ServerRSS = u.RSS
	g := selfCPU() - m.gen
	if m.extra != nil {
		g += m.extra() - m.extra0
	}
	r.GeneratorCPU = g.Seconds()
	// The cores are shared: a high load average means the figures were
	// taken under contention (compare CPU per unit, which suffers less).
	if la, ok := loadAvg(); ok {
		r.Metrics["loadavg_1m"] = la
	}
}

// loadAvg returns the 1-minute load average.
func loadAvg() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}

// waitCtx sleeps for d or until ctx ends, whichever is first.
func waitCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dialAll logs in clients for the given accounts on one node, n at a time,
// and returns them in order. On failure it closes what it opened.
func dialAll(ctx context.Context, addr string, t Target, sec xmppclient.Security, mech string, accts []peer.Account, resource string, cache *sasl.SaltCache, bar *progress.Bar) ([]*xmppclient.Client, error) {
	out := make([]*xmppclient.Client, len(accts))
	errc := make(chan error, 1)
	next := make(chan int)
	done := make(chan struct{})
	const workers = 16
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				c, err := xmppclient.Dial(dctx, xmppclient.Config{Addr: addr, Domain: t.Domain, User: accts[i].User,
					Password: accts[i].Password, Resource: resource, Security: sec, Mechanism: mech, Cache: cache, Presence: true})
				cancel()
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					continue
				}
				out[i] = c
				if bar != nil {
					bar.Add(1)
				}
			}
		}()
	}
	var err error
feed:
	for i := range accts {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	for range workers {
		<-done
	}
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		closeAll(out)
		return nil, err
	}
	return out, nil
}

func closeAll(cs []*xmppclient.Client) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}
