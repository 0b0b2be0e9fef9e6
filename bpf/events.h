/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Every struct that crosses between the kernel and user space, defined once.
 *
 * Included by BPF programs (after vmlinux.h) and by user space (after
 * <linux/types.h>), so it uses only the __u8.. __u64 kernel typedefs and
 * fixed-size arrays: the layout is the same on both sides by construction.
 */
#ifndef SONDE_EVENTS_H
#define SONDE_EVENTS_H

#define SONDE_COMM_LEN 16
/* Bytes of an HTTP request target kept in a record; longer paths are cut and
 * flagged SONDE_F_PATH_TRUNCATED. 96 keeps a record under 256 bytes and
 * covers nearly every real route (query strings are what get cut). */
#define SONDE_PATH_MAX 96
/* Bytes of a response detail (PostgreSQL command tag or SQLSTATE, Redis
 * error prefix, ...) kept in a record. */
#define SONDE_DETAIL_MAX 32
/* Requests a connection may have outstanding (pipelined) before the extra
 * ones are counted in stat pipeline_overflow instead of paired. */
#define SONDE_PIPELINE_DEPTH 4
/* Most --proto-port hints (port -> protocol, tried before inference). */
#define SONDE_MAX_PROTO_PORTS 8
/* Most ports --port accepts (kept in rodata, compared once per connection). */
#define SONDE_MAX_PORT_FILTERS 8

/* Bytes of a normalised route in a metric key (see bpf/metrics.h). */
#define SONDE_ROUTE_MAX 64 /* a power of 2: indexes are masked with it */
/* Latency histogram: 8 linear buckets per octave of microseconds, so any
 * quantile read from it is within 6.25% between 8 us and 16.7 s. */
#define SONDE_LAT_SUB_BITS 3
#define SONDE_LAT_BUCKETS 176
/* Method code of the single overflow key that takes every transaction once
 * the metric map is full. */
#define SONDE_M_OVERFLOW 0xff

/* What a record on the event channel is; first field of every event. */
enum sonde_event_kind {
	SONDE_EV_L7 = 1,
};

enum sonde_proto {
	SONDE_PROTO_UNKNOWN = 0,
	SONDE_PROTO_HTTP1 = 1,
	SONDE_PROTO_REDIS = 2,
	SONDE_PROTO_PGSQL = 3,
	SONDE_PROTO_MYSQL = 4,
	SONDE_PROTO_MEMCACHED = 5,
	SONDE_PROTO_DNS = 6,
	SONDE_PROTO_MQTT = 7,
	SONDE_PROTO_KAFKA = 8,
	SONDE_PROTO_MONGO = 9,
	SONDE_PROTO_HTTP2 = 10,
	SONDE_PROTO__COUNT,
	SONDE_PROTO_NONE = 255, /* inference gave up on this connection */
};

/* The side of the conversation the traced process is on. */
enum sonde_role {
	SONDE_ROLE_UNKNOWN = 0,
	SONDE_ROLE_CLIENT = 1, /* it sent the request */
	SONDE_ROLE_SERVER = 2, /* it received the request */
};

/* HTTP methods, in the order they are looked up. */
enum sonde_http_method {
	SONDE_M_UNKNOWN = 0,
	SONDE_M_GET, SONDE_M_POST, SONDE_M_PUT, SONDE_M_DELETE, SONDE_M_HEAD,
	SONDE_M_OPTIONS, SONDE_M_PATCH, SONDE_M_CONNECT, SONDE_M_TRACE,
	SONDE_M__COUNT,
};

/* sonde_l7_event.flags */
enum sonde_l7_flags {
	SONDE_F_TIMEOUT = 1 << 0,        /* no response within the timeout */
	SONDE_F_CLOSED = 1 << 1,         /* connection closed before the response ended */
	SONDE_F_PATH_TRUNCATED = 1 << 2, /* path longer than SONDE_PATH_MAX */
	SONDE_F_NO_REQUEST_END = 1 << 3, /* response came before the request body ended */
	SONDE_F_ERROR = 1 << 4,          /* the protocol reported an error */
};

/* Address family as carried in events (not the kernel's AF_* numbers, so user
 * space need not care which kernel it runs on). */
enum sonde_family {
	SONDE_FAMILY_NONE = 0,
	SONDE_FAMILY_INET = 1,
	SONDE_FAMILY_INET6 = 2,
	SONDE_FAMILY_UNIX = 3,
};

/*
 * Endpoints of a connection oriented client -> server. IPv4 addresses are
 * stored in the first 4 bytes of the 16-byte arrays. Ports in host order.
 */
