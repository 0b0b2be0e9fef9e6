// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Requests that never get a response cannot be reported by the kernel (nothing
 * runs on that socket any more), so user space walks the connection map once a
 * second and reports the ones older than --timeout, with the same parser code
 * (h1_expire_one) and the same event filling (sonde_fill_l7_event) the kernel
 * uses. The updated state is written back only if the entry still exists;
 * a response racing with the sweep within the same microsecond is reported
 * as unpaired rather than twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#define SONDE_INLINE static inline
#include "sonde.h"
#include "conn.h"

struct sweep_ctx {
	struct sonde_conn *conn;
	__u64 key;
	struct sonde_l7_event ev[SONDE_PIPELINE_DEPTH]; /* timeouts found, not yet reported */
	struct sonde_red_key series[SONDE_PIPELINE_DEPTH];
	int n;
};

SONDE_INLINE int sonde_read_user(void *dst, __u32 n, const void *src)
{
	memcpy(dst, src, n);
	return 0;
}

SONDE_INLINE void sonde_stat_add(void *ctx, __u32 field)
{
	(void)ctx;
	(void)field;
}

SONDE_INLINE void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
				__u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	struct sweep_ctx *sc = ctx;

	(void)c;
	if (sc->n >= SONDE_PIPELINE_DEPTH)
		return;
	memset(&sc->ev[sc->n], 0, sizeof(sc->ev[0]));
	memset(&sc->series[sc->n], 0, sizeof(sc->series[0]));
	sonde_fill_l7_event(&sc->ev[sc->n], sc->key, sc->conn, s, status, resp_bytes, ts_end, flags);
	sonde_fill_red_key(&sc->series[sc->n], sc->conn, s);
	sc->n++;
}

SONDE_INLINE void sonde_l7m_emit(void *ctx, struct l7m_conn *c, struct l7m_slot *s,
				 struct l7m_acc *acc, __u64 ts_end, __u8 flags)
{
	struct sweep_ctx *sc = ctx;

	(void)c;
	if (sc->n >= SONDE_PIPELINE_DEPTH)
		return;
	memset(&sc->ev[sc->n], 0, sizeof(sc->ev[0]));
	memset(&sc->series[sc->n], 0, sizeof(sc->series[0]));
	sonde_fill_l7m_event(&sc->ev[sc->n], sc->key, sc->conn, s, acc, ts_end, flags);
	sonde_fill_red_key_l7m(&sc->series[sc->n], sc->conn, s);
	sc->n++;
}

/* Has the connection a request waiting for its response? */
static bool conn_waiting(const struct sonde_conn *c)
{
	if (c->proto == SONDE_PROTO_HTTP1)
		return c->h1.req_seq != c->h1.resp_seq;
	if (c->proto > SONDE_PROTO_HTTP1 && c->proto < SONDE_PROTO__COUNT)
		for (int i = 0; i < SONDE_PIPELINE_DEPTH; i++)
			if (c->m.slots[i].live)
				return true;
	return false;
}

/* Report up to SONDE_PIPELINE_DEPTH requests of the connection older than timeout_ns. */
static void expire_conn(struct sweep_ctx *sc, struct sonde_conn *c, uint64_t now,
			uint64_t timeout_ns)
{
	for (int i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		int more = c->proto == SONDE_PROTO_HTTP1
				   ? h1_expire_one(sc, &c->h1, now, timeout_ns)
				   : l7m_expire_one(sc, &c->m, now, timeout_ns);

		if (!more)
			break;
	}
}

/* Does --logs want a record of a timed-out request? (Timeouts are errors.) */
static bool log_timeout(const struct run_opts *o)
{
	if (o->log_mode == 3)
		return false;
	if (o->log_mode == 2)
		return rand() % o->log_sample_n == 0;
	return true;
}

int sweep_timeouts(int conns_fd, uint64_t timeout_ns, const struct run_opts *o,
		   struct record_sink *sink, struct metrics *m, uint64_t *live)
{
	__u64 key, next;
	__u64 *prev = NULL;
	struct sonde_conn conn, again;
	int total = 0;

	while (bpf_map_get_next_key(conns_fd, prev, &next) == 0) {
		struct sweep_ctx sc = { .conn = &conn, .key = next };
		uint64_t now;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(conns_fd, &key, &conn))
			continue;
		(*live)++;
		if (timeout_ns == UINT64_MAX || !conn_waiting(&conn))
			continue;
		/* read the clock after the state: no request in it is newer */
		now = mono_ns();
		memcpy(&again, &conn, sizeof(conn));
		expire_conn(&sc, &conn, now, timeout_ns);
		if (!sc.n)
			continue;
		/* Write back only if the kernel did not touch the connection since it
		 * was read (else try again next second): the window in which a
		 * kernel update could be overwritten is the one between this
		 * lookup and the update. */
		struct sonde_conn cur;

		if (bpf_map_lookup_elem(conns_fd, &key, &cur) || memcmp(&cur, &again, sizeof(cur)))
			continue;
		if (bpf_map_update_elem(conns_fd, &key, &conn, BPF_EXIST))
			continue;
		for (int i = 0; i < sc.n; i++) {
			metrics_add_timeout(m, &sc.series[i]);
			if (log_timeout(o)) {
				read_proc_comm(sc.ev[i].pid, sc.ev[i].comm);
				sink_l7_event(sink, &sc.ev[i]);
			}
		}
		total += sc.n;
	}
	return total;
}
