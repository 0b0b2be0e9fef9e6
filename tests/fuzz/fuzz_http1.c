// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target for the HTTP/1 parser, bpf/proto/http1.h, driven exactly as
 * the socket tracer drives it: one syscall at a time, h1_bind until the
 * connection is recognised, h1_feed_begin, rounds of h1_feed_steps (each
 * followed by h1_feed_event when it stopped at the end of a head or message)
 * until the buffer is consumed, and peer EOF, close and the time-out sweep in
 * between.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I bpf -I . (optionally
 * -DH1_WINDOW=16 -DH1_STEPS=5: the same code with a tiny window and budget).
 *
 * Input: a sequence of records, each an op byte then what it needs:
 *   op & 7 = 0,1,2  a write (H1_DIR_SEND) \  length: one byte L (L + 1 bytes) or,
 *   op & 7 = 3,4,5  a read  (H1_DIR_RECV) /  when op & 0x80, two bytes little-
 *                   endian L (L + 1 bytes); then the payload (shorter if the
 *                   input ends). (op >> 3) & 15, when not 0, is where the
 *                   differential run cuts this syscall in two: at
 *                   len * ((op >> 3) & 15) / 16.
 *   op & 7 = 6      a read returned 0: h1_peer_eof on SEND if op & 8, else RECV
 *   op & 7 = 7      control, by (op >> 3) & 3:
 *                   0 the socket closes (h1_close); a new connection starts
 *                   1 the user-space sweep: h1_expire_one(now = clock +
 *                     (op >> 5) * 64, timeout 256)
 *                   2 the next copy from user memory fails
 *                   3 time passes: clock += (op >> 5) << 10
 * tests/fuzz/mkcorpus.c writes the captures of tests/unit/captures in this form.
 *
 * Invariants checked (any violation aborts):
 *   - memory safety and no UB (ASan, UBSan), copies only inside the syscall buffer
 *     and never more than the window;
 *   - the feed loop terminates: every h1_feed_steps call that returns 0 (call
 *     again) has consumed bytes, so it returns 0 at most len times per syscall;
 *     it returns 1 only with every byte consumed;
 *   - resp_seq never passes req_seq; stream phases stay in enum h1_phase;
 *   - every report: the slot at the head of the queue, its seq in order, path_len
 *     <= SONDE_PATH_MAX, known method and flags, status < 1000, ts_end >= ts_start,
 *     the request's bytes and the response's bytes no more than moved on their
 *     directions since the request began (a response is never paired with a
 *     request that started after it);
 *   - after a close, no tracked request is left unreported;
 *   - stats indexes inside struct sonde_stats;
 *   - differential: the same input with syscalls cut in two reports the same
 *     transactions and counts (when neither run lost framing, failed a copy,
 *     ran the sweep or saw a syscall before the connection was recognised).
 */
#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SONDE_INLINE static inline
#include "proto/http1.h"

#define NSTATS  (sizeof(struct sonde_stats) / sizeof(__u64))
#define MAX_EV  512
#define MAX_LOG 70000

#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__, \
				__LINE__, #c);                                       \
			abort();                                                     \
		}                                                                    \
	} while (0)

struct ev {
	__u64 req_bytes, resp_bytes;
	__u16 status;
	__u8 method, flags, path_len;
	char path[SONDE_PATH_MAX];
};

/* Per syscall: when it started and how many bytes each direction had moved. */
struct logent {
	__u64 ts;
	__u64 cum[3];
};

struct run {
	struct h1_conn c;
	__u64 st[NSTATS];
	__u64 clock;
	__u64 cum[3];        /* bytes per direction on this connection, this syscall included */
	struct logent *log;  /* syscalls of this connection */
	unsigned nlog;
	__u32 last_seq;
	int have_seq;
	int fail_read;
	int noisy;           /* lost framing, failed a copy, ran the sweep, unbound syscall */
	unsigned nev;
	struct ev ev[MAX_EV];
	__u8 win[H1_WINDOW];
};

static struct run runs[2];
static struct run *cur_run;

SONDE_INLINE int sonde_read_user(void *dst, __u32 n, const void *src)
{
	CHECK(n > 0 && n <= H1_WINDOW);
	if (cur_run->fail_read) {
		cur_run->fail_read = 0;
		cur_run->noisy = 1;
		return -1;
	}
	memcpy(dst, src, n);
	return 0;
}

