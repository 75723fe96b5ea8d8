//go:build linux

package loader

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/bpf"
)

func encodeEvent(t *testing.T, e bpf.ThrottleEvent) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, &e); err != nil {
		t.Fatal(err)
	}
	if b.Len() != eventSize {
		t.Fatalf("encoded %d bytes, struct event has %d", b.Len(), eventSize)
	}
	return b.Bytes()
}

func TestDecodeEvent(t *testing.T) {
	raw := encodeEvent(t, bpf.ThrottleEvent{
		Cookie: 77, Window: 9, WindowBytes: [2]uint64{1, 2}, TotalBytes: [2]uint64{3, 4}, Dropped: [2]uint64{5, 6},
		Kind: uint32(bpf.ThrottleEventKindEVENT_LIMIT), PolicyPort: 5277,
		Dir: uint8(bpf.ThrottleDirectionDIR_EGRESS), Action: uint8(bpf.ThrottleActionACTION_DROP),
		Scope: uint8(bpf.ThrottleScopeSCOPE_LIFETIME), Fenced: 1,
	})
	got, err := decodeEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		Kind: EventLimit, Conn: 77, Port: 5277, Dir: Egress, Action: ActionDrop, Scope: ScopeLifetime, Fenced: true, Window: 9,
		In:  DirStats{WindowBytes: 1, TotalBytes: 3, Dropped: 5},
		Out: DirStats{WindowBytes: 2, TotalBytes: 4, Dropped: 6, Fenced: true},
	}
	if got != want {
		t.Fatalf("decoded %+v\nwant    %+v", got, want)
	}

	closed := encodeEvent(t, bpf.ThrottleEvent{Cookie: 1, Kind: uint32(bpf.ThrottleEventKindEVENT_CLOSED), TotalBytes: [2]uint64{10, 20},
		Dir: uint8(bpf.ThrottleDirectionDIR_EGRESS), Fenced: 1})
	if got, err := decodeEvent(closed); err != nil || got.Kind != EventClosed || got.Out.TotalBytes != 20 || !got.Out.Fenced || got.In.Fenced {
		t.Fatalf("closed event: %+v, %v", got, err)
	}

	bad := []struct {
		name string
		raw  []byte
		msg  string
	}{
		{"short", raw[:eventSize-1], "bytes"},
		{"kind", encodeEvent(t, bpf.ThrottleEvent{Kind: 7}), "kind"},
		{"dir", encodeEvent(t, bpf.ThrottleEvent{Kind: 1, Dir: 2}), "range"},
		{"action", encodeEvent(t, bpf.ThrottleEvent{Kind: 1, Action: 3}), "range"},
	}
	for _, tt := range bad {
		if _, err := decodeEvent(tt.raw); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want an error about %s", tt.name, err, tt.msg)
		}
	}
}

// TestGoMatchesC checks that the Go constants the loader uses are the
// values of the C enums, as compiled.
func TestGoMatchesC(t *testing.T) {
	pairs := []struct {
		name   string
		goVal  uint64
		cValue uint64
	}{
		{"ingress", uint64(Ingress), uint64(bpf.ThrottleDirectionDIR_INGRESS)},
		{"egress", uint64(Egress), uint64(bpf.ThrottleDirectionDIR_EGRESS)},
		{"disc", uint64(ActionDisc), uint64(bpf.ThrottleActionACTION_DISC)},
		{"drop", uint64(ActionDrop), uint64(bpf.ThrottleActionACTION_DROP)},
		{"window", uint64(ScopeWindow), uint64(bpf.ThrottleScopeSCOPE_MINUTE)},
		{"lifetime", uint64(ScopeLifetime), uint64(bpf.ThrottleScopeSCOPE_LIFETIME)},
		{"limit", uint64(EventLimit), uint64(bpf.ThrottleEventKindEVENT_LIMIT)},
		{"closed", uint64(EventClosed), uint64(bpf.ThrottleEventKindEVENT_CLOSED)},
		{"fenced", flagFenced, uint64(bpf.ThrottleDirFlagFLAG_FENCED)},
		{"fenced window", flagFencedWindow, uint64(bpf.ThrottleDirFlagFLAG_FENCED_WINDOW)},
		{"notified", flagNotified, uint64(bpf.ThrottleDirFlagFLAG_NOTIFIED)},
		{"notified window", flagNotifiedWindow, uint64(bpf.ThrottleDirFlagFLAG_NOTIFIED_WINDOW)},
	}
	for _, p := range pairs {
		if p.goVal != p.cValue {
			t.Errorf("%s: Go %d, C %d", p.name, p.goVal, p.cValue)
		}
	}
	spec, err := bpf.LoadThrottle()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bpf.ThrottleMapPolicies, bpf.ThrottleMapStats} {
		if got := spec.Maps[name].MaxEntries; got != maxPorts {
			t.Errorf("map %s holds %d, loader assumes %d", name, got, maxPorts)
		}
	}
	if got := spec.Maps[bpf.ThrottleMapPortSlots].MaxEntries; got != 1<<16 {
		t.Errorf("port_slots holds %d, want one per port", got)
	}
}

