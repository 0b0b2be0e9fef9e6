// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the MySQL/MariaDB parser (bpf/proto/mysql.h) on the message
 * engine. The conversations are real: the mariadb 10.11 CLI and a libmariadb
 * client with prepared statements (tests/e2e/peers/mystmt.c) against
 * mariadbd 10.11, captured by tests/unit/captures/capture_sql.py. Each is fed
 * as the client saw it and as the server saw it, whole and cut at every
 * piece size from 1 byte up.
 *
 * Usage: test_mysql [CAPTURE_DIR]   (default tests/unit/captures)
 */
#include "sql_cases.h"

#define M SONDE_PROTO_MYSQL
#define ERR SONDE_F_ERROR
#define CUT SONDE_F_PATH_TRUNCATED
#define Q MY_COM_QUERY
#define PREP MY_COM_STMT_PREPARE
#define EXEC MY_COM_STMT_EXECUTE

/* The CLI over TCP: greeting, handshake, COM_QUERY / COM_INIT_DB, an error;
 * its COM_QUIT gets no response and no record. */
static const struct want cli_tcp[] = {
	{ Q, "CREATE DATABASE IF NOT EXISTS d", "CREATE", "", 'O', 0, 0, 1, 0, 36, 11 },
	{ Q, "SELECT DATABASE()", "SELECT", "", 'R', 0, 0, 1, 0, 22, 66 },
	{ MY_COM_INIT_DB, "d", "", "", 'O', 0, 0, 0, 0, 6, 17 },
	{ Q, "CREATE TABLE t (id int primary key, name text)", "CREATE", "", 'O', 0, 0, 0, 0, 51, 11 },
	{ Q, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT", "", 'O', 0, 0, 3, 0, 54,
	  50 },
	{ Q, "SELECT * FROM t ORDER BY id", "SELECT", "", 'R', 0, 0, 3, 0, 32, 120 },
	{ Q, "UPDATE t set name = 'z' where id < 3", "UPDATE", "", 'O', 0, 0, 2, 0, 41, 52 },
	/* a row that starts like a column definition ("\x03def") */
	{ Q, "SELECT 'def', 2", "SELECT", "", 'R', 0, 0, 1, 0, 20, 92 },
	{ Q, "DROP TABLE t", "DROP", "", 'O', 0, 0, 0, 0, 17, 11 },
	{ Q, "SELECT * FROM missing_table", "SELECT", "42S02", 'E', ERR, 1146, 0, 0, 32, 50 },
};

static const struct want cli_unix[] = {
	{ Q, "SELECT 1", "SELECT", "", 'R', 0, 0, 1, 0, 13, 58 },
	{ Q, "SELEC 2", "SELEC", "42000", 'E', ERR, 1064, 0, 0, 12, 168 },
};

/* A query longer than the record keeps and a 43 kB result over many reads. */
static const struct want cli_big[] = {
	{ Q,
	  "SELECT seq AS a_rather_long_column_alias_a_rather_long_column_alias_a_rather_long_column_"
	  "alias_a",
	  "SELECT", "", 'R', CUT, 0, 400, 0, 164, 43727 },
};

/* Prepared statements over TCP: PREPARE (parameter and column definitions,
 * classic EOFs), EXECUTE (binary rows, which start with 0x00), CLOSE (no
 * response), a failing PREPARE, COM_PING, a multi-statement query. */
static const struct want stmt_tcp[] = {
	{ Q, "CREATE DATABASE IF NOT EXISTS d", "CREATE", "", 'O', 0, 0, 0, 0, 36, 11 },
	{ Q, "USE d", "USE", "", 'O', 0, 0, 0, 0, 10, 17 },
	{ Q, "CREATE TABLE IF NOT EXISTS s (id int, name text)", "CREATE", "", 'O', 0, 0, 0, 0, 53,
	  11 },
	{ PREP, "INSERT INTO s VALUES (?, ?)", "INSERT", "", 'P', 0, 0, 2, 1, 32, 81 },
	{ EXEC, "", "", "", 'O', 0, 0, 1, 1, 26, 11 },
	{ EXEC, "", "", "", 'O', 0, 0, 1, 1, 26, 11 },
	{ PREP, "SELECT id, name FROM s WHERE id >= ?", "SELECT", "", 'P', 0, 0, 1, 2, 41, 134 },
	{ EXEC, "", "", "", 'R', 0, 0, 2, 2, 20, 52 },
	{ PREP, "SELECT * FROM nope", "SELECT", "42S02", 'E', ERR, 1146, 0, 0, 23, 41 },
	{ 0x0e, "", "", "", 'O', 0, 0, 0, 0, 5, 11 },
	/* two result sets, SERVER_MORE_RESULTS_EXISTS between them */
	{ Q, "SELECT 1; SELECT 2, 3", "SELECT", "", 'R', 0, 0, 2, 0, 26, 146 },
	{ Q, "DROP TABLE s", "DROP", "", 'O', 0, 0, 0, 0, 17, 11 },
};

