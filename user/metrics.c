// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * RED metrics: the kernel counts every transaction in the per-CPU `red` map;
 * this file only reads it once a second. Per series it keeps the totals seen
 * at the last read, so the difference is the last second's traffic (a 1 s
 * metric record), sums those into 60 s records, and writes the totals as
 * Prometheus counters and histograms. No per-request work happens here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define SONDE_INLINE static inline
#include "sonde.h"
#include "metrics.h"

/* Totals of one series (summed over CPUs). */
struct red_totals {
	uint64_t requests, errors_4xx, errors_5xx, errors_other, req_bytes, resp_bytes, lat_sum;
	uint32_t hist[SONDE_LAT_BUCKETS];
};

struct series {
	struct sonde_red_key key;
	bool used;
	uint64_t seen_gen;         /* the read that last found it in the kernel */
	char comm[SONDE_COMM_LEN];
	struct red_totals kern;    /* the kernel's totals at the latest read */
	struct red_totals extra;   /* timeouts the user-space sweep added */
	struct red_totals last;    /* kern + extra as of the previous read */
	struct red_totals minute;  /* accumulated since the last 60 s record */
	uint64_t active_ns;        /* last read with new traffic */
};

struct metrics {
	int fd;
	int ncpu;
	struct sonde_red_val *percpu; /* lookup buffer */
	struct series *tab;        /* open addressing, cap a power of 2 */
	size_t cap, used;
	uint64_t next_minute_ns;
	uint64_t idle_ns;
	int proc_fd;           /* the kernel's per-process series counts, or -1 */
	uint64_t realtime_offset_ns;
	uint64_t gen;              /* reads so far */
};

