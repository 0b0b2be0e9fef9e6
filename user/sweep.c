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
#include <string.h>

#include <bpf/bpf.h>

#define SONDE_INLINE static inline
#include "sonde.h"
#include "conn.h"

struct sweep_ctx {
	struct sonde_conn *conn;
	__u64 key;
	struct record_sink *sink;
	int reported;
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

static void read_comm(__u32 pid, char *comm)
{
	char path[64];
	FILE *f;

	memset(comm, 0, SONDE_COMM_LEN);
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(comm, SONDE_COMM_LEN, f))
		comm[strcspn(comm, "\n")] = 0;
	fclose(f);
}

SONDE_INLINE void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s, __u16 status,
				__u64 resp_bytes, __u64 ts_end, __u8 flags)
{
	struct sweep_ctx *sc = ctx;
	struct sonde_l7_event ev;

	(void)c;
	memset(&ev, 0, sizeof(ev));
	sonde_fill_l7_event(&ev, sc->key, sc->conn, s, status, resp_bytes, ts_end, flags);
	read_comm(ev.pid, ev.comm);
	sink_l7_event(sc->sink, &ev);
	sc->reported++;
}

int sweep_timeouts(int conns_fd, uint64_t now, uint64_t timeout_ns, struct record_sink *sink,
		   uint64_t *live)
{
	__u64 key, next;
	__u64 *prev = NULL;
	struct sonde_conn conn;
	int total = 0;

	while (bpf_map_get_next_key(conns_fd, prev, &next) == 0) {
		struct sweep_ctx sc = { .conn = &conn, .key = next, .sink = sink };

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(conns_fd, &key, &conn))
			continue;
		(*live)++;
		if (conn.proto != SONDE_PROTO_HTTP1 || conn.h1.req_seq == conn.h1.resp_seq)
			continue;
		for (int i = 0; i < SONDE_PIPELINE_DEPTH; i++)
			if (!h1_expire_one(&sc, &conn.h1, now, timeout_ns))
				break;
		if (sc.reported) {
			/* the stream that waited is reset: a late response is unpaired */
			h1_stream_reset(&conn.h1.resp);
			bpf_map_update_elem(conns_fd, &key, &conn, BPF_EXIST);
			total += sc.reported;
		}
	}
	return total;
}
