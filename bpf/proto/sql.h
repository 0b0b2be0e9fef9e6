/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the SQL parsers (proto/pgsql.h, proto/mysql.h) share: the query text
 * of a request as a record keeps it, and small integer and string readers.
 * Every scan is written with the engine's ALU helpers (l7m_lt, l7m_eq8):
 * one straight path per loop, whatever the bytes (docs/PROTOCOLS.md).
 *
 * Query text: the first SONDE_PATH_MAX bytes of the statement after leading
 * whitespace, as sent, except that the leading keyword (the SQL verb:
 * SELECT, INSERT, BEGIN ...) is upper-cased and is the metric route. Longer
 * statements are cut and flagged SONDE_F_PATH_TRUNCATED; the rest is never
 * read (docs/PROTOCOLS.md).
 */
#ifndef SONDE_PROTO_SQL_H
#define SONDE_PROTO_SQL_H

#include "proto/l7m.h"

#define SQL_VERB_MAX 20 /* longest leading keyword kept as the route */
#define SQL_LEAD_MAX 16 /* leading whitespace skipped before the verb */
#define SQL_NAME_MAX 64 /* statement and portal names followed */

/* 1 if ch is a space, tab, CR or LF. */
SONDE_INLINE __u64 sql_space(__u64 ch)
{
	return l7m_eq8(ch, ' ') | l7m_eq8(ch, '\t') | l7m_eq8(ch, '\n') | l7m_eq8(ch, '\r');
}

/* 1 if ch is an ASCII letter. */
SONDE_INLINE __u64 sql_alpha(__u64 ch)
{
	__u64 lo = ch | 0x20; /* folds upper case onto lower case */

	return l7m_lt(lo, 'z' + 1) & (1 - l7m_lt(lo, 'a'));
}

/* 1 if ch is printable ASCII or whitespace. */
SONDE_INLINE __u64 sql_printable(__u64 ch)
{
	return (l7m_lt(ch, 0x7f) & (1 - l7m_lt(ch, 0x20))) | sql_space(ch);
}

/* Leading whitespace at w[pos] (at most n and SQL_LEAD_MAX bytes). */
SONDE_INLINE __u32 sql_lead_len(const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u64 len = 0, alive = 1, k;

	for (k = 0; k < SQL_LEAD_MAX; k++) {
		__u64 ok = sql_space(L7M_AT(w, pos + k)) & l7m_lt(pos + k, wlen) & l7m_lt(k, n) &
			   alive;

		H1_OPAQUE(ok);
		len += ok;
		alive = ok;
	}
	return len;
}

/* Letters at w[pos] (at most max and SQL_VERB_MAX). */
SONDE_INLINE __u32 sql_verb_len(const __u8 *w, __u32 wlen, __u32 pos, __u32 max)
{
	__u64 len = 0, alive = 1, k;

	for (k = 0; k < SQL_VERB_MAX; k++) {
		__u64 ok = sql_alpha(L7M_AT(w, pos + k)) & l7m_lt(pos + k, wlen) & l7m_lt(k, max) &
			   alive;

		H1_OPAQUE(ok);
		len += ok;
		alive = ok;
	}
	return len;
}

/*
 * Length of the C string at w[pos] (bytes before its NUL), looking at most at
 * `max` bytes (<= SQL_CSTR_MAX: a query longer than that is cut anyway) and
 * only inside the window. *found is 1 when the NUL was seen.
 */
#define SQL_CSTR_MAX SONDE_PATH_MAX
SONDE_INLINE __u32 sql_cstr_len(const __u8 *w, __u32 wlen, __u32 pos, __u32 max, __u32 *found)
{
	__u64 len = 0, alive = 1, k, nul = 0;

	for (k = 0; k < SQL_CSTR_MAX; k++) {
		__u64 in = l7m_lt(pos + k, wlen) & l7m_lt(k, max);
		__u64 z = l7m_eq8(L7M_AT(w, pos + k), 0);
		__u64 ok = (1 - z) & in & alive;

		H1_OPAQUE(ok);
		nul |= z & in & alive;
		len += ok;
		alive = ok;
	}
	*found = nul;
	return len;
}

