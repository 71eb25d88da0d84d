// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//
// Cordon's network sensor: TCP connections (connect, accept, listen, close with bytes and
// duration), UDP destinations, and DNS messages, each with the process behind it. This kernel
// has no kprobes, and BPF trampolines (fentry, fexit and the BPF LSM) refuse to load, so:
//   - the BTF tracepoint inet_sock_set_state sees every TCP state change (connect, listen,
//     established, close), IPv4 and IPv6, in every network namespace;
//   - cgroup socket-address programs on the root cgroup (connect4/6, sendmsg4/6) run in the
//     process connecting a UDP socket or sending a datagram, with its destination;
//   - cgroup socket-buffer programs on the root cgroup count UDP payload bytes per socket and see
//     DNS packets (UDP port 53) both ways; a cgroup sock_release program ends a UDP flow.
// The process of an event that happens outside its context (a connection established or
// closed in softirq, a DNS answer) is the one remembered for that socket when it was in
// context. An accepted connection is established in softirq: it gets the process that listens
// on that port in that namespace. Records that do not fit in the ring buffer are counted in
// `drops` (per kind), never hidden. Every program lets the traffic through.

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define KIND_CONNECT 1
#define KIND_ACCEPT 2
#define KIND_LISTEN 3
#define KIND_CLOSE 4
#define KIND_DNS_QUERY 5
#define KIND_DNS_ANSWER 6
#define KINDS 7

#define FLAG_INITIATED 1
#define FLAG_FAILED 2
#define FLAG_NO_PROCESS 4

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LISTEN 10

#define DNS_PORT 53
#define PAYLOAD_MAX 512

typedef struct { __u32 val; } kuid_t;

struct cred {
	kuid_t uid;
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	__u64 start_boottime;
	struct task_struct *group_leader;
	const struct cred *cred;
} __attribute__((preserve_access_index));

// Read whole (16 bytes); the kernel's is a union of arrays.
struct in6_addr {
	__u8 bytes[16];
};

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	possible_net_t skc_net;
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
	__u8 sk_shutdown;
} __attribute__((preserve_access_index));

#define RCV_SHUTDOWN 1

struct tcp_sock {
	__u64 bytes_sent;
	__u64 bytes_received;
} __attribute__((preserve_access_index));


// One record. Shared layout with agent/src/sensors/network/ebpf.rs (little endian, every field
// naturally aligned). DNS records are sent up to the used part of `payload`; the others up to
// `payload` (HEADER_SIZE bytes).
struct record {
	__u32 kind;
	__u32 flags;
	__u32 pid;
	__u32 uid;
	__u64 start_boottime_ns;
	__u64 time_boot_ns;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u64 duration_ns;
	__u64 cookie;
	__u16 family;
	__u16 protocol;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 payload_len;
	__u32 pad;
	__u8 payload[PAYLOAD_MAX];
};

#define HEADER_SIZE __builtin_offsetof(struct record, payload)

// Who opened a socket, remembered for the events that come outside that process's context.
struct owner {
	__u32 pid;
	__u32 uid;
	__u64 start_boottime_ns;
	__u64 opened_ns;
	__u32 flags;
	// The local port once known (a closing socket may have given it back already).
	__u16 sport;
	__u16 pad;
};

// 2 MiB: about 10,000 connection records, or 3,000 DNS messages, not yet read.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KINDS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// Listening TCP sockets by (network namespace, port): who listens, for the connections accepted
// there.
struct listen_key {
	__u32 netns;
	__u32 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct listen_key);
	__type(value, struct owner);
} listeners SEC(".maps");

// TCP sockets by address: who connected or accepted them, and when.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct owner);
} tcp_owners SEC(".maps");

// UDP destinations already reported, by (socket cookie, address, port): one event per
// destination.
struct udp_key {
	__u64 cookie;
	__u8 addr[16];
	__u16 port;
	__u16 pad1;
	__u32 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct udp_key);
	__type(value, __u8);
} udp_seen SEC(".maps");

// UDP sockets that sent, by cookie: who, when, where to first, and the payload bytes both
// ways, for the CLOSE record when the socket is released.
struct udp_flow {
	struct owner o;
	__u64 sent;
	__u64 received;
	__u8 daddr[16];
	__u16 dport;
	__u16 family;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct udp_flow);
} udp_flows SEC(".maps");

