// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Socket tracer: syscall tracepoints on the read/write family see every byte a
 * process moves through a stream socket. Bytes are parsed right here (HTTP/1
 * by its byte machine, proto/http1.h; every other protocol by the message
 * engine, proto/l7m.h, one tail-called program per protocol) and one event per
 * completed transaction goes to user space.
 *
 * Flow of one syscall:
 *   sys_enter_X  fd -> struct socket (CO-RE walk of the fd table); non-socket
 *                fds leave after that walk. Arguments parked in `inflight`.
 *   sys_exit_X   bytes moved are known: feed them to the connection's parser
 *                (`conns`), which emits events as responses complete.
 *   connect/accept give a role hint; close reports what is still pending and
 *   frees the connection state.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define SONDE_INLINE static __always_inline
/* parser steps per feed_prog call: sized for the verifier of old kernels */
#define H1_STEPS 64
#define L7M_STEPS 1
#define H1_RODATA __attribute__((section(".rodata")))
#define H1_ROUTE_NORMALISE route_normalise
const volatile __u32 route_normalise = 1; /* numeric/uuid path segments to placeholders */
#include "events.h"
#include "conn.h"
#include "metrics.h"
#include "compat.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MSG_PEEK 2

/* Data syscalls whose first bytes match no protocol before a connection is
 * left alone (proto NONE: its syscalls stop at the enter probe). */
#define INFER_MAX_TRIES 8

/* ---- load-time configuration (set through skel->rodata) ---------------- */
const volatile __u32 self_tgid = 0;     /* sonde itself, never traced */
const volatile __u32 filter_tgid = 0;   /* --pid; 0 = every process */
const volatile __u32 n_filter_ports = 0;
const volatile __u16 filter_ports[SONDE_MAX_PORT_FILTERS] = {}; /* --port */
const volatile __u32 log_mode = 0;        /* enum sonde_log_mode (--logs) */
const volatile __u32 log_sample_n = 1;    /* --logs sampled:N */
const volatile __u32 max_series_per_proc = 0; /* --max-series-per-process; 0 = none */
/* --protocols: bit (1 << enum sonde_proto) set for each protocol inferred */
const volatile __u32 enabled_protos = ~0u;
/* --proto-port: connections on these ports are only tried as that protocol */
const volatile __u32 n_proto_ports = 0;
const volatile __u16 proto_port_port[SONDE_MAX_PROTO_PORTS] = {};
const volatile __u8 proto_port_proto[SONDE_MAX_PROTO_PORTS] = {};

enum sonde_log_mode { LOG_ALL = 0, LOG_ERRORS = 1, LOG_SAMPLED = 2, LOG_NONE = 3 };

/* How a syscall passes its buffer. */
enum io_kind { IO_BUF = 1, IO_IOV = 2, IO_MSG = 3, IO_MMSG = 4 };

/* A data syscall between its enter and exit probes. */
struct sonde_inflight {
	__u64 sk;      /* struct sock address = connection key */
	__u64 ptr;     /* buffer, iovec array or msghdr (user memory) */
	__u64 cnt;     /* iovec count for IO_IOV */
	__u64 ts;      /* enter time */
	__u64 name;    /* sendto/recvfrom peer address (user memory), or 0 */
	__u32 tid;     /* the thread in the syscall (slots are shared by tid modulo) */
	__u8 kind;     /* enum io_kind */
	__u8 dir;      /* enum h1_dir */
	__u8 dgram;    /* a datagram socket */
	__u8 _pad;
};

/*
 * conns: LRU hash, key = struct sock address (u64), value = struct sonde_conn.
 * Created on connect, accept or the first data syscall of a stream socket;
 * deleted on the last close of the socket; LRU eviction bounds it when sockets
 * disappear without close (process killed). User space sweeps it for timeouts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sonde_conn);
} conns SEC(".maps");

/*
 * inflight: array of INFLIGHT_SLOTS, key = thread id modulo INFLIGHT_SLOTS,
 * value = struct sonde_inflight. Written by a data syscall's enter probe,
 * taken (ts set to 0) by its exit probe. An array, not a hash: a write and a
 * read of a slot cost far less than a hash insert and delete on every socket
 * syscall (docs/PERFORMANCE.md). Two threads whose ids are equal modulo
 * INFLIGHT_SLOTS and in a syscall at the same time share a slot: the later
 * one wins and the stat inflight_replaced counts it (the earlier syscall is
 * not parsed); the tid in the slot keeps a thread from taking another's.
 */
#define INFLIGHT_SLOTS 65536
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, INFLIGHT_SLOTS);
	__type(key, __u32);
	__type(value, struct sonde_inflight);
} inflight SEC(".maps");

/*
 * conn_zero: array of one zeroed struct sonde_conn, the template new
 * connection states are inserted from (the value is too large for the stack).
 * Never written.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_conn);
} conn_zero SEC(".maps");

/*
 * A syscall's bytes being parsed, carried across the tail calls of feed_prog.
 * Per CPU: a chain of tail calls runs on one CPU without interruption.
 */
struct feed_work {
	__u64 conn_key;
	__u64 src;       /* current contiguous run of bytes (user memory) */
	__u64 iov;       /* iovec array for readv/writev/sendmsg/recvmsg, else 0 */
	__u64 iov_cnt;
	__u64 iov_next;  /* next iovec to load */
	__u64 left;      /* bytes the syscall moved that no run has taken yet */
	struct h1_cursor cur;
	struct h1_meta meta;
	__u64 mmsg;      /* sendmmsg/recvmmsg: the mmsghdr array, else 0 */
	__u32 mmsg_cnt;  /* messages the syscall moved (at most SONDE_MMSG_MAX taken) */
	__u32 mmsg_next; /* next message to load */
	__u32 rounds;    /* feed_prog invocations for this syscall */
	__u8 dir;        /* enum h1_dir */
	__u8 fresh;      /* current run not started: inference and resync pending */
	__u8 _pad[2];
	__u8 win[H1_WINDOW]; /* bytes copied from user memory */
	struct l7m_info info; /* the message engine's step result */
	__u8 mwin[L7M_CARRY + L7M_BUF]; /* the message engine's window */
};

