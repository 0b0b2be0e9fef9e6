// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * copycat user side: consume every payload copy from the ring buffer, parse
 * HTTP/1 there (request line, status line, Content-Length) and pair each
 * request with the next response on the same (pid, fd), as a user-space
 * parsing agent does. Prints "ready" on stderr once attached; on SIGINT or
 * SIGTERM prints
 *   copycat: stats {"events":N,"lost":N,"requests":N,"responses":N,"paired":N}
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "copycat.h"
#include "copycat.skel.h"

#define TABLE 65536 /* open-addressed (pid, fd) -> pending request */

struct slot {
	__u64 key;     /* pid << 32 | fd, 0 = empty */
	__u64 ts_ns;
	char method[8];
	char path[96];
};

static struct slot table[TABLE];
static volatile sig_atomic_t stop;
static unsigned long long events, requests, responses, paired, bytes;
static unsigned long long latency_sum;
static unsigned status_hist[6];

static void on_signal(int sig) { (void)sig; stop = 1; }

static struct slot *find(__u64 key, int create)
{
	__u32 h = (__u32)((key * 0x9E3779B97F4A7C15ull) >> 48) % TABLE;

	for (int i = 0; i < 64; i++) {
		struct slot *s = &table[(h + i) % TABLE];
		if (s->key == key)
			return s;
		if (!s->key) {
			if (!create)
				return NULL;
			s->key = key;
			return s;
		}
	}
	return NULL;
}

static const char *methods[] = { "GET ", "POST ", "PUT ", "DELETE ", "HEAD ",
				 "OPTIONS ", "PATCH ", NULL };

static int handle(void *ctx, void *data, size_t size)
{
	const struct copycat_event *e = data;
	__u64 key = ((__u64)e->pid << 32) | e->fd;
	const char *d = e->data;
	size_t n = e->n;

	(void)ctx;
	if (size < offsetof(struct copycat_event, data))
		return 0;
	events++;
	bytes += e->ret;
	if (n >= 16 && !memcmp(d, "HTTP/1.", 7) && d[8] == ' ') {
		int code = atoi(d + 9);
		struct slot *s;

		responses++;
		if (code >= 100 && code < 600)
			status_hist[code / 100]++;
		/* headers are looked at as a parser would, for Content-Length */
		const char *cl = memmem(d, n, "\r\nContent-Length:", 17);
		if (cl)
			(void)strtol(cl + 17, NULL, 10);
		s = find(key, 0);
		if (s) {
			paired++;
			latency_sum += e->ts_ns - s->ts_ns;
			s->key = 0;
		}
		return 0;
	}
	for (int m = 0; methods[m]; m++) {
		size_t ml = strlen(methods[m]);
		if (n > ml && !memcmp(d, methods[m], ml)) {
			const char *p = d + ml, *sp = memchr(p, ' ', n - ml);
			struct slot *s = find(key, 1);

			requests++;
			if (s) {
				size_t pl = sp ? (size_t)(sp - p) : n - ml;
				if (pl >= sizeof(s->path))
					pl = sizeof(s->path) - 1;
				memcpy(s->path, p, pl);
				s->path[pl] = 0;
				memcpy(s->method, methods[m], ml < 8 ? ml : 7);
				s->ts_ns = e->ts_ns;
			}
			break;
		}
	}
	return 0;
}

static __u64 counter(struct copycat_bpf *skel, __u32 k)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu > 0 ? ncpu : 1], sum = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &k, vals))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

int main(void)
{
	struct copycat_bpf *skel;
	struct ring_buffer *rb;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	skel = copycat_bpf__open_and_load();
	if (!skel || copycat_bpf__attach(skel)) {
		fprintf(stderr, "copycat: load/attach failed\n");
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "copycat: ring buffer failed\n");
		return 1;
	}
	fprintf(stderr, "copycat: attached\nready\n");
	while (!stop)
		ring_buffer__poll(rb, 100);
	ring_buffer__consume(rb);
	fprintf(stderr, "copycat: stats {\"events\":%llu,\"lost\":%llu,\"requests\":%llu,"
		"\"responses\":%llu,\"paired\":%llu,\"bytes\":%llu,\"not_socket\":%llu}\n",
		events, (unsigned long long)counter(skel, CC_LOST), requests, responses,
		paired, bytes, (unsigned long long)counter(skel, CC_NOT_SOCKET));
	ring_buffer__free(rb);
	copycat_bpf__destroy(skel);
	return 0;
}
