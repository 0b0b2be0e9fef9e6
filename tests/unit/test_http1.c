// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native unit tests of the HTTP/1 parser, bpf/proto/http1.h, on byte sequences
 * captured from real programs (nginx, python3 -m http.server, curl, a Python
 * http.server; see tests/unit/captures/capture.py).
 *
 * The parser is driven exactly as the socket tracer drives it, one syscall at
 * a time (drv_feed below: h1_bind until the connection is recognised,
 * h1_feed_begin, then rounds of h1_feed_steps, each followed by
 * h1_feed_event when it stopped at the end of a head or message, until the
 * buffer is consumed or framing is lost), and every transaction it reports is recorded and
 * compared with what an independent Python framer computed when the captures
 * were taken (NAME.expect).
 *
 * This file is compiled twice and linked into one binary: once with the
 * parser's defaults (what the kernel runs) and once with a tiny copy window and
 * step budget (-DSONDE_TEST_SMALL -DH1_WINDOW=16 -DH1_STEPS=7) so that window
 * refills and budget resumption happen at every byte offset.
 *
 * Usage: test_http1 [CAPTURE_DIR]   (default tests/unit/captures, from the repo root)
 * Prints one line per test and a final line "unit: N passed, M failed".
 */
#define _GNU_SOURCE
#include <linux/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SONDE_INLINE static inline
#include "proto/http1.h"

#ifdef SONDE_TEST_SMALL
#define SUITE   run_suite_small
#define VARIANT "small"
#else
#define SUITE   run_suite_default
#define VARIANT "default"
#endif

int SUITE(const char *capdir);

/* ---- a tiny assertion set ------------------------------------------------ */

#ifdef SONDE_TEST_SMALL
extern int unit_passed, unit_failed;
#else
int unit_passed, unit_failed;
#endif

static int t_fail;       /* failures in the running test */
static char t_ctx[160];  /* what the running test is looking at */

static void t_report(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (++t_fail > 12)
		return;
	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (t_ctx[0])
		fprintf(stderr, "  [%s]", t_ctx);
	fprintf(stderr, "\n");
}

static void set_ctx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t_ctx, sizeof(t_ctx), fmt, ap);
	va_end(ap);
}

#define ASSERT_TRUE(c)                                                        \
	do {                                                                  \
		if (!(c))                                                     \
			t_report(__FILE__, __LINE__, "expected %s", #c);     \
	} while (0)
#define ASSERT_CMP(a, op, b)                                                  \
	do {                                                                  \
		unsigned long long _a = (unsigned long long)(a);              \
		unsigned long long _b = (unsigned long long)(b);              \
		if (!(_a op _b))                                              \
			t_report(__FILE__, __LINE__, "%s %s %s: %llu vs %llu", \
				 #a, #op, #b, _a, _b);                         \
	} while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)
#define ASSERT_MEM(a, b, n)                                                   \
	do {                                                                  \
		if (memcmp((a), (b), (n)))                                    \
			t_report(__FILE__, __LINE__, "%s != %s (%zu bytes)", \
				 #a, #b, (size_t)(n));                         \
	} while (0)

/* ---- the driver: the parser as the socket tracer runs it ---------------- */

#define NSTATS (sizeof(struct sonde_stats) / sizeof(__u64))
#define ST(f)  H1_STAT(f)
#define T0     1000000000ULL

/* One transaction reported through sonde_h1_emit(). */
struct ev {
	__u64 ts_start, latency, req_bytes, resp_bytes;
	__u32 pid, tid, seq;
	__u16 status;
	__u8 method, flags, path_len;
	char path[SONDE_PATH_MAX];
};

struct drv {
	struct h1_conn c;
	__u64 st[NSTATS];
	struct ev *ev;
	unsigned nev, cap;
	__u64 clock;         /* bytes moved so far: the clock of the metas */
	unsigned zero_rounds; /* h1_feed_steps() returns of 0 (stopped early, call again) */
	unsigned unbound;    /* syscalls seen before the connection was HTTP */
	unsigned bad;        /* broken invariants */
	int closed;
	__u32 pid;
	__u8 win[H1_WINDOW];
};

static unsigned long long g_read_bytes; /* bytes the parser copied from "user" memory */

SONDE_INLINE int sonde_read_user(void *dst, __u32 n, const void *src)
{
	if (n == 0 || n > H1_WINDOW) {
		fprintf(stderr, "sonde_read_user(%u): outside the window\n", n);
		abort();
	}
	memcpy(dst, src, n);
	g_read_bytes += n;
	return 0;
}

SONDE_INLINE void sonde_stat_add(void *ctx, __u32 field)
{
	struct drv *d = ctx;

	if (field >= NSTATS) {
		d->bad++;
		return;
	}
	d->st[field]++;
}

SONDE_INLINE void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
				__u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	struct drv *d = ctx;
	struct ev *e;

	/* invariants of every report */
	if (c != &d->c || s < c->slots || s >= c->slots + SONDE_PIPELINE_DEPTH ||
	    s->path_len > SONDE_PATH_MAX || c->resp_seq == c->req_seq ||
	    (__s32)(c->req_seq - c->resp_seq) < 0 || s->seq != c->resp_seq ||
	    ts_end < s->ts_start || (flags & ~0x0f) || status > 999)
		d->bad++;
	if (d->nev == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->ev = realloc(d->ev, d->cap * sizeof(*d->ev));
		if (!d->ev)
			abort();
	}
	e = &d->ev[d->nev++];
	memset(e, 0, sizeof(*e));
	e->ts_start = s->ts_start;
	e->latency = ts_end - s->ts_start;
	e->req_bytes = s->req_bytes;
	e->resp_bytes = resp_bytes;
	e->pid = s->pid;
	e->tid = s->tid;
	e->seq = s->seq;
	e->status = status;
	e->method = s->method;
	e->flags = flags | s->flags;
	e->path_len = s->path_len <= SONDE_PATH_MAX ? s->path_len : SONDE_PATH_MAX;
	memcpy(e->path, s->path, e->path_len);
}

static struct drv *drv_new(void)
{
	struct drv *d = calloc(1, sizeof(*d));

	if (!d)
		abort();
	d->pid = 4242;
	return d;
}

/* A fresh connection, keeping the event buffer. */
static void drv_reset(struct drv *d)
{
	struct ev *ev = d->ev;
	unsigned cap = d->cap;

	memset(d, 0, sizeof(*d));
	d->ev = ev;
	d->cap = cap;
	d->pid = 4242;
}

/* dst becomes a copy of src (a checkpoint), keeping its own event buffer. */
static void drv_copy(struct drv *dst, const struct drv *src)
{
	struct ev *ev = dst->ev;
	unsigned cap = dst->cap;

	if (cap < src->nev) {
		cap = src->cap;
		ev = realloc(ev, cap * sizeof(*ev));
		if (!ev)
			abort();
	}
	memcpy(dst, src, sizeof(*dst));
	dst->ev = ev;
	dst->cap = cap;
	if (src->nev)
		memcpy(dst->ev, src->ev, src->nev * sizeof(*ev));
}

static void drv_free(struct drv *d)
{
	free(d->ev);
	free(d);
}

static void drv_check_seq(struct drv *d)
{
	if ((__s32)(d->c.req_seq - d->c.resp_seq) < 0)
		d->bad++; /* resp_seq passed req_seq */
}

/* One syscall of len bytes at buf on direction dir, with an explicit meta. */
static int drv_feed_meta(struct drv *d, __u8 dir, const __u8 *buf, __u64 len,
			 const struct h1_meta *m)
{
	struct h1_cursor cur = { .off = 0, .len = len };
	__u32 first = len < 8 ? (__u32)len : 8;
	unsigned zeros = 0;
	__u64 off;
	int r;

	if (d->closed)
		return -2;
	if (d->c.req_dir == H1_DIR_NONE && !h1_bind(&d->c, dir, buf, first)) {
		d->unbound++;
		return -3; /* not HTTP yet: try again on the next syscall */
	}
	h1_feed_begin(&d->c, dir, buf, first);
	/* as the BPF program does it, one tail call per round */
	for (off = cur.off;; off = cur.off) {
		r = h1_feed_steps(d, &d->c, dir, buf, &cur, d->win, m);
		if (r < 0)
			break;
		if (cur.ev)
			h1_feed_event(d, &d->c, dir, &cur, m);
		if (r == 1)
			break;
		/* a round that stops early has consumed bytes: the loop ends */
		if (r != 0 || cur.off <= off || cur.off > len || ++zeros > len) {
			d->bad++;
			break;
		}
	}
	if ((r == 1 && cur.off != len) || (r != 1 && r != -1))
		d->bad++;
	d->zero_rounds += zeros;
	drv_check_seq(d);
	return r;
}

/* One syscall, timed by the byte clock: it starts when every byte before it
 * has moved and ends when its own have. */
static int drv_feed(struct drv *d, __u8 dir, const __u8 *buf, __u64 len)
{
	struct h1_meta m = {
		.ts_start = T0 + d->clock, .ts_end = T0 + d->clock + len,
		.pid = d->pid, .tid = d->pid + 1,
	};

	d->clock += len;
	return drv_feed_meta(d, dir, buf, len, &m);
}

static void drv_eof(struct drv *d, __u8 dir)
{
	struct h1_meta m = { .ts_start = T0 + d->clock, .ts_end = T0 + d->clock,
			     .pid = d->pid, .tid = d->pid + 1 };

	if (d->closed)
		return;
	h1_peer_eof(d, &d->c, dir, &m);
	drv_check_seq(d);
}

static void drv_close(struct drv *d)
{
	struct h1_meta m = { .ts_start = T0 + d->clock, .ts_end = T0 + d->clock,
			     .pid = d->pid, .tid = d->pid + 1 };

	if (d->closed)
		return;
	h1_close(d, &d->c, &m);
	drv_check_seq(d);
	d->closed = 1;
}

static int drv_expire(struct drv *d, __u64 now, __u64 timeout)
{
	int r = h1_expire_one(d, &d->c, now, timeout);

	drv_check_seq(d);
	return r;
}

/* ---- scripts: a connection's syscalls from the client's point of view ---- */

enum { OP_SEND = 1, OP_RECV, OP_EOF, OP_CLOSE };
enum { CLIENT = 0, SERVER = 1 };

struct op {
	int kind;
	const __u8 *p;
	size_t n;
};

struct script {
	struct op *op;
	size_t n, cap;
};

static void sc_add(struct script *s, int kind, const __u8 *p, size_t n)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->op = realloc(s->op, s->cap * sizeof(*s->op));
		if (!s->op)
			abort();
	}
	s->op[s->n++] = (struct op){ kind, p, n };
}

static void sc_cat(struct script *dst, const struct script *src)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		sc_add(dst, src->op[i].kind, src->op[i].p, src->op[i].n);
}

static void sc_free(struct script *s)
{
	free(s->op);
	memset(s, 0, sizeof(*s));
}

/* Data ops that are adjacent in memory and direction become one syscall. */
static struct script sc_merge(const struct script *s)
{
	struct script m = { 0 };
	size_t i;

	for (i = 0; i < s->n; i++) {
		const struct op *o = &s->op[i];
		struct op *last = m.n ? &m.op[m.n - 1] : NULL;

		if (last && last->kind == o->kind && (o->kind == OP_SEND || o->kind == OP_RECV) &&
		    last->p + last->n == o->p)
			last->n += o->n;
		else
			sc_add(&m, o->kind, o->p, o->n);
	}
	return m;
}

/* Play one piece of a data op; small pieces get an exact-size copy so that
 * ASan sees any read past the syscall's buffer. */
