/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The message engine: framing, pairing and carry-over for every protocol that
 * is not HTTP/1 (Redis, PostgreSQL, MySQL, memcached, DNS, MQTT, Kafka,
 * MongoDB, HTTP/2). Pure C, shared by the BPF socket tracer and the native
 * tests, like proto/http1.h.
 *
 * Model: a connection has a request stream and a response stream (which
 * direction is which is learnt by inference). Each stream is cut into tokens
 * by the protocol's step function: one call looks at a window of the bytes at
 * the current position (up to L7M_WIN, plus up to L7M_CARRY bytes left over
 * from the previous syscall) and says how many bytes the token takes. A token
 * may be longer than the window (a body, a bulk string, a row): the engine
 * skips the rest arithmetically, across syscalls, without reading it.
 *
 * A step may also say that a request starts (L7M_EV_REQUEST, fields in the
 * info) or that the response to a request ended (L7M_EV_RESPONSE, fields
 * gathered in the connection's accumulator). Requests take one of
 * SONDE_PIPELINE_DEPTH slots; a response completes the oldest live slot
 * (FIFO protocols) or the live slot with the same id (DNS, Kafka, MongoDB,
 * MQTT, HTTP/2) and is reported through sonde_l7m_emit().
 *
 * A step function has the signature of l7m_step_fn below and returns
 * L7M_OK (info->consume set), L7M_NEED (the token's head is longer than the
 * window: carried over to the next syscall when the window holds all bytes
 * left, framing lost otherwise) or L7M_LOST (not this protocol's framing: the
 * stream waits for a syscall that starts a message, and is counted).
 *
 * The includer provides sonde_read_user(), sonde_stat_add() and
 *   sonde_l7m_emit(ctx, conn, slot, acc, ts_end, flags)
 * and includes proto/l7m_dispatch.h, which defines l7m_step_dispatch() over
 * every parser; called with a constant protocol it folds to one parser, so
 * each BPF program carries only its own.
 */
#ifndef SONDE_PROTO_L7M_H
#define SONDE_PROTO_L7M_H

#include "events.h"
#include "proto/http1.h" /* h1_meta, h1_cursor, H1_DIR_*, H1_STAT, barriers */

#ifndef L7M_WIN
#define L7M_WIN 128   /* bytes read from user memory per step */
#endif
#define L7M_CARRY 16  /* bytes of an unfinished token head kept to the next syscall */
#define L7M_BUF 256   /* steps index the window masked with L7M_BUF - 1; the buffer
                      * itself is L7M_CARRY + L7M_BUF bytes (struct feed_work) */
#ifndef L7M_STEPS
#define L7M_STEPS 16  /* steps per BPF program run */
#endif
#define L7M_DETAIL SONDE_DETAIL_MAX
#define L7M_TEXT_BUF 128 /* a power of 2 above SONDE_PATH_MAX */
#ifndef L7M_LINE_MAX
#define L7M_LINE_MAX L7M_WIN /* bytes a line search looks at */
#endif

/* Step results. */
#define L7M_OK   0
#define L7M_NEED 1
#define L7M_LOST 2

/* What a step found (l7m_info.ev). */
enum l7m_ev {
	L7M_EV_NONE = 0,
	L7M_EV_REQUEST = 1,  /* a request starts here: op, op2, id, text in the info */
	L7M_EV_RESPONSE = 2, /* the response ended: fields in the accumulator */
	L7M_EV_DROP = 3,     /* the request in the newest slot gets no response (MySQL
			      * COM_QUIT, MQTT QoS 0 publish ...): free it unreported */
	L7M_EV_DETAIL = 4,   /* (engine only) a step named detail bytes to keep */
};

/* Per-stream parse state. st0..st2 belong to the protocol's step function. */
struct l7m_stream {
	__u64 skip;        /* bytes of the current token not yet seen */
	__u32 st0, st1, st2;
	__u8 phase;        /* protocol-defined; 0 = between messages */
	__u8 lost;         /* framing lost: wait for a syscall that starts a message */
	__u8 carry_len;
	__u8 started;      /* a message is under way on this stream */
	__u8 carry[L7M_CARRY];
};

/* One request waiting for its response. */
struct l7m_slot {
	__u64 ts_start;
	__u64 req_bytes;
	__u32 pid;
	__u32 tid;
	__u32 seq;       /* order of arrival (FIFO pairing) */
	__u32 id;        /* pairing id of id-paired protocols */
	__u16 op2;
	__u8 op;
	__u8 live;
	__u8 text_len;
	__u8 route_len;  /* the first route_len bytes of text are the metric endpoint */
	__u8 flags;      /* SONDE_F_* */
	__u8 _pad;
	char text[SONDE_PATH_MAX];
};

/* Fields of the response under way, reset after each response. */
struct l7m_acc {
	__u64 resp_bytes;
	__u32 code;      /* protocol error code (MySQL errno, Kafka error, ...) */
	__u32 count;     /* rows, answers, elements */
	__u32 id;        /* id of the request it answers (id-paired protocols) */
	__u16 status;    /* protocol status (DNS rcode ...) */
	__u8 reply;      /* reply class (Redis type byte, memcached result ...) */
	__u8 flags;      /* SONDE_F_ERROR ... */
	__u8 detail_len;
	__u8 has_id;
	__u8 detail_pending; /* l7m_detail_set named bytes of the current window */
	__u8 detail_n;
	__u16 detail_off;
	__u16 _pad;
	char detail[L7M_DETAIL];
};

/* Everything the engine keeps per connection. */
struct l7m_conn {
	struct l7m_stream req;
	struct l7m_stream resp;
	struct l7m_acc acc;
	__u32 req_seq;   /* requests started */
	__u8 req_dir;    /* enum h1_dir carrying requests */
	__u8 proto;      /* enum sonde_proto this engine state parses */
	__u8 dgram;      /* a datagram socket: every syscall is a whole message */
	__u8 _pad;
	struct l7m_slot slots[SONDE_PIPELINE_DEPTH];
};

/* What a step tells the engine; lives in per-CPU memory in BPF. */
struct l7m_info {
	__u32 consume;   /* bytes this token takes from the window start (may exceed it) */
	__u8 ev;         /* enum l7m_ev */
	__u8 op;         /* request: operation code (see docs/PROTOCOLS.md) */
	__u16 op2;       /* request: sub-code (DNS qtype, Kafka api version, QoS) */
	__u32 id;        /* request: pairing id, with has_id */
	__u8 has_id;
	__u8 text_len;   /* bytes of text the segments make */
	__u8 route_len;
	__u8 flags;      /* request: SONDE_F_* */
	/* The text is named by the step as up to two segments of its window
	 * (l7m_text_copy), joined by `sep`, and copied out once at the event:
	 * copying inside a step would be verified once per path through it. */
	__u8 nseg;
	__u8 sep;
	__u8 seg_upper[2];
	__u16 seg_off[2];
	__u16 seg_len[2];
	__u16 wbase;     /* (engine) where the step's window starts in the buffer */
	__u16 _pad;
	__u32 avail;     /* (engine) bytes from the window start to the end of the run
			  * (of a datagram: its length) */
	/* request: resource (query text, key, name, topic), text_len <= SONDE_PATH_MAX;
	 * the buffer is larger so masked indexes stay inside it */
	char text[L7M_TEXT_BUF];
};

SONDE_INLINE void sonde_l7m_emit(void *ctx, struct l7m_conn *c, struct l7m_slot *s,
				 struct l7m_acc *acc, __u64 ts_end, __u8 flags);
/* One step of protocol `proto` at the window w (see the top of this file). */
SONDE_INLINE int l7m_step_dispatch(__u8 proto, void *ctx, struct l7m_conn *c,
				   struct l7m_stream *st, int is_req, const __u8 *w, __u32 wlen,
				   int at_end, struct l7m_info *in);

/* ---- small helpers for step functions ----------------------------------- */

/* Byte i of the window (masked: provably inside the buffer for the verifier). */
#define L7M_AT(w, i) ((w)[(i) & (L7M_BUF - 1)])

SONDE_INLINE int l7m_is_digit(__u8 ch) { return ch >= '0' && ch <= '9'; }

/*
 * Verifier-friendly arithmetic. A loop whose iterations branch on the bytes
 * leaves the verifier one state per exit, and those multiply through every
 * later step: a few nested loops exceed the 1M-instruction budget. The
 * scanning helpers below therefore compute with ALU operations only (BPF
 * has no conditional set or move, so `a == b` as a value is a branch):
 * each loop is one straight path, however many bytes it looks at.
 */
/* 1 if a < b, else 0 (both below 2^63). The difference is made opaque:
 * knowing both operands are small, clang would turn the shift back into a
 * compare, and a compare into a branch. */
SONDE_INLINE __u64 l7m_lt(__u64 a, __u64 b)
{
	__u64 d = a - b;

	H1_OPAQUE(d);
	return d >> 63;
}

/* 1 if byte a == byte b, else 0. */
SONDE_INLINE __u64 l7m_eq8(__u64 a, __u64 b)
{
	__u64 x = a ^ b;

	H1_OPAQUE(x);
	return (x - 1) >> 63;
}
/* 1 if ch is an ASCII digit, else 0. */
SONDE_INLINE __u64 l7m_digit(__u64 ch)
{
	return l7m_lt(ch, '9' + 1) & (1 - l7m_lt(ch, '0'));
}

/*
 * Parse a decimal integer (optional '-') at w[*pos], ending at "\r\n".
 * Returns 0 and moves *pos past the LF; -1 when the number is malformed;
 * 1 when the window ends first.
 */
SONDE_INLINE int l7m_parse_line_int(const __u8 *w, __u32 wlen, __u32 *pos, __s64 *out)
{
	__u64 i0 = *pos, neg, v = 0, alive = 1, digits = 0, e, k;

	neg = l7m_lt(i0, wlen) & l7m_eq8(L7M_AT(w, i0), '-');
	i0 += neg;
	for (k = 0; k < 19; k++) {
		__u64 ch = L7M_AT(w, i0 + k);
		__u64 d = l7m_digit(ch) & l7m_lt(i0 + k, wlen) & alive;

		H1_OPAQUE(d);
		v += d * (v * 9 + ch - '0');
		digits += d;
		alive = d;
	}
	e = i0 + digits;
	/* one verdict, computed without a branch per condition */
	if ((1 - l7m_lt(e + 1, wlen)) & (1 - l7m_lt(18, digits)))
		return 1; /* the window ends before "\r\n" */
	if (!(l7m_lt(0, digits) & l7m_lt(digits, 19) & l7m_eq8(L7M_AT(w, e), '\r') &
	      l7m_eq8(L7M_AT(w, e + 1), '\n')))
		return -1;
	*pos = e + 2;
	*out = (__s64)(v - 2 * neg * v);
	return 0;
}

/* Offset just past the next LF at or after pos, or 0 when the window has
 * none within L7M_LINE_MAX bytes. */
SONDE_INLINE __u32 l7m_line_end(const __u8 *w, __u32 wlen, __u32 pos)
{
	__u64 end = 0, found = 0, k;

	for (k = 0; k < L7M_LINE_MAX; k++) {
		__u64 hit = l7m_eq8(L7M_AT(w, pos + k), '\n') & l7m_lt(pos + k, wlen) & (1 - found);

		H1_OPAQUE(hit);
		end += hit * (pos + k + 1);
		found |= hit;
	}
	return end;
}

/* The smaller of a and b. */
SONDE_INLINE __u64 l7m_min(__u64 a, __u64 b) { return a < b ? a : b; }

/* Byte-wise select: a where m is 0xff.., else b. */
#define L7M_PICK(a, b, m) (((a) & (m)) | ((b) & ~(m)))

/*
 * Add n window bytes from pos to the request's text (upper-cased when
 * `upper`): recorded as a segment, copied at the event. Two segments at
 * most, joined by the byte given to l7m_text_char; bytes beyond the window
 * or SONDE_PATH_MAX are cut (flagged SONDE_F_PATH_TRUNCATED).
 */
SONDE_INLINE void l7m_text_copy(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos,
				__u32 n, int upper)
{
	__u32 k = in->nseg, t = in->text_len, avail;

	(void)w;
	if (k >= 2 || t >= SONDE_PATH_MAX)
		return;
	avail = pos < wlen ? wlen - pos : 0;
	if (avail > n)
		avail = n;
	if (avail > SONDE_PATH_MAX - t)
		avail = SONDE_PATH_MAX - t;
	if (avail < n)
		in->flags |= SONDE_F_PATH_TRUNCATED;
	in->nseg = k + 1;
	/* the compiler knows k < 2 and would drop the mask the verifier needs */
	H1_OPAQUE(k);
	k &= 1;
	in->seg_off[k] = pos;
	in->seg_len[k] = avail;
	in->seg_upper[k] = upper;
	in->text_len = t + avail;
}

SONDE_INLINE void l7m_text_append(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos,
				  __u32 n)
{
	l7m_text_copy(in, w, wlen, pos, n, 0);
}

/* The byte between the first and the second segment. */
SONDE_INLINE void l7m_text_char(struct l7m_info *in, char ch)
{
	if (in->nseg == 1 && in->text_len < SONDE_PATH_MAX) {
		in->sep = ch;
		in->text_len++;
	}
}

/* Upper-case an ASCII letter without a branch. */
SONDE_INLINE __u64 l7m_upper(__u64 ch)
{
	return ch - 32 * (l7m_lt(ch, 'z' + 1) & (1 - l7m_lt(ch, 'a')));
}

/*
 * Copy the text segments out of the step's window w (at the event; one
 * straight pass, no branch per byte).
 */
SONDE_INLINE void l7m_text_materialise(struct l7m_info *in, const __u8 *w)
{
	__u64 n0 = 0, n1 = 0, o0 = in->seg_off[0], o1 = in->seg_off[1], sepn, k;
	__u64 u0 = in->seg_upper[0], u1 = in->seg_upper[1], sep = in->sep;

	if (in->nseg > 0)
		n0 = in->seg_len[0];
	if (in->nseg > 1)
		n1 = in->seg_len[1];
	sepn = in->nseg > 1 && sep ? 1 : 0;
	for (k = 0; k < SONDE_PATH_MAX; k++) {
		__u64 b0 = L7M_AT(w, o0 + k), b1 = L7M_AT(w, o1 + k - n0 - sepn);
		__u64 m0 = -l7m_lt(k, n0);
		__u64 ms = -(l7m_eq8(k, n0) & sepn);
		__u64 m1 = -(l7m_lt(k, n0 + sepn + n1) & (1 - l7m_lt(k, n0 + sepn)));

		b0 -= (b0 - l7m_upper(b0)) * u0;
		b1 -= (b1 - l7m_upper(b1)) * u1;
		in->text[k] = (__u8)((b0 & m0) | (sep & ms) | (b1 & m1));
	}
}

/* Length of the token at w[pos]: bytes before a space, CR, LF or NUL, at
 * most max, within the window. */
SONDE_INLINE __u32 l7m_word_len(const __u8 *w, __u32 wlen, __u32 pos, __u32 max)
{
	__u64 len = 0, alive = 1, k;

	for (k = 0; k < L7M_DETAIL; k++) {
		__u64 ch = L7M_AT(w, pos + k);
		__u64 ok = (1 - l7m_eq8(ch, ' ')) & (1 - l7m_eq8(ch, '\r')) &
			   (1 - l7m_eq8(ch, '\n')) & (1 - l7m_eq8(ch, 0)) &
			   l7m_lt(pos + k, wlen) & l7m_lt(k, max) & alive;

		H1_OPAQUE(ok);
		len += ok;
		alive = ok;
	}
	return len;
}

/* Name n window bytes from pos as the response's detail (copied by the
 * engine right after the step). */
SONDE_INLINE void l7m_detail_set(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u32 avail = pos < wlen ? wlen - pos : 0;

	(void)w;
	if (avail > n)
		avail = n;
	if (avail > L7M_DETAIL)
		avail = L7M_DETAIL;
	a->detail_off = pos;
	a->detail_n = avail;
	a->detail_pending = 1;
}

/* Copy the detail a step named out of its window w. */
SONDE_INLINE void l7m_detail_materialise(struct l7m_acc *a, const __u8 *w)
{
	__u64 off = a->detail_off, n = a->detail_n, k;

	for (k = 0; k < L7M_DETAIL; k++)
		a->detail[k] = (__u8)(L7M_AT(w, off + k) & -l7m_lt(k, n));
	a->detail_len = n;
	a->detail_pending = 0;
}

/*
 * Compare the window at pos with a constant string of n bytes. Returns 1
 * when they match, 0 when they differ, -1 when the window is a prefix of it.
 */
SONDE_INLINE int l7m_match_const(const __u8 *w, __u32 wlen, __u32 pos, const char *lit, __u32 n)
{
	__u64 diff = 0, k;

	for (k = 0; k < L7M_DETAIL; k++) {
		__u64 in_lit = l7m_lt(k, n), in_win = l7m_lt(pos + k, wlen);
		__u64 ch = L7M_AT(w, pos + k), want = (__u8)lit[k & (L7M_DETAIL - 1)];

		diff |= (1 - l7m_eq8(ch, want)) & in_lit & in_win;
	}
	if (diff)
		return 0;
	return pos + n <= wlen ? 1 : -1;
}

/* ---- pairing -------------------------------------------------------------- */

SONDE_INLINE struct l7m_stream *l7m_stream_for(struct l7m_conn *c, __u8 dir)
{
	return dir == c->req_dir ? &c->req : &c->resp;
}

/*
 * Slots are chosen by index computed with ALU operations and then used
 * through one pointer: a loop that returns one of several slot pointers
 * makes the verifier walk everything after it once per slot.
 */

/* 1 if the 32-bit values differ, else 0. */
SONDE_INLINE __u64 l7m_ne32(__u32 a, __u32 b)
{
	__u64 x = a ^ b;

	H1_OPAQUE(x);
	return (x | -x) >> 63;
}

/* 1 if seq a comes before seq b (wrapping), else 0. */
SONDE_INLINE __u64 l7m_before(__u32 a, __u32 b)
{
	__u64 d = (__u32)(a - b);

	H1_OPAQUE(d);
	return d >> 31;
}

/* Index of the first free slot; SONDE_PIPELINE_DEPTH when all are live. */
SONDE_INLINE __u32 l7m_free_slot(const struct l7m_conn *c)
{
	__u64 idx = SONDE_PIPELINE_DEPTH, found = 0, i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		__u64 hit = (1 - (c->slots[i].live & 1)) & (1 - found);
		__u64 m = -hit;

		H1_OPAQUE(m);
		idx = (i & m) | (idx & ~m);
		found |= hit;
	}
	return idx;
}

