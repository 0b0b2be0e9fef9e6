// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the PostgreSQL parser (bpf/proto/pgsql.h) on the message
 * engine. The conversations are real: psql 15 and a libpq client
 * (tests/e2e/peers/pgext.c) against postgres 15, captured by
 * tests/unit/captures/capture_sql.py. Each is fed as the client saw it and as
 * the server saw it, whole and cut at every piece size from 1 byte up.
 *
 * Usage: test_pgsql [CAPTURE_DIR]   (default tests/unit/captures)
 */
#include "sql_cases.h"

#define P SONDE_PROTO_PGSQL
#define ERR SONDE_F_ERROR
#define CUT SONDE_F_PATH_TRUNCATED

/* psql over TCP: SSLRequest refused ('N'), startup, simple queries. */
static const struct want psql_tcp[] = {
	{ 'Q', "CREATE TABLE t (id int primary key, name text)", "CREATE", "CREATE TABLE", 'I', 0,
	  0, 0, 0, 52, 24 },
	{ 'Q', "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT", "INSERT 0 3", 'I', 0, 0,
	  3, 0, 55, 22 },
	{ 'Q', "SELECT * FROM t ORDER BY id", "SELECT", "SELECT 3", 'I', 0, 0, 3, 0, 33, 122 },
	{ 'Q', "UPDATE t set name = 'z' where id < 3", "UPDATE", "UPDATE 2", 'I', 0, 0, 2, 0, 42, 20 },
	{ 'Q', "SELECT * FROM missing_table", "SELECT", "42P01", 'I', ERR, 0, 0, 0, 33, 119 },
	/* two statements, one response: the last tag, rows summed */
	{ 'Q', "SELECT 1; SELECT 2, 3", "SELECT", "SELECT 1", 'I', 0, 0, 2, 0, 27, 158 },
	/* a NoticeResponse before the tag */
	{ 'Q', "DROP TABLE IF EXISTS nope", "DROP", "DROP TABLE", 'I', 0, 0, 0, 0, 31, 134 },
	{ 'Q', "DROP TABLE t", "DROP", "DROP TABLE", 'I', 0, 0, 0, 0, 18, 22 },
};

/* psql over the unix socket: no SSLRequest. */
static const struct want psql_unix[] = {
	{ 'Q', "SELECT current_user", "SELECT", "SELECT 1", 'I', 0, 0, 1, 0, 25, 77 },
	{ 'Q', "SELEC 1", "SELEC", "42601", 'I', ERR, 0, 0, 0, 13, 100 },
};

/* A query longer than the record keeps and a 47 kB result over many reads. */
static const struct want psql_big[] = {
	{ 'Q',
	  "SELECT g AS a_rather_long_column_alias_a_rather_long_column_alias_a_rather_long_column_"
	  "alias_a_r",
	  "SELECT", "SELECT 400", 'I', CUT, 0, 400, 0, 176, 47504 },
};

/* COPY FROM STDIN: the client's CopyData/CopyDone belong to the COPY request. */
static const struct want psql_copy[] = {
	{ 'Q', "CREATE TABLE c (a int, b text)", "CREATE", "CREATE TABLE", 'I', 0, 0, 0, 0, 36, 24 },
	{ 'Q', "COPY c FROM STDIN", "COPY", "COPY 2", 'I', 0, 0, 2, 0, 48, 30 },
	{ 'Q', "SELECT count(*) FROM c", "SELECT", "SELECT 1", 'I', 0, 0, 1, 0, 28, 63 },
	{ 'Q', "DROP TABLE c", "DROP", "DROP TABLE", 'I', 0, 0, 0, 0, 18, 22 },
};

/* libpq's extended protocol: PQexecParams (P B D E S), PQprepare (P S),
 * PQexecPrepared (B D E S), an error in Execute, then a simple query. */
