package throttle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/starling-xmpp/starling/loader"
)

// TestFallbackToUserspace: where eBPF cannot load (not root, an old kernel), the node must police in
// userspace, not fail or keep a nil kernel meter; any other loading error stops the node.
func TestFallbackToUserspace(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"not supported", fmt.Errorf("load programs: %w", ebpf.ErrNotSupported), false},
		{"no permission", fmt.Errorf("create map: %w", os.ErrPermission), false},
		{"other failure", errors.New("attach: the cgroup is gone"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m, err := New(ctx, Options{Window: time.Second, Logger: log,
				loadKernel: func(context.Context, loader.Options) (*loader.Loader, error) { return nil, tt.err }})
			if tt.wantErr {
				if err == nil {
					m.Close()
					t.Fatal("New succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer m.Close()
			if m.Mode() != "userspace" {
				t.Fatalf("mode %q, want userspace", m.Mode())
			}
			if m.Status().Reason == "" {
				t.Error("the status does not say why the meter runs in userspace")
			}
			// The fallback meter works: a policed connection is tracked and counted.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			p, err := ParsePolicy("xmpp:0:0:disc,bin:0:0:disc")
			if err != nil {
				t.Fatal(err)
			}
			if err := m.SetPort(port, "c2s", p); err != nil {
				t.Fatal(err)
			}
			go func() {
				if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
					c.Write([]byte("hello"))
					c.Close()
				}
			}()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			w, tc, err := m.Track(c)
			if err != nil || tc == nil {
				t.Fatalf("Track: %v, %v", tc, err)
			}
			defer tc.Release()
			defer w.Close()
			if b, err := io.ReadAll(w); err != nil || string(b) != "hello" {
				t.Fatalf("read %q, %v", b, err)
			}
			if st := m.Status(); len(st.Conns) != 1 || st.Conns[0].In.TotalBytes != 5 {
				t.Fatalf("status %+v, want one connection with 5 bytes in", st.Conns)
			}
		})
	}
}
