/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * memcached text protocol for the message engine (proto/l7m.h).
 *
 * A request is one command line ("get k1 k2\r\n"), followed for the storage
 * commands (set, add, replace, append, prepend, cas) by a data block of the
 * <bytes> the line announces plus "\r\n". A response is zero or more
 * "VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n" blocks or "STAT" lines
 * closed by "END\r\n", or one result line (STORED, NOT_FOUND, DELETED, a
 * number for incr/decr, ERROR, CLIENT_ERROR <msg> ...). Pairing is FIFO;
 * a command ending in "noreply" and "quit" get no response (L7M_EV_DROP).
 *
 * Lines are walked word by word with a small state kept in the stream
 * (st1, st2), so a line longer than the window (a 250-byte key, a long
 * "get k1 ... k100") is followed across windows and syscalls; data blocks are
 * skipped by length, never read.
 *
 * Record fields: op = command (MC_CMD_*), text = command, a space and the key
 * (the first key of a multi-key get), route = the command; reply = result
 * class (MC_R_*), count = VALUE blocks returned (hits of a get) or STAT
 * lines, detail = the result line ("STORED", "CLIENT_ERROR bad data chunk");
 * SONDE_F_ERROR on ERROR, CLIENT_ERROR and SERVER_ERROR.
 * The binary protocol (magic 0x80) and the meta commands (mg, ms ...) are
 * not parsed: they are never inferred as memcached.
 */
#ifndef SONDE_PROTO_MEMCACHED_H
#define SONDE_PROTO_MEMCACHED_H

#include "proto/l7m.h"

/* Commands (the record's op). */
enum mc_cmd {
	MC_CMD_NONE = 0,
	MC_CMD_GET, MC_CMD_GETS, MC_CMD_GAT, MC_CMD_GATS,
	MC_CMD_SET, MC_CMD_ADD, MC_CMD_REPLACE, MC_CMD_APPEND, MC_CMD_PREPEND, MC_CMD_CAS,
	MC_CMD_DELETE, MC_CMD_INCR, MC_CMD_DECR, MC_CMD_TOUCH,
	MC_CMD_STATS, MC_CMD_VERSION, MC_CMD_FLUSH_ALL, MC_CMD_VERBOSITY, MC_CMD_QUIT,
	MC_CMD__COUNT,
};

/* Result classes (the record's reply). */
enum mc_result {
	MC_R_NONE = 0,
	MC_R_HIT,          /* END after one or more VALUE blocks */
	MC_R_MISS,         /* END with no VALUE block */
	MC_R_STORED, MC_R_NOT_STORED, MC_R_EXISTS, MC_R_NOT_FOUND, MC_R_DELETED,
	MC_R_TOUCHED,
	MC_R_NUMBER,       /* incr/decr: the new value */
	MC_R_OK, MC_R_VERSION,
	MC_R_STATS,        /* END after STAT lines */
	MC_R_RESET,
	MC_R_ERROR, MC_R_CLIENT_ERROR, MC_R_SERVER_ERROR,
	/* not terminal: lines inside a response */
	MC_R_VALUE, MC_R_END, MC_R_STAT,
};

#define MC_WORD_MAX 16    /* longest command or result word, with room to spare */
#define MC_LINE_MAX 4096  /* memcached refuses longer command lines (2048) */
#define MC_DATA_MAX (1u << 30)
#define MC_SCAN (L7M_CARRY + L7M_WIN) /* a window is never longer */

/* Command words, indexed by enum mc_cmd. */
static const char mc_cmds[MC_CMD__COUNT][MC_WORD_MAX] H1_RODATA = {
	"", "get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas",
	"delete", "incr", "decr", "touch", "stats", "version", "flush_all", "verbosity", "quit",
};

/* Result words, in the order of mc_res_codes. */
#define MC_NRES 16
static const char mc_res_words[MC_NRES][MC_WORD_MAX] H1_RODATA = {
	"VALUE", "END", "STAT", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED",
	"TOUCHED", "OK", "VERSION", "RESET", "ERROR", "CLIENT_ERROR", "SERVER_ERROR", "",
};
static const __u8 mc_res_codes[MC_NRES] H1_RODATA = {
	MC_R_VALUE, MC_R_END, MC_R_STAT, MC_R_STORED, MC_R_NOT_STORED, MC_R_EXISTS,
	MC_R_NOT_FOUND, MC_R_DELETED, MC_R_TOUCHED, MC_R_OK, MC_R_VERSION, MC_R_RESET,
	MC_R_ERROR, MC_R_CLIENT_ERROR, MC_R_SERVER_ERROR, MC_R_NONE,
};
static const char mc_noreply[8] H1_RODATA = "noreply";

/* st->phase */
#define MC_PH_START 0 /* at the start of a line */
#define MC_PH_LINE  1 /* inside a line whose first word was taken */

