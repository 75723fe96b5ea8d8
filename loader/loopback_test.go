//go:build linux

package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// rig is one meter and the way to open links through it. The node's side
// of a link is tracked by the meter; the peer's side is not metered: in
// eBPF mode its sockets are created before the loader moves the process
// into its cgroup, so they stay outside and the kernel only polices the
// node's sockets, as between two hosts.
type rig struct {
	m     Meter
	peers map[string][]int // unconnected peer sockets, eBPF mode
}

const peersPerFamily = 4

// newRig starts a meter of the given mode with a short window.
func newRig(t *testing.T, mode string, window time.Duration) *rig {
	t.Helper()
	r := &rig{}
	opts := Options{Window: window}
	switch mode {
	case "ebpf":
		requireBPF(t)
		r.peers = map[string][]int{}
		for _, network := range []string{"tcp4", "tcp6"} {
			for range peersPerFamily {
				fd, err := unix.Socket(family(network), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				r.peers[network] = append(r.peers[network], fd)
			}
		}
		t.Cleanup(func() {
			for _, fds := range r.peers {
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
		})
		l, err := New(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeLoader(t, l) })
		r.m = l
	case "userspace":
		u, err := NewUserspace(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		r.m = u
	default:
		t.Fatalf("mode %q", mode)
	}
	return r
}

// closeLoader closes l and checks it left no cgroup behind.
func closeLoader(t *testing.T, l *Loader) {
	t.Helper()
	cg := l.cg
	if err := l.Close(); err != nil {
		t.Errorf("close loader: %v", err)
	}
	processChild.Lock()
	shared := processChild.refs > 0
	processChild.Unlock()
	if cg.created && !shared {
		if _, err := os.Stat(cg.path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left behind: %v", cg.path, err)
		}
		own, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		if rel, _ := unifiedCgroup(own); filepath.Join(filepath.Dir(cg.path), rel) != cg.parent {
			t.Errorf("process in cgroup %s after close, want %s", rel, cg.parent)
		}
	}
}

func family(network string) int {
	if network == "tcp6" {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// dialPeer connects an unmetered peer socket to addr.
func (r *rig) dialPeer(t *testing.T, network string, addr netip.AddrPort) net.Conn {
	t.Helper()
	if r.peers == nil {
		c, err := net.Dial(network, addr.String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fds := r.peers[network]
	if len(fds) == 0 {
		t.Fatalf("out of pre-made %s peer sockets", network)
	}
	fd := fds[0]
	r.peers[network] = fds[1:]
	c, err := connectSocket(fd, addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// connectSocket connects a socket made earlier, keeping the cgroup it was
// made in, and hands it over as a net.Conn.
func connectSocket(fd int, addr netip.AddrPort) (net.Conn, error) {
	var sa unix.Sockaddr
	if addr.Addr().Is6() {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to %v: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), "peer")
	defer f.Close()
	return net.FileConn(f) // a dup: the socket keeps its cgroup
}

// link opens a connection on a fresh port policed by p and returns the
// node's (tracked) side, its ID, and the peer's side.
func (r *rig) link(t *testing.T, network string, p BytePolicy) (net.Conn, ConnID, net.Conn) {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	ln, err := net.Listen(network, host)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	if err := r.m.SetPortPolicy(addr.Port(), p); err != nil {
		t.Fatal(err)
	}
	peer := r.dialPeer(t, network, addr)
	t.Cleanup(func() { peer.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	node, id, err := r.m.Track(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	// A bug that stalls a transfer fails the test instead of hanging it.
	deadline := time.Now().Add(30 * time.Second)
	node.SetDeadline(deadline)
	peer.SetDeadline(deadline)
	return node, id, peer
}

// waitEvent returns the next event of connection id, skipping others.
func waitEvent(t *testing.T, m Meter, id ConnID, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-m.Events():
			if !ok {
				t.Fatal("events channel closed")
			}
			if ev.Conn == id {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event for connection %d in %v", id, timeout)
		}
	}
}

// pattern returns n bytes that show where a loss or reordering happened.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// writeAsync writes b on c in a goroutine; the returned channel yields the
// result once.
func writeAsync(c net.Conn, b []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(b)
		done <- err
	}()
	return done
}

// tcpInfo reads TCP_INFO from c's socket.
func tcpInfo(t *testing.T, c net.Conn) *unix.TCPInfo {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ti *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		ti, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return ti
}

var meterModes = []string{"ebpf", "userspace"}

func TestLoopbackExactCounts(t *testing.T) {
	for _, mode := range meterModes {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, time.Minute)
			for _, network := range []string{"tcp4", "tcp6"} {
				node, id, peer := r.link(t, network, BytePolicy{})
				up, down := pattern(3_000_001, 1), pattern(1_000_003, 2)
				sent := writeAsync(peer, up)
				got := make([]byte, len(up))
				if _, err := io.ReadFull(node, got); err != nil {
					t.Fatal(err)
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
				sent = writeAsync(node, down)
				back := make([]byte, len(down))
				if _, err := io.ReadFull(peer, back); err != nil {
					t.Fatal(err)
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, up) || !bytes.Equal(back, down) {
					t.Fatal("data corrupted in transit")
				}
				st, ok := r.m.Conn(id)
				if !ok {
					t.Fatalf("%s: connection %d unknown", network, id)
				}
				if st.In.TotalBytes != uint64(len(up)) || st.Out.TotalBytes != uint64(len(down)) {
					t.Fatalf("%s: counted in %d out %d, want %d and %d", network, st.In.TotalBytes, st.Out.TotalBytes, len(up), len(down))
				}
				if mode == "ebpf" {
					// The kernel's own view of the stream.
					ti := tcpInfo(t, node)
					if ti.Bytes_received != st.In.TotalBytes || ti.Bytes_acked != st.Out.TotalBytes {
						t.Errorf("%s: tcp_info received %d acked %d, meter %d and %d", network, ti.Bytes_received, ti.Bytes_acked, st.In.TotalBytes, st.Out.TotalBytes)
					}
				}
				if st.Local != node.LocalAddr().(*net.TCPAddr).AddrPort() || st.Remote != node.RemoteAddr().(*net.TCPAddr).AddrPort() {
					t.Errorf("%s: addresses %v-%v", network, st.Local, st.Remote)
				}
				// Closing reports the final totals and forgets the connection.
				if err := node.Close(); err != nil {
					t.Fatal(err)
				}
				ev := waitEvent(t, r.m, id, 5*time.Second)
				if ev.Kind != EventClosed || ev.In.TotalBytes != uint64(len(up)) || ev.Out.TotalBytes != uint64(len(down)) {
					t.Fatalf("%s: close event %+v", network, ev)
				}
				if _, ok := r.m.Conn(id); ok {
					t.Errorf("%s: connection still known after close", network)
				}
			}
			var in, out, conns, closed uint64
			for _, pt := range r.m.Totals() {
				in += pt.Bytes[Ingress]
				out += pt.Bytes[Egress]
				conns += pt.Conns
				closed += pt.Closed
			}
			if in != 2*3_000_001 || out != 2*1_000_003 || conns != 2 || closed != 2 {
				t.Fatalf("totals: in %d out %d conns %d closed %d", in, out, conns, closed)
			}
		})
	}
}

func TestLoopbackDisc(t *testing.T) {
	const limit = 64 << 10
	for _, mode := range meterModes {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, time.Minute)
			for _, dir := range []Direction{Ingress, Egress} {
				t.Run(dir.String(), func(t *testing.T) {
					node, id, peer := r.link(t, "tcp4", BytePolicy{PerWindow: limit, Action: ActionDisc})
					src, dst := peer, node
					if dir == Egress {
						src, dst = node, peer
					}
					// The receiver reads all along, as a node does.
					received := make(chan int64, 1)
					go func() {
						n, _ := io.Copy(io.Discard, dst)
						received <- n
					}()
					// Exactly the limit passes, with no event.
					if _, err := src.Write(pattern(limit, 3)); err != nil {
						t.Fatal(err)
					}
					// The next bytes are over: the event comes within
					// milliseconds, and nothing more gets through.
					start := time.Now()
					src.SetWriteDeadline(time.Now().Add(5 * time.Second))
					sent := writeAsync(src, pattern(200<<10, 4))
					ev := waitEvent(t, r.m, id, 5*time.Second)
					lag := time.Since(start)
					if ev.Kind != EventLimit || ev.Dir != dir || ev.Action != ActionDisc || ev.Scope != ScopeWindow || !ev.Fenced {
						t.Fatalf("event %+v", ev)
					}
					if lag > 500*time.Millisecond {
						t.Errorf("event %v after the bytes over the limit", lag)
					}
					t.Logf("%s %s: event after %v", mode, dir, lag)
					// The node's reaction: close. (With the egress fenced it
					// should reset; it does not here, so the eBPF meter has
					// to destroy the socket that cannot drain.)
					if err := node.Close(); err != nil {
						t.Fatal(err)
					}
					if dir == Ingress {
						peer.Close()
					}
					if n := <-received; n != limit {
						t.Fatalf("receiver got %d bytes, limit %d", n, limit)
					}
					<-sent
					ev = waitEvent(t, r.m, id, 5*time.Second)
					d := ev.In
					if dir == Egress {
						d = ev.Out
					}
					if ev.Kind != EventClosed || d.TotalBytes != limit || d.Dropped == 0 || ev.Fenced != (dir == Egress) {
						t.Fatalf("close event %+v", ev)
					}
					if st, ok := r.m.Conn(id); ok {
						t.Fatalf("connection still known after close: %+v", st)
					}
				})
			}
		})
	}
}

func TestLoopbackDrop(t *testing.T) {
	const (
		limit  = 64 << 10
		window = time.Second
	)
	for _, mode := range meterModes {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, window)
			node, id, peer := r.link(t, "tcp6", BytePolicy{PerWindow: limit, Action: ActionDrop})
			// Start at a window boundary so that one burst stays in one
			// window: the boundary is what is under test.
			<-time.After(time.Until(r.m.WindowEnd(time.Now())))
			var firstWindow uint64
			for round := range 2 {
				// Over the limit, under the 1.5× ceiling: one event, no
				// loss; the node pauses until the window ends.
				burst := pattern(80<<10, byte(round))
				sent := writeAsync(peer, burst)
				got := make([]byte, 0, len(burst))
				buf := make([]byte, 16<<10)
				var ev Event
				for len(got) < len(burst) {
					n, err := node.Read(buf)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, buf[:n]...)
					if ev.Kind == 0 && len(got) > limit {
						ev = waitEvent(t, r.m, id, 5*time.Second)
						if ev.Kind != EventLimit || ev.Action != ActionDrop || ev.Dir != Ingress || ev.Fenced {
							t.Fatalf("round %d: event %+v", round, ev)
						}
						resume := r.m.WindowEnd(time.Now())
						<-time.After(time.Until(resume))
					}
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, burst) {
					t.Fatalf("round %d: data lost or corrupted", round)
				}
				if round == 0 {
					firstWindow = ev.Window
				} else if ev.Window <= firstWindow {
					t.Fatalf("second event in window %d, first in %d", ev.Window, firstWindow)
				}
			}
			st, ok := r.m.Conn(id)
			if !ok || st.In.Dropped != 0 || st.In.TotalBytes != 160<<10 {
				t.Fatalf("stats %+v %v", st, ok)
			}
		})
	}
}