// Sockets that sent a DNS query, by socket cookie: who asked, for the answer.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct owner);
} dns_owners SEC(".maps");

static __always_inline void count_drop(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &kind);
	if (n)
		*n += 1;
}

static __always_inline struct record *start(__u32 kind)
{
	__u32 zero = 0;
	struct record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r) {
		count_drop(kind);
		return 0;
	}
	__builtin_memset(r, 0, HEADER_SIZE);
	r->kind = kind;
	r->time_boot_ns = bpf_ktime_get_boot_ns();
	return r;
}

static __always_inline void submit(struct record *r, __u64 size)
{
	if (bpf_ringbuf_output(&events, r, size, 0) != 0)
		count_drop(r->kind);
}

// The current process, as an owner, without its start time (which user space then finds).
static __always_inline void current_ids(struct owner *o, __u32 flags)
{
	o->pid = bpf_get_current_pid_tgid() >> 32;
	o->uid = (__u32)bpf_get_current_uid_gid();
	o->start_boottime_ns = 0;
	o->opened_ns = bpf_ktime_get_boot_ns();
	o->flags = flags;
	o->sport = 0;
	o->pad = 0;
}

// The current process, as an owner (tracing programs, which can read the task).
static __always_inline void current_owner(struct owner *o, __u32 flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	current_ids(o, flags);
	o->start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime);
}

static __always_inline struct listen_key listen_key_of(const struct sock *sk)
{
	struct listen_key k = {
		.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum),
		.port = BPF_CORE_READ(sk, __sk_common.skc_num),
	};
	return k;
}

static __always_inline void put_owner(struct record *r, const struct owner *o)
{
	r->pid = o->pid;
	r->uid = o->uid;
	r->start_boottime_ns = o->start_boottime_ns;
	r->flags |= o->flags;
}

// Local and remote addresses and ports of a socket.
static __always_inline void put_addrs(struct record *r, const struct sock *sk)
{
	r->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	r->protocol = BPF_CORE_READ(sk, sk_protocol);
	r->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	r->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (r->family == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr *)r->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)r->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(r->saddr, &s, 4);
		__builtin_memcpy(r->daddr, &d, 4);
	}
}

static __always_inline int is_inet(const struct sock *sk)
{
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6;
}

// A connection record from the owner kept for `sk` (or none known).
static __always_inline void emit_tcp(__u32 kind, const struct sock *sk, struct owner *o,
				     __u32 flags)
{
	struct record *r = start(kind);
	if (!r)
		return;
	put_addrs(r, sk);
	r->flags = flags;
	if (o)
		put_owner(r, o);
	else
		r->flags |= FLAG_NO_PROCESS;
	if (kind == KIND_CLOSE) {
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		// Data octets sent (retransmissions included) and received (in sequence; the
		// kernel's count includes the peer's FIN, if one came).
		r->bytes_sent = BPF_CORE_READ(tp, bytes_sent);
		r->bytes_received = BPF_CORE_READ(tp, bytes_received);
		if ((BPF_CORE_READ(sk, sk_shutdown) & RCV_SHUTDOWN) && r->bytes_received > 0)
			r->bytes_received -= 1;
		if (o) {
			r->duration_ns = r->time_boot_ns - o->opened_ns;
			if (!r->sport)
				r->sport = o->sport;
		}
	} else if (o) {
		o->sport = r->sport;
	}
	submit(r, HEADER_SIZE);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(cordon_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP || !is_inet(sk))
		return 0;
	__u64 key = (__u64)sk;
	if (newstate == TCP_SYN_SENT) {
		// In the connecting process; the source port may not be chosen yet, so the record
		// waits for the outcome.
		struct owner o;
		current_owner(&o, FLAG_INITIATED);
		bpf_map_update_elem(&tcp_owners, &key, &o, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_LISTEN) {
		struct owner o;
		current_owner(&o, 0);
		struct listen_key lk = listen_key_of(sk);
		bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY);
		emit_tcp(KIND_LISTEN, sk, &o, 0);
		return 0;
	}
	if (oldstate == TCP_LISTEN) {
		// A listener closing; (LISTEN -> SYN_RECV is a new connection, cloned from it.)
		if (newstate == TCP_CLOSE) {
			struct listen_key lk = listen_key_of(sk);
			bpf_map_delete_elem(&listeners, &lk);
		}
		return 0;
	}
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		// Accepted (by the kernel, in softirq): the process is the one listening there.
		struct listen_key lk = listen_key_of(sk);
		struct owner *l = bpf_map_lookup_elem(&listeners, &lk);
		struct owner o = {};
		if (l) {
			o = *l;
			o.opened_ns = bpf_ktime_get_boot_ns();
			o.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
			bpf_map_update_elem(&tcp_owners, &key, &o, BPF_ANY);
		}
		emit_tcp(KIND_ACCEPT, sk, l ? &o : 0, 0);
		return 0;
	}
	struct owner *o = bpf_map_lookup_elem(&tcp_owners, &key);
	if (oldstate == TCP_SYN_SENT && o) {
		// Established, or refused, reset or timed out before it was.
		__u32 failed = newstate == TCP_ESTABLISHED ? 0 : FLAG_FAILED;
		emit_tcp(KIND_CONNECT, sk, o, failed);
		if (failed)
			bpf_map_delete_elem(&tcp_owners, &key);
		return 0;
	}
	if (newstate == TCP_CLOSE && o) {
		emit_tcp(KIND_CLOSE, sk, o, 0);
		bpf_map_delete_elem(&tcp_owners, &key);
	}
	return 0;
}

