// SPDX-License-Identifier: GPL-2.0 OR MIT
//go:build ignore

// Starling traffic throttling: count TCP payload bytes per connection and
// direction on policed ports, fence a direction that goes over its limit,
// and tell the node through a ring buffer. Decisions that need the XMPP
// stream (writing <policy-violation/>, pausing a reader) stay in the node;
// the kernel only counts, fences and reports.
//
// The programs are attached to the node's own cgroup v2, so they only ever
// see that node's sockets. Read ../DESIGN.md §2 and §5 for the semantics.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual MIT/GPL";

// Directions index every per-direction array.
enum direction {
	DIR_INGRESS = 0,
	DIR_EGRESS = 1,
};

// Actions mirror the policy setting: disc ends the connection, drop pauses it.
enum action {
	ACTION_NONE = 0,
	ACTION_DISC = 1,
	ACTION_DROP = 2,
};

// Which limit an event is about.
enum scope {
	SCOPE_MINUTE = 0,
	SCOPE_LIFETIME = 1,
};

enum event_kind {
	EVENT_LIMIT = 1,  // a direction went over a limit (once per window)
	EVENT_CLOSED = 2, // the socket was released; final totals
};

// Per-direction flags.
enum dir_flag {
	FLAG_FENCED = 1,            // payload dropped for the connection's life (disc)
	FLAG_FENCED_WINDOW = 2,     // payload dropped until the window ends (drop ceiling)
	FLAG_NOTIFIED = 4,          // the lifetime/disc event was sent
	FLAG_NOTIFIED_WINDOW = 8,   // the per-window drop event was sent
	FLAG_SEQ = 16,              // next_seq is known
};

// Connection flags.
enum conn_flag {
	CONN_RELEASED = 1, // the socket was released but is kept for its fence
};

enum {
	MAX_PORTS = 256,
	MAX_CONNS = 65536,
};

// policy is the value of the policies map: limits apply to each direction
// separately (Tigase checks sent >= limit || received >= limit).
struct policy {
	__u64 per_window;  // bytes per window, 0 = unlimited
	__u64 lifetime;    // bytes for the connection's life, 0 = unlimited
	__u32 action;      // enum action
	__u32 _pad;
};

struct dir_state {
	__u64 window;       // index of the window window_bytes belongs to
	__u64 window_end;   // when it ends, in the programs' clock (ns)
	__u64 window_bytes; // payload bytes passed in that window
	__u64 total_bytes;  // payload bytes passed over the connection's life
	__u64 dropped;      // payload bytes dropped by a fence (retransmits too)
	__u32 flags;        // enum dir_flag
	__u32 next_seq;     // TCP sequence number after the last byte passed
};

// conn_state is the value of the conns map, keyed by socket cookie.
struct conn_state {
	struct dir_state dir[2];
	__u8 local_addr[16];  // IPv4 in the first 4 bytes
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u16 policy_port;    // the policed port that matched
	__u8 family;          // 4 or 6
	__u8 flags;           // enum conn_flag
};

// event is what the ring buffer carries.
struct event {
	__u64 cookie;
	__u64 window;
	__u64 window_bytes[2];
	__u64 total_bytes[2];
	__u64 dropped[2];
	__u32 kind;   // enum event_kind
	__u16 policy_port;
	__u8 dir;     // enum direction (EVENT_LIMIT; EGRESS for EVENT_CLOSED)
	__u8 action;  // enum action (EVENT_LIMIT)
	__u8 scope;   // enum scope (EVENT_LIMIT)
	__u8 fenced;  // EVENT_LIMIT: the direction is now fenced; EVENT_CLOSED:
	              // the egress is fenced for good, its queue can never drain
	__u8 _pad[6];
};