func TestLoopbackDropCeiling(t *testing.T) {
	const limit = 32 << 10
	for _, mode := range meterModes {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, time.Second)
			node, id, peer := r.link(t, "tcp4", BytePolicy{PerWindow: limit, Action: ActionDrop})
			// A node that does not pause: past 1.5× the limit the meter
			// holds the rest until a later window, and nothing is lost.
			burst := pattern(60<<10, 9)
			sent := writeAsync(peer, burst)
			node.SetReadDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, len(burst))
			if _, err := io.ReadFull(node, got); err != nil {
				t.Fatal(err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, burst) {
				t.Fatal("data lost or corrupted")
			}
			ev := waitEvent(t, r.m, id, time.Second)
			if ev.Kind != EventLimit || ev.Action != ActionDrop {
				t.Fatalf("event %+v", ev)
			}
			st, _ := r.m.Conn(id)
			if st.In.TotalBytes != uint64(len(burst)) {
				t.Fatalf("counted %d, want %d", st.In.TotalBytes, len(burst))
			}
			// The kernel fences (drops segments, TCP resends them later);
			// the wrapper waits instead, having nothing to drop.
			if (mode == "ebpf") != (st.In.Dropped > 0) {
				t.Fatalf("%s: %d bytes dropped by the ceiling", mode, st.In.Dropped)
			}
		})
	}
}

