// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target for the PostgreSQL and MySQL parsers (bpf/proto/pgsql.h,
 * mysql.h) on the message engine (bpf/proto/l7m.h), driven as the socket
 * tracer drives them: one syscall at a time through l7m_feed_steps and
 * l7m_handle_event, with framing losses (the kernel's out-of-budget path),
 * closes and the time-out sweep in between.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I bpf -I .
 *
 * Input: byte 0 picks the protocol (bit 0: 0 PostgreSQL, 1 MySQL) and the
 * traced side (bit 1: the server, whose requests are reads). Then records:
 *   op & 0x80  the bytes are read (else written) by the traced process
 *   op & 0x40  control instead of data, by op & 3: 0 close (l7m_close, then
 *              a fresh connection), 1 lose the framing of the op & 0x80
 *              direction's stream, 2 the sweep (l7m_expire_one), 3 time passes
 *   op & 0x20  the length is two bytes little-endian (+1), else one byte (+1)
 *   then the payload (shorter if the input ends).
 * tests/fuzz/mkcorpus_sql.py writes the captures of tests/unit/captures/
 * {pgsql,mysql} in this form.
 *
 * Invariants (any violation aborts): memory safety and no UB; every call of
 * l7m_feed_steps either reports an event or moves the cursor, and a syscall
 * is used up in a bounded number of calls; every report has text_len <=
 * SONDE_PATH_MAX, route_len <= text_len, detail_len <= SONDE_DETAIL_MAX,
 * ts_end >= ts_start, request bytes no more than were written on the request
 * direction and response bytes no more than on the response direction since
 * the connection began (plus what a started token still has to skip); stats
 * indexes inside struct sonde_stats.
 */
#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SONDE_INLINE static inline __attribute__((unused))
#include "events.h"
#include "proto/http1.h"

#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__, \
				__LINE__, #c);                                       \
			abort();                                                     \
		}                                                                    \
	} while (0)

#define NSTATS (sizeof(struct sonde_stats) / sizeof(__u64))

static __u64 stats[NSTATS];
static __u64 moved[2]; /* bytes per direction since the connection began */
static __u64 slack[2]; /* token bytes counted but dropped unseen by a forced loss */
static __u8 req_dir;

static int sonde_read_user(void *dst, __u32 n, const void *src)
{
	CHECK(n > 0);
	memcpy(dst, src, n);
	return 0;
}

static void sonde_stat_add(void *ctx, __u32 field)
{
	(void)ctx;
	CHECK(field < NSTATS);
	stats[field]++;
}

static void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
			  __u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	(void)ctx; (void)c; (void)s; (void)status; (void)resp_bytes; (void)ts_end; (void)flags;
	CHECK(0);
}

#include "proto/l7m_dispatch.h"

/* The pair of protocols this build fuzzes (byte 0, bit 0); the second may be
 * a datagram protocol (every syscall a whole message). Default: the SQL pair. */
#ifndef FUZZ_PROTO_A
#define FUZZ_PROTO_A SONDE_PROTO_PGSQL
#define FUZZ_PROTO_B SONDE_PROTO_MYSQL
#endif
#ifndef FUZZ_DGRAM_B
#define FUZZ_DGRAM_B 0
#endif

static void sonde_l7m_emit(void *ctx, struct l7m_conn *c, struct l7m_slot *s, struct l7m_acc *a,
			   __u64 ts_end, __u8 flags)
{
	__u8 resp_dir = req_dir == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND;

	(void)ctx; (void)flags;
	CHECK(s->live);
	CHECK(s->text_len <= SONDE_PATH_MAX);
	CHECK(s->route_len <= s->text_len);
	CHECK(a->detail_len <= SONDE_DETAIL_MAX);
	CHECK(ts_end >= s->ts_start);
	/* a token is counted whole when it starts: bytes still to be skipped count */
	CHECK(s->req_bytes <= moved[req_dir - H1_DIR_SEND] + slack[req_dir - H1_DIR_SEND] +
			       c->req.skip);
	CHECK(a->resp_bytes <= moved[resp_dir - H1_DIR_SEND] + slack[resp_dir - H1_DIR_SEND] +
				c->resp.skip);
}

static struct l7m_conn conn;
static __u8 win[L7M_CARRY + L7M_BUF];
static struct l7m_info info;
static __u64 clock_ns;

static void conn_reset(__u8 proto, __u8 dir)
{
	memset(&conn, 0, sizeof(conn));
	conn.proto = proto;
	conn.dgram = FUZZ_DGRAM_B && proto == FUZZ_PROTO_B;
	conn.req_dir = dir;
	req_dir = dir;
	moved[0] = moved[1] = 0;
	slack[0] = slack[1] = 0;
}

/* One syscall's bytes, fed as the BPF programs feed them. */
static void feed(__u8 dir, const __u8 *data, size_t len)
{
	struct h1_meta m = { .pid = 1, .tid = 1 };
	struct h1_cursor cur = { .len = len };
	__u8 *copy = malloc(len ? len : 1);
	int calls = 0;

	memcpy(copy, data, len);
	moved[dir - H1_DIR_SEND] += len;
	m.ts_start = clock_ns;
	m.ts_end = clock_ns + 1;
	clock_ns += 10;
	for (;;) {
		__u64 before = cur.off;
		int ev = l7m_feed_steps(NULL, &conn, conn.proto, dir, copy, &cur, win, &info);

		CHECK(++calls <= 4 * (int)len + 16);
		if (ev != L7M_EV_NONE) {
			l7m_handle_event(NULL, &conn, dir, ev, &info,
					 win + (info.wbase > L7M_CARRY ? L7M_CARRY : info.wbase), &m);
			continue;
		}
		if (cur.off >= cur.len)
			break;
		CHECK(cur.off > before || L7M_STEPS > 0);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1_meta m = { .pid = 1, .tid = 1 };
	__u8 proto, dir;
	size_t i = 1;

	if (size < 1)
		return 0;
	proto = data[0] & 1 ? FUZZ_PROTO_B : FUZZ_PROTO_A;
	dir = data[0] & 2 ? H1_DIR_RECV : H1_DIR_SEND;
	memset(stats, 0, sizeof(stats));
	clock_ns = 1000;
	conn_reset(proto, dir);
	while (i < size) {
		__u8 op = data[i++];
		__u8 d = op & 0x80 ? H1_DIR_RECV : H1_DIR_SEND;
		size_t n;

		if (op & 0x40) {
			m.ts_start = m.ts_end = clock_ns;
			switch (op & 3) {
			case 0:
				l7m_close(NULL, &conn, &m);
				for (int k = 0; k < SONDE_PIPELINE_DEPTH; k++)
					CHECK(!conn.slots[k].live);
				conn_reset(proto, dir);
				break;
			case 1:
				slack[d - H1_DIR_SEND] += l7m_stream_for(&conn, d)->skip;
				l7m_lose(NULL, l7m_stream_for(&conn, d));
				break;
			case 2:
				while (l7m_expire_one(NULL, &conn, clock_ns, 256))
					;
				break;
			case 3:
				clock_ns += 1000;
				break;
			}
			continue;
		}
		if (op & 0x20) {
			if (i + 2 > size)
				break;
			n = (size_t)data[i] + ((size_t)data[i + 1] << 8) + 1;
			i += 2;
		} else {
			if (i + 1 > size)
				break;
			n = (size_t)data[i] + 1;
			i++;
		}
		if (n > size - i)
			n = size - i;
		if (n == 0)
			break;
		feed(d, data + i, n);
		i += n;
	}
	return 0;
}
