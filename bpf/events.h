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
};

#endif /* SONDE_EVENTS_H */