static const struct want ext_tcp[] = {
	{ 'P', "SELECT $1::int + 1", "SELECT", "SELECT 1", 'I', 0, 0, 1, 0, 70, 77 },
	{ 'P', "SELECT $1::text || $2::text", "SELECT", "", 'I', 0, 0, 0, 0, 43, 11 },
	{ 'B', "s1", "", "SELECT 1", 'I', 0, 0, 1, 0, 51, 74 },
	{ 'B', "s1", "", "SELECT 1", 'I', 0, 0, 1, 0, 51, 74 },
	{ 'P', "SELECT 1/0", "SELECT", "22012", 'I', ERR, 0, 0, 0, 56, 77 },
	{ 'Q', "SELECT 42", "SELECT", "SELECT 1", 'I', 0, 0, 1, 0, 15, 67 },
};

static const struct want ext_unix[] = {
	{ 'P', "SELECT $1::text", "SELECT", "SELECT 1", 'I', 0, 0, 1, 0, 69, 75 },
	{ 'P', "SELECT nope_column", "SELECT", "42703", 'I', ERR, 0, 0, 0, 64, 117 },
};

static void test_psql_tcp(void) { CHECK_CAPTURE(P, "pgsql", "psql_tcp", psql_tcp); }
static void test_psql_unix(void) { CHECK_CAPTURE(P, "pgsql", "psql_unix", psql_unix); }
static void test_psql_big(void) { CHECK_CAPTURE(P, "pgsql", "psql_big", psql_big); }
static void test_psql_copy(void) { CHECK_CAPTURE(P, "pgsql", "psql_copy", psql_copy); }
static void test_ext_tcp(void) { CHECK_CAPTURE(P, "pgsql", "ext_tcp", ext_tcp); }
static void test_ext_unix(void) { CHECK_CAPTURE(P, "pgsql", "ext_unix", ext_unix); }

/* Pipelining: the capture's queries 3 and 4 in one write, both responses in
 * one read; then an extended request split at its Sync. */
static void test_pipelined(void)
{
	struct cap cap;
	struct drv d;
	__u8 req[256], resp[512];
	size_t rl, sl;
	struct drv_call calls[3];

	cap_load(&cap, "pgsql", "psql_tcp");
	/* calls: 0 SSL, 1 'N', 2 startup, 3 auth.., 4 Q1, 5 R1, 6 Q2, 7 R2, 8 Q3, 9 R3, 10 Q4, 11 R4 */
	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, cap.calls, 4, 0);
	rl = cap.calls[8].len + cap.calls[10].len;
	sl = cap.calls[9].len + cap.calls[11].len;
	memcpy(req, cap.calls[8].data, cap.calls[8].len);
	memcpy(req + cap.calls[8].len, cap.calls[10].data, cap.calls[10].len);
	memcpy(resp, cap.calls[9].data, cap.calls[9].len);
	memcpy(resp + cap.calls[9].len, cap.calls[11].data, cap.calls[11].len);
	calls[0] = (struct drv_call){ H1_DIR_SEND, req, rl };
	calls[1] = (struct drv_call){ H1_DIR_RECV, resp, sl };
	drv_run(&d, calls, 2, 0);
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_STR(drv_tx[0].text, "SELECT * FROM t ORDER BY id");
	ASSERT_STR(drv_tx[0].detail, "SELECT 3");
	ASSERT_EQ(drv_tx[0].req_bytes, 33);
	ASSERT_EQ(drv_tx[0].resp_bytes, 122);
	ASSERT_STR(drv_tx[1].text, "UPDATE t set name = 'z' where id < 3");
	ASSERT_STR(drv_tx[1].detail, "UPDATE 2");
	ASSERT_EQ(drv_tx[1].resp_bytes, 20);
	cap_free(&cap);

	/* P B D E in one write, the Sync in the next: still one request */
	cap_load(&cap, "pgsql", "ext_tcp");
	calls[0] = (struct drv_call){ H1_DIR_SEND, cap.calls[2].data, cap.calls[2].len - 5 };
	calls[1] = (struct drv_call){ H1_DIR_SEND, (const __u8 *)cap.calls[2].data + cap.calls[2].len - 5, 5 };
	calls[2] = cap.calls[3];
	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, calls, 3, 0);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_STR(drv_tx[0].text, "SELECT $1::int + 1");
	ASSERT_EQ(drv_tx[0].req_bytes, 70);
	ASSERT_EQ(drv_tx[0].resp_bytes, 77);
	cap_free(&cap);
}

