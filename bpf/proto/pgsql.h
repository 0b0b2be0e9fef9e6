/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * PostgreSQL (frontend/backend protocol 3.0) for the message engine
 * (proto/l7m.h).
 *
 * Every message is a type byte and a big-endian length that counts itself
 * but not the type; one token is one message, its body skipped by length.
 * The connection's first messages have no type byte (StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest: length + code) and are framed
 * but never requests; a server answers SSLRequest/GSSENCRequest with one
 * bare byte ('S'/'G' = encryption follows, 'N' = no).
 *
 * Requests: a simple Query ('Q') is a whole request. An extended-protocol
 * request starts at the first Parse/Bind/Describe/Execute/Close after a
 * Sync and ends at the next Sync; a FunctionCall ('F') is a whole request.
 * A response ends at ReadyForQuery ('Z'). Messages while no request waits
 * (the startup's authentication, parameters and first ReadyForQuery,
 * asynchronous notices) are framed and skipped.
 *
 * Record fields: op = the request's first message type ('Q', 'P', 'B', ...);
 * text = the query (Query, Parse) or the statement/portal name (a request
 * that starts at Bind/Describe/Execute/Close), route = the SQL verb;
 * detail = the last CommandComplete tag ("INSERT 0 3"), or the SQLSTATE of an
 * ErrorResponse (then SONDE_F_ERROR); count = rows summed over the tags;
 * reply = ReadyForQuery's transaction status ('I', 'T', 'E').
 */
#ifndef SONDE_PROTO_PGSQL_H
#define SONDE_PROTO_PGSQL_H

#include "proto/l7m.h"
#include "proto/sql.h"

/* st->phase */
#define PG_PH_NORMAL     0
#define PG_PH_SSL_ANSWER 1 /* response stream: the next byte answers SSLRequest/GSSENCRequest */
#define PG_PH_OPAQUE     2 /* TLS/GSS encryption accepted: nothing more can be parsed */
/* st->st2 of the response stream */
#define PG_SYNCED 1 /* framing held since the last message: cleared by a loss */
/* c->req.st2: the response stream had framing once (a later resync follows a loss) */
#define PG_RESP_WAS_SYNCED 1

#define PG_MAX_LEN     (1u << 30)  /* the server's limit on a message */
#define PG_STARTUP_MAX 10000       /* the server's limit on a startup packet */
#define PG_CODE_CANCEL 80877102
#define PG_CODE_SSL    80877103
#define PG_CODE_GSSENC 80877104
#define PG_OPAQUE_SKIP 0xffffffffu /* skipped per step once the stream is encrypted */
#define PG_ERROR_SCAN  80          /* ErrorResponse bytes searched for the SQLSTATE */

/* Message types as bits of a mask ('A'..'z' fit in 64 bits). */
#define PG_BIT(ch) (1ULL << ((ch) - 'A'))
#define PG_FRONTEND_TYPES                                                                     \
	(PG_BIT('B') | PG_BIT('C') | PG_BIT('D') | PG_BIT('E') | PG_BIT('F') | PG_BIT('H') |  \
	 PG_BIT('P') | PG_BIT('Q') | PG_BIT('S') | PG_BIT('X') | PG_BIT('c') | PG_BIT('d') |  \
	 PG_BIT('f') | PG_BIT('p'))
#define PG_BACKEND_TYPES                                                                      \
	(PG_BIT('A') | PG_BIT('C') | PG_BIT('D') | PG_BIT('E') | PG_BIT('G') | PG_BIT('H') |  \
	 PG_BIT('I') | PG_BIT('K') | PG_BIT('N') | PG_BIT('R') | PG_BIT('S') | PG_BIT('T') |  \
	 PG_BIT('V') | PG_BIT('W') | PG_BIT('Z') | PG_BIT('c') | PG_BIT('d') | PG_BIT('n') |  \
	 PG_BIT('s') | PG_BIT('t') | PG_BIT('v'))
/* messages that start an extended-protocol request */
#define PG_EXTENDED_START (PG_BIT('P') | PG_BIT('B') | PG_BIT('D') | PG_BIT('E') | PG_BIT('C'))

SONDE_INLINE int pg_type_in(__u8 t, __u64 mask)
{
	if (t < 'A' || t > 'z')
		return 0;
	return (mask >> (t - 'A')) & 1;
}

SONDE_INLINE int pg_backend_type(__u8 t)
{
	return pg_type_in(t, PG_BACKEND_TYPES) || t == '1' || t == '2' || t == '3';
}

/* ---- inference ------------------------------------------------------------ */

/*
 * Does w start a PostgreSQL connection (StartupMessage, SSLRequest,
 * GSSENCRequest, CancelRequest) or, on a connection already open when sonde
 * started, a simple Query? Each form is checked field by field: length,
 * code, what the first parameter name or the query text looks like.
 */