struct sonde_endpoints {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 family; /* enum sonde_family */
	__u8 _pad[3];
};

/*
 * One completed (or timed-out, or cut-off) L7 transaction. Sent once per
 * transaction and role: a request between two traced processes on this host
 * yields one client and one server event.
 */
struct sonde_l7_event {
	__u32 kind;       /* SONDE_EV_L7 */
	__u32 pid;        /* tgid of the process that handled the request */
	__u32 tid;
	__u16 status;     /* HTTP status; 0 when no response */
	__u8 proto;       /* enum sonde_proto */
	__u8 role;        /* enum sonde_role */
	__u64 ts_ns;      /* request start, CLOCK_MONOTONIC */
	__u64 latency_ns; /* request start to last response byte; 0 when none */
	__u64 conn_id;    /* kernel socket identity, stable for the connection */
	__u64 req_bytes;
	__u64 resp_bytes;
	struct sonde_endpoints ep;
	__u8 method;      /* HTTP: enum sonde_http_method; others: operation code */
	__u8 flags;       /* enum sonde_l7_flags */
	__u8 path_len;    /* bytes used in path */
	__u8 detail_len;  /* bytes used in detail */
	__u32 id;         /* pairing id (DNS id, Kafka correlation id, ...) */
	__u32 code;       /* protocol error code (MySQL errno, Kafka error ...) */
	__u32 count;      /* rows, answers, reply elements */
	__u16 op2;        /* sub-code: DNS qtype, Kafka api version, MQTT QoS */
	__u8 reply;       /* reply class (Redis reply type byte, ...) */
	__u8 _pad;
	char comm[SONDE_COMM_LEN];
	char path[SONDE_PATH_MAX];     /* HTTP path; others: query, key, name, topic */
	char detail[SONDE_DETAIL_MAX]; /* response detail (tag, SQLSTATE, error word) */
};

/*
 * Key of the `red` metric map: one series per process, role, protocol, server
 * and endpoint. The overflow series has method SONDE_M_OVERFLOW and all other
 * fields zero.
 */
struct sonde_red_key {
	__u32 pid;
	__u8 role;         /* enum sonde_role */
	__u8 proto;        /* enum sonde_proto */
	__u8 method;       /* enum sonde_http_method, or SONDE_M_OVERFLOW */
	__u8 family;       /* enum sonde_family */
	__u8 server_addr[16];
	__u16 server_port;
	__u16 _pad;
	char route[SONDE_ROUTE_MAX]; /* normalised path, NUL-padded */
};

/* Value of the `red` map (per CPU): counts since the series appeared. The
 * histogram counts wrap at 2^32; readers take differences. */
struct sonde_red_val {
	__u64 requests;
	__u64 errors_4xx;
	__u64 errors_5xx;
	__u64 errors_other;  /* timeouts, connections cut before the answer */
	__u64 req_bytes;
	__u64 resp_bytes;
	__u64 latency_sum_ns;
	char comm[SONDE_COMM_LEN]; /* process name when the series appeared */
	__u32 latency_hist[SONDE_LAT_BUCKETS];
};

/*
 * Self-observability counters, one per CPU in the `stats` map; user space
 * sums them. Every drop or give-up in the kernel path is counted here.
 */
struct sonde_stats {
	__u64 syscalls_traced;     /* socket syscalls that reached the parsers */
	__u64 events_sent;         /* records submitted to the event channel */
	__u64 events_dropped;      /* records lost: event channel full */
	__u64 conns_created;       /* connection states inserted */
	__u64 conns_closed;        /* connection states removed on close */
	__u64 parse_lost;          /* streams that lost framing (resynced later) */
	__u64 parse_budget;        /* syscalls with more messages than one pass parses */
	__u64 pipeline_overflow;   /* requests beyond SONDE_PIPELINE_DEPTH, not reported */
	__u64 unpaired_responses;  /* responses with no request seen */
	__u64 iov_truncated;       /* iovec arrays longer than the parser walks */
	__u64 closed_pending;      /* transactions reported because the socket closed */
	__u64 metric_overflow;     /* transactions counted in the overflow series */
	__u64 logs_suppressed;     /* transactions counted but not logged (--logs) */
	__u64 requests_abandoned;  /* requests whose response was lost with the framing
				    * (SQL: dropped when a later response resyncs) */
	__u64 metric_proc_overflow; /* transactions counted in a process's overflow series
				     * (--max-series-per-process reached) */
	__u64 inflight_replaced;   /* syscalls not parsed: another thread took their slot */
};

