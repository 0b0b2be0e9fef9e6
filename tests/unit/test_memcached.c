// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the memcached parser (bpf/proto/memcached.h) on the message
 * engine. The conversations are captures of Debian's memcached 1.6 with the
 * libmemcached tools (memccp, memccat, memcrm, memcstat ...) and with raw
 * requests (tests/unit/captures/memcached/mixed.txt) for what those tools do
 * not send: incr/decr, multi-key get, noreply, cas, errors, pipelines. Each
 * is fed whole and cut at every piece size, as client and as server.
 */
#include "l7m_captures.h"

#define P SONDE_PROTO_MEMCACHED

static void no_loss(void)
{
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
}

static void check_memccp(void)
{
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_EQ(drv_tx[0].op, MC_CMD_SET);
	TX_STR(0, text, "set greeting");
	TX_STR(0, route, "set");
	ASSERT_EQ(drv_tx[0].reply, MC_R_STORED);
	TX_STR(0, detail, "STORED");
	ASSERT_EQ(drv_tx[0].req_bytes, 34);
	ASSERT_EQ(drv_tx[0].resp_bytes, 8);
	/* 10893 bytes of data in two writes: skipped, counted */
	TX_STR(1, text, "set big.txt");
	ASSERT_EQ(drv_tx[1].req_bytes, 8196 + 2722);
	ASSERT_EQ(drv_tx[1].reply, MC_R_STORED);
	ASSERT_EQ(drv_tx[1].flags & SONDE_F_ERROR, 0);
	no_loss();
}

static void check_memccat(void)
{
	ASSERT_EQ(drv_ntx, 3);
	TX_STR(0, text, "get greeting");
	ASSERT_EQ(drv_tx[0].op, MC_CMD_GET);
	ASSERT_EQ(drv_tx[0].reply, MC_R_HIT);
	ASSERT_EQ(drv_tx[0].count, 1);
	ASSERT_EQ(drv_tx[0].resp_bytes, 39);
	TX_STR(1, text, "get big.txt");
	ASSERT_EQ(drv_tx[1].reply, MC_R_HIT);
	ASSERT_EQ(drv_tx[1].resp_bytes, 8196 + 2727);
	TX_STR(2, text, "get nosuchkey");
	ASSERT_EQ(drv_tx[2].reply, MC_R_MISS);
	ASSERT_EQ(drv_tx[2].count, 0);
	TX_STR(2, detail, "END");
	no_loss();
}

static void check_memcrm(void)
{
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_EQ(drv_tx[0].op, MC_CMD_DELETE);
	TX_STR(0, text, "delete greeting");
	ASSERT_EQ(drv_tx[0].reply, MC_R_DELETED);
	TX_STR(1, text, "delete nosuchkey");
	ASSERT_EQ(drv_tx[1].reply, MC_R_NOT_FOUND);
	TX_STR(1, detail, "NOT_FOUND");
	ASSERT_EQ(drv_tx[1].flags & SONDE_F_ERROR, 0);
	no_loss();
}

static void check_memcstat(void)
{
	ASSERT_EQ(drv_ntx, 2);
	TX_STR(0, text, "version");
	ASSERT_EQ(drv_tx[0].reply, MC_R_VERSION);
	TX_STR(0, detail, "VERSION 1.6.18");
	ASSERT_EQ(drv_tx[1].op, MC_CMD_STATS);
	TX_STR(1, text, "stats");
	ASSERT_EQ(drv_tx[1].reply, MC_R_STATS);
	ASSERT_EQ(drv_tx[1].resp_bytes, 2221);
	ASSERT_TRUE(drv_tx[1].count > 50); /* one per STAT line */
	no_loss();
}

static void check_memctouch(void)
{
	ASSERT_EQ(drv_ntx, 1);
	TX_STR(0, text, "touch big.txt");
	ASSERT_EQ(drv_tx[0].reply, MC_R_TOUCHED);
	no_loss();
}