/* A request starts: take a free slot, or count the overflow. */
SONDE_INLINE void l7m_request_begin(void *ctx, struct l7m_conn *c, const struct l7m_info *in,
				    const struct h1_meta *m)
{
	__u32 idx = l7m_free_slot(c), k, len;
	struct l7m_slot *s;

	c->req_seq++;
	if (idx >= SONDE_PIPELINE_DEPTH) {
		sonde_stat_add(ctx, H1_STAT(pipeline_overflow));
		return;
	}
	H1_OPAQUE(idx); /* mask here, where the verifier sees it */
	s = &c->slots[idx & (SONDE_PIPELINE_DEPTH - 1)];
	s->live = 1;
	s->seq = c->req_seq;
	s->ts_start = m->ts_start;
	s->req_bytes = 0;
	s->pid = m->pid;
	s->tid = m->tid;
	s->id = in->has_id ? in->id : 0;
	s->op = in->op;
	s->op2 = in->op2;
	s->flags = in->flags;
	len = in->text_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : in->text_len;
	s->text_len = len;
	s->route_len = in->route_len > len ? len : in->route_len;
	for (k = 0; k < SONDE_PATH_MAX; k++)
		s->text[k] = in->text[k] & (__u8)-l7m_lt(k, len);
}

/* Index of the newest live slot (the request being sent), or
 * SONDE_PIPELINE_DEPTH. */