/* ======================================================================
 * Flows (issue 5): L4 flow tracking in bpf/flow.bpf.c, read by user/flow.c.
 * Field reference: docs/FLOWS.md.
 * ====================================================================== */

/* Where a packet was seen. */
enum sonde_flow_tap {
	SONDE_TAP_TC = 0,     /* clsact ingress/egress program on the interface */
	SONDE_TAP_MIRROR = 1, /* socket filter on an AF_PACKET socket (mirror/SPAN port) */
};

/* How the client side of a flow was decided (sonde_flow_val.client_by). */
enum sonde_client_by {
	SONDE_CLIENT_BY_SYN = 1,   /* it sent the SYN (or received the SYN-ACK) */
	SONDE_CLIENT_BY_FIRST = 2, /* UDP/ICMP: it sent the first packet, or an echo request */
	SONDE_CLIENT_BY_PORT = 3,  /* TCP seen mid-stream: the side with the higher port */
};

/* TCP flag bits as in the header's 13th byte. */
#define SONDE_TCP_FIN 0x01
#define SONDE_TCP_SYN 0x02
#define SONDE_TCP_RST 0x04
#define SONDE_TCP_PSH 0x08
#define SONDE_TCP_ACK 0x10
#define SONDE_TCP_URG 0x20

/*
 * Key of the `flows` map. Both directions of a connection map to one key: the
 * two endpoints are stored in canonical order (endpoint 0 is the smaller by
 * address bytes, then port), see bpf/flow_id.h. IPv4 addresses use the first
 * 4 bytes. Ports in host order; ICMP echo carries its identifier in both
 * ports, other ICMP 0. The `sockinfo` map uses the same key with ifindex and
 * tap zero.
 */
struct sonde_flow_key {
	__u8 addr[2][16];
	__u16 port[2];
	__u32 ifindex;  /* interface the packet was seen on */
	__u8 family;    /* enum sonde_family */
	__u8 l4;        /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 */
	__u8 tap;       /* enum sonde_flow_tap */
	__u8 _pad;
};

/* Counters of the packets sent by one endpoint of a flow. */
struct sonde_flow_dir {
	__u64 pkts;      /* wire packets (a GSO packet counts its segments) */
	__u64 bytes;     /* IP bytes: headers and payload of every segment */
	__u64 payload;   /* L4 payload bytes */
	__u32 retrans;   /* TCP segments whose sequence went backwards */
	__u32 ooo;       /* TCP segments beyond the next expected sequence (a gap) */
	__u32 zero_win;  /* times the advertised window became 0 */
	__u32 syn;       /* SYN (or SYN-ACK) packets */
	__u32 fin;       /* FIN packets */
	__u32 rst;       /* RST packets */
	__u32 next_seq;  /* highest sequence + length seen */
	__u8 flags;      /* every TCP flag seen, ORed */
	__u8 seq_valid;  /* next_seq holds a sequence number */
	__u8 win_zero;   /* last window advertised was 0 */
	__u8 _pad;
};

/* Value of the `flows` map. Times are CLOCK_MONOTONIC. */
struct sonde_flow_val {
	__u64 first_ns;
	__u64 last_ns;
	__u64 syn_ns;     /* last SYN from the client */
	__u64 synack_ns;  /* last SYN-ACK from the server */
	__u64 ack_ns;     /* the client's ACK completing the handshake */
	struct sonde_flow_dir dir[2]; /* dir[i]: sent by endpoint i of the key */
	__u8 client;      /* endpoint index (0/1) of the client */
	__u8 client_by;   /* enum sonde_client_by */
	__u8 first_rst;   /* 0: no RST; else 1 + endpoint index of the first RST */
	__u8 _pad[5];
};

/* One local TCP socket's view of a flow, from the sock/tcp tracepoints. */
struct sonde_sock_side {
	__u32 pid;           /* owner (process that connected or read), 0 unknown */
	__u32 srtt_us;       /* smoothed RTT (tcp_sock.srtt_us >> 3) */
	__u32 total_retrans; /* tcp_sock.total_retrans */
	__u8 state;          /* last TCP state (TCP_ESTABLISHED = 1 ...) */
	__u8 seen;           /* this endpoint is a local socket */
	__u8 _pad[2];
	char comm[SONDE_COMM_LEN];
};

/* Value of the `sockinfo` map: side[i] is endpoint i of the key (both are
 * local for a connection over loopback). */
struct sonde_sock_info {
	struct sonde_sock_side side[2];
};