static void check_memcflush(void)
{
	ASSERT_EQ(drv_ntx, 1);
	TX_STR(0, text, "flush_all");
	ASSERT_EQ(drv_tx[0].op, MC_CMD_FLUSH_ALL);
	ASSERT_EQ(drv_tx[0].reply, MC_R_OK);
	no_loss();
}

/* mixed.txt, answered by the real server: see the capture for the bytes. */
static void check_mixed(void)
{
	static const struct {
		const char *text;
		__u8 reply;
		__u32 count;
		int error;
	} want[] = {
		{ "set a", MC_R_STORED, 0, 0 },
		{ "incr a", MC_R_NUMBER, 0, 0 },
		{ "decr a", MC_R_NUMBER, 0, 0 },
		{ "incr nosuch", MC_R_NOT_FOUND, 0, 0 },
		{ "get a", MC_R_HIT, 2, 0 },         /* get a nosuch greeting a */
		/* set q ... noreply: no response, not reported */
		{ "gets q", MC_R_HIT, 1, 0 },
		/* cas ... noreply */
		{ "cas q", MC_R_EXISTS, 0, 0 },
		{ "add a", MC_R_NOT_STORED, 0, 0 },
		{ "append q", MC_R_STORED, 0, 0 },
		/* delete q noreply */
		{ "get q", MC_R_MISS, 0, 0 },
		/* "bogus command": framing lost, its ERROR unpaired */
		/* set bad with 6 bytes for 2: CLIENT_ERROR, then "ef" loses framing
		 * and the second ERROR is unpaired */
		{ "set bad", MC_R_CLIENT_ERROR, 0, 1 },
		{ "gat a", MC_R_HIT, 1, 0 },
		{ "incr greeting", MC_R_NOT_FOUND, 0, 0 },
		{ "set p", MC_R_STORED, 0, 0 },     /* three pipelined in one write */
		{ "get p", MC_R_HIT, 1, 0 },
		{ "get p", MC_R_HIT, 2, 0 },
		{ "verbosity 1", MC_R_OK, 0, 0 },
		{ "version", MC_R_VERSION, 0, 0 },
		/* quit: no response */
	};
	__u32 i, n = sizeof(want) / sizeof(want[0]);

	ASSERT_EQ(drv_ntx, n);
	for (i = 0; i < n && i < (__u32)drv_ntx; i++) {
		if (FIELDS_VISIBLE && strcmp(drv_tx[i].text, want[i].text))
			t_report(__FILE__, __LINE__, "tx %u text '%s' want '%s'", i,
				 drv_tx[i].text, want[i].text);
		if (drv_tx[i].reply != want[i].reply || drv_tx[i].count != want[i].count ||
		    !!(drv_tx[i].flags & SONDE_F_ERROR) != want[i].error)
			t_report(__FILE__, __LINE__, "tx %u (%s): reply %u count %u flags %#x", i,
				 want[i].text, drv_tx[i].reply, drv_tx[i].count, drv_tx[i].flags);
	}
	/* "bogus" and "ef\r\n" */
	if (FIELDS_VISIBLE)
		ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 2);
	else /* a write cut in pieces: each piece of the garbage is tried anew */
		ASSERT_TRUE(drv_stats[H1_STAT(parse_lost)] >= 2);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 2);
	TX_STR(10, detail, "CLIENT_ERROR bad data chunk");
	ASSERT_EQ(drv_tx[1].req_bytes, 11);
	ASSERT_EQ(drv_tx[1].resp_bytes, 4);
}

static void test_memccp(void) { cap_check(P, "memcached/memccp.cap", 0, check_memccp); }
static void test_memccat(void) { cap_check(P, "memcached/memccat.cap", 0, check_memccat); }
static void test_memcrm(void) { cap_check(P, "memcached/memcrm.cap", 0, check_memcrm); }
static void test_memcstat(void) { cap_check(P, "memcached/memcstat.cap", 0, check_memcstat); }
static void test_memctouch(void) { cap_check(P, "memcached/memctouch.cap", 0, check_memctouch); }
static void test_memcflush(void) { cap_check(P, "memcached/memcflush.cap", 0, check_memcflush); }
static void test_mixed(void) { cap_check(P, "memcached/mixed.cap", 0, check_mixed); }

