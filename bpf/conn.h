/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Per-connection state of the socket tracer, and how a finished transaction
 * becomes an event. Pure C: the BPF program fills events from it as responses
 * complete, and user space reads the same map to report requests that timed
 * out, with the same function.
 */
#ifndef SONDE_CONN_H
#define SONDE_CONN_H

#include "events.h"
#include "proto/http1.h"
#include "proto/l7m_dispatch.h"

/* sonde_conn.role_hint: what connect()/accept() said before any data. */
enum sonde_conn_hint { SONDE_HINT_NONE = 0, SONDE_HINT_CONNECT = 1, SONDE_HINT_ACCEPT = 2 };

/*
 * Value of the `conns` map. Key: the kernel's struct sock address, which
 * names the connection whichever process or fd uses it.
 */
struct sonde_conn {
	union {
		struct h1_conn h1; /* proto HTTP1 */
		struct l7m_conn m; /* every other protocol (the message engine) */
	};
	__u8 laddr[16];   /* local address (IPv4 in the first 4 bytes) */
	__u8 raddr[16];   /* remote address */
	__u16 lport;      /* host order */
	__u16 rport;
	__u8 family;      /* enum sonde_family */
	__u8 proto;       /* enum sonde_proto; NONE once inference gave up */
	__u8 infer_tries; /* syscalls whose first bytes matched no protocol */
	__u8 role_hint;   /* enum sonde_conn_hint */
	__u8 dgram;       /* a datagram (UDP) socket */
	__u8 infer_len;   /* bytes in infer_buf */
	__u8 infer_dir;   /* the direction they came in */
	__u8 _pad2[5];
	/* the first bytes of a stream read a few at a time (a server reading a
	 * header byte by byte) are gathered here until a protocol is recognised;
	 * then they are handed to the parser as carried bytes */
	__u8 infer_buf[16];
	__u64 created_ns;
};

/* The role of the traced process follows from the stream requests travel on. */
SONDE_INLINE __u8 sonde_conn_role(const struct sonde_conn *c)
{
	__u8 d = c->proto == SONDE_PROTO_HTTP1 ? c->h1.req_dir : c->m.req_dir;

	if (d == H1_DIR_SEND)
		return SONDE_ROLE_CLIENT;
	if (d == H1_DIR_RECV)
		return SONDE_ROLE_SERVER;
	return SONDE_ROLE_UNKNOWN;
}

SONDE_INLINE void sonde_copy16(__u8 *dst, const __u8 *src)
{
	__u32 i;

	for (i = 0; i < 16; i++)
		dst[i] = src[i];
}

/* The endpoints and identity of an event, oriented client -> server. */
SONDE_INLINE void sonde_fill_event_conn(struct sonde_l7_event *e, __u64 conn_id,
					const struct sonde_conn *c)
{
	__u8 role = sonde_conn_role(c);

	e->kind = SONDE_EV_L7;
	e->role = role;
	e->conn_id = conn_id;
	e->ep.family = c->family;
	if (role == SONDE_ROLE_SERVER) {
		sonde_copy16(e->ep.saddr, c->raddr);
		sonde_copy16(e->ep.daddr, c->laddr);
		e->ep.sport = c->rport;
		e->ep.dport = c->lport;
	} else {
		sonde_copy16(e->ep.saddr, c->laddr);
		sonde_copy16(e->ep.daddr, c->raddr);
		e->ep.sport = c->lport;
		e->ep.dport = c->rport;
	}
	e->ep._pad[0] = e->ep._pad[1] = e->ep._pad[2] = 0;
	e->_pad = 0;
}

/* Fill everything of an HTTP/1 event that comes from the connection and the
 * slot; the caller adds comm. */
SONDE_INLINE void sonde_fill_l7_event(struct sonde_l7_event *e, __u64 conn_id,
				       const struct sonde_conn *c, const struct h1_slot *s,
				       __u16 status, __u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	__u32 i;

	sonde_fill_event_conn(e, conn_id, c);
	e->pid = s->pid;
	e->tid = s->tid;
	e->status = status;
	e->proto = SONDE_PROTO_HTTP1;
	e->ts_ns = s->ts_start;
	e->latency_ns = (flags & SONDE_F_TIMEOUT) || ts_end < s->ts_start ? 0 : ts_end - s->ts_start;
	e->req_bytes = s->req_bytes;
	e->resp_bytes = resp_bytes;
	e->method = s->method;
	e->flags = flags;
	e->path_len = s->path_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : s->path_len;
	e->detail_len = 0;
	e->id = e->code = e->count = 0;
	e->op2 = 0;
	e->reply = 0;
	for (i = 0; i < SONDE_PATH_MAX; i++)
		e->path[i] = s->path[i];
}