func TestSockDestroyRequest(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:5277")
	remote := netip.MustParseAddrPort("127.0.0.2:40000")
	b, err := sockDestroyRequest(local, remote, 0x1122334455667788, 7)
	if err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != 21 || ne.Uint32(b[8:]) != 7 {
		t.Fatalf("header % x", b[:16])
	}
	r := b[16:]
	if r[0] != 2 || r[1] != 6 || ne.Uint32(r[4:]) != ^uint32(0) {
		t.Fatalf("request % x", r[:8])
	}
	id := r[8:]
	if binary.BigEndian.Uint16(id) != 5277 || binary.BigEndian.Uint16(id[2:]) != 40000 {
		t.Errorf("ports % x", id[:4])
	}
	if !bytes.Equal(id[4:8], []byte{127, 0, 0, 1}) || !bytes.Equal(id[20:24], []byte{127, 0, 0, 2}) {
		t.Errorf("addresses % x / % x", id[4:20], id[20:36])
	}
	if ne.Uint32(id[40:]) != 0x55667788 || ne.Uint32(id[44:]) != 0x11223344 {
		t.Errorf("cookie % x", id[40:48])
	}

	b6, err := sockDestroyRequest(netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[fd00::2]:2"), 1, 1)
	if err != nil || b6[16] != 10 || b6[16+8+4+15] != 1 || b6[16+8+20] != 0xfd {
		t.Fatalf("IPv6 request: % x, %v", b6, err)
	}
	if _, err := sockDestroyRequest(local, netip.MustParseAddrPort("[fd00::2]:2"), 1, 1); err == nil {
		t.Error("mixed families accepted")
	}
}

func TestCgroupParsing(t *testing.T) {
	mounts := "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n" +
		"cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n" +
		"cgroup2 /sys/fs/cgroup/unified\\040dir cgroup2 rw 0 0\n"
	if got, err := cgroup2Mount([]byte(mounts)); err != nil || got != "/sys/fs/cgroup/unified dir" {
		t.Errorf("cgroup2Mount = %q, %v", got, err)
	}
	if _, err := cgroup2Mount([]byte("proc /proc proc rw 0 0\n")); err == nil || !Unavailable(err) {
		t.Errorf("no cgroup2: %v, want an Unavailable error", err)
	}
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"9:name=systemd:/\n4:memory:/x\n0::/\n", "/", true},
		{"0::/system.slice/starling.service\n", "/system.slice/starling.service", true},
		{"4:memory:/x\n", "", false},
		{"0::relative\n", "", false},
	}
	for _, tt := range tests {
		got, err := unifiedCgroup([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("unifiedCgroup(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(make([]byte, eventSize))
	f.Add(append(make([]byte, 56), 1, 0, 0, 0, 0x9d, 0x14, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := decodeEvent(raw)
		if err != nil {
			return
		}
		// What decodes must describe a real event, and encode back to
		// the same leading bytes (padding aside).
		if ev.Kind != EventLimit && ev.Kind != EventClosed {
			t.Fatalf("kind %v", ev.Kind)
		}
		var e bpf.ThrottleEvent
		if _, err := binary.Decode(raw[:eventSize], binary.NativeEndian, &e); err != nil {
			t.Fatal(err)
		}
		e.Pad = [6]uint8{}
		back := encodeEvent(t, e)
		if !bytes.Equal(back[:eventSize-6], raw[:eventSize-6]) {
			t.Fatalf("round trip changed the record")
		}
		if ev.Conn != ConnID(e.Cookie) || ev.In.TotalBytes != e.TotalBytes[0] || ev.Out.Dropped != e.Dropped[1] {
			t.Fatalf("decoded %+v from %+v", ev, e)
		}
	})
}

func FuzzCgroupFiles(f *testing.F) {
	f.Add("cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n", "0::/\n")
	f.Add("cgroup2 /a\\040b cgroup2 rw 0 0\n", "1:cpu:/\n0::/x/y\n")
	f.Add("cgroup2 \\ cgroup2\n", "0::\n")
	f.Fuzz(func(t *testing.T, mounts, procCgroup string) {
		// Mostly: no panic on odd escapes and short lines.
		if m, err := cgroup2Mount([]byte(mounts)); err == nil && !strings.Contains(mounts, "cgroup2") {
			t.Fatalf("mount %q found in %q, which has no cgroup2", m, mounts)
		}
		if p, err := unifiedCgroup([]byte(procCgroup)); err == nil && !strings.HasPrefix(p, "/") {
			t.Fatalf("relative cgroup %q from %q", p, procCgroup)
		}
	})
}