/* The line walker's state, packed in st->st1 (st->st2 holds the number). */
#define MC_W_WORDS   0xffu      /* words begun so far */
#define MC_W_IN      (1u << 8)  /* inside a word */
#define MC_W_MSHIFT  9          /* 3 bits: chars of "noreply" matched */
#define MC_W_MATCH   (7u << MC_W_MSHIFT)
#define MC_W_MISS    (1u << 12) /* this word is not "noreply" */
#define MC_W_NOREPLY (1u << 13) /* the last finished word was "noreply" */
#define MC_W_BADNUM  (1u << 14) /* the number word is not a number */
#define MC_W_LSHIFT  16         /* the line's length so far */

/* st->st0 while in a line: request, the command; response, the line's result */

SONDE_INLINE int mc_is_sep(__u8 ch)
{
	return ch == ' ' || ch == '\r' || ch == '\t';
}

/* Length of the word at w[pos] (up to a separator or LF), or -1 when the
 * window ends first or it is longer than MC_WORD_MAX. */
SONDE_INLINE int mc_word_len(const __u8 *w, __u32 wlen, __u32 pos)
{
	__u32 i;

	for (i = 0; i < MC_WORD_MAX; i++) {
		__u8 ch;

		if (pos + i >= wlen)
			return -1;
		ch = L7M_AT(w, pos + i);
		if (mc_is_sep(ch) || ch == '\n')
			return i;
	}
	return -1;
}

/* Is w[0..len) the word s? */
SONDE_INLINE int mc_word_is(const __u8 *w, __u32 len, const char *s)
{
	__u32 i;

	for (i = 0; i < MC_WORD_MAX; i++) {
		if (i == len)
			return s[i] == 0;
		if ((__u8)s[i] != L7M_AT(w, i))
			return 0;
	}
	return 0;
}

SONDE_INLINE __u8 mc_lookup_cmd(const __u8 *w, __u32 len)
{
	__u32 k;

	if (!len)
		return MC_CMD_NONE;
	for (k = 1; k < MC_CMD__COUNT; k++)
		if (mc_word_is(w, len, mc_cmds[k]))
			return k;
	return MC_CMD_NONE;
}

/* The result class of a response line's first word (MC_R_NONE: not one). */
SONDE_INLINE __u8 mc_lookup_result(const __u8 *w, __u32 len)
{
	__u32 k;

	if (!len)
		return MC_R_NONE;
	if (l7m_is_digit(L7M_AT(w, 0))) {
		for (k = 1; k < MC_WORD_MAX; k++)
			if (k < len && !l7m_is_digit(L7M_AT(w, k)))
				return MC_R_NONE;
		return MC_R_NUMBER;
	}
	for (k = 0; k < MC_NRES - 1; k++)
		if (mc_word_is(w, len, mc_res_words[k]))
			return mc_res_codes[k];
	return MC_R_NONE;
}

SONDE_INLINE int mc_is_storage(__u8 cmd)
{
	return cmd >= MC_CMD_SET && cmd <= MC_CMD_CAS;
}

/* Which word (1-based) of a line is the <bytes> of a data block, 0: none. */
SONDE_INLINE __u32 mc_number_word(int is_req, __u8 what)
{
	if (is_req)
		return mc_is_storage(what) ? 5 : 0;
	return what == MC_R_VALUE ? 4 : 0;
}

/*
 * Walk a line from w[from] with the walker state *ws / *num: count words,
 * read the decimal number of word `numw`, note whether the last word is
 * "noreply". Returns the offset just past the line's LF, or 0 when the
 * window ends first (the state then carries on with the next window).
 */
SONDE_INLINE __u32 mc_walk(const __u8 *w, __u32 wlen, __u32 from, __u32 *ws, __u32 *num,
			   __u32 numw)
{
	__u32 s = *ws, n = *num, i;

	for (i = 0; i < MC_SCAN; i++) {
		__u32 p = from + i, m;
		__u8 ch;

		if (p >= wlen)
			break;
		ch = L7M_AT(w, p);
		if (ch == '\n') {
			*ws = s;
			*num = n;
			return p + 1;
		}
		if (mc_is_sep(ch)) {
			if ((s & MC_W_IN) && !(s & MC_W_MISS) &&
			    ((s & MC_W_MATCH) >> MC_W_MSHIFT) == 7)
				s |= MC_W_NOREPLY;
			s &= ~MC_W_IN;
			continue;
		}
		if (!(s & MC_W_IN)) {
			__u32 words = (s & MC_W_WORDS) + 1;

			if (words > MC_W_WORDS)
				words = MC_W_WORDS;
			s &= ~(MC_W_WORDS | MC_W_MATCH | MC_W_MISS | MC_W_NOREPLY);
			s |= MC_W_IN | words;
		}
		m = (s & MC_W_MATCH) >> MC_W_MSHIFT;
		if (m < 7 && (__u8)mc_noreply[m & 7] == ch)
			s = (s & ~MC_W_MATCH) | ((m + 1) << MC_W_MSHIFT);
		else
			s |= MC_W_MISS;
		if (numw && (s & MC_W_WORDS) == numw) {
			if (!l7m_is_digit(ch) || n > MC_DATA_MAX / 10)
				s |= MC_W_BADNUM;
			else
				n = n * 10 + (ch - '0');
		}
	}
	*ws = s;
	*num = n;
	return 0;
}