SONDE_INLINE __u32 l7m_newest_idx(const struct l7m_conn *c)
{
	__u64 idx = SONDE_PIPELINE_DEPTH, i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		__u64 hit = (c->slots[i].live & 1) & (1 - l7m_ne32(c->slots[i].seq, c->req_seq));
		__u64 m = -hit;

		H1_OPAQUE(m);
		idx = (i & m) | (idx & ~m);
	}
	return idx;
}

SONDE_INLINE struct l7m_slot *l7m_newest(struct l7m_conn *c)
{
	__u32 idx = l7m_newest_idx(c);

	if (idx >= SONDE_PIPELINE_DEPTH)
		return 0;
	H1_OPAQUE(idx);
	return &c->slots[idx & (SONDE_PIPELINE_DEPTH - 1)];
}

/* Index of the slot a response answers (same id, or the oldest live one),
 * or SONDE_PIPELINE_DEPTH. */
SONDE_INLINE __u32 l7m_match_idx(const struct l7m_conn *c, const struct l7m_acc *a)
{
	__u64 idx = SONDE_PIPELINE_DEPTH, found = 0, best_seq = 0, by_id = a->has_id & 1, i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		const struct l7m_slot *s = &c->slots[i];
		__u64 live = s->live & 1;
		__u64 id_ok = 1 - l7m_ne32(s->id, a->id);
		__u64 older = (1 - found) | l7m_before(s->seq, best_seq);
		__u64 hit = live & ((by_id & id_ok & (1 - found)) | ((1 - by_id) & older));
		__u64 m = -hit;

		H1_OPAQUE(m);
		idx = (i & m) | (idx & ~m);
		best_seq = (s->seq & m) | (best_seq & ~m);
		found |= hit;
	}
	return idx;
}

