package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Userspace is the Meter used where eBPF is not available: each tracked
// connection is wrapped in a net.Conn that counts what Read returns and
// Write sends, with the same windows and decisions as the kernel. Where the
// kernel fences by dropping segments, the wrapper discards bytes (disc) or
// waits for the next window (the drop ceiling), so that a stream that stays
// open never loses data.
type Userspace struct {
	log    *slog.Logger
	window Window
	now    func() time.Time
	events chan Event

	mu     sync.Mutex
	ports  map[uint16]*portMeter
	conns  map[ConnID]*meteredConn
	closed bool
	done   chan struct{} // closed by Close, ends waits for a window

	nextID atomic.Uint64 // IDs of connections without a socket cookie
}

var _ Meter = (*Userspace)(nil)

// portMeter is a policed port: its policy, swapped at runtime, and its
// counters, the userspace twin of the kernel's ports and stats maps.
type portMeter struct {
	port    uint16
	policy  atomic.Pointer[BytePolicy]
	bytes   [2]atomic.Uint64
	dropped [2]atomic.Uint64
	events  [3]atomic.Uint64 // by Action
	conns   atomic.Uint64
	closed  atomic.Uint64
	lost    atomic.Uint64
}

// NewUserspace returns the userspace Meter.
func NewUserspace(opts Options) (*Userspace, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Userspace{
		log:    opts.Logger,
		window: Window{Length: opts.Window},
		now:    time.Now,
		events: make(chan Event, opts.EventBuffer),
		ports:  make(map[uint16]*portMeter),
		conns:  make(map[ConnID]*meteredConn),
		done:   make(chan struct{}),
	}, nil
}

// Mode returns "userspace".
func (u *Userspace) Mode() string { return "userspace" }

// Events returns limit and close events.
func (u *Userspace) Events() <-chan Event { return u.events }

// WindowEnd returns when the window holding t ends.
func (u *Userspace) WindowEnd(t time.Time) time.Time { return u.window.End(t) }

// SetPortPolicy sets or changes the policy of a port. Connections already
// tracked on the port follow it from their next read or write; a
// connection tracked while its ports had no policy stays unmetered.
func (u *Userspace) SetPortPolicy(port uint16, p BytePolicy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return fmt.Errorf("set policy of port %d: %w", port, net.ErrClosed)
	}
	pm := u.ports[port]
	if pm == nil {
		if len(u.ports) == maxPorts {
			return fmt.Errorf("set policy of port %d: already %d policed ports", port, maxPorts)
		}
		pm = &portMeter{port: port}
		u.ports[port] = pm
	}
	pm.policy.Store(&p)
	return nil
}

// Track wraps c if its local port, or else its remote port, is policed;
// otherwise it returns c unchanged. The ID is the socket cookie when c is
// a socket, so it matches what the eBPF meter would report.
func (u *Userspace) Track(c net.Conn) (net.Conn, ConnID, error) {
	id, err := socketCookie(c)
	if err != nil {
		// Not a socket (a pipe in a test, say): a private ID with the top
		// bit set, which socket cookies do not reach.
		id = ConnID(1<<63 | u.nextID.Add(1))
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, 0, fmt.Errorf("track connection: %w", net.ErrClosed)
	}
	local, remote := netAddrPort(c.LocalAddr()), netAddrPort(c.RemoteAddr())
	pm := u.ports[local.Port()]
	if pm == nil {
		pm = u.ports[remote.Port()]
	}
	if pm == nil {
		return c, id, nil
	}
	mc := &meteredConn{Conn: c, u: u, id: id, port: pm, local: local, remote: remote, closing: make(chan struct{})}
	u.conns[id] = mc
	pm.conns.Add(1)
	return mc, id, nil
}

// netAddrPort converts a TCP address; others give the zero AddrPort.
func netAddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// Conn returns a tracked connection's counters.
func (u *Userspace) Conn(id ConnID) (ConnStats, bool) {
	u.mu.Lock()
	mc := u.conns[id]
	u.mu.Unlock()
	if mc == nil {
		return ConnStats{}, false
	}
	return mc.stats(u.window.Index(u.now())), true
}

