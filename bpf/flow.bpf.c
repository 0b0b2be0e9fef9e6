// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * L4 flows aggregated in the kernel (issue 5).
 *
 * One packet parser feeds one flow map from two kinds of taps:
 *   - flow_tc: clsact ingress and egress of chosen interfaces (TC, 4.1+;
 *     attached through netlink by user space);
 *   - flow_mirror: a socket filter on an AF_PACKET socket bound to a mirror
 *     or SPAN port (or to any interface where TC cannot be attached). It
 *     returns 0, so no packet is ever queued to the socket: the filter only
 *     counts.
 * Both directions of a connection share one entry (canonical key, see
 * bpf/flow_id.h); per-direction counters, TCP flags, handshake times,
 * retransmissions, out-of-order segments and zero windows live in its value.
 * User space reads the map every second and deletes what it has reported.
 *
 * Two raw tracepoints add what only the local socket knows (owner process,
 * smoothed RTT, the kernel's retransmission count) to `sockinfo`, keyed by the
 * same 5-tuple, for user space to join.
 *
 * Packets are read with bpf_skb_load_bytes (socket filters have no direct
 * packet access), so one parser serves both taps. Reach: ring buffer is not
 * used; raw tracepoints 4.17, bpf_skb_load_bytes in socket filters 4.5,
 * bounded loops are not used (all unrolled): loads from 4.17 up.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "events.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_ICMPV6_ 58
#define TC_ACT_UNSPEC_ (-1) /* let any later filter decide; the default passes */
#define AF_INET_ 2
#define AF_INET6_ 10
#define TCP_SYN_SENT_ 2
#define TCP_SYN_RECV_ 3

/*
 * flows: key struct sonde_flow_key (canonical 5-tuple, interface, tap) ->
 * struct sonde_flow_val. Inserted by the first packet of a flow at a tap,
 * updated by every packet, deleted by user space once it has written the
 * flow log (closed or timed out). LRU: when full, the least recently used
 * flow is evicted; user space notices and counts it. Size set by user space
 * (--flow-max).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sonde_flow_key);
	__type(value, struct sonde_flow_val);
} flows SEC(".maps");

/*
 * sockinfo: key struct sonde_flow_key (canonical 5-tuple, ifindex and tap 0)
 * -> struct sonde_sock_info. Written by the TCP state-change and receive
 * tracepoints for local sockets; read by user space when it reports a flow
 * and deleted with the flow. LRU, so sockets of untracked interfaces age out.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sonde_flow_key);
	__type(value, struct sonde_sock_info);
} sockinfo SEC(".maps");

/* flow_stats: key 0 -> struct sonde_flow_stats, per CPU, for the whole run. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_flow_stats);
} flow_stats SEC(".maps");

/* What the parser found in one packet. */
struct pkt {
	struct sonde_flow_key key;
	__u32 seq;
	__u32 payload;  /* L4 payload bytes (all segments of a GSO packet) */
	__u32 bytes;    /* IP bytes of all segments */
	__u32 segs;     /* wire packets */
	__u16 win;
	__u8 tcpflags;
	__u8 from;      /* endpoint index of the sender */
	__u8 icmp_type;
};

static __always_inline struct sonde_flow_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&flow_stats, &zero);
}

#define STAT_INC(field)                                        \
	do {                                                   \
		struct sonde_flow_stats *s__ = stats();        \
		if (s__)                                       \
			__sync_fetch_and_add(&s__->field, 1);  \
	} while (0)

/* ---- canonical order ------------------------------------------------------ */

/* Compare two addresses given as 4 network-order words, as bytes would
 * compare: -1, 0, 1. */
static __always_inline int addr_cmp(const __u32 *a, const __u32 *b)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 x = bpf_ntohl(a[i]), y = bpf_ntohl(b[i]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/* Store source and destination in canonical order and note which endpoint
 * sent the packet. */
static __always_inline void key_set(struct pkt *p, const __u32 *src, __u16 sport,
				    const __u32 *dst, __u16 dport)
{
	int c = addr_cmp(src, dst);
	bool swap = c > 0 || (c == 0 && sport > dport);

	if (swap) {
		__builtin_memcpy(p->key.addr[0], dst, 16);
		__builtin_memcpy(p->key.addr[1], src, 16);
		p->key.port[0] = dport;
		p->key.port[1] = sport;
	} else {
		__builtin_memcpy(p->key.addr[0], src, 16);
		__builtin_memcpy(p->key.addr[1], dst, 16);
		p->key.port[0] = sport;
		p->key.port[1] = dport;
	}
	p->from = swap;
}

/* ---- parsing ---------------------------------------------------------- */

/* Ethernet and up to two VLAN tags: the L3 protocol and offset, 0 if none. */
static __always_inline __u16 parse_l2(struct __sk_buff *skb, __u32 *off)
{
	__u16 proto;

	if (bpf_skb_load_bytes(skb, 12, &proto, 2))
		return 0;
	*off = ETH_HLEN;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (bpf_skb_load_bytes(skb, *off + 2, &proto, 2))
			return 0;
		*off += 4;
	}
	return bpf_ntohs(proto);
}

