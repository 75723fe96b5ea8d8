// Package memtune returns memory to the operating system while the node is quiet.
//
// Most XMPP sessions are idle most of the time, so what an operator pays for is the memory of idle
// sessions. With Go's default GC target (GOGC=100) the heap may grow to twice what is live before a
// collection, and the pages a login storm touched stay resident afterwards: measured at 10 000 idle
// sessions, about 3 KB live per session became 7–9 KB of RSS. A low target costs CPU only when the
// node allocates, which an idle node barely does; a busy node wants the high one. So the tuner watches
// the allocation rate: when it stays low against the live heap, it lowers the GC target and hands the
// free pages back at once; as soon as the node allocates again, it restores the busy target.
//
// The GC target is a process-wide setting, so the process (cmd/starling) runs the tuner, not a node:
// tests run several nodes in one process. An operator who sets GOGC keeps it: the tuner then stays off.
package memtune

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Options tune the tuner; zero values take the defaults.
type Options struct {
	// Busy is the GC percent while the node allocates (default 100, Go's own).
	Busy int
	// Quiet is the GC percent while it is quiet (default 25).
	Quiet int
	// Interval between samples of the allocation counter (default 500 ms).
	Interval time.Duration
	// QuietFor is how long the allocation rate must stay low before the node counts as quiet (default
	// 1 s, two samples): a lull between two requests must not flip the target back and forth, but an
	// operator who looks at the node a few seconds after a storm should see its idle memory.
	QuietFor time.Duration
	// QuietShare: the node is quiet while it allocates less per second than this share of its live heap
	// (default 1/8). At that rate and the quiet target, a collection runs every two seconds or less
	// often, which costs an idle node a few milliseconds of CPU.
	QuietShare float64
	Log        *slog.Logger
}

func (o *Options) defaults() {
	if o.Busy <= 0 {
		o.Busy = 100
	}
	if o.Quiet <= 0 {
		o.Quiet = 25
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.QuietFor <= 0 {
		o.QuietFor = time.Second
	}
	if o.QuietShare <= 0 {
		o.QuietShare = 1.0 / 8
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// sample is one reading of the runtime's counters.
type sample struct {
	at     time.Duration // since the tuner started
	allocs uint64        // bytes allocated since the process started
	live   uint64        // live heap after the last collection
}

// action is what the controller asks of the runtime after a sample.
type action int

const (
	none      action = iota
	goQuiet          // lower the GC target and return free pages
	goBusy           // restore the busy target
	stayQuiet        // nothing to change
)

// Against flapping, for a node whose allocation rate hovers around the threshold: once quiet, it turns
// busy only at twice the quiet rate. Pages are handed back at every turn to quiet, even soon after the
// last: left to the background scavenger, the pages of a second storm stayed resident for longer than
// an operator would wait (measured: 7.5 instead of 5.6 KiB per idle session at 10 000), and a forced
// collection of an idle node's heap costs milliseconds.
const busyFactor = 2

// controller decides from samples alone, so that its logic is tested without touching the runtime.
type controller struct {
	opts       Options
	quiet      bool
	last       sample
	have       bool
	quietSince time.Duration // start of the current low-rate stretch; -1 when the rate was high
}

func newController(o Options) *controller {
	o.defaults()
	return &controller{opts: o, quietSince: -1}
}

func (c *controller) step(s sample) action {
	if !c.have {
		c.last, c.have = s, true
		return none
	}
	dt := (s.at - c.last.at).Seconds()
	if dt <= 0 {
		return none
	}
	rate := float64(s.allocs-c.last.allocs) / dt
	prev := c.last
	c.last = s
	limit := c.opts.QuietShare * float64(max(s.live, 1<<20))
	if c.quiet {
		limit *= busyFactor
	}
	low := rate < limit
	if !low {
		c.quietSince = -1
		if c.quiet {
			c.quiet = false
			return goBusy
		}
		return none
	}
	if c.quietSince < 0 {
		c.quietSince = prev.at
	}
	if c.quiet {
		return stayQuiet
	}
	if s.at-c.quietSince >= c.opts.QuietFor {
		c.quiet = true
		return goQuiet
	}
	return none
}

// runtimeControl is what the tuner changes in the runtime; tests replace it.
type runtimeControl interface {
	read() (allocs, live uint64)
	setGCPercent(int)
	freeOSMemory()
}

type goRuntime struct{ s []metrics.Sample }

func newGoRuntime() *goRuntime {
	return &goRuntime{s: []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}}
}

func (g *goRuntime) read() (uint64, uint64) {
	metrics.Read(g.s)
	var v [2]uint64
	for i, s := range g.s {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return v[0], v[1]
}

func (goRuntime) setGCPercent(p int) { debug.SetGCPercent(p) }
func (goRuntime) freeOSMemory()      { debug.FreeOSMemory() }

// Run tunes the GC target until ctx ends, then restores the busy target. It returns at once, doing
// nothing, when gogcEnv (the GOGC environment variable) is set: the operator's choice wins.
func Run(ctx context.Context, o Options, gogcEnv string) {
	o.defaults()
	if gogcEnv != "" {
		o.Log.Info("memory tuning off: GOGC is set", "GOGC", gogcEnv)
		return
	}
	o.Log.Info("memory tuning on: the GC target drops while the node is quiet (GOGC turns this off)",
		"busy_percent", o.Busy, "quiet_percent", o.Quiet, "quiet_after", o.QuietFor)
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	run(ctx, newController(o), newGoRuntime(), time.Now(), t.C)
}

// run samples at start and at every tick; the ticks' times are the samples' times.
func run(ctx context.Context, c *controller, rt runtimeControl, start time.Time, tick <-chan time.Time) {
	rt.setGCPercent(c.opts.Busy)
	defer rt.setGCPercent(c.opts.Busy)
	now := start
	for {
		allocs, live := rt.read()
		switch c.step(sample{at: now.Sub(start), allocs: allocs, live: live}) {
		case goQuiet:
			rt.setGCPercent(c.opts.Quiet)
			rt.freeOSMemory()
			_, after := rt.read()
			c.opts.Log.Debug("memory tuning: quiet, free pages returned", "gc_percent", c.opts.Quiet, "live_bytes", after)
		case goBusy:
			rt.setGCPercent(c.opts.Busy)
			c.opts.Log.Debug("memory tuning: busy", "gc_percent", c.opts.Busy)
		}
		select {
		case <-ctx.Done():
			return
		case now = <-tick:
		}
	}
}
