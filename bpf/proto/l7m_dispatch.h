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
	return SONDE_PROTO_UNKNOWN;
}

#endif /* SONDE_PROTO_L7M_DISPATCH_H */
