/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * MySQL / MariaDB client/server protocol for the message engine
 * (proto/l7m.h).
 *
 * Every packet is a 3-byte little-endian payload length and a sequence id;
 * one token is one packet, its payload skipped by length. A command is a
 * client packet with sequence id 0; its response starts with the server's
 * packet with sequence id 1. Everything else (the server's greeting with id
 * 0, the client's handshake response with id 1, the authentication exchange
 * with ids 2 and up, LOCAL INFILE data) is framed and skipped.
 *
 * A response is, by its first packet: OK (0x00) or ERR (0xff) or EOF (0xfe):
 * done; COM_STMT_PREPARE's OK: then the parameter and column definitions;
 * LOCAL INFILE (0xfb): done at the OK/ERR after the client's data; else a
 * result set: column count, definitions (none when MariaDB's metadata cache
 * says so), EOF unless CLIENT_DEPRECATE_EOF, rows, then EOF / OK-as-EOF
 * (0xfe, shorter than 16 MB) or ERR. A terminator with
 * SERVER_MORE_RESULTS_EXISTS is followed by the next result of the same
 * response (multi-statement queries, CALL).
 *
 * Whether EOF packets follow definitions (CLIENT_DEPRECATE_EOF) is read from
 * the client's handshake response, or learnt from the first result set when
 * the handshake was not seen.
 *
 * COM_QUIT, COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA get no response: the
 * packet header is the request, its payload drops it (L7M_EV_DROP).
 *
 * Record fields: op = the command byte (0x03 COM_QUERY, 0x16
 * COM_STMT_PREPARE, 0x17 COM_STMT_EXECUTE ...); text = the query (COM_QUERY,
 * COM_STMT_PREPARE) or the schema (COM_INIT_DB), route = the SQL verb; id =
 * the statement id (COM_STMT_*: from the request; COM_STMT_PREPARE: the one
 * the server assigned); reply = 'O' OK, 'E' ERR, 'R' result set, 'P'
 * statement prepared, 'F' EOF, 'I' LOCAL INFILE, 'S' statistics string;
 * count = rows returned plus rows affected (over every result), or the
 * prepared statement's parameter count; code = the error number and detail =
 * its SQLSTATE (then SONDE_F_ERROR).
 */
#ifndef SONDE_PROTO_MYSQL_H
#define SONDE_PROTO_MYSQL_H

#include "proto/l7m.h"
#include "proto/sql.h"

/* Commands (the first payload byte of a client packet with sequence id 0). */
#define MY_COM_QUIT              0x01
#define MY_COM_INIT_DB           0x02
#define MY_COM_QUERY             0x03
#define MY_COM_FIELD_LIST        0x04
#define MY_COM_STATISTICS        0x09
#define MY_COM_STMT_PREPARE      0x16
#define MY_COM_STMT_EXECUTE      0x17
#define MY_COM_STMT_SEND_LONG_DATA 0x18
#define MY_COM_STMT_CLOSE        0x19
#define MY_COM_STMT_FETCH        0x1c
#define MY_COM_LAST              0x1f /* COM_RESET_CONNECTION */
#define MY_COM_STMT_BULK_EXECUTE 0xfa /* MariaDB */

#define MY_MAX_PAYLOAD 0xffffffu /* a packet this long continues in the next one */
#define MY_MAX_COLUMNS 4096
#define MY_CLIENT_PROTOCOL_41 0x200u
#define MY_CLIENT_SSL         0x800u
#define MY_CLIENT_DEPRECATE_EOF (1u << 24)
#define MY_MORE_RESULTS 0x0008 /* SERVER_MORE_RESULTS_EXISTS */
#define MY_CURSOR_EXISTS 0x0040 /* SERVER_STATUS_CURSOR_EXISTS */
#define MY_OPAQUE_SKIP 0xffffffffu

/* st->phase */
#define MY_PH_IDLE       0 /* response stream: between responses */
#define MY_PH_FIRST      1 /* the first packet of a result */
#define MY_PH_DEFS       2 /* column or parameter definitions; st0 still to come */
#define MY_PH_AFTER_DEFS 3 /* a result set's EOF (classic) or its first row */
#define MY_PH_ROWS       4 /* rows until EOF / OK-as-EOF / ERR */
#define MY_PH_GROUP_EOF  5 /* prepare: EOF (classic) after the parameters, then st2 columns */
#define MY_PH_EOF_END    6 /* prepare: the EOF that ends it (classic) */
#define MY_PH_DROP       7 /* request stream: the payload of a command with no response */
#define MY_PH_OPAQUE     8 /* TLS accepted: nothing more can be parsed */