// Conns returns every tracked connection's counters, in ID order.
func (u *Userspace) Conns() []ConnStats {
	u.mu.Lock()
	all := make([]*meteredConn, 0, len(u.conns))
	for _, mc := range u.conns {
		all = append(all, mc)
	}
	u.mu.Unlock()
	win := u.window.Index(u.now())
	out := make([]ConnStats, len(all))
	for i, mc := range all {
		out[i] = mc.stats(win)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Totals returns the counters of every policed port, in port order.
func (u *Userspace) Totals() []PortTotals {
	u.mu.Lock()
	out := make([]PortTotals, 0, len(u.ports))
	for _, pm := range u.ports {
		t := PortTotals{
			Port:       pm.port,
			DiscEvents: pm.events[ActionDisc].Load(),
			DropEvents: pm.events[ActionDrop].Load(),
			Conns:      pm.conns.Load(),
			Closed:     pm.closed.Load(),
			LostEvents: pm.lost.Load(),
		}
		for d := range 2 {
			t.Bytes[d] = pm.bytes[d].Load()
			t.Dropped[d] = pm.dropped[d].Load()
		}
		out = append(out, t)
	}
	u.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// Destroy resets a tracked connection (SO_LINGER 0, then close), the
// userspace counterpart of SOCK_DESTROY.
func (u *Userspace) Destroy(id ConnID) error {
	u.mu.Lock()
	mc := u.conns[id]
	u.mu.Unlock()
	if mc == nil {
		return fmt.Errorf("destroy connection %d: not tracked", id)
	}
	if tc, ok := mc.Conn.(*net.TCPConn); ok {
		// Best effort: without it Close still ends the connection, with a
		// FIN instead of a reset.
		_ = tc.SetLinger(0)
	}
	if err := mc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("destroy connection %d: %w", id, err)
	}
	return nil
}

// Close stops the meter: waits for a window end, and the Events channel,
// close. Tracked connections stay open and keep counting.
func (u *Userspace) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	close(u.done)
	close(u.events)
	return nil
}

// emit sends an event without blocking: a connection's reader must never
// wait for the node's event loop. A full buffer counts as a lost event.
func (u *Userspace) emit(pm *portMeter, ev Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	select {
	case u.events <- ev:
	default:
		// Only when the node stopped reading events, which is the
		// node's bug to fix: say so at every loss.
		pm.lost.Add(1)
		u.log.Warn("throttle: event lost, the events buffer is full", "kind", ev.Kind, "conn", ev.Conn, "port", ev.Port)
	}
}

// meteredConn is a tracked connection.
type meteredConn struct {
	net.Conn
	u             *Userspace
	id            ConnID
	port          *portMeter
	local, remote netip.AddrPort

	// One lock per direction: the reader and the writer never wait for
	// each other.
	dir       [2]lockedCounter
	closeOnce sync.Once
	closeErr  error
	closing   chan struct{} // closed by Close, ends a wait for a window
}

type lockedCounter struct {
	mu sync.Mutex
	c  dirCounter
}

// Read reads from the connection and counts what it returns. Bytes over a
// disc limit are read and discarded, like the kernel's fence; at the drop
// ceiling Read waits for the next window.
func (c *meteredConn) Read(b []byte) (int, error) {
	for {
		want, err := c.room(Ingress, len(b))
		if err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b[:want])
		if n > 0 {
			pass := c.account(Ingress, n)
			if pass > 0 || err != nil {
				return pass, err
			}
			continue // all of it fenced: read on, as if never received
		}
		return n, err
	}
}

// Write counts and writes b. Bytes over a disc limit are discarded (and
// reported written, as the kernel's fence would); at the drop ceiling Write
// waits for the next window.
func (c *meteredConn) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		want, err := c.room(Egress, len(b)-done)
		if err != nil {
			return done, err
		}
		chunk := b[done : done+want]
		pass := c.account(Egress, len(chunk))
		if pass > 0 {
			n, err := c.Conn.Write(chunk[:pass])
			if err != nil {
				return done + n, err
			}
		}
		done += len(chunk)
	}
	return done, nil
}

