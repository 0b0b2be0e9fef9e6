/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * MongoDB wire protocol for the message engine (proto/l7m.h).
 *
 * Every message starts with a 16-byte little-endian header: messageLength,
 * requestID, responseTo, opCode. A message is one token (the engine skips
 * what the window does not show); requests and responses pair by
 * requestID == responseTo.
 *
 * Requests: OP_MSG (2013; section 0 holds the command document, whose first
 * element names the command and, for collection commands, holds the
 * collection: {find: "orders", filter: ...}), OP_QUERY (2004; the handshake
 * of older drivers and legacy queries: full collection name, then the query
 * document), OP_COMPRESSED (2012; nothing inside is visible). An OP_MSG with
 * moreToCome set expects no answer: not a transaction.
 * Responses: OP_MSG or OP_REPLY (1). A reply that starts {ok: 0, errmsg,
 * code, codeName} (how servers write command errors) is an error; otherwise
 * {n: N, ...} gives a count. OP_REPLY's QueryFailure flag is an error, its
 * numberReturned the count.
 *
 * Record fields: op = 1 OP_MSG, 2 OP_QUERY, 3 OP_COMPRESSED; op2 = opCode;
 * id = requestID; text = command name, a space, the collection (OP_MSG) or
 * the full collection name (OP_QUERY); route = the command name. Response:
 * code = the error code, detail = codeName, count = n / numberReturned,
 * SONDE_F_ERROR as above.
 */
#ifndef SONDE_PROTO_MONGO_H
#define SONDE_PROTO_MONGO_H

#include "proto/l7m.h"

#define MONGO_OP_REPLY      1
#define MONGO_OP_QUERY      2004
#define MONGO_OP_COMPRESSED 2012
#define MONGO_OP_MSG        2013
#define MONGO_MAX_LEN       (48u * 1000 * 1000) /* maxMessageSizeBytes */
#define MONGO_HDR           16
#define MONGO_NAME_MAX      32 /* element names looked at */
#define MONGO_MSG_MORE      2u /* OP_MSG flagBits: moreToCome */

enum mongo_op { MONGO_K_MSG = 1, MONGO_K_QUERY = 2, MONGO_K_COMPRESSED = 3 };

static const char mongo_ok[4] H1_RODATA = "ok";
static const char mongo_n[4] H1_RODATA = "n";
static const char mongo_code[8] H1_RODATA = "code";
static const char mongo_codename[12] H1_RODATA = "codeName";

SONDE_INLINE __u32 mongo_u32(const __u8 *w, __u32 pos)
{
	return (__u32)L7M_AT(w, pos) | (__u32)L7M_AT(w, pos + 1) << 8 |
	       (__u32)L7M_AT(w, pos + 2) << 16 | (__u32)L7M_AT(w, pos + 3) << 24;
}

/* Length of the C string at w[pos] (without its NUL), or -1 when no NUL is
 * in the window within MONGO_NAME_MAX bytes (or max bytes, if smaller). */
SONDE_INLINE int mongo_cstr_len(const __u8 *w, __u32 wlen, __u32 pos, __u32 max)
{
	__u32 k;

	for (k = 0; k < L7M_WIN; k++) {
		if (k >= max || pos + k >= wlen)
			return -1;
		if (!L7M_AT(w, pos + k))
			return k;
	}
	return -1;
}

/* Is the element name at w[pos] (n bytes) the string s? */
SONDE_INLINE int mongo_name_is(const __u8 *w, __u32 pos, int n, const char *s, int slen)
{
	int k;

	if (n != slen)
		return 0;
	for (k = 0; k < MONGO_NAME_MAX; k++) {
		if (k >= n)
			return 1;
		if (L7M_AT(w, pos + k) != (__u8)s[k])
			return 0;
	}
	return 1;
}

/* Bytes of a BSON value of type t at w[pos] (-1: a type not walked). */
SONDE_INLINE __s64 mongo_value_size(const __u8 *w, __u32 wlen, __u32 pos, __u8 t)
{
	if (t == 0x01 || t == 0x09 || t == 0x11 || t == 0x12)
		return 8; /* double, datetime, timestamp, int64 */
	if (t == 0x10)
		return 4;
	if (t == 0x08)
		return 1;
	if (t == 0x0a)
		return 0; /* null */
	if (t == 0x07)
		return 12; /* ObjectId */
	if (pos + 4 > wlen)
		return -1;
	if (t == 0x02 || t == 0x0d || t == 0x0e)
		return 4 + (__s64)mongo_u32(w, pos); /* string: int32 length + bytes */
	if (t == 0x03 || t == 0x04)
		return mongo_u32(w, pos); /* embedded document/array: its own length */
	if (t == 0x05)
		return 5 + (__s64)mongo_u32(w, pos); /* binary */
	return -1;
}