static void play_data(struct drv *d, int kind, int role, const __u8 *p, size_t n)
{
	__u8 dir = (kind == OP_SEND) == (role == CLIENT) ? H1_DIR_SEND : H1_DIR_RECV;

	if (n <= 512) {
		__u8 *copy = malloc(n ? n : 1);

		if (!copy)
			abort();
		memcpy(copy, p, n);
		drv_feed(d, dir, copy, n);
		free(copy);
	} else {
		drv_feed(d, dir, p, n);
	}
}

static void play_op(struct drv *d, const struct op *o, int role)
{
	switch (o->kind) {
	case OP_SEND:
	case OP_RECV:
		play_data(d, o->kind, role, o->p, o->n);
		break;
	case OP_EOF:
		/* the client read 0: the server had closed */
		if (role == CLIENT)
			drv_eof(d, H1_DIR_RECV);
		else
			drv_close(d);
		break;
	case OP_CLOSE:
		drv_close(d);
		break;
	}
}

static void play(struct drv *d, const struct script *s, int role)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		play_op(d, &s->op[i], role);
}

/* Play s from op `from` on, with data op `at` cut in two syscalls at byte k. */
static void play_split_from(struct drv *d, const struct script *s, int role, size_t from,
			    size_t at, size_t k)
{
	size_t i;

	for (i = from; i < s->n; i++) {
		const struct op *o = &s->op[i];

		if (i != at) {
			play_op(d, o, role);
			continue;
		}
		play_data(d, o->kind, role, o->p, k);
		play_data(d, o->kind, role, o->p + k, o->n - k);
	}
}

static void play_split(struct drv *d, const struct script *s, int role, size_t at, size_t k)
{
	play_split_from(d, s, role, 0, at, k);
}

static __u64 rng_state = 0x9e3779b97f4a7c15ULL;

static __u64 rng(void)
{
	__u64 x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* A piece length for random splits: often tiny, sometimes large. */
static size_t rng_piece(size_t left)
{
	size_t n;

	switch (rng() % 4) {
	case 0: n = 1 + rng() % 8; break;
	case 1: n = 1 + rng() % 64; break;
	case 2: n = 1 + rng() % 2048; break;
	default: n = left; break;
	}
	return n < left ? n : left;
}

/* Play s with every data op cut into random pieces. */
static void play_random(struct drv *d, const struct script *s, int role)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		const struct op *o = &s->op[i];
		size_t off = 0;

		if (o->kind != OP_SEND && o->kind != OP_RECV) {
			play_op(d, o, role);
			continue;
		}
		do {
			size_t n = rng_piece(o->n - off);

			play_data(d, o->kind, role, o->p + off, n);
			off += n;
		} while (off < o->n);
	}
}

/* Play s with every data op cut into pieces of n bytes. */
static void play_every(struct drv *d, const struct script *s, int role, size_t piece)
{
	size_t i, off;

	for (i = 0; i < s->n; i++) {
		const struct op *o = &s->op[i];

		if (o->kind != OP_SEND && o->kind != OP_RECV) {
			play_op(d, o, role);
			continue;
		}
		for (off = 0; off < o->n; off += piece)
			play_data(d, o->kind, role, o->p + off, o->n - off < piece ? o->n - off : piece);
	}
}

/* ---- captures ------------------------------------------------------------ */

enum { K_KEEP, K_EOF, K_TUNNEL };

/* One expected transaction (NAME.expect). */
struct xp {
	__u8 method;
	__u16 status;
	size_t path_len;
	__u64 req_bytes, resp_bytes;
	char path[1024];
};

struct cap {
	const char *name;
	int kind;      /* K_KEEP: responses frame themselves; K_EOF: ends at close; K_TUNNEL: 101/CONNECT */
	int single;    /* exactly one transaction */
	__u8 *req, *resp;
	size_t req_len, resp_len;
	struct script chunks; /* recorded syscalls, without the final EOF */
	struct script merged; /* the same, adjacent same-direction syscalls merged */
	int has_eof;          /* the client read 0 at the end */
	struct xp *x;
	int nx;
	size_t req_head, resp_head; /* length of the first message heads */
};

#define CAP(n, k, s) { .name = n, .kind = k, .single = s }
static struct cap caps[] = {
	CAP("nginx_get", K_KEEP, 1),      CAP("nginx_head", K_KEEP, 1),
	CAP("nginx_304", K_KEEP, 1),      CAP("nginx_404", K_KEEP, 1),
	CAP("nginx_big", K_KEEP, 1),      CAP("nginx_gzip_chunked", K_KEEP, 1),
	CAP("nginx_trace", K_KEEP, 1),    CAP("nginx_204", K_KEEP, 1),
	CAP("nginx_post", K_KEEP, 1),     CAP("nginx_longpath", K_KEEP, 1),
	CAP("nginx_pipeline6", K_KEEP, 0), CAP("nginx_keepalive", K_KEEP, 0),
	CAP("py_chunked", K_KEEP, 1),     CAP("py_post", K_KEEP, 1),
	CAP("py_103", K_KEEP, 1),         CAP("py_204", K_KEEP, 1),
	CAP("py_options", K_KEEP, 1),     CAP("py_delete", K_KEEP, 1),
	CAP("py_put", K_KEEP, 1),         CAP("py_patch", K_KEEP, 1),
	CAP("py_connect", K_TUNNEL, 1),   CAP("py_close", K_EOF, 1),
	CAP("py_upgrade", K_TUNNEL, 1),   CAP("pyhttp_get", K_KEEP, 1),
	CAP("pyhttp_404", K_KEEP, 1),     CAP("curl_continue", K_KEEP, 1),
	CAP("curl_get", K_KEEP, 1),       CAP("curl_head", K_KEEP, 1),
	CAP("curl_gzip", K_KEEP, 1),      CAP("curl_big", K_KEEP, 1),
};
#define NCAPS (sizeof(caps) / sizeof(caps[0]))

static const char *method_names[] = { "?", "GET", "POST", "PUT", "DELETE", "HEAD",
				      "OPTIONS", "PATCH", "CONNECT", "TRACE" };

static __u8 method_of(const char *s)
{
	__u8 i;

	for (i = 1; i < SONDE_M__COUNT; i++)
		if (!strcmp(s, method_names[i]))
			return i;
	return SONDE_M_UNKNOWN;
}

static char *read_file(const char *dir, const char *name, const char *ext, size_t *len)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s (run from the repo root or pass the capture dir)\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n ? n : 1); /* exact size: ASan catches reads past the end */
	if (!buf || fread(buf, 1, n, f) != (size_t)n)
		abort();
	fclose(f);
	*len = n;
	return buf;
}

static size_t head_len(const __u8 *p, size_t n)
{
	const __u8 *e = memmem(p, n, "\r\n\r\n", 4);

	return e ? (size_t)(e - p) + 4 : n;
}

static void load_cap(const char *dir, struct cap *k)
{
	size_t n, ro = 0, so = 0;
	char *txt, *line, *save;

	k->req = (__u8 *)read_file(dir, k->name, ".req", &k->req_len);
	k->resp = (__u8 *)read_file(dir, k->name, ".resp", &k->resp_len);
	k->req_head = head_len(k->req, k->req_len);
	k->resp_head = head_len(k->resp, k->resp_len);

	txt = read_file(dir, k->name, ".chunks", &n);
	txt = realloc(txt, n + 1);
	txt[n] = 0;
	for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strtoul(line + 1, NULL, 10);

		if (line[0] == '>') {
			sc_add(&k->chunks, OP_SEND, k->req + ro, len);
			ro += len;
		} else if (line[0] == '<') {
			sc_add(&k->chunks, OP_RECV, k->resp + so, len);
			so += len;
		} else if (!strcmp(line, "EOF")) {
			k->has_eof = 1;
		}
	}
	free(txt);
	if (ro != k->req_len || so != k->resp_len) {
		fprintf(stderr, "%s: .chunks does not add up\n", k->name);
		exit(2);
	}
	k->merged = sc_merge(&k->chunks);

	txt = read_file(dir, k->name, ".expect", &n);
	txt = realloc(txt, n + 1);
	txt[n] = 0;
	for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char m[16];
		struct xp *x;
		unsigned st;
		unsigned long long rq, rs;

		k->x = realloc(k->x, (k->nx + 1) * sizeof(*k->x));
		x = &k->x[k->nx++];
		memset(x, 0, sizeof(*x));
		if (sscanf(line, "%15s %1023s %u %llu %llu", m, x->path, &st, &rq, &rs) != 5) {
			fprintf(stderr, "%s: bad .expect line\n", k->name);
			exit(2);
		}
		x->method = method_of(m);
		x->status = st;
		x->req_bytes = rq;
		x->resp_bytes = rs;
		x->path_len = strlen(x->path);
	}
	free(txt);
}

static struct cap *cap(const char *name)
{
	size_t i;

	for (i = 0; i < NCAPS; i++)
		if (!strcmp(caps[i].name, name))
			return &caps[i];
	fprintf(stderr, "no capture %s\n", name);
	abort();
}

/* The capture's syscalls as recorded, with its final EOF when it had one. */
static struct script cap_script(const struct cap *k, int merged)
{
	struct script s = { 0 };

	sc_cat(&s, merged ? &k->merged : &k->chunks);
	if (k->has_eof)
		sc_add(&s, OP_EOF, NULL, 0);
	return s;
}

/* ---- expectations -------------------------------------------------------- */

static void expect_ev(const struct ev *e, const struct xp *x, __u8 flags)
{
	size_t pl = x->path_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : x->path_len;

	if (x->path_len > SONDE_PATH_MAX)
		flags |= SONDE_F_PATH_TRUNCATED;
	ASSERT_EQ(e->method, x->method);
	ASSERT_EQ(e->status, x->status);
	ASSERT_EQ(e->req_bytes, x->req_bytes);
	ASSERT_EQ(e->resp_bytes, x->resp_bytes);
	ASSERT_EQ(e->flags, flags);
	ASSERT_EQ(e->path_len, pl);
	if (e->path_len == pl)
		ASSERT_MEM(e->path, x->path, pl);
	ASSERT_EQ(e->pid, 4242);
	ASSERT_GE(e->latency, 1);
}

/* Events [first, first + nx) are the capture's transactions. */
static void expect_cap(const struct drv *d, unsigned first, const struct cap *k)
{
	int i;

	ASSERT_EQ(d->nev, first + k->nx);
	for (i = 0; i < k->nx && first + i < d->nev; i++)
		expect_ev(&d->ev[first + i], &k->x[i], 0);
}

/* Nothing went wrong on the connection. */
static void expect_clean(const struct drv *d)
{
	ASSERT_EQ(d->bad, 0);
	ASSERT_EQ(d->st[ST(parse_lost)], 0);
	ASSERT_EQ(d->st[ST(unpaired_responses)], 0);
	ASSERT_EQ(d->st[ST(pipeline_overflow)], 0);
	ASSERT_EQ(d->st[ST(closed_pending)], 0);
}

static int ev_same(const struct ev *a, const struct ev *b, int latency)
{
	return a->method == b->method && a->status == b->status && a->flags == b->flags &&
	       a->req_bytes == b->req_bytes && a->resp_bytes == b->resp_bytes &&
	       a->path_len == b->path_len && !memcmp(a->path, b->path, a->path_len) &&
	       a->seq == b->seq && a->pid == b->pid && a->tid == b->tid &&
	       (!latency || (a->latency == b->latency && a->ts_start == b->ts_start));
}