/* Flow counters, one per CPU in the `flow_stats` map; user space sums them. */
struct sonde_flow_stats {
	__u64 packets;        /* packets the flow programs saw */
	__u64 not_ip;         /* not IPv4/IPv6 (ARP, ...): not tracked */
	__u64 other_l4;       /* IP but not TCP/UDP/ICMP (or IPv6 extension headers) */
	__u64 fragments;      /* non-first IP fragments: no ports, not tracked */
	__u64 truncated;      /* headers cut short: not tracked */
	__u64 flows_created;  /* flow entries inserted */
	__u64 create_failed;  /* inserts that failed (map error) */
	__u64 sock_updates;   /* sockinfo updates from the tracepoints */
};

/* ==== profiling (bpf/profile.bpf.c, user/profile.c) ======================
 * Stack samples are counted in the kernel per (process, thread, user stack,
 * kernel stack); user space reads a closed generation of the count maps once
 * per --profile-interval and symbolizes. See docs/PROFILING.md.
 */

/* Frames kept per stack (user and kernel stacks alike). 64 covers nearly
 * every native stack; deeper ones lose their root-most frames and are
 * flagged truncated. */
#define SONDE_PROF_STACK_DEPTH 64
/* Stack maps rotate over three slots, count maps over two (the epoch's
 * parity): an off-CPU interval that began in the previous epoch still names
 * a stack in a slot nobody has cleared yet. */
#define SONDE_PROF_STACK_SLOTS 3
/* Stack ids below this are not stacks: */
#define SONDE_PROF_STACK_NONE 0    /* no stack of this kind (kernel thread, user-mode sample) */
#define SONDE_PROF_STACK_LOST 1    /* not stored: capture failed or the stack map was full */
#define SONDE_PROF_STACK_EXPIRED 2 /* blocked across >1 interval boundary: slot recycled */
#define SONDE_PROF_STACK_FIRST 16  /* the smallest id a real stack hashes to */

enum sonde_prof_kind {
	SONDE_PROF_CPU = 1,    /* on-CPU: perf_event samples */
	SONDE_PROF_OFFCPU = 2, /* off-CPU: blocked time from sched_switch */
};

/* A stack in the `stacks0..2` maps, keyed by a 64-bit hash of its frames
 * (a stack map of our own: the kernel's BPF_MAP_TYPE_STACK_TRACE drops a
 * stack whose bucket is taken, and buckets collide long before it is full). */
struct sonde_prof_stack {
	__u32 len;        /* frames used in ips */
	__u32 _pad;
	__u64 ips[SONDE_PROF_STACK_DEPTH]; /* leaf first */
};

/* Key of the `counts0`/`counts1` maps. */
struct sonde_prof_key {
	__u32 pid;        /* tgid */
	__u32 tid;
	__u64 ustack;     /* stack id (hash) in slot `slot`, or SONDE_PROF_STACK_* */
	__u64 kstack;
	__u8 kind;        /* enum sonde_prof_kind */
	__u8 slot;        /* stack map slot the ids refer to (epoch % 3) */
	__u8 _pad[6];
};

/* Value of the count maps. */
struct sonde_prof_val {
	__u64 value;      /* on-CPU: samples; off-CPU: nanoseconds blocked */
	__u64 count;      /* samples, or blocked periods */
	char comm[SONDE_COMM_LEN];  /* thread name at the first sample */
	char pcomm[SONDE_COMM_LEN]; /* process (group leader) name */
};

/* On `prof_events`: a process was seen for the first time (or since its
 * last exec), so user space can read its mappings while it is alive. */
struct sonde_prof_pid_event {
	__u32 kind;       /* SONDE_EV_PROF_PID */
	__u32 pid;
};
#define SONDE_EV_PROF_PID 100

/* Self-observability of the profiler, per CPU in `prof_stats`. */
struct sonde_prof_stats {
	__u64 samples;            /* perf_event samples taken (pid != 0) */
	__u64 samples_dropped;    /* not counted: the count map was full */
	__u64 stacks_full;        /* stack not stored: the stack map was full */
	__u64 stack_errors;       /* stack capture failures (not "no such stack") */
	__u64 offcpu_switches;    /* voluntary switch-outs recorded */
	__u64 offcpu_below_min;   /* blocked periods shorter than --offcpu-min-us */
	__u64 offcpu_expired;     /* blocked across >1 interval: stack no longer named */
	__u64 offcpu_dropped;     /* not counted: count map or start map full */
	__u64 pid_events_dropped; /* new-process notices lost (ring full) */
};

#endif /* SONDE_EVENTS_H */