func TestLoopbackDestroy(t *testing.T) {
	for _, mode := range meterModes {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, time.Minute)
			node, id, peer := r.link(t, "tcp4", BytePolicy{})
			// The kernel learns a connection on its first payload.
			if _, err := node.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(peer, make([]byte, 5)); err != nil {
				t.Fatal(err)
			}
			if err := r.m.Destroy(id); err != nil {
				t.Fatal(err)
			}
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := peer.Read(make([]byte, 1)); !errors.Is(err, unix.ECONNRESET) {
				t.Fatalf("peer read after destroy: %v, want connection reset", err)
			}
			if err := r.m.Destroy(ConnID(12345)); err == nil {
				t.Fatal("destroyed an unknown connection")
			}
		})
	}
}

// TestTwoLoaders: two nodes in one process share the child cgroup; the
// first to close must not pull the process out from under the second.
func TestTwoLoaders(t *testing.T) {
	requireBPF(t)
	first, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, "ebpf", time.Minute) // the second, closed at cleanup
	if first.cg.path != r.m.(*Loader).cg.path {
		t.Fatalf("cgroups %s and %s", first.cg.path, r.m.(*Loader).cg.path)
	}
	closeLoader(t, first)
	if _, err := os.Stat(first.cg.path); err != nil {
		t.Fatalf("shared cgroup removed by the first Close: %v", err)
	}
	node, id, peer := r.link(t, "tcp4", BytePolicy{})
	if _, err := peer.Write([]byte("still metered")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(node, make([]byte, 13)); err != nil {
		t.Fatal(err)
	}
	if st, ok := r.m.Conn(id); !ok || st.In.TotalBytes != 13 {
		t.Fatalf("second loader after the first closed: %+v %v", st, ok)
	}
}