static uint64_t key_hash(const struct sonde_red_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static struct series *find_slot(struct metrics *m, const struct sonde_red_key *k)
{
	size_t i = key_hash(k) & (m->cap - 1);

	while (m->tab[i].used && memcmp(&m->tab[i].key, k, sizeof(*k)))
		i = (i + 1) & (m->cap - 1);
	return &m->tab[i];
}

struct metrics *metrics_new(int red_fd, const struct run_opts *o)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->fd = red_fd;
	m->ncpu = libbpf_num_possible_cpus();
	m->cap = 1;
	while (m->cap < (size_t)o->max_series * 2 + 2)
		m->cap <<= 1;
	m->tab = calloc(m->cap, sizeof(*m->tab));
	m->percpu = calloc(m->ncpu > 0 ? m->ncpu : 1, sizeof(*m->percpu));
	m->idle_ns = (uint64_t)o->metric_idle_s * 1000000000ull;
	m->proc_fd = -1;
	if (!m->tab || !m->percpu) {
		metrics_free(m);
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	free(m->tab);
	free(m->percpu);
	free(m);
}

int metrics_series(const struct metrics *m)
{
	return (int)m->used;
}

static void sum_cpus(struct metrics *m, struct red_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (int c = 0; c < m->ncpu; c++) {
		const struct sonde_red_val *v = &m->percpu[c];

		t->requests += v->requests;
		t->errors_4xx += v->errors_4xx;
		t->errors_5xx += v->errors_5xx;
		t->errors_other += v->errors_other;
		t->req_bytes += v->req_bytes;
		t->resp_bytes += v->resp_bytes;
		t->lat_sum += v->latency_sum_ns;
		for (int b = 0; b < SONDE_LAT_BUCKETS; b++)
			t->hist[b] += v->latency_hist[b];
	}
}

/* d = a - b; histogram counts wrap at 2^32, so their difference does too. */
static void totals_sub(const struct red_totals *a, const struct red_totals *b, struct red_totals *d)
{
	d->requests = a->requests - b->requests;
	d->errors_4xx = a->errors_4xx - b->errors_4xx;
	d->errors_5xx = a->errors_5xx - b->errors_5xx;
	d->errors_other = a->errors_other - b->errors_other;
	d->req_bytes = a->req_bytes - b->req_bytes;
	d->resp_bytes = a->resp_bytes - b->resp_bytes;
	d->lat_sum = a->lat_sum - b->lat_sum;
	for (int i = 0; i < SONDE_LAT_BUCKETS; i++)
		d->hist[i] = a->hist[i] - b->hist[i];
}

static void totals_add(struct red_totals *a, const struct red_totals *d)
{
	a->requests += d->requests;
	a->errors_4xx += d->errors_4xx;
	a->errors_5xx += d->errors_5xx;
	a->errors_other += d->errors_other;
	a->req_bytes += d->req_bytes;
	a->resp_bytes += d->resp_bytes;
	a->lat_sum += d->lat_sum;
	for (int i = 0; i < SONDE_LAT_BUCKETS; i++)
		a->hist[i] += d->hist[i];
}

/* Quantile q of a histogram: the middle of the bucket holding it. */
static uint64_t quantile_ns(const struct red_totals *t, double q)
{
	uint64_t n = 0, want, seen = 0;

	for (int i = 0; i < SONDE_LAT_BUCKETS; i++)
		n += t->hist[i];
	if (!n)
		return 0;
	want = (uint64_t)(q * n + 0.999999);
	if (want < 1)
		want = 1;
	for (int i = 0; i < SONDE_LAT_BUCKETS; i++) {
		seen += t->hist[i];
		if (seen >= want)
			return (sonde_lat_bucket_lo_ns(i) + sonde_lat_bucket_lo_ns(i + 1)) / 2;
	}
	return sonde_lat_bucket_lo_ns(SONDE_LAT_BUCKETS - 1);
}

static const char *role_name(uint8_t r)
{
	return r == SONDE_ROLE_SERVER ? "server" : r == SONDE_ROLE_CLIENT ? "client" : "";
}

static void format_server(const struct sonde_red_key *k, char *out, size_t n)
{
	out[0] = 0;
	if (k->family == SONDE_FAMILY_INET)
		inet_ntop(AF_INET, k->server_addr, out, n);
	else if (k->family == SONDE_FAMILY_INET6)
		inet_ntop(AF_INET6, k->server_addr, out, n);
}

static const char *method_of(const struct sonde_red_key *k)
{
	if (k->method == SONDE_M_OVERFLOW)
		return "overflow";
	return l7_op_name(k->proto, k->method);
}

static void emit_record(struct metrics *m, struct record_sink *sink, const struct series *s,
			const struct red_totals *d, uint32_t interval_s, uint64_t now)
{
	sonde_Record r = sonde_Record_init_zero;
	sonde_Metric *x = &r.metric;

	r.type = sonde_RecordType_RECORD_METRIC;
	r.ts_ns = now + m->realtime_offset_ns;
	r.pid = s->key.pid;
	snprintf(r.comm, sizeof(r.comm), "%s", s->comm);
	r.has_metric = true;
	x->interval_s = interval_s;
	snprintf(x->proto, sizeof(x->proto), "%s", proto_name(s->key.proto));
	snprintf(x->role, sizeof(x->role), "%s", role_name(s->key.role));
	snprintf(x->method, sizeof(x->method), "%s", method_of(&s->key));
	snprintf(x->route, sizeof(x->route), "%.*s", SONDE_ROUTE_MAX, s->key.route);
	format_server(&s->key, x->daddr, sizeof(x->daddr));
	x->dport = s->key.server_port;
	x->requests = d->requests;
	x->errors_4xx = d->errors_4xx;
	x->errors_5xx = d->errors_5xx;
	x->errors_other = d->errors_other;
	x->errors = d->errors_4xx + d->errors_5xx + d->errors_other;
	x->req_bytes = d->req_bytes;
	x->resp_bytes = d->resp_bytes;
	x->latency_sum_ns = d->lat_sum;
	x->p50_ns = quantile_ns(d, 0.50);
	x->p90_ns = quantile_ns(d, 0.90);
	x->p99_ns = quantile_ns(d, 0.99);
	x->overflow = s->key.method == SONDE_M_OVERFLOW;
	sink_record(sink, &r);
}

/* The series of a key, created if new; NULL when the table is full. */
static struct series *series_get(struct metrics *m, const struct sonde_red_key *key, uint64_t now)
{
	struct series *s = find_slot(m, key);

	if (s->used)
		return s;
	if (m->used + 1 >= m->cap / 2)
		return NULL; /* twice what the kernel holds: not reached */
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->key = *key;
	s->active_ns = now;
	read_proc_comm(key->pid, s->comm);
	m->used++;
	return s;
}

void metrics_add_timeout(struct metrics *m, const struct sonde_red_key *key)
{
	struct series *s = series_get(m, key, mono_ns());

	if (!s)
		return;
	s->extra.requests++;
	s->extra.errors_other++;
}

/* Rebuild the table without the series marked unused (open addressing has no
 * cheap delete). */
static void rehash(struct metrics *m)
{
	struct series *old = m->tab;

	m->tab = calloc(m->cap, sizeof(*m->tab));
	if (!m->tab) {
		m->tab = old;
		return;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (old[i].used)
			*find_slot(m, &old[i].key) = old[i];
	free(old);
}

static void sync_proc_counts(struct metrics *m);

void metrics_poll(struct metrics *m, struct record_sink *sink, uint64_t now)
{
	struct sonde_red_key key, next, *prev = NULL;
	bool minute = false, dropped = false;

	m->realtime_offset_ns = sink->realtime_offset_ns;
	if (!m->next_minute_ns)
		m->next_minute_ns = now + 60000000000ull;
	if (now >= m->next_minute_ns) {
		minute = true;
		m->next_minute_ns += 60000000000ull;
	}
	/* a generation, not a flag to clear: clearing would touch (and make
	 * resident) every page of the table each second */
	m->gen++;
	/* 1: the kernel's totals */
	while (bpf_map_get_next_key(m->fd, prev, &next) == 0) {
		struct series *s;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->fd, &key, m->percpu))
			continue;
		s = series_get(m, &key, now);
		if (!s)
			continue;
		sum_cpus(m, &s->kern);
		for (int c = 0; c < m->ncpu && !s->comm[0]; c++)
			memcpy(s->comm, m->percpu[c].comm, SONDE_COMM_LEN - 1);
		s->seen_gen = m->gen;
	}
	/* 2: what changed since the last read, per series */
	for (size_t i = 0; i < m->cap; i++) {
		struct series *s = &m->tab[i];
		struct red_totals cur = s->kern, d;

		if (!s->used)
			continue;
		totals_add(&cur, &s->extra);
		totals_sub(&cur, &s->last, &d);
		s->last = cur;
		if (d.requests) {
			s->active_ns = now;
			emit_record(m, sink, s, &d, 1, now);
			totals_add(&s->minute, &d);
		}
		if (minute && s->minute.requests) {
			emit_record(m, sink, s, &s->minute, 60, now);
			memset(&s->minute, 0, sizeof(s->minute));
		}
		/* a series idle for long (its process gone, its route unused) leaves
		 * the kernel map so new ones have room; the overflow series stays */
		if (m->idle_ns && now - s->active_ns > m->idle_ns &&
		    s->key.method != SONDE_M_OVERFLOW &&
		    (s->seen_gen != m->gen || bpf_map_delete_elem(m->fd, &s->key) == 0)) {
			s->used = false;
			m->used--;
			dropped = true;
		}
	}
	if (dropped)
		rehash(m);
	sync_proc_counts(m);
}