/* A line's first word is framed at w[0..len): the walker state just after it. */
SONDE_INLINE __u32 mc_walk_begin(__u32 len)
{
	return 1u | ((__u32)len << MC_W_LSHIFT);
}

/* Copy word number `nth` (1-based) of the line into the request text, after
 * the command; stops at the window's end (flagged truncated). */
SONDE_INLINE void mc_text_key(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 from,
			      __u32 nth)
{
	__u32 i, words = 1, start = 0, in_word = 1, len = 0, ended = 0;

	for (i = 0; i < MC_SCAN; i++) {
		__u32 p = from + i;
		__u8 ch;

		if (p >= wlen)
			break;
		ch = L7M_AT(w, p);
		if (mc_is_sep(ch) || ch == '\n') {
			if (in_word && words == nth) {
				ended = 1;
				break;
			}
			in_word = 0;
			if (ch == '\n')
				break;
			continue;
		}
		if (!in_word) {
			in_word = 1;
			words++;
			if (words == nth)
				start = p;
		}
		if (words == nth)
			len++;
	}
	if (!len)
		return;
	l7m_text_char(in, ' ');
	l7m_text_append(in, w, wlen, start, len);
	if (!ended)
		in->flags |= SONDE_F_PATH_TRUNCATED;
}

/*
 * The end of a line walked so far: frame the data block it announces.
 * Returns the bytes the token takes past `end`, or -1 when the line does not
 * frame (a storage command or VALUE line without a good <bytes>).
 */
SONDE_INLINE __s64 mc_line_data(__u32 ws, __u32 num, __u32 numw)
{
	if (!numw)
		return 0;
	if ((ws & MC_W_BADNUM) || (ws & MC_W_WORDS) < numw)
		return -1;
	return (__s64)num + 2;
}

/* A line ended at end (its data block framed): the event it makes. */
SONDE_INLINE void mc_line_done(struct l7m_conn *c, struct l7m_stream *st, int is_req, __u8 what,
			       __u32 ws, struct l7m_info *in)
{
	st->phase = MC_PH_START;
	st->st0 = st->st1 = st->st2 = 0;
	if (is_req) {
		if ((ws & MC_W_NOREPLY) || what == MC_CMD_QUIT)
			in->ev = L7M_EV_DROP;
		return;
	}
	if (what == MC_R_VALUE || what == MC_R_STAT) {
		st->started = 1;
		return;
	}
	st->started = 0;
	if (what == MC_R_END) {
		if (c->acc.reply == MC_R_STAT)
			what = MC_R_STATS;
		else
			what = c->acc.count ? MC_R_HIT : MC_R_MISS;
	}
	c->acc.reply = what;
	if (what >= MC_R_ERROR && what <= MC_R_SERVER_ERROR)
		c->acc.flags |= SONDE_F_ERROR;
	in->ev = L7M_EV_RESPONSE;
}

