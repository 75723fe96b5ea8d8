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
	// Each counted packet must carry new bytes (its sequence number moves
	// on) to take the whole path, so those runs go one call at a time;
	// path=unpoliced-single shows what a single call adds to the kernel's
	// timing, to subtract from path=counted.
	b.Run("path=unpoliced-single", func(b *testing.B) {
		benchSingle(b, objs.ThrottleIngress, other, false)
	})
	b.Run("path=counted", func(b *testing.B) {
		objs.Conns.Delete(uint64(testCookie))
		benchSingle(b, objs.ThrottleIngress, counted, true)
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

// benchSingle runs p once per BPF_PROG_TEST_RUN call, moving its sequence
// number on each time if advance is set, and reports the kernel's timing.
func benchSingle(b *testing.B, prog *ebpf.Program, p pkt, advance bool) {
	b.ReportAllocs()
	data := p.bytes()
	seqOff := 14 + 20 + 4 // Ethernet, IPv4, TCP ports
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		if advance {
			binary.BigEndian.PutUint32(data[seqOff:], uint32(i*p.payload))
		}
		ret, d, err := prog.Benchmark(data, 1, nil)
		if err != nil || ret != 1 {
			b.Fatalf("verdict %d, %v", ret, err)
		}
		total += d
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt")
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
	compareLinks(b, 64, 100*time.Nanosecond)
}

// BenchmarkBulk is BenchmarkPingPong with 1 MiB sent one way and a one-byte
// answer: bulk transfer, where the hooks run once per large segment.
//
//	go test ./loader/ -run '^$' -bench Bulk -benchtime=1s
func BenchmarkBulk(b *testing.B) {
	compareLinks(b, 1<<20, 10*time.Microsecond)
}

// linkNames name the links compareLinks measures, in order.
var linkNames = []string{"off", "ebpf", "ebpf2", "userspace"}

// compareLinks measures exchanges of size bytes over the four links of
// BenchmarkPingPong, taking turns, and reports rates from the median time
// of each link's exchanges (histogram buckets of bucket): a preempted
// exchange (the machine is shared) moves a mean a lot and a median hardly
// at all.
func compareLinks(b *testing.B, size int, bucket time.Duration) {
	requireBPF(b)
	// The unmetered link first: its sockets are created before the loader
	// moves the process into its cgroup, so no program sees them; likewise
	// the outside peer's socket.
	off := newLink(b, nil, -1, size)
	outside, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(context.Background(), Options{})
	if err != nil {
		unix.Close(outside)
		b.Fatal(err)
	}
	defer l.Close()
	u, err := NewUserspace(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	links := []*benchLink{off, newLink(b, l, outside, size), newLink(b, l, -1, size), newLink(b, u, -1, size)}
	defer func() {
		for _, bl := range links {
			bl.close()
		}
	}()

	const buckets = 20000
	hist := make([][buckets]uint32, len(links))
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for i := 0; b.Loop(); i++ {
		k := i % len(links)
		start := time.Now()
		links[k].exchange(b)
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
	for k, name := range linkNames {
		if size > 64 {
			b.ReportMetric(float64(size)/median(k)/1e6, name+"-MB/s")
		} else {
			b.ReportMetric(1/median(k), name+"-msgs/s")
		}
		if k > 0 {
			b.ReportMetric(median(0)/median(k), name+"/off")
		}
	}
}

// benchLink is a client and a server that answers each size bytes it reads
// with the same bytes (size <= 64: ping-pong) or with one byte (bulk).
type benchLink struct {
	client, server net.Conn
	msg, back      []byte
	served         chan error
}

// newLink opens a link whose server end is tracked by m (if any); the
// client is clientFD, a socket made earlier, or a new one if it is -1.
func newLink(b *testing.B, m Meter, clientFD int, size int) *benchLink {
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
	answer := size
	if size > 64 {
		answer = 1
	}
	bl := &benchLink{client: client, server: server, msg: make([]byte, size), back: make([]byte, answer), served: make(chan error, 1)}
	go func() {
		// A plain loop in every mode (io.Copy would splice for a bare
		// *net.TCPConn).
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(server, buf); err != nil {
				bl.served <- err
				return
			}
			if _, err := server.Write(buf[:answer]); err != nil {
				bl.served <- err
				return
			}
		}
	}()
	return bl
}

func (bl *benchLink) exchange(b *testing.B) {
	if _, err := bl.client.Write(bl.msg); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(bl.client, bl.back); err != nil {
		b.Fatal(err)
	}
}

func (bl *benchLink) close() {
	bl.client.Close()
	<-bl.served
	bl.server.Close()
}
