/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Redis (RESP2 and RESP3) for the message engine (proto/l7m.h).
 *
 * Requests are arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or
 * inline commands ("PING\r\n"). A reply is one RESP value, possibly nested:
 * the stream keeps one counter of values still to come (st0), which each
 * value decrements and each aggregate header (*, %, ~, >, |) raises by its
 * element count, so any nesting depth costs nothing more. Bulk payloads are
 * skipped by length, never read.
 *
 * Record fields: text = upper-cased command, a space, the first argument
 * (the key) as far as the window shows it; route = the command; reply = the
 * type byte of the top-level reply ('+', '-', ':', '$', '*', '%', ...);
 * count = elements of a top-level aggregate; detail = first word of an error
 * reply ("ERR", "WRONGTYPE"); SONDE_F_ERROR on '-' and '!' replies.
 *
 * Pub/sub: "message", "pmessage" and "smessage" arrays (RESP2) and RESP3 push
 * values ('>') arrive without a request; they are framed and skipped, never
 * paired with one.
 */
#ifndef SONDE_PROTO_REDIS_H
#define SONDE_PROTO_REDIS_H

#include "proto/l7m.h"

/* st->phase */
#define REDIS_PH_VALUE     0 /* at the start of a value */
#define REDIS_PH_LINE_SKIP 1 /* inside a line longer than the window */
/* st->st1 flags */
#define REDIS_MSG_PUSH  1 /* the reply under way is a push, not an answer */
#define REDIS_MSG_ERROR 2 /* ... is an error */

/* Does w look like a RESP request ("*N\r\n$M\r\n")? */
SONDE_INLINE int redis_infer(const __u8 *w, __u32 n)
{
	__u32 i = 1, digits = 0;

	if (n < 8 || L7M_AT(w, 0) != '*')
		return H1_INFER_NONE;
	for (; i < 6 && i < n && l7m_is_digit(L7M_AT(w, i)); i++)
		digits++;
	if (!digits || i + 3 > n)
		return H1_INFER_NONE;
	if (L7M_AT(w, i) != '\r' || L7M_AT(w, i + 1) != '\n' || L7M_AT(w, i + 2) != '$')
		return H1_INFER_NONE;
	return H1_INFER_REQUEST;
}

/*
 * The bulk string at w[*pos] ("$len\r\n<data>\r\n") if it is whole in the
 * window: its data offset and length, and *pos moved past it. 0 if whole.
 */
SONDE_INLINE int redis_bulk_in_window(const __u8 *w, __u32 wlen, __u32 *pos, __u32 *data,
				      __u32 *len)
{
	__u32 p = *pos;
	__s64 v;

	if (p >= wlen || L7M_AT(w, p) != '$')
		return -1;
	p++;
	if (l7m_parse_line_int(w, wlen, &p, &v) || v < 0 || v > L7M_BUF)
		return -1;
	if (p + v + 2 > wlen)
		return -1;
	*data = p;
	*len = v;
	*pos = p + v + 2;
	return 0;
}

/* A request array's header, with the command and key copied when in view. */
SONDE_INLINE int redis_request_start(struct l7m_stream *st, const __u8 *w, __u32 wlen,
				     struct l7m_info *in)
{
	__u32 pos = 1, data, len;
	__s64 n;
	int r = l7m_parse_line_int(w, wlen, &pos, &n);

	if (r)
		return r > 0 ? L7M_NEED : L7M_LOST;
	if (n <= 0 || n > 1 << 20)
		return L7M_LOST;
	st->st0 = n;
	in->ev = L7M_EV_REQUEST;
	in->consume = pos;
	if (redis_bulk_in_window(w, wlen, &pos, &data, &len))
		return L7M_OK;
	l7m_text_copy(in, w, wlen, data, len < 32 ? len : 32, 1);
	in->route_len = in->text_len;
	st->st0--;
	in->consume = pos;
	if (st->st0 && !redis_bulk_in_window(w, wlen, &pos, &data, &len)) {
		l7m_text_char(in, ' ');
		l7m_text_append(in, w, wlen, data, len);
		st->st0--;
		in->consume = pos;
	}
	return L7M_OK;
}

/* An inline command: one line of words. */
SONDE_INLINE int redis_inline_request(const __u8 *w, __u32 wlen, struct l7m_info *in)
{
	__u32 end = l7m_line_end(w, wlen, 0);

	if (!end)
		return L7M_NEED;
	l7m_text_copy(in, w, wlen, 0, l7m_word_len(w, wlen, 0, 32), 1);
	in->route_len = in->text_len;
	in->ev = L7M_EV_REQUEST;
	in->consume = end;
	return L7M_OK;
}

static const char redis_push_message[32] H1_RODATA = "*3\r\n$7\r\nmessage\r\n";
static const char redis_push_pmessage[32] H1_RODATA = "*4\r\n$8\r\npmessage\r\n";
static const char redis_push_smessage[32] H1_RODATA = "*3\r\n$8\r\nsmessage\r\n";

/*
 * Is the reply at w[0] a pub/sub message ("*3\r\n$7\r\nmessage..." and the
 * pmessage/smessage forms)? 1 yes, 0 no, -1 the window is a prefix of one
 * (wait for more bytes).
 */