/*
 * Framing lost in the middle of a large result (in the kernel: more messages
 * in one read than a syscall's tail calls parse). Reads that start inside
 * rows cannot be framed; the next response that can answers the newest
 * request, and the query whose response was lost is dropped and counted,
 * never paired with another query's response. When a read of the lost
 * response itself starts at a message, that response is still its own.
 */
static void test_resync_after_loss(void)
{
	static const char tail[] = "C\0\0\0\x0fSELECT 400\0Z\0\0\0\x05I";
	struct cap big, small;
	struct drv d;

	cap_load(&big, "pgsql", "psql_big");
	cap_load(&small, "pgsql", "psql_tcp");
	/* psql_big: SSL, 'N', startup, auth, the query, a notice, then rows in 16 kB reads */
	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, big.calls, 7, 0);
	l7m_lose(NULL, &d.c.resp);
	drv_run(&d, big.calls + 7, 2, 0); /* reads that start inside rows */
	drv_run(&d, small.calls + 8, 2, 0); /* SELECT * FROM t ORDER BY id */
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_STR(drv_tx[0].text, "SELECT * FROM t ORDER BY id");
	ASSERT_STR(drv_tx[0].detail, "SELECT 3");
	ASSERT_EQ(drv_tx[0].resp_bytes, 122);
	ASSERT_EQ(drv_stats[H1_STAT(requests_abandoned)], 1);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);

	/* the lost response's last read starts at its CommandComplete */
	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, big.calls, 7, 0);
	l7m_lose(NULL, &d.c.resp);
	drv_syscall(&d, H1_DIR_RECV, tail, sizeof(tail) - 1);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_STR(drv_tx[0].detail, "SELECT 400");
	ASSERT_EQ(drv_tx[0].count, 400);
	ASSERT_EQ(drv_stats[H1_STAT(requests_abandoned)], 0);
	cap_free(&big);
	cap_free(&small);
}

/* SSL accepted: everything after the 'S' is TLS, skipped without a loss. */
static void test_ssl_accepted(void)
{
	static const __u8 ssl_req[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	static const __u8 hello[] = { 0x16, 0x03, 0x01, 0x00, 0x40, 'Q', 0, 0, 0, 9, 'S', 'E', 'L' };
	struct drv_call calls[] = {
		{ H1_DIR_SEND, ssl_req, sizeof(ssl_req) },
		{ H1_DIR_RECV, S("S") },
		{ H1_DIR_SEND, hello, sizeof(hello) },
		{ H1_DIR_RECV, hello, sizeof(hello) },
		{ H1_DIR_SEND, S("Q\0\0\0\x0dSELECT 1\0") },
	};
	struct drv d;

	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, calls, 5, 0);
	ASSERT_EQ(drv_ntx, 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_EQ(d.c.req.phase, PG_PH_OPAQUE);
	ASSERT_EQ(d.c.resp.phase, PG_PH_OPAQUE);
}

/* A request cut off by the connection's close is reported as such. */
static void test_closed_pending(void)
{
	struct drv_call calls[] = {
		{ H1_DIR_SEND, S("Q\0\0\0\x0eSELECT 42\0") },
		{ H1_DIR_RECV, S("T\0\0\0\x21\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0") },
	};
	struct h1_meta m = { .ts_end = 99 };
	struct drv d;

	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, calls, 2, 0);
	ASSERT_EQ(drv_ntx, 0);
	l7m_close(NULL, &d.c, &m);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_TRUE(drv_tx[0].flags & SONDE_F_CLOSED);
	ASSERT_STR(drv_tx[0].text, "SELECT 42");
}

/* Hostile input: bad lengths and types lose framing (counted) and the next
 * syscall that starts a message picks it up again; nothing is misreported. */
