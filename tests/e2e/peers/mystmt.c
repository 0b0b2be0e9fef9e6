// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A MySQL/MariaDB client on libmariadb for the e2e tests and captures: the
 * binary protocol's prepared statements (COM_STMT_PREPARE, COM_STMT_EXECUTE,
 * COM_STMT_CLOSE) and plain COM_QUERY on one connection, one result line per
 * step, so the test knows exactly which commands went over the wire.
 *
 *   mystmt HOST PORT|SOCKETPATH STEP...     (PORT 0 and a path: unix socket)
 *     q:SQL            mysql_real_query (COM_QUERY), every result stored
 *                      (multi-statement queries are allowed)
 *     p:SQL            mysql_stmt_prepare (COM_STMT_PREPARE)
 *     e[|P1|P2..]      mysql_stmt_execute of the last prepared statement with
 *                      string parameters (COM_STMT_EXECUTE), result stored
 *     c                mysql_stmt_close (COM_STMT_CLOSE, no response)
 *     P                mysql_ping (COM_PING)
 *
 * Output per step: "ok STMT_ID AFFECTED ROWS" or "err ERRNO SQLSTATE".
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 8

static int fail(unsigned err, const char *state)
{
	printf("err %u %s\n", err, state);
	return 1;
}

static void store_rows(MYSQL_STMT *st, unsigned long long *rows)
{
	*rows = 0;
	if (mysql_stmt_field_count(st) == 0)
		return;
	mysql_stmt_store_result(st);
	*rows = mysql_stmt_num_rows(st);
	mysql_stmt_free_result(st);
}

static int execute(MYSQL_STMT *st, char *arg)
{
	MYSQL_BIND b[MAXP];
	char *p[MAXP], *bar;
	unsigned long len[MAXP];
	unsigned long long rows;
	int n = 0;

	memset(b, 0, sizeof(b));
	while (arg && n < MAXP && (bar = strchr(arg, '|'))) {
		p[n] = bar + 1;
		*bar = 0;
		arg = bar + 1;
		n++;
	}
	for (int i = 0; i < n; i++) {
		char *end = strchr(p[i], '|');

		len[i] = end ? (unsigned long)(end - p[i]) : strlen(p[i]);
		b[i].buffer_type = MYSQL_TYPE_STRING;
		b[i].buffer = p[i];
		b[i].buffer_length = len[i];
		b[i].length = &len[i];
	}
	if (n && mysql_stmt_bind_param(st, b))
		return fail(mysql_stmt_errno(st), mysql_stmt_sqlstate(st));
	if (mysql_stmt_execute(st))
		return fail(mysql_stmt_errno(st), mysql_stmt_sqlstate(st));
	store_rows(st, &rows);
	printf("ok %lu %llu %llu\n", st->stmt_id, (unsigned long long)mysql_stmt_affected_rows(st),
	       rows);
	return 0;
}

int main(int argc, char **argv)
{
	MYSQL *m = mysql_init(NULL);
	MYSQL_STMT *st = NULL;
	unsigned port;
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: mystmt HOST PORT|SOCKET STEP...\n");
		return 2;
	}
	port = (unsigned)atoi(argv[2]);
	if (!mysql_real_connect(m, argv[1], "root", "", NULL, port, port ? NULL : argv[2],
				CLIENT_MULTI_STATEMENTS)) {
		fprintf(stderr, "mystmt: %s\n", mysql_error(m));
		return 1;
	}
	for (i = 3; i < argc; i++) {
		char *s = argv[i];

		if (s[0] == 'q') {
			MYSQL_RES *r;

			if (mysql_real_query(m, s + 2, strlen(s + 2))) {
				fail(mysql_errno(m), mysql_sqlstate(m));
				continue;
			}
			/* every result of a multi-statement query, one line each */
			do {
				r = mysql_store_result(m);
				printf("ok 0 %llu %llu\n",
				       r ? 0ULL : (unsigned long long)mysql_affected_rows(m),
				       r ? (unsigned long long)mysql_num_rows(r) : 0ULL);
				mysql_free_result(r);
			} while (mysql_next_result(m) == 0);
			if (mysql_errno(m))
				fail(mysql_errno(m), mysql_sqlstate(m));
		} else if (s[0] == 'p') {
			st = mysql_stmt_init(m);
			if (mysql_stmt_prepare(st, s + 2, strlen(s + 2)))
				fail(mysql_stmt_errno(st), mysql_stmt_sqlstate(st));
			else
				printf("ok %lu %lu 0\n", st->stmt_id, mysql_stmt_param_count(st));
		} else if (s[0] == 'e' && st) {
			execute(st, s + 1);
		} else if (s[0] == 'c' && st) {
			mysql_stmt_close(st);
			st = NULL;
			printf("ok 0 0 0\n");
		} else if (s[0] == 'P') {
			if (mysql_ping(m))
				fail(mysql_errno(m), mysql_sqlstate(m));
			else
				printf("ok 0 0 0\n");
		} else {
			fprintf(stderr, "mystmt: bad step '%s'\n", s);
			return 2;
		}
		fflush(stdout);
	}
	mysql_close(m);
	return 0;
}