/* Two runs reported the same transactions and counted the same events. */
static int same_run(const struct drv *a, const struct drv *b, int latency)
{
	unsigned i;

	if (a->nev != b->nev || a->bad || b->bad || memcmp(a->st, b->st, sizeof(a->st)))
		return 0;
	for (i = 0; i < a->nev; i++)
		if (!ev_same(&a->ev[i], &b->ev[i], latency))
			return 0;
	return 1;
}

/* Say how two runs differ (after a failed same_run). */
static void explain(const struct drv *a, const struct drv *b)
{
	unsigned i;

	if (t_fail > 3)
		return;
	if (a->nev != b->nev)
		fprintf(stderr, "      events: %u vs %u\n", a->nev, b->nev);
	if (a->bad || b->bad)
		fprintf(stderr, "      broken invariants: %u vs %u\n", a->bad, b->bad);
	for (i = 0; i < NSTATS; i++)
		if (a->st[i] != b->st[i])
			fprintf(stderr, "      stat %u: %llu vs %llu\n", i,
				(unsigned long long)a->st[i], (unsigned long long)b->st[i]);
	for (i = 0; i < a->nev && i < b->nev; i++) {
		const struct ev *x = &a->ev[i], *y = &b->ev[i];

		if (ev_same(x, y, 1))
			continue;
		fprintf(stderr, "      event %u: status %u/%u flags %u/%u req %llu/%llu resp %llu/%llu "
			"latency %llu/%llu ts %llu/%llu seq %u/%u path %.*s / %.*s\n", i,
			x->status, y->status, x->flags, y->flags, (unsigned long long)x->req_bytes,
			(unsigned long long)y->req_bytes, (unsigned long long)x->resp_bytes,
			(unsigned long long)y->resp_bytes, (unsigned long long)x->latency,
			(unsigned long long)y->latency, (unsigned long long)x->ts_start,
			(unsigned long long)y->ts_start, x->seq, y->seq, x->path_len, x->path,
			y->path_len, y->path);
		break;
	}
}

#define ASSERT_SAME(a, b, lat)                                                \
	do {                                                                  \
		if (!same_run(a, b, lat)) {                                   \
			t_report(__FILE__, __LINE__, "runs differ");          \
			explain(a, b);                                        \
		}                                                             \
	} while (0)

/* A buffer built from pieces of real captures (for hostile variants). */
struct buf {
	__u8 *p;
	size_t n;
};

static struct buf buf_of(const void *p, size_t n)
{
	struct buf b = { malloc(n ? n : 1), n };

	if (!b.p)
		abort();
	memcpy(b.p, p, n);
	return b;
}

/* Copy of src with `del` bytes at off replaced by ins. */
static struct buf buf_splice(const __u8 *src, size_t n, size_t off, size_t del, const char *ins,
			     size_t ins_len)
{
	struct buf b = { malloc(n - del + ins_len + 1), n - del + ins_len };

	if (!b.p)
		abort();
	memcpy(b.p, src, off);
	memcpy(b.p + off, ins, ins_len);
	memcpy(b.p + off + ins_len, src + off + del, n - off - del);
	return b;
}

/* Copy of src with the value of header `name` replaced by value. */
static struct buf buf_header(const __u8 *src, size_t n, const char *name, const char *value)
{
	const __u8 *h = memmem(src, n, name, strlen(name));
	size_t off, end;

	if (!h)
		abort();
	off = (size_t)(h - src) + strlen(name) + 2; /* "Name: " */
	for (end = off; end < n && src[end] != '\r'; end++)
		;
	return buf_splice(src, n, off, end - off, value, strlen(value));
}

static struct buf buf_cat(struct buf a, const void *p, size_t n)
{
	a.p = realloc(a.p, a.n + n + 1);
	memcpy(a.p + a.n, p, n);
	a.n += n;
	return a;
}

/* ---- tests: inference ---------------------------------------------------- */

static void test_infer_methods(void)
{
	static const char *reqs[] = { "GET / HTTP/1.1", "POST /a HTTP/1.1", "PUT /a HTTP/1.1",
				      "DELETE /a HTTP/1.1", "HEAD / HTTP/1.1", "OPTIONS * HTTP/1.1",
				      "PATCH /a HTTP/1.1", "CONNECT h:443 HTTP/1.1",
				      "TRACE / HTTP/1.1" };
	unsigned i;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const __u8 *b = (const __u8 *)reqs[i];
		__u32 n = strlen(reqs[i]);

		set_ctx("%s", reqs[i]);
		ASSERT_EQ(h1_infer(b, n < 8 ? n : 8), H1_INFER_REQUEST);
		/* the method and its space are enough */
		ASSERT_EQ(h1_infer(b, strchr(reqs[i], ' ') - reqs[i] + 1), H1_INFER_REQUEST);
		ASSERT_EQ(h1_infer(b, strchr(reqs[i], ' ') - reqs[i]), H1_INFER_NONE);
	}
	set_ctx("responses");
	ASSERT_EQ(h1_infer((const __u8 *)"HTTP/1.1 200 OK", 8), H1_INFER_RESPONSE);
	ASSERT_EQ(h1_infer((const __u8 *)"HTTP/1.0 404 Not Found", 8), H1_INFER_RESPONSE);
	ASSERT_EQ(h1_infer((const __u8 *)"HTTP/1.1 100 Continue", 8), H1_INFER_RESPONSE);
	ASSERT_EQ(h1_infer((const __u8 *)"HTTP/1.1", 7), H1_INFER_NONE);
	set_ctx("");
}

static void test_infer_not_http(void)
{
	static const struct {
		const char *b;
		__u32 n;
	} no[] = {
		{ "", 0 },
		{ "G", 1 },
		{ "GET", 3 },                     /* no space yet */
		{ "get / HTTP/1.1", 8 },          /* methods are upper case */
		{ "GETX / HTTP/1.1", 8 },
		{ "PROPFIND / HTTP/1.1", 8 },     /* unknown method */
		{ "OPTIONSX * HTTP/1.1", 8 },     /* no space in 8 bytes */
		{ "FOO / HTTP/1.1", 8 },
		{ " GET / HTTP/1.1", 8 },
		{ "\r\nGET / HTTP/1.1", 8 },
		{ "HTTP/2.0 200", 8 },
		{ "HTTP/1.x 200", 8 },
		{ "http/1.1 200", 8 },
		{ "HTTP/1.", 7 },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 8 }, /* HTTP/2 preface */
		{ "\x16\x03\x01\x02\x00\x01\x00\x01", 8 }, /* TLS ClientHello */
		{ "SSH-2.0-OpenSSH_9.2", 8 },
		{ "*1\r\n$4\r\nPING\r\n", 8 },            /* redis */
		{ "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8 }, /* postgres SSLRequest */
		{ "\xff\xfe\xfd\xfc\x00\x01\x02\x03", 8 },
	};
	unsigned i;

	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		set_ctx("case %u", i);
		ASSERT_EQ(h1_infer((const __u8 *)no[i].b, no[i].n), H1_INFER_NONE);
	}
	set_ctx("");
}

static void test_infer_captures(void)
{
	size_t i;

	for (i = 0; i < NCAPS; i++) {
		struct cap *k = &caps[i];

		set_ctx("%s", k->name);
		ASSERT_EQ(h1_infer(k->req, 8), H1_INFER_REQUEST);
		ASSERT_EQ(h1_infer(k->resp, 8), H1_INFER_RESPONSE);
	}
	set_ctx("");
}

static void test_bind_directions(void)
{
	struct h1_conn c;
	const __u8 *rq = cap("nginx_get")->req, *rs = cap("nginx_get")->resp;

	memset(&c, 0, sizeof(c));
	ASSERT_EQ(h1_bind(&c, H1_DIR_SEND, rq, 8), 1); /* a client writes a request */
	ASSERT_EQ(c.req_dir, H1_DIR_SEND);
	memset(&c, 0, sizeof(c));
	ASSERT_EQ(h1_bind(&c, H1_DIR_RECV, rq, 8), 1); /* a server reads one */
	ASSERT_EQ(c.req_dir, H1_DIR_RECV);
	memset(&c, 0, sizeof(c));
	ASSERT_EQ(h1_bind(&c, H1_DIR_RECV, rs, 8), 1); /* a client reads a response */
	ASSERT_EQ(c.req_dir, H1_DIR_SEND);
	memset(&c, 0, sizeof(c));
	ASSERT_EQ(h1_bind(&c, H1_DIR_SEND, rs, 8), 1); /* a server writes one */
	ASSERT_EQ(c.req_dir, H1_DIR_RECV);
	memset(&c, 0, sizeof(c));
	ASSERT_EQ(h1_bind(&c, H1_DIR_SEND, rs + 3, 8), 0);
	ASSERT_EQ(c.req_dir, H1_DIR_NONE);
}

/* ---- tests: every capture as recorded ------------------------------------ */

static void run_capture(struct cap *k, int role, int merged)
{
	struct drv *d = drv_new();
	struct script s = cap_script(k, merged);

	set_ctx("%s %s %s", k->name, role == CLIENT ? "client" : "server",
		merged ? "merged" : "recorded");
	play(d, &s, role);
	drv_close(d);
	if (!strcmp(k->name, "nginx_pipeline6")) {
		/* six requests in one write: the last two overflow the pipeline */
		ASSERT_EQ(d->nev, 4);
		ASSERT_EQ(d->st[ST(pipeline_overflow)], 2);
		for (unsigned i = 0; i < 4 && i < d->nev; i++)
			expect_ev(&d->ev[i], &k->x[i], 0);
	} else {
		expect_cap(d, 0, k);
		expect_clean(d);
	}
	ASSERT_EQ(d->bad, 0);
	ASSERT_EQ(d->unbound, 0);
	sc_free(&s);
	drv_free(d);
}

static void test_captures_client(void)
{
	for (size_t i = 0; i < NCAPS; i++)
		run_capture(&caps[i], CLIENT, 0);
	set_ctx("");
}

static void test_captures_server(void)
{
	for (size_t i = 0; i < NCAPS; i++)
		run_capture(&caps[i], SERVER, 0);
	set_ctx("");
}

static void test_captures_one_syscall(void)
{
	for (size_t i = 0; i < NCAPS; i++) {
		run_capture(&caps[i], CLIENT, 1);
		run_capture(&caps[i], SERVER, 1);
	}
	set_ctx("");
}

/* Bodies are skipped by count: the parser copies heads and chunk lines only. */
static void test_bodies_never_read(void)
{
	static const char *names[] = { "nginx_big", "curl_big", "nginx_gzip_chunked", "nginx_post",
				       "curl_continue" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cap *k = cap(names[i]);
		struct drv *d = drv_new();
		struct script s = cap_script(k, 0);
		int chunked = memmem(k->resp, k->resp_head, "chunked", 7) != NULL;

		set_ctx("%s", k->name);
		g_read_bytes = 0;
		play(d, &s, CLIENT);
		expect_cap(d, 0, k);
		/* heads are read, plus at most a window past each; a chunked body
		 * costs a window per chunk-size line */
		if (chunked)
			ASSERT_LE(g_read_bytes, k->resp_len / 20);
		else
			ASSERT_LE(g_read_bytes, k->req_head + (k->resp_len < 1000 ? k->resp_len : k->resp_head) +
							4 * H1_WINDOW);
		sc_free(&s);
		drv_free(d);
	}
	set_ctx("");
}

/* ---- tests: splits -------------------------------------------------------- */

/*
 * Every capture, primed with one exchange on the same connection (so the
 * connection is already bound to HTTP), then played with each syscall cut
 * in two at every byte: the result must be the one of the uncut run.
 */
