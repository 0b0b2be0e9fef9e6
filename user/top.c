// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `sonde top`: the 1 s metric records of each second as a table, busiest
 * series first. Redrawn in place on a terminal; anywhere else (a pipe, a
 * file) one snapshot is printed and sonde exits.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sonde.h"

struct top {
	sonde_Record *rows;
	size_t n, cap;
	bool tty;
	int rounds;
};

struct top *top_new(void)
{
	struct top *t = calloc(1, sizeof(*t));

	if (t)
		t->tty = isatty(STDOUT_FILENO);
	return t;
}

void top_free(struct top *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t);
}

void top_on_metric(void *arg, const sonde_Record *r)
{
	struct top *t = arg;

	if (r->metric.interval_s != 1)
		return;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		sonde_Record *p = realloc(t->rows, cap * sizeof(*p));

		if (!p)
			return;
		t->rows = p;
		t->cap = cap;
	}
	t->rows[t->n++] = *r;
}

static int by_rate(const void *a, const void *b)
{
	const sonde_Metric *x = &((const sonde_Record *)a)->metric;
	const sonde_Metric *y = &((const sonde_Record *)b)->metric;

	return x->requests < y->requests ? 1 : x->requests > y->requests ? -1 : 0;
}

bool top_render(struct top *t)
{
	/* the first second starts mid-way: a snapshot waits for a whole one */
	if (!t->tty && t->rounds++ < 2) {
		t->n = 0;
		return false;
	}
	qsort(t->rows, t->n, sizeof(*t->rows), by_rate);
	if (t->tty)
		fputs("\033[H\033[2J", stdout);
	printf("%-15s %7s %-6s %-7s %-28s %-21s %8s %6s %9s %9s\n", "COMM", "PID", "ROLE", "METHOD",
	       "ROUTE", "SERVER", "REQ/S", "ERR%", "P50", "P99");
	for (size_t i = 0; i < t->n; i++) {
		const sonde_Record *r = &t->rows[i];
		const sonde_Metric *m = &r->metric;
		char server[64];

		snprintf(server, sizeof(server), "%s:%u", m->daddr, m->dport);
		printf("%-15.15s %7u %-6s %-7s %-28.28s %-21.21s %8llu %5.1f%% %7.2fms %7.2fms\n",
		       r->comm, r->pid, m->role, m->method, m->route, server,
		       (unsigned long long)m->requests,
		       m->requests ? 100.0 * m->errors / m->requests : 0.0, m->p50_ns / 1e6,
		       m->p99_ns / 1e6);
	}
	if (!t->n)
		printf("(no requests in the last second)\n");
	fflush(stdout);
	t->n = 0;
	return !t->tty;
}
