package loader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/starling-xmpp/starling/bpf"
)

// maxPorts is MAX_PORTS in bpf/throttle.c: the size of the policies and
// stats maps.
const maxPorts = 256

// Loader is the eBPF Meter. It owns every kernel object it creates (the
// programs, their maps, the cgroup links, the ring buffer reader and, when
// it made one, the child cgroup) and releases them all in Close.
//
// Sockets take their cgroup when they are created, so create the Loader
// before the node listens or dials: sockets opened earlier are not seen.
type Loader struct {
	log    *slog.Logger
	window Window
	// offset is CLOCK_REALTIME - CLOCK_MONOTONIC at load time; the
	// programs add it to bpf_ktime_get_ns to align windows to the clock.
	offset int64
	objs   *bpf.ThrottleObjects
	cg     *cgroup
	links  []link.Link
	rd     *ringbuf.Reader
	events chan Event
	done   chan struct{} // closed when the event reader has returned

	mu     sync.Mutex
	slots  map[uint16]uint32 // policed port -> stats slot
	closed bool
}

var _ Meter = (*Loader)(nil)

// New loads the throttling programs, attaches them to the node's cgroup
// (see Options.Cgroup) and starts decoding their events. Call it before the
// node opens any socket. If it fails it has released everything it took;
// when Unavailable(err) is true the caller should fall back to
// NewUserspace.
func New(ctx context.Context, opts Options) (_ *Loader, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift memlock limit for eBPF maps: %w", err)
	}
	objs, offset, err := loadObjects(opts.Window, 0)
	if err != nil {
		return nil, err
	}
	l := &Loader{
		log:    opts.Logger,
		window: Window{Length: opts.Window},
		offset: offset,
		objs:   objs,
		events: make(chan Event, opts.EventBuffer),
		slots:  make(map[uint16]uint32),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.release())
		}
	}()

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.cg, err = openCgroup(opts.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("find node cgroup: %w", err)
	}
	attach := []struct {
		prog *ebpf.Program
		typ  ebpf.AttachType
	}{
		{objs.ThrottleIngress, ebpf.AttachCGroupInetIngress},
		{objs.ThrottleEgress, ebpf.AttachCGroupInetEgress},
		{objs.ThrottleRelease, ebpf.AttachCgroupInetSockRelease},
	}
	for _, a := range attach {
		lk, err := link.AttachCgroup(link.CgroupOptions{Path: l.cg.path, Attach: a.typ, Program: a.prog})
		if err != nil {
			return nil, fmt.Errorf("attach %v to cgroup %s: %w", a.typ, l.cg.path, err)
		}
		l.links = append(l.links, lk)
	}
	l.rd, err = ringbuf.NewReader(objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open throttle event ring buffer: %w", err)
	}
	l.done = make(chan struct{})
	go l.readEvents()
	l.log.Info("throttle: eBPF programs attached", "cgroup", l.cg.path, "created", l.cg.created, "window", opts.Window)
	return l, nil
}

// loadObjects loads the programs and maps with the window length and the
// clock offset set. testCookie, when not zero, replaces the socket cookie
// (see bpf/throttle.c); only tests set it.
func loadObjects(window time.Duration, testCookie uint64) (*bpf.ThrottleObjects, int64, error) {
	spec, err := bpf.LoadThrottle()
	if err != nil {
		return nil, 0, fmt.Errorf("read throttle programs: %w", err)
	}
	offset, err := clockOffset()
	if err != nil {
		return nil, 0, err
	}
	vars := []struct {
		name string
		v    uint64
	}{
		{bpf.ThrottleVarWindowNs, uint64(window)},
		{bpf.ThrottleVarClockOffsetNs, uint64(offset)},
		{bpf.ThrottleVarTestCookie, testCookie},
	}
	for _, v := range vars {
		vs := spec.Variables[v.name]
		if vs == nil {
			return nil, 0, fmt.Errorf("throttle programs lack variable %s", v.name)
		}
		if err := vs.Set(v.v); err != nil {
			return nil, 0, fmt.Errorf("set %s: %w", v.name, err)
		}
	}
	var objs bpf.ThrottleObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// The full log says which instruction the verifier refused.
			return nil, 0, fmt.Errorf("load throttle programs: %+v", ve)
		}
		return nil, 0, fmt.Errorf("load throttle programs: %w", err)
	}
	return &objs, offset, nil
}

