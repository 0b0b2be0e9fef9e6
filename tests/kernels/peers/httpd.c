// httpd: a tiny static HTTP/1.1 server for the kernel matrix guests.
//
//   httpd [-a ADDR] [-p PORT] [-b BIGSIZE] [-r READYFILE]
//
// Listens on ADDR:PORT (127.0.0.1:8080), forks one child per connection,
// keeps connections alive, and answers every request:
//   GET /big          200, a BIGSIZE-byte body (64 KiB by default)
//   GET|HEAD <other>  200, a short body naming the path
//   anything else     400 and close
// Requests may be pipelined; bodies of requests are not expected (GET only).
// Reads with read(2) and answers with write(2): the plain syscalls most
// servers use. Once listening it creates READYFILE (if given) so a shell can
// wait for it, and prints "httpd: listening" on stderr.
#define _GNU_SOURCE // strcasestr
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQ_MAX 8192

static size_t big_size = 64 * 1024;
static char *big_body;

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

// Answers one request (head = request line + headers, NUL-terminated).
// Returns 1 to keep the connection, 0 to close it, -1 on a write error.
static int answer(int fd, char *head)
{
	char method[16], path[1024], version[16];
	char hdr[512], small[1100];
	const char *body;
	size_t blen;
	int keep = 1, n;

	if (sscanf(head, "%15s %1023s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 ||
	    (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		static const char bad[] =
			"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		write_all(fd, bad, sizeof(bad) - 1);
		return 0;
	}
	if (strcmp(version, "HTTP/1.0") == 0 || strcasestr(head, "\nConnection: close"))
		keep = 0;
	if (strcmp(path, "/big") == 0) {
		body = big_body;
		blen = big_size;
	} else {
		n = snprintf(small, sizeof(small), "ok %s\n", path);
		body = small;
		blen = (size_t)n;
	}
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 200 OK\r\nServer: sonde-httpd\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %zu\r\n%s\r\n",
		     blen, keep ? "" : "Connection: close\r\n");
	if (write_all(fd, hdr, (size_t)n) < 0)
		return -1;
	if (strcmp(method, "HEAD") != 0 && write_all(fd, body, blen) < 0)
		return -1;
	return keep;
}

static void serve(int fd)
{
	char buf[REQ_MAX + 1];
	size_t have = 0;

	for (;;) {
		char *end;

		buf[have] = '\0';
		while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			size_t used = (size_t)(end - buf) + 4;
			int keep;

			end[2] = '\0';
			keep = answer(fd, buf);
			if (keep <= 0)
				return;
			memmove(buf, buf + used, have - used);
			have -= used;
			buf[have] = '\0';
		}
		if (have == REQ_MAX)
			return; // header too large: drop the connection
		ssize_t r = read(fd, buf + have, REQ_MAX - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		have += (size_t)r;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: httpd [-a ADDR] [-p PORT] [-b BIGSIZE] [-r READYFILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *ready = NULL;
	int port = 8080, one = 1, opt, lfd;
	struct sockaddr_in sa;

	while ((opt = getopt(argc, argv, "a:p:b:r:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'b': big_size = strtoul(optarg, NULL, 0); break;
		case 'r': ready = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || port <= 0 || port > 65535)
		usage();

	big_body = malloc(big_size ? big_size : 1);
	if (!big_body)
		return 1;
	for (size_t i = 0; i < big_size; i++)
		big_body[i] = (char)('a' + i % 26);

	signal(SIGCHLD, SIG_IGN); // children reaped by the kernel
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "httpd: bad address %s\n", addr);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
		perror("httpd: listen");
		return 1;
	}
	fprintf(stderr, "httpd: listening on %s:%d\n", addr, port);
	if (ready) {
		int rfd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (rfd >= 0)
			close(rfd);
	}
	for (;;) {
		int cfd = accept(lfd, NULL, NULL);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("httpd: accept");
			return 1;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(cfd);
			close(cfd);
			_exit(0);
		}
		close(cfd);
	}
}
