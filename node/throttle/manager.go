package throttle

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/starling-xmpp/starling/loader"
)

// Owner is the connection's owner (a client session, a cluster link): it performs every disconnect
// and pause the policy asks for.
type Owner interface {
	// ThrottleDisconnect ends the connection with <policy-violation/> and text; when egressFenced the
	// kernel already drops what the node sends, so the owner closes without writing.
	ThrottleDisconnect(text string, egressFenced bool)
	// ThrottlePause stops reading (Ingress) or writing (Egress) until the given time.
	ThrottlePause(dir loader.Direction, until time.Time)
}

// Options configure a Manager.
type Options struct {
	// Window is the length of a "minute"; zero means a minute. Tests use less.
	Window time.Duration
	// Cgroup overrides the cgroup the eBPF programs attach to (see loader.Options).
	Cgroup string
	// Userspace skips eBPF and polices in userspace.
	Userspace bool
	// Grace is how long a connection that went over a disc limit may stay open before its socket
	// is destroyed from outside. Default 2 s.
	Grace      time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// loadKernel replaces loader.New in tests, to make eBPF unavailable on a machine where it is not.
	loadKernel func(context.Context, loader.Options) (*loader.Loader, error)
}

// Manager applies the traffic policies of a node's listeners: it owns the byte meter (eBPF, or the
// userspace fallback), counts stanzas per connection, and turns limit events into the owners'
// disconnects and pauses.
type Manager struct {
	meter     loader.Meter
	collector *loader.Collector
	window    loader.Window
	grace     time.Duration
	log       *slog.Logger
	reason    string // why userspace, when it is

	mu    sync.Mutex
	ports map[uint16]*portPolicy
	conns map[loader.ConnID]*Conn
	done  chan struct{}
}

type portPolicy struct {
	listener string
	policy   Policy
}

// New loads the eBPF meter, or falls back to userspace where eBPF cannot run here, and says which. It
// must run before the node opens any socket: sockets take their cgroup when they are created.
func New(ctx context.Context, o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.Window == 0 {
		o.Window = time.Minute
	}
	lo := loader.Options{Window: o.Window, Cgroup: o.Cgroup, Logger: o.Logger}
	m := &Manager{window: loader.Window{Length: o.Window}, grace: o.Grace, log: o.Logger,
		ports: make(map[uint16]*portPolicy), conns: make(map[loader.ConnID]*Conn), done: make(chan struct{})}
	var err error
	if !o.Userspace {
		loadKernel := o.loadKernel
		if loadKernel == nil {
			loadKernel = loader.New
		}
		// Assigned only on success: a nil *loader.Loader in the interface would not be a nil meter.
		var l *loader.Loader
		switch l, err = loadKernel(ctx, lo); {
		case err == nil:
			m.meter = l
		case loader.Unavailable(err):
			m.reason = err.Error()
		default:
			return nil, fmt.Errorf("load the eBPF traffic meter: %w", err)
		}
	} else {
		m.reason = "userspace mode requested"
	}
	if m.meter == nil {
		if m.meter, err = loader.NewUserspace(lo); err != nil {
			return nil, fmt.Errorf("start the userspace traffic meter: %w", err)
		}
		o.Logger.Warn("traffic throttling runs in userspace: bytes are counted in the node, not the kernel", "reason", m.reason)
	} else {
		o.Logger.Info("traffic throttling runs in the kernel (eBPF)")
	}
	if o.Registerer != nil {
		if m.collector, err = loader.NewCollector(o.Registerer, m.meter); err != nil {
			m.meter.Close()
			return nil, fmt.Errorf("register throttle metrics: %w", err)
		}
	}
	go m.run()
	return m, nil
}

// Mode is "ebpf" or "userspace".
func (m *Manager) Mode() string { return m.meter.Mode() }

