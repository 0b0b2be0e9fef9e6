// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Rate-limited HTTP/1.1 load over loopback keep-alive connections (wrk2 is
 * not in Debian). One thread, epoll, C connections; request i is due at
 * start + i/RATE (RATE 0: as fast as the connections go). Stops after COUNT
 * completed responses or MAX_S seconds, whichever comes first, and prints
 *   completed=N errors=E elapsed_ns=T rate=R
 *
 *   httpload [-h HOST] -p PORT [-c CONNS] -n COUNT [-r RATE] [-u PATH] [-t MAX_S]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ 65536

struct conn {
	int fd;
	int busy;          /* a request is outstanding */
	size_t have;       /* bytes of the response read so far */
	char buf[BUFSZ];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* length of a complete response at the start of b, 0 if incomplete, -1 bad */
static long response_len(const char *b, size_t n)
{
	const char *end = memmem(b, n, "\r\n\r\n", 4), *p;
	long cl = 0;

	if (!end)
		return n > BUFSZ / 2 ? -1 : 0;
	if (n < 12 || memcmp(b, "HTTP/1.", 7))
		return -1;
	for (p = b; p < end; p++) {
		if ((*p == '\n') && end - p > 16 && !strncasecmp(p + 1, "content-length:", 15)) {
			cl = strtol(p + 16, NULL, 10);
			break;
		}
	}
	if ((size_t)(end + 4 - b) + cl > n)
		return 0;
	return end + 4 - b + cl;
}

static int open_conn(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || connect(fd, (void *)a, sizeof(*a))) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *path = "/";
	int port = 0, nconn = 32, opt;
	long count = 0, completed = 0, sent = 0, errors = 0;
	double rate = 0, max_s = 60;
	struct sockaddr_in a = { .sin_family = AF_INET };
	char req[512];
	int reqlen, ep;
	struct conn *conns;
	struct epoll_event evs[256];
	uint64_t t0, deadline, interval_ns = 0;

	while ((opt = getopt(argc, argv, "h:p:c:n:r:u:t:")) != -1) {
		switch (opt) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'c': nconn = atoi(optarg); break;
		case 'n': count = atol(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'u': path = optarg; break;
		case 't': max_s = atof(optarg); break;
		default: goto usage;
		}
	}
	if (!port || count <= 0 || nconn <= 0) {
usage:
		fprintf(stderr, "usage: httpload [-h HOST] -p PORT [-c CONNS] -n COUNT "
				"[-r RATE] [-u PATH] [-t MAX_S]\n");
		return 2;
	}
	if (rate > 0)
		interval_ns = (uint64_t)(1e9 / rate);
	a.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		goto usage;
	reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
			  "User-Agent: sonde-bench\r\n\r\n", path, host);

	conns = calloc(nconn, sizeof(*conns));
	ep = epoll_create1(0);
	if (!conns || ep < 0) {
		perror("init");
		return 1;
	}
	for (int i = 0; i < nconn; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		conns[i].fd = open_conn(&a);
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}

	t0 = now_ns();
	deadline = t0 + (uint64_t)(max_s * 1e9);
	int next_idle = 0; /* round-robin scan start for idle connections */
	while (completed < count) {
		uint64_t now = now_ns();
		uint64_t wait_ns = 100000000ull;
		struct timespec to;
		int n;

		if (now > deadline)
			break;
		/* send every request that is due, on idle connections */
		for (int k = 0; k < nconn && sent < count; k++) {
			struct conn *c = &conns[(next_idle + k) % nconn];
			if (c->busy)
				continue;
			if (interval_ns && t0 + sent * interval_ns > now)
				break;
			if (write(c->fd, req, reqlen) != reqlen) {
				errors++;
				continue;
			}
			c->busy = 1;
			c->have = 0;
			sent++;
			next_idle = (next_idle + k + 1) % nconn;
		}
		if (interval_ns && sent < count) {
			uint64_t due = t0 + sent * interval_ns;
			wait_ns = due > now ? due - now : 0;
		}
		to.tv_sec = wait_ns / 1000000000ull;
		to.tv_nsec = wait_ns % 1000000000ull;
		n = epoll_pwait2(ep, evs, 256, &to, NULL);
		for (int i = 0; i < n; i++) {
			struct conn *c = &conns[evs[i].data.u32];
			for (;;) {
				ssize_t r = read(c->fd, c->buf + c->have, BUFSZ - c->have);
				long len;
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				if (r <= 0) {
					fprintf(stderr, "httpload: connection closed by server\n");
					return 1;
				}
				c->have += r;
				len = response_len(c->buf, c->have);
				if (len < 0) {
					fprintf(stderr, "httpload: bad response\n");
					return 1;
				}
				if (len > 0) {
					/* one request outstanding per connection: no pipelining */
					completed++;
					c->busy = 0;
					c->have = 0;
					break;
				}
			}
		}
	}
	uint64_t el = now_ns() - t0;
	printf("completed=%ld errors=%ld elapsed_ns=%llu rate=%.1f\n", completed, errors,
	       (unsigned long long)el, completed * 1e9 / el);
	for (int i = 0; i < nconn; i++)
		close(conns[i].fd);
	return completed == count ? 0 : 3;
}
