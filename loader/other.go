//go:build !linux

package loader

import (
	"context"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
)

// Loader is the eBPF Meter; it exists only on Linux.
type Loader struct{ Userspace }

// New reports that eBPF metering needs Linux; use NewUserspace.
func New(ctx context.Context, opts Options) (*Loader, error) {
	return nil, fmt.Errorf("eBPF throttling needs Linux: %w", ebpf.ErrNotSupported)
}

// socketCookie is Linux-only; elsewhere connections get private IDs.
func socketCookie(c net.Conn) (ConnID, error) {
	return 0, fmt.Errorf("socket cookies need Linux")
}

const maxPorts = 256