// A UDP socket connected, or a datagram sent to an address: one CONNECT record per socket and
// destination, and the sender remembered for DNS.
static __always_inline void udp_destination(struct bpf_sock_addr *ctx, const int v6)
{
	if (ctx->protocol != IPPROTO_UDP)
		return;
	struct record *r = start(KIND_CONNECT);
	if (!r)
		return;
	r->protocol = IPPROTO_UDP;
	r->dport = bpf_ntohs((__u16)ctx->user_port);
	// The context allows only the fields of its own family (a constant here).
	if (v6) {
		r->family = AF_INET6;
		volatile __u32 *out = (volatile __u32 *)r->daddr;
		out[0] = ctx->user_ip6[0];
		out[1] = ctx->user_ip6[1];
		out[2] = ctx->user_ip6[2];
		out[3] = ctx->user_ip6[3];
	} else {
		r->family = AF_INET;
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(r->daddr, &a, 4);
	}
	struct bpf_sock *sk = ctx->sk;
	if (sk)
		r->sport = sk->src_port;
	r->cookie = bpf_get_socket_cookie(ctx);
	struct owner o;
	current_ids(&o, FLAG_INITIATED);
	if (r->dport == DNS_PORT)
		bpf_map_update_elem(&dns_owners, &r->cookie, &o, BPF_ANY);
	struct udp_flow flow = {.o = o, .dport = r->dport, .family = r->family};
	flow.o.sport = r->sport;
	__builtin_memcpy(flow.daddr, r->daddr, 16);
	bpf_map_update_elem(&udp_flows, &r->cookie, &flow, BPF_NOEXIST);
	struct udp_key key = {.cookie = r->cookie, .port = r->dport};
	__builtin_memcpy(key.addr, r->daddr, 16);
	__u8 one = 1;
	if (bpf_map_update_elem(&udp_seen, &key, &one, BPF_NOEXIST) != 0)
		return;
	put_owner(r, &o);
	submit(r, HEADER_SIZE);
}

SEC("cgroup/connect4")
int cordon_connect4(struct bpf_sock_addr *ctx)
{
	udp_destination(ctx, 0);
	return 1;
}

SEC("cgroup/connect6")
int cordon_connect6(struct bpf_sock_addr *ctx)
{
	udp_destination(ctx, 1);
	return 1;
}

SEC("cgroup/sendmsg4")
int cordon_sendmsg4(struct bpf_sock_addr *ctx)
{
	udp_destination(ctx, 0);
	return 1;
}

SEC("cgroup/sendmsg6")
int cordon_sendmsg6(struct bpf_sock_addr *ctx)
{
	udp_destination(ctx, 1);
	return 1;
}