/* ---- per-process series counts -------------------------------------------- */

void metrics_set_proc_map(struct metrics *m, int proc_fd)
{
	m->proc_fd = proc_fd;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Write the true number of series of each process into the kernel's
 * proc_series map (the kernel only ever adds; series leave the map when
 * idle) and remove the processes that have none left.
 */
static void sync_proc_counts(struct metrics *m)
{
	uint32_t *pids, n = 0, key, next, *prev = NULL;

	if (m->proc_fd < 0)
		return;
	pids = malloc((m->used + 1) * sizeof(*pids));
	if (!pids)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		const struct series *s = &m->tab[i];

		if (s->used && s->seen_gen == m->gen && s->key.method != SONDE_M_OVERFLOW &&
		    n < m->used)
			pids[n++] = s->key.pid;
	}
	qsort(pids, n, sizeof(*pids), cmp_u32);
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i;

		while (j < n && pids[j] == pids[i])
			j++;
		key = j - i;
		bpf_map_update_elem(m->proc_fd, &pids[i], &key, BPF_ANY);
		i = j;
	}
	/* processes without series: gathered first (deleting while walking
	 * would restart the walk) */
	uint32_t gone[256], ngone = 0;

	while (ngone < 256 && bpf_map_get_next_key(m->proc_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (!bsearch(&key, pids, n, sizeof(*pids), cmp_u32))
			gone[ngone++] = key;
	}
	for (uint32_t i = 0; i < ngone; i++)
		bpf_map_delete_elem(m->proc_fd, &gone[i]);
	free(pids);
}

/* ---- Prometheus text exposition ----------------------------------------- */

static const double le_seconds[] = { 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
				     0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
				     0.1,     0.25,     0.5,     1,      2.5,     5,
				     10 };

/* Label values escape backslash, quote and newline. */
static void label(FILE *f, const char *name, const char *v, bool comma)
{
	fprintf(f, "%s=\"", name);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p >= 0x20 && *p < 0x7f)
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
	fprintf(f, "\"%s", comma ? "," : "");
}