SONDE_INLINE void l7m_acc_reset(struct l7m_acc *a)
{
	a->resp_bytes = 0;
	a->code = 0;
	a->count = 0;
	a->id = 0;
	a->status = 0;
	a->reply = 0;
	a->flags = 0;
	a->detail_len = 0;
	a->has_id = 0;
}

/* A response ended: report it with its request, or count it unpaired. */
SONDE_INLINE void l7m_response_end(void *ctx, struct l7m_conn *c, __u64 ts_end)
{
	__u32 idx = l7m_match_idx(c, &c->acc);

	if (idx < SONDE_PIPELINE_DEPTH) {
		struct l7m_slot *s;

		H1_OPAQUE(idx);
		s = &c->slots[idx & (SONDE_PIPELINE_DEPTH - 1)];

		sonde_l7m_emit(ctx, c, s, &c->acc, ts_end, s->flags | c->acc.flags);
		s->live = 0;
	} else {
		sonde_stat_add(ctx, H1_STAT(unpaired_responses));
	}
	l7m_acc_reset(&c->acc);
}

/* ---- the engine ------------------------------------------------------------ */

/* Framing lost on a stream: drop what it was in the middle of. */
SONDE_INLINE void l7m_lose(void *ctx, struct l7m_stream *st)
{
	st->lost = 1;
	st->skip = 0;
	st->carry_len = 0;
	st->phase = 0;
	st->started = 0;
	st->st0 = st->st1 = st->st2 = 0;
	sonde_stat_add(ctx, H1_STAT(parse_lost));
}

