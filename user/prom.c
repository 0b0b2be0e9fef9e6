// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A minimal HTTP server for Prometheus scrapes: one non-blocking listening
 * socket polled by the main loop; each scrape is read, answered and closed in
 * turn (a scrape a second is the expected load). Binds to loopback unless
 * told otherwise.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sonde.h"

int prom_listen(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	char *end;
	long port;
	int fd, one = 1;

	if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host))
		goto bad;
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		goto bad;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		len = sizeof(*v6);
	} else {
		goto bad;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16)) {
		fprintf(stderr, "sonde: cannot serve metrics on %s: %s (choose another with "
				"--metrics-listen ADDRESS:PORT, or 'off')\n",
			hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
bad:
	fprintf(stderr, "sonde: --metrics-listen wants a numeric ADDRESS:PORT such as "
			"127.0.0.1:9433 or [::1]:9433, not '%s'\n",
		hostport);
	return -1;
}

static void reply(int c, const char *status, const char *type, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, type, len);

	if (write(c, head, n) != n)
		return;
	while (len > 0) {
		ssize_t w = write(c, body, len);

		if (w <= 0)
			return;
		body += w;
		len -= w;
	}
}

void prom_serve_one(int lfd, struct metrics *m, void (*health)(FILE *, void *), void *arg)
{
	struct timeval tv = { .tv_sec = 1 };
	char req[2048];
	ssize_t n = 0;
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* read the request head (a scraper sends it at once) */
	while (n < (ssize_t)sizeof(req) - 1) {
		ssize_t r = read(c, req + n, sizeof(req) - 1 - n);

		if (r <= 0)
			break;
		n += r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[n] = 0;
	if (strncmp(req, "GET /metrics", 12) == 0 || strncmp(req, "GET / ", 6) == 0) {
		char *body = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&body, &len);

		if (f) {
			metrics_write_prometheus(m, f);
			if (health)
				health(f, arg);
			fclose(f);
			reply(c, "200 OK", "text/plain; version=0.0.4", body, len);
			free(body);
		}
	} else {
		static const char nf[] = "not found: try /metrics\n";

		reply(c, "404 Not Found", "text/plain", nf, sizeof(nf) - 1);
	}
	close(c);
}
