// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the Redis parser (bpf/proto/redis.h) on the message engine,
 * each conversation fed whole and cut at every piece size from 1 byte up, so
 * carry-over and skipping across syscalls are exercised at every offset.
 * The byte sequences are what redis-cli 7 and redis-server 7 exchange.
 */
#include "l7m_driver.h"

#define C H1_DIR_SEND /* the traced process is the client */
#define R H1_DIR_RECV

/* Run a client conversation whole and at every piece size; check the
 * transactions with `check` each time. */
/* Fields come from a command's head when one syscall (plus the engine's
 * 16-byte carry) holds it; below that only framing and pairing are checked. */
static int fields_visible;
#define FIELDS_VISIBLE fields_visible

static void each_split(const struct drv_call *calls, int n, void (*check)(void))
{
	struct drv d;
	size_t piece;

	for (piece = 0; piece <= 64; piece++) {
		int i;

		fields_visible = 1;
		for (i = 0; piece && i < n; i++)
			if (calls[i].len > piece && calls[i].len < 1000)
				fields_visible = 0;
		SET_CTX("piece %zu", piece);
		drv_reset(&d, SONDE_PROTO_REDIS, C);
		drv_run(&d, calls, n, piece);
		check();
	}
}

static const struct drv_call get_set[] = {
	{ C, S("*3\r\n$3\r\nset\r\n$5\r\nuser1\r\n$5\r\nalice\r\n") },
	{ R, S("+OK\r\n") },
	{ C, S("*2\r\n$3\r\nGET\r\n$5\r\nuser1\r\n") },
	{ R, S("$5\r\nalice\r\n") },
	{ C, S("*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n") },
	{ R, S("$-1\r\n") },
};

static void check_get_set(void)
{
	ASSERT_EQ(drv_ntx, 3);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].text, "SET user1");
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].route, "SET");
	ASSERT_EQ(drv_tx[0].reply, '+');
	ASSERT_EQ(drv_tx[0].req_bytes, 35);
	ASSERT_EQ(drv_tx[0].resp_bytes, 5);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].text, "GET user1");
	ASSERT_EQ(drv_tx[1].reply, '$');
	ASSERT_EQ(drv_tx[1].resp_bytes, 11);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[2].text, "GET missing");
	ASSERT_EQ(drv_tx[2].flags & SONDE_F_ERROR, 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
}

static void test_get_set(void) { each_split(get_set, 3 * 2, check_get_set); }

static const struct drv_call errors[] = {
	{ C, S("*2\r\n$4\r\nINCR\r\n$5\r\nuser1\r\n") },
	{ R, S("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n") },
	{ C, S("*1\r\n$7\r\nNOSUCHC\r\n") },
	{ R, S("-ERR unknown command 'NOSUCHC', with args beginning with: \r\n") },
};

static void check_errors(void)
{
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_TRUE(drv_tx[0].flags & SONDE_F_ERROR);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].detail, "WRONGTYPE");
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].text, "INCR user1");
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].detail, "ERR");
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].text, "NOSUCHC");
	ASSERT_EQ(drv_tx[1].reply, '-');
}

static void test_errors(void) { each_split(errors, 4, check_errors); }

/* Nested aggregates: EXEC of a transaction, SCAN's [cursor, [keys]], RESP3 maps. */
static const struct drv_call nested[] = {
	{ C, S("*1\r\n$5\r\nMULTI\r\n") },
	{ R, S("+OK\r\n") },
	{ C, S("*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n") },
	{ R, S("*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n:1\r\n_\r\n") },
	{ C, S("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n") },
	{ R, S("%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n") },
	{ C, S("*1\r\n$4\r\nPING\r\n") },
	{ R, S("|1\r\n+ttl\r\n:3\r\n+PONG\r\n") },
};

static void check_nested(void)
{
	ASSERT_EQ(drv_ntx, 4);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].text, "SCAN 0");
	if (FIELDS_VISIBLE)
		ASSERT_EQ(drv_tx[1].count, 2);
	ASSERT_EQ(drv_tx[1].reply, '*');
	ASSERT_EQ(drv_tx[2].reply, '%');
	if (FIELDS_VISIBLE)
		ASSERT_EQ(drv_tx[2].count, 2);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[3].text, "PING");
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
}

static void test_nested(void) { each_split(nested, 8, check_nested); }

