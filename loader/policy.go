package loader

import (
	"fmt"
	"math"
	"time"
)

// Action is what happens when a byte limit is reached (DESIGN.md §2).
type Action uint8

const (
	// ActionNone only counts.
	ActionNone Action = 0
	// ActionDisc fences the direction at the first byte over the limit;
	// the node then ends the stream with <policy-violation/>.
	ActionDisc Action = 1
	// ActionDrop reports the limit once per window; the node pauses the
	// connection until the window ends. A fence at 1.5× the limit backs a
	// node that does not react.
	ActionDrop Action = 2
)

// String returns the setting's spelling of the action.
func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionDisc:
		return "disc"
	case ActionDrop:
		return "drop"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Direction is the way bytes travel, seen from the node.
type Direction uint8

const (
	// Ingress is bytes the node receives.
	Ingress Direction = 0
	// Egress is bytes the node sends.
	Egress Direction = 1
)

// String returns "in" or "out", the metric label values.
func (d Direction) String() string {
	if d == Ingress {
		return "in"
	}
	return "out"
}

// Scope tells which limit an event is about.
type Scope uint8

const (
	// ScopeWindow is the per-window (per-minute) limit.
	ScopeWindow Scope = 0
	// ScopeLifetime is the limit over the connection's life.
	ScopeLifetime Scope = 1
)

// String returns "window" or "lifetime".
func (s Scope) String() string {
	if s == ScopeWindow {
		return "window"
	}
	return "lifetime"
}

// BytePolicy is a `bin` throttling rule. Each direction is counted and
// limited separately (Tigase checks sent >= limit || received >= limit).
// A zero limit means unlimited; the zero BytePolicy only counts.
type BytePolicy struct {
	PerWindow uint64 // bytes per window (a minute in production)
	Lifetime  uint64 // bytes over the connection's life
	Action    Action
}

// Validate reports whether the policy can be loaded.
func (p BytePolicy) Validate() error {
	if p.Action > ActionDrop {
		return fmt.Errorf("policy action %d: want none, disc or drop", p.Action)
	}
	// The 1.5× ceiling of drop must not overflow.
	const max = math.MaxUint64 / 2
	if p.PerWindow > max || p.Lifetime > max {
		return fmt.Errorf("policy limit over %d bytes", uint64(max))
	}
	return nil
}

// Window is the fixed, clock-aligned window that per-window limits count
// in: windows start at multiples of Length since the Unix epoch, so every
// node and the kernel agree on where a minute starts (tumbling windows,
// reset on the boundary; DESIGN.md §2).
type Window struct {
	Length time.Duration
}

// Index returns the number of the window t falls in.
func (w Window) Index(t time.Time) uint64 {
	return uint64(t.UnixNano()) / uint64(w.Length)
}

// Start returns the time window i starts.
func (w Window) Start(i uint64) time.Time {
	return time.Unix(0, int64(i*uint64(w.Length)))
}

// End returns the time the window holding t ends, which is when a
// connection paused by `drop` resumes.
func (w Window) End(t time.Time) time.Time {
	return w.Start(w.Index(t) + 1)
}

// Dir flags, the same bits as the kernel's enum dir_flag.
const (
	flagFenced         = 1
	flagFencedWindow   = 2
	flagNotified       = 4
	flagNotifiedWindow = 8
)

// dirCounter is one direction of one connection, the userspace twin of the
// kernel's struct dir_state: same fields, same decisions.
type dirCounter struct {
	window      uint64
	windowBytes uint64
	totalBytes  uint64
	dropped     uint64
	flags       uint32
}

// limitHit is an event admit asks its caller to report.
type limitHit struct {
	action Action
	scope  Scope
	fenced bool
}

// roll starts window win if the counter is still in an older one.
func (d *dirCounter) roll(win uint64) {
	if d.window != win {
		d.window = win
		d.windowBytes = 0
		d.flags &^= flagFencedWindow | flagNotifiedWindow
	}
}

// room returns how many more bytes fit under limit (0 = unlimited).
func room(cur, limit uint64) uint64 {
	if limit == 0 {
		return math.MaxUint64
	}
	if cur >= limit {
		return 0
	}
	return limit - cur
}

// headroom returns how many bytes may pass in window win before the drop
// ceiling (1.5× each limit); for other actions it is unlimited. The
// userspace meter reads at most this much, so the ceiling pauses it instead
// of losing bytes it already took from the socket.
func (d *dirCounter) headroom(p BytePolicy, win uint64) uint64 {
	d.roll(win)
	if d.flags&(flagFenced|flagFencedWindow) != 0 {
		return 0
	}
	if p.Action != ActionDrop {
		return math.MaxUint64
	}
	return min(room(d.windowBytes, p.PerWindow+p.PerWindow/2), room(d.totalBytes, p.Lifetime+p.Lifetime/2))
}

// admit accounts n bytes in window win under policy p and returns how many
// pass (the rest is dropped) and the event to report, if any. It mirrors
// handle() in bpf/throttle.c, except that the kernel passes or drops whole
// segments and admit can cut a buffer at the exact limit.
func (d *dirCounter) admit(p BytePolicy, win, n uint64) (pass uint64, hit *limitHit) {
	d.roll(win)
	if d.flags&(flagFenced|flagFencedWindow) != 0 {
		d.dropped += n
		return 0, nil
	}
	winRoom, lifeRoom := room(d.windowBytes, p.PerWindow), room(d.totalBytes, p.Lifetime)
	if n <= winRoom && n <= lifeRoom {
		d.windowBytes += n
		d.totalBytes += n
		return n, nil
	}
	scope := ScopeWindow
	if n > lifeRoom {
		scope = ScopeLifetime
	}
	switch p.Action {
	case ActionDisc:
		pass = min(winRoom, lifeRoom)
		if d.flags&flagNotified == 0 {
			hit = &limitHit{action: ActionDisc, scope: scope, fenced: true}
		}
		d.flags |= flagFenced | flagNotified
	case ActionDrop:
		winCeil := room(d.windowBytes, p.PerWindow+p.PerWindow/2)
		lifeCeil := room(d.totalBytes, p.Lifetime+p.Lifetime/2)
		pass = min(n, winCeil, lifeCeil)
		var fence uint32
		switch {
		case n > lifeCeil:
			fence = flagFenced
		case n > winCeil:
			fence = flagFencedWindow
		}
		if d.flags&flagNotifiedWindow == 0 {
			hit = &limitHit{action: ActionDrop, scope: scope, fenced: fence != 0}
		}
		d.flags |= flagNotifiedWindow | fence
	default:
		pass = n
	}
	d.windowBytes += pass
	d.totalBytes += pass
	d.dropped += n - pass
	return pass, hit
}