/* st->st1 on the response stream: flags, and the command answered in bits 8..15 */
#define MY_R_PREPARE 1 /* the definitions are a prepare's */
#define MY_R_CONT    2 /* the next packet continues a 16 MB one */
#define MY_R_SYNCED  (1u << 16) /* framing held since the last packet: cleared by a loss */
/* st->st1 on the request stream */
#define MY_Q_CONT    2

/* c->req.st2: whether EOF packets follow definitions (bits 0-1), and whether
 * the response stream had framing once (a later resync follows a loss) */
#define MY_EOF_UNKNOWN 0
#define MY_EOF_CLASSIC 1
#define MY_EOF_DEPRECATED 2
#define MY_EOF_MODE 3
#define MY_RESP_WAS_SYNCED 4

SONDE_INLINE __u32 my_len(const __u8 *w)
{
	return (__u32)L7M_AT(w, 0) | (__u32)L7M_AT(w, 1) << 8 | (__u32)L7M_AT(w, 2) << 16;
}

/*
 * A length-encoded integer at w[pos]: its value (the low 32 bits) in *v and
 * its size; 0 when it is not in the window or not an integer (0xfb, 0xff).
 */
SONDE_INLINE __u32 my_lenenc(const __u8 *w, __u32 wlen, __u32 pos, __u32 *v)
{
	__u8 h;

	if (pos >= wlen)
		return 0;
	h = L7M_AT(w, pos);
	if (h < 0xfb) {
		*v = h;
		return 1;
	}
	if (h == 0xfc && pos + 3 <= wlen) {
		*v = sql_le16(w, pos + 1);
		return 3;
	}
	if (h == 0xfd && pos + 4 <= wlen) {
		*v = sql_le32(w, pos + 1) & 0xffffff;
		return 4;
	}
	if (h == 0xfe && pos + 9 <= wlen) {
		*v = sql_le32(w, pos + 1);
		return 9;
	}
	return 0;
}

SONDE_INLINE int my_known_command(__u8 cmd)
{
	return cmd <= MY_COM_LAST || cmd == MY_COM_STMT_BULK_EXECUTE;
}

SONDE_INLINE int my_no_response(__u8 cmd)
{
	return cmd == MY_COM_QUIT || cmd == MY_COM_STMT_CLOSE || cmd == MY_COM_STMT_SEND_LONG_DATA;
}

/* ---- inference ------------------------------------------------------------ */

/*
 * The server's greeting (protocol 10: "5.5.5-10.11.6-MariaDB\0", thread id,
 * 8 scramble bytes, a 0 filler) or, on a connection open before sonde
 * started, a COM_QUERY / COM_STMT_PREPARE with printable text.
 */
SONDE_INLINE int mysql_infer(const __u8 *w, __u32 n)
{
	__u32 len, end, found;

	if (n < 8)
		return H1_INFER_NONE;
	len = my_len(w);
	if (L7M_AT(w, 3) != 0)
		return H1_INFER_NONE;
	if (L7M_AT(w, 4) == 0x0a) {
		if (len < 40 || len > 1024 || !l7m_is_digit(L7M_AT(w, 5)))
			return H1_INFER_NONE;
		end = 5 + sql_cstr_len(w, n, 5, 64, &found);
		if (!found || end < 8 || !sql_all_printable(w, n, 5, end - 5))
			return H1_INFER_NONE;
		/* after the version: thread id (4), scramble (8), filler 0 */
		if (end + 14 <= n && L7M_AT(w, end + 13) != 0)
			return H1_INFER_NONE;
		return H1_INFER_RESPONSE;
	}
	if ((L7M_AT(w, 4) == MY_COM_QUERY || L7M_AT(w, 4) == MY_COM_STMT_PREPARE) && len >= 4 &&
	    len < (1u << 20) && sql_alpha(L7M_AT(w, 5)) && sql_all_printable(w, n, 5, len - 1))
		return H1_INFER_REQUEST;
	return H1_INFER_NONE;
}

