//go:build linux

package loader

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/starling-xmpp/starling/bpf"
)

// requireBPF skips a test that needs to load eBPF programs where that is
// not possible, saying why. On a root machine with BPF it never skips, so
// a load failure there is a test failure.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loading eBPF programs and attaching them to a cgroup require CAP_BPF and CAP_NET_ADMIN")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("kernel without BTF, too old for the throttle programs: %v", err)
	}
}

const testCookie = 0x5ca1ab1e

// progs loads the programs unattached with a fixed test cookie, so that
// BPF_PROG_TEST_RUN's fresh dummy socket on every run maps to one entry.
func progs(t testing.TB, window time.Duration) *bpf.ThrottleObjects {
	t.Helper()
	requireBPF(t)
	objs, _, err := loadObjects(window, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return objs
}

// pkt describes a crafted TCP segment.
type pkt struct {
	src, dst netip.AddrPort
	payload  int
	seq      uint32
	hopByHop bool // IPv6 only: a Hop-by-Hop header before TCP, as BIG TCP has
	proto    uint8
}

// bytes returns the segment with an Ethernet header, as
// BPF_PROG_TEST_RUN wants; the program sees it from the IP header on.
func (p pkt) bytes() []byte {
	const tcpLen = 20
	proto := p.proto
	if proto == 0 {
		proto = 6
	}
	var ip []byte
	v4 := p.src.Addr().Is4()
	if v4 {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+tcpLen+p.payload))
		ip[8] = 64
		ip[9] = proto
		s, d := p.src.Addr().As4(), p.dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
	} else {
		ip = make([]byte, 40)
		ip[0] = 0x60
		next := proto
		var ext []byte
		if p.hopByHop {
			next = 0
			// Jumbo payload option (type 0xc2, length 4) plus padding.
			ext = []byte{proto, 0, 0xc2, 4, 0, 0, 0, 0}
		}
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ext)+tcpLen+p.payload))
		ip[6] = next
		ip[7] = 64
		s, d := p.src.Addr().As16(), p.dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		ip = append(ip, ext...)
	}
	tcp := make([]byte, tcpLen)
	binary.BigEndian.PutUint16(tcp[0:], p.src.Port())
	binary.BigEndian.PutUint16(tcp[2:], p.dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], p.seq)
	tcp[12] = 5 << 4
	tcp[13] = 0x18 // PSH|ACK
	eth := make([]byte, 14)
	if v4 {
		binary.BigEndian.PutUint16(eth[12:], 0x0800)
	} else {
		binary.BigEndian.PutUint16(eth[12:], 0x86dd)
	}
	out := append(eth, ip...)
	out = append(out, tcp...)
	return append(out, make([]byte, p.payload)...)
}

var (
	peer4  = netip.MustParseAddrPort("10.0.0.2:40000")
	local4 = netip.MustParseAddrPort("10.0.0.1:5277")
	peer6  = netip.MustParseAddrPort("[fd00::2]:40000")
	local6 = netip.MustParseAddrPort("[fd00::1]:5277")
)

// run feeds p to prog and returns its verdict (1 pass, 0 drop).
func run(t testing.TB, prog *ebpf.Program, p pkt) uint32 {
	t.Helper()
	ret, err := prog.Run(&ebpf.RunOptions{Data: p.bytes()})
	if err != nil {
		t.Fatalf("run %v: %v", prog, err)
	}
	return ret
}

// send feeds the next segment of a stream: p's sequence number moves on
// past its payload, as a sender's would.
func send(t testing.TB, prog *ebpf.Program, p *pkt) uint32 {
	t.Helper()
	v := run(t, prog, *p)
	p.seq += uint32(p.payload)
	return v
}