/*
 * Keep the window's bytes for the next syscall (an unfinished token head).
 * The carry is right-aligned in st->carry, so the next window is built by
 * copying all L7M_CARRY bytes in front of the fresh ones, without a branch.
 */
SONDE_INLINE void l7m_carry_save(struct l7m_stream *st, const __u8 *w, __u32 wlen)
{
	__u64 k, n = wlen > L7M_CARRY ? L7M_CARRY : wlen;

	for (k = 0; k < L7M_CARRY; k++)
		st->carry[k] = L7M_AT(w, k + n - L7M_CARRY) & (__u8)-(1 - l7m_lt(k, L7M_CARRY - n));
	st->carry_len = n;
}

/* Drop the first n carried bytes (a token shorter than the carry): the rest
 * stays right-aligned. */
SONDE_INLINE void l7m_carry_shift(struct l7m_stream *st, __u32 n)
{
	st->carry_len = st->carry_len > n ? st->carry_len - n : 0;
}

/* Bytes a stream has moved count towards the request or response under way. */
SONDE_INLINE void l7m_count_bytes(struct l7m_conn *c, struct l7m_stream *st, __u64 n)
{
	struct l7m_slot *s;

	if (st == &c->resp) {
		c->acc.resp_bytes += n;
		return;
	}
	s = l7m_newest(c);
	if (s)
		s->req_bytes += n;
}