// port_stats is one per-CPU slot per policed port; the collector sums the
// CPUs. Updates are still atomic: a softirq (a transmit triggered by an
// incoming ACK, say) can interrupt a program run on the same CPU in the
// middle of a plain read-modify-write. Uncontended, it costs next to
// nothing.
struct port_stats {
	__u64 bytes[2];
	__u64 dropped[2];
	__u64 events[3];  // limit events by enum action
	__u64 conns;      // connections first seen
	__u64 closed;     // connections released
	__u64 lost_events; // ring buffer full
};

// Force BTF for the types bpf2go exports with -type.
const enum direction *unused_direction __attribute__((unused));
const enum action *unused_action __attribute__((unused));
const enum scope *unused_scope __attribute__((unused));
const enum event_kind *unused_event_kind __attribute__((unused));
const enum dir_flag *unused_dir_flag __attribute__((unused));
const struct event *unused_event __attribute__((unused));

// port_slots maps a TCP port to 1 + its slot in policies and stats, 0 for
// a port without a policy. An array indexed by port, rather than a hash,
// because every TCP packet of the node looks up both its ports here: the
// verifier inlines an array lookup into a bounds check and an add.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} port_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CONNS);
	__type(key, __u64);
	__type(value, struct conn_state);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port_stats);
} stats SEC(".maps");

// window_ns is the window length, fixed at load time (a minute in
// production, seconds in tests): a read-only global, frozen before the
// programs load, so reading it costs no map lookup.
volatile const __u64 window_ns = 60000000000ULL;

// clock_offset_ns is CLOCK_REALTIME - CLOCK_MONOTONIC, written by the loader,
// so windows are aligned to the wall clock's minutes like the node's.
volatile __u64 clock_offset_ns = 0;

// test_cookie, when not zero, replaces the socket cookie. BPF_PROG_TEST_RUN
// hands every run a fresh dummy socket, so stateful tests need a fixed key;
// the verifier removes the branch when it is zero, as in production.
volatile const __u64 test_cookie = 0;

static __always_inline void emit_event(struct port_stats *st, __u64 cookie, struct conn_state *cs,
				       __u32 kind, __u8 dir, __u8 action, __u8 scope, __u8 fenced,
				       __u64 window)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&st->lost_events, 1);
		return;
	}
	e->cookie = cookie;
	e->window = window;
	for (int i = 0; i < 2; i++) {
		e->window_bytes[i] = cs->dir[i].window_bytes;
		e->total_bytes[i] = cs->dir[i].total_bytes;
		e->dropped[i] = cs->dir[i].dropped;
	}
	e->kind = kind;
	e->policy_port = cs->policy_port;
	e->dir = dir;
	e->action = action;
	e->scope = scope;
	e->fenced = fenced;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	bpf_ringbuf_submit(e, 0);
}

struct packet {
	__u32 payload;
	__u32 seq;
	__u16 sport;
	__u16 dport;
	__u8 family;
};

// header returns len bytes of the packet at off: a pointer into the packet
// when they lie in its linear part (always so for TCP headers in practice,
// and much cheaper than a helper call), else a copy in buf.
static __always_inline void *header(struct __sk_buff *skb, __u32 off, void *buf, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (off < 4096 && data + off + len <= end)
		return data + off;
	if (bpf_skb_load_bytes(skb, off, buf, len))
		return 0;
	return buf;
}