/* Over the unix socket; the result of EXECUTE has its metadata cached
 * (MariaDB: no column definitions after the count). */
static const struct want stmt_unix[] = {
	{ PREP, "SELECT ? + 1", "SELECT", "", 'P', 0, 0, 1, 4, 17, 94 },
	{ EXEC, "", "", "", 'R', 0, 0, 1, 4, 21, 70 },
	{ Q, "SELECT * FROM mysql.nope", "SELECT", "42S02", 'E', ERR, 1146, 0, 0, 29, 45 },
};

static void test_cli_tcp(void) { CHECK_CAPTURE(M, "mysql", "cli_tcp", cli_tcp); }
static void test_cli_unix(void) { CHECK_CAPTURE(M, "mysql", "cli_unix", cli_unix); }
static void test_cli_big(void) { CHECK_CAPTURE(M, "mysql", "cli_big", cli_big); }
static void test_stmt_tcp(void) { CHECK_CAPTURE(M, "mysql", "stmt_tcp", stmt_tcp); }
static void test_stmt_unix(void) { CHECK_CAPTURE(M, "mysql", "stmt_unix", stmt_unix); }

/* Client capabilities: whether EOF packets follow definitions. */
static void test_handshake_mode(void)
{
	struct cap cap;
	struct drv d;

	cap_load(&cap, "mysql", "stmt_tcp");
	drv_reset(&d, M, H1_DIR_SEND);
	drv_run(&d, cap.calls, 3, 0);
	ASSERT_EQ(d.c.req.st2 & MY_EOF_MODE, MY_EOF_CLASSIC);
	cap_free(&cap);
}

/*
 * CLIENT_DEPRECATE_EOF (MySQL 8 clients): no EOF after definitions, results
 * end with an OK led by 0xfe. The packets are the captured ones with the
 * EOFs taken out and the terminators turned into OK-as-EOF, sequence ids
 * renumbered.
 */