/* work: per-CPU feed_work, key 0; rewritten by every traced data syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct feed_work);
} work SEC(".maps");

/*
 * red: per-CPU hash, key = struct sonde_red_key (process, role, protocol,
 * server, method and normalised route), value = struct sonde_red_val (counts,
 * bytes, latency histogram). Updated by every completed transaction, read by
 * user space each second. Not LRU: a full map sends new series to the
 * overflow key (inserted by user space before attach) and counts
 * metric_overflow; user space deletes series that stay idle.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sonde_red_key);
	__type(value, struct sonde_red_val);
} red SEC(".maps");

/* red_key_heap: per-CPU room to build a metric key (too big for the stack
 * next to the parser's) and the route normaliser's state. Key 0, rewritten
 * per transaction. */
struct red_scratch {
	struct sonde_red_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct red_scratch);
} red_key_heap SEC(".maps");

/*
 * proc_series: hash, key = tgid, value = how many series of `red` the
 * process has. The kernel adds one per series it inserts; user space
 * writes the true counts back every second (series leave the map when
 * idle) and deletes the entries of processes with none. Only used with
 * --max-series-per-process.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} proc_series SEC(".maps");

/* red_zero: one zeroed struct sonde_red_val, the template of new series. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_red_val);
} red_zero SEC(".maps");

/*
 * stats: per-CPU counters (struct sonde_stats), key 0. Summed by user space,
 * printed at exit and on SIGUSR1, pinned with --pin for bpftool.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_stats);
} stats SEC(".maps");

/* What the parser callbacks need about the syscall being parsed. */
struct feed_ctx {
	void *tp;                /* tracepoint context, for perf output */
	struct sonde_conn *conn;
	__u64 conn_id;
	struct h1_meta meta;
	__u8 dir;
};

/* ---- parser hooks (see proto/http1.h) ---------------------------------- */

SONDE_INLINE void sonde_stat_add(void *ctx, __u32 field)
{
	__u32 zero = 0;
	struct sonde_stats *s = bpf_map_lookup_elem(&stats, &zero);

	if (s && field < sizeof(*s) / sizeof(__u64))
		((__u64 *)s)[field]++;
}

SONDE_INLINE int sonde_read_user(void *dst, __u32 n, const void *src)
{
	return bpf_probe_read_user(dst, n, src);
}

/* The scratch metric key of this CPU (too big for the stack), or NULL. */
SONDE_INLINE struct sonde_red_key *red_key_scratch(void)
{
	struct red_scratch *rs = bpf_map_lookup_elem(&red_key_heap, &(__u32){ 0 });

	return rs ? &rs->key : NULL;
}

/* Has the process as many series as --max-series-per-process allows? */
SONDE_INLINE int proc_series_full(__u32 pid)
{
	__u32 *n;

	if (!max_series_per_proc)
		return 0;
	n = bpf_map_lookup_elem(&proc_series, &pid);
	return n && *n >= max_series_per_proc;
}

/* One more series for the process. */
SONDE_INLINE void proc_series_add(__u32 pid)
{
	__u32 one = 1, *n = bpf_map_lookup_elem(&proc_series, &pid);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&proc_series, &pid, &one, BPF_NOEXIST);
}

/* The series of `key`, inserted (zeroed, named) when new; NULL when the map is full. */
SONDE_INLINE struct sonde_red_val *red_series(struct sonde_red_key *key)
{
	struct sonde_red_val *v = bpf_map_lookup_elem(&red, key), *tmpl;
	__u32 zero = 0;

	if (v)
		return v;
	tmpl = bpf_map_lookup_elem(&red_zero, &zero);
	if (!tmpl || bpf_map_update_elem(&red, key, tmpl, BPF_NOEXIST))
		return NULL;
	v = bpf_map_lookup_elem(&red, key);
	/* name the series now: short-lived clients are gone by the time user
	 * space reads it */
	if (v)
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	return v;
}

/* Count a finished transaction in the metric series `key` (every
 * transaction, whatever --logs says). */
SONDE_INLINE void red_account(struct feed_ctx *fc, struct sonde_red_key *key, __u16 status,
			      __u64 req_bytes, __u64 resp_bytes, __u64 latency, __u8 flags)
{
	struct sonde_red_val *v;
	__u64 b;

	v = bpf_map_lookup_elem(&red, key);
	if (!v && proc_series_full(key->pid)) {
		/* this process has its share: its own overflow series takes it */
		struct sonde_red_key povf = { .pid = key->pid, .method = SONDE_M_OVERFLOW };

		sonde_stat_add(fc, H1_STAT(metric_proc_overflow));
		v = red_series(&povf);
	} else if (!v) {
		v = red_series(key);
		if (v && max_series_per_proc)
			proc_series_add(key->pid);
	}
	if (!v) {
		/* the map is full: the overflow series takes it */
		struct sonde_red_key ovf = { .method = SONDE_M_OVERFLOW };

		v = bpf_map_lookup_elem(&red, &ovf);
		sonde_stat_add(fc, H1_STAT(metric_overflow));
		if (!v)
			return;
	}
	v->requests++;
	if (status >= 500)
		v->errors_5xx++;
	else if (status >= 400)
		v->errors_4xx++;
	else if (flags & (SONDE_F_TIMEOUT | SONDE_F_CLOSED | SONDE_F_ERROR))
		v->errors_other++;
	v->req_bytes += req_bytes;
	v->resp_bytes += resp_bytes;
	v->latency_sum_ns += latency;
	b = sonde_lat_bucket(latency);
	H1_OPAQUE(b); /* one register for the check and the index */
	if (b < SONDE_LAT_BUCKETS)
		v->latency_hist[b]++;
}

/* Does --logs want a record of this transaction? */
SONDE_INLINE int log_wanted(__u16 status, __u8 flags)
{
	if (log_mode == LOG_ALL)
		return 1;
	if (log_mode == LOG_NONE)
		return 0;
	if (log_mode == LOG_ERRORS)
		return status >= 400 || (flags & (SONDE_F_TIMEOUT | SONDE_F_CLOSED));
	return bpf_get_prandom_u32() % log_sample_n == 0;
}