/* The command document's first element at w[pos] (past the document's
 * length): its name (the command) and, when its value is a string, the
 * collection, as the request text. */
SONDE_INLINE void mongo_command_text(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos)
{
	int n;
	__u8 t;

	if (pos >= wlen)
		return;
	t = L7M_AT(w, pos);
	n = mongo_cstr_len(w, wlen, pos + 1, MONGO_NAME_MAX);
	if (n <= 0)
		return;
	l7m_text_append(in, w, wlen, pos + 1, n);
	in->route_len = in->text_len;
	pos += 1 + n + 1;
	if (t == 0x02 && pos + 4 <= wlen) {
		__u32 sl = mongo_u32(w, pos);

		if (sl > 1 && sl <= L7M_BUF) {
			l7m_text_char(in, ' ');
			l7m_text_append(in, w, wlen, pos + 4, sl - 1);
		}
	}
}

/* The request a message starts (opCode known to be a request's). */
SONDE_INLINE void mongo_request(const __u8 *w, __u32 wlen, __u32 opcode, struct l7m_info *in)
{
	int n;

	if (opcode == MONGO_OP_MSG) {
		if (wlen >= 20 && (mongo_u32(w, 16) & MONGO_MSG_MORE))
			return; /* moreToCome: no answer comes */
		in->op = MONGO_K_MSG;
		if (wlen > 20 && L7M_AT(w, 20) == 0)
			mongo_command_text(in, w, wlen, 25);
	} else if (opcode == MONGO_OP_QUERY) {
		in->op = MONGO_K_QUERY;
		n = mongo_cstr_len(w, wlen, 20, L7M_WIN);
		if (n > 0) {
			/* the query document: after the name, skip and return */
			mongo_command_text(in, w, wlen, 20 + n + 1 + 8 + 4);
			if (in->text_len && in->text_len == in->route_len) {
				l7m_text_char(in, ' ');
				l7m_text_append(in, w, wlen, 20, n);
			}
		}
	} else {
		in->op = MONGO_K_COMPRESSED;
	}
	in->ev = L7M_EV_REQUEST;
	in->op2 = opcode;
	in->has_id = 1;
	in->id = mongo_u32(w, 4);
}

/*
 * Walk the first elements of a reply document at w[pos]: "ok" (0 is an
 * error), "n" (the count), "code", "codeName" (the detail).
 */
SONDE_INLINE void mongo_reply_doc(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 pos)
{
	__u32 k;

	for (k = 0; k < 4; k++) {
		__u32 v;
		__s64 sz;
		int n;
		__u8 t;

		if (pos + 2 > wlen)
			return;
		t = L7M_AT(w, pos);
		n = mongo_cstr_len(w, wlen, pos + 1, MONGO_NAME_MAX);
		if (n <= 0)
			return;
		v = pos + 1 + n + 1;
		sz = mongo_value_size(w, wlen, v, t);
		if (sz < 0 || v + sz > wlen)
			return;
		if (mongo_name_is(w, pos + 1, n, mongo_ok, 2)) {
			/* ok: 0 as a double, an int32 or a bool */
			int zero = 1;
			__u32 i;

			for (i = 0; i < 8; i++)
				if (i < sz && L7M_AT(w, v + i))
					zero = 0;
			if (zero)
				a->flags |= SONDE_F_ERROR;
		} else if (mongo_name_is(w, pos + 1, n, mongo_n, 1) && t == 0x10) {
			a->count = mongo_u32(w, v);
		} else if (mongo_name_is(w, pos + 1, n, mongo_code, 4) && t == 0x10) {
			a->code = mongo_u32(w, v);
		} else if (mongo_name_is(w, pos + 1, n, mongo_codename, 8) && t == 0x02 && sz > 5) {
			l7m_detail_set(a, w, wlen, v + 4, sz - 5);
		}
		pos = v + sz;
	}
}

/* st->phase of the response stream */
#define MONGO_PH_HEADER 0
#define MONGO_PH_BODY   1 /* st0 = body bytes, st1 = opCode, st2 = responseTo */

/* A reply's body at w[0] (drivers read the header and the body apart, so
 * the header is a token of its own): fields, and the end of the response. */
