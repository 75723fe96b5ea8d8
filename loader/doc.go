// Package loader meters and polices the bytes of the node's TCP
// connections: the `bin` half of Tigase's traffic throttling (DESIGN.md §2,
// §5).
//
// A Meter has two implementations with the same windows and decisions:
//
//   - Loader (New) owns the eBPF programs of package bpf: cgroup_skb
//     programs count payload bytes per socket and direction in the kernel,
//     fence a direction that goes over a `disc` limit (or 1.5× a `drop`
//     limit), and report limits and closes through a ring buffer. It must
//     be created before the node opens any socket.
//   - Userspace (NewUserspace) wraps each net.Conn, for hosts where eBPF is
//     not available (Unavailable tells which errors mean that).
//
// The node decides what a limit means for the XMPP stream (a
// <policy-violation/> stream error, or pausing a connection until
// WindowEnd); the meter only counts, fences and reports. Window holds the
// clock-aligned window arithmetic both sides share, and NewCollector
// exports the counters to Prometheus.
//
// Nothing is pinned, so bpffs need not be mounted; cgroup v2 is found in
// /proc/self/mounts (on this kind of host at /sys/fs/cgroup/unified).
// Several Loaders in one process (nodes of one test binary) share its
// child cgroup, and each sees every socket of the process.
//
// Try it (as root): go test ./loader/ -run Loopback -v; the per-packet cost
// and the ping-pong comparison: go test ./loader/ -run '^$' -bench .
// -benchtime=1s
package loader
