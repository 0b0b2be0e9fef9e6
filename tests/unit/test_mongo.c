// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the MongoDB parser (bpf/proto/mongo.h) on the message
 * engine. MongoDB has no server in Debian: the capture is Debian's pymongo
 * 3.11 (a real driver: OP_QUERY handshake, OP_MSG commands with document
 * sequences and sessions) talking to tests/e2e/peers/mongo_peer.py, a small
 * server written from the wire protocol specification.
 */
/* error replies put codeName ~100 bytes into the body */
#define FIELD_PIECE_MIN 128
#include "l7m_captures.h"

#define P SONDE_PROTO_MONGO

static void no_loss(void)
{
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
}

static void check_monitor(void)
{
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_EQ(drv_tx[0].op, MONGO_K_QUERY);
	ASSERT_EQ(drv_tx[0].op2, MONGO_OP_QUERY);
	TX_STR(0, text, "ismaster admin.$cmd");
	TX_STR(0, route, "ismaster");
	if (FIELDS_VISIBLE)
		ASSERT_EQ(drv_tx[0].count, 1);
	ASSERT_EQ(drv_tx[0].flags & SONDE_F_ERROR, 0);
	ASSERT_EQ(drv_tx[0].req_bytes, 293);
	ASSERT_EQ(drv_tx[0].resp_bytes, 257);
	no_loss();
}

static void check_session(void)
{
	static const struct {
		const char *text, *detail;
		__u32 count, code;
		int error;
	} want[] = {
		{ "ismaster admin.$cmd", "", 1, 0, 0 },
		{ "insert orders", "", 1, 0, 0 },
		{ "insert orders", "", 2, 0, 0 },   /* documents in a kind-1 section */
		{ "find orders", "", 0, 0, 0 },
		{ "update orders", "", 1, 0, 0 },
		{ "delete orders", "", 1, 0, 0 },
		{ "aggregate orders", "", 0, 0, 0 }, /* count_documents */
		{ "nosuchcmd", "CommandNotFound", 0, 59, 1 },
		{ "drop missing", "NamespaceNotFound", 0, 26, 1 },
		{ "drop missing", "NamespaceNotFound", 0, 26, 1 },
		{ "endSessions", "", 0, 0, 0 },
	};
	__u32 i, n = sizeof(want) / sizeof(want[0]);

	ASSERT_EQ(drv_ntx, n);
	for (i = 0; i < n && i < (__u32)drv_ntx; i++) {
		if (FIELDS_VISIBLE && (strcmp(drv_tx[i].text, want[i].text) ||
				       strcmp(drv_tx[i].detail, want[i].detail)))
			t_report(__FILE__, __LINE__, "tx %u text '%s' detail '%s' want '%s' '%s'", i,
				 drv_tx[i].text, drv_tx[i].detail, want[i].text, want[i].detail);
		if (FIELDS_VISIBLE && (drv_tx[i].count != want[i].count ||
				       drv_tx[i].code != want[i].code ||
				       !!(drv_tx[i].flags & SONDE_F_ERROR) != want[i].error))
			t_report(__FILE__, __LINE__, "tx %u (%s): count %u code %u flags %#x", i,
				 want[i].text, drv_tx[i].count, drv_tx[i].code, drv_tx[i].flags);
		ASSERT_EQ(drv_tx[i].id != 0, 1);
	}
	ASSERT_EQ(drv_tx[1].req_bytes, 205);
	ASSERT_EQ(drv_tx[1].resp_bytes, 45);
	ASSERT_EQ(drv_tx[3].op, MONGO_K_MSG);
	no_loss();
}

static void test_monitor(void) { cap_check(P, "mongo/pymongo.cap", 0, check_monitor); }
static void test_session(void) { cap_check(P, "mongo/pymongo.cap", 1, check_session); }

/* A reply that does not answer the outstanding request is not paired with
 * it (id pairing, not FIFO); an OP_MSG with moreToCome is no transaction. */
static void test_pairing(void)
{
	struct cap cp;
	struct drv d;
	__u8 buf[512];
	size_t n;

	cap_load(&cp, P, "mongo/pymongo.cap", 1);
	drv_reset(&d, P, H1_DIR_SEND);
	/* request 0 (ismaster), then the reply to request 1 first */
	drv_syscall(&d, H1_DIR_SEND, cp.calls[0].data, cp.calls[0].len);
	drv_syscall(&d, H1_DIR_RECV, cp.calls[4].data, cp.calls[4].len);
	drv_syscall(&d, H1_DIR_RECV, cp.calls[5].data, cp.calls[5].len);
	ASSERT_EQ(drv_ntx, 0);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 1);
	drv_syscall(&d, H1_DIR_RECV, cp.calls[1].data, cp.calls[1].len);
	drv_syscall(&d, H1_DIR_RECV, cp.calls[2].data, cp.calls[2].len);
	ASSERT_EQ(drv_ntx, 1);
	/* the insert again with moreToCome (w: 0) */
	n = cp.calls[3].len < sizeof(buf) ? cp.calls[3].len : sizeof(buf);
	memcpy(buf, cp.calls[3].data, n);
	buf[16] |= 2;
	drv_syscall(&d, H1_DIR_SEND, buf, n);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_TRUE(l7m_newest(&d.c) == NULL);
	cap_free(&cp);
}

static void test_inference(void)
{
	struct cap cp;
	__u8 w[L7M_BUF];
	int i;

	cap_load(&cp, P, "mongo/pymongo.cap", 1);
	for (i = 0; i < cp.n; i++) {
		size_t n = cp.calls[i].len < L7M_WIN ? cp.calls[i].len : L7M_WIN;

		memset(w, 0, sizeof(w));
		memcpy(w, cp.calls[i].data, n);
		SET_CTX("call %d", i);
		/* every request infers, no reply does */
		ASSERT_EQ(mongo_infer(w, n),
			  cp.calls[i].dir == H1_DIR_SEND ? H1_INFER_REQUEST : H1_INFER_NONE);
	}
	memset(w, 0, sizeof(w));
	memcpy(w, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	ASSERT_EQ(mongo_infer(w, 27), 0);
	/* a MySQL greeting, a PostgreSQL startup */
	memcpy(w, "\x4a\x00\x00\x00\x0a" "8.0.32\0\x08\x00\x00\x00" "abcdefgh\0\xff\xff\xff\x02\x00\x00\x00\x00", 32);
	ASSERT_EQ(mongo_infer(w, 32), 0);
	memcpy(w, "\x00\x00\x00\x54\x00\x03\x00\x00" "user\0postgres\0database\0x\0\0\0", 32);
	ASSERT_EQ(mongo_infer(w, 32), 0);
	cap_free(&cp);
}

int main(void)
{
	RUN(test_monitor);
	RUN(test_session);
	RUN(test_pairing);
	RUN(test_inference);
	UNIT_SUMMARY("mongo");
}