static void test_hostile(void)
{
	static const struct drv_call calls[] = {
		{ H1_DIR_SEND, S("Q\0\0\0\x02xx") },              /* length below 4 */
		{ H1_DIR_SEND, S("Q\x7f\xff\xff\xff") },          /* beyond 1 GB */
		{ H1_DIR_SEND, S("@\0\0\0\x04") },                /* no such type */
		{ H1_DIR_SEND, S("\0\0\0\x08\0\0\0\0") },         /* untyped, unknown code */
		{ H1_DIR_SEND, S("Q\0\0\0\x0eSELECT 42\0") },
		{ H1_DIR_RECV, S("\x01\x02\x03\x04\x05\x06") },   /* garbage answer */
		{ H1_DIR_RECV, S("C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I") },
	};
	struct drv d;

	drv_reset(&d, P, H1_DIR_SEND);
	drv_run(&d, calls, 7, 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 5);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_STR(drv_tx[0].text, "SELECT 42");
	ASSERT_STR(drv_tx[0].detail, "SELECT 1");
	ASSERT_EQ(drv_tx[0].resp_bytes, 20);
}

static int infer(const char *bytes, size_t n)
{
	__u8 w[L7M_BUF] = { 0 };
	int kind = 0;
	__u8 p;

	memcpy(w, bytes, n < sizeof(w) ? n : sizeof(w));
	p = l7m_infer(w, n, &kind);
	return p == SONDE_PROTO_PGSQL ? kind : p == SONDE_PROTO_UNKNOWN ? 0 : -(int)p;
}

static void test_inference(void)
{
	struct cap cap;
	int i, q;

	/* what every captured connection starts with */
	static const char *const caps[] = { "psql_tcp", "psql_unix", "ext_tcp", "psql_big" };
	for (i = 0; i < 4; i++) {
		cap_load(&cap, "pgsql", caps[i]);
		SET_CTX("%s", caps[i]);
		ASSERT_EQ(infer(cap.calls[0].data, cap.calls[0].len), H1_INFER_REQUEST);
		/* the last query, as on a connection open before sonde started */
		for (q = cap.n - 1; q > 0; q--)
			if (((const char *)cap.calls[q].data)[0] == 'Q')
				break;
		ASSERT_EQ(infer(cap.calls[q].data, cap.calls[q].len), H1_INFER_REQUEST);
		/* server messages alone say nothing */
		ASSERT_EQ(infer(cap.calls[q + 1].data, cap.calls[q + 1].len), 0);
		cap_free(&cap);
	}
	SET_CTX("negatives");
	ASSERT_EQ(infer(S("\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x01\0\0\0\x02")), H1_INFER_REQUEST);
	ASSERT_EQ(infer(S("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), 0);
	ASSERT_EQ(infer(S("QUIT\r\n\0\0\0\0")), 0);
	ASSERT_EQ(infer(S("Q\0\0\0\x0e\x01\x02\x03\x04\x05\x06\x07\x08\0")), 0);
	ASSERT_EQ(infer(S("Q\0\0\0\x20SELECT 1\0")), 0);  /* NUL where the length says */
	ASSERT_EQ(infer(S("\0\0\0\x08\x04\xd2\x16\x30")), H1_INFER_REQUEST); /* GSSENCRequest */
	ASSERT_EQ(infer(S("\0\0\0\x09\x04\xd2\x16\x2f\0")), 0); /* SSL code, wrong length */
	ASSERT_EQ(infer(S("\0\0\0\x30\0\x02\0\0user\0")), 0);  /* protocol 2 */
	ASSERT_EQ(infer(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")), 0); /* TLS hello */
	ASSERT_EQ(infer(S("SSH-2.0-OpenSSH_9.2\r\n")), 0);
	ASSERT_EQ(infer(S("\0\0\0\x10\0\0\0\0\0\0\0\0\0\0\0\0")), 0);
	ASSERT_EQ(infer(S("*1\r\n$4\r\nPING\r\n")), -SONDE_PROTO_REDIS);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cap_dir = argv[1];
	RUN(test_psql_tcp);
	RUN(test_psql_unix);
	RUN(test_psql_big);
	RUN(test_psql_copy);
	RUN(test_ext_tcp);
	RUN(test_ext_unix);
	RUN(test_pipelined);
	RUN(test_resync_after_loss);
	RUN(test_ssl_accepted);
	RUN(test_closed_pending);
	RUN(test_hostile);
	RUN(test_inference);
	UNIT_SUMMARY("pgsql");
}