// Reads the IP and UDP headers of a packet at the network header: addresses, ports and where
// the UDP payload starts. Returns 0 when it is not UDP over IPv4 or IPv6.
static __always_inline __u32 udp_packet(struct __sk_buff *skb, struct record *r)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl = 0;
		__u8 proto = 0;
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1))
			return 0;
		if (proto != IPPROTO_UDP)
			return 0;
		r->family = AF_INET;
		if (bpf_skb_load_bytes(skb, 12, r->saddr, 4) || bpf_skb_load_bytes(skb, 16, r->daddr, 4))
			return 0;
		return (vihl & 0x0f) * 4;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 next = 0;
		if (bpf_skb_load_bytes(skb, 6, &next, 1) || next != IPPROTO_UDP)
			return 0;
		r->family = AF_INET6;
		if (bpf_skb_load_bytes(skb, 8, r->saddr, 16) || bpf_skb_load_bytes(skb, 24, r->daddr, 16))
			return 0;
		return 40;
	}
	return 0;
}

// A UDP packet: its payload counted on its socket's flow, and if it is a DNS message (to port
// 53 going out, from port 53 coming in) that into the ring buffer with the process that asked.
// Always lets the packet through.
static __always_inline int udp_packet_seen(struct __sk_buff *skb, int egress)
{
	__u32 kind = egress ? KIND_DNS_QUERY : KIND_DNS_ANSWER;
	__u32 zero = 0;
	struct record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return 1;
	__builtin_memset(r, 0, HEADER_SIZE);
	__u32 off = udp_packet(skb, r);
	if (off < 20 || off > 60)
		return 1;
	__be16 ports[2];
	if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
		return 1;
	r->sport = bpf_ntohs(ports[0]);
	r->dport = bpf_ntohs(ports[1]);
	r->cookie = bpf_get_socket_cookie(skb);
	struct udp_flow *flow = bpf_map_lookup_elem(&udp_flows, &r->cookie);
	if (flow) {
		__u64 n = skb->len > off + 8 ? skb->len - off - 8 : 0;
		if (egress)
			__sync_fetch_and_add(&flow->sent, n);
		else
			__sync_fetch_and_add(&flow->received, n);
	}
	if ((egress ? r->dport : r->sport) != DNS_PORT)
		return 1;
	r->kind = kind;
	r->protocol = IPPROTO_UDP;
	r->time_boot_ns = bpf_ktime_get_boot_ns();
	// The process the socket_sendmsg hook saw sending on this socket.
	struct owner *o = bpf_map_lookup_elem(&dns_owners, &r->cookie);
	if (o)
		put_owner(r, o);
	else
		r->flags |= FLAG_NO_PROCESS;
	off += 8;
	__u32 len = skb->len > off ? skb->len - off : 0;
	if (len > PAYLOAD_MAX)
		len = PAYLOAD_MAX;
	if (len < 12)
		return 1;
	if (bpf_skb_load_bytes(skb, off, r->payload, len))
		return 1;
	r->payload_len = len;
	submit(r, HEADER_SIZE + len);
	return 1;
}

SEC("cgroup_skb/egress")
int cordon_dns_egress(struct __sk_buff *skb)
{
	return udp_packet_seen(skb, 1);
}

SEC("cgroup_skb/ingress")
int cordon_dns_ingress(struct __sk_buff *skb)
{
	return udp_packet_seen(skb, 0);
}

// A UDP socket released: its CLOSE record, with the bytes both ways and how long it lived.
SEC("cgroup/sock_release")
int cordon_sock_release(struct bpf_sock *sk)
{
	if (sk->protocol != IPPROTO_UDP)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct udp_flow *flow = bpf_map_lookup_elem(&udp_flows, &cookie);
	if (!flow)
		return 1;
	struct record *r = start(KIND_CLOSE);
	if (r) {
		r->protocol = IPPROTO_UDP;
		r->family = flow->family;
		r->sport = flow->o.sport;
		r->dport = flow->dport;
		__builtin_memcpy(r->daddr, flow->daddr, 16);
		// (The local address is not readable here: a UDP close has the port only.)
		put_owner(r, &flow->o);
		r->bytes_sent = flow->sent;
		r->bytes_received = flow->received;
		r->duration_ns = r->time_boot_ns - flow->o.opened_ns;
		r->cookie = cookie;
		submit(r, HEADER_SIZE);
	}
	bpf_map_delete_elem(&udp_flows, &cookie);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