/* ---- requests ------------------------------------------------------------- */

/* The client's handshake response (or SSLRequest): capabilities. */
SONDE_INLINE void my_handshake(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
			       __u32 wlen, __u32 len)
{
	__u32 caps;

	if (wlen < 8 || len < 32)
		return;
	caps = sql_le32(w, 4);
	if (!(caps & MY_CLIENT_PROTOCOL_41))
		return;
	if (len == 32 && (caps & MY_CLIENT_SSL)) {
		/* SSLRequest: TLS from here on, both ways */
		st->phase = MY_PH_OPAQUE;
		c->resp.phase = MY_PH_OPAQUE;
		return;
	}
	st->st2 = (st->st2 & ~MY_EOF_MODE) |
		  (caps & MY_CLIENT_DEPRECATE_EOF ? MY_EOF_DEPRECATED : MY_EOF_CLASSIC);
}

/* Fields of a command packet. */
SONDE_INLINE void my_command_fields(__u8 cmd, const __u8 *w, __u32 wlen, __u32 len,
				    struct l7m_info *in)
{
	__u32 pos = 5;

	in->ev = L7M_EV_REQUEST;
	in->op = cmd;
	if (cmd == MY_COM_QUERY || cmd == MY_COM_STMT_PREPARE) {
		/* MySQL 8 query attributes: parameter count 0, one parameter set */
		if (len >= 3 && wlen > 6 && L7M_AT(w, 5) == 0 && L7M_AT(w, 6) == 1)
			pos = 7;
		sql_text(in, w, wlen, pos, len + 4 - pos);
	} else if (cmd == MY_COM_INIT_DB) {
		sql_name(in, w, wlen, 5, len - 1);
	} else if (cmd >= MY_COM_STMT_EXECUTE && cmd <= MY_COM_STMT_FETCH && len >= 5 && wlen >= 9) {
		in->id = sql_le32(w, 5);
		in->has_id = 1; /* kept for the record; responses still pair in order */
	}
}

SONDE_INLINE int mysql_request_step(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
				    __u32 wlen, int at_end, struct l7m_info *in)
{
	__u32 len, seq;
	__u8 cmd;

	if (st->phase == MY_PH_OPAQUE) {
		in->consume = MY_OPAQUE_SKIP;
		return L7M_OK;
	}
	if (st->phase == MY_PH_DROP) {
		/* the payload of a command that gets no response */
		st->phase = MY_PH_IDLE;
		in->consume = st->st0;
		in->ev = L7M_EV_DROP;
		return L7M_OK;
	}
	if (wlen < 4)
		return at_end ? L7M_NEED : L7M_LOST;
	len = my_len(w);
	seq = L7M_AT(w, 3);
	if (sql_need_more(wlen, at_end, (__u64)len + 4))
		return L7M_NEED;
	if (seq != 0 || (st->st1 & MY_Q_CONT)) {
		/* handshake, authentication, LOCAL INFILE data, a long packet's rest */
		if (seq == 1 && !(st->st1 & MY_Q_CONT))
			my_handshake(c, st, w, wlen, len);
		if (len == MY_MAX_PAYLOAD)
			st->st1 |= MY_Q_CONT;
		else
			st->st1 &= ~MY_Q_CONT;
		in->consume = len + 4;
		return L7M_OK;
	}
	cmd = L7M_AT(w, 4);
	if (len == 0 || !my_known_command(cmd))
		return L7M_LOST;
	/* framed: commit */
	if (len == MY_MAX_PAYLOAD)
		st->st1 |= MY_Q_CONT;
	my_command_fields(cmd, w, wlen, len, in);
	if (my_no_response(cmd)) {
		/* the header is the request, the payload drops it */
		st->phase = MY_PH_DROP;
		st->st0 = len;
		in->consume = 4;
	} else {
		in->consume = len + 4;
	}
	return L7M_OK;
}

/* ---- responses ------------------------------------------------------------ */

SONDE_INLINE void my_end(struct l7m_stream *st, struct l7m_info *in)
{
	st->phase = MY_PH_IDLE;
	st->started = 0;
	st->st0 = st->st2 = 0;
	st->st1 &= MY_R_SYNCED;
	in->ev = L7M_EV_RESPONSE;
}