/* Send a filled event (or count it lost). */
SONDE_INLINE void event_send(struct feed_ctx *fc, struct sonde_l7_event *ev)
{
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	if (event_submit(fc->tp, ev, sizeof(*ev)) < 0)
		sonde_stat_add(fc, H1_STAT(events_dropped));
	else
		sonde_stat_add(fc, H1_STAT(events_sent));
}

SONDE_INLINE void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
				__u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	struct feed_ctx *fc = ctx;
	struct sonde_red_key *key = red_key_scratch();
	struct sonde_l7_event *ev;
	__u64 latency = ts_end > s->ts_start ? ts_end - s->ts_start : 0;

	if (key) {
		sonde_fill_red_key(key, fc->conn, s);
		red_account(fc, key, status, s->req_bytes, resp_bytes, latency, flags);
	}
	if (!log_wanted(status, flags)) {
		sonde_stat_add(ctx, H1_STAT(logs_suppressed));
		return;
	}
	ev = event_reserve(sizeof(*ev));
	if (!ev) {
		sonde_stat_add(ctx, H1_STAT(events_dropped));
		return;
	}
	sonde_fill_l7_event(ev, fc->conn_id, fc->conn, s, status, resp_bytes, ts_end, flags);
	event_send(fc, ev);
}

/* A message-engine transaction ended (or timed out, or was cut). */
SONDE_INLINE void sonde_l7m_emit(void *ctx, struct l7m_conn *c, struct l7m_slot *s,
				 struct l7m_acc *acc, __u64 ts_end, __u8 flags)
{
	struct feed_ctx *fc = ctx;
	struct sonde_red_key *key = red_key_scratch();
	struct sonde_l7_event *ev;
	__u64 latency = ts_end > s->ts_start ? ts_end - s->ts_start : 0;

	(void)c;
	if (key) {
		sonde_fill_red_key_l7m(key, fc->conn, s);
		red_account(fc, key, 0, s->req_bytes, acc->resp_bytes, latency, flags);
	}
	/* protocol errors count as errors for --logs=errors */
	if (!log_wanted(flags & SONDE_F_ERROR ? 500 : 0, flags)) {
		sonde_stat_add(ctx, H1_STAT(logs_suppressed));
		return;
	}
	ev = event_reserve(sizeof(*ev));
	if (!ev) {
		sonde_stat_add(ctx, H1_STAT(events_dropped));
		return;
	}
	sonde_fill_l7m_event(ev, fc->conn_id, fc->conn, s, acc, ts_end, flags);
	event_send(fc, ev);
}

/* ---- fd to socket ------------------------------------------------------ */

