// httpc: a keep-alive HTTP/1.1 client for the kernel matrix guests.
//
//   httpc [-a ADDR] [-p PORT] [-n N] [-P PREFIX] [-B EVERY]
//
// Opens ONE TCP connection to ADDR:PORT (127.0.0.1:8080) and sends N
// sequential requests "GET PREFIX<i> HTTP/1.1" for i = 0..N-1 (PREFIX is
// "/k/" by default), reading each whole response by its Content-Length before
// sending the next. With -B EVERY, every EVERY-th request (i % EVERY ==
// EVERY-1) asks for /big instead. Uses send(2) and recv(2), so the guest
// exercises other syscalls than the server's read(2)/write(2).
// Prints "httpc: ok=<succeeded> fail=<failed> n=<N>" on stdout; exits 0 only
// when every request got a 200 with its full body.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR_MAX 8192

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, 0);
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

// Bytes received past the end of one response stay here for the next one.
static char rbuf[HDR_MAX + 65536];
static size_t rhave;

// Reads one response; returns its status, or -1 if the connection broke.
static int read_response(int fd)
{
	char *end;
	long status = -1, clen = -1;

	for (;;) {
		rbuf[rhave] = '\0';
		end = strstr(rbuf, "\r\n\r\n");
		if (end)
			break;
		if (rhave >= HDR_MAX)
			return -1;
		ssize_t r = recv(fd, rbuf + rhave, HDR_MAX - rhave, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		rhave += (size_t)r;
	}
	size_t hlen = (size_t)(end - rbuf) + 4;
	if (sscanf(rbuf, "HTTP/1.%*d %ld", &status) != 1)
		return -1;
	for (char *line = strstr(rbuf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
		if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
			clen = strtol(line + 17, NULL, 10);
	}
	if (clen < 0)
		return -1; // this client only speaks Content-Length
	// consume the header, then the body
	memmove(rbuf, rbuf + hlen, rhave - hlen);
	rhave -= hlen;
	size_t want = (size_t)clen;
	while (want > 0) {
		if (rhave > 0) {
			size_t take = rhave < want ? rhave : want;
			memmove(rbuf, rbuf + take, rhave - take);
			rhave -= take;
			want -= take;
			continue;
		}
		ssize_t r = recv(fd, rbuf, sizeof(rbuf) - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		rhave = (size_t)r;
	}
	return (int)status;
}

static void usage(void)
{
	fprintf(stderr, "usage: httpc [-a ADDR] [-p PORT] [-n N] [-P PREFIX] [-B EVERY]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *prefix = "/k/";
	int port = 8080, n = 50, every = 0, opt, fd, one = 1, ok = 0;
	struct sockaddr_in sa;

	while ((opt = getopt(argc, argv, "a:p:n:P:B:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'P': prefix = optarg; break;
		case 'B': every = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || port <= 0 || port > 65535 || n < 0 || every < 0)
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "httpc: bad address %s\n", addr);
		return 2;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("httpc: connect");
		printf("httpc: ok=0 fail=%d n=%d\n", n, n);
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = 0; i < n; i++) {
		char req[1200];
		int len;

		if (every > 0 && i % every == every - 1)
			len = snprintf(req, sizeof(req), "GET /big HTTP/1.1\r\nHost: %s\r\n\r\n", addr);
		else
			len = snprintf(req, sizeof(req), "GET %s%d HTTP/1.1\r\nHost: %s\r\n\r\n",
				       prefix, i, addr);
		if (send_all(fd, req, (size_t)len) < 0)
			break;
		int status = read_response(fd);
		if (status < 0)
			break;
		if (status == 200)
			ok++;
	}
	close(fd);
	printf("httpc: ok=%d fail=%d n=%d\n", ok, n - ok, n);
	return ok == n ? 0 : 1;
}