static void split_every_byte(int role)
{
	struct drv *base = drv_new(), *d = drv_new(), *snap = drv_new();
	const struct cap *prime = cap("nginx_get");
	size_t i, at, kk;

	for (i = 0; i < NCAPS; i++) {
		struct cap *k = &caps[i];
		struct script s = { 0 };
		/* a 101 or CONNECT ends mid-syscall: its end time moves with the cut */
		int latency = k->nx == 1 && k->kind != K_TUNNEL;

		if (!k->single)
			continue;
		sc_cat(&s, &prime->merged);
		sc_cat(&s, &k->merged);
		if (k->has_eof)
			sc_add(&s, OP_EOF, NULL, 0);
		sc_add(&s, OP_CLOSE, NULL, 0);
		drv_reset(base);
		play(base, &s, role);
		set_ctx("%s %s", k->name, role == CLIENT ? "client" : "server");
		expect_cap(base, 1, k);
		drv_reset(snap);
		for (at = 0; at < prime->merged.n; at++)
			play_op(snap, &s.op[at], role);
		for (at = prime->merged.n; at < s.n; play_op(snap, &s.op[at], role), at++) {
			if (s.op[at].kind != OP_SEND && s.op[at].kind != OP_RECV)
				continue;
			for (kk = 1; kk < s.op[at].n; kk++) {
				/* from a checkpoint taken before op `at` */
				drv_copy(d, snap);
				play_split_from(d, &s, role, at, at, kk);
				if (!same_run(base, d, latency)) {
					set_ctx("%s %s op %zu split at %zu", k->name,
						role == CLIENT ? "client" : "server", at, kk);
					ASSERT_SAME(base, d, latency);
					expect_cap(d, 1, k);
					break;
				}
			}
		}
		sc_free(&s);
	}
	set_ctx("");
	drv_free(base);
	drv_free(d);
	drv_free(snap);
}

static void test_split_every_byte_client(void) { split_every_byte(CLIENT); }

/* Same parser state, apart from when requests started (a request that begins
 * after a cut starts with the second syscall). */
static int state_same(const struct drv *a, const struct drv *b)
{
	struct h1_conn x, y;
	unsigned i;

	memcpy(&x, &a->c, sizeof(x));
	memcpy(&y, &b->c, sizeof(y));
	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++)
		x.slots[i].ts_start = y.slots[i].ts_start = 0;
	if (memcmp(&x, &y, sizeof(x)) || a->nev != b->nev || a->bad || b->bad ||
	    memcmp(a->st, b->st, sizeof(a->st)))
		return 0;
	for (i = 0; i < a->nev; i++)
		if (!ev_same(&a->ev[i], &b->ev[i], 0))
			return 0;
	return 1;
}

/*
 * The long captures (six pipelined requests; 24 keep-alive exchanges over
 * 556 KB), every recorded syscall cut in two at every byte: after the two
 * pieces the parser is where the uncut syscall leaves it, with the same
 * reports, so the rest of the connection cannot differ either.
 */
static void test_split_every_byte_long(void)
{
	static const char *names[] = { "nginx_pipeline6", "nginx_keepalive" };
	struct drv *before = drv_new(), *after = drv_new(), *d = drv_new();

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cap *k = cap(names[i]);

		for (int role = CLIENT; role <= SERVER; role++) {
			drv_reset(before);
			play(before, &cap("nginx_get")->merged, role);
			for (size_t at = 0; at < k->chunks.n; at++) {
				const struct op *o = &k->chunks.op[at];

				drv_copy(after, before);
				play_op(after, o, role);
				for (size_t kk = 1; kk < o->n; kk++) {
					drv_copy(d, before);
					play_data(d, o->kind, role, o->p, kk);
					play_data(d, o->kind, role, o->p + kk, o->n - kk);
					if (!state_same(after, d)) {
						set_ctx("%s role %d syscall %zu cut at %zu", k->name, role,
							at, kk);
						ASSERT_TRUE(state_same(after, d));
						explain(after, d);
						break;
					}
				}
				drv_copy(before, after);
			}
			drv_close(before);
			ASSERT_EQ(before->nev, 1 + (k->nx == 6 ? 4 : k->nx));
		}
	}
	set_ctx("");
	drv_free(before);
	drv_free(after);
	drv_free(d);
}
static void test_split_every_byte_server(void) { split_every_byte(SERVER); }

/* On a fresh connection, a first syscall of 8 bytes or more binds it; splits
 * from there on give the uncut result too. */
static void test_split_unprimed(void)
{
	struct drv *base = drv_new(), *d = drv_new();
	size_t i, at, kk;

	for (i = 0; i < NCAPS; i++) {
		struct cap *k = &caps[i];
		struct script s;

		if (!k->single || k->resp_len > 20000)
			continue;
		s = cap_script(k, 1);
		for (int role = CLIENT; role <= SERVER; role++) {
			drv_reset(base);
			play(base, &s, role);
			drv_close(base);
			for (at = 0; at < s.n; at++) {
				if (s.op[at].kind != OP_SEND && s.op[at].kind != OP_RECV)
					continue;
				for (kk = at == 0 ? 8 : 1; kk < s.op[at].n; kk++) {
					drv_reset(d);
					play_split(d, &s, role, at, kk);
					drv_close(d);
					if (!same_run(base, d, k->kind != K_TUNNEL)) {
						set_ctx("%s role %d op %zu split at %zu", k->name, role, at, kk);
						ASSERT_SAME(base, d, k->kind != K_TUNNEL);
						break;
					}
				}
			}
		}
		sc_free(&s);
	}
	set_ctx("");
	drv_free(base);
	drv_free(d);
}

/*
 * Random multi-way splits (fixed seed) of every capture, both roles, after a
 * whole exchange that binds the connection. (A connection whose very first
 * syscall is shorter than "GET " cannot be recognised: test_split_unprimed.)
 */
static void test_split_random(void)
{
	struct drv *base = drv_new(), *d = drv_new();
	const struct cap *prime = cap("nginx_get");
	size_t i;
	int it, role;

	rng_state = 0x5eed5eed12345678ULL;
	for (i = 0; i < NCAPS; i++) {
		struct cap *k = &caps[i];
		struct script s = { 0 };
		int iters = k->resp_len > 200000 ? 4 : 30;

		sc_cat(&s, &k->chunks);
		if (k->has_eof)
			sc_add(&s, OP_EOF, NULL, 0);
		sc_add(&s, OP_CLOSE, NULL, 0);
		for (role = CLIENT; role <= SERVER; role++) {
			drv_reset(base);
			play(base, &prime->merged, role);
			play(base, &s, role);
			for (it = 0; it < iters; it++) {
				drv_reset(d);
				play(d, &prime->merged, role);
				play_random(d, &s, role);
				set_ctx("%s role %d iteration %d", k->name, role, it);
				ASSERT_SAME(base, d, k->single);
				if (!same_run(base, d, k->single))
					break;
			}
		}
		sc_free(&s);
	}
	set_ctx("");
	drv_free(base);
	drv_free(d);
}

/* Every capture one byte per syscall. */
static void test_split_one_byte_reads(void)
{
	struct drv *base = drv_new(), *d = drv_new();
	const struct cap *prime = cap("nginx_get");

	for (size_t i = 0; i < NCAPS; i++) {
		struct cap *k = &caps[i];
		struct script s = { 0 };

		if (k->resp_len > 200000)
			continue;
		sc_cat(&s, &k->chunks);
		if (k->has_eof)
			sc_add(&s, OP_EOF, NULL, 0);
		sc_add(&s, OP_CLOSE, NULL, 0);
		for (int role = CLIENT; role <= SERVER; role++) {
			drv_reset(base);
			drv_reset(d);
			play(base, &prime->merged, role);
			play(d, &prime->merged, role);
			play(base, &s, role);
			play_every(d, &s, role, 1);
			set_ctx("%s role %d", k->name, role);
			ASSERT_SAME(base, d, k->single);
		}
		sc_free(&s);
	}
	set_ctx("");
	drv_free(base);
	drv_free(d);
}

/* ---- tests: pipelining ---------------------------------------------------- */

/* Offsets of the transactions of a multi-transaction capture. */
static void cap_offsets(const struct cap *k, size_t *ro, size_t *so)
{
	int i;

	ro[0] = so[0] = 0;
	for (i = 0; i < k->nx; i++) {
		ro[i + 1] = ro[i] + k->x[i].req_bytes;
		so[i + 1] = so[i] + k->x[i].resp_bytes;
	}
}

static void test_pipeline_one_send_one_read(void)
{
	struct cap *k = cap("nginx_pipeline6");
	size_t ro[8], so[8];
	struct drv *d = drv_new();

	cap_offsets(k, ro, so);
	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("role %d", role);
		/* four requests in one write (a HEAD among them), four responses in one read */
		play_data(d, OP_SEND, role, k->req, ro[4]);
		ASSERT_EQ(d->c.req_seq - d->c.resp_seq, 4);
		play_data(d, OP_RECV, role, k->resp, so[4]);
		ASSERT_EQ(d->nev, 4);
		for (unsigned i = 0; i < 4 && i < d->nev; i++)
			expect_ev(&d->ev[i], &k->x[i], 0);
		expect_clean(d);
		/* the latency of each runs to the end of the one read */
		for (unsigned i = 0; i < d->nev; i++)
			ASSERT_EQ(d->ev[i].latency, ro[4] + so[4]);
	}
	set_ctx("");
	drv_free(d);
}

static void test_pipeline_responses_split(void)
{
	struct cap *k = cap("nginx_pipeline6");
	size_t ro[8], so[8], cut;
	struct drv *base = drv_new(), *d = drv_new();
	struct script s = { 0 };

	cap_offsets(k, ro, so);
	sc_add(&s, OP_SEND, k->req, ro[4]);
	sc_add(&s, OP_RECV, k->resp, so[4]);
	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(base);
		play(base, &s, role);
		/* responses in two reads, cut at every byte */
		for (cut = 1; cut < so[4]; cut++) {
			drv_reset(d);
			play_split(d, &s, role, 1, cut);
			set_ctx("role %d cut %zu", role, cut);
			if (!same_run(base, d, 0)) {
				ASSERT_SAME(base, d, 0);
				break;
			}
		}
		/* one read per response, and requests one per write */
		drv_reset(d);
		for (int i = 0; i < 4; i++)
			play_data(d, OP_SEND, role, k->req + ro[i], ro[i + 1] - ro[i]);
		for (int i = 0; i < 4; i++)
			play_data(d, OP_RECV, role, k->resp + so[i], so[i + 1] - so[i]);
		set_ctx("role %d one per syscall", role);
		ASSERT_SAME(base, d, 0);
		/* random pieces (the requests' first piece is kept whole: a first
		 * syscall shorter than "GET " does not bind the connection) */
		for (int it = 0; it < 200; it++) {
			drv_reset(d);
			play_data(d, OP_SEND, role, k->req, 8);
			s.op[0].p += 8, s.op[0].n -= 8;
			play_random(d, &s, role);
			s.op[0].p -= 8, s.op[0].n += 8;
			set_ctx("role %d random %d", role, it);
			if (!same_run(base, d, 0)) {
				ASSERT_SAME(base, d, 0);
				break;
			}
		}
	}
	set_ctx("");
	sc_free(&s);
	drv_free(base);
	drv_free(d);
}

/* Six pipelined requests to nginx: two beyond the depth are counted, not
 * reported, and the exchanges after them still pair right. */