SONDE_INLINE void my_reply(struct l7m_acc *a, __u8 kind)
{
	if (!a->reply)
		a->reply = kind;
}

/* ERR: the error number and SQLSTATE ("#42S02"). */
SONDE_INLINE void my_error(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 len)
{
	my_reply(a, 'E');
	a->flags |= SONDE_F_ERROR;
	if (wlen >= 7 && len >= 3)
		a->code = sql_le16(w, 5);
	if (len >= 9 && wlen > 7 && L7M_AT(w, 7) == '#')
		l7m_detail_set(a, w, wlen, 8, 5);
}

/*
 * The end of a result: OK (0x00 or 0xfe with CLIENT_DEPRECATE_EOF) or EOF
 * (0xfe, 5 bytes). Adds affected rows to the count; returns the server
 * status flags (0 when not in the window).
 */
SONDE_INLINE __u32 my_terminator(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 len)
{
	__u32 rows = 0, id = 0, n1, n2;

	if (len == 5 && L7M_AT(w, 4) == 0xfe)
		return wlen >= 9 ? sql_le16(w, 7) : 0;
	n1 = my_lenenc(w, wlen, 5, &rows);
	if (!n1)
		return 0;
	a->count += rows;
	n2 = my_lenenc(w, wlen, 5 + n1, &id);
	if (!n2 || 5 + n1 + n2 + 2 > wlen)
		return 0;
	return sql_le16(w, 5 + n1 + n2);
}

/* What the packets showed of CLIENT_DEPRECATE_EOF, when the handshake did not say. */
SONDE_INLINE void my_learn_mode(struct l7m_conn *c, __u32 mode)
{
	if ((c->req.st2 & MY_EOF_MODE) == MY_EOF_UNKNOWN)
		c->req.st2 |= mode;
}

/* Definitions done: an EOF may follow (classic), or the result goes on. */
SONDE_INLINE void my_defs_done(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
			       __u32 wlen, __u32 len, struct l7m_info *in)
{
	__u32 p = len + 4, mode = c->req.st2 & MY_EOF_MODE;

	if (!(st->st1 & MY_R_PREPARE)) {
		st->phase = MY_PH_AFTER_DEFS;
		return;
	}
	if (st->st2) {
		st->phase = MY_PH_GROUP_EOF;
		return;
	}
	/* the prepare's last definition: is an EOF still to come? */
	if (mode == MY_EOF_UNKNOWN && p + 5 <= wlen) {
		int eof = L7M_AT(w, p) == 5 && L7M_AT(w, p + 1) == 0 && L7M_AT(w, p + 2) == 0 &&
			  L7M_AT(w, p + 3) == ((L7M_AT(w, 3) + 1) & 0xff) && L7M_AT(w, p + 4) == 0xfe;

		mode = eof ? MY_EOF_CLASSIC : MY_EOF_DEPRECATED;
		my_learn_mode(c, mode);
	}
	/* unknown and out of view: end here; a classic EOF after it has a
	 * sequence id other than 1 and is skipped like any stray packet */
	if (mode == MY_EOF_CLASSIC)
		st->phase = MY_PH_EOF_END;
	else
		my_end(st, in);
}

/* The column count of a result set; 0 if the packet is not one. */
SONDE_INLINE int my_result_set(struct l7m_stream *st, const __u8 *w, __u32 wlen, __u32 len)
{
	__u32 n = 0, size = my_lenenc(w, wlen, 4, &n), defs;

	if (!size || size == 9 || n == 0 || n > MY_MAX_COLUMNS || len < size || len > size + 1)
		return 0;
	defs = n;
	/* MariaDB's metadata cache: a byte after the count says whether the
	 * definitions follow */
	if (len == size + 1 && 4 + size < wlen && L7M_AT(w, 4 + size) == 0)
		defs = 0;
	st->st0 = defs;
	st->phase = defs ? MY_PH_DEFS : MY_PH_AFTER_DEFS;
	return 1;
}