// setPolicy polices port with p in slot 0, or in slot 1 for port 5278 (a
// second policed port in the benchmarks).
func setPolicy(t testing.TB, objs *bpf.ThrottleObjects, port uint16, p BytePolicy) {
	t.Helper()
	slot := uint32(0)
	if port == 5278 {
		slot = 1
	}
	v := bpf.ThrottlePolicy{PerWindow: p.PerWindow, Lifetime: p.Lifetime, Action: uint32(p.Action)}
	if err := objs.Policies.Update(slot, &v, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if err := objs.PortSlots.Update(uint32(port), slot+1, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

func connState(t testing.TB, objs *bpf.ThrottleObjects) bpf.ThrottleConnState {
	t.Helper()
	var cs bpf.ThrottleConnState
	if err := objs.Conns.Lookup(uint64(testCookie), &cs); err != nil {
		t.Fatalf("conn state: %v", err)
	}
	return cs
}

// nextEvent reads one event from the ring buffer, failing after a second.
func nextEvent(t testing.TB, rd *ringbuf.Reader) Event {
	t.Helper()
	rd.SetDeadline(time.Now().Add(time.Second))
	rec, err := rd.Read()
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	ev, err := decodeEvent(rec.RawSample)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// noEvent checks that the ring buffer is empty.
func noEvent(t testing.TB, rd *ringbuf.Reader) {
	t.Helper()
	rd.SetDeadline(time.Now())
	if rec, err := rd.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unexpected event %v (err %v)", rec.RawSample, err)
	}
}

func TestProgramParse(t *testing.T) {
	objs := progs(t, time.Minute)
	setPolicy(t, objs, 5277, BytePolicy{})
	tests := []struct {
		name    string
		prog    *ebpf.Program
		p       pkt
		counted uint64 // bytes expected in the direction the program handles
	}{
		{"v4 ingress to local port", objs.ThrottleIngress, pkt{src: peer4, dst: local4, payload: 100}, 100},
		{"v4 egress from local port", objs.ThrottleEgress, pkt{src: local4, dst: peer4, payload: 200}, 200},
		{"v6 ingress", objs.ThrottleIngress, pkt{src: peer6, dst: local6, payload: 300}, 300},
		{"v6 egress with hop-by-hop (BIG TCP)", objs.ThrottleEgress, pkt{src: local6, dst: peer6, payload: 1000, hopByHop: true}, 1000},
		// A dialled link: the policed port is the remote one.
		{"v4 egress to remote port", objs.ThrottleEgress, pkt{src: netip.MustParseAddrPort("10.0.0.1:41000"), dst: netip.MustParseAddrPort("10.0.0.3:5277"), payload: 50}, 50},
		{"unpoliced port", objs.ThrottleIngress, pkt{src: peer4, dst: netip.MustParseAddrPort("10.0.0.1:5222"), payload: 100}, 0},
		{"UDP", objs.ThrottleIngress, pkt{src: peer4, dst: local4, payload: 100, proto: 17}, 0},
		{"no payload", objs.ThrottleIngress, pkt{src: peer4, dst: local4}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case starts from an empty connection entry.
			objs.Conns.Delete(uint64(testCookie))
			if got := run(t, tt.prog, tt.p); got != 1 {
				t.Fatalf("verdict %d, want pass", got)
			}
			var cs bpf.ThrottleConnState
			err := objs.Conns.Lookup(uint64(testCookie), &cs)
			if tt.counted == 0 {
				if err == nil {
					t.Fatalf("connection recorded: %+v", cs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cs.Dir[Ingress].TotalBytes + cs.Dir[Egress].TotalBytes
			if got != tt.counted || cs.Dir[Ingress].WindowBytes+cs.Dir[Egress].WindowBytes != tt.counted {
				t.Fatalf("counted %d (window %+v), want %d", got, cs.Dir, tt.counted)
			}
			if cs.PolicyPort != 5277 {
				t.Errorf("policy port %d, want 5277", cs.PolicyPort)
			}
		})
	}
}

func TestProgramAddresses(t *testing.T) {
	objs := progs(t, time.Minute)
	setPolicy(t, objs, 5277, BytePolicy{})
	for _, tt := range []struct{ local, peer netip.AddrPort }{{local4, peer4}, {local6, peer6}} {
		objs.Conns.Delete(uint64(testCookie))
		run(t, objs.ThrottleIngress, pkt{src: tt.peer, dst: tt.local, payload: 1})
		cs := connState(t, objs)
		st := connStats(testCookie, &cs, 0)
		if st.Local != tt.local || st.Remote != tt.peer {
			t.Errorf("addresses %v-%v, want %v-%v", st.Local, st.Remote, tt.local, tt.peer)
		}
	}
}

func TestProgramDisc(t *testing.T) {
	objs := progs(t, time.Minute)
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	setPolicy(t, objs, 5277, BytePolicy{PerWindow: 1000, Action: ActionDisc})
	in := pkt{src: peer4, dst: local4, payload: 400}
	out := pkt{src: local4, dst: peer4, payload: 400}

	// 400 + 400 + 200 reaches the limit exactly: all pass.
	for _, n := range []int{400, 400, 200} {
		in.payload = n
		if v := send(t, objs.ThrottleIngress, &in); v != 1 {
			t.Fatalf("%d bytes under the limit: verdict %d", n, v)
		}
	}
	noEvent(t, rd)
	// One more byte is over: dropped, fenced, one event.
	in.payload = 1
	if v := send(t, objs.ThrottleIngress, &in); v != 0 {
		t.Fatal("byte over the limit passed")
	}
	ev := nextEvent(t, rd)
	if ev.Kind != EventLimit || ev.Conn != testCookie || ev.Dir != Ingress || ev.Action != ActionDisc ||
		ev.Scope != ScopeWindow || !ev.Fenced || ev.In.TotalBytes != 1000 || ev.Port != 5277 {
		t.Fatalf("event %+v", ev)
	}
	// The fence holds payload, never bare ACK/FIN/RST, and sends no more events.
	in.payload = 10
	if v := send(t, objs.ThrottleIngress, &in); v != 0 {
		t.Fatal("payload passed a fence")
	}
	in.payload = 0
	if v := send(t, objs.ThrottleIngress, &in); v != 1 {
		t.Fatal("segment without payload stopped by a fence")
	}
	noEvent(t, rd)
	// The other direction is counted and limited on its own.
	if v := send(t, objs.ThrottleEgress, &out); v != 1 {
		t.Fatal("egress fenced with ingress")
	}
	cs := connState(t, objs)
	if cs.Dir[Ingress].TotalBytes != 1000 || cs.Dir[Ingress].Dropped != 11 || cs.Dir[Egress].TotalBytes != 400 {
		t.Fatalf("state %+v", cs.Dir)
	}
	var percpu []bpf.ThrottlePortStats
	if err := objs.Stats.Lookup(uint32(0), &percpu); err != nil {
		t.Fatal(err)
	}
	var events, dropped, bytesIn uint64
	for _, s := range percpu {
		events += s.Events[ActionDisc]
		dropped += s.Dropped[Ingress]
		bytesIn += s.Bytes[Ingress]
	}
	if events != 1 || dropped != 11 || bytesIn != 1000 {
		t.Fatalf("port stats: %d events, %d dropped, %d bytes in", events, dropped, bytesIn)
	}
}

// shiftClock moves the programs' clock forward by d through the clock
// offset variable, the way a window passes.
func shiftClock(t testing.TB, objs *bpf.ThrottleObjects, d time.Duration) {
	t.Helper()
	var off uint64
	if err := objs.ClockOffsetNs.Get(&off); err != nil {
		t.Fatal(err)
	}
	if err := objs.ClockOffsetNs.Set(off + uint64(d)); err != nil {
		t.Fatal(err)
	}
}

func TestProgramWindowRollover(t *testing.T) {
	objs := progs(t, time.Minute)
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	setPolicy(t, objs, 5277, BytePolicy{PerWindow: 1000, Lifetime: 2500, Action: ActionDrop})
	in := pkt{src: peer4, dst: local4, payload: 600}

	// Window 1: 600 passes; 1200 is over the limit but under the 1.5×
	// ceiling: passes with one event; 1800 is over the ceiling: fenced
	// for the window, no second event.
	if send(t, objs.ThrottleIngress, &in) != 1 || send(t, objs.ThrottleIngress, &in) != 1 {
		t.Fatal("drop fenced under the ceiling")
	}
	ev := nextEvent(t, rd)
	if ev.Action != ActionDrop || ev.Scope != ScopeWindow || ev.Fenced || ev.In.WindowBytes != 600 {
		t.Fatalf("first drop event %+v", ev)
	}
	if send(t, objs.ThrottleIngress, &in) != 0 {
		t.Fatal("passed the drop ceiling")
	}
	noEvent(t, rd)
	w1 := connState(t, objs).Dir[Ingress].Window

	// Window 2: the counter and the fence reset, the lifetime (2500) does
	// not: the sender retransmits the dropped segment first, then
	// 1200 + 600 + 300 = 2100 passes quietly; 600 more is over both
	// limits (one event, scope lifetime) and under both ceilings.
	shiftClock(t, objs, time.Minute)
	in.seq -= uint32(in.payload)
	if send(t, objs.ThrottleIngress, &in) != 1 {
		t.Fatal("fence survived the window")
	}
	cs := connState(t, objs)
	if cs.Dir[Ingress].Window != w1+1 || cs.Dir[Ingress].WindowBytes != 600 || cs.Dir[Ingress].TotalBytes != 1800 {
		t.Fatalf("after roll-over %+v", cs.Dir[Ingress])
	}
	in.payload = 300
	if send(t, objs.ThrottleIngress, &in) != 1 {
		t.Fatal("fenced under the limit")
	}
	noEvent(t, rd)
	in.payload = 600
	if send(t, objs.ThrottleIngress, &in) != 1 {
		t.Fatal("drop fenced under the ceiling")
	}
	ev = nextEvent(t, rd)
	if ev.Scope != ScopeLifetime || ev.Action != ActionDrop || ev.In.TotalBytes != 2100 {
		t.Fatalf("lifetime event %+v", ev)
	}
	// Past the lifetime ceiling (3750) the fence is for good.
	in.payload = 2000
	if send(t, objs.ThrottleIngress, &in) != 0 {
		t.Fatal("passed the lifetime ceiling")
	}
	shiftClock(t, objs, time.Minute)
	in.payload = 1
	if send(t, objs.ThrottleIngress, &in) != 0 {
		t.Fatal("lifetime fence lifted by a new window")
	}
}

// TestProgramReordered: a later segment can pass before an earlier one (on
// loopback each CPU drains its own backlog). The later one counts the gap,
// the earlier one finds nothing new: the total is the stream's.
func TestProgramReordered(t *testing.T) {
	objs := progs(t, time.Minute)
	setPolicy(t, objs, 5277, BytePolicy{})
	first := pkt{src: peer4, dst: local4, payload: 600}
	second := first
	second.seq += 600
	third := first
	third.seq += 1200
	for i, p := range []*pkt{&first, &third, &second} {
		if send(t, objs.ThrottleIngress, p) != 1 {
			t.Fatalf("segment %d dropped", i)
		}
		if want := []uint64{600, 1800, 1800}[i]; connState(t, objs).Dir[Ingress].TotalBytes != want {
			t.Fatalf("after segment %d: %+v, want %d bytes", i, connState(t, objs).Dir[Ingress], want)
		}
	}
}

func TestProgramRetransmit(t *testing.T) {
	objs := progs(t, time.Minute)
	setPolicy(t, objs, 5277, BytePolicy{PerWindow: 1500, Action: ActionDisc})
	in := pkt{src: peer4, dst: local4, payload: 1000, seq: 0xffffff00} // wraps
	tests := []struct {
		name  string
		seq   uint32
		n     int
		total uint64
	}{
		{"first", 0xffffff00, 1000, 1000},
		{"retransmitted", 0xffffff00, 1000, 1000},
		{"older part", 0xffffff00, 500, 1000},
		{"half new", 0xffffff00 + 500 - 1<<32, 1000, 1500},
	}
	for _, tt := range tests {
		in.seq, in.payload = tt.seq, tt.n
		if v := run(t, objs.ThrottleIngress, in); v != 1 {
			t.Fatalf("%s: dropped", tt.name)
		}
		if got := connState(t, objs).Dir[Ingress].TotalBytes; got != tt.total {
			t.Fatalf("%s: counted %d, want %d", tt.name, got, tt.total)
		}
	}
	// 1500 is the limit: new bytes are fenced, old ones still pass (the
	// peer already had them).
	in.seq, in.payload = 0xffffff00+1500-1<<32, 1
	if run(t, objs.ThrottleIngress, in) != 0 {
		t.Fatal("byte over the limit passed")
	}
	in.seq, in.payload = 0xffffff00, 100
	if run(t, objs.ThrottleIngress, in) != 1 {
		t.Fatal("retransmission of passed bytes dropped")
	}
}

func TestProgramPolicyChange(t *testing.T) {
	objs := progs(t, time.Minute)
	setPolicy(t, objs, 5277, BytePolicy{})
	in := pkt{src: peer4, dst: local4, payload: 2000} // test runs take at most a page
	if send(t, objs.ThrottleIngress, &in) != 1 {
		t.Fatal("unlimited policy dropped")
	}
	// A tighter policy applies to the open connection from its next packet.
	setPolicy(t, objs, 5277, BytePolicy{PerWindow: 3000, Action: ActionDisc})
	if send(t, objs.ThrottleIngress, &in) != 0 {
		t.Fatal("new limit not applied")
	}
}