static void test_pipeline_depth_overflow(void)
{
	struct cap *k = cap("nginx_pipeline6"), *g = cap("nginx_404");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("role %d", role);
		play(d, &k->chunks, role);
		ASSERT_EQ(d->nev, 4);
		ASSERT_EQ(d->st[ST(pipeline_overflow)], 2);
		ASSERT_EQ(d->c.req_seq, d->c.resp_seq);
		for (int n = 0; n < 3; n++)
			play(d, &g->chunks, role);
		ASSERT_EQ(d->nev, 7);
		for (unsigned i = 4; i < d->nev; i++)
			expect_ev(&d->ev[i], &g->x[0], 0);
		ASSERT_EQ(d->st[ST(parse_lost)], 0);
		ASSERT_EQ(d->st[ST(unpaired_responses)], 0);
		ASSERT_EQ(d->bad, 0);
	}
	set_ctx("");
	drv_free(d);
}

/*
 * Random schedules of writes and reads over exchanges of the real captures
 * (never HEAD: a HEAD beyond the depth has no slot to say its response has
 * no body). A request is tracked when fewer than SONDE_PIPELINE_DEPTH were
 * outstanding as it started; exactly the tracked ones are reported, in order,
 * with their own fields.
 */
static void test_pipeline_random_schedules(void)
{
	static const char *pool[] = { "nginx_get", "nginx_404", "nginx_204", "nginx_304",
				      "nginx_post", "nginx_gzip_chunked", "py_chunked", "py_103",
				      "py_post", "curl_continue", "nginx_trace", "pyhttp_404" };
	enum { NX = 14 };
	struct drv *d = drv_new();
	int it;

	rng_state = 0xfeedface0badcafeULL;
	for (it = 0; it < 300; it++) {
		const struct cap *ex[NX];
		int tracked[NX], sent = 0, recvd = 0, done = 0, want = 0, role = it & 1;
		unsigned overflow = 0, ev0;
		__u32 seq0;
		struct buf b = { 0 };

		drv_reset(d);
		/* bind the connection first */
		play(d, &cap("nginx_get")->merged, role);
		ev0 = d->nev;
		seq0 = d->c.req_seq;
		for (int i = 0; i < NX; i++)
			ex[i] = cap(pool[rng() % (sizeof(pool) / sizeof(pool[0]))]);
		while (recvd < NX) {
			/* a write of 1..3 requests, or a read of 1..3 responses */
			int writing = sent < NX && (sent == recvd || rng() % 2);
			int n = 1 + rng() % 3;

			b.n = 0;
			if (writing) {
				for (int i = 0; i < n && sent < NX; i++, sent++) {
					tracked[sent] = sent - done < SONDE_PIPELINE_DEPTH;
					overflow += !tracked[sent];
					b = buf_cat(b, ex[sent]->req, ex[sent]->req_len);
				}
			} else {
				for (int i = 0; i < n && recvd < sent; i++, recvd++)
					b = buf_cat(b, ex[recvd]->resp, ex[recvd]->resp_len);
			}
			/* the syscall itself, maybe in random pieces */
			{
				struct script s = { 0 };

				sc_add(&s, writing ? OP_SEND : OP_RECV, b.p, b.n);
				if (rng() % 2)
					play_random(d, &s, role);
				else
					play(d, &s, role);
				sc_free(&s);
			}
			if (!writing)
				done = recvd;
		}
		set_ctx("schedule %d", it);
		for (int i = 0; i < NX; i++)
			want += tracked[i];
		ASSERT_EQ(d->nev - ev0, want);
		ASSERT_EQ(d->st[ST(pipeline_overflow)], overflow);
		ASSERT_EQ(d->st[ST(parse_lost)], 0);
		ASSERT_EQ(d->st[ST(unpaired_responses)], 0);
		ASSERT_EQ(d->bad, 0);
		for (unsigned i = 0, e = ev0; i < NX && e < d->nev; i++) {
			if (!tracked[i])
				continue;
			expect_ev(&d->ev[e], &ex[i]->x[0], 0);
			ASSERT_EQ(d->ev[e].seq, seq0 + i);
			e++;
		}
		free(b.p);
		if (t_fail)
			break;
	}
	set_ctx("");
	drv_free(d);
}

/* ---- tests: long connections --------------------------------------------- */

static void test_keepalive_nginx(void)
{
	struct cap *k = cap("nginx_keepalive");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("role %d", role);
		play(d, &k->chunks, role);
		drv_close(d);
		ASSERT_EQ(k->nx, 24);
		expect_cap(d, 0, k);
		expect_clean(d);
		ASSERT_EQ(d->ev[23].seq, 23);
	}
	set_ctx("");
	drv_free(d);
}

/* Every keep-alive capture, one after the other, three rounds on one connection. */
static void test_keepalive_everything(void)
{
	struct drv *d = drv_new();
	struct script s = { 0 };
	unsigned want = 0;

	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < NCAPS; i++)
			if (caps[i].kind == K_KEEP && strcmp(caps[i].name, "nginx_pipeline6")) {
				sc_cat(&s, &caps[i].chunks);
				want += caps[i].nx;
			}
	sc_add(&s, OP_CLOSE, NULL, 0);
	rng_state = 0xabcdef;
	for (int role = CLIENT; role <= SERVER; role++) {
		for (int how = 0; how < 3; how++) {
			unsigned e = 0;

			drv_reset(d);
			set_ctx("role %d how %d", role, how);
			if (how == 0)
				play(d, &s, role);
			else if (how == 1)
				play_random(d, &s, role);
			else
				play_every(d, &s, role, 1000);
			ASSERT_EQ(d->nev, want);
			expect_clean(d);
			for (int round = 0; round < 3; round++)
				for (size_t i = 0; i < NCAPS && e < d->nev; i++)
					if (caps[i].kind == K_KEEP &&
					    strcmp(caps[i].name, "nginx_pipeline6")) {
						for (int x = 0; x < caps[i].nx && e < d->nev; x++)
							expect_ev(&d->ev[e++], &caps[i].x[x], 0);
					}
		}
	}
	set_ctx("");
	sc_free(&s);
	drv_free(d);
}

/* ---- tests: framing --------------------------------------------------------- */

static void test_chunked_many_chunks_per_read(void)
{
	struct cap *k = cap("py_chunked");
	struct drv *d = drv_new();
	size_t nchunks = 0, off;
	const __u8 *p;

	/* the capture has 64 chunks (one with an extension) and a trailer */
	for (p = k->resp + k->resp_head; p < k->resp + k->resp_len;) {
		unsigned long n = strtoul((const char *)p, NULL, 16);
		const __u8 *nl = memmem(p, k->resp + k->resp_len - p, "\r\n", 2);

		nchunks++;
		if (!n || !nl)
			break;
		p = nl + 2 + n + 2;
	}
	ASSERT_EQ(nchunks, 65);
	ASSERT_TRUE(memmem(k->resp, k->resp_len, ";name=v5", 8) != NULL);
	ASSERT_TRUE(memmem(k->resp, k->resp_len, "X-Checksum: 42", 14) != NULL);

	for (int role = CLIENT; role <= SERVER; role++) {
		/* all 64 chunks in one read */
		drv_reset(d);
		play_data(d, OP_SEND, role, k->req, k->req_len);
		play_data(d, OP_RECV, role, k->resp, k->resp_len);
		expect_cap(d, 0, k);
		expect_clean(d);
		/* a cut inside each chunk-size line (and its CRLF) */
		for (p = k->resp + k->resp_head; p < k->resp + k->resp_len;) {
			const __u8 *nl = memmem(p, k->resp + k->resp_len - p, "\r\n", 2);
			unsigned long n = strtoul((const char *)p, NULL, 16);

			for (off = p - k->resp + 1; off <= (size_t)(nl - k->resp) + 1; off++) {
				drv_reset(d);
				play_data(d, OP_SEND, role, k->req, k->req_len);
				play_data(d, OP_RECV, role, k->resp, off);
				ASSERT_EQ(d->nev, 0);
				play_data(d, OP_RECV, role, k->resp + off, k->resp_len - off);
				set_ctx("role %d cut at %zu", role, off);
				expect_cap(d, 0, k);
			}
			if (!n)
				break;
			p = nl + 2 + n + 2;
		}
	}
	set_ctx("");
	drv_free(d);
}

static void test_big_body_many_reads(void)
{
	static const char *names[] = { "nginx_big", "curl_big", "nginx_gzip_chunked", "curl_gzip" };
	struct drv *d = drv_new();

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cap *k = cap(names[i]);
		static const size_t pieces[] = { 1448, 4096, 65536, 777 };

		ASSERT_GE(k->resp_len, 65536);
		for (unsigned j = 0; j < 4; j++)
			for (int role = CLIENT; role <= SERVER; role++) {
				size_t off;

				drv_reset(d);
				set_ctx("%s reads of %zu role %d", k->name, pieces[j], role);
				play_data(d, OP_SEND, role, k->req, k->req_len);
				for (off = 0; off < k->resp_len; off += pieces[j]) {
					size_t n = k->resp_len - off < pieces[j] ? k->resp_len - off
										 : pieces[j];
					ASSERT_EQ(d->nev, 0);
					play_data(d, OP_RECV, role, k->resp + off, n);
				}
				expect_cap(d, 0, k);
				expect_clean(d);
				/* the latency runs to the end of the last read */
				ASSERT_EQ(d->ev[0].latency, k->req_len + k->resp_len);
			}
	}
	set_ctx("");
	drv_free(d);
}

static void test_interim_1xx(void)
{
	struct cap *c = cap("curl_continue"), *e = cap("py_103");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		/* curl: head, 100 Continue, body, 200 */
		drv_reset(d);
		set_ctx("100-continue role %d", role);
		ASSERT_EQ(c->chunks.n, 5);
		play_op(d, &c->chunks.op[0], role);
		play_op(d, &c->chunks.op[1], role);
		ASSERT_TRUE(c->chunks.op[1].n == 25 && !memcmp(c->chunks.op[1].p, "HTTP/1.1 100", 12));
		ASSERT_EQ(d->nev, 0);
		ASSERT_EQ(d->c.req_seq, 1);
		ASSERT_EQ(d->c.resp_seq, 0);
		play_op(d, &c->chunks.op[2], role);
		ASSERT_EQ(d->nev, 0);
		play_op(d, &c->chunks.op[3], role);
		play_op(d, &c->chunks.op[4], role);
		expect_cap(d, 0, c);
		expect_clean(d);

		/* python: 103 Early Hints, then 200 */
		drv_reset(d);
		set_ctx("103 role %d", role);
		play_op(d, &e->chunks.op[0], role);
		play_op(d, &e->chunks.op[1], role);
		ASSERT_EQ(d->nev, 0);
		play_op(d, &e->chunks.op[2], role);
		expect_cap(d, 0, e);
		expect_clean(d);

		/* two interims in one read before the final response */
		{
			struct buf b = buf_of(c->chunks.op[1].p, c->chunks.op[1].n);

			b = buf_cat(b, e->chunks.op[1].p, e->chunks.op[1].n);
			b = buf_cat(b, e->chunks.op[2].p, e->chunks.op[2].n);
			drv_reset(d);
			set_ctx("100+103 role %d", role);
			play_data(d, OP_SEND, role, e->req, e->req_len);
			play_data(d, OP_RECV, role, b.p, b.n);
			expect_cap(d, 0, e);
			expect_clean(d);
			free(b.p);
		}
	}
	set_ctx("");
	drv_free(d);
}