// clockOffset returns CLOCK_REALTIME - CLOCK_MONOTONIC in nanoseconds.
func clockOffset() (int64, error) {
	var mono, real unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return 0, fmt.Errorf("read monotonic clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &real); err != nil {
		return 0, fmt.Errorf("read real-time clock: %w", err)
	}
	return real.Nano() - mono.Nano(), nil
}

// kernelNow returns the time as the programs see it: the monotonic clock
// plus the offset taken at load.
func (l *Loader) kernelNow() time.Time {
	var mono unix.Timespec
	// CLOCK_MONOTONIC cannot fail on Linux; a zero reading would only
	// misplace the window boundary.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	return time.Unix(0, mono.Nano()+l.offset)
}

// Mode returns "ebpf".
func (l *Loader) Mode() string { return "ebpf" }

// Events returns the decoded events of the programs.
func (l *Loader) Events() <-chan Event { return l.events }

// WindowEnd returns when the kernel's window holding t ends. The kernel's
// clock follows the monotonic clock from load time, so a wall-clock step
// since then moves its boundaries away from the wall clock's; the result
// is expressed in t's clock.
func (l *Loader) WindowEnd(t time.Time) time.Time {
	skew := l.kernelNow().Sub(time.Now())
	return l.window.End(t.Add(skew)).Add(-skew)
}

// SetPortPolicy sets the policy of a port; connections already open on it
// follow the new policy from their next packet.
func (l *Loader) SetPortPolicy(port uint16, p BytePolicy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("set policy of port %d: %w", port, net.ErrClosed)
	}
	slot, ok := l.slots[port]
	if !ok {
		if len(l.slots) == maxPorts {
			return fmt.Errorf("set policy of port %d: already %d policed ports", port, maxPorts)
		}
		slot = uint32(len(l.slots))
	}
	// The policy first, then the port that points to it: a packet never
	// sees a port whose slot holds another port's policy.
	v := bpf.ThrottlePolicy{PerWindow: p.PerWindow, Lifetime: p.Lifetime, Action: uint32(p.Action)}
	if err := l.objs.Policies.Update(slot, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set policy of port %d: %w", port, err)
	}
	if err := l.objs.PortSlots.Update(uint32(port), slot+1, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set policy of port %d: %w", port, err)
	}
	l.slots[port] = slot
	return nil
}

// Track returns c unchanged and its socket cookie, the key of its counters
// and events. c must be a socket (e.g. *net.TCPConn).
func (l *Loader) Track(c net.Conn) (net.Conn, ConnID, error) {
	id, err := socketCookie(c)
	if err != nil {
		return nil, 0, err
	}
	return c, id, nil
}

// socketCookie reads SO_COOKIE from c's socket.
func socketCookie(c net.Conn) (ConnID, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("read socket cookie: %T is not a socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("read socket cookie: %w", err)
	}
	var cookie uint64
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		return 0, fmt.Errorf("read socket cookie: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("read socket cookie: %w", serr)
	}
	return ConnID(cookie), nil
}

// Conn returns the kernel's counters of one connection.
func (l *Loader) Conn(id ConnID) (ConnStats, bool) {
	if !l.open() {
		return ConnStats{}, false
	}
	var cs bpf.ThrottleConnState
	if err := l.objs.Conns.Lookup(uint64(id), &cs); err != nil {
		return ConnStats{}, false
	}
	return connStats(id, &cs, l.window.Index(l.kernelNow())), true
}