SONDE_INLINE int pgsql_infer(const __u8 *w, __u32 n)
{
	__u32 len, code;

	if (n < 8)
		return H1_INFER_NONE;
	if (L7M_AT(w, 0) == 0) {
		len = sql_be32(w, 0);
		code = sql_be32(w, 4);
		if (len == 8 && (code == PG_CODE_SSL || code == PG_CODE_GSSENC))
			return H1_INFER_REQUEST;
		if (len == 16 && code == PG_CODE_CANCEL)
			return H1_INFER_REQUEST;
		/* protocol 3.x, then a parameter name: "user", "database", "_pq_.x" */
		if (code >> 16 == 3 && (code & 0xffff) < 16 && len > 9 && len <= PG_STARTUP_MAX &&
		    n > 8 && ((L7M_AT(w, 8) >= 'a' && L7M_AT(w, 8) <= 'z') || L7M_AT(w, 8) == '_'))
			return H1_INFER_REQUEST;
		return H1_INFER_NONE;
	}
	if (L7M_AT(w, 0) != 'Q')
		return H1_INFER_NONE;
	len = sql_be32(w, 1);
	if (len < 6 || len > (1u << 20) || !sql_alpha(L7M_AT(w, 5)) ||
	    !sql_all_printable(w, n, 5, len - 5))
		return H1_INFER_NONE;
	/* the query's NUL, when in view, must end the message */
	if (len < n && L7M_AT(w, len) != 0)
		return H1_INFER_NONE;
	return H1_INFER_REQUEST;
}

/* ---- requests ------------------------------------------------------------- */

/* A message without a type byte: startup, SSL/GSS request or cancel. */
SONDE_INLINE int pg_untyped(struct l7m_conn *c, const __u8 *w, __u32 wlen, int at_end,
			    struct l7m_info *in)
{
	__u32 len, code;

	if (wlen < 8)
		return at_end ? L7M_NEED : L7M_LOST;
	len = sql_be32(w, 0);
	code = sql_be32(w, 4);
	if (len == 8 && (code == PG_CODE_SSL || code == PG_CODE_GSSENC)) {
		/* the answer is one bare byte: tell the response stream */
		if (!c->resp.started && !c->resp.skip)
			c->resp.phase = PG_PH_SSL_ANSWER;
	} else if (!(len == 16 && code == PG_CODE_CANCEL) &&
		   !(code >> 16 == 3 && len > 8 && len <= PG_STARTUP_MAX)) {
		return L7M_LOST;
	}
	in->consume = len;
	return L7M_OK;
}

/* Fields of the message that starts a request. */
SONDE_INLINE void pg_request_fields(__u8 t, const __u8 *w, __u32 wlen, __u32 len,
				    struct l7m_info *in)
{
	__u32 end = len + 1, q, found, qlen;

	in->ev = L7M_EV_REQUEST;
	in->op = t;
	if (t == 'Q') {
		/* the query and its NUL fill the message */
		sql_text(in, w, wlen, 5, len - 5);
	} else if (t == 'P') {
		/* statement name, then the query */
		q = 6 + sql_cstr_len(w, wlen, 5, SQL_NAME_MAX, &found);
		if (!found)
			return;
		qlen = sql_cstr_len(w, wlen, q, SQL_CSTR_MAX, &found);
		/* a query longer than the record keeps or the window: cut, flagged */
		sql_text(in, w, wlen, q, found ? qlen : end - q);
	} else if (t == 'B') {
		/* portal name, then the statement name */
		q = 6 + sql_cstr_len(w, wlen, 5, SQL_NAME_MAX, &found);
		if (found)
			sql_name(in, w, wlen, q, end - q);
	} else if (t == 'D' || t == 'C') {
		/* 'S'tatement or 'P'ortal, then its name */
		sql_name(in, w, wlen, 6, end > 6 ? end - 6 : 0);
	} else if (t == 'E') {
		sql_name(in, w, wlen, 5, end - 5);
	}
}

SONDE_INLINE int pgsql_request_step(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
				    __u32 wlen, int at_end, struct l7m_info *in)
{
	__u8 t = L7M_AT(w, 0);
	__u32 len;

	if (st->phase == PG_PH_OPAQUE) {
		in->consume = PG_OPAQUE_SKIP;
		return L7M_OK;
	}
	if (t == 0)
		return pg_untyped(c, w, wlen, at_end, in);
	if (wlen < 5)
		return at_end ? L7M_NEED : L7M_LOST;
	len = sql_be32(w, 1);
	if (!pg_type_in(t, PG_FRONTEND_TYPES) || len < 4 || len > PG_MAX_LEN)
		return L7M_LOST;
	if (sql_need_more(wlen, at_end, (__u64)len + 1))
		return L7M_NEED;
	/* framed: commit */
	in->consume = len + 1;
	if (t == 'Q' || t == 'F') {
		pg_request_fields(t, w, wlen, len, in);
	} else if (pg_type_in(t, PG_EXTENDED_START) && !st->started) {
		st->started = 1;
		pg_request_fields(t, w, wlen, len, in);
	} else if (t == 'S') {
		st->started = 0;
	}
	return L7M_OK;
}