/* Fill an event of a message-engine protocol from its slot and response. */
SONDE_INLINE void sonde_fill_l7m_event(struct sonde_l7_event *e, __u64 conn_id,
					const struct sonde_conn *c, const struct l7m_slot *s,
					const struct l7m_acc *a, __u64 ts_end, __u8 flags)
{
	__u32 i;

	sonde_fill_event_conn(e, conn_id, c);
	e->pid = s->pid;
	e->tid = s->tid;
	e->status = a->status;
	e->proto = c->proto;
	e->ts_ns = s->ts_start;
	e->latency_ns = (flags & SONDE_F_TIMEOUT) || ts_end < s->ts_start ? 0 : ts_end - s->ts_start;
	e->req_bytes = s->req_bytes;
	e->resp_bytes = a->resp_bytes;
	e->method = s->op;
	e->flags = flags;
	e->path_len = s->text_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : s->text_len;
	e->detail_len = a->detail_len > SONDE_DETAIL_MAX ? SONDE_DETAIL_MAX : a->detail_len;
	e->id = s->id;
	e->code = a->code;
	e->count = a->count;
	e->op2 = s->op2;
	e->reply = a->reply;
	for (i = 0; i < SONDE_PATH_MAX; i++)
		e->path[i] = s->text[i];
	for (i = 0; i < SONDE_DETAIL_MAX; i++)
		e->detail[i] = a->detail[i];
}

/* The slot's route into a metric key, NUL-padded (keys are compared whole);
 * eight bytes at a time, masking past the end (little-endian byte order). */
SONDE_INLINE void sonde_key_route(struct sonde_red_key *key, const struct h1_slot *s)
{
	__u32 n = s->route_len;
	__u64 w;
	int i;

#ifdef __clang__
#pragma unroll
#endif
	for (i = 0; i < SONDE_ROUTE_MAX / 8; i++) {
		__builtin_memcpy(&w, s->route + i * 8, 8);
		if (n <= (__u32)i * 8)
			w = 0;
		else if (n < (__u32)i * 8 + 8)
			w &= (1ULL << ((n - i * 8) * 8)) - 1;
		__builtin_memcpy(key->route + i * 8, &w, 8);
	}
}

/* The metric series a transaction of this slot belongs to. */
SONDE_INLINE void sonde_fill_red_key(struct sonde_red_key *key, const struct sonde_conn *c,
				     const struct h1_slot *s)
{
	key->pid = s->pid;
	key->role = sonde_conn_role(c);
	key->proto = SONDE_PROTO_HTTP1;
	key->method = s->method;
	key->family = c->family;
	key->_pad = 0;
	if (key->role == SONDE_ROLE_SERVER) {
		sonde_copy16(key->server_addr, c->laddr);
		key->server_port = c->lport;
	} else {
		sonde_copy16(key->server_addr, c->raddr);
		key->server_port = c->rport;
	}
	sonde_key_route(key, s);
}

/* The metric series of a message-engine transaction: operation code plus the
 * slot's route bytes (Redis command, SQL verb, ...). */
SONDE_INLINE void sonde_fill_red_key_l7m(struct sonde_red_key *key, const struct sonde_conn *c,
					  const struct l7m_slot *s)
{
	__u32 i;

	key->pid = s->pid;
	key->role = sonde_conn_role(c);
	key->proto = c->proto;
	key->method = s->op;
	key->family = c->family;
	key->_pad = 0;
	if (key->role == SONDE_ROLE_SERVER) {
		sonde_copy16(key->server_addr, c->laddr);
		key->server_port = c->lport;
	} else {
		sonde_copy16(key->server_addr, c->raddr);
		key->server_port = c->rport;
	}
	for (i = 0; i < SONDE_ROUTE_MAX; i++)
		key->route[i] = i < s->route_len && i < SONDE_PATH_MAX ? s->text[i] : 0;
}

#endif /* SONDE_CONN_H */