/* TCP, UDP and ICMP headers at off; l4len is the IP payload length. */
static __always_inline int parse_l4(struct __sk_buff *skb, struct pkt *p, __u32 off, __u32 l4len,
				    __u32 iphlen, const __u32 *src, const __u32 *dst)
{
	__u32 segs = p->segs, hdr;

	if (p->key.l4 == IPPROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, off, &th, sizeof(th)))
			return -1;
		hdr = th.doff * 4;
		if (hdr < sizeof(th) || hdr > l4len)
			return -1;
		p->seq = bpf_ntohl(th.seq);
		p->win = bpf_ntohs(th.window);
		p->tcpflags = ((__u8 *)&th)[13];
		key_set(p, src, bpf_ntohs(th.source), dst, bpf_ntohs(th.dest));
	} else if (p->key.l4 == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, off, &uh, sizeof(uh)))
			return -1;
		hdr = sizeof(uh);
		if (hdr > l4len)
			return -1;
		key_set(p, src, bpf_ntohs(uh.source), dst, bpf_ntohs(uh.dest));
	} else {
		/* ICMP and ICMPv6 share the layout: type, code, csum, id */
		__u8 h[6];
		__u16 id = 0;

		if (bpf_skb_load_bytes(skb, off, h, sizeof(h)))
			return -1;
		hdr = 8;
		if (hdr > l4len)
			hdr = l4len;
		p->icmp_type = h[0];
		/* echo request/reply (v4: 8/0, v6: 128/129) are one flow per id */
		if (h[0] == 8 || h[0] == 0 || h[0] == 128 || h[0] == 129)
			id = ((__u16)h[4] << 8) | h[5];
		key_set(p, src, id, dst, id);
	}
	/* a GSO packet carries `segs` wire packets, each with its own headers */
	p->payload = l4len - hdr;
	p->bytes = p->payload + segs * (iphlen + hdr);
	return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p, __u32 off)
{
	struct iphdr ip;
	__u32 src[4] = {}, dst[4] = {};
	__u32 ihl, total;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return -1;
	ihl = ip.ihl * 4;
	total = bpf_ntohs(ip.tot_len);
	if (total == 0) /* BIG TCP: the length is the skb's */
		total = skb->len - off;
	if (ihl < sizeof(ip) || total < ihl)
		return -1;
	if (ip.frag_off & bpf_htons(0x1fff)) {
		STAT_INC(fragments);
		return 1;
	}
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP &&
	    ip.protocol != IPPROTO_ICMP) {
		STAT_INC(other_l4);
		return 1;
	}
	src[0] = ip.saddr;
	dst[0] = ip.daddr;
	p->key.family = SONDE_FAMILY_INET;
	p->key.l4 = ip.protocol;
	return parse_l4(skb, p, off + ihl, total - ihl, ihl, src, dst);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct pkt *p, __u32 off)
{
	struct ipv6hdr ip;
	__u32 len;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return -1;
	len = bpf_ntohs(ip.payload_len);
	if (len == 0) /* jumbogram / BIG TCP */
		len = skb->len - off - sizeof(ip);
	if (ip.nexthdr != IPPROTO_TCP && ip.nexthdr != IPPROTO_UDP &&
	    ip.nexthdr != IPPROTO_ICMPV6_) {
		STAT_INC(other_l4); /* extension headers are not walked */
		return 1;
	}
	p->key.family = SONDE_FAMILY_INET6;
	p->key.l4 = ip.nexthdr;
	return parse_l4(skb, p, off + sizeof(ip), len, sizeof(ip), (__u32 *)&ip.saddr,
			(__u32 *)&ip.daddr);
}

/* ---- accounting ------------------------------------------------------- */

/* Which endpoint is the client, from the first packet of a flow. */
static __always_inline void decide_client(struct sonde_flow_val *v, const struct pkt *p)
{
	__u8 f = p->tcpflags;

	if (p->key.l4 == IPPROTO_TCP) {
		if ((f & SONDE_TCP_SYN) && !(f & SONDE_TCP_ACK)) {
			v->client = p->from;
			v->client_by = SONDE_CLIENT_BY_SYN;
		} else if ((f & SONDE_TCP_SYN) && (f & SONDE_TCP_ACK)) {
			v->client = p->from ^ 1;
			v->client_by = SONDE_CLIENT_BY_SYN;
		} else {
			/* mid-stream: ephemeral ports are the higher ones */
			v->client = p->key.port[1] > p->key.port[0];
			v->client_by = SONDE_CLIENT_BY_PORT;
		}
		return;
	}
	/* ICMP replies (0, 129) come from the server */
	v->client = (p->icmp_type == 0 || p->icmp_type == 129) &&
				    (p->key.l4 == IPPROTO_ICMP || p->key.l4 == IPPROTO_ICMPV6_)
			    ? p->from ^ 1
			    : p->from;
	v->client_by = SONDE_CLIENT_BY_FIRST;
}