static void test_deprecate_eof(void)
{
	/* handshake response with CLIENT_PROTOCOL_41 | CLIENT_DEPRECATE_EOF */
	static const __u8 hs[] = { 36, 0, 0, 1, 0x00, 0x02, 0x00, 0x01, 0, 0, 0, 1, 0x21,
				   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				   'r', 0, 0, 0 };
	static const __u8 query[] = { 9, 0, 0, 0, 3, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1' };
	static const __u8 result[] = {
		1, 0, 0, 1, 1,
		24, 0, 0, 2, 3, 'd', 'e', 'f', 0, 0, 0, 1, '1', 0, 0, 0x0c, 0x3f, 0, 1, 0, 0, 0,
		3, 0x81, 0, 0, 0, 0,
		2, 0, 0, 3, 1, '1',
		7, 0, 0, 4, 0xfe, 0, 0, 2, 0, 0, 0,
	};
	static const __u8 prep[] = { 13, 0, 0, 0, 0x16, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '?', ' ',
				     '+', ' ', '1' };
	static const __u8 prep_ok[] = {
		12, 0, 0, 1, 0, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0,
		24, 0, 0, 2, 3, 'd', 'e', 'f', 0, 0, 0, 1, '?', 0, 0, 0x0c, 0x3f, 0, 0, 0, 0, 0,
		6, 0x80, 0, 0, 0, 0,
		28, 0, 0, 3, 3, 'd', 'e', 'f', 0, 0, 0, 5, '?', ' ', '+', ' ', '1', 0, 0, 0x0c, 0x3f,
		0, 0x11, 0, 0, 0, 5, 0x80, 0, 0, 0, 0,
	};
	static const __u8 ping[] = { 1, 0, 0, 0, 0x0e };
	static const __u8 ok[] = { 7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0 };
	struct drv_call calls[] = {
		{ H1_DIR_SEND, hs, sizeof(hs) },
		{ H1_DIR_RECV, ok, sizeof(ok) },  /* seq 1 here: but no request is waiting... */
		{ H1_DIR_SEND, query, sizeof(query) },
		{ H1_DIR_RECV, result, sizeof(result) },
		{ H1_DIR_SEND, prep, sizeof(prep) },
		{ H1_DIR_RECV, prep_ok, sizeof(prep_ok) },
		{ H1_DIR_SEND, ping, sizeof(ping) },
		{ H1_DIR_RECV, ok, sizeof(ok) },
	};
	struct drv d;
	size_t piece;

	for (piece = 0; piece <= 24; piece++) {
		SET_CTX("piece %zu", piece);
		drv_reset(&d, M, H1_DIR_SEND);
		/* from the query on: the auth OK is the handshake's (sequence id 2 in
		 * real life), left out */
		drv_run(&d, calls, 1, piece);
		drv_run(&d, calls + 2, 6, piece);
		ASSERT_EQ(d.c.req.st2 & MY_EOF_MODE, MY_EOF_DEPRECATED);
		ASSERT_EQ(drv_ntx, 3);
		ASSERT_EQ(drv_tx[0].reply, 'R');
		ASSERT_EQ(drv_tx[0].count, 1);
		ASSERT_EQ(drv_tx[0].resp_bytes, sizeof(result));
		ASSERT_EQ(drv_tx[1].reply, 'P');
		ASSERT_EQ(drv_tx[1].id, 7);
		ASSERT_EQ(drv_tx[1].resp_bytes, sizeof(prep_ok));
		ASSERT_EQ(drv_tx[2].op, 0x0e);
		ASSERT_EQ(drv_tx[2].resp_bytes, sizeof(ok));
		ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
		ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
		if (t_fail)
			break;
	}
}

/* Mid-connection (no handshake seen): the EOF mode is learnt from the first
 * result set, and a prepare's trailing EOF is found by looking ahead. */
static void test_no_handshake(void)
{
	struct cap cap;
	struct drv d;
	size_t piece;
	int i;

	cap_load(&cap, "mysql", "stmt_tcp");
	for (piece = 0; piece <= 32; piece++) {
		SET_CTX("piece %zu", piece);
		drv_reset(&d, M, H1_DIR_SEND);
		drv_run(&d, cap.calls + 3, cap.n - 3, piece);
		ASSERT_EQ(drv_ntx, 12);
		for (i = 0; i < 12 && i < drv_ntx; i++) {
			/* the first prepare comes before any result set: when the
			 * syscall ends at its last definition, whether an EOF follows
			 * is unknown, the response ends there and the 9-byte EOF is
			 * skipped as a stray packet */
			if (i == 3 && piece && drv_tx[i].resp_bytes == stmt_tcp[i].resp_bytes - 9)
				continue;
			ASSERT_EQ(drv_tx[i].resp_bytes, stmt_tcp[i].resp_bytes);
		}
		ASSERT_EQ(d.c.req.st2 & MY_EOF_MODE, MY_EOF_CLASSIC);
		ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
		ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
		if (t_fail)
			break;
	}
	cap_free(&cap);
}

/* Pipelined commands in one write, their responses in one read. */
static void test_pipelined(void)
{
	struct cap cap;
	struct drv d;
	__u8 req[512], resp[1024];
	size_t rl = 0, sl = 0;
	struct drv_call calls[2];
	int i;

	cap_load(&cap, "mysql", "cli_tcp");
	drv_reset(&d, M, H1_DIR_SEND);
	drv_run(&d, cap.calls, 3, 0); /* greeting and handshake */
	/* calls 3..16: five queries and their responses, from CREATE DATABASE on */
	for (i = 3; i < 17; i++) {
		const struct drv_call *c = &cap.calls[i];

		if (c->dir == H1_DIR_SEND) {
			memcpy(req + rl, c->data, c->len);
			rl += c->len;
		} else {
			memcpy(resp + sl, c->data, c->len);
			sl += c->len;
		}
	}
	/* the whole conversation is up to the pipeline depth at most once */
	calls[0] = (struct drv_call){ H1_DIR_SEND, req, rl };
	calls[1] = (struct drv_call){ H1_DIR_RECV, resp, sl };
	drv_run(&d, calls, 2, 0);
	/* four slots: the fifth and later requests overflow and their responses
	 * pair with nothing */
	ASSERT_EQ(drv_ntx, 4);
	ASSERT_STR(drv_tx[0].text, "CREATE DATABASE IF NOT EXISTS d");
	ASSERT_EQ(drv_tx[0].resp_bytes, 11);
	ASSERT_STR(drv_tx[1].text, "SELECT DATABASE()");
	ASSERT_EQ(drv_tx[1].resp_bytes, 66);
	ASSERT_EQ(drv_tx[2].op, MY_COM_INIT_DB);
	ASSERT_STR(drv_tx[3].text, "CREATE TABLE t (id int primary key, name text)");
	ASSERT_EQ(drv_stats[H1_STAT(pipeline_overflow)], 3);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 3);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	cap_free(&cap);
}