SONDE_INLINE void mongo_response_body(struct l7m_conn *c, struct l7m_stream *st,
				      const __u8 *w, __u32 wlen, struct l7m_info *in)
{
	struct l7m_acc *a = &c->acc;

	a->has_id = 1;
	a->id = st->st2;
	in->ev = L7M_EV_RESPONSE;
	in->consume = st->st0;
	if (st->st1 == MONGO_OP_REPLY) {
		/* responseFlags, cursorID, startingFrom, numberReturned, documents */
		a->reply = MONGO_K_QUERY;
		if (wlen < 20)
			return;
		if (mongo_u32(w, 0) & 2) /* QueryFailure */
			a->flags |= SONDE_F_ERROR;
		mongo_reply_doc(a, w, wlen, 24);
		a->count = mongo_u32(w, 16);
		return;
	}
	a->reply = st->st1 == MONGO_OP_MSG ? MONGO_K_MSG : MONGO_K_COMPRESSED;
	/* flagBits, then section kind 0: the reply document */
	if (st->st1 == MONGO_OP_MSG && wlen > 4 && L7M_AT(w, 4) == 0)
		mongo_reply_doc(a, w, wlen, 9);
}

SONDE_INLINE int mongo_response(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
				__u32 wlen, int at_end, struct l7m_info *in)
{
	__u32 len, opcode;

	if (st->phase == MONGO_PH_BODY) {
		/* a body cut short by the syscall: wait for its head */
		if (wlen < st->st0 && wlen < L7M_CARRY && at_end)
			return L7M_NEED;
		mongo_response_body(c, st, w, wlen, in);
		st->phase = MONGO_PH_HEADER;
		return L7M_OK;
	}
	if (wlen < MONGO_HDR)
		return at_end ? L7M_NEED : L7M_LOST;
	len = mongo_u32(w, 0);
	opcode = mongo_u32(w, 12);
	if (len < MONGO_HDR || len > MONGO_MAX_LEN ||
	    (opcode != MONGO_OP_MSG && opcode != MONGO_OP_REPLY && opcode != MONGO_OP_COMPRESSED))
		return L7M_LOST;
	st->st0 = len - MONGO_HDR;
	st->st1 = opcode;
	st->st2 = mongo_u32(w, 8);
	if (len == MONGO_HDR) {
		mongo_response_body(c, st, w, 0, in);
		in->consume = MONGO_HDR;
		return L7M_OK;
	}
	st->phase = MONGO_PH_BODY;
	in->consume = MONGO_HDR;
	return L7M_OK;
}

/* The step function of the message engine for MongoDB. */
SONDE_INLINE int mongo_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st, int is_req,
			    const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	__u32 len, opcode;

	(void)ctx;
	if (!is_req)
		return mongo_response(c, st, w, wlen, at_end, in);
	if (wlen < MONGO_HDR)
		return at_end ? L7M_NEED : L7M_LOST;
	len = mongo_u32(w, 0);
	opcode = mongo_u32(w, 12);
	if (len < MONGO_HDR || len > MONGO_MAX_LEN ||
	    (opcode != MONGO_OP_MSG && opcode != MONGO_OP_QUERY && opcode != MONGO_OP_COMPRESSED))
		return L7M_LOST;
	in->consume = len;
	mongo_request(w, wlen, opcode, in);
	return L7M_OK;
}

/*
 * Does w start a MongoDB request? An OP_MSG with responseTo 0, only defined
 * flag bits, a body section whose document fits the message; or an OP_QUERY
 * on a "db.collection" name.
 */
SONDE_INLINE int mongo_infer(const __u8 *w, __u32 n)
{
	__u32 len, opcode, flags, doc;
	__u8 t;
	int k;

	if (n < 26)
		return H1_INFER_NONE;
	len = mongo_u32(w, 0);
	opcode = mongo_u32(w, 12);
	if (len < 26 || len > MONGO_MAX_LEN || mongo_u32(w, 8) != 0)
		return H1_INFER_NONE;
	flags = mongo_u32(w, 16);
	if (opcode == MONGO_OP_MSG) {
		if (flags & ~0x10003u)
			return H1_INFER_NONE;
		if (L7M_AT(w, 20) != 0)
			return H1_INFER_NONE;
		doc = mongo_u32(w, 21);
		t = L7M_AT(w, 25);
		if (doc < 5 || doc > len - 21 || !t || (t > 0x13 && t != 0x7f && t != 0xff))
			return H1_INFER_NONE;
		return mongo_cstr_len(w, n, 26, MONGO_NAME_MAX) > 0 ? H1_INFER_REQUEST
								    : H1_INFER_NONE;
	}
	if (opcode == MONGO_OP_QUERY) {
		if (flags & ~0xfeu)
			return H1_INFER_NONE;
		k = mongo_cstr_len(w, n, 20, L7M_WIN);
		if (k < 3)
			return H1_INFER_NONE;
		for (t = 0; t < 120; t++) {
			__u8 ch = L7M_AT(w, 20 + t);

			if (t >= k)
				break;
			if (ch < 0x20 || ch > 0x7e)
				return H1_INFER_NONE;
		}
		return H1_INFER_REQUEST;
	}
	return H1_INFER_NONE;
}

#endif /* SONDE_PROTO_MONGO_H */
