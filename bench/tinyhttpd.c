// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The cheapest HTTP/1.1 server that is still one: one thread, epoll,
 * keep-alive, answers every request (headers ending in CRLFCRLF, no body)
 * with a fixed 200 response whose body is BODY bytes. bench-drops uses it so
 * the machine reaches a higher transaction rate than nginx allows.
 *
 *   tinyhttpd PORT [BODY]     prints "ready" on stderr once listening;
 *                             stops on SIGINT/SIGTERM
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
#define BUFSZ 8192

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

struct conn {
	size_t have;
	char buf[BUFSZ];
};

static struct conn *conns[MAXFD];

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 0, body = argc > 2 ? atoi(argv[2]) : 64;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct epoll_event evs[256], ev;
	char resp[4096];
	int lfd, ep, one = 1, rlen;

	if (port <= 0 || body < 0 || body > 3000) {
		fprintf(stderr, "usage: tinyhttpd PORT [BODY<=3000]\n");
		return 2;
	}
	rlen = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			"Content-Length: %d\r\n\r\n", body);
	memset(resp + rlen, 'b', body);
	rlen += body;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 4096)) {
		perror("listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	fprintf(stderr, "ready\n");

	while (!stop) {
		int n = epoll_wait(ep, evs, 256, 200);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int s;
				while ((s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					if (s >= MAXFD || !(conns[s] = calloc(1, sizeof(struct conn)))) {
						close(s);
						continue;
					}
					setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.fd = s;
					epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
				}
				continue;
			}
			struct conn *c = conns[fd];
			ssize_t r = read(fd, c->buf + c->have, BUFSZ - c->have - 1);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd);
				free(c);
				conns[fd] = NULL;
				continue;
			}
			c->have += r;
			c->buf[c->have] = 0;
			/* answer every complete request in the buffer (pipelining too) */
			char *p = c->buf, *end;
			while ((end = strstr(p, "\r\n\r\n"))) {
				if (write(fd, resp, rlen) != rlen)
					break;
				p = end + 4;
			}
			c->have -= p - c->buf;
			memmove(c->buf, p, c->have);
			if (c->have >= BUFSZ - 1)
				c->have = 0; /* a request too long: drop it */
		}
	}
	return 0;
}