/* COM_STMT_PREPARE's OK: statement id, columns, parameters. */
SONDE_INLINE int my_prepared(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
			     __u32 wlen, __u32 len, struct l7m_info *in)
{
	struct l7m_slot *s;
	__u32 cols, params;


	if (len < 12 || wlen < 13)
		return L7M_LOST;
	cols = sql_le16(w, 9);
	params = sql_le16(w, 11);
	if (cols > MY_MAX_COLUMNS || params > 0xffff)
		return L7M_LOST;
	my_reply(&c->acc, 'P');
	c->acc.count = params;
	/* the id the server assigned goes to the request's record */
	s = sql_answered_slot(c);
	if (s)
		s->id = sql_le32(w, 5);
	st->st1 |= MY_R_PREPARE;
	if (params) {
		st->st0 = params;
		st->st2 = cols;
		st->phase = MY_PH_DEFS;
	} else if (cols) {
		st->st0 = cols;
		st->st2 = 0;
		st->phase = MY_PH_DEFS;
	} else {
		my_end(st, in);
	}
	return L7M_OK;
}

/* The first packet of a result (of a response, or after MORE_RESULTS). */
SONDE_INLINE int my_first(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w, __u32 wlen,
			  __u32 len, int first, struct l7m_info *in)
{
	__u8 h = L7M_AT(w, 4), cmd = st->st1 >> 8;

	if (first && (cmd == MY_COM_FIELD_LIST || cmd == MY_COM_STMT_FETCH) && h != 0xff &&
	    h != 0xfe) {
		/* definitions or (binary, 0x00-led) rows right away, up to an EOF */
		my_reply(&c->acc, 'R');
		st->phase = MY_PH_ROWS;
		c->acc.count++;
		return L7M_OK;
	}
	if (h == 0x00 && first && cmd == MY_COM_STMT_PREPARE)
		return my_prepared(c, st, w, wlen, len, in);
	if (h == 0x00) {
		my_reply(&c->acc, 'O');
		if (!(my_terminator(&c->acc, w, wlen, len) & MY_MORE_RESULTS))
			my_end(st, in);
		return L7M_OK;
	}
	if (h == 0xff) {
		/* MariaDB progress reports are ERR packets with number 0xffff */
		if (wlen >= 7 && sql_le16(w, 5) == 0xffff)
			return L7M_OK;
		my_error(&c->acc, w, wlen, len);
		my_end(st, in);
		return L7M_OK;
	}
	if (h == 0xfe) {
		my_reply(&c->acc, 'F');
		my_end(st, in);
		return L7M_OK;
	}
	if (h == 0xfb) {
		/* LOCAL INFILE: the client sends the file, then the server's OK/ERR */
		my_reply(&c->acc, 'I');
		return L7M_OK;
	}
	if (first && cmd == MY_COM_STATISTICS) {
		my_reply(&c->acc, 'S');
		my_end(st, in);
		return L7M_OK;
	}
	if (!my_result_set(st, w, wlen, len))
		return L7M_LOST;
	my_reply(&c->acc, 'R');
	return L7M_OK;
}

/* A row, or the packet that ends the rows. */
SONDE_INLINE void my_row(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w, __u32 wlen,
			 __u32 len, struct l7m_info *in)
{
	__u8 h = L7M_AT(w, 4);

	if (h == 0xfe && len < MY_MAX_PAYLOAD) {
		if (my_terminator(&c->acc, w, wlen, len) & MY_MORE_RESULTS)
			st->phase = MY_PH_FIRST;
		else
			my_end(st, in);
	} else if (h == 0xff) {
		my_error(&c->acc, w, wlen, len);
		my_end(st, in);
	} else {
		c->acc.count++;
	}
}

SONDE_INLINE int my_is_eof(const __u8 *w, __u32 len)
{
	return len == 5 && L7M_AT(w, 4) == 0xfe;
}

