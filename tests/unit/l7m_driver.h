/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Native driver of the message engine (bpf/proto/l7m.h) for the parser unit
 * tests and fuzzers: the parsers run exactly as the socket tracer runs them,
 * one syscall at a time, and every reported transaction is kept for checks.
 *
 * A test builds a conversation as a list of syscalls (direction + bytes),
 * feeds it whole or cut at every offset, and compares the transactions.
 */
#ifndef SONDE_TEST_L7M_DRIVER_H
#define SONDE_TEST_L7M_DRIVER_H

#define _GNU_SOURCE
#include <linux/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SONDE_INLINE static inline __attribute__((unused))
#include "events.h"
#include "proto/http1.h"

static int sonde_read_user(void *dst, __u32 n, const void *src)
{
	memcpy(dst, src, n);
	return 0;
}

static __u64 drv_stats[sizeof(struct sonde_stats) / sizeof(__u64)];

static void sonde_stat_add(void *ctx, __u32 field)
{
	(void)ctx;
	if (field < sizeof(drv_stats) / sizeof(drv_stats[0]))
		drv_stats[field]++;
}

/* h1 hooks are declared by http1.h; the engine tests never call them */
static void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
			  __u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	(void)ctx; (void)c; (void)s; (void)status; (void)resp_bytes; (void)ts_end; (void)flags;
}

#include "proto/l7m_dispatch.h"

/* One reported transaction. */
struct drv_tx {
	__u8 op, reply, flags;
	__u16 op2, status;
	__u32 id, code, count;
	__u64 req_bytes, resp_bytes;
	__u64 ts_start, ts_end;
	char text[SONDE_PATH_MAX + 1];
	char route[SONDE_PATH_MAX + 1];
	char detail[SONDE_DETAIL_MAX + 1];
};

#define DRV_MAX_TX 256
static struct drv_tx drv_tx[DRV_MAX_TX];
static int drv_ntx;

static void sonde_l7m_emit(void *ctx, struct l7m_conn *c, struct l7m_slot *s, struct l7m_acc *a,
			   __u64 ts_end, __u8 flags)
{
	struct drv_tx *t;

	(void)ctx; (void)c;
	if (drv_ntx >= DRV_MAX_TX)
		return;
	t = &drv_tx[drv_ntx++];
	memset(t, 0, sizeof(*t));
	t->op = s->op;
	t->op2 = s->op2;
	t->id = s->id;
	t->flags = flags;
	t->status = a->status;
	t->code = a->code;
	t->count = a->count;
	t->reply = a->reply;
	t->req_bytes = s->req_bytes;
	t->resp_bytes = a->resp_bytes;
	t->ts_start = s->ts_start;
	t->ts_end = ts_end;
	memcpy(t->text, s->text, s->text_len);
	memcpy(t->route, s->text, s->route_len);
	memcpy(t->detail, a->detail, a->detail_len);
}

/* One syscall of a conversation, seen from the traced process. */
struct drv_call {
	__u8 dir;           /* H1_DIR_SEND or H1_DIR_RECV */
	const void *data;
	size_t len;
};

struct drv {
	struct l7m_conn c;
	__u8 win[L7M_CARRY + L7M_BUF];
	struct l7m_info in;
	__u64 clock;
};

static void drv_reset(struct drv *d, __u8 proto, __u8 req_dir)
{
	memset(d, 0, sizeof(*d));
	memset(drv_stats, 0, sizeof(drv_stats));
	drv_ntx = 0;
	d->c.proto = proto;
	d->c.req_dir = req_dir;
	d->clock = 1000;
}

/* Feed one syscall's bytes (a private copy, so ASan sees any overread). */
static void drv_syscall(struct drv *d, __u8 dir, const void *data, size_t len)
{
	struct h1_meta m = { .pid = 1, .tid = 1 };
	void *copy = malloc(len ? len : 1);

	memcpy(copy, data, len);
	m.ts_start = d->clock;
	m.ts_end = d->clock + 1;
	d->clock += 10;
	l7m_feed_all(NULL, &d->c, d->c.proto, dir, copy, len, d->win, &d->in, &m);
	free(copy);
}

/* Feed a conversation, each syscall cut into pieces of at most `piece` bytes
 * (0 = whole). */
static void drv_run(struct drv *d, const struct drv_call *calls, int n, size_t piece)
{
	int i;

	for (i = 0; i < n; i++) {
		size_t off = 0, len = calls[i].len;

		if (!piece || piece >= len) {
			drv_syscall(d, calls[i].dir, calls[i].data, len);
			continue;
		}
		for (off = 0; off < len; off += piece)
			drv_syscall(d, calls[i].dir, (const char *)calls[i].data + off,
				    len - off < piece ? len - off : piece);
	}
}

/* ---- a tiny assertion set -------------------------------------------------- */

static int unit_passed, unit_failed, t_fail;
static char t_ctx[160];

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

#define SET_CTX(...) snprintf(t_ctx, sizeof(t_ctx), __VA_ARGS__)
#define ASSERT_TRUE(c)                                                        \
	do {                                                                  \
		if (!(c))                                                     \
			t_report(__FILE__, __LINE__, "expected %s", #c);     \
	} while (0)
#define ASSERT_EQ(a, b)                                                       \
	do {                                                                  \
		unsigned long long _a = (unsigned long long)(a);              \
		unsigned long long _b = (unsigned long long)(b);              \
		if (_a != _b)                                                 \
			t_report(__FILE__, __LINE__, "%s == %s: %llu vs %llu", \
				 #a, #b, _a, _b);                              \
	} while (0)
#define ASSERT_STR(a, b)                                                      \
	do {                                                                  \
		if (strcmp((a), (b)))                                         \
			t_report(__FILE__, __LINE__, "%s: '%s' vs '%s'", #a,  \
				 (a), (b));                                    \
	} while (0)

#define RUN(fn)                                                               \
	do {                                                                  \
		t_fail = 0;                                                   \
		t_ctx[0] = 0;                                                 \
		fn();                                                         \
		if (t_fail) {                                                 \
			unit_failed++;                                        \
			printf("FAIL %s\n", #fn);                             \
		} else {                                                      \
			unit_passed++;                                        \
			printf("ok   %s\n", #fn);                             \
		}                                                             \
	} while (0)

#define UNIT_SUMMARY(name)                                                    \
	do {                                                                  \
		printf("unit-%s: %d passed, %d failed\n", name, unit_passed,  \
		       unit_failed);                                          \
		return unit_failed ? 1 : 0;                                   \
	} while (0)

#define S(lit) lit, sizeof(lit) - 1

#endif /* SONDE_TEST_L7M_DRIVER_H */