SONDE_INLINE void sonde_stat_add(void *ctx, __u32 field)
{
	struct run *r = ctx;

	CHECK(field < NSTATS);
	r->st[field]++;
	if (field == H1_STAT(parse_lost))
		r->noisy = 1;
}

/* Bytes direction dir had moved before the syscall that started at ts. */
static __u64 cum_before(struct run *r, __u64 ts, __u8 dir)
{
	unsigned lo = 0, hi = r->nlog;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (r->log[mid].ts < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	CHECK(lo < r->nlog && r->log[lo].ts == ts);
	return r->log[lo].cum[dir];
}

SONDE_INLINE void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
				__u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	struct run *r = ctx;
	__u8 rq = c->req_dir, rs = rq == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND;
	struct ev *e;

	CHECK(c == &r->c);
	CHECK(s >= c->slots && s < c->slots + SONDE_PIPELINE_DEPTH);
	CHECK(c->resp_seq != c->req_seq && (__s32)(c->req_seq - c->resp_seq) > 0);
	CHECK(s->seq == c->resp_seq && s == h1_slot_of(c, s->seq));
	CHECK(!r->have_seq || (__s32)(s->seq - r->last_seq) > 0);
	r->last_seq = s->seq;
	r->have_seq = 1;
	CHECK(s->path_len <= SONDE_PATH_MAX);
	CHECK(s->method < SONDE_M__COUNT);
	CHECK(((flags | s->flags) & ~0x0f) == 0);
	CHECK(status < 1000);
	CHECK(ts_end >= s->ts_start);
	CHECK(rq == H1_DIR_SEND || rq == H1_DIR_RECV);
	/* nothing counted that had not moved since the request began */
	CHECK(s->req_bytes <= r->cum[rq] - cum_before(r, s->ts_start, rq));
	CHECK(resp_bytes <= r->cum[rs] - cum_before(r, s->ts_start, rs));

	if (r->nev < MAX_EV) {
		e = &r->ev[r->nev];
		memset(e, 0, sizeof(*e));
		e->req_bytes = s->req_bytes;
		e->resp_bytes = resp_bytes;
		e->status = status;
		e->method = s->method;
		e->flags = flags | s->flags;
		e->path_len = s->path_len;
		memcpy(e->path, s->path, s->path_len);
	}
	r->nev++;
}

static void check_conn(struct run *r)
{
	struct h1_conn *c = &r->c;
	unsigned i;

	CHECK((__s32)(c->req_seq - c->resp_seq) >= 0);
	CHECK(c->req.phase <= H1_UPGRADED && c->resp.phase <= H1_UPGRADED);
	CHECK(c->req_dir <= H1_DIR_RECV);
	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++)
		CHECK(c->slots[i].path_len <= SONDE_PATH_MAX);
}

static void new_conn(struct run *r)
{
	memset(&r->c, 0, sizeof(r->c));
	memset(r->cum, 0, sizeof(r->cum));
	r->nlog = 0;
	r->have_seq = 0;
}

static void feed(struct run *r, __u8 dir, const __u8 *data, size_t len)
{
	struct h1_meta m = { .ts_start = r->clock, .ts_end = r->clock + len + 1,
			     .pid = 1, .tid = 2 };
	struct h1_cursor cur = { .off = 0, .len = len };
	__u32 first = len < 8 ? (__u32)len : 8;
	unsigned zeros = 0;
	__u64 off;
	__u8 *buf;
	int ret;

	if (len == 0)
		return;
	r->clock += len + 1;
	CHECK(r->nlog < MAX_LOG);
	r->log[r->nlog].ts = m.ts_start;
	memcpy(r->log[r->nlog].cum, r->cum, sizeof(r->cum));
	r->nlog++;
	r->cum[dir] += len;

	/* the syscall's buffer, exactly: ASan sees any read past it */
	buf = malloc(len);
	CHECK(buf);
	memcpy(buf, data, len);
	if (r->c.req_dir == H1_DIR_NONE && !h1_bind(&r->c, dir, buf, first)) {
		r->noisy = 1;
		free(buf);
		return;
	}
	h1_feed_begin(&r->c, dir, buf, first);
	for (off = 0;; off = cur.off) {
		ret = h1_feed_steps(r, &r->c, dir, buf, &cur, r->win, &m);
		if (ret < 0)
			break;
		if (cur.ev)
			h1_feed_event(r, &r->c, dir, &cur, &m);
		if (ret == 1)
			break;
		CHECK(ret == 0);
		CHECK(cur.off > off && cur.off <= len);
		CHECK(++zeros <= len);
	}
	CHECK(ret == 1 || ret == -1);
	CHECK(cur.off <= len);
	CHECK(ret != 1 || cur.off == len);
	free(buf);
	check_conn(r);
}