/* ---- responses ------------------------------------------------------------ */

/* CommandComplete: the tag into the detail, its row count added to count. */
SONDE_INLINE void pg_command_complete(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 len)
{
	__u32 found, tag = sql_cstr_len(w, wlen, 5, len > 5 ? len - 5 : 0, &found);
	__u64 num = 0, digits = 0, k;

	if (a->flags & SONDE_F_ERROR)
		return;
	/* the number that ends the tag ("INSERT 0 3", "SELECT 400") */
	for (k = 0; k < L7M_DETAIL; k++) {
		__u64 ch = L7M_AT(w, 5 + k), in = l7m_lt(k, tag);
		__u64 d = l7m_digit(ch) & in, keep = 1 - in;

		H1_OPAQUE(d);
		num = d * (num * 10 + ch - '0') + keep * num;
		digits = d * (digits + 1) + keep * digits;
	}
	l7m_detail_set(a, w, wlen, 5, tag);
	if (digits && digits < 10)
		a->count += num;
}

/* ErrorResponse: SONDE_F_ERROR and the SQLSTATE (field 'C') into the detail. */
SONDE_INLINE void pg_error(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 len)
{
	__u64 at = 0, found = 0, field_start = 1, k;

	a->flags |= SONDE_F_ERROR;
	a->detail_len = 0;
	/* fields: a type byte, then a C string; 'C' is the SQLSTATE (after the
	 * severities 'S' and 'V', well inside the window) */
	for (k = 5; k < PG_ERROR_SCAN; k++) {
		__u64 ch = L7M_AT(w, k);
		__u64 in = l7m_lt(k, wlen) & l7m_lt(k, len + 1);
		__u64 hit = field_start & l7m_eq8(ch, 'C') & in & (1 - found);

		H1_OPAQUE(hit);
		at += hit * k;
		found |= hit;
		field_start = l7m_eq8(ch, 0);
	}
	if (found)
		l7m_detail_set(a, w, wlen, at + 1, 5);
}

SONDE_INLINE int pgsql_response_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st,
				     const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	__u8 t = L7M_AT(w, 0);
	__u32 len;

	if (st->phase == PG_PH_OPAQUE) {
		in->consume = PG_OPAQUE_SKIP;
		return L7M_OK;
	}
	if (st->phase == PG_PH_SSL_ANSWER) {
		st->phase = PG_PH_NORMAL;
		if (t == 'S' || t == 'G') {
			/* encrypted from here on, both ways */
			st->phase = PG_PH_OPAQUE;
			c->req.phase = PG_PH_OPAQUE;
		}
		if (t == 'S' || t == 'G' || t == 'N') {
			in->consume = 1;
			return L7M_OK;
		}
		/* an old server's ErrorResponse instead: a message like any other */
	}
	if (wlen < 5)
		return at_end ? L7M_NEED : L7M_LOST;
	len = sql_be32(w, 1);
	if (!pg_backend_type(t) || len < 4 || len > PG_MAX_LEN)
		return L7M_LOST;
	/* picking framing up again in the middle of rows: text that happens to
	 * start with a type letter has no NUL where a length's top byte is */
	if (!(st->st2 & PG_SYNCED) && L7M_AT(w, 1) != 0)
		return L7M_LOST;
	if (sql_need_more(wlen, at_end, (__u64)len + 1))
		return L7M_NEED;
	/* framed: commit */
	in->consume = len + 1;
	if (!(st->st2 & PG_SYNCED)) {
		st->st2 |= PG_SYNCED;
		if (c->req.st2 & PG_RESP_WAS_SYNCED)
			sql_abandon_older(ctx, c);
		c->req.st2 |= PG_RESP_WAS_SYNCED;
	}
	if (!st->started) {
		/* startup exchange or an asynchronous message: nobody asked */
		if (!sql_request_waiting(c))
			return L7M_OK;
		l7m_acc_reset(&c->acc);
		st->started = 1;
	}
	if (t == 'C') {
		pg_command_complete(&c->acc, w, wlen, len);
	} else if (t == 'E') {
		pg_error(&c->acc, w, wlen, len);
	} else if (t == 'Z') {
		if (len == 5 && wlen > 5)
			c->acc.reply = L7M_AT(w, 5);
		st->started = 0;
		in->ev = L7M_EV_RESPONSE;
	}
	return L7M_OK;
}

/* The step function of the message engine for PostgreSQL. */
SONDE_INLINE int pgsql_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st, int is_req,
			    const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	if (is_req)
		return pgsql_request_step(c, st, w, wlen, at_end, in);
	return pgsql_response_step(ctx, c, st, w, wlen, at_end, in);
}

#endif /* SONDE_PROTO_PGSQL_H */