// parse reads the IP and TCP headers starting at the network header (where
// cgroup_skb programs start) and reports whether this is TCP. The payload
// length comes from skb->len rather than the IP length fields: GSO and BIG
// TCP packets carry 0 or a 16-bit value there.
static __always_inline int parse(struct __sk_buff *skb, struct packet *p)
{
	union {
		struct iphdr v4;
		struct ipv6hdr v6;
		struct tcphdr tcp;
		__u8 ext[2];
	} buf;
	__u32 off;

	__u8 *vihl = header(skb, 0, &buf, 1);
	if (!vihl)
		return 0;
	if ((*vihl >> 4) == 4) {
		struct iphdr *ip = header(skb, 0, &buf, sizeof(*ip));
		if (!ip || ip->protocol != IPPROTO_TCP)
			return 0;
		// Non-first fragments carry no TCP header.
		if (ip->frag_off & bpf_htons(0x1fff))
			return 0;
		off = (__u32)ip->ihl * 4;
		p->family = 4;
	} else if ((*vihl >> 4) == 6) {
		struct ipv6hdr *ip6 = header(skb, 0, &buf, sizeof(*ip6));
		if (!ip6)
			return 0;
		off = sizeof(*ip6);
		__u8 next = ip6->nexthdr;
		// BIG TCP puts a Hop-by-Hop header (jumbo payload option) before
		// TCP on packets over 64 KiB; skip it, or most bytes go uncounted.
		if (next == IPPROTO_HOPOPTS) {
			__u8 *ext = header(skb, off, &buf, 2);
			if (!ext)
				return 0;
			next = ext[0];
			off += ((__u32)ext[1] + 1) * 8;
		}
		if (next != IPPROTO_TCP)
			return 0;
		p->family = 6;
	} else {
		return 0;
	}

	struct tcphdr *th = header(skb, off, &buf, sizeof(*th));
	if (!th)
		return 0;
	__u32 hdr = off + (__u32)th->doff * 4;
	p->payload = skb->len > hdr ? skb->len - hdr : 0;
	p->seq = bpf_ntohl(th->seq);
	p->sport = bpf_ntohs(th->source);
	p->dport = bpf_ntohs(th->dest);
	return 1;
}

// addresses copies the packet's IP addresses into the connection's state,
// local first. Only a connection's first packet needs them.
static __always_inline void addresses(struct __sk_buff *skb, struct conn_state *cs, __u8 family, __u8 dir)
{
	// Source then destination: at 12 in IPv4, at 8 in IPv6. A failed
	// load leaves zeros, which only the live view and Destroy read.
	__u8 *src = dir == DIR_INGRESS ? cs->remote_addr : cs->local_addr;
	__u8 *dst = dir == DIR_INGRESS ? cs->local_addr : cs->remote_addr;
	if (family == 4) {
		bpf_skb_load_bytes(skb, 12, src, 4);
		bpf_skb_load_bytes(skb, 16, dst, 4);
	} else {
		bpf_skb_load_bytes(skb, 8, src, 16);
		bpf_skb_load_bytes(skb, 24, dst, 16);
	}
}

// new_conn records a connection on its first payload packet. Sockets that
// are closing (already released by the node) are not recorded again.
static __always_inline struct conn_state *new_conn(struct __sk_buff *skb, __u64 cookie,
						  struct packet *p, __u8 dir, __u16 policy_port,
						  struct port_stats *st)
{
	// BPF_PROG_TEST_RUN's dummy socket is never established.
	if (!test_cookie) {
		struct bpf_sock *sk = skb->sk;
		if (!sk)
			return 0;
		sk = bpf_sk_fullsock(sk);
		if (!sk)
			return 0;
		switch (sk->state) {
		case BPF_TCP_ESTABLISHED:
		case BPF_TCP_SYN_SENT:
		case BPF_TCP_SYN_RECV:
		case BPF_TCP_CLOSE_WAIT:
			break;
		default:
			return 0;
		}
	}