static void test_head(void)
{
	struct cap *h = cap("nginx_head"), *ch = cap("curl_head"), *g = cap("nginx_get");
	struct drv *d = drv_new();

	/* the HEAD response says Content-Length but carries no body */
	ASSERT_TRUE(memmem(h->resp, h->resp_len, "Content-Length: ", 16) != NULL);
	ASSERT_EQ(h->resp_len, h->resp_head);
	for (int role = CLIENT; role <= SERVER; role++) {
		set_ctx("role %d", role);
		drv_reset(d);
		play(d, &h->chunks, role);
		expect_cap(d, 0, h);
		/* the next exchange is not mistaken for the HEAD's body */
		play(d, &g->chunks, role);
		play(d, &ch->chunks, role);
		play(d, &g->chunks, role);
		ASSERT_EQ(d->nev, 4);
		expect_ev(&d->ev[1], &g->x[0], 0);
		expect_ev(&d->ev[2], &ch->x[0], 0);
		expect_ev(&d->ev[3], &g->x[0], 0);
		expect_clean(d);

		/* HEAD and GET pipelined, both responses in one read */
		{
			struct buf rq = buf_of(h->req, h->req_len), rs = buf_of(h->resp, h->resp_len);

			rq = buf_cat(rq, g->req, g->req_len);
			rs = buf_cat(rs, g->resp, g->resp_len);
			drv_reset(d);
			play_data(d, OP_SEND, role, rq.p, rq.n);
			play_data(d, OP_RECV, role, rs.p, rs.n);
			ASSERT_EQ(d->nev, 2);
			expect_ev(&d->ev[0], &h->x[0], 0);
			expect_ev(&d->ev[1], &g->x[0], 0);
			expect_clean(d);
			free(rq.p);
			free(rs.p);
		}
	}
	set_ctx("");
	drv_free(d);
}

static void test_no_body_statuses(void)
{
	static const char *names[] = { "nginx_204", "py_204", "py_options", "nginx_304" };
	struct cap *g = cap("nginx_get");
	struct drv *d = drv_new();

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cap *k = cap(names[i]);

		ASSERT_EQ(k->resp_len, k->resp_head);
		for (int role = CLIENT; role <= SERVER; role++) {
			set_ctx("%s role %d", k->name, role);
			drv_reset(d);
			play(d, &k->chunks, role);
			expect_cap(d, 0, k);
			play(d, &g->chunks, role);
			ASSERT_EQ(d->nev, 2);
			if (d->nev == 2)
				expect_ev(&d->ev[1], &g->x[0], 0);
			expect_clean(d);
		}
	}
	set_ctx("");
	drv_free(d);
}

/* A response without a length ends when the server closes. */
static void test_close_delimited(void)
{
	struct cap *k = cap("py_close");
	struct drv *d = drv_new();

	ASSERT_TRUE(!memmem(k->resp, k->resp_head, "Content-Length", 14));
	/* client: every read, no report until read returns 0 */
	drv_reset(d);
	play(d, &k->chunks, CLIENT);
	ASSERT_EQ(d->nev, 0);
	ASSERT_EQ(d->c.resp.phase, H1_BODY_EOF);
	drv_eof(d, H1_DIR_SEND); /* EOF on the request side ends nothing */
	ASSERT_EQ(d->nev, 0);
	drv_eof(d, H1_DIR_RECV);
	expect_cap(d, 0, k);
	ASSERT_EQ(d->ev[0].latency, k->req_len + k->resp_len);
	drv_close(d);
	ASSERT_EQ(d->nev, 1);
	expect_clean(d);

	/* client that closes without seeing the EOF: still a normal end */
	drv_reset(d);
	play(d, &k->chunks, CLIENT);
	drv_close(d);
	expect_cap(d, 0, k);
	expect_clean(d);

	/* server: its own close ends the body */
	drv_reset(d);
	play(d, &k->chunks, SERVER);
	ASSERT_EQ(d->nev, 0);
	drv_eof(d, H1_DIR_RECV); /* the client shut down its side: not the end */
	ASSERT_EQ(d->nev, 0);
	drv_close(d);
	expect_cap(d, 0, k);
	expect_clean(d);
	drv_free(d);
}

/* Connection closed mid-way: the request is reported, flagged closed, and the
 * status of a response cut after its status line is kept. */
static void test_truncated_close(void)
{
	struct cap *k = cap("nginx_big"), *p = cap("nginx_post");
	struct drv *d = drv_new();
	static const size_t cuts[] = { 0, 1, 9, 10, 11, 12, 13, 17, 100, 0 /* head */, 5000,
				       100257 };

	for (int role = CLIENT; role <= SERVER; role++) {
		for (unsigned i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			size_t cut = cuts[i] || !i ? cuts[i] : k->resp_head;

			drv_reset(d);
			set_ctx("role %d response cut at %zu", role, cut);
			play_data(d, OP_SEND, role, k->req, k->req_len);
			if (cut)
				play_data(d, OP_RECV, role, k->resp, cut);
			ASSERT_EQ(d->nev, 0);
			drv_close(d);
			ASSERT_EQ(d->nev, 1);
			ASSERT_EQ(d->ev[0].flags, SONDE_F_CLOSED);
			ASSERT_EQ(d->ev[0].method, SONDE_M_GET);
			ASSERT_EQ(d->ev[0].req_bytes, k->req_len);
			ASSERT_EQ(d->ev[0].resp_bytes, cut);
			/* "HTTP/1.1 200" is 12 bytes: from then on the status is known */
			ASSERT_EQ(d->ev[0].status, cut >= 12 ? 200 : 0);
			ASSERT_EQ(d->st[ST(closed_pending)], 1);
			ASSERT_EQ(d->st[ST(parse_lost)], 0);
			ASSERT_EQ(d->bad, 0);
		}
		/* the status line split over two reads, then the close */
		for (size_t a = 1; a < 40; a++) {
			drv_reset(d);
			set_ctx("role %d status line split at %zu", role, a);
			play_data(d, OP_SEND, role, k->req, k->req_len);
			play_data(d, OP_RECV, role, k->resp, a);
			play_data(d, OP_RECV, role, k->resp + a, 40 - a);
			drv_close(d);
			ASSERT_EQ(d->nev, 1);
			ASSERT_EQ(d->ev[0].status, 200);
			ASSERT_EQ(d->ev[0].flags, SONDE_F_CLOSED);
		}
		/* request head cut: reported, flagged closed and incomplete */
		drv_reset(d);
		set_ctx("role %d request head cut", role);
		play_data(d, OP_SEND, role, p->req, 60);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].flags, SONDE_F_CLOSED | SONDE_F_NO_REQUEST_END);
		ASSERT_EQ(d->ev[0].status, 0);
		ASSERT_EQ(d->ev[0].method, SONDE_M_POST);
		/* request body cut */
		drv_reset(d);
		set_ctx("role %d request body cut", role);
		play_data(d, OP_SEND, role, p->req, p->req_head + 1000);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].flags, SONDE_F_CLOSED | SONDE_F_NO_REQUEST_END);
		/* whole request, no response at all */
		drv_reset(d);
		set_ctx("role %d no response", role);
		play_data(d, OP_SEND, role, p->req, p->req_len);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].flags, SONDE_F_CLOSED);
		ASSERT_EQ(d->ev[0].req_bytes, p->req_len);
		ASSERT_EQ(d->ev[0].resp_bytes, 0);
		/* three pipelined, one answered, then the close */
		{
			struct cap *q = cap("nginx_pipeline6");
			size_t ro[8], so[8];

			cap_offsets(q, ro, so);
			drv_reset(d);
			set_ctx("role %d pipelined", role);
			play_data(d, OP_SEND, role, q->req, ro[3]);
			play_data(d, OP_RECV, role, q->resp, so[1] + 20);
			drv_close(d);
			ASSERT_EQ(d->nev, 3);
			expect_ev(&d->ev[0], &q->x[0], 0);
			ASSERT_EQ(d->ev[1].flags, SONDE_F_CLOSED);
			ASSERT_EQ(d->ev[1].status, 204);
			ASSERT_EQ(d->ev[1].resp_bytes, 20);
			ASSERT_EQ(d->ev[2].flags, SONDE_F_CLOSED);
			ASSERT_EQ(d->ev[2].status, 0);
			ASSERT_EQ(d->ev[2].path_len, strlen("/no/such/file"));
			ASSERT_EQ(d->st[ST(closed_pending)], 2);
		}
	}
	set_ctx("");
	drv_free(d);
}

static void test_timeouts(void)
{
	struct cap *g = cap("nginx_get"), *q = cap("nginx_pipeline6");
	struct drv *d = drv_new();
	size_t ro[8], so[8];
	__u64 t;

	cap_offsets(q, ro, so);
	/* a request with no response */
	play_data(d, OP_SEND, CLIENT, g->req, g->req_len);
	ASSERT_EQ(drv_expire(d, T0 + 999, 1000), 0);
	ASSERT_EQ(d->nev, 0);
	ASSERT_EQ(drv_expire(d, T0 + 1000, 1000), 1);
	ASSERT_EQ(d->nev, 1);
	ASSERT_EQ(d->ev[0].flags, SONDE_F_TIMEOUT);
	ASSERT_EQ(d->ev[0].status, 0);
	ASSERT_EQ(d->ev[0].latency, 1000);
	ASSERT_EQ(d->ev[0].method, SONDE_M_GET);
	ASSERT_EQ(drv_expire(d, T0 + 5000, 1000), 0); /* nothing left */
	/* the connection goes on and pairs right */
	play(d, &g->chunks, CLIENT);
	ASSERT_EQ(d->nev, 2);
	expect_ev(&d->ev[1], &g->x[0], 0);
	expect_clean(d);

	/* three pipelined requests expire one at a time, oldest first */
	drv_reset(d);
	for (int i = 0; i < 3; i++)
		play_data(d, OP_SEND, CLIENT, q->req + ro[i], ro[i + 1] - ro[i]);
	t = T0 + ro[2]; /* start of the third */
	ASSERT_EQ(drv_expire(d, t + 10, 11), 1);
	ASSERT_EQ(drv_expire(d, t + 10, 11), 1);
	ASSERT_EQ(drv_expire(d, t + 10, 11), 0);
	ASSERT_EQ(drv_expire(d, t + 11, 11), 1);
	ASSERT_EQ(d->nev, 3);
	for (unsigned i = 0; i < 3; i++) {
		ASSERT_EQ(d->ev[i].flags, SONDE_F_TIMEOUT);
		ASSERT_EQ(d->ev[i].seq, i);
		ASSERT_EQ(d->ev[i].path_len, q->x[i].path_len);
	}
	drv_close(d);
	ASSERT_EQ(d->nev, 3);
	ASSERT_EQ(d->bad, 0);
	drv_free(d);
}

/* ---- tests: hostile input ----------------------------------------------------- */

struct hostile {
	const char *what;
	struct buf b;
	int on_req;  /* goes on the request stream (else the response stream) */
	int lost;    /* must lose framing */
};

static void hostile_free(struct hostile *h, int n)
{
	for (int i = 0; i < n; i++)
		free(h[i].b.p);
}