// room returns how many of n bytes direction d may move now. Under drop it
// waits for the window to end while the ceiling holds it at zero; other
// actions never wait (account discards what a disc fence holds).
func (c *meteredConn) room(d Direction, n int) (int, error) {
	for {
		p := c.port.policy.Load()
		if p.Action != ActionDrop {
			return n, nil
		}
		now := c.u.now()
		lc := &c.dir[d]
		lc.mu.Lock()
		h := lc.c.headroom(*p, c.u.window.Index(now))
		permanent := lc.c.flags&flagFenced != 0 || (p.Lifetime != 0 && lc.c.totalBytes >= p.Lifetime+p.Lifetime/2)
		lc.mu.Unlock()
		if h > 0 {
			return int(min(uint64(n), h)), nil
		}
		if err := c.waitUntil(c.u.window.End(now), permanent); err != nil {
			return 0, err
		}
	}
}

// waitUntil blocks until t (forever if permanent) or until the connection
// or the meter closes.
func (c *meteredConn) waitUntil(t time.Time, permanent bool) error {
	var timer <-chan time.Time
	if !permanent {
		tm := time.NewTimer(time.Until(t))
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-timer:
		return nil
	case <-c.closing:
		return net.ErrClosed
	case <-c.u.done:
		return fmt.Errorf("throttle meter closed while connection paused: %w", net.ErrClosed)
	}
}

// account counts n bytes in direction d and returns how many pass.
func (c *meteredConn) account(d Direction, n int) int {
	p := c.port.policy.Load()
	win := c.u.window.Index(c.u.now())
	lc := &c.dir[d]
	lc.mu.Lock()
	pass, hit := lc.c.admit(*p, win, uint64(n))
	lc.mu.Unlock()
	c.port.bytes[d].Add(pass)
	if dropped := uint64(n) - pass; dropped > 0 {
		c.port.dropped[d].Add(dropped)
	}
	if hit != nil {
		c.port.events[hit.action].Add(1)
		ev := c.event(EventLimit, win)
		ev.Dir, ev.Action, ev.Scope, ev.Fenced = d, hit.action, hit.scope, hit.fenced
		c.u.emit(c.port, ev)
	}
	return int(pass)
}

// event builds an event carrying the connection's counters.
func (c *meteredConn) event(kind EventKind, win uint64) Event {
	s := c.stats(win)
	return Event{Kind: kind, Conn: c.id, Port: c.port.port, Window: win, In: s.In, Out: s.Out}
}

// stats snapshots the counters as seen in window win.
func (c *meteredConn) stats(win uint64) ConnStats {
	s := ConnStats{ID: c.id, Port: c.port.port, Local: c.local, Remote: c.remote}
	for d, out := range []*DirStats{&s.In, &s.Out} {
		lc := &c.dir[d]
		lc.mu.Lock()
		dc := lc.c
		lc.mu.Unlock()
		out.TotalBytes, out.Dropped = dc.totalBytes, dc.dropped
		out.Fenced = dc.flags&flagFenced != 0
		if dc.window == win {
			out.WindowBytes = dc.windowBytes
			out.Fenced = out.Fenced || dc.flags&flagFencedWindow != 0
		}
	}
	return s
}

// Close closes the connection once, reporting its final totals.
func (c *meteredConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.closeErr = c.Conn.Close()
		c.u.mu.Lock()
		delete(c.u.conns, c.id)
		c.u.mu.Unlock()
		c.port.closed.Add(1)
		ev := c.event(EventClosed, c.u.window.Index(c.u.now()))
		out := &c.dir[Egress]
		out.mu.Lock()
		ev.Dir, ev.Fenced = Egress, out.c.flags&flagFenced != 0
		out.mu.Unlock()
		c.u.emit(c.port, ev)
	})
	return c.closeErr
}
