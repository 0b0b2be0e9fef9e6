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
	__u8 _pad[6];
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
	__u8 _pad[2];
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
	__u8 text_len;
	__u8 route_len;
	__u8 flags;      /* request: SONDE_F_* */
	char text[SONDE_PATH_MAX]; /* request: resource (query text, key, name, topic) */
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
 * Parse a decimal integer (optional '-') at w[*pos], ending at "\r\n".
 * Returns 0 and moves *pos past the LF; -1 when the number is malformed;
 * 1 when the window ends first.
 */
SONDE_INLINE int l7m_parse_line_int(const __u8 *w, __u32 wlen, __u32 *pos, __s64 *out)
{
	__s64 v = 0;
	__u32 i = *pos, k;
	int neg = 0, digits = 0;

	if (i < wlen && L7M_AT(w, i) == '-') {
		neg = 1;
		i++;
	}
	for (k = 0; k < 20; k++) {
		__u8 ch;

		if (i >= wlen)
			return 1;
		ch = L7M_AT(w, i);
		if (!l7m_is_digit(ch))
			break;
		v = v * 10 + (ch - '0');
		digits++;
		i++;
	}
	if (!digits)
		return -1;
	if (i >= wlen)
		return 1;
	if (L7M_AT(w, i) != '\r')
		return -1;
	if (i + 1 >= wlen)
		return 1;
	if (L7M_AT(w, i + 1) != '\n')
		return -1;
	*pos = i + 2;
	*out = neg ? -v : v;
	return 0;
}

/* Offset just past the next LF at or after pos, or 0 when the window has none. */
SONDE_INLINE __u32 l7m_line_end(const __u8 *w, __u32 wlen, __u32 pos)
{
	__u32 i;

	for (i = 0; i < L7M_BUF; i++) {
		if (pos + i >= wlen)
			return 0;
		if (L7M_AT(w, pos + i) == '\n')
			return pos + i + 1;
	}
	return 0;
}

/* Copy n window bytes from pos into info->text after what is there. */
SONDE_INLINE void l7m_text_append(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos,
				  __u32 n)
{
	__u32 i, t = in->text_len;

	for (i = 0; i < SONDE_PATH_MAX; i++) {
		if (i >= n || pos + i >= wlen || t >= SONDE_PATH_MAX)
			break;
		in->text[t] = L7M_AT(w, pos + i); /* t < SONDE_PATH_MAX: checked above */
		t++;
	}
	if (i < n)
		in->flags |= SONDE_F_PATH_TRUNCATED;
	in->text_len = t;
}

SONDE_INLINE void l7m_text_char(struct l7m_info *in, char ch)
{
	if (in->text_len < SONDE_PATH_MAX) {
		in->text[in->text_len] = ch;
		in->text_len++;
	}
}

/* Copy n window bytes from pos into the accumulator's detail. */
SONDE_INLINE void l7m_detail_set(struct l7m_acc *a, const __u8 *w, __u32 wlen, __u32 pos, __u32 n)
{
	__u32 i;

	for (i = 0; i < L7M_DETAIL; i++) {
		if (i >= n || pos + i >= wlen)
			break;
		a->detail[i] = L7M_AT(w, pos + i);
	}
	a->detail_len = i;
}

/* ---- pairing -------------------------------------------------------------- */

SONDE_INLINE struct l7m_stream *l7m_stream_for(struct l7m_conn *c, __u8 dir)
{
	return dir == c->req_dir ? &c->req : &c->resp;
}

/* A request starts: take a free slot, or count the overflow. */
SONDE_INLINE void l7m_request_begin(void *ctx, struct l7m_conn *c, const struct l7m_info *in,
				    const struct h1_meta *m)
{
	struct l7m_slot *s = 0;
	__u32 i, k;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		if (!c->slots[i].live) {
			s = &c->slots[i];
			break;
		}
	}
	c->req_seq++;
	if (!s) {
		sonde_stat_add(ctx, H1_STAT(pipeline_overflow));
		return;
	}
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
	s->text_len = in->text_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : in->text_len;
	s->route_len = in->route_len > s->text_len ? s->text_len : in->route_len;
	for (k = 0; k < SONDE_PATH_MAX; k++)
		s->text[k] = k < s->text_len ? in->text[k] : 0;
}