/* COM_STMT_CLOSE right after an EXECUTE, before its response: the close is
 * dropped, the EXECUTE keeps its bytes and its response. */
static void test_close_in_flight(void)
{
	static const __u8 exec[] = { 10, 0, 0, 0, 0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0,
				     5, 0, 0, 0, 0x19, 5, 0, 0, 0 };
	static const __u8 ok[] = { 7, 0, 0, 1, 0, 1, 0, 2, 0, 0, 0 };
	struct drv_call calls[] = {
		{ H1_DIR_SEND, exec, sizeof(exec) },
		{ H1_DIR_RECV, ok, sizeof(ok) },
	};
	struct drv d;
	struct cap cap;

	cap_load(&cap, "mysql", "stmt_tcp");
	drv_reset(&d, M, H1_DIR_SEND);
	drv_run(&d, cap.calls, 3, 0); /* greeting and handshake */
	drv_run(&d, calls, 2, 0);
	cap_free(&cap);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_EQ(drv_tx[0].op, EXEC);
	ASSERT_EQ(drv_tx[0].id, 5);
	ASSERT_EQ(drv_tx[0].req_bytes, 14);
	ASSERT_EQ(drv_tx[0].count, 1);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
}

/*
 * Framing lost in the middle of a large result (in the kernel: more packets
 * in one read than a syscall's tail calls parse). The rest of that result
 * cannot be framed; the next response that can answers the newest request,
 * and the query whose response was lost is dropped and counted, never paired
 * with another query's response.
 */
static void test_resync_after_loss(void)
{
	struct cap big, small;
	struct drv d;

	cap_load(&big, "mysql", "cli_big");
	cap_load(&small, "mysql", "cli_tcp");
	/* cli_big: greeting, handshake, OK, query, then the result in 16 kB reads */
	drv_reset(&d, M, H1_DIR_SEND);
	drv_run(&d, big.calls, 5, 0);
	l7m_lose(NULL, &d.c.resp);
	drv_run(&d, big.calls + 5, 2, 0);  /* reads that start inside rows */
	/* cli_tcp's SELECT * FROM t ORDER BY id and its result */
	drv_run(&d, small.calls + 13, 2, 0);
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_STR(drv_tx[0].text, "SELECT * FROM t ORDER BY id");
	ASSERT_EQ(drv_tx[0].count, 3);
	ASSERT_EQ(drv_tx[0].resp_bytes, 120);
	ASSERT_EQ(drv_stats[H1_STAT(requests_abandoned)], 1);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
	cap_free(&big);
	cap_free(&small);
}

/* TLS requested (SSLRequest: a 32-byte handshake response with CLIENT_SSL):
 * the rest of the connection is skipped, nothing is lost or misreported. */