	struct conn_state cs = {};
	addresses(skb, &cs, p->family, dir);
	if (dir == DIR_INGRESS) {
		cs.local_port = p->dport;
		cs.remote_port = p->sport;
	} else {
		cs.local_port = p->sport;
		cs.remote_port = p->dport;
	}
	cs.family = p->family;
	cs.policy_port = policy_port;
	if (bpf_map_update_elem(&conns, &cookie, &cs, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(&st->conns, 1);
	return bpf_map_lookup_elem(&conns, &cookie);
}

// over reports whether adding n bytes to cur goes past limit (0 = none).
static __always_inline int over(__u64 cur, __u64 n, __u64 limit)
{
	return limit && cur + n > limit;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	struct packet p;
	if (!parse(skb, &p))
		return 1;
	// Segments without payload (ACK, FIN, RST, SYN) always pass: a fence
	// must still let the connection close.
	if (p.payload == 0)
		return 1;

	__u32 local = dir == DIR_INGRESS ? p.dport : p.sport;
	__u32 remote = dir == DIR_INGRESS ? p.sport : p.dport;
	__u32 port = local;
	__u32 *slotp = bpf_map_lookup_elem(&port_slots, &port);
	if (!slotp)
		return 1;
	if (!*slotp) {
		port = remote;
		slotp = bpf_map_lookup_elem(&port_slots, &port);
		if (!slotp || !*slotp)
			return 1;
	}
	__u32 slot = *slotp - 1;
	struct policy *pol = bpf_map_lookup_elem(&policies, &slot);
	struct port_stats *st = bpf_map_lookup_elem(&stats, &slot);
	if (!pol || !st)
		return 1;

	__u64 cookie = test_cookie ? test_cookie : bpf_get_socket_cookie(skb);
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &cookie);
	if (!cs) {
		cs = new_conn(skb, cookie, &p, dir, (__u16)port, st);
		if (!cs) {
			// Not recorded (closing socket or map trouble): count it
			// globally so the listener totals stay right.
			__sync_fetch_and_add(&st->bytes[dir], p.payload);
			return 1;
		}
	}

	struct dir_state *d = &cs->dir[dir & 1];
	// Count stream bytes, not segment bytes: a retransmission (after a
	// loss, or after a fence let go) is counted once, when it first
	// passes, so the counters equal tcp_info's bytes_received/bytes_acked.
	__u32 end = p.seq + p.payload;
	__u64 n = p.payload;
	if (d->flags & FLAG_SEQ) {
		__s32 ahead = (__s32)(end - d->next_seq);
		if (ahead <= 0)
			return 1; // nothing new: already counted and let through
		if ((__u32)ahead < p.payload)
			n = (__u32)ahead;
	}
	// Comparing with the window's end spares a 64-bit division on all
	// but the first packet of each window.
	__u64 t = bpf_ktime_get_ns() + clock_offset_ns;
	if (t >= d->window_end) {
		__u64 win = t / window_ns;
		__u64 seen = d->window;
		if (seen != win && __sync_val_compare_and_swap(&d->window, seen, win) == seen) {
			// A new window: forget its bytes and the per-window flags.
			// The other direction rolls on its own packets.
			d->window_bytes = 0;
			__sync_fetch_and_and(&d->flags, ~(__u32)(FLAG_FENCED_WINDOW | FLAG_NOTIFIED_WINDOW));
			d->window_end = (win + 1) * window_ns;
		}
	}
	__u64 now = d->window;

	if (d->flags & (FLAG_FENCED | FLAG_FENCED_WINDOW))
		goto fenced;

	__u64 per_window = pol->per_window;
	__u64 lifetime = pol->lifetime;
	int over_window = over(d->window_bytes, n, per_window);
	int over_life = over(d->total_bytes, n, lifetime);
	if (!over_window && !over_life)
		goto pass;

	__u8 scope = over_life ? SCOPE_LIFETIME : SCOPE_MINUTE;
	__u32 action = pol->action;
	if (action == ACTION_DISC) {
		// Fence on the first byte over the limit: the segment that would
		// cross it is dropped whole, so the peer never gets past the limit.
		__u32 old = __sync_fetch_and_or(&d->flags, FLAG_FENCED | FLAG_NOTIFIED);
		if (!(old & FLAG_NOTIFIED)) {
			__sync_fetch_and_add(&st->events[ACTION_DISC], 1);
			emit_event(st, cookie, cs, EVENT_LIMIT, dir, ACTION_DISC, scope, 1, now);
		}
		goto fenced;
	}
	if (action == ACTION_DROP) {
		// The node pauses the connection; the kernel only fences at 1.5×
		// the limit, in case the node does not react.
		__u8 fence = 0;
		if (over(d->total_bytes, n, lifetime + lifetime / 2))
			fence = FLAG_FENCED;
		else if (over(d->window_bytes, n, per_window + per_window / 2))
			fence = FLAG_FENCED_WINDOW;
		__u32 old = __sync_fetch_and_or(&d->flags, FLAG_NOTIFIED_WINDOW | fence);
		if (!(old & FLAG_NOTIFIED_WINDOW)) {
			__sync_fetch_and_add(&st->events[ACTION_DROP], 1);
			emit_event(st, cookie, cs, EVENT_LIMIT, dir, ACTION_DROP, scope, fence != 0, now);
		}
		if (fence)
			goto fenced;
	}

pass:
	// Count the advance of the highest sequence number passed, claimed with
	// a compare-and-swap. Two CPUs can run this for one direction at once,
	// and a later segment can pass before an earlier one (on loopback each
	// CPU drains its own backlog): with a plain store the earlier segment
	// was then taken for one already counted, and its bytes were lost. Here
	// the later segment counts the gap too, the earlier one finds nothing
	// new, and the total is exact either way.
	if (d->flags & FLAG_SEQ) {
		n = 0;
		for (int i = 0; i < 4; i++) {
			__u32 cur = d->next_seq;
			__s32 adv = (__s32)(end - cur);
			if (adv <= 0)
				break;
			if (__sync_val_compare_and_swap(&d->next_seq, cur, end) == cur) {
				n = (__u32)adv;
				break;
			}
		}
		if (n == 0)
			return 1; // another CPU passed these bytes and counted them
	} else {
		d->next_seq = end;
		__sync_fetch_and_or(&d->flags, FLAG_SEQ);
	}
	__sync_fetch_and_add(&d->window_bytes, n);
	__sync_fetch_and_add(&d->total_bytes, n);
	__sync_fetch_and_add(&st->bytes[dir], n);
	return 1;

fenced:
	__sync_fetch_and_add(&d->dropped, n);
	__sync_fetch_and_add(&st->dropped[dir], n);
	return 0;
}

SEC("cgroup_skb/ingress")
int throttle_ingress(struct __sk_buff *skb)
{
	return handle(skb, DIR_INGRESS);
}

SEC("cgroup_skb/egress")
int throttle_egress(struct __sk_buff *skb)
{
	return handle(skb, DIR_EGRESS);
}

// throttle_release reports a connection's final totals when the node closes
// its socket, and forgets it. A connection whose egress is fenced is kept
// (marked released): data still queued in the socket must not slip past
// the fence while TCP drains. The closed event says so (fenced, egress),
// and the loader then destroys the socket, which can never drain, and
// deletes the entry. An ingress fence needs no keeping: a closed socket
// answers further data with a reset.
SEC("cgroup/sock_release")
int throttle_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct conn_state *cs = bpf_map_lookup_elem(&conns, &cookie);
	if (!cs || (cs->flags & CONN_RELEASED))
		return 1;
	__u32 port = cs->policy_port;
	__u32 *slotp = bpf_map_lookup_elem(&port_slots, &port);
	__u32 slot = slotp && *slotp ? *slotp - 1 : 0;
	struct port_stats *st = bpf_map_lookup_elem(&stats, &slot);
	if (!st)
		return 1;
	__u32 out = cs->dir[DIR_EGRESS].flags;
	__sync_fetch_and_add(&st->closed, 1);
	emit_event(st, cookie, cs, EVENT_CLOSED, DIR_EGRESS, 0, 0, (out & FLAG_FENCED) != 0,
		   (bpf_ktime_get_ns() + clock_offset_ns) / window_ns);
	if (out & (FLAG_FENCED | FLAG_FENCED_WINDOW))
		cs->flags |= CONN_RELEASED;
	else
		bpf_map_delete_elem(&conns, &cookie);
	return 1;
}
