/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Every message-engine parser, the step dispatch and inference across them.
 * Adding a protocol: its header here, a case in each switch, a program in
 * socket_trace.bpf.c (L7M_PROG) and its names in user/records.c.
 */
#ifndef SONDE_PROTO_L7M_DISPATCH_H
#define SONDE_PROTO_L7M_DISPATCH_H

#include "proto/l7m.h"
#include "proto/redis.h"
#include "proto/pgsql.h"
#include "proto/mysql.h"
#include "proto/memcached.h"
#include "proto/mqtt.h"
#include "proto/mongo.h"
#include "proto/dns.h"

SONDE_INLINE int l7m_step_dispatch(__u8 proto, void *ctx, struct l7m_conn *c,
				   struct l7m_stream *st, int is_req, const __u8 *w, __u32 wlen,
				   int at_end, struct l7m_info *in)
{
	switch (proto) {
	case SONDE_PROTO_REDIS:
		return redis_step(ctx, c, st, is_req, w, wlen, at_end, in);
	case SONDE_PROTO_PGSQL:
		return pgsql_step(ctx, c, st, is_req, w, wlen, at_end, in);
	case SONDE_PROTO_MYSQL:
		return mysql_step(ctx, c, st, is_req, w, wlen, at_end, in);
	case SONDE_PROTO_MEMCACHED:
		return memcached_step(ctx, c, st, is_req, w, wlen, at_end, in);
	case SONDE_PROTO_DNS:
		return dns_step(ctx, c, st, is_req, w, wlen, at_end, in);
	case SONDE_PROTO_MQTT:
		return mqtt_step(ctx, c, st, is_req, w, wlen, at_end, in);
	case SONDE_PROTO_MONGO:
		return mongo_step(ctx, c, st, is_req, w, wlen, at_end, in);
	}
	return L7M_LOST;
}

/*
 * Which protocol do a connection's first bytes speak? Each test looks only at
 * the first bytes, cheapest and most specific first (docs/PROTOCOLS.md).
 * Returns the protocol and sets *kind to H1_INFER_REQUEST or
 * H1_INFER_RESPONSE (which of the two the bytes are); SONDE_PROTO_UNKNOWN if
 * none matches.
 */
SONDE_INLINE __u8 l7m_infer(const __u8 *w, __u32 n, int *kind)
{
	int k;

	k = redis_infer(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_REDIS;
	}
	k = pgsql_infer(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_PGSQL;
	}
	k = mysql_infer(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_MYSQL;
	}
#ifdef L7M_INFER_PENDING
	/* memcached and MongoDB: parsers tested natively, their steps and
	 * inference not yet within the verifier's budget (branchy scans):
	 * not inferred in the kernel until they are (docs/PROTOCOLS.md) */
	k = memcached_infer(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_MEMCACHED;
	}
#endif
	k = mqtt_infer(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_MQTT;
	}
#ifdef L7M_INFER_PENDING
	k = mongo_infer(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_MONGO;
	}
#endif
	k = dns_infer_stream(w, n);
	if (k) {
		*kind = k;
		return SONDE_PROTO_DNS;
	}
	return SONDE_PROTO_UNKNOWN;
}

/*
 * Inference for datagram sockets (UDP): each datagram is a whole message of
 * dgram_len bytes; HTTP/1 and the stream protocols are not tried.
 */
SONDE_INLINE __u8 l7m_infer_dgram(const __u8 *w, __u32 n, __u32 dgram_len, int *kind)
{
	int k = dns_infer_dgram(w, n, dgram_len);

	if (k) {
		*kind = k;
		return SONDE_PROTO_DNS;
	}
	return SONDE_PROTO_UNKNOWN;
}

/*
 * Inference of one protocol only (a --proto-port hint names it): the same
 * tests as l7m_infer / l7m_infer_dgram. Returns H1_INFER_* (NONE if the
 * bytes are not that protocol's).
 */
SONDE_INLINE int l7m_infer_one(__u8 proto, const __u8 *w, __u32 n, int dgram, __u32 dgram_len)
{
	if (dgram)
		return proto == SONDE_PROTO_DNS ? dns_infer_dgram(w, n, dgram_len) : H1_INFER_NONE;
	switch (proto) {
	case SONDE_PROTO_REDIS:
		return redis_infer(w, n);
	case SONDE_PROTO_PGSQL:
		return pgsql_infer(w, n);
	case SONDE_PROTO_MYSQL:
		return mysql_infer(w, n);
	case SONDE_PROTO_MQTT:
		return mqtt_infer(w, n);
	case SONDE_PROTO_DNS:
		return dns_infer_stream(w, n);
	}
	return H1_INFER_NONE;
}

#endif /* SONDE_PROTO_L7M_DISPATCH_H */