/* struct file before 6.13 counted references in f_count. */
struct file___pre613 {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

SONDE_INLINE struct file *fd_to_file(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The socket behind fd, or NULL for any other kind of file. */
SONDE_INLINE struct socket *fd_to_socket(__u32 fd, struct file **filep)
{
	struct file *f = fd_to_file(fd);

	if (!f)
		return NULL;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	if (filep)
		*filep = f;
	return BPF_CORE_READ(f, private_data);
}

/* Is it a stream socket over IPv4, IPv6 or unix, or a UDP socket (what the
 * parsers handle)? */
SONDE_INLINE int socket_traceable(struct socket *sock, struct sock *sk)
{
	__u16 type = BPF_CORE_READ(sock, type);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (type == SOCK_STREAM)
		return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
	if (type == SOCK_DGRAM)
		return family == AF_INET || family == AF_INET6;
	return 0;
}

/* The traceable stream socket behind fd, or NULL. */
SONDE_INLINE struct sock *fd_to_stream_sock(__u32 fd, struct file **filep)
{
	struct socket *sock = fd_to_socket(fd, filep);
	struct sock *sk;

	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || !socket_traceable(sock, sk))
		return NULL;
	return sk;
}

/* Is this the last reference to the file (so close really closes it)? */
SONDE_INLINE int file_last_ref(struct file *f)
{
	if (bpf_core_field_exists(struct file___pre613, f_count)) {
		struct file___pre613 *old = (void *)f;

		return BPF_CORE_READ(old, f_count.counter) <= 1;
	}
	/* file_ref_t counts extra references: 0 means one */
	return BPF_CORE_READ(f, f_ref.refcnt.counter) <= 0;
}

/* ---- connection state -------------------------------------------------- */

SONDE_INLINE int port_wanted(__u16 lport, __u16 rport)
{
	__u32 i;

	if (n_filter_ports == 0)
		return 1;
	for (i = 0; i < SONDE_MAX_PORT_FILTERS; i++) {
		if (i >= n_filter_ports)
			break;
		if (filter_ports[i] == lport || filter_ports[i] == rport)
			return 1;
	}
	return 0;
}

/* Read the addresses once the socket is connected; apply --port. */
SONDE_INLINE void conn_learn_endpoints(struct sonde_conn *c, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == AF_INET) {
		/* 4 bytes each (reading into the 16-byte arrays directly would
		 * copy 16, and the neighbouring fields with them) */
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		c->family = SONDE_FAMILY_INET;
		__builtin_memcpy(c->laddr, &l, 4);
		__builtin_memcpy(c->raddr, &r, 4);
	} else if (family == AF_INET6) {
		c->family = SONDE_FAMILY_INET6;
		BPF_CORE_READ_INTO(&c->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&c->raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		c->family = SONDE_FAMILY_UNIX;
	}
	if (family != AF_UNIX) {
		c->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		c->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		/* an unconnected datagram socket has no peer yet: --port is
		 * checked per datagram (dgram_peer) */
		if (!port_wanted(c->lport, c->rport) && !(c->dgram && !c->rport))
			c->proto = SONDE_PROTO_NONE;
	}
	/* unix sockets have no port: --port does not filter them (use --pid) */
}

SONDE_INLINE struct sonde_conn *conn_lookup_or_create(__u64 key, __u8 hint)
{
	struct sonde_conn *c = bpf_map_lookup_elem(&conns, &key);
	__u32 zero = 0;
	struct sonde_conn *tmpl;

	if (c)
		return c;
	tmpl = bpf_map_lookup_elem(&conn_zero, &zero);
	if (!tmpl)
		return NULL;
	bpf_map_update_elem(&conns, &key, tmpl, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return NULL;
	c->created_ns = bpf_ktime_get_ns();
	c->role_hint = hint;
	sonde_stat_add(NULL, H1_STAT(conns_created));
	return c;
}

/*
 * A connection that starts now (connect, accept) gets fresh state. An entry
 * already under this socket address belongs to a socket that was freed
 * without close() (its process exited): the kernel reused the address.
 */
SONDE_INLINE struct sonde_conn *conn_fresh(__u64 key, __u8 hint)
{
	if (bpf_map_delete_elem(&conns, &key) == 0)
		sonde_stat_add(NULL, H1_STAT(conns_closed));
	return conn_lookup_or_create(key, hint);
}

/* ---- feeding bytes ----------------------------------------------------- */

/*
 * Parsing one syscall's bytes is split across tail calls of feed_prog, each
 * running at most H1_STEPS parser steps, so every program stays small for the
 * verifier of old kernels while a syscall may carry long heads, many chunks or
 * many iovecs. FEED_MAX_ROUNDS bounds the chain (the kernel allows 33).
 */
#define FEED_MAX_ROUNDS 32

int feed_prog(void *ctx);
int feed_event_prog(void *ctx);
int l7m_event_prog(void *ctx);
int l7m_redis_prog(void *ctx);
int l7m_pgsql_prog(void *ctx);
int l7m_mysql_prog(void *ctx);
int l7m_mqtt_prog(void *ctx);
int l7m_dns_prog(void *ctx);

/* feed_jmp slots: the HTTP/1 programs, then one per message-engine protocol
 * at FEED_JMP_L7M + its enum sonde_proto value. */
#define FEED_JMP_STEPS 0
#define FEED_JMP_EVENT 1
#define FEED_JMP_L7M_EVENT 2
#define FEED_JMP_L7M   3
#define FEED_JMP_SLOTS (FEED_JMP_L7M + SONDE_PROTO__COUNT)

/* feed_jmp: program array of the parsers' tail calls, filled at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, FEED_JMP_SLOTS);
	__type(key, __u32);
	__array(values, int(void *));
} feed_jmp SEC(".maps") = {
	.values = {
		[FEED_JMP_STEPS] = (void *)&feed_prog,
		[FEED_JMP_EVENT] = (void *)&feed_event_prog,
		[FEED_JMP_L7M_EVENT] = (void *)&l7m_event_prog,
		[FEED_JMP_L7M + SONDE_PROTO_REDIS] = (void *)&l7m_redis_prog,
		[FEED_JMP_L7M + SONDE_PROTO_PGSQL] = (void *)&l7m_pgsql_prog,
		[FEED_JMP_L7M + SONDE_PROTO_MYSQL] = (void *)&l7m_mysql_prog,
		[FEED_JMP_L7M + SONDE_PROTO_MQTT] = (void *)&l7m_mqtt_prog,
		[FEED_JMP_L7M + SONDE_PROTO_DNS] = (void *)&l7m_dns_prog,
	},
};

/* Is the protocol one of the message engine's? */
SONDE_INLINE int proto_is_l7m(__u8 proto)
{
	return proto > SONDE_PROTO_HTTP1 && proto < SONDE_PROTO__COUNT;
}

/* Load the next iovec as the current run. Returns 0 when none is left. */
/* The mmsghdr of sendmmsg/recvmmsg (struct mmsghdr in the uapi). */
struct sonde_mmsghdr {
	struct user_msghdr hdr;
	__u32 len;
	__u32 _pad;
};

/* sendmmsg/recvmmsg: messages of one syscall parsed, each a datagram. */
#define SONDE_MMSG_MAX 8

/* Load message w->mmsg_next of a sendmmsg/recvmmsg as the iovecs to walk.
 * Returns 0 when none is left. */
SONDE_INLINE int feed_next_mmsg(struct feed_work *w)
{
	struct sonde_mmsghdr m;
	__u32 i = w->mmsg_next;

	if (!w->mmsg || i >= w->mmsg_cnt || i >= SONDE_MMSG_MAX)
		return 0;
	if (bpf_probe_read_user(&m, sizeof(m), (struct sonde_mmsghdr *)w->mmsg + i))
		return 0;
	w->mmsg_next = i + 1;
	w->iov = (__u64)m.hdr.msg_iov;
	w->iov_cnt = m.hdr.msg_iovlen;
	w->iov_next = 0;
	w->left = m.len;
	return 1;
}

SONDE_INLINE int feed_next_iov(void *ctx, struct feed_work *w)
{
	struct iovec v;
	__u64 n;

	if ((!w->iov || w->left == 0) && !feed_next_mmsg(w))
		return 0;
	if (!w->iov || w->left == 0)
		return 0;
	if (w->iov_next >= w->iov_cnt) {
		/* the syscall reported more bytes than its iovecs hold: stop */
		return 0;
	}
	if (bpf_probe_read_user(&v, sizeof(v), (struct iovec *)w->iov + w->iov_next))
		return 0;
	w->iov_next++;
	n = v.iov_len < w->left ? v.iov_len : w->left;
	w->left -= n;
	w->src = (__u64)v.iov_base;
	w->cur.off = 0;
	w->cur.len = n;
	w->cur.wpos = w->cur.wlen = 0;
	w->fresh = 1;
	return 1;
}

/* Pin a message-engine protocol on a connection its first bytes matched. */
SONDE_INLINE void conn_bind_l7m(struct sonde_conn *c, __u8 proto, int kind, __u8 dir)
{
	c->proto = proto;
	c->m.proto = proto;
	c->m.dgram = c->dgram;
	/* a request travels on the direction it was seen on */
	if (kind == H1_INFER_REQUEST)
		c->m.req_dir = dir;
	else
		c->m.req_dir = dir == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND;
}

/*
 * Short reads of a new stream (a server reading a header a byte or a few at
 * a time): gather them in c->infer_buf so inference sees the message's
 * start. Returns how many earlier bytes are in front of this run's in
 * infer_buf (0: infer on the run alone).
 */
SONDE_INLINE __u32 infer_gather(struct sonde_conn *c, struct feed_work *w, __u32 n)
{
	__u32 prev = c->infer_len, i;

	if (c->dgram || (prev == 0 && n >= sizeof(c->infer_buf))) {
		c->infer_len = 0;
		return 0;
	}
	if (c->infer_dir != w->dir || prev >= sizeof(c->infer_buf))
		prev = 0;
	c->infer_dir = w->dir;
	/* as much of this run as fits: inference needs only a message's start */
	/* position k of the buffer takes run byte k - prev when that is in the
	 * run: computed without a branch per byte (see l7m.h on why) */
	for (i = 0; i < sizeof(c->infer_buf); i++) {
		__u64 m = -(l7m_lt(i, (__u64)prev + n) & (1 - l7m_lt(i, prev)));
		__u64 b = w->win[(i - prev) & (H1_WINDOW - 1)];

		c->infer_buf[i] = (__u8)((b & m) | (c->infer_buf[i] & ~m));
	}
	c->infer_len = prev + n < sizeof(c->infer_buf) ? prev + n : sizeof(c->infer_buf);
	return prev;
}

/* A protocol was recognised on gathered bytes: the ones of earlier syscalls
 * go to the parser's stream as carried bytes, in front of this run. */
SONDE_INLINE void infer_hand_over(struct sonde_conn *c, __u8 dir, __u32 prev)
{
	struct l7m_stream *st = l7m_stream_for(&c->m, dir);
	__u32 i;

	for (i = 0; i < L7M_CARRY; i++)
		st->carry[i] = i + prev >= L7M_CARRY
				       ? c->infer_buf[(i + prev - L7M_CARRY) & (L7M_CARRY - 1)]
				       : 0;
	st->carry_len = prev;
	c->infer_len = 0;
}

/* The protocol a --proto-port hint gives the connection's ports, or UNKNOWN. */
SONDE_INLINE __u8 conn_port_hint(const struct sonde_conn *c)
{
	__u32 i;

	for (i = 0; i < SONDE_MAX_PROTO_PORTS; i++) {
		if (i >= n_proto_ports)
			break;
		if (proto_port_port[i] == c->lport || proto_port_port[i] == c->rport)
			return proto_port_proto[i];
	}
	return SONDE_PROTO_UNKNOWN;
}

SONDE_INLINE int proto_enabled(__u8 proto)
{
	return proto < 32 && (enabled_protos >> proto) & 1;
}

/*
 * Which protocol do a new connection's first bytes speak? A --proto-port
 * hint limits the choice to one; --protocols leaves some out. Returns the
 * protocol (UNKNOWN if none) and *kind (H1_INFER_REQUEST or _RESPONSE).
 */
SONDE_INLINE __u8 infer_conn(struct sonde_conn *c, const __u8 *b, __u32 n, __u32 run_len,
			     int *kind)
{
	__u8 hint = n_proto_ports ? conn_port_hint(c) : SONDE_PROTO_UNKNOWN;
	__u8 proto;

	if (hint != SONDE_PROTO_UNKNOWN) {
		if (hint == SONDE_PROTO_HTTP1)
			*kind = c->dgram ? H1_INFER_NONE : h1_infer(b, n < 8 ? n : 8);
		else
			*kind = l7m_infer_one(hint, b, n, c->dgram, run_len);
		return *kind != H1_INFER_NONE && proto_enabled(hint) ? hint : SONDE_PROTO_UNKNOWN;
	}
	if (c->dgram) {
		/* datagrams: only the datagram protocols, the whole datagram's length known */
		proto = l7m_infer_dgram(b, n, run_len, kind);
	} else {
		*kind = h1_infer(b, n < 8 ? n : 8);
		proto = *kind != H1_INFER_NONE ? SONDE_PROTO_HTTP1 : l7m_infer(b, n, kind);
	}
	return proto_enabled(proto) ? proto : SONDE_PROTO_UNKNOWN;
}

/*
 * First bytes of a run: infer the protocol of a new connection, give a stream
 * that lost framing a fresh start. Returns 0 when the run is not HTTP/1 (the
 * caller hands message-engine protocols to their program).
 */
SONDE_INLINE int feed_start_run(struct feed_ctx *fc, struct feed_work *w)
{
	struct sonde_conn *c = fc->conn;
	__u32 n = w->cur.len > H1_WINDOW ? H1_WINDOW : (__u32)w->cur.len;
	__u8 proto;
	int kind = 0;

	w->fresh = 0;
	if (n == 0 || n > H1_WINDOW || bpf_probe_read_user(w->win, n, (void *)w->src))
		return 0;
	w->cur.wlen = n;
	w->cur.wpos = 0;
	if (c->proto == SONDE_PROTO_UNKNOWN) {
		__u32 prev = infer_gather(c, w, n);

		if (prev) {
			/* inference reads a window-sized buffer: the engine's is free now */
			__u32 i;

			for (i = 0; i < sizeof(c->infer_buf); i++)
				w->mwin[i] = c->infer_buf[i];
			proto = infer_conn(c, w->mwin, c->infer_len, c->infer_len, &kind);
		} else {
			proto = infer_conn(c, w->win, n, (__u32)w->cur.len, &kind);
		}
		if (proto == SONDE_PROTO_UNKNOWN) {
			if (++c->infer_tries >= INFER_MAX_TRIES)
				c->proto = SONDE_PROTO_NONE;
			return 0;
		}
		if (proto != SONDE_PROTO_HTTP1) {
			conn_bind_l7m(c, proto, kind, w->dir);
			if (prev)
				infer_hand_over(c, w->dir, prev);
			return 0;
		}
		/* HTTP/1: the byte machine binds the request direction itself */
		if (!h1_bind(&c->h1, w->dir, w->win, n < 8 ? n : 8))
			return 0;
		c->proto = SONDE_PROTO_HTTP1;
	}
	if (c->proto != SONDE_PROTO_HTTP1)
		return 0;
	h1_feed_begin(&c->h1, w->dir, w->win, n < 8 ? n : 8);
	return 1;
}

/* Out of rounds with bytes left: the stream cannot be framed further. */
SONDE_INLINE void feed_give_up(struct feed_ctx *fc, struct feed_work *w, __u32 field)
{
	struct sonde_conn *c = fc->conn;

	sonde_stat_add(fc, field);
	if (c->proto == SONDE_PROTO_HTTP1)
		h1_lose(fc, &c->h1, h1_stream_for(&c->h1, w->dir));
	else if (proto_is_l7m(c->proto))
		l7m_lose(fc, l7m_stream_for(&c->m, w->dir));
}

/* Set up the callbacks' context for the connection being fed; NULL if gone. */
SONDE_INLINE struct feed_work *feed_load(void *ctx, struct feed_ctx *fc)
{
	__u32 zero = 0;
	struct feed_work *w = bpf_map_lookup_elem(&work, &zero);
	struct sonde_conn *c;
	__u64 key;

	if (!w)
		return NULL;
	key = w->conn_key;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return NULL;
	fc->tp = ctx;
	fc->conn = c;
	fc->conn_id = key;
	fc->dir = w->dir;
	return w;
}

/* Continue with the next program of the chain, or give up when out of rounds. */
SONDE_INLINE void feed_continue(void *ctx, struct feed_ctx *fc, struct feed_work *w, __u32 next)
{
	if (++w->rounds < FEED_MAX_ROUNDS)
		bpf_tail_call(ctx, &feed_jmp, next);
	feed_give_up(fc, w, H1_STAT(parse_budget));
}

/* More bytes of this syscall to parse (in this run or a later iovec)? */
SONDE_INLINE int feed_pending(struct feed_work *w)
{
	return w->cur.off < w->cur.len || (w->iov && w->left) ||
	       (w->mmsg && w->mmsg_next < w->mmsg_cnt && w->mmsg_next < SONDE_MMSG_MAX);
}

/* The byte loop: runs H1_STEPS parser steps, then hands on. */
SEC("tracepoint")
int feed_prog(void *ctx)
{
	struct feed_ctx fc = {};
	struct feed_work *w = feed_load(ctx, &fc);
	struct sonde_conn *c;
	int r;

	if (!w)
		return 0;
	c = fc.conn;
	if (w->cur.off >= w->cur.len && !feed_next_iov(ctx, w))
		return 0;
	if (w->fresh && !feed_start_run(&fc, w)) {
		if (proto_is_l7m(c->proto)) {
			/* inferred just now: the protocol's program takes the run */
			w->cur.wpos = 0;
			feed_continue(ctx, &fc, w, FEED_JMP_L7M + c->proto);
			return 0;
		}
		w->cur.off = w->cur.len; /* not HTTP: skip this run */
	} else {
		r = h1_feed_steps(&fc, &c->h1, w->dir, (const __u8 *)w->src, &w->cur, w->win,
				  &w->meta);
		if (r < 0)
			return 0;
		if (w->cur.ev) {
			feed_continue(ctx, &fc, w, FEED_JMP_EVENT);
			return 0;
		}
	}
	if (feed_pending(w))
		feed_continue(ctx, &fc, w, FEED_JMP_STEPS);
	return 0;
}

/* The end of a head or message: choose the body, pair, emit the record. */
SEC("tracepoint")
int feed_event_prog(void *ctx)
{
	struct feed_ctx fc = {};
	struct feed_work *w = feed_load(ctx, &fc);

	if (!w)
		return 0;
	h1_feed_event(&fc, &fc.conn->h1, w->dir, &w->cur, &w->meta);
	if (feed_pending(w))
		feed_continue(ctx, &fc, w, FEED_JMP_STEPS);
	return 0;
}

/*
 * A message-engine protocol's programs. l7m_<proto>_prog steps through the
 * bytes until a step reports an event, then hands it to l7m_event_prog
 * (pairing, metrics and the record, verified once for every protocol), which
 * hands back while bytes remain. Each hand-over is one of the
 * FEED_MAX_ROUNDS tail calls. `proto` is a constant in each instance, so
 * each step program carries one parser.
 */
/*
 * One engine step of `proto` for the syscall in `work`. Called through a
 * global function per protocol: the verifier checks a global function once,
 * on its own, instead of once per call site and path, which is what lets
 * a program run many steps (a step with a real parser is a few hundred
 * thousand verifier instructions in context). Needs 5.6 (global functions);
 * tail calls from a program with calls need 5.10 on x86-64.
 */
SONDE_INLINE int l7m_step_global(__u8 proto)
{
	__u32 zero = 0;
	struct feed_work *w = bpf_map_lookup_elem(&work, &zero);
	struct sonde_conn *c;
	__u64 key;

	if (!w)
		return L7M_EV_NONE;
	key = w->conn_key;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c || c->proto != proto)
		return L7M_EV_NONE;
	return l7m_feed_one(NULL, &c->m, proto, w->dir, (const __u8 *)w->src, &w->cur, w->mwin,
			    &w->info);
}

/* Steps per program run (each a call of the global step function). */
#define L7M_PROG_STEPS 32

SONDE_INLINE int l7m_run(void *ctx, __u8 proto, int (*step)(void))
{
	struct feed_ctx fc = {};
	struct feed_work *w = feed_load(ctx, &fc);
	struct sonde_conn *c;
	int ev = L7M_EV_NONE;
	__u32 i;

	if (!w)
		return 0;
	c = fc.conn;
	if (c->proto != proto)
		return 0;
	if (w->cur.off >= w->cur.len) {
		if (!feed_next_iov(ctx, w))
			return 0;
		w->cur.wpos = 0;
	}
	for (i = 0; i < L7M_PROG_STEPS; i++) {
		ev = step();
		if (ev != L7M_MORE)
			break;
	}
	/* the step ran in its own frame: reload what it changed */
	w = feed_load(ctx, &fc);
	if (!w)
		return 0;
	if (ev > L7M_EV_NONE) {
		w->cur.ev = ev;
		feed_continue(ctx, &fc, w, FEED_JMP_L7M_EVENT);
		return 0;
	}
	if (feed_pending(w))
		feed_continue(ctx, &fc, w, FEED_JMP_L7M + proto);
	return 0;
}

/* An event a step reported: a request takes a slot, a response is paired
 * and reported. */
SEC("tracepoint")
int l7m_event_prog(void *ctx)
{
	struct feed_ctx fc = {};
	struct feed_work *w = feed_load(ctx, &fc);
	struct sonde_conn *c;
	__u8 proto;

	if (!w)
		return 0;
	c = fc.conn;
	proto = c->proto;
	if (!proto_is_l7m(proto))
		return 0;
	l7m_handle_event(&fc, &c->m, w->dir, w->cur.ev, &w->info,
			 w->mwin + (w->info.wbase > L7M_CARRY ? L7M_CARRY : w->info.wbase), &w->meta);
	w->cur.ev = 0;
	if (feed_pending(w))
		feed_continue(ctx, &fc, w, FEED_JMP_L7M + proto);
	return 0;
}

/* A protocol's global step function and its program. */
#define L7M_PROG(name, proto)                                                         \
	__attribute__((noinline)) int l7m_##name##_step(void)                          \
	{                                                                             \
		return l7m_step_global(proto);                                        \
	}                                                                             \
	SEC("tracepoint")                                                             \
	int l7m_##name##_prog(void *ctx)                                              \
	{                                                                             \
		return l7m_run(ctx, proto, l7m_##name##_step);                        \
	}

L7M_PROG(redis, SONDE_PROTO_REDIS)
L7M_PROG(pgsql, SONDE_PROTO_PGSQL)
L7M_PROG(mysql, SONDE_PROTO_MYSQL)
L7M_PROG(mqtt, SONDE_PROTO_MQTT)
L7M_PROG(dns, SONDE_PROTO_DNS)

/* ---- syscall probes ---------------------------------------------------- */

SONDE_INLINE int traced_process(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;

	return tgid != self_tgid && (!filter_tgid || tgid == filter_tgid);
}

SONDE_INLINE int data_enter(__u64 fd, __u64 ptr, __u64 cnt, __u8 kind, __u8 dir, __u64 name)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_inflight a = {}, *ap;
	struct sonde_conn *c;
	struct socket *sock;
	__u32 slot;
	struct sock *sk;
	__u64 key;

	if (!traced_process(id))
		return 0;
	sock = fd_to_socket((__u32)fd, NULL);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	key = (__u64)sk;
	/* a known connection was checked when its state was created */
	c = bpf_map_lookup_elem(&conns, &key);
	if (c) {
		if (c->proto == SONDE_PROTO_NONE)
			return 0;
		/* a state made by connect() has not learnt the socket type yet */
		a.dgram = c->proto == SONDE_PROTO_UNKNOWN ? BPF_CORE_READ(sock, type) == SOCK_DGRAM
							  : c->dgram;
	} else if (!socket_traceable(sock, sk)) {
		return 0;
	} else {
		a.dgram = BPF_CORE_READ(sock, type) == SOCK_DGRAM;
	}
	a.sk = key;
	a.ptr = ptr;
	a.cnt = cnt;
	a.ts = bpf_ktime_get_ns();
	a.kind = kind;
	a.dir = dir;
	a.name = name;
	a.tid = (__u32)id;
	slot = (__u32)id & (INFLIGHT_SLOTS - 1);
	ap = bpf_map_lookup_elem(&inflight, &slot);
	if (!ap)
		return 0;
	if (ap->ts && ap->tid != a.tid)
		sonde_stat_add(NULL, H1_STAT(inflight_replaced));
	*ap = a;
	return 0;
}

/*
 * The peer of one datagram (sendto/recvfrom's address, a message's
 * msg_name): an unconnected UDP socket talks to many peers, and records
 * name the one this datagram went to or came from. Returns 0 when --port
 * does not want this datagram.
 */
SONDE_INLINE int dgram_peer(struct sonde_conn *c, __u64 name)
{
	struct sockaddr_in6 sa = {};

	if (name && !bpf_probe_read_user(&sa, sizeof(sa), (void *)name)) {
		if (sa.sin6_family == AF_INET) {
			struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;

			__builtin_memcpy(c->raddr, &in4->sin_addr.s_addr, 4);
			c->rport = bpf_ntohs(in4->sin_port);
		} else if (sa.sin6_family == AF_INET6) {
			__builtin_memcpy(c->raddr, &sa.sin6_addr, 16);
			c->rport = bpf_ntohs(sa.sin6_port);
		}
	}
	return port_wanted(c->lport, c->rport);
}

SONDE_INLINE int data_exit(void *ctx, __s64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 slot = (__u32)id & (INFLIGHT_SLOTS - 1);
	struct sonde_inflight *ap = bpf_map_lookup_elem(&inflight, &slot);
	struct sonde_inflight a;
	struct feed_work *w;
	struct sonde_conn *c;
	__u32 zero = 0;
	__u64 now;

	if (!ap || !ap->ts || ap->tid != (__u32)id)
		return 0;
	a = *ap;
	ap->ts = 0;
	if (ret < 0)
		return 0;
	c = conn_lookup_or_create(a.sk, SONDE_HINT_NONE);
	if (!c)
		return 0;
	c->dgram = a.dgram;
	if (!c->lport && c->family != SONDE_FAMILY_UNIX)
		conn_learn_endpoints(c, (struct sock *)a.sk);
	if (c->proto == SONDE_PROTO_NONE)
		return 0;
	w = bpf_map_lookup_elem(&work, &zero);
	if (!w)
		return 0;

	now = bpf_ktime_get_ns();
	w->conn_key = a.sk;
	w->dir = a.dir;
	w->meta.ts_start = a.dir == H1_DIR_SEND ? a.ts : now;
	w->meta.ts_end = now;
	w->meta.pid = id >> 32;
	w->meta.tid = (__u32)id;
	w->rounds = 0;

	if (ret == 0) {
		if (a.dir == H1_DIR_RECV && c->proto == SONDE_PROTO_HTTP1) {
			struct feed_ctx fc = { .tp = ctx, .conn = c, .conn_id = a.sk, .dir = a.dir };

			h1_peer_eof(&fc, &c->h1, a.dir, &w->meta);
		}
		return 0;
	}
	sonde_stat_add(NULL, H1_STAT(syscalls_traced));

	w->cur.off = 0;
	w->cur.wpos = w->cur.wlen = 0;
	w->cur.ev = 0;
	w->iov_next = 0;
	w->mmsg = 0;
	w->mmsg_cnt = w->mmsg_next = 0;
	if (a.kind == IO_MMSG) {
		/* ret is the number of messages; each is one datagram */
		struct sonde_mmsghdr m;

		w->mmsg = a.ptr;
		w->mmsg_cnt = ret;
		w->cur.len = 0;
		if (!feed_next_mmsg(w))
			return 0;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)a.ptr))
			return 0;
		a.name = (__u64)m.hdr.msg_name;
	} else if (a.kind == IO_BUF) {
		w->src = a.ptr;
		w->cur.len = ret;
		w->iov = 0;
		w->iov_cnt = 0;
		w->left = 0;
		w->fresh = 1;
	} else {
		w->cur.len = 0; /* feed_prog loads the first iovec */
		w->left = ret;
		w->iov = a.ptr;
		w->iov_cnt = a.cnt;
		if (a.kind == IO_MSG) {
			struct user_msghdr msg;

			if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a.ptr))
				return 0;
			w->iov = (__u64)msg.msg_iov;
			w->iov_cnt = msg.msg_iovlen;
			a.name = (__u64)msg.msg_name;
		}
	}
	if (c->dgram && !dgram_peer(c, a.name))
		return 0;
	if (proto_is_l7m(c->proto)) {
		w->cur.len = a.kind == IO_BUF ? ret : 0;
		bpf_tail_call(ctx, &feed_jmp, FEED_JMP_L7M + c->proto);
		return 0;
	}
	bpf_tail_call(ctx, &feed_jmp, FEED_JMP_STEPS);
	return 0;
}