static void test_ssl(void)
{
	static const __u8 sslreq[] = { 32, 0, 0, 1, 0x00, 0x0a, 0, 0, 0, 0, 0, 1, 0x21, 0, 0, 0, 0, 0,
				       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const __u8 hello[] = { 0x16, 0x03, 0x01, 0x00, 0x03, 'S', 'E', 'L', 'E', 'C', 'T' };
	struct drv_call calls[] = {
		{ H1_DIR_SEND, sslreq, sizeof(sslreq) },
		{ H1_DIR_SEND, hello, sizeof(hello) },
		{ H1_DIR_RECV, hello, sizeof(hello) },
	};
	struct drv d;

	drv_reset(&d, M, H1_DIR_SEND);
	drv_run(&d, calls, 3, 0);
	ASSERT_EQ(drv_ntx, 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_EQ(d.c.req.phase, MY_PH_OPAQUE);
	ASSERT_EQ(d.c.resp.phase, MY_PH_OPAQUE);
}

/* Unknown commands and malformed results lose framing (counted). */
static void test_hostile(void)
{
	static const __u8 bad_cmd[] = { 1, 0, 0, 0, 0x77 };
	static const __u8 empty[] = { 0, 0, 0, 0 };
	static const __u8 query[] = { 9, 0, 0, 0, 3, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1' };
	static const __u8 bad_count[] = { 3, 0, 0, 1, 0xfc, 0xff, 0x7f };  /* 32767 columns */
	static const __u8 ok[] = { 7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0 };
	struct drv_call calls[] = {
		{ H1_DIR_SEND, bad_cmd, sizeof(bad_cmd) },
		{ H1_DIR_SEND, empty, sizeof(empty) },
		{ H1_DIR_SEND, query, sizeof(query) },
		{ H1_DIR_RECV, bad_count, sizeof(bad_count) },
		{ H1_DIR_SEND, query, sizeof(query) },
		{ H1_DIR_RECV, ok, sizeof(ok) },
	};
	struct drv d;

	drv_reset(&d, M, H1_DIR_SEND);
	drv_run(&d, calls, 6, 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 3);
	/* the first SELECT's response was garbage: FIFO pairs the OK with it */
	ASSERT_EQ(drv_ntx, 1);
	ASSERT_EQ(drv_tx[0].reply, 'O');
}

static int infer(const void *bytes, size_t n)
{
	__u8 w[L7M_BUF] = { 0 };
	int kind = 0;
	__u8 p;

	memcpy(w, bytes, n < sizeof(w) ? n : sizeof(w));
	p = l7m_infer(w, n, &kind);
	return p == SONDE_PROTO_MYSQL ? kind : p == SONDE_PROTO_UNKNOWN ? 0 : -(int)p;
}

static void test_inference(void)
{
	static const char *const caps[] = { "cli_tcp", "cli_unix", "stmt_tcp", "stmt_unix" };
	struct cap cap;
	int i;

	for (i = 0; i < 4; i++) {
		SET_CTX("%s", caps[i]);
		cap_load(&cap, "mysql", caps[i]);
		/* the greeting, as the server sends it */
		ASSERT_EQ(infer(cap.calls[0].data, cap.calls[0].len), H1_INFER_RESPONSE);
		/* the handshake response and the auth OK say nothing */
		ASSERT_EQ(infer(cap.calls[1].data, cap.calls[1].len), 0);
		ASSERT_EQ(infer(cap.calls[2].data, cap.calls[2].len), 0);
		/* a query or prepare on a connection open before sonde started */
		ASSERT_EQ(infer(cap.calls[3].data, cap.calls[3].len), H1_INFER_REQUEST);
		cap_free(&cap);
	}
	SET_CTX("negatives");
	ASSERT_EQ(infer(S("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), 0);
	ASSERT_EQ(infer(S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")), 0);
	ASSERT_EQ(infer(S("SSH-2.0-OpenSSH_9.2\r\n")), 0);
	ASSERT_EQ(infer(S("\x0c\0\0\0\x03\x01\x02\x03\x04\x05\x06\x07\x08")), 0); /* binary "query" */
	ASSERT_EQ(infer(S("\x0c\0\0\x01\x03SELECT 1234")), 0);                 /* sequence id 1 */
	ASSERT_EQ(infer(S("\x0c\0\0\0\x0aXYZ\0")), 0);                         /* version not digits */
	/* MongoDB OP_MSG: length, request id 3, response to 0 */
	ASSERT_EQ(infer(S("\x2d\0\0\0\x03\0\0\0\0\0\0\0\xdd\x07\0\0")), 0);
	/* DNS over TCP */
	ASSERT_EQ(infer(S("\0\x1d\xab\0\x01\0\0\x01\0\0\0\0\0\0\x07example\x03com\0\0\x01\0\x01")), 0);
	/* PostgreSQL's first bytes are PostgreSQL's */
	ASSERT_EQ(infer(S("\0\0\0\x08\x04\xd2\x16\x2f")), -SONDE_PROTO_PGSQL);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cap_dir = argv[1];
	RUN(test_cli_tcp);
	RUN(test_cli_unix);
	RUN(test_cli_big);
	RUN(test_stmt_tcp);
	RUN(test_stmt_unix);
	RUN(test_handshake_mode);
	RUN(test_deprecate_eof);
	RUN(test_no_handshake);
	RUN(test_pipelined);
	RUN(test_close_in_flight);
	RUN(test_resync_after_loss);
	RUN(test_ssl);
	RUN(test_hostile);
	RUN(test_inference);
	UNIT_SUMMARY("mysql");
}