SONDE_INLINE int redis_pubsub_message(const __u8 *w, __u32 wlen)
{
	int a = l7m_match_const(w, wlen, 0, redis_push_message, 15);
	int b = l7m_match_const(w, wlen, 0, redis_push_pmessage, 16);
	int c = l7m_match_const(w, wlen, 0, redis_push_smessage, 16);

	if (a > 0 || b > 0 || c > 0)
		return 1;
	if (a < 0 || b < 0 || c < 0)
		return -1;
	return 0;
}

/* Elements an aggregate type byte announces per count. */
SONDE_INLINE int redis_aggregate_factor(__u8 t)
{
	if (t == '*' || t == '~' || t == '>')
		return 1;
	if (t == '%' || t == '|')
		return 2;
	return 0;
}

SONDE_INLINE int redis_is_line_type(__u8 t)
{
	return t == '+' || t == '-' || t == ':' || t == '_' || t == ',' || t == '#' || t == '(';
}

/* The first word of an error line into the detail. */
SONDE_INLINE void redis_error_word(struct l7m_acc *a, const __u8 *w, __u32 wlen)
{
	l7m_detail_set(a, w, wlen, 1, l7m_word_len(w, wlen, 1, L7M_DETAIL));
}

/* The values still to come once this one is framed (0: the message ends). */
SONDE_INLINE void redis_message_end(struct l7m_conn *c, struct l7m_stream *st, int is_req,
				    struct l7m_info *in)
{
	st->started = 0;
	if (!is_req && !(st->st1 & REDIS_MSG_PUSH)) {
		if (st->st1 & REDIS_MSG_ERROR)
			c->acc.flags |= SONDE_F_ERROR;
		in->ev = L7M_EV_RESPONSE;
	}
}

/*
 * One value header (or a line) of a reply or of a request's arguments.
 * Nothing is changed before the value is known to be framed: a step that
 * returns L7M_NEED runs again on the same bytes.
 */
SONDE_INLINE int redis_value(struct l7m_conn *c, struct l7m_stream *st, int is_req,
			     const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	__u8 t = L7M_AT(w, 0);
	int top = !st->started, factor = redis_aggregate_factor(t), push = 0;
	__u32 pos = 1, end = 0;
	__s64 n = 0;
	int r;

	if (redis_is_line_type(t)) {
		end = l7m_line_end(w, wlen, 0);
		if (!end && at_end && wlen <= L7M_CARRY)
			return L7M_NEED;
	} else if (t == '$' || t == '!' || t == '=' || factor) {
		r = l7m_parse_line_int(w, wlen, &pos, &n);
		if (r)
			return r > 0 ? L7M_NEED : L7M_LOST;
		if (factor && n > 1 << 24)
			return L7M_LOST;
	} else {
		return L7M_LOST;
	}
	if (top && !is_req) {
		push = t == '>';
		if (t == '*') {
			push = redis_pubsub_message(w, wlen);
			if (push < 0 && at_end && wlen <= L7M_CARRY)
				return L7M_NEED;
			push = push > 0;
		}
	}
	/* framed: commit */
	if (top) {
		st->st0 = 1;
		st->st1 = push ? REDIS_MSG_PUSH : 0;
		st->started = 1;
		if (!is_req)
			c->acc.reply = t;
	}
	if (redis_is_line_type(t)) {
		if (!end) {
			/* a line longer than the search: skip to its end */
			st->phase = REDIS_PH_LINE_SKIP;
			in->consume = wlen < L7M_LINE_MAX ? wlen : L7M_LINE_MAX;
		} else {
			in->consume = end;
		}
		if (top && !is_req && t == '-') {
			st->st1 |= REDIS_MSG_ERROR;
			redis_error_word(&c->acc, w, wlen);
		}
	} else {
		in->consume = pos;
		if (factor && n > 0) {
			st->st0 += n * factor;
			if (top && !is_req)
				c->acc.count = n;
		} else if (!factor && n >= 0) {
			in->consume = pos + n + 2; /* the payload is skipped unread */
		}
		if (top && !is_req && t == '!')
			st->st1 |= REDIS_MSG_ERROR;
	}
	/* an attribute ('|') comes before the value it describes */
	if (t != '|')
		st->st0--;
	if (st->st0 == 0 && st->phase == REDIS_PH_VALUE)
		redis_message_end(c, st, is_req, in);
	return L7M_OK;
}

/* The step function of the message engine for Redis. */
SONDE_INLINE int redis_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st, int is_req,
			    const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	__u32 end;
	__u8 t = L7M_AT(w, 0);

	(void)ctx;
	if (st->phase == REDIS_PH_LINE_SKIP) {
		end = l7m_line_end(w, wlen, 0);
		in->consume = end ? end : (wlen < L7M_LINE_MAX ? wlen : L7M_LINE_MAX);
		if (end) {
			st->phase = REDIS_PH_VALUE;
			if (st->st0 == 0)
				redis_message_end(c, st, is_req, in);
		}
		return L7M_OK;
	}
	if (is_req && !st->started) {
		if (t == '*') {
			int r = redis_request_start(st, w, wlen, in);

			if (r == L7M_OK) {
				st->started = st->st0 != 0;
			}
			return r;
		}
		if (t >= 'A' && t <= 'z')
			return redis_inline_request(w, wlen, in);
		return L7M_LOST;
	}
	return redis_value(c, st, is_req, w, wlen, at_end, in);
}

#endif /* SONDE_PROTO_REDIS_H */
