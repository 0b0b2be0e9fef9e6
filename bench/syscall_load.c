// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Fixed-count syscall loads for bench-syscall.
 *
 *   syscall_load tcp  SIZE N   N request/response pairs of SIZE bytes each
 *                              way over loopback TCP, client and server in two
 *                              processes (payload is not any protocol)
 *   syscall_load http SIZE N   the same, but the request is a valid HTTP/1.1
 *                              GET and the response a 200 with Content-Length,
 *                              both padded to SIZE bytes
 *   syscall_load null N        N write(2)s of 64 bytes to /dev/null
 *   syscall_load getppid N     N getppid(2): a syscall no hook is on
 *
 * With --cpu FILE (a cgroup v1 cpuacct.usage, or a cgroup v2 cpu.stat) the
 * program reads that counter right before the first and right after the last
 * timed syscall, so setup (fork, connect) is left out; it then prints
 *   syscalls=S cpu_ns=C wall_ns=W
 * on stdout, where S counts every syscall of the timed loop in both
 * processes. Without --cpu, cpu_ns is getrusage() of both processes over the
 * whole run.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *cpu_file;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* CPU time of the cgroup in ns: cpuacct.usage holds ns, cpu.stat usage_usec */
static uint64_t cgroup_cpu_ns(void)
{
	char buf[4096];
	int fd = open(cpu_file, O_RDONLY);
	ssize_t n;
	uint64_t v = 0;
	char *p;

	if (fd < 0)
		die(cpu_file);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("read cpu file");
	buf[n] = 0;
	if ((p = strstr(buf, "usage_usec ")))
		v = strtoull(p + 11, NULL, 10) * 1000;
	else
		v = strtoull(buf, NULL, 10);
	return v;
}

static uint64_t rusage_ns(int who)
{
	struct rusage ru;
	getrusage(who, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* read exactly len bytes; returns the number of read(2) calls it took */
static long read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	long calls = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		calls++;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -calls : -1;
		got += n;
	}
	return calls;
}

static long write_full(int fd, const char *buf, size_t len)
{
	size_t put = 0;
	long calls = 0;

	while (put < len) {
		ssize_t n = write(fd, buf + put, len - put);
		calls++;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		put += n;
	}
	return calls;
}

/* HTTP/1.1 request padded with an X-Pad header to exactly size bytes */
static void http_request(char *buf, size_t size)
{
	const char *head = "GET /x HTTP/1.1\r\nHost: a\r\n";
	size_t base = strlen(head) + strlen("X-Pad: \r\n\r\n");

	if (size < base) {
		fprintf(stderr, "http request needs at least %zu bytes\n", base);
		exit(2);
	}
	memset(buf, 'p', size);
	memcpy(buf, head, strlen(head));
	memcpy(buf + strlen(head), "X-Pad: ", 7);
	memcpy(buf + size - 4, "\r\n\r\n", 4);
}

/* HTTP/1.1 200 response whose body pads it to exactly size bytes */
static void http_response(char *buf, size_t size)
{
	char head[128];
	size_t body;
	int hl;

	for (body = 0; body < size; body++) {
		hl = snprintf(head, sizeof(head),
			      "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
		if ((size_t)hl + body == size)
			break;
	}
	if (body == size) {
		fprintf(stderr, "http response cannot be %zu bytes\n", size);
		exit(2);
	}
	memset(buf, 'b', size);
	memcpy(buf, head, hl);
}

static int run_pairs(int http, size_t size, long n)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char *req = malloc(size), *resp = malloc(size), *buf = malloc(size);
	long *server_calls = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int one = 1, lfd, cfd, status;
	long calls = 0, r;
	uint64_t cpu0, cpu1, t0, t1, ru0 = 0;
	pid_t pid;

	if (!req || !resp || !buf || server_calls == MAP_FAILED)
		die("alloc");
	if (http) {
		http_request(req, size);
		http_response(resp, size);
	} else {
		memset(req, 'q', size);
		memset(resp, 'r', size);
	}

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (void *)&a, &alen))
		die("listen");

	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) { /* server */
		int s = accept(lfd, NULL, NULL);
		long c = 0;
		if (s < 0)
			die("accept");
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		for (;;) {
			r = read_full(s, buf, size);
			if (r < 0) { /* EOF: client is done; that read is not timed */
				c += -r - 1;
				break;
			}
			c += r;
			c += write_full(s, resp, size);
		}
		*server_calls = c;
		close(s); /* explicitly: a tracer sees the close (exit would close it unseen) */
		_exit(0);
	}
	close(lfd);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (void *)&a, sizeof(a)))
		die("connect");
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (!cpu_file)
		ru0 = rusage_ns(RUSAGE_SELF);
	cpu0 = cpu_file ? cgroup_cpu_ns() : 0;
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		calls += write_full(cfd, req, size);
		r = read_full(cfd, buf, size);
		if (r < 0) {
			fprintf(stderr, "server closed early\n");
			return 1;
		}
		calls += r;
	}
	t1 = now_ns();
	cpu1 = cpu_file ? cgroup_cpu_ns() : 0;
	close(cfd);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		die("server");
	if (!cpu_file) {
		cpu0 = ru0;
		cpu1 = rusage_ns(RUSAGE_SELF) + rusage_ns(RUSAGE_CHILDREN);
	}
	printf("syscalls=%ld cpu_ns=%llu wall_ns=%llu\n", calls + *server_calls,
	       (unsigned long long)(cpu1 - cpu0), (unsigned long long)(t1 - t0));
	return 0;
}

static int run_loop(int null, long n)
{
	char buf[64];
	int fd = null ? open("/dev/null", O_WRONLY) : -1;
	uint64_t cpu0, cpu1, t0, t1;

	if (null && fd < 0)
		die("/dev/null");
	memset(buf, 'n', sizeof(buf));
	cpu0 = cpu_file ? cgroup_cpu_ns() : rusage_ns(RUSAGE_SELF);
	t0 = now_ns();
	if (null) {
		for (long i = 0; i < n; i++)
			if (write(fd, buf, sizeof(buf)) != sizeof(buf))
				die("write /dev/null");
	} else {
		for (long i = 0; i < n; i++)
			getppid();
	}
	t1 = now_ns();
	cpu1 = cpu_file ? cgroup_cpu_ns() : rusage_ns(RUSAGE_SELF);
	printf("syscalls=%ld cpu_ns=%llu wall_ns=%llu\n", n,
	       (unsigned long long)(cpu1 - cpu0), (unsigned long long)(t1 - t0));
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: syscall_load [--cpu FILE] tcp|http SIZE N\n"
			"       syscall_load [--cpu FILE] null|getppid N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "--cpu") == 0) {
		cpu_file = argv[2];
		i = 3;
	}
	if (argc - i == 3 && (!strcmp(argv[i], "tcp") || !strcmp(argv[i], "http"))) {
		long size = atol(argv[i + 1]), n = atol(argv[i + 2]);
		if (size <= 0 || n <= 0)
			usage();
		return run_pairs(argv[i][0] == 'h', size, n);
	}
	if (argc - i == 2 && (!strcmp(argv[i], "null") || !strcmp(argv[i], "getppid"))) {
		long n = atol(argv[i + 1]);
		if (n <= 0)
			usage();
		return run_loop(argv[i][0] == 'n', n);
	}
	usage();
	return 2;
}