// SetPort applies a policy to connections on a local port (accepted) or remote port (dialled).
func (m *Manager) SetPort(port uint16, listener string, p Policy) error {
	if err := m.meter.SetPortPolicy(port, p.BytePolicy()); err != nil {
		return fmt.Errorf("throttle policy for port %d: %w", port, err)
	}
	m.mu.Lock()
	m.ports[port] = &portPolicy{listener: listener, policy: p}
	m.mu.Unlock()
	m.log.Info("traffic policy", "listener", listener, "port", port, "policy", p.String(), "mode", m.Mode())
	return nil
}

// Conn is one policed connection. Every client connection has one, so it keeps only what differs
// between connections (the policy is its port's, shared).
type Conn struct {
	m      *Manager
	pp     *portPolicy
	id     loader.ConnID
	port   uint16
	owner  atomic.Pointer[Owner]
	closed atomic.Bool

	mu          sync.Mutex
	disconnects bool
	state       connState
	paused      loader.Direction // with state paused
	window      uint64
	inWindow    uint64
	total       uint64
	dropped     uint64
	pausedUntil int64 // unix ns
}

type connState uint8

const (
	stateOK connState = iota
	statePaused
	stateDisconnected
)

// Track registers a freshly accepted (or dialled) TCP connection, before any TLS layer, and returns the
// net.Conn to use from now on. Connections on ports without a policy are returned as they are, with a
// nil *Conn.
func (m *Manager) Track(c net.Conn) (net.Conn, *Conn, error) {
	port := localPort(c)
	m.mu.Lock()
	pp, ok := m.ports[port]
	if !ok {
		port = remotePort(c)
		pp, ok = m.ports[port]
	}
	m.mu.Unlock()
	if !ok {
		return c, nil, nil
	}
	w, id, err := m.meter.Track(c)
	if err != nil {
		return nil, nil, fmt.Errorf("track connection: %w", err)
	}
	if pp.policy.Bin.Set() {
		// DESIGN §5: bounds how far egress overshoots a limit before the kernel notices.
		setNotSentLowat(c, 128<<10)
	}
	tc := &Conn{m: m, pp: pp, id: id, port: port}
	m.mu.Lock()
	m.conns[id] = tc
	m.mu.Unlock()
	return w, tc, nil
}

func localPort(c net.Conn) uint16 {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return uint16(a.Port)
	}
	return 0
}

func remotePort(c net.Conn) uint16 {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return uint16(a.Port)
	}
	return 0
}

func setNotSentLowat(c net.Conn, n int) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n) })
}

// SetOwner names who acts on this connection's limits.
func (c *Conn) SetOwner(o Owner) {
	if c != nil {
		c.owner.Store(&o)
	}
}

// Verdict is what to do with a received stanza.
type Verdict uint8

// Verdicts of Conn.Stanza.
const (
	Pass       Verdict = iota
	Drop               // over an xmpp drop limit: discard it
	Disconnect         // over an xmpp disc limit: end the stream
)

// Stanza counts one stanza received (the caller leaves out stream-management <r/> and <a/>) and says
// what to do with it.
func (c *Conn) Stanza() Verdict {
	if c == nil || !c.pp.policy.XMPP.Set() {
		return Pass
	}
	win := c.m.window.Index(time.Now())
	c.mu.Lock()
	if win != c.window {
		c.window, c.inWindow = win, 0
	}
	c.inWindow++
	c.total++
	rule := &c.pp.policy.XMPP
	over := rule.PerMinute != 0 && c.inWindow > rule.PerMinute || rule.Lifetime != 0 && c.total > rule.Lifetime
	if !over {
		c.mu.Unlock()
		return Pass
	}
	first := !c.disconnects
	if rule.Action == loader.ActionDisc {
		c.disconnects = true
		c.state = stateDisconnected
		c.mu.Unlock()
		if first && c.m.collector != nil {
			c.m.collector.CountXMPP(loader.ActionDisc)
		}
		return Disconnect
	}
	c.dropped++
	firstDrop := c.dropped == 1 || c.inWindow == rule.PerMinute+1
	c.mu.Unlock()
	if firstDrop && c.m.collector != nil {
		c.m.collector.CountXMPP(loader.ActionDrop)
	}
	return Drop
}