/* 1 if the n bytes at w[pos] (at most 16, inside the window) are printable. */
SONDE_INLINE __u64 sql_all_printable(const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u64 bad = 0, k;

	for (k = 0; k < 16; k++)
		bad |= (1 - sql_printable(L7M_AT(w, pos + k))) & l7m_lt(k, n) & l7m_lt(pos + k, wlen);
	return 1 - bad;
}

/*
 * Name the statement at w[pos] (n bytes, the whole statement) as the
 * request's text: leading whitespace dropped, the verb upper-cased (its
 * length is the route), then the rest as sent. Bytes past the window or
 * SONDE_PATH_MAX are cut and flagged.
 */
SONDE_INLINE void sql_text(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u32 lead = sql_lead_len(w, wlen, pos, n), verb;

	pos += lead;
	n -= lead;
	verb = sql_verb_len(w, wlen, pos, n);
	l7m_text_copy(in, w, wlen, pos, verb, 1);
	in->route_len = in->text_len;
	/* the second segment's index is read back from memory: folded from the
	 * first call, clang's copy of it loses the bound the verifier needs */
	H1_BARRIER();
	if (n > verb)
		l7m_text_copy(in, w, wlen, pos + verb, n - verb, 0);
}

/* Name the C string at w[pos] (a statement or portal name, at most n bytes
 * and SQL_NAME_MAX) as the request's text. */
SONDE_INLINE void sql_name(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u32 found;
	__u32 len = sql_cstr_len(w, wlen, pos, n < SQL_NAME_MAX ? n : SQL_NAME_MAX, &found);

	l7m_text_copy(in, w, wlen, pos, len, 0);
}

SONDE_INLINE __u32 sql_be32(const __u8 *w, __u32 i)
{
	return (__u32)L7M_AT(w, i) << 24 | (__u32)L7M_AT(w, i + 1) << 16 |
	       (__u32)L7M_AT(w, i + 2) << 8 | L7M_AT(w, i + 3);
}

SONDE_INLINE __u32 sql_le32(const __u8 *w, __u32 i)
{
	return (__u32)L7M_AT(w, i + 3) << 24 | (__u32)L7M_AT(w, i + 2) << 16 |
	       (__u32)L7M_AT(w, i + 1) << 8 | L7M_AT(w, i);
}

SONDE_INLINE __u32 sql_le16(const __u8 *w, __u32 i)
{
	return (__u32)L7M_AT(w, i + 1) << 8 | L7M_AT(w, i);
}

/*
 * Bytes a token's head must show before its fields are read: the whole token
 * when it is short, else as much as the engine's carry holds. A step that
 * sees fewer at the end of a syscall returns L7M_NEED and runs again with
 * the next syscall's bytes behind them.
 */
SONDE_INLINE int sql_need_more(__u32 wlen, int at_end, __u64 token_len)
{
	return at_end && wlen < token_len && wlen < L7M_CARRY;
}

/* Is a request waiting for its response (a live slot)? */
SONDE_INLINE int sql_request_waiting(const struct l7m_conn *c)
{
	__u64 live = 0, i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++)
		live |= c->slots[i].live & 1;
	return live;
}

/*
 * A response stream picked framing up again (after a loss, or for the first
 * time on a connection found mid-way): the response that starts here answers
 * the newest request. Older requests waiting had their responses in the
 * bytes that could not be framed: they are dropped (counted) rather than
 * paired with the wrong response.
 */
SONDE_INLINE void sql_abandon_older(void *ctx, struct l7m_conn *c)
{
	__u64 n = 0, i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		struct l7m_slot *s = &c->slots[i];
		__u64 older = (s->live & 1) & l7m_ne32(s->seq, c->req_seq);

		n += older;
		s->live &= (__u8)(1 - older);
	}
	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++)
		if (i < n)
			sonde_stat_add(ctx, H1_STAT(requests_abandoned));
}

/* The slot the response under way answers (FIFO: the oldest live), or NULL. */
SONDE_INLINE struct l7m_slot *sql_answered_slot(struct l7m_conn *c)
{
	__u32 idx = l7m_match_idx(c, &c->acc);

	if (idx >= SONDE_PIPELINE_DEPTH)
		return 0;
	H1_OPAQUE(idx);
	return &c->slots[idx & (SONDE_PIPELINE_DEPTH - 1)];
}

#endif /* SONDE_PROTO_SQL_H */