/*
 * The enter/exit probe pair of a data syscall. name_arg: the argument holding
 * a datagram's peer address (sendto, recvfrom), or -1; peek_arg: the flags
 * argument, whose MSG_PEEK means the bytes will be read again (not parsed),
 * or -1. Both are constants: the unused branches compile away.
 */
#define DATA_PROBES_ARGS(name, kind, dir, name_arg, peek_arg)                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                   \
	int tp_enter_##name(struct sys_enter_ctx *ctx)                                \
	{                                                                             \
		if ((peek_arg) >= 0 &&                                                \
		    (ctx->args[(peek_arg) < 0 ? 0 : (peek_arg)] & MSG_PEEK))           \
			return 0;                                                     \
		return data_enter(ctx->args[0], ctx->args[1],                         \
				  kind == IO_IOV ? ctx->args[2] : 0, kind, dir,       \
				  (name_arg) >= 0 ? ctx->args[(name_arg) < 0 ? 0 : (name_arg)] \
						  : 0);                               \
	}                                                                             \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int tp_exit_##name(struct sys_exit_ctx *ctx)                                  \
	{                                                                             \
		return data_exit(ctx, ctx->ret);                                      \
	}

#define DATA_PROBES(name, kind, dir) DATA_PROBES_ARGS(name, kind, dir, -1, -1)

