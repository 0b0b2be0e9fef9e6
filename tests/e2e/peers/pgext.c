// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A PostgreSQL client on libpq for the e2e tests and captures: runs each
 * command-line step on one connection and prints one result line per step,
 * so the test knows exactly which messages went over the wire.
 *
 *   pgext CONNINFO STEP...
 *     q:SQL            PQexec (simple query protocol: one 'Q' message)
 *     x:SQL[|P1|P2..]  PQexecParams (extended: Parse, Bind, Describe, Execute, Sync)
 *     p:NAME:SQL       PQprepare (Parse, Sync)
 *     e:NAME[|P1..]    PQexecPrepared (Bind, Describe, Execute, Sync)
 *
 * Output per step: "ok TAG NTUPLES" or "err SQLSTATE".
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 8

static int split_params(char *s, const char **p)
{
	int n = 0;
	char *bar;

	while (s && n < MAXP && (bar = strchr(s, '|'))) {
		*bar = 0;
		p[n++] = bar + 1;
		s = bar + 1;
	}
	return n;
}

static int report(PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	int bad = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;

	if (bad)
		printf("err %s\n", PQresultErrorField(r, PG_DIAG_SQLSTATE) ?: "?");
	else
		printf("ok %s %d\n", PQcmdStatus(r), PQntuples(r));
	PQclear(r);
	return bad;
}

int main(int argc, char **argv)
{
	PGconn *c;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: pgext CONNINFO STEP...\n");
		return 2;
	}
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgext: %s", PQerrorMessage(c));
		return 1;
	}
	for (i = 2; i < argc; i++) {
		char *s = strdup(argv[i]), *arg = s + 2, *sql;
		const char *p[MAXP];
		int n;

		if (s[0] == 'q') {
			report(PQexec(c, arg));
		} else if (s[0] == 'x') {
			n = split_params(arg, p);
			report(PQexecParams(c, arg, n, NULL, p, NULL, NULL, 0));
		} else if (s[0] == 'p' && (sql = strchr(arg, ':'))) {
			*sql++ = 0;
			report(PQprepare(c, arg, sql, 0, NULL));
		} else if (s[0] == 'e') {
			n = split_params(arg, p);
			report(PQexecPrepared(c, arg, n, p, NULL, NULL, 0));
		} else {
			fprintf(stderr, "pgext: bad step '%s'\n", argv[i]);
			return 2;
		}
		fflush(stdout);
		free(s);
	}
	PQfinish(c);
	return 0;
}