/* Pipelining: three commands in one write, three replies in one read. */
static const struct drv_call pipelined[] = {
	{ C, S("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n"
	       "*2\r\n$3\r\nGET\r\n$1\r\na\r\n") },
	{ R, S("+OK\r\n:2\r\n$1\r\n2\r\n") },
};

static void check_pipelined(void)
{
	ASSERT_EQ(drv_ntx, 3);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].text, "SET a");
	ASSERT_EQ(drv_tx[0].reply, '+');
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].text, "INCR a");
	ASSERT_EQ(drv_tx[1].reply, ':');
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[2].text, "GET a");
	ASSERT_EQ(drv_tx[2].reply, '$');
}

static void test_pipelined(void) { each_split(pipelined, 2, check_pipelined); }

/* A value far longer than the window: skipped by length, not read. */
static char big_req[4200], big_resp[4200];
static struct drv_call big[4];

static void check_big(void)
{
	ASSERT_EQ(drv_ntx, 2);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].text, "SET big");
	ASSERT_EQ(drv_tx[0].req_bytes, big[0].len);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].text, "GET big");
	ASSERT_EQ(drv_tx[1].resp_bytes, big[3].len);
}

static void test_big_values(void)
{
	int n = snprintf(big_req, sizeof(big_req), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$4000\r\n");
	int m = snprintf(big_resp, sizeof(big_resp), "$4000\r\n");

	memset(big_req + n, 'x', 4000);
	memcpy(big_req + n + 4000, "\r\n", 2);
	memset(big_resp + m, 'x', 4000);
	memcpy(big_resp + m + 4000, "\r\n", 2);
	big[0] = (struct drv_call){ C, big_req, n + 4002 };
	big[1] = (struct drv_call){ R, S("+OK\r\n") };
	big[2] = (struct drv_call){ C, S("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n") };
	big[3] = (struct drv_call){ R, big_resp, m + 4002 };
	each_split(big, 4, check_big);
}

/* Pub/sub: the SUBSCRIBE confirmation answers the request, messages do not. */
static const struct drv_call pubsub[] = {
	{ C, S("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n") },
	{ R, S("*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n") },
	{ R, S("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n") },
	{ R, S(">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$3\r\nbye\r\n") },
	{ C, S("*1\r\n$4\r\nPING\r\n") },
	{ R, S("*2\r\n$4\r\npong\r\n$0\r\n\r\n") },
};

static void check_pubsub(void)
{
	ASSERT_EQ(drv_ntx, 2);
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[0].text, "SUBSCRIBE news");
	if (FIELDS_VISIBLE)
		ASSERT_STR(drv_tx[1].text, "PING");
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
}

static void test_pubsub(void) { each_split(pubsub, 6, check_pubsub); }

static void test_inference(void)
{
	__u8 w[L7M_BUF] = { 0 };
	int kind = 0;

	memcpy(w, "*1\r\n$4\r\nPING\r\n", 14);
	ASSERT_EQ(l7m_infer(w, 14, &kind), SONDE_PROTO_REDIS);
	ASSERT_EQ(kind, H1_INFER_REQUEST);
	memcpy(w, "GET / HTTP/1.1\r\n", 16);
	ASSERT_EQ(l7m_infer(w, 16, &kind), SONDE_PROTO_UNKNOWN);
	memcpy(w, "*12\r\nxx", 7);
	ASSERT_EQ(l7m_infer(w, 7, &kind), SONDE_PROTO_UNKNOWN);
}

/* Garbage loses framing (counted) and the next syscall that starts a
 * command picks it up again. */
static void test_resync(void)
{
	struct drv d;
	static const struct drv_call calls[] = {
		{ C, S("*2\r\n$3\r\nGET\r\n$1\r\na\r\n") },
		{ R, S("\x01\x02garbage") },
		{ C, S("*2\r\n$3\r\nGET\r\n$1\r\nb\r\n") },
		{ R, S("$1\r\nb\r\n") },
	};

	drv_reset(&d, SONDE_PROTO_REDIS, C);
	drv_run(&d, calls, 4, 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 1);
	/* the first request is answered by the first good reply (FIFO): the
	 * garbage reply is not a transaction */
	ASSERT_EQ(drv_ntx, 1);
}

int main(void)
{
	RUN(test_get_set);
	RUN(test_errors);
	RUN(test_nested);
	RUN(test_pipelined);
	RUN(test_big_values);
	RUN(test_pubsub);
	RUN(test_inference);
	RUN(test_resync);
	UNIT_SUMMARY("redis");
}