static __always_inline struct sonde_flow_val *flow_get(const struct pkt *p, __u64 now)
{
	struct sonde_flow_val *v = bpf_map_lookup_elem(&flows, &p->key);
	struct sonde_flow_val init = {};

	if (v)
		return v;
	init.first_ns = now;
	decide_client(&init, p);
	/* NOEXIST: a CPU that lost the race to insert takes the winner's entry */
	if (bpf_map_update_elem(&flows, &p->key, &init, BPF_NOEXIST) == 0)
		STAT_INC(flows_created);
	v = bpf_map_lookup_elem(&flows, &p->key);
	if (!v)
		STAT_INC(create_failed);
	return v;
}

/* Handshake times: SYN from the client, SYN-ACK from the server, then the
 * client's first plain ACK. A repeated SYN or SYN-ACK restarts the clock. */
static __always_inline void track_handshake(struct sonde_flow_val *v, const struct pkt *p,
					    __u64 now)
{
	__u8 f = p->tcpflags;
	bool from_client = p->from == v->client;

	if ((f & SONDE_TCP_SYN) && !(f & SONDE_TCP_ACK) && from_client) {
		v->syn_ns = now;
	} else if ((f & SONDE_TCP_SYN) && (f & SONDE_TCP_ACK) && !from_client) {
		v->synack_ns = now;
	} else if ((f & (SONDE_TCP_SYN | SONDE_TCP_RST | SONDE_TCP_ACK)) == SONDE_TCP_ACK &&
		   from_client && v->synack_ns && !v->ack_ns) {
		v->ack_ns = now;
	}
}

/* Sequence tracking of one direction: a segment starting before the highest
 * end seen is a retransmission, one starting after it leaves a gap
 * (out of order, or lost before this tap). SYN and FIN take one number. */
static __always_inline void track_seq(struct sonde_flow_dir *d, const struct pkt *p)
{
	__u32 len = p->payload + !!(p->tcpflags & (SONDE_TCP_SYN | SONDE_TCP_FIN));
	__u32 end = p->seq + len;
	__s32 gap;

	if (len == 0 || (p->tcpflags & SONDE_TCP_RST))
		return;
	if (!d->seq_valid) {
		d->next_seq = end;
		d->seq_valid = 1;
		return;
	}
	gap = (__s32)(p->seq - d->next_seq);
	if (gap < 0)
		__sync_fetch_and_add(&d->retrans, 1);
	else if (gap > 0)
		__sync_fetch_and_add(&d->ooo, 1);
	if ((__s32)(end - d->next_seq) > 0)
		d->next_seq = end;
}

/* A window that drops to 0 is one event, however many packets repeat it. */
static __always_inline void track_window(struct sonde_flow_dir *d, const struct pkt *p)
{
	if (p->tcpflags & (SONDE_TCP_SYN | SONDE_TCP_RST))
		return;
	if (p->win == 0) {
		if (!d->win_zero) {
			d->win_zero = 1;
			__sync_fetch_and_add(&d->zero_win, 1);
		}
	} else if (d->win_zero) {
		d->win_zero = 0;
	}
}

static __always_inline void track_tcp(struct sonde_flow_val *v, struct sonde_flow_dir *d,
				      const struct pkt *p, __u64 now)
{
	__u8 f = p->tcpflags;

	d->flags |= f;
	if (f & SONDE_TCP_SYN)
		__sync_fetch_and_add(&d->syn, 1);
	if (f & SONDE_TCP_FIN)
		__sync_fetch_and_add(&d->fin, 1);
	if (f & SONDE_TCP_RST) {
		__sync_fetch_and_add(&d->rst, 1);
		if (!v->first_rst)
			v->first_rst = 1 + p->from;
	}
	track_handshake(v, p, now);
	track_seq(d, p);
	track_window(d, p);
}

