package bpf

import (
	"errors"
	"os"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// TestLayouts checks that the Go structs bpf2go generated still match the
// compiled object's BTF, so a C change without `go generate` is caught
// without root.
func TestLayouts(t *testing.T) {
	spec, err := LoadThrottle()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		goSize uintptr
	}{
		{"event", unsafe.Sizeof(ThrottleEvent{})},
		{"conn_state", unsafe.Sizeof(ThrottleConnState{})},
		{"dir_state", unsafe.Sizeof(ThrottleDirState{})},
		{"policy", unsafe.Sizeof(ThrottlePolicy{})},
		{"port_stats", unsafe.Sizeof(ThrottlePortStats{})},
	}
	for _, tt := range tests {
		var s *btf.Struct
		if err := spec.Types.TypeByName(tt.name, &s); err != nil {
			t.Fatalf("BTF struct %s: %v", tt.name, err)
		}
		if uintptr(s.Size) != tt.goSize {
			t.Errorf("struct %s: BTF size %d, Go size %d", tt.name, s.Size, tt.goSize)
		}
	}

	maps := []struct {
		name     string
		key, val uintptr
		wantType ebpf.MapType
	}{
		{ThrottleMapPortSlots, 4, 4, ebpf.Array},
		{ThrottleMapPolicies, 4, unsafe.Sizeof(ThrottlePolicy{}), ebpf.Array},
		{ThrottleMapConns, 8, unsafe.Sizeof(ThrottleConnState{}), ebpf.LRUHash},
		{ThrottleMapStats, 4, unsafe.Sizeof(ThrottlePortStats{}), ebpf.PerCPUArray},
	}
	for _, m := range maps {
		ms := spec.Maps[m.name]
		if ms == nil {
			t.Fatalf("map %s missing", m.name)
		}
		if ms.Type != m.wantType || uintptr(ms.KeySize) != m.key || uintptr(ms.ValueSize) != m.val {
			t.Errorf("map %s: type %v key %d value %d, want %v %d %d", m.name, ms.Type, ms.KeySize, ms.ValueSize, m.wantType, m.key, m.val)
		}
	}
	if ms := spec.Maps[ThrottleMapEvents]; ms == nil || ms.Type != ebpf.RingBuf {
		t.Errorf("map %s: want a ring buffer, got %v", ThrottleMapEvents, ms)
	}
}

// TestVerifier loads every program into the kernel, which runs the
// verifier. It needs root (CAP_BPF); elsewhere it skips.
func TestVerifier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading eBPF programs needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	var objs ThrottleObjects
	err := LoadThrottleObjects(&objs, nil)
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("kernel lacks a feature the programs need: %v", err)
	}
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v", ve)
		}
		t.Fatal(err)
	}
	if err := objs.Close(); err != nil {
		t.Fatal(err)
	}
}