/* A key as long as memcached allows (250 bytes): the line is longer than
 * the window; the walker follows it to the data block. */
static char long_set[400], long_get[300], long_val[400];
static struct drv_call long_calls[4];

static void check_long_key(void)
{
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_EQ(drv_tx[0].reply, MC_R_STORED);
	ASSERT_EQ(drv_tx[0].req_bytes, long_calls[0].len);
	ASSERT_TRUE(drv_tx[0].flags & SONDE_F_PATH_TRUNCATED);
	ASSERT_EQ(drv_tx[1].reply, MC_R_HIT);
	ASSERT_EQ(drv_tx[1].count, 1);
	ASSERT_EQ(drv_tx[1].resp_bytes, long_calls[3].len);
	if (FIELDS_VISIBLE)
		ASSERT_EQ(strncmp(drv_tx[1].text, "get kkkkk", 9), 0);
	no_loss();
}

static void test_long_key(void)
{
	char key[251];

	memset(key, 'k', 250);
	key[250] = 0;
	long_calls[0] = (struct drv_call){ H1_DIR_SEND, long_set,
		(size_t)snprintf(long_set, sizeof(long_set), "set %s 1 0 3 \r\nabc\r\n", key) };
	long_calls[1] = (struct drv_call){ H1_DIR_RECV, S("STORED\r\n") };
	long_calls[2] = (struct drv_call){ H1_DIR_SEND, long_get,
		(size_t)snprintf(long_get, sizeof(long_get), "get %s\r\n", key) };
	long_calls[3] = (struct drv_call){ H1_DIR_RECV, long_val,
		(size_t)snprintf(long_val, sizeof(long_val), "VALUE %s 1 3\r\nabc\r\nEND\r\n", key) };
	cap_name = "long key";
	each_split(long_calls, 4, P, check_long_key);
	each_split_server(long_calls, 4, P, check_long_key);
}

static void test_inference(void)
{
	static const struct {
		const char *bytes;
		int want;
	} cases[] = {
		{ "get greeting\r\n", H1_INFER_REQUEST },
		{ "set greeting 0 0 11\r\nhello world\r\n", H1_INFER_REQUEST },
		{ "cas q 0 0 2 1\r\nxy\r\n", H1_INFER_REQUEST },
		{ "version\r\n", H1_INFER_REQUEST },
		{ "stats \r\n", H1_INFER_REQUEST },
		{ "delete k noreply\r\n", H1_INFER_REQUEST },
		/* not memcached */
		{ "GET / HTTP/1.1\r\n", 0 },
		{ "get\r\n", 0 },                   /* no key */
		{ "get greeting", 0 },              /* line not ended */
		{ "get k\n", 0 },                   /* bare LF */
		{ "set k 0 0\r\n", 0 },             /* no <bytes> */
		{ "set k 0 0 x\r\n", 0 },
		{ "settle down\r\n", 0 },
		{ "get a\x01" "b\r\n", 0 },
		{ "*1\r\n$4\r\nPING\r\n", 0 },      /* redis */
		{ "VALUE k 0 1\r\n", 0 },            /* a response */
		{ "\x80\x00\x00\x05", 0 },           /* the binary protocol */
	};
	__u8 w[L7M_BUF];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].bytes);

		memset(w, 0, sizeof(w));
		memcpy(w, cases[i].bytes, n);
		SET_CTX("case %zu", i);
		ASSERT_EQ(memcached_infer(w, n), cases[i].want);
	}
}

int main(void)
{
	RUN(test_memccp);
	RUN(test_memccat);
	RUN(test_memcrm);
	RUN(test_memcstat);
	RUN(test_memctouch);
	RUN(test_memcflush);
	RUN(test_mixed);
	RUN(test_long_key);
	RUN(test_inference);
	UNIT_SUMMARY("memcached");
}
