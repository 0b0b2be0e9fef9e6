/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the SQL parsers (proto/pgsql.h, proto/mysql.h) share: the query text
 * of a request as a record keeps it, and small integer readers.
 *
 * Query text: the first SONDE_PATH_MAX bytes of the statement after leading
 * whitespace, as sent, except that the leading keyword (the SQL verb:
 * SELECT, INSERT, BEGIN ...) is upper-cased and is the metric route. Longer
 * statements are cut and flagged SONDE_F_PATH_TRUNCATED; the full text is
 * never read (docs/PROTOCOLS.md).
 */
#ifndef SONDE_PROTO_SQL_H
#define SONDE_PROTO_SQL_H

#include "proto/l7m.h"

#define SQL_VERB_MAX 20 /* longest leading keyword kept as the route */

SONDE_INLINE int sql_is_space(__u8 ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

SONDE_INLINE int sql_is_alpha(__u8 ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/*
 * Copy the statement at w[pos] (n bytes at most; a NUL ends it early) into
 * in->text: leading whitespace dropped, the verb upper-cased and counted in
 * in->route_len. Bytes past the window are not seen: the text is then cut
 * and flagged like a statement longer than the record keeps.
 */
SONDE_INLINE void sql_text(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u32 i, lead, verb = 1;
	__u8 ch;

	for (lead = 0; lead < 16; lead++) {
		if (lead >= n || pos + lead >= wlen || !sql_is_space(L7M_AT(w, pos + lead)))
			break;
	}
	pos += lead;
	n -= lead;
	for (i = 0; i < SONDE_PATH_MAX; i++) {
		if (i >= n || pos + i >= wlen)
			break;
		ch = L7M_AT(w, pos + i);
		if (ch == 0)
			break;
		if (verb && sql_is_alpha(ch) && i < SQL_VERB_MAX) {
			if (ch >= 'a')
				ch -= 'a' - 'A';
			in->route_len = i + 1;
		} else {
			verb = 0;
		}
		in->text[i] = ch;
	}
	in->text_len = i;
	/* stopped before n: at a NUL (the end), or cut by the record or the window */
	if (i < n && (pos + i >= wlen || L7M_AT(w, pos + i) != 0))
		in->flags |= SONDE_F_PATH_TRUNCATED;
}

/* Copy a NUL-terminated name at w[pos] (n bytes at most) into in->text. */
SONDE_INLINE void sql_name(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u32 i;

	for (i = 0; i < SONDE_PATH_MAX; i++) {
		if (i >= n || pos + i >= wlen || L7M_AT(w, pos + i) == 0)
			break;
		in->text[i] = L7M_AT(w, pos + i);
	}
	in->text_len = i;
}

/* Offset just past the NUL of the C string at w[pos], 0 when the window or
 * `end` comes first (names longer than 64 bytes are not followed). */
SONDE_INLINE __u32 sql_skip_cstring(const __u8 *w, __u32 wlen, __u32 pos, __u32 end)
{
	__u32 i;

	for (i = 0; i < 64; i++) {
		if (pos + i >= wlen || pos + i >= end)
			return 0;
		if (L7M_AT(w, pos + i) == 0)
			return pos + i + 1;
	}
	return 0;
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

#endif /* SONDE_PROTO_SQL_H */