static void meta_now(struct run *r, struct h1_meta *m)
{
	m->ts_start = m->ts_end = r->clock;
	m->pid = 1;
	m->tid = 2;
}

static void close_conn(struct run *r)
{
	struct h1_meta m;
	struct h1_conn *c = &r->c;
	unsigned i;

	meta_now(r, &m);
	h1_close(r, c, &m);
	check_conn(r);
	/* every tracked request has been reported */
	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		struct h1_slot *s = &c->slots[i];

		CHECK(!(s == h1_slot_of(c, s->seq) &&
			s->seq - c->resp_seq < c->req_seq - c->resp_seq));
	}
	new_conn(r);
}

/* Drive one run over the input; cut != 0 cuts data records as the op says. */
static void drive(struct run *r, const uint8_t *data, size_t size, int cut)
{
	size_t i = 0;

	cur_run = r;
	memset(r->st, 0, sizeof(r->st));
	r->clock = 1000;
	r->fail_read = 0;
	r->noisy = 0;
	r->nev = 0;
	new_conn(r);

	while (i < size) {
		__u8 op = data[i++];
		__u8 kind = op & 7;

		if (kind <= 5) {
			__u8 dir = kind <= 2 ? H1_DIR_SEND : H1_DIR_RECV;
			size_t len = i < size ? data[i++] : 0;
			size_t at;

			if (op & 0x80)
				len |= (size_t)(i < size ? data[i++] : 0) << 8;
			len++;
			if (len > size - i)
				len = size - i;
			at = cut ? len * ((op >> 3) & 15) / 16 : 0;
			if (at > 0 && at < len) {
				feed(r, dir, data + i, at);
				feed(r, dir, data + i + at, len - at);
			} else {
				feed(r, dir, data + i, len);
			}
			i += len;
		} else if (kind == 6) {
			struct h1_meta m;

			meta_now(r, &m);
			h1_peer_eof(r, &r->c, (op & 8) ? H1_DIR_SEND : H1_DIR_RECV, &m);
			check_conn(r);
		} else {
			switch ((op >> 3) & 3) {
			case 0:
				close_conn(r);
				break;
			case 1:
				r->noisy = 1;
				h1_expire_one(r, &r->c, r->clock + (op >> 5) * 64, 256);
				check_conn(r);
				break;
			case 2:
				r->fail_read = 1;
				break;
			default:
				r->clock += (__u64)(op >> 5) << 10;
				break;
			}
		}
	}
	close_conn(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run *a = &runs[0], *b = &runs[1];
	unsigned i, n;

	if (!a->log) {
		a->log = malloc(MAX_LOG * sizeof(*a->log));
		b->log = malloc(MAX_LOG * sizeof(*b->log));
		CHECK(a->log && b->log);
	}
	drive(a, data, size, 0);
	drive(b, data, size, 1);

	/* differential: cutting syscalls changes nothing a clean run reports */
	if (a->noisy || b->noisy)
		return 0;
	CHECK(a->nev == b->nev);
	CHECK(!memcmp(a->st, b->st, sizeof(a->st)));
	n = a->nev < MAX_EV ? a->nev : MAX_EV;
	for (i = 0; i < n; i++) {
		const struct ev *x = &a->ev[i], *y = &b->ev[i];

		CHECK(x->status == y->status && x->method == y->method && x->flags == y->flags);
		CHECK(x->req_bytes == y->req_bytes && x->resp_bytes == y->resp_bytes);
		CHECK(x->path_len == y->path_len && !memcmp(x->path, y->path, x->path_len));
	}
	return 0;
}