/* The newest live slot (the request being sent), or NULL. */
SONDE_INLINE struct l7m_slot *l7m_newest(struct l7m_conn *c)
{
	struct l7m_slot *best = 0;
	__u32 i;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		struct l7m_slot *s = &c->slots[i];

		if (s->live && s->seq == c->req_seq)
			best = s;
	}
	return best;
}

/* The slot a response answers: same id, or the oldest live one. */
SONDE_INLINE struct l7m_slot *l7m_match(struct l7m_conn *c, const struct l7m_acc *a)
{
	struct l7m_slot *best = 0;
	__u32 i, best_seq = 0;

	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		struct l7m_slot *s = &c->slots[i];

		if (!s->live)
			continue;
		if (a->has_id) {
			if (s->id == a->id)
				return s;
			continue;
		}
		if (!best || (__s32)(s->seq - best_seq) < 0) {
			best = s;
			best_seq = s->seq;
		}
	}
	return best;
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
	struct l7m_slot *s = l7m_match(c, &c->acc);

	if (s) {
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

/* Keep the window's bytes for the next syscall (an unfinished token head). */
SONDE_INLINE void l7m_carry_save(struct l7m_stream *st, const __u8 *w, __u32 wlen)
{
	__u32 i;

	for (i = 0; i < L7M_CARRY; i++)
		st->carry[i] = i < wlen ? L7M_AT(w, i) : 0;
	st->carry_len = wlen;
}

/* Drop the first n carried bytes (a token shorter than the carry). */
SONDE_INLINE void l7m_carry_shift(struct l7m_stream *st, __u32 n)
{
	__u32 i;

	for (i = 0; i < L7M_CARRY; i++)
		st->carry[i] = i + n < L7M_CARRY ? st->carry[(i + n) & (L7M_CARRY - 1)] : 0;
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
	if (n == 0 || n > L7M_WIN)
		return 0;
	if (sonde_read_user(win + L7M_CARRY, n, src + cur->off))
		return 0;
	for (i = 0; i < L7M_CARRY; i++) {
		if (i >= cl)
			break;
		win[(L7M_CARRY - cl + i) & (L7M_CARRY - 1)] = st->carry[i];
	}
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
}

/*
 * Run up to L7M_STEPS steps of `proto` over the current run of bytes.
 * Returns the first event a step found (the caller handles it with
 * l7m_handle_event, outside any loop, then calls again), or L7M_EV_NONE when
 * the run is done (cur->off == cur->len) or the step budget is used.
 * run_start: the cursor is at the first byte of a syscall, where a stream
 * that lost framing may pick it up again.
 */
SONDE_INLINE int l7m_feed_steps(void *ctx, struct l7m_conn *c, __u8 proto, __u8 dir,
				const __u8 *src, struct h1_cursor *cur, __u8 *win,
				struct l7m_info *in)
{
	struct l7m_stream *st = l7m_stream_for(c, dir);
	int is_req = dir == c->req_dir;
	__u32 i;

	for (i = 0; i < L7M_STEPS; i++) {
		__u32 wlen, n = 0, base = 0, cl;
		__u64 avail, used;
		int rc;

		H1_BARRIER();
		if (cur->off >= cur->len)
			return L7M_EV_NONE;
		avail = cur->len - cur->off;
		if (st->skip) {
			used = st->skip < avail ? st->skip : avail;
			st->skip -= used;
			cur->off += used;
			continue;
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
		cl = wlen - n;
		l7m_info_reset(in);
		rc = l7m_step_dispatch(proto, ctx, c, st, is_req, win + (base > L7M_CARRY ? L7M_CARRY : base), wlen,
			      n == avail, in);
		if (rc == L7M_NEED && n == avail && wlen <= L7M_CARRY) {
			/* a token head cut by the end of the syscall */
			l7m_carry_save(st, win + (base > L7M_CARRY ? L7M_CARRY : base), wlen);
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
		l7m_count_bytes(c, st, in->consume);
	}
	return L7M_EV_NONE;
}

/* Act on the event a step returned (outside the step loop: it is big). */
SONDE_INLINE void l7m_handle_event(void *ctx, struct l7m_conn *c, __u8 dir, int ev,
				   const struct l7m_info *in, const struct h1_meta *m)
{
	struct l7m_stream *st = l7m_stream_for(c, dir);
	struct l7m_slot *s;

	if (ev == L7M_EV_REQUEST) {
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
			l7m_handle_event(ctx, c, dir, ev, in, m);
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