DATA_PROBES(read, IO_BUF, H1_DIR_RECV)
DATA_PROBES(write, IO_BUF, H1_DIR_SEND)
DATA_PROBES(readv, IO_IOV, H1_DIR_RECV)
DATA_PROBES(writev, IO_IOV, H1_DIR_SEND)
DATA_PROBES(sendmsg, IO_MSG, H1_DIR_SEND)
DATA_PROBES(sendmmsg, IO_MMSG, H1_DIR_SEND)
/* sendto(fd, buf, len, flags, addr, addrlen) */
DATA_PROBES_ARGS(sendto, IO_BUF, H1_DIR_SEND, 4, -1)
/* recvfrom(fd, buf, len, flags, addr, addrlen) */
DATA_PROBES_ARGS(recvfrom, IO_BUF, H1_DIR_RECV, 4, 3)
/* recvmsg(fd, msg, flags): the peer is in the msghdr */
DATA_PROBES_ARGS(recvmsg, IO_MSG, H1_DIR_RECV, -1, 2)
/* recvmmsg(fd, msgvec, vlen, flags, timeout) */
DATA_PROBES_ARGS(recvmmsg, IO_MMSG, H1_DIR_RECV, -1, 3)

/* ---- lifecycle probes -------------------------------------------------- */

/* connect(fd, ...): the socket exists before the call; it is a client. */
SEC("tracepoint/syscalls/sys_enter_connect")
int tp_enter_connect(struct sys_enter_ctx *ctx)
{
	struct sock *sk;

	if (!traced_process(bpf_get_current_pid_tgid()))
		return 0;
	sk = fd_to_stream_sock((__u32)ctx->args[0], NULL);
	if (sk)
		conn_fresh((__u64)sk, SONDE_HINT_CONNECT);
	return 0;
}