/* Parse one packet and count it in its flow. */
static __always_inline void flow_packet(struct __sk_buff *skb, __u8 tap)
{
	struct pkt p = {};
	struct sonde_flow_val *v;
	struct sonde_flow_dir *d;
	__u64 now;
	__u32 off;
	__u16 proto;
	int rc;

	STAT_INC(packets);
	proto = parse_l2(skb, &off);
	p.segs = skb->gso_segs ? skb->gso_segs : 1;
	p.key.ifindex = skb->ifindex;
	p.key.tap = tap;
	if (proto == ETH_P_IP) {
		rc = parse_ipv4(skb, &p, off);
	} else if (proto == ETH_P_IPV6) {
		rc = parse_ipv6(skb, &p, off);
	} else {
		STAT_INC(not_ip);
		return;
	}
	if (rc < 0)
		STAT_INC(truncated);
	if (rc)
		return;
	now = bpf_ktime_get_ns();
	v = flow_get(&p, now);
	if (!v)
		return;
	d = &v->dir[p.from & 1];
	__sync_fetch_and_add(&d->pkts, p.segs);
	__sync_fetch_and_add(&d->bytes, p.bytes);
	__sync_fetch_and_add(&d->payload, p.payload);
	v->last_ns = now;
	if (p.key.l4 == IPPROTO_TCP)
		track_tcp(v, d, &p, now);
}

SEC("tc")
int flow_tc(struct __sk_buff *skb)
{
	flow_packet(skb, SONDE_TAP_TC);
	return TC_ACT_UNSPEC_;
}

SEC("socket")
int flow_mirror(struct __sk_buff *skb)
{
	flow_packet(skb, SONDE_TAP_MIRROR);
	return 0; /* keep nothing: the socket only exists to run this filter */
}

/* ---- local sockets ------------------------------------------------------ */

/* The socket's 5-tuple as a canonical sockinfo key; *local is the endpoint
 * index of the socket itself. Returns -1 for other families. */
static __always_inline int sock_key(struct sock *sk, struct sonde_flow_key *k, __u8 *local)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u32 src[4] = {}, dst[4] = {};
	struct pkt p = {};

	if (family == AF_INET_) {
		src[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		dst[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		p.key.family = SONDE_FAMILY_INET;
	} else if (family == AF_INET6_) {
		BPF_CORE_READ_INTO(&src, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&dst, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
		p.key.family = SONDE_FAMILY_INET6;
		/* IPv4-mapped (::ffff:a.b.c.d): the packets are IPv4 */
		if (src[0] == 0 && src[1] == 0 && src[2] == bpf_htonl(0xffff)) {
			src[0] = src[3];
			dst[0] = dst[3];
			src[1] = src[2] = src[3] = 0;
			dst[1] = dst[2] = dst[3] = 0;
			p.key.family = SONDE_FAMILY_INET;
		}
	} else {
		return -1;
	}
	p.key.l4 = IPPROTO_TCP;
	key_set(&p, src, lport, dst, rport);
	*k = p.key;
	*local = p.from;
	return 0;
}

/* Record the socket's RTT, retransmissions and state; the owner when the
 * caller runs in its process (connect, recvmsg). */
static __always_inline void sock_update(struct sock *sk, int state, bool owner)
{
	struct sonde_sock_info *si, zero = {};
	struct sonde_sock_side *side;
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct sonde_flow_key k;
	__u8 local;

	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return;
	if (sock_key(sk, &k, &local))
		return;
	si = bpf_map_lookup_elem(&sockinfo, &k);
	if (!si) {
		bpf_map_update_elem(&sockinfo, &k, &zero, BPF_NOEXIST);
		si = bpf_map_lookup_elem(&sockinfo, &k);
		if (!si)
			return;
	}
	side = &si->side[local & 1];
	/* a new socket on a reused 5-tuple starts afresh */
	if (state == TCP_SYN_SENT_ || state == TCP_SYN_RECV_)
		__builtin_memset(side, 0, sizeof(*side));
	side->seen = 1;
	side->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	side->total_retrans = BPF_CORE_READ(tp, total_retrans);
	if (state >= 0)
		side->state = state;
	if (owner && !side->pid) {
		side->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(side->comm, sizeof(side->comm));
	}
	STAT_INC(sock_updates);
}

/* inet_sock_set_state(sk, oldstate, newstate): every TCP state change.
 * Only the move to SYN_SENT is known to run in the owner's process
 * (connect); the others may run in softirq on behalf of anyone. */
SEC("raw_tp/inet_sock_set_state")
int flow_sock_state(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	int state = (int)ctx->args[2];

	sock_update(sk, state, state == TCP_SYN_SENT_);
	return 0;
}

/* tcp_rcv_space_adjust(sk): runs in recvmsg, in the reading process, so it
 * names the owner of accepted sockets too. */
SEC("raw_tp/tcp_rcv_space_adjust")
int flow_sock_recv(struct bpf_raw_tracepoint_args *ctx)
{
	sock_update((struct sock *)ctx->args[0], -1, true);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