// Release forgets a connection its owner closed.
func (c *Conn) Release() {
	if c == nil {
		return
	}
	c.closed.Store(true)
	c.m.mu.Lock()
	delete(c.m.conns, c.id)
	c.m.mu.Unlock()
}

func (m *Manager) run() {
	defer close(m.done)
	for ev := range m.meter.Events() {
		m.mu.Lock()
		c := m.conns[ev.Conn]
		if ev.Kind == loader.EventClosed {
			delete(m.conns, ev.Conn)
		}
		m.mu.Unlock()
		if c == nil || ev.Kind != loader.EventLimit {
			continue
		}
		op := c.owner.Load()
		if op == nil {
			continue
		}
		owner := *op
		switch ev.Action {
		case loader.ActionDisc:
			c.mu.Lock()
			c.state = stateDisconnected
			c.mu.Unlock()
			owner.ThrottleDisconnect(fmt.Sprintf("%s traffic limit reached (%s, %s)", ev.Dir, ev.Scope, c.pp.listener),
				ev.Dir == loader.Egress && ev.Fenced)
			id := ev.Conn
			time.AfterFunc(m.grace, func() {
				if !c.closed.Load() {
					if err := m.meter.Destroy(id); err != nil {
						m.log.Warn("throttle: destroying a connection past its grace period failed", "conn", id, "err", err)
					}
				}
			})
		case loader.ActionDrop:
			until := m.meter.WindowEnd(time.Now())
			c.mu.Lock()
			c.state, c.paused = statePaused, ev.Dir
			c.pausedUntil = until.UnixNano()
			c.mu.Unlock()
			owner.ThrottlePause(ev.Dir, until)
		}
	}
}

// Close releases the meter (detaching the eBPF programs).
func (m *Manager) Close() error {
	err := m.meter.Close()
	<-m.done
	return err
}

// ConnStatus is one connection in the live view.
type ConnStatus struct {
	ID       uint64          `json:"id"`
	Listener string          `json:"listener"`
	Port     uint16          `json:"port"`
	Local    netip.AddrPort  `json:"local"`
	Remote   netip.AddrPort  `json:"remote"`
	In       loader.DirStats `json:"in"`
	Out      loader.DirStats `json:"out"`
	Stanzas  StanzaStats     `json:"stanzas"`
	State    string          `json:"state"`
}

// StanzaStats are a connection's received-stanza counters.
type StanzaStats struct {
	Window  uint64 `json:"window"`
	Total   uint64 `json:"total"`
	Dropped uint64 `json:"dropped"`
}

// Status is the live view of every policed connection.
type Status struct {
	Mode   string       `json:"mode"`
	Reason string       `json:"reason,omitempty"`
	Window string       `json:"window"`
	Conns  []ConnStatus `json:"connections"`
}

// Status returns the live view.
func (m *Manager) Status() Status {
	st := Status{Mode: m.Mode(), Reason: m.reason, Window: m.window.Length.String()}
	m.mu.Lock()
	conns := make([]*Conn, 0, len(m.conns))
	for _, c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	win := m.window.Index(time.Now())
	for _, c := range conns {
		cs := ConnStatus{ID: uint64(c.id), Listener: c.pp.listener, Port: c.port, State: "ok"}
		if s, ok := m.meter.Conn(c.id); ok {
			cs.Local, cs.Remote, cs.In, cs.Out = s.Local, s.Remote, s.In, s.Out
		}
		c.mu.Lock()
		cs.Stanzas = StanzaStats{Total: c.total, Dropped: c.dropped}
		if c.window == win {
			cs.Stanzas.Window = c.inWindow
		}
		switch {
		case c.state == stateDisconnected:
			cs.State = "disconnected"
		case c.state == statePaused && time.Now().UnixNano() < c.pausedUntil:
			cs.State = "paused-" + c.paused.String()
		}
		c.mu.Unlock()
		if cs.In.Fenced || cs.Out.Fenced {
			cs.State = "fenced"
		}
		st.Conns = append(st.Conns, cs)
	}
	slices.SortFunc(st.Conns, func(a, b ConnStatus) int { return cmp.Compare(a.ID, b.ID) })
	return st
}
