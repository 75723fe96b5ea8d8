package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf"
)

// ConnID names a metered connection: its socket cookie (SO_COOKIE), the key
// the kernel programs use, so a kernel event maps to exactly one net.Conn.
type ConnID uint64

// Meter counts and polices the bytes of TCP connections on policed ports.
// Two implementations share its windows and decisions: Loader (eBPF: the
// kernel counts, fences and reports) and Userspace (a net.Conn wrapper).
type Meter interface {
	// Mode returns "ebpf" or "userspace".
	Mode() string
	// SetPortPolicy sets or changes, at runtime, the policy of connections
	// whose local port (accepted links) or else remote port (dialled
	// links) is port.
	SetPortPolicy(port uint16, p BytePolicy) error
	// Track returns the conn to use from now on and its ID. The eBPF meter
	// returns c itself; the userspace one wraps it. Pass the TCP
	// connection, before any TLS layer: bytes are socket bytes.
	Track(c net.Conn) (net.Conn, ConnID, error)
	// Events reports limits reached and connections closed. It is closed
	// by Close. The node must keep reading it: a full buffer loses events
	// (counted in PortTotals.LostEvents). A close is reported only for a
	// connection the meter has counted bytes on, so the node should not
	// wait for one to forget a connection it closed itself.
	Events() <-chan Event
	// WindowEnd returns when the window holding t ends, as the meter's
	// clock sees it: a connection paused by `drop` resumes then.
	WindowEnd(t time.Time) time.Time
	// Conn returns the counters of one connection; false if the meter has
	// not seen payload on it (or has forgotten it after its close).
	Conn(id ConnID) (ConnStats, bool)
	// Conns returns the counters of every connection the meter knows.
	Conns() []ConnStats
	// Totals returns, per policed port, counters that only grow.
	Totals() []PortTotals
	// Destroy kills a connection's socket, for one that outlived the
	// grace period the node gave it after an event.
	Destroy(id ConnID) error
	// Close releases everything the meter holds.
	Close() error
}

// Options configure a Meter.
type Options struct {
	// Window is the length of the per-window limits; zero means a minute.
	// Tests use seconds.
	Window time.Duration
	// Cgroup is the cgroup v2 directory to attach to (eBPF only). Empty
	// means the process's own cgroup; when that is the root cgroup, a
	// child cgroup is created and the process moves into it, so that two
	// nodes on one host never police each other's sockets.
	Cgroup string
	// EventBuffer is the capacity of the Events channel; zero means 4096.
	EventBuffer int
	// Logger receives the meter's own diagnostics; nil means slog.Default.
	Logger *slog.Logger
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Window == 0 {
		o.Window = time.Minute
	}
	if o.Window < time.Millisecond {
		return o, fmt.Errorf("throttle window %v: want at least 1ms", o.Window)
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = 4096
	}
	if o.EventBuffer < 0 {
		return o, fmt.Errorf("event buffer %d: want a positive size", o.EventBuffer)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// Unavailable reports whether err from New means that eBPF cannot be used
// here (kernel feature missing, not enough privilege, no cgroup v2), so the
// caller should log err and use NewUserspace instead. Other errors are bugs
// or misconfiguration and should stop the node.
func Unavailable(err error) bool {
	return errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission)
}

// EventKind tells what an Event reports.
type EventKind uint8

const (
	// EventLimit: a direction of a connection went over a limit.
	EventLimit EventKind = 1
	// EventClosed: the connection's socket was closed; final totals.
	EventClosed EventKind = 2
)

// String returns "limit" or "closed".
func (k EventKind) String() string {
	switch k {
	case EventLimit:
		return "limit"
	case EventClosed:
		return "closed"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is a limit reached or a connection closed.
type Event struct {
	Kind EventKind
	Conn ConnID
	Port uint16 // the policed port that matched
	// Dir, Action, Scope and Fenced describe an EventLimit. Fenced means
	// the meter already drops that direction's payload, so the node must
	// not try to write a stream error through a fenced egress (and should
	// close such a connection with a reset, SetLinger(0): a FIN would wait
	// behind data that can never pass; the eBPF meter destroys the socket
	// after the close if the node does not). On an EventClosed, Dir is
	// Egress and Fenced says whether it was fenced for good.
	Dir    Direction
	Action Action
	Scope  Scope
	Fenced bool
	Window uint64 // the window index the event happened in
	// In and Out are the connection's counters at the time.
	In, Out DirStats
}

// DirStats are the counters of one direction of a connection.
type DirStats struct {
	WindowBytes uint64 `json:"window_bytes"` // payload bytes passed in the current window
	TotalBytes  uint64 `json:"total_bytes"`  // payload bytes passed over the connection's life
	Dropped     uint64 `json:"dropped"`      // payload bytes dropped by a fence
	Fenced      bool   `json:"fenced"`       // payload is being dropped (for the life or the window)
}

// ConnStats are the counters of one connection.
// The JSON names are those of the node's live view.
type ConnStats struct {
	ID     ConnID         `json:"id"`
	Port   uint16         `json:"port"` // the policed port that matched
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	In     DirStats       `json:"in"`
	Out    DirStats       `json:"out"`
	// Released means the node closed the socket but the kernel keeps the
	// entry so its fence outlives the close while TCP drains.
	Released bool `json:"released,omitempty"`
}

// PortTotals are the counters of one policed port; they only grow.
type PortTotals struct {
	Port       uint16
	Bytes      [2]uint64 // passed, by Direction
	Dropped    [2]uint64 // dropped by a fence, by Direction
	DiscEvents uint64    // limit events with action disc
	DropEvents uint64    // limit events with action drop
	Conns      uint64    // connections seen
	Closed     uint64    // connections closed
	LostEvents uint64    // events lost because the buffer was full
}