/* Hostile variants of real captures. */
static int make_hostile(struct hostile *h)
{
	struct cap *g = cap("nginx_get"), *c = cap("py_chunked"), *p = cap("nginx_post");
	int n = 0;
	__u8 noise[4096];
	size_t first = c->resp_head; /* the first chunk-size line */

	rng_state = 0x0123456789abcdefULL;
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = rng();
	h[n++] = (struct hostile){ "binary noise response", buf_of(noise, sizeof(noise)), 0, 1 };
	h[n++] = (struct hostile){ "binary noise request", buf_of(noise + 7, 3000), 1, 0 };
	h[n++] = (struct hostile){ "huge content-length",
		buf_header(g->resp, g->resp_len, "Content-Length", "184467440737095516160000"), 0, 1 };
	h[n++] = (struct hostile){ "huge content-length request",
		buf_header(p->req, p->req_len, "Content-Length", "99999999999999999999999"), 1, 1 };
	h[n++] = (struct hostile){ "huge chunk size",
		buf_splice(c->resp, c->resp_len, first, 1, "fffffffffffffffffff", 19), 0, 1 };
	h[n++] = (struct hostile){ "non-hex chunk size",
		buf_splice(c->resp, c->resp_len, first, 1, "zz", 2), 0, 1 };
	h[n++] = (struct hostile){ "empty chunk size",
		buf_splice(c->resp, c->resp_len, first, 1, "", 0), 0, 1 };
	h[n++] = (struct hostile){ "overlong method",
		buf_splice(g->req, g->req_len, 0, 3, "GETGETGETGET", 12), 1, 1 };
	h[n++] = (struct hostile){ "unknown method",
		buf_splice(g->req, g->req_len, 0, 3, "PROPFIND", 8), 1, 1 };
	h[n++] = (struct hostile){ "lower-case method",
		buf_splice(g->req, g->req_len, 0, 3, "get", 3), 1, 1 };
	h[n++] = (struct hostile){ "HTTP/0.9 request", buf_of("GET /index.html\r\n", 17), 1, 1 };
	h[n++] = (struct hostile){ "bad request version",
		buf_splice(g->req, g->req_len, 16, 4, "HTTX", 4), 1, 1 };
	h[n++] = (struct hostile){ "bad status digits",
		buf_splice(g->resp, g->resp_len, 9, 3, "2x0", 3), 0, 1 };
	h[n++] = (struct hostile){ "four-digit status",
		buf_splice(g->resp, g->resp_len, 9, 3, "2000", 4), 0, 1 };
	h[n++] = (struct hostile){ "HTTP/2 status line",
		buf_splice(g->resp, g->resp_len, 5, 3, "2", 1), 0, 1 };
	h[n++] = (struct hostile){ "response on the request side", buf_of(g->resp, g->resp_len), 1, 1 };
	h[n++] = (struct hostile){ "request on the response side", buf_of(g->req, g->req_len), 0, 1 };
	h[n++] = (struct hostile){ "NULs everywhere", buf_of("\0\0\0\0\0\0\0\0\0\0\0\0", 12), 0, 1 };
	return n;
}

/*
 * Each hostile input after a real request: never a crash, framing lost where
 * it must be (parse_lost), and no transaction reported, not even at close.
 */
static void test_hostile_inputs(void)
{
	struct hostile h[32];
	int n = make_hostile(h);
	struct cap *g = cap("nginx_get");
	struct drv *d = drv_new();

	for (int i = 0; i < n; i++)
		for (int role = CLIENT; role <= SERVER; role++)
			for (int how = 0; how < 3; how++) {
				struct script s = { 0 };

				drv_reset(d);
				set_ctx("%s role %d how %d", h[i].what, role, how);
				/* a real exchange first, so the connection is HTTP */
				play(d, &g->chunks, role);
				ASSERT_EQ(d->nev, 1);
				if (h[i].on_req) {
					sc_add(&s, OP_SEND, h[i].b.p, h[i].b.n);
				} else {
					sc_add(&s, OP_SEND, g->req, g->req_len);
					sc_add(&s, OP_RECV, h[i].b.p, h[i].b.n);
				}
				if (how == 0)
					play(d, &s, role);
				else if (how == 1)
					play_every(d, &s, role, 1);
				else
					play_random(d, &s, role);
				drv_close(d);
				ASSERT_EQ(d->nev, 1);
				if (h[i].lost)
					ASSERT_GE(d->st[ST(parse_lost)], 1);
				ASSERT_EQ(d->bad, 0);
				sc_free(&s);
			}
	set_ctx("");
	hostile_free(h, n);
	drv_free(d);
}

/* Hostile first bytes on a fresh connection: never HTTP, never a report. */
static void test_hostile_fresh(void)
{
	struct hostile h[32];
	int n = make_hostile(h);
	struct drv *d = drv_new();

	for (int i = 0; i < n; i++)
		for (int dir = H1_DIR_SEND; dir <= H1_DIR_RECV; dir++) {
			drv_reset(d);
			set_ctx("%s dir %d", h[i].what, dir);
			drv_feed(d, dir, h[i].b.p, h[i].b.n);
			drv_feed(d, dir == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND, h[i].b.p, h[i].b.n);
			drv_feed(d, dir, h[i].b.p, h[i].b.n);
			drv_close(d);
			/* at most requests cut by the close, never a made-up response */
			for (unsigned e = 0; e < d->nev; e++) {
				ASSERT_EQ(d->ev[e].status, 0);
				ASSERT_EQ(d->ev[e].flags & SONDE_F_CLOSED, SONDE_F_CLOSED);
			}
			ASSERT_EQ(d->bad, 0);
		}
	set_ctx("");
	hostile_free(h, n);
	drv_free(d);
}

/* Long heads, long header names, stray line ends: valid, and only slow. */
static void test_hostile_but_valid(void)
{
	struct cap *g = cap("nginx_get");
	struct drv *d = drv_new();
	size_t line_end = (size_t)((__u8 *)memmem(g->req, g->req_len, "\r\n", 2) - g->req) + 2;
	char *big = malloc(70000);
	struct buf rq;

	/* a 64 KB cookie: the head takes many budget rounds in one syscall */
	memcpy(big, "Cookie: ", 8);
	memset(big + 8, 'c', 65536);
	memcpy(big + 8 + 65536, "\r\n", 2);
	rq = buf_splice(g->req, g->req_len, line_end, 0, big, 65546);
	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("big cookie role %d", role);
		play_data(d, OP_SEND, role, rq.p, rq.n);
		ASSERT_GE(d->zero_rounds, rq.n / (H1_STEPS > H1_WINDOW ? H1_STEPS : H1_WINDOW) - 1);
		play_data(d, OP_RECV, role, g->resp, g->resp_len);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].req_bytes, rq.n);
		ASSERT_EQ(d->ev[0].status, 200);
		expect_clean(d);
	}
	free(rq.p);

	/* a 300-byte header name, NULs in a value, a header line without a colon */
	memset(big, 'X', 300);
	{
		static const char odd[] = ": v\0l\0\r\nno colon here\r\nContent-Length : 5\r\n";

		memcpy(big + 300, odd, sizeof(odd) - 1);
		rq = buf_splice(g->req, g->req_len, line_end, 0, big, 300 + sizeof(odd) - 1);
	}
	/* and a response with CRLFs before it, which are tolerated between messages */
	for (int role = CLIENT; role <= SERVER; role++) {
		struct buf rs = buf_of("\r\n\r\n\n", 5);

		rs = buf_cat(rs, g->resp, g->resp_len);
		drv_reset(d);
		set_ctx("odd headers role %d", role);
		play_data(d, OP_SEND, role, g->req, g->req_len); /* binds */
		play_data(d, OP_RECV, role, g->resp, g->resp_len);
		play_data(d, OP_SEND, role, rq.p, rq.n);
		play_data(d, OP_RECV, role, rs.p, rs.n);
		ASSERT_EQ(d->nev, 2);
		ASSERT_EQ(d->ev[1].req_bytes, rq.n); /* "Content-Length :" is not a length */
		ASSERT_EQ(d->ev[1].status, 200);
		expect_clean(d);
		free(rs.p);
	}
	free(rq.p);
	free(big);
	drv_free(d);
}

/* After garbage, a later syscall that starts with a message resyncs. */
static void test_resync_after_garbage(void)
{
	struct hostile h[32];
	int n = make_hostile(h);
	struct cap *g = cap("nginx_get"), *nf = cap("nginx_404"), *c = cap("py_chunked");
	struct drv *d = drv_new();

	for (int i = 0; i < n; i++)
		for (int role = CLIENT; role <= SERVER; role++) {
			drv_reset(d);
			set_ctx("%s role %d", h[i].what, role);
			play(d, &g->chunks, role);
			if (h[i].on_req) {
				play_data(d, OP_SEND, role, h[i].b.p, h[i].b.n);
				/* the server answers the garbage: nobody to pair with */
				play_data(d, OP_RECV, role, nf->resp, nf->resp_len);
			} else {
				play_data(d, OP_SEND, role, g->req, g->req_len);
				play_data(d, OP_RECV, role, h[i].b.p, h[i].b.n);
			}
			ASSERT_EQ(d->nev, 1);
			/* a valid request and response, each starting a syscall */
			play(d, &nf->chunks, role);
			play(d, &c->chunks, role);
			drv_close(d);
			ASSERT_EQ(d->nev, 3);
			if (d->nev == 3) {
				expect_ev(&d->ev[1], &nf->x[0], 0);
				expect_ev(&d->ev[2], &c->x[0], 0);
			}
			ASSERT_EQ(d->bad, 0);
		}

	/* garbage then a request in the same syscall: the request is lost with
	 * the garbage, its response unpaired; the one after is fine */
	for (int role = CLIENT; role <= SERVER; role++) {
		struct buf b = buf_of("\x01\x02garbage", 9);

		b = buf_cat(b, g->req, g->req_len);
		drv_reset(d);
		set_ctx("garbage+request role %d", role);
		play(d, &g->chunks, role);
		play_data(d, OP_SEND, role, b.p, b.n);
		play_data(d, OP_RECV, role, g->resp, g->resp_len);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->st[ST(parse_lost)], 1);
		ASSERT_EQ(d->st[ST(unpaired_responses)], 1);
		play(d, &nf->chunks, role);
		ASSERT_EQ(d->nev, 2);
		expect_ev(&d->ev[1], &nf->x[0], 0);
		free(b.p);
	}
	set_ctx("");
	hostile_free(h, n);
	drv_free(d);
}

/* ---- tests: attached mid-connection -------------------------------------- */

static void test_response_first(void)
{
	struct cap *g = cap("nginx_get"), *nf = cap("nginx_404");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		/* the first bytes seen are a response to a request we never saw */
		drv_reset(d);
		set_ctx("role %d", role);
		play_data(d, OP_RECV, role, nf->resp, nf->resp_len);
		ASSERT_EQ(d->c.req_dir, role == CLIENT ? H1_DIR_SEND : H1_DIR_RECV);
		ASSERT_EQ(d->nev, 0);
		ASSERT_EQ(d->st[ST(unpaired_responses)], 1);
		play(d, &g->chunks, role);
		play(d, &nf->chunks, role);
		drv_close(d);
		ASSERT_EQ(d->nev, 2);
		expect_ev(&d->ev[0], &g->x[0], 0);
		expect_ev(&d->ev[1], &nf->x[0], 0);
		ASSERT_EQ(d->st[ST(parse_lost)], 0);
		ASSERT_EQ(d->bad, 0);

		/* the first bytes are the middle of a body: not HTTP yet */
		drv_reset(d);
		play_data(d, OP_RECV, role, cap("nginx_big")->resp + 5000, 4000);
		ASSERT_EQ(d->c.req_dir, H1_DIR_NONE);
		play(d, &g->chunks, role);
		ASSERT_EQ(d->nev, 1);
		expect_ev(&d->ev[0], &g->x[0], 0);
	}
	set_ctx("");
	drv_free(d);
}

/*
 * A response that began with no request outstanding (its request came
 * before sonde attached, or was given up) must not be paired with a request
 * sent while it is still arriving.
 */