/*
 * Fill the window at the cursor: up to L7M_WIN bytes of user memory at
 * win + L7M_CARRY, the carried bytes just before them. The step sees the
 * window from win + L7M_CARRY - carry_len (*base). Returns the window
 * length, 0 on a fault.
 */
SONDE_INLINE __u32 l7m_fill(struct l7m_stream *st, const __u8 *src, struct h1_cursor *cur,
			    __u8 *win, __u32 *from_user, __u32 *base)
{
	__u32 cl = st->carry_len, i;
	__u64 avail = cur->len - cur->off;
	__u32 n = avail < L7M_WIN ? (__u32)avail : L7M_WIN;

	if (cl > L7M_CARRY)
		cl = L7M_CARRY;
	/* a mask the 5.10/6.1 verifiers can see (clang drops it otherwise) */
	H1_OPAQUE(n);
	n &= L7M_BUF - 1;
	if (n == 0 || n > L7M_WIN)
		return 0;
	if (sonde_read_user(win + L7M_CARRY, n, src + cur->off))
		return 0;
	for (i = 0; i < L7M_CARRY; i++)
		win[i] = st->carry[i];
	*from_user = n;
	*base = L7M_CARRY - cl;
	return cl + n;
}

SONDE_INLINE void l7m_info_reset(struct l7m_info *in)
{
	in->consume = 0;
	in->ev = L7M_EV_NONE;
	in->op = 0;
	in->op2 = 0;
	in->id = 0;
	in->has_id = 0;
	in->text_len = 0;
	in->route_len = 0;
	in->flags = 0;
	in->nseg = 0;
	in->sep = 0;
}

