//go:build linux

package loader

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// BenchmarkProgram measures the programs' cost per packet as the kernel
// times it (BPF_PROG_TEST_RUN), for each path a packet can take.
//
//	go test ./loader/ -run '^$' -bench Program -benchtime=1s
func BenchmarkProgram(b *testing.B) {
	objs := progs(b, time.Minute)
	setPolicy(b, objs, 5277, BytePolicy{PerWindow: 1 << 60, Action: ActionDisc})
	setPolicy(b, objs, 5278, BytePolicy{PerWindow: 1, Action: ActionDisc})
	other := pkt{src: peer4, dst: netip.MustParseAddrPort("10.0.0.1:5222"), payload: 64}
	counted := pkt{src: peer4, dst: local4, payload: 64}
	fenced := pkt{src: peer4, dst: netip.MustParseAddrPort("10.0.0.1:5278"), payload: 64}

	b.Run("path=unpoliced", func(b *testing.B) {
		benchRepeat(b, objs.ThrottleIngress, other)
	})
	b.Run("path=counted", func(b *testing.B) {
		// Each packet carries new bytes (the sequence number moves on),
		// so every run takes the whole path; runs go one by one.
		b.ReportAllocs()
		objs.Conns.Delete(uint64(testCookie))
		data := counted.bytes()
		seqOff := 14 + 20 + 4
		var total time.Duration
		for i := 0; b.Loop(); i++ {
			binary.BigEndian.PutUint32(data[seqOff:], uint32(i*64))
			ret, d, err := objs.ThrottleIngress.Benchmark(data, 1, nil)
			if err != nil || ret != 1 {
				b.Fatalf("verdict %d, %v", ret, err)
			}
			total += d
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt")
	})
	b.Run("path=retransmit", func(b *testing.B) {
		benchRepeat(b, objs.ThrottleIngress, counted)
	})
	b.Run("path=fenced", func(b *testing.B) {
		objs.Conns.Delete(uint64(testCookie))
		run(b, objs.ThrottleIngress, fenced) // sets the fence
		benchRepeat(b, objs.ThrottleIngress, fenced)
	})
}

// benchRepeat runs p b.N times in one BPF_PROG_TEST_RUN call.
func benchRepeat(b *testing.B, prog *ebpf.Program, p pkt) {
	b.ReportAllocs()
	data := p.bytes()
	b.ResetTimer()
	_, d, err := prog.Benchmark(data, b.N, b.ResetTimer)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(d.Nanoseconds()), "ns/pkt")
}

// BenchmarkPingPong sends 64-byte messages back and forth over loopback on
// a policed port, alternating message by message between four links so
// that the load of a shared machine falls on all of them alike:
//
//   - off: no meter;
//   - ebpf: the programs on the node's end only, the peer outside its
//     cgroup (a client, or a node on another host): two hook runs per
//     message;
//   - ebpf2: both ends in the node's cgroup (two nodes on one host):
//     four hook runs per message;
//   - userspace: the wrapper on the node's end.
//
// It reports each link's rate (from its median round trip) and the ratios
// to the unmetered one.
//
//	go test ./loader/ -run '^$' -bench PingPong -benchtime=1s
func BenchmarkPingPong(b *testing.B) {
	requireBPF(b)
	// The unmetered link first: its sockets are created before the loader
	// moves the process into its cgroup, so no program sees them.
	off := newPingPong(b, nil, -1)
	outside, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(context.Background(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	u, err := NewUserspace(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	links := []*pingPongLink{off, newPingPong(b, l, outside), newPingPong(b, l, -1), newPingPong(b, u, -1)}
	defer func() {
		for _, pl := range links {
			pl.close()
		}
	}()

	// Medians of each link's round trips, from histograms with 100 ns
	// buckets: a preempted round trip (the machine is shared) moves a mean
	// a lot and a median hardly at all.
	const bucket, buckets = 100 * time.Nanosecond, 20000
	hist := make([][buckets]uint32, len(links))
	b.ReportAllocs()
	b.SetBytes(2 * 64)
	for i := 0; b.Loop(); i++ {
		k := i % len(links)
		start := time.Now()
		links[k].roundTrip(b)
		hist[k][min(int(time.Since(start)/bucket), buckets-1)]++
	}
	median := func(k int) float64 {
		var n, seen uint32
		for _, c := range hist[k] {
			n += c
		}
		for i, c := range hist[k] {
			if seen += c; seen*2 >= n {
				return (float64(i) + 0.5) * bucket.Seconds()
			}
		}
		return math.NaN()
	}
	for k, name := range []string{"off", "ebpf", "ebpf2", "userspace"} {
		b.ReportMetric(1/median(k), name+"-msgs/s")
		if k > 0 {
			b.ReportMetric(median(0)/median(k), name+"/off")
		}
	}
}

// pingPongLink is a client and an echoing server.
type pingPongLink struct {
	client    net.Conn
	server    net.Conn
	msg, back []byte
	echoed    chan error
}

// newPingPong opens a link whose server end is tracked by m (if any); the
// client is clientFD, a socket made earlier, or a new one if it is -1.
func newPingPong(b *testing.B, m Meter, clientFD int) *pingPongLink {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	if m != nil {
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		if err := m.SetPortPolicy(port, BytePolicy{PerWindow: 1 << 50, Action: ActionDisc}); err != nil {
			b.Fatal(err)
		}
	}
	var client net.Conn
	if clientFD >= 0 {
		client, err = connectSocket(clientFD, ln.Addr().(*net.TCPAddr).AddrPort())
	} else {
		client, err = net.Dial("tcp4", ln.Addr().String())
	}
	if err != nil {
		b.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	if m != nil {
		if server, _, err = m.Track(server); err != nil {
			b.Fatal(err)
		}
	}
	pl := &pingPongLink{client: client, server: server, msg: make([]byte, 64), back: make([]byte, 64), echoed: make(chan error, 1)}
	go func() {
		// A plain loop (io.Copy would splice for a bare *net.TCPConn).
		buf := make([]byte, 4096)
		for {
			n, err := server.Read(buf)
			if err != nil {
				pl.echoed <- err
				return
			}
			if _, err := server.Write(buf[:n]); err != nil {
				pl.echoed <- err
				return
			}
		}
	}()
	return pl
}

func (pl *pingPongLink) roundTrip(b *testing.B) {
	if _, err := pl.client.Write(pl.msg); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(pl.client, pl.back); err != nil {
		b.Fatal(err)
	}
}

func (pl *pingPongLink) close() {
	pl.client.Close()
	<-pl.echoed
	pl.server.Close()
}