static void series_labels(FILE *f, const struct series *s)
{
	char pid[16], port[8], server[INET6_ADDRSTRLEN];

	snprintf(pid, sizeof(pid), "%u", s->key.pid);
	snprintf(port, sizeof(port), "%u", s->key.server_port);
	format_server(&s->key, server, sizeof(server));
	label(f, "comm", s->comm, true);
	label(f, "pid", pid, true);
	label(f, "role", role_name(s->key.role), true);
	label(f, "proto", proto_name(s->key.proto), true);
	label(f, "method", method_of(&s->key), true);
	label(f, "route", s->key.route, true);
	label(f, "server_address", server, true);
	label(f, "server_port", port, false);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One line per series of a counter taken from the totals. */
#define COUNTER_LINES(f, m, name, extra, field)                                          \
	for (size_t i_ = 0; i_ < (m)->cap; i_++) {                                        \
		const struct series *s_ = &(m)->tab[i_];                                   \
		if (!s_->used)                                                             \
			continue;                                                          \
		fprintf(f, "%s{", name);                                                   \
		series_labels(f, s_);                                                      \
		fprintf(f, "%s} %" PRIu64 "\n", extra, (uint64_t)s_->last.field);          \
	}

static void write_edges(struct metrics *m, FILE *f)
{
	/* edges of the service map: client-side series, named by the server
	 * process when it is on this host too (a server series on the same
	 * address and port) */
	header(f, "sonde_service_edges_requests_total", "counter",
	       "Requests from a client process to a server, by the client's side.");
	header(f, "sonde_service_edges_errors_total", "counter",
	       "Failed requests from a client process to a server.");
	for (size_t i = 0; i < m->cap; i++) {
		const struct series *c = &m->tab[i];
		const char *server_comm = "";
		char server[INET6_ADDRSTRLEN], port[8], pid[16];

		if (!c->used || c->key.role != SONDE_ROLE_CLIENT)
			continue;
		for (size_t j = 0; j < m->cap; j++) {
			const struct series *s = &m->tab[j];

			if (s->used && s->key.role == SONDE_ROLE_SERVER &&
			    s->key.server_port == c->key.server_port &&
			    !memcmp(s->key.server_addr, c->key.server_addr, 16)) {
				server_comm = s->comm;
				break;
			}
		}
		format_server(&c->key, server, sizeof(server));
		snprintf(port, sizeof(port), "%u", c->key.server_port);
		snprintf(pid, sizeof(pid), "%u", c->key.pid);
		for (int e = 0; e < 2; e++) {
			fprintf(f, "%s{", e ? "sonde_service_edges_errors_total"
					    : "sonde_service_edges_requests_total");
			label(f, "client_comm", c->comm, true);
			label(f, "client_pid", pid, true);
			label(f, "server_comm", server_comm, true);
			label(f, "server_address", server, true);
			label(f, "server_port", port, true);
			label(f, "route", c->key.route, true);
			label(f, "proto", "http", false);
			fprintf(f, "} %" PRIu64 "\n",
				e ? c->last.errors_4xx + c->last.errors_5xx + c->last.errors_other
				  : c->last.requests);
		}
	}
}

void metrics_write_prometheus(struct metrics *m, FILE *f)
{
	header(f, "sonde_requests_total", "counter", "L7 transactions completed, per series.");
	COUNTER_LINES(f, m, "sonde_requests_total", "", requests);
	header(f, "sonde_request_errors_total", "counter",
	       "Failed transactions: class 4xx, 5xx, or other (timeout, connection cut).");
	COUNTER_LINES(f, m, "sonde_request_errors_total", ",class=\"4xx\"", errors_4xx);
	COUNTER_LINES(f, m, "sonde_request_errors_total", ",class=\"5xx\"", errors_5xx);
	COUNTER_LINES(f, m, "sonde_request_errors_total", ",class=\"other\"", errors_other);
	header(f, "sonde_request_bytes_total", "counter", "Bytes of requests and responses.");
	COUNTER_LINES(f, m, "sonde_request_bytes_total", ",direction=\"request\"", req_bytes);
	COUNTER_LINES(f, m, "sonde_request_bytes_total", ",direction=\"response\"", resp_bytes);

	header(f, "sonde_request_duration_seconds", "histogram",
	       "Latency from the first request byte to the last response byte.");
	for (size_t i = 0; i < m->cap; i++) {
		const struct series *s = &m->tab[i];
		uint64_t cum = 0;
		int b = 0;

		if (!s->used)
			continue;
		for (size_t l = 0; l < sizeof(le_seconds) / sizeof(le_seconds[0]); l++) {
			/* a fine bucket counts under `le` once its upper edge is at or below it */
			uint64_t le_ns = (uint64_t)(le_seconds[l] * 1e9);

			while (b < SONDE_LAT_BUCKETS - 1 && sonde_lat_bucket_lo_ns(b + 1) <= le_ns)
				cum += s->last.hist[b++];
			fprintf(f, "sonde_request_duration_seconds_bucket{");
			series_labels(f, s);
			fprintf(f, ",le=\"%g\"} %" PRIu64 "\n", le_seconds[l], cum);
		}
		fprintf(f, "sonde_request_duration_seconds_bucket{");
		series_labels(f, s);
		fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", s->last.requests);
		fprintf(f, "sonde_request_duration_seconds_sum{");
		series_labels(f, s);
		fprintf(f, "} %.9f\n", s->last.lat_sum / 1e9);
		fprintf(f, "sonde_request_duration_seconds_count{");
		series_labels(f, s);
		fprintf(f, "} %" PRIu64 "\n", s->last.requests);
	}
	write_edges(m, f);
}