/* l7m_feed_one's answer when the step found nothing to report. */
#define L7M_MORE (-1)

/*
 * One step of `proto` at the cursor: skip the rest of a long token, or fill
 * the window and run the protocol's step function. Returns L7M_MORE to go
 * on, L7M_EV_NONE when the run is done, or the event the step found (the
 * caller handles it with l7m_handle_event).
 */
SONDE_INLINE int l7m_feed_one(void *ctx, struct l7m_conn *c, __u8 proto, __u8 dir,
			      const __u8 *src, struct h1_cursor *cur, __u8 *win,
			      struct l7m_info *in)
{
	struct l7m_stream *st = l7m_stream_for(c, dir);
	int is_req = dir == c->req_dir;
	__u32 wlen, n = 0, base = 0, cl;
	__u64 avail, used;
	int rc;

	if (cur->off >= cur->len)
		return L7M_EV_NONE;
	avail = cur->len - cur->off;
	if (c->dgram && cur->off == 0 && !cur->wpos) {
		/* a new datagram: nothing carries over from the last one */
		st->skip = 0;
		st->carry_len = 0;
		st->lost = 0;
		st->started = 0;
		st->phase = 0;
	}
	if (st->skip) {
		used = st->skip < avail ? st->skip : avail;
		st->skip -= used;
		cur->off += used;
		return L7M_MORE;
	}
	if (st->lost) {
		if (cur->off != 0 || cur->wpos) {
			cur->off = cur->len;
			return L7M_EV_NONE;
		}
		st->lost = 0; /* the step says whether a message starts here */
	}
	wlen = l7m_fill(st, src, cur, win, &n, &base);
	if (!wlen) {
		cur->off = cur->len;
		return L7M_EV_NONE;
	}
	if (base > L7M_CARRY)
		base = L7M_CARRY;
	cl = wlen - n;
	l7m_info_reset(in);
	in->wbase = base;
	in->avail = cl + avail;
	rc = l7m_step_dispatch(proto, ctx, c, st, is_req, win + base, wlen, n == avail, in);
	if (rc == L7M_NEED && n == avail && wlen <= L7M_CARRY) {
		/* a token head cut by the end of the syscall */
		l7m_carry_save(st, win + base, wlen);
		cur->off = cur->len;
		return L7M_EV_NONE;
	}
	if (rc != L7M_OK || in->consume == 0) {
		l7m_lose(ctx, st);
		cur->off = cur->len;
		return L7M_EV_NONE;
	}
	used = in->consume;
	if (used < cl) {
		l7m_carry_shift(st, used);
	} else {
		st->carry_len = 0;
		used -= cl;
		if (used > avail) {
			st->skip = used - avail;
			used = avail;
		}
		cur->off += used;
	}
	/* mark that later refills of this run are not syscall starts */
	cur->wpos = 1;
	if (in->ev != L7M_EV_NONE)
		return in->ev;
	if (c->acc.detail_pending)
		return L7M_EV_DETAIL;
	l7m_count_bytes(c, st, in->consume);
	return L7M_MORE;
}