/* A packet inside a response that has started. */
SONDE_INLINE int my_response_packet(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
				    __u32 wlen, __u32 len, int first, struct l7m_info *in)
{
	__u8 ph = st->phase;

	if (ph == MY_PH_FIRST)
		return my_first(c, st, w, wlen, len, first, in);
	if (ph == MY_PH_GROUP_EOF) {
		/* prepare: between the parameters and the columns */
		st->st0 = st->st2;
		st->st2 = 0;
		st->phase = MY_PH_DEFS;
		if (my_is_eof(w, len)) {
			my_learn_mode(c, MY_EOF_CLASSIC);
			return L7M_OK;
		}
		my_learn_mode(c, MY_EOF_DEPRECATED);
		ph = MY_PH_DEFS;
	}
	if (ph == MY_PH_DEFS) {
		if (st->st0 > 0)
			st->st0--;
		if (st->st0 == 0)
			my_defs_done(c, st, w, wlen, len, in);
		return L7M_OK;
	}
	if (ph == MY_PH_EOF_END) {
		if (!my_is_eof(w, len))
			return L7M_LOST;
		my_end(st, in);
		return L7M_OK;
	}
	if (ph == MY_PH_AFTER_DEFS) {
		st->phase = MY_PH_ROWS;
		if (my_is_eof(w, len)) {
			my_learn_mode(c, MY_EOF_CLASSIC);
			/* a cursor was opened: rows come with COM_STMT_FETCH */
			if (wlen >= 9 && (sql_le16(w, 7) & MY_CURSOR_EXISTS))
				my_end(st, in);
			return L7M_OK;
		}
		my_learn_mode(c, MY_EOF_DEPRECATED);
	}
	my_row(c, st, w, wlen, len, in);
	return L7M_OK;
}

/*
 * Any four bytes frame as a packet header, so a response stream that has no
 * framing yet (a loss, or a connection found mid-way) takes only a packet
 * that cannot be much else: the greeting, or the first packet of a response
 * (sequence id 1) led by OK, ERR, EOF or a column count.
 */
SONDE_INLINE int my_resync_candidate(const __u8 *w, __u32 wlen, __u32 len, __u32 seq)
{
	__u8 h = wlen > 4 ? L7M_AT(w, 4) : 0;

	if (seq == 0)
		return h == 0x0a && len >= 40 && len <= 1024;
	if (seq != 1 || wlen < 5)
		return 0;
	if (h == 0x00)
		return len >= 7 && len < 1024;
	if (h == 0xff)
		return len >= 3 && len < 1024;
	if (h == 0xfe)
		return len >= 5 && len < 1024;
	return h > 0 && h < 0xfb && len <= 2;
}

SONDE_INLINE int mysql_response_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st,
				     const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	struct l7m_slot *s;
	__u32 len, seq;
	int first = 0;

	if (st->phase == MY_PH_OPAQUE) {
		in->consume = MY_OPAQUE_SKIP;
		return L7M_OK;
	}
	if (wlen < 4)
		return at_end ? L7M_NEED : L7M_LOST;
	len = my_len(w);
	seq = L7M_AT(w, 3);
	if (sql_need_more(wlen, at_end, (__u64)len + 4))
		return L7M_NEED;
	if (!(st->st1 & MY_R_SYNCED)) {
		if (!my_resync_candidate(w, wlen, len, seq))
			return L7M_LOST;
		st->st1 |= MY_R_SYNCED;
		if (seq == 1 && (c->req.st2 & MY_RESP_WAS_SYNCED))
			sql_abandon_older(ctx, c);
		c->req.st2 |= MY_RESP_WAS_SYNCED;
	}
	in->consume = len + 4;
	if (st->st1 & MY_R_CONT) {
		/* the rest of a packet of 16 MB or more */
		if (len != MY_MAX_PAYLOAD)
			st->st1 &= ~MY_R_CONT;
		return L7M_OK;
	}
	if (!st->started) {
		/* greeting, authentication, a stray EOF: not an answer */
		if (seq != 1)
			return L7M_OK;
		if (len == 0)
			return L7M_LOST;
		l7m_acc_reset(&c->acc);
		s = sql_answered_slot(c);
		st->started = 1;
		st->phase = MY_PH_FIRST;
		st->st0 = st->st2 = 0;
		st->st1 = (st->st1 & MY_R_SYNCED) | (s ? (__u32)s->op << 8 : 0);
		first = 1;
	}
	if (len == 0)
		return L7M_LOST;
	if (len == MY_MAX_PAYLOAD)
		st->st1 |= MY_R_CONT;
	return my_response_packet(c, st, w, wlen, len, first, in);
}

/* The step function of the message engine for MySQL and MariaDB. */
SONDE_INLINE int mysql_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st, int is_req,
			    const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	if (is_req)
		return mysql_request_step(c, st, w, wlen, at_end, in);
	return mysql_response_step(ctx, c, st, w, wlen, at_end, in);
}

#endif /* SONDE_PROTO_MYSQL_H */