/* accept/accept4 return a connected socket: a server side. */
SONDE_INLINE int accept_exit(struct sys_exit_ctx *ctx)
{
	struct sonde_conn *c;
	struct sock *sk;

	if (ctx->ret < 0 || !traced_process(bpf_get_current_pid_tgid()))
		return 0;
	sk = fd_to_stream_sock((__u32)ctx->ret, NULL);
	if (!sk)
		return 0;
	c = conn_fresh((__u64)sk, SONDE_HINT_ACCEPT);
	if (c)
		conn_learn_endpoints(c, sk);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct sys_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct sys_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

/* close(fd): on the socket's last reference, report what is still pending
 * and free the state. */
SEC("tracepoint/syscalls/sys_enter_close")
int tp_enter_close(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct feed_ctx fc = {};
	struct sonde_conn *c;
	struct file *f = NULL;
	struct sock *sk;
	__u64 key;

	if (!traced_process(id))
		return 0;
	sk = fd_to_stream_sock((__u32)ctx->args[0], &f);
	if (!sk || !f || !file_last_ref(f))
		return 0;
	key = (__u64)sk;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (c->proto == SONDE_PROTO_HTTP1) {
		fc.tp = ctx;
		fc.conn = c;
		fc.conn_id = key;
		fc.meta.ts_start = fc.meta.ts_end = bpf_ktime_get_ns();
		fc.meta.pid = id >> 32;
		fc.meta.tid = (__u32)id;
		h1_close(&fc, &c->h1, &fc.meta);
	} else if (proto_is_l7m(c->proto)) {
		fc.tp = ctx;
		fc.conn = c;
		fc.conn_id = key;
		fc.meta.ts_start = fc.meta.ts_end = bpf_ktime_get_ns();
		fc.meta.pid = id >> 32;
		fc.meta.tid = (__u32)id;
		l7m_close(&fc, &c->m, &fc.meta);
	}
	bpf_map_delete_elem(&conns, &key);
	sonde_stat_add(NULL, H1_STAT(conns_closed));
	return 0;
}