/* The first token of a line: its first word, the request's fields. */
SONDE_INLINE int mc_line_start(struct l7m_conn *c, struct l7m_stream *st, int is_req,
			       const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	int len = mc_word_len(w, wlen, 0);
	__u32 ws, num = 0, end, numw;
	__u8 what;
	__s64 data;

	if (len < 0 && at_end && wlen <= L7M_CARRY && !l7m_line_end(w, wlen, 0))
		return L7M_NEED;
	if (len <= 0)
		return L7M_LOST;
	what = is_req ? mc_lookup_cmd(w, len) : mc_lookup_result(w, len);
	if (what == MC_CMD_NONE)
		return L7M_LOST;
	/* a short line cut by the end of the syscall: wait for the rest, so
	 * the fields come whole */
	if (at_end && wlen <= L7M_CARRY && !l7m_line_end(w, wlen, 0))
		return L7M_NEED;
	numw = mc_number_word(is_req, what);
	ws = mc_walk_begin(len);
	end = mc_walk(w, wlen, len, &ws, &num, numw);
	/* framed: commit */
	if (is_req) {
		in->ev = L7M_EV_REQUEST;
		in->op = what;
		l7m_text_append(in, w, wlen, 0, len);
		in->route_len = in->text_len;
		mc_text_key(in, w, wlen, len, what == MC_CMD_GAT || what == MC_CMD_GATS ? 3 : 2);
	} else {
		if (what == MC_R_VALUE)
			c->acc.count++;
		if (what == MC_R_STAT) {
			c->acc.count++;
			c->acc.reply = MC_R_STAT;
		}
		if (what != MC_R_VALUE && what != MC_R_STAT && what != MC_R_END) {
			__u32 dl = end ? end - 1 : wlen;

			if (dl && end && L7M_AT(w, dl - 1) == '\r')
				dl--;
			l7m_detail_set(&c->acc, w, wlen, 0, dl);
		} else if (what == MC_R_END) {
			l7m_detail_set(&c->acc, w, wlen, 0, len);
		}
	}
	st->st0 = what;
	/* a whole line without noreply is one token; otherwise the first word
	 * is, and the walker takes the rest (the request event comes first) */
	if (end && !(is_req && (ws & MC_W_NOREPLY))) {
		data = mc_line_data(ws, num, numw);
		if (data < 0)
			return L7M_LOST;
		in->consume = end + data;
		mc_line_done(c, st, is_req, what, ws, in);
		return L7M_OK;
	}
	st->phase = MC_PH_LINE;
	st->st1 = mc_walk_begin(len);
	st->st2 = 0;
	in->consume = len;
	return L7M_OK;
}

/* A token inside a line: walk on; at its end, frame the data block. */
SONDE_INLINE int mc_line_more(struct l7m_conn *c, struct l7m_stream *st, int is_req,
			      const __u8 *w, __u32 wlen, struct l7m_info *in)
{
	__u32 ws = st->st1, num = st->st2, numw = mc_number_word(is_req, st->st0);
	__u32 end = mc_walk(w, wlen, 0, &ws, &num, numw);
	__u32 line = (ws >> MC_W_LSHIFT) + (end ? end : wlen);
	__s64 data;

	if (line > MC_LINE_MAX)
		return L7M_LOST;
	if (!end) {
		st->st1 = (ws & ((1u << MC_W_LSHIFT) - 1)) | (line << MC_W_LSHIFT);
		st->st2 = num;
		in->consume = wlen;
		return L7M_OK;
	}
	data = mc_line_data(ws, num, numw);
	if (data < 0)
		return L7M_LOST;
	in->consume = end + data;
	mc_line_done(c, st, is_req, st->st0, ws, in);
	return L7M_OK;
}

/* The step function of the message engine for memcached. */
SONDE_INLINE int memcached_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st,
				int is_req, const __u8 *w, __u32 wlen, int at_end,
				struct l7m_info *in)
{
	(void)ctx;
	if (st->phase == MC_PH_LINE)
		return mc_line_more(c, st, is_req, w, wlen, in);
	return mc_line_start(c, st, is_req, w, wlen, at_end, in);
}

/*
 * Does w start a memcached text command? The whole first line must be in
 * the window, start with a lower-case command word, and the storage
 * commands must carry their numbers: "set <key> <flags> <exptime> <bytes>".
 */
SONDE_INLINE int memcached_infer(const __u8 *w, __u32 n)
{
	int len = mc_word_len(w, n, 0);
	__u32 end, ws, num = 0, i;
	__u8 cmd;

	if (len <= 0)
		return H1_INFER_NONE;
	cmd = mc_lookup_cmd(w, len);
	if (cmd == MC_CMD_NONE)
		return H1_INFER_NONE;
	ws = mc_walk_begin(len);
	end = mc_walk(w, n, len, &ws, &num, mc_number_word(1, cmd));
	if (end < 2 || L7M_AT(w, end - 2) != '\r')
		return H1_INFER_NONE;
	/* key and argument bytes are printable: no control characters */
	for (i = 0; i < MC_SCAN; i++) {
		__u8 ch;

		if (i + 2 >= end)
			break;
		ch = L7M_AT(w, i);
		if (ch < 0x21 && ch != ' ')
			return H1_INFER_NONE;
		if (ch == 0x7f)
			return H1_INFER_NONE;
	}
	if (mc_is_storage(cmd)) {
		if (mc_line_data(ws, num, 5) < 0 || (ws & MC_W_WORDS) > (cmd == MC_CMD_CAS ? 7 : 6))
			return H1_INFER_NONE;
	} else if (cmd <= MC_CMD_GATS || cmd == MC_CMD_DELETE || cmd == MC_CMD_INCR ||
		   cmd == MC_CMD_DECR || cmd == MC_CMD_TOUCH) {
		if ((ws & MC_W_WORDS) < 2)
			return H1_INFER_NONE; /* these take a key */
	}
	return H1_INFER_REQUEST;
}

#endif /* SONDE_PROTO_MEMCACHED_H */