func TestLoopbackLate(t *testing.T) {
	// Sockets created before the loader are outside its cgroup: this is
	// why it must be created before the node listens.
	requireBPF(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := newRig(t, "ebpf", time.Minute)
	port := ln.Addr().(*net.TCPAddr).AddrPort()
	if err := r.m.SetPortPolicy(port.Port(), BytePolicy{}); err != nil {
		t.Fatal(err)
	}
	peer := r.dialPeer(t, "tcp4", port)
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, id, err := r.m.Track(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if st, ok := r.m.Conn(id); ok {
		t.Fatalf("a socket older than the loader was metered: %+v", st)
	}
}

func TestUnavailable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("load: %w", ebpf.ErrNotSupported), true},
		{fmt.Errorf("attach: %w", unix.EPERM), true},
		{fmt.Errorf("create map: %w", unix.EACCES), true},
		{fmt.Errorf("cgroup: %w", os.ErrPermission), true},
		{errors.New("verifier: invalid access"), false},
		{fmt.Errorf("open: %w", unix.ENOENT), false},
	}
	for _, tt := range tests {
		if got := Unavailable(tt.err); got != tt.want {
			t.Errorf("Unavailable(%v) = %v", tt.err, got)
		}
	}
}

// TestNewUnprivileged checks the fallback path a node takes without
// privileges: New fails with an error Unavailable recognises. As root it
// reruns itself as nobody.
func TestNewUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		_, err := New(context.Background(), Options{})
		if err == nil || !Unavailable(err) {
			t.Fatalf("New unprivileged: %v; want an error Unavailable accepts", err)
		}
		t.Logf("unprivileged New: %v", err)
		return
	}
	// The test binary must be reachable by nobody.
	dir, err := os.MkdirTemp("", "starling-loader")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "loader.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestNewUnprivileged$", "-test.v")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestNewUnprivileged")) {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []Options{{Window: time.Microsecond}, {EventBuffer: -1}} {
		if _, err := New(ctx, opts); err == nil || Unavailable(err) {
			t.Errorf("New(%+v): %v, want a configuration error", opts, err)
		}
	}
	requireBPF(t)
	// A cgroup that does not exist: New fails after loading the programs,
	// and must close them.
	before := openFDs(t)
	_, err := New(ctx, Options{Cgroup: filepath.Join(t.TempDir(), "nope")})
	if err == nil {
		t.Fatal("New with a missing cgroup succeeded")
	}
	if after := openFDs(t); after != before {
		t.Errorf("failed New left %d file descriptors open", after-before)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := New(cancelled, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled context: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("cancelled New left %d file descriptors open", after-before)
	}
}

func TestExplicitCgroup(t *testing.T) {
	requireBPF(t)
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	mount, err := cgroup2Mount(mounts)
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	dir := filepath.Join(mount, fmt.Sprintf("starling-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	own, _ := os.ReadFile("/proc/self/cgroup")
	l, err := New(context.Background(), Options{Cgroup: dir})
	if err != nil {
		t.Fatal(err)
	}
	if l.cg.path != dir || l.cg.created {
		t.Errorf("cgroup %+v, want %s as given", l.cg, dir)
	}
	if now, _ := os.ReadFile("/proc/self/cgroup"); !bytes.Equal(now, own) {
		t.Errorf("process moved: %s -> %s", own, now)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The loader leaves a cgroup it did not make.
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("given cgroup removed: %v", err)
	}
	if _, ok := <-l.Events(); ok {
		t.Error("events channel open after Close")
	}
}