// Conns returns the kernel's counters of every connection it knows, in
// cookie order.
func (l *Loader) Conns() []ConnStats {
	if !l.open() {
		return nil
	}
	win := l.window.Index(l.kernelNow())
	var (
		out    []ConnStats
		cookie uint64
		cs     bpf.ThrottleConnState
	)
	it := l.objs.Conns.Iterate()
	for it.Next(&cookie, &cs) {
		out = append(out, connStats(ConnID(cookie), &cs, win))
	}
	if err := it.Err(); err != nil {
		l.log.Warn("throttle: iterate connections", "err", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// connStats converts the kernel's state; bytes of a window that has passed
// read as zero, as the kernel would reset them on the next packet.
func connStats(id ConnID, cs *bpf.ThrottleConnState, win uint64) ConnStats {
	dir := func(d *bpf.ThrottleDirState) DirStats {
		s := DirStats{
			TotalBytes: d.TotalBytes,
			Dropped:    d.Dropped,
			Fenced:     d.Flags&flagFenced != 0 || (d.Flags&flagFencedWindow != 0 && d.Window == win),
		}
		if d.Window == win {
			s.WindowBytes = d.WindowBytes
		}
		return s
	}
	return ConnStats{
		ID:       id,
		Port:     cs.PolicyPort,
		Local:    addrPort(cs.Family, cs.LocalAddr, cs.LocalPort),
		Remote:   addrPort(cs.Family, cs.RemoteAddr, cs.RemotePort),
		In:       dir(&cs.Dir[Ingress]),
		Out:      dir(&cs.Dir[Egress]),
		Released: cs.Flags&1 != 0,
	}
}

func addrPort(family uint8, a [16]byte, port uint16) netip.AddrPort {
	if family == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), port)
}

// Totals sums the per-CPU counters of every policed port, in port order.
func (l *Loader) Totals() []PortTotals {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	out := make([]PortTotals, 0, len(l.slots))
	var percpu []bpf.ThrottlePortStats
	for port, slot := range l.slots {
		if err := l.objs.Stats.Lookup(slot, &percpu); err != nil {
			l.log.Warn("throttle: read port counters", "port", port, "err", err)
			continue
		}
		t := PortTotals{Port: port}
		for _, s := range percpu {
			for d := range 2 {
				t.Bytes[d] += s.Bytes[d]
				t.Dropped[d] += s.Dropped[d]
			}
			t.DiscEvents += s.Events[ActionDisc]
			t.DropEvents += s.Events[ActionDrop]
			t.Conns += s.Conns
			t.Closed += s.Closed
			t.LostEvents += s.LostEvents
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// Destroy kills a connection's socket with netlink SOCK_DESTROY, which the
// peer sees as a reset and the node as an error on its next read or write.
// The kernel must have counted bytes on the connection (it takes the
// addresses from its entry), as it has for any connection that hit a limit.
func (l *Loader) Destroy(id ConnID) error {
	if !l.open() {
		return fmt.Errorf("destroy connection %d: %w", id, net.ErrClosed)
	}
	var cs bpf.ThrottleConnState
	if err := l.objs.Conns.Lookup(uint64(id), &cs); err != nil {
		return fmt.Errorf("destroy connection %d: unknown to the kernel: %w", id, err)
	}
	local := addrPort(cs.Family, cs.LocalAddr, cs.LocalPort)
	remote := addrPort(cs.Family, cs.RemoteAddr, cs.RemotePort)
	if err := destroySocket(local, remote, uint64(id)); err != nil {
		return fmt.Errorf("destroy connection %d (%v-%v): %w", id, local, remote, err)
	}
	return nil
}

// readEvents decodes the ring buffer until Close.
func (l *Loader) readEvents() {
	defer close(l.done)
	defer close(l.events)
	var rec ringbuf.Record
	for {
		if err := l.rd.ReadInto(&rec); err != nil {
			if !errors.Is(err, ringbuf.ErrClosed) {
				l.log.Error("throttle: read event ring buffer", "err", err)
			}
			return
		}
		ev, err := decodeEvent(rec.RawSample)
		if err != nil {
			l.log.Error("throttle: bad event from kernel", "err", err)
			continue
		}
		if ev.Kind == EventClosed && ev.Fenced {
			l.reap(ev.Conn)
		}
		l.events <- ev
	}
}

// reap ends a connection the node closed while its egress was fenced for
// good: what is queued in the socket can never pass, so rather than let TCP
// retry for minutes, the socket is destroyed (if the node did not already
// reset it) and the kernel forgets the entry it kept for the fence.
func (l *Loader) reap(id ConnID) {
	var cs bpf.ThrottleConnState
	if err := l.objs.Conns.Lookup(uint64(id), &cs); err != nil {
		return
	}
	local := addrPort(cs.Family, cs.LocalAddr, cs.LocalPort)
	remote := addrPort(cs.Family, cs.RemoteAddr, cs.RemotePort)
	if err := destroySocket(local, remote, uint64(id)); err != nil && !errors.Is(err, unix.ENOENT) {
		l.log.Warn("throttle: destroy fenced socket after close", "conn", id, "local", local, "remote", remote, "err", err)
	}
	if err := l.objs.Conns.Delete(uint64(id)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		l.log.Warn("throttle: forget fenced connection", "conn", id, "err", err)
	}
}

// eventSize is the size of struct event in bpf/throttle.c.
const eventSize = int(unsafe.Sizeof(bpf.ThrottleEvent{}))

// decodeEvent converts a ring buffer record into an Event.
func decodeEvent(raw []byte) (Event, error) {
	if len(raw) < eventSize {
		return Event{}, fmt.Errorf("event of %d bytes, want %d", len(raw), eventSize)
	}
	var e bpf.ThrottleEvent
	if _, err := binary.Decode(raw[:eventSize], binary.NativeEndian, &e); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	kind := EventKind(e.Kind)
	if kind != EventLimit && kind != EventClosed {
		return Event{}, fmt.Errorf("event kind %d unknown", e.Kind)
	}
	if e.Dir > 1 || Action(e.Action) > ActionDrop || e.Scope > 1 {
		return Event{}, fmt.Errorf("event fields out of range: dir %d action %d scope %d", e.Dir, e.Action, e.Scope)
	}
	dir := func(d int) DirStats {
		return DirStats{WindowBytes: e.WindowBytes[d], TotalBytes: e.TotalBytes[d], Dropped: e.Dropped[d]}
	}
	ev := Event{
		Kind:   kind,
		Conn:   ConnID(e.Cookie),
		Port:   e.PolicyPort,
		Dir:    Direction(e.Dir),
		Action: Action(e.Action),
		Scope:  Scope(e.Scope),
		Fenced: e.Fenced != 0,
		Window: e.Window,
		In:     dir(0),
		Out:    dir(1),
	}
	if ev.Dir == Ingress {
		ev.In.Fenced = ev.Fenced
	} else {
		ev.Out.Fenced = ev.Fenced
	}
	return ev, nil
}

// open reports whether Close has not been called. Callers that race with
// Close may still see a map closed under them, which fails cleanly.
func (l *Loader) open() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.closed
}

// Close detaches the programs, stops the event reader, closes the Events
// channel and the maps, and removes the cgroup New created.
func (l *Loader) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	return l.release()
}

// release frees whatever New got so far; links go first so that no
// program runs against maps being closed.
func (l *Loader) release() error {
	var errs []error
	for _, lk := range l.links {
		if err := lk.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach throttle program: %w", err))
		}
	}
	l.links = nil
	if l.rd != nil {
		if err := l.rd.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close event reader: %w", err))
		}
		if l.done != nil {
			// The reader may be blocked handing an event to a node that
			// stopped reading; drain so it can see the close.
			for {
				select {
				case <-l.events:
					continue
				case <-l.done:
				}
				break
			}
		}
	}
	if l.objs != nil {
		if err := l.objs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close throttle maps: %w", err))
		}
	}
	if l.cg != nil {
		if err := l.cg.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