static void test_response_first_pipelined(void)
{
	struct cap *big = cap("nginx_big"), *g = cap("nginx_get");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("attached mid-connection role %d", role);
		play_data(d, OP_RECV, role, big->resp, 1000);
		play_data(d, OP_SEND, role, g->req, g->req_len); /* pipelined */
		play_data(d, OP_RECV, role, big->resp + 1000, big->resp_len - 1000);
		ASSERT_EQ(d->nev, 0);
		ASSERT_EQ(d->st[ST(unpaired_responses)], 1);
		play_data(d, OP_RECV, role, g->resp, g->resp_len);
		ASSERT_EQ(d->nev, 1);
		expect_ev(&d->ev[0], &g->x[0], 0);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->bad, 0);

		/* and when the connection closes before either ends, the request is
		 * reported without the unrelated response's status */
		drv_reset(d);
		set_ctx("attached, then closed, role %d", role);
		play_data(d, OP_RECV, role, big->resp, 1000);
		play_data(d, OP_SEND, role, g->req, g->req_len);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].flags, SONDE_F_CLOSED);
		ASSERT_EQ(d->ev[0].status, 0);
		ASSERT_EQ(d->ev[0].resp_bytes, 0);

		/* a request given up (unknown method) while a response was arriving */
		drv_reset(d);
		set_ctx("dropped in flight role %d", role);
		play_data(d, OP_SEND, role, big->req, big->req_len);
		play_data(d, OP_RECV, role, big->resp, 1000);
		play_data(d, OP_SEND, role, (const __u8 *)"PROPFIND / HTTP/1.1\r\n\r\n", 23);
		ASSERT_EQ(d->st[ST(parse_lost)], 1);
		play_data(d, OP_SEND, role, g->req, g->req_len);
		play_data(d, OP_RECV, role, big->resp + 1000, big->resp_len - 1000);
		ASSERT_EQ(d->nev, 0);
		play_data(d, OP_RECV, role, g->resp, g->resp_len);
		ASSERT_EQ(d->nev, 1);
		expect_ev(&d->ev[0], &g->x[0], 0);

		/* a request timed out while its response was arriving */
		drv_reset(d);
		set_ctx("expired in flight role %d", role);
		play_data(d, OP_SEND, role, big->req, big->req_len);
		play_data(d, OP_RECV, role, big->resp, 1000);
		ASSERT_EQ(drv_expire(d, T0 + 1000000, 1000), 1);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].flags, SONDE_F_TIMEOUT);
		play_data(d, OP_SEND, role, g->req, g->req_len);
		play_data(d, OP_RECV, role, big->resp + 1000, big->resp_len - 1000);
		ASSERT_EQ(d->nev, 1);
		play_data(d, OP_RECV, role, g->resp, g->resp_len);
		ASSERT_EQ(d->nev, 2);
		expect_ev(&d->ev[1], &g->x[0], 0);
		ASSERT_EQ(d->bad, 0);
	}
	set_ctx("");
	drv_free(d);
}

/* ---- tests: protocol switches --------------------------------------------- */

static void test_upgrade_101(void)
{
	struct cap *u = cap("py_upgrade"), *g = cap("nginx_get");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("role %d", role);
		play(d, &u->chunks, role);
		expect_cap(d, 0, u);
		ASSERT_EQ(d->c.req.phase, H1_UPGRADED);
		ASSERT_EQ(d->c.resp.phase, H1_UPGRADED);
		/* HTTP-looking bytes after the switch are not HTTP any more */
		play(d, &g->chunks, role);
		play_data(d, OP_SEND, role, (const __u8 *)"\x81\x85\x00\x00\x00\x00hello", 11);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		expect_clean(d);
	}
	set_ctx("");
	drv_free(d);
}

static void test_connect_tunnel(void)
{
	struct cap *k = cap("py_connect"), *g = cap("nginx_get");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("role %d", role);
		play(d, &k->chunks, role);
		expect_cap(d, 0, k);
		ASSERT_EQ(d->ev[0].method, SONDE_M_CONNECT);
		play(d, &g->chunks, role);
		drv_close(d);
		ASSERT_EQ(d->nev, 1);
		expect_clean(d);
	}
	set_ctx("");
	drv_free(d);
}

/* ---- tests: fields ------------------------------------------------------------ */

static void test_path_truncation(void)
{
	struct cap *lp = cap("nginx_longpath"), *g = cap("nginx_get");
	struct drv *d = drv_new();
	char path[200];

	ASSERT_GE(lp->x[0].path_len, SONDE_PATH_MAX + 1);
	play(d, &lp->chunks, CLIENT);
	ASSERT_EQ(d->nev, 1);
	ASSERT_EQ(d->ev[0].path_len, SONDE_PATH_MAX);
	ASSERT_EQ(d->ev[0].flags, SONDE_F_PATH_TRUNCATED);
	ASSERT_MEM(d->ev[0].path, lp->req + 4, SONDE_PATH_MAX);

	/* exactly the limit is kept whole; one more is cut */
	for (size_t len = SONDE_PATH_MAX - 1; len <= SONDE_PATH_MAX + 1; len++) {
		struct buf rq;

		memset(path, 'p', sizeof(path));
		path[0] = '/';
		rq = buf_splice(g->req, g->req_len, 4, strlen("/index.html"), path, len);
		drv_reset(d);
		set_ctx("path of %zu", len);
		play_data(d, OP_SEND, CLIENT, rq.p, rq.n);
		play_data(d, OP_RECV, CLIENT, g->resp, g->resp_len);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].path_len, len > SONDE_PATH_MAX ? SONDE_PATH_MAX : len);
		ASSERT_EQ(d->ev[0].flags, len > SONDE_PATH_MAX ? SONDE_F_PATH_TRUNCATED : 0);
		free(rq.p);
	}
	set_ctx("");
	drv_free(d);
}

static void test_latency_and_identity(void)
{
	struct cap *g = cap("nginx_get"), *p = cap("nginx_post");
	struct drv *d = drv_new();
	struct h1_meta rq = { .ts_start = 5000, .ts_end = 5100, .pid = 77, .tid = 78 };
	struct h1_meta r1 = { .ts_start = 9000, .ts_end = 9050, .pid = 1, .tid = 2 };
	struct h1_meta r2 = { .ts_start = 9800, .ts_end = 9900, .pid = 1, .tid = 2 };

	/* latency: first request byte's syscall start to last response byte's syscall end */
	drv_feed_meta(d, H1_DIR_SEND, g->req, g->req_len, &rq);
	drv_feed_meta(d, H1_DIR_RECV, g->resp, 100, &r1);
	drv_feed_meta(d, H1_DIR_RECV, g->resp + 100, g->resp_len - 100, &r2);
	ASSERT_EQ(d->nev, 1);
	ASSERT_EQ(d->ev[0].latency, 9900 - 5000);
	ASSERT_EQ(d->ev[0].ts_start, 5000);
	ASSERT_EQ(d->ev[0].pid, 77); /* who made the request */
	ASSERT_EQ(d->ev[0].tid, 78);

	/* a request in two writes: it starts with the first */
	drv_reset(d);
	rq.ts_start = 100;
	drv_feed_meta(d, H1_DIR_SEND, p->req, 50, &rq);
	rq.ts_start = 200;
	drv_feed_meta(d, H1_DIR_SEND, p->req + 50, p->req_len - 50, &rq);
	drv_feed_meta(d, H1_DIR_RECV, p->resp, p->resp_len, &r2);
	ASSERT_EQ(d->nev, 1);
	ASSERT_EQ(d->ev[0].latency, 9900 - 100);
	ASSERT_EQ(d->ev[0].req_bytes, p->req_len);
	drv_free(d);
}

/* The server answers before the request body has all arrived. */
static void test_early_response(void)
{
	struct cap *p = cap("nginx_post"), *g = cap("nginx_get");
	struct drv *d = drv_new();

	for (int role = CLIENT; role <= SERVER; role++) {
		drv_reset(d);
		set_ctx("role %d", role);
		play_data(d, OP_SEND, role, p->req, p->req_head + 100);
		play_data(d, OP_RECV, role, p->resp, p->resp_len);
		ASSERT_EQ(d->nev, 1);
		ASSERT_EQ(d->ev[0].flags, SONDE_F_NO_REQUEST_END);
		ASSERT_EQ(d->ev[0].status, 201);
		/* the rest of the body does not disturb what follows */
		play_data(d, OP_SEND, role, p->req + p->req_head + 100,
			  p->req_len - p->req_head - 100);
		play(d, &g->chunks, role);
		ASSERT_EQ(d->nev, 2);
		expect_ev(&d->ev[1], &g->x[0], 0);
		expect_clean(d);
	}
	set_ctx("");
	drv_free(d);
}

/* ---- runner ------------------------------------------------------------------- */

struct test {
	const char *name;
	void (*fn)(void);
};

#define T(f) { #f, f }
static const struct test tests[] = {
	T(test_infer_methods),
	T(test_infer_not_http),
	T(test_infer_captures),
	T(test_bind_directions),
	T(test_captures_client),
	T(test_captures_server),
	T(test_captures_one_syscall),
	T(test_bodies_never_read),
	T(test_split_every_byte_client),
	T(test_split_every_byte_server),
	T(test_split_every_byte_long),
	T(test_split_unprimed),
	T(test_split_random),
	T(test_split_one_byte_reads),
	T(test_pipeline_one_send_one_read),
	T(test_pipeline_responses_split),
	T(test_pipeline_depth_overflow),
	T(test_pipeline_random_schedules),
	T(test_keepalive_nginx),
	T(test_keepalive_everything),
	T(test_chunked_many_chunks_per_read),
	T(test_big_body_many_reads),
	T(test_interim_1xx),
	T(test_head),
	T(test_no_body_statuses),
	T(test_close_delimited),
	T(test_truncated_close),
	T(test_timeouts),
	T(test_hostile_inputs),
	T(test_hostile_fresh),
	T(test_hostile_but_valid),
	T(test_resync_after_garbage),
	T(test_response_first),
	T(test_response_first_pipelined),
	T(test_upgrade_101),
	T(test_connect_tunnel),
	T(test_path_truncation),
	T(test_latency_and_identity),
	T(test_early_response),
};

int SUITE(const char *capdir)
{
	const char *only = getenv("UNIT_ONLY");
	size_t i;

	for (i = 0; i < NCAPS; i++)
		load_cap(capdir, &caps[i]);
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (only && !strstr(tests[i].name, only))
			continue;
		struct timespec a, b;

		t_fail = 0;
		t_ctx[0] = 0;
		clock_gettime(CLOCK_MONOTONIC, &a);
		tests[i].fn();
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("%s %s [%s] %ld ms\n", t_fail ? "FAIL" : "ok  ", tests[i].name, VARIANT,
		       (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
		fflush(stdout);
		if (t_fail)
			unit_failed++;
		else
			unit_passed++;
	}
	for (i = 0; i < NCAPS; i++) {
		free(caps[i].req);
		free(caps[i].resp);
		free(caps[i].x);
		sc_free(&caps[i].chunks);
		sc_free(&caps[i].merged);
	}
	return unit_failed;
}

#ifndef SONDE_TEST_SMALL
#ifdef SONDE_TEST_WITH_SMALL
int run_suite_small(const char *capdir);
#endif

int main(int argc, char **argv)
{
	const char *capdir = argc > 1 ? argv[1] : "tests/unit/captures";

	run_suite_default(capdir);
#ifdef SONDE_TEST_WITH_SMALL
	run_suite_small(capdir);
#endif
	printf("unit: %d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
#endif
