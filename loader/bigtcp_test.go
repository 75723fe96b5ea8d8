//go:build linux

package loader

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread moved into a new network namespace whose
// loopback is up and configured by setup; sockets fn creates live there.
func inNetns(t *testing.T, setup func(lo netlink.Link) error, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // also moves this thread into it
	if err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	defer ns.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is locked; leaving it in the wrong namespace
			// would poison whatever runs on it next.
			panic(err)
		}
	}()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(lo); err != nil {
		t.Skipf("loopback in the new namespace: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	fn()
}

// TestLoopbackBigTCP counts transfers in BIG TCP segments (loopback GSO
// raised past 64 KiB, in a namespace of its own so the host is untouched):
// IPv6 ones carry a Hop-by-Hop jumbo header, which the programs must skip
// or miss every large segment; IPv4 ones have 0 as their IP length, which
// is why the programs take the length from the skb.
func TestLoopbackBigTCP(t *testing.T) {
	for _, network := range []string{"tcp6", "tcp4"} {
		t.Run(network, func(t *testing.T) { bigTCP(t, network) })
	}
}

func bigTCP(t *testing.T, network string) {
	r := newRig(t, "ebpf", time.Minute)
	const big = 185000
	var node, peer net.Conn
	var id ConnID
	inNetns(t, func(lo netlink.Link) error {
		for _, set := range []func(netlink.Link, int) error{
			netlink.LinkSetGSOMaxSize, netlink.LinkSetGROMaxSize,
			netlink.LinkSetGSOIPv4MaxSize, netlink.LinkSetGROIPv4MaxSize,
		} {
			if err := set(lo, big); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		addr := "[::1]:0"
		if network == "tcp4" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := r.m.SetPortPolicy(uint16(ln.Addr().(*net.TCPAddr).Port), BytePolicy{}); err != nil {
			t.Fatal(err)
		}
		if peer, err = net.Dial(network, ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if node, id, err = r.m.Track(c); err != nil {
			t.Fatal(err)
		}
	})
	defer peer.Close()
	defer node.Close()
	deadline := time.Now().Add(30 * time.Second)
	node.SetDeadline(deadline)
	peer.SetDeadline(deadline)

	for _, tt := range []struct {
		dir      Direction
		src, dst net.Conn
	}{{Ingress, peer, node}, {Egress, node, peer}} {
		data := pattern(8_000_007, byte(tt.dir))
		sent := writeAsync(tt.src, data)
		got := make([]byte, len(data))
		if _, err := io.ReadFull(tt.dst, got); err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("data corrupted")
		}
	}
	st, ok := r.m.Conn(id)
	ti := tcpInfo(t, node)
	if !ok || st.In.TotalBytes != 8_000_007 || st.Out.TotalBytes != 8_000_007 {
		t.Fatalf("counted %+v (%v), want 8000007 each way; tcp_info received %d acked %d", st, ok, ti.Bytes_received, ti.Bytes_acked)
	}
}