/*
 * Run up to L7M_STEPS steps of `proto` over the current run of bytes.
 * Returns the first event a step found (the caller handles it with
 * l7m_handle_event, outside any loop, then calls again), or L7M_EV_NONE when
 * the run is done (cur->off == cur->len) or the step budget is used.
 * (The BPF programs call one step at a time through a global function, see
 * socket_trace.bpf.c; this loop is the native driver's.)
 */
SONDE_INLINE int l7m_feed_steps(void *ctx, struct l7m_conn *c, __u8 proto, __u8 dir,
				const __u8 *src, struct h1_cursor *cur, __u8 *win,
				struct l7m_info *in)
{
	__u32 i;

	for (i = 0; i < L7M_STEPS; i++) {
		int r = l7m_feed_one(ctx, c, proto, dir, src, cur, win, in);

		if (r != L7M_MORE)
			return r;
	}
	return L7M_EV_NONE;
}

/*
 * Act on the event a step returned (outside the step loop: it is big).
 * w: the step's window (the buffer at in->wbase), for the bytes it named.
 */
SONDE_INLINE void l7m_handle_event(void *ctx, struct l7m_conn *c, __u8 dir, int ev,
				   struct l7m_info *in, const __u8 *w, const struct h1_meta *m)
{
	struct l7m_stream *st = l7m_stream_for(c, dir);
	struct l7m_slot *s;

	if (c->acc.detail_pending)
		l7m_detail_materialise(&c->acc, w);
	if (ev == L7M_EV_REQUEST) {
		l7m_text_materialise(in, w);
		l7m_request_begin(ctx, c, in, m);
		l7m_count_bytes(c, st, in->consume);
	} else if (ev == L7M_EV_RESPONSE) {
		l7m_count_bytes(c, st, in->consume);
		l7m_response_end(ctx, c, m->ts_end);
	} else if (ev == L7M_EV_DROP) {
		l7m_count_bytes(c, st, in->consume);
		s = l7m_newest(c);
		if (s)
			s->live = 0;
	} else {
		l7m_count_bytes(c, st, in->consume);
	}
}

/* Feed a whole buffer natively (tests): steps and events until it is used. */
SONDE_INLINE void l7m_feed_all(void *ctx, struct l7m_conn *c, __u8 proto, __u8 dir,
			       const __u8 *src, __u64 len, __u8 *win, struct l7m_info *in,
			       const struct h1_meta *m)
{
	struct h1_cursor cur = { .len = len };
	int ev, guard;

	for (guard = 0; guard < 1000000; guard++) {
		ev = l7m_feed_steps(ctx, c, proto, dir, src, &cur, win, in);
		if (ev != L7M_EV_NONE)
			l7m_handle_event(ctx, c, dir, ev, in, win + in->wbase, m);
		else if (cur.off >= cur.len)
			break;
	}
}

/* The connection closed: report requests still waiting as cut off. */
SONDE_INLINE void l7m_close(void *ctx, struct l7m_conn *c, const struct h1_meta *m)
{
	__u32 i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		struct l7m_slot *s = &c->slots[i];

		if (!s->live)
			continue;
		l7m_acc_reset(&c->acc);
		sonde_l7m_emit(ctx, c, s, &c->acc, m->ts_end, s->flags | SONDE_F_CLOSED);
		sonde_stat_add(ctx, H1_STAT(closed_pending));
		s->live = 0;
	}
}

/* Report the oldest request older than timeout_ns (user-space sweep). Returns 1 if one was. */
SONDE_INLINE int l7m_expire_one(void *ctx, struct l7m_conn *c, __u64 now, __u64 timeout_ns)
{
	__u32 i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		struct l7m_slot *s = &c->slots[i];

		if (!s->live || now - s->ts_start < timeout_ns)
			continue;
		l7m_acc_reset(&c->acc);
		sonde_l7m_emit(ctx, c, s, &c->acc, now, s->flags | SONDE_F_TIMEOUT);
		s->live = 0;
		return 1;
	}
	return 0;
}

#endif /* SONDE_PROTO_L7M_H */
