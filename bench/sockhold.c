// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Hold N established loopback TCP connections, each having carried one byte
 * each way, for bench-agent's memory figures.
 *
 *   sockhold N [BASE_PORT]
 *
 * Open files per process are capped by RLIMIT_NOFILE's hard limit (20000
 * here, and it cannot be raised without CAP_SYS_RESOURCE), so the work is
 * split in groups of at most PER_GROUP connections: each group is a client
 * process and a server process on its own port (BASE_PORT + group, default
 * base 29000). The server accepts with epoll and echoes one byte per
 * connection; the client opens its connections, sends one byte on each and
 * reads it back. When every group is done, "ready N" is printed on stderr
 * and every socket is held open until SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PER_GROUP 15000

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what)
{
	perror(what);
	_exit(1);
}

static void raise_nofile(long need)
{
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	if ((long)r.rlim_max < need) {
		r.rlim_max = need; /* works only with CAP_SYS_RESOURCE */
	}
	r.rlim_cur = r.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &r) || (long)r.rlim_cur < need) {
		fprintf(stderr, "sockhold: need %ld open files per process\n", need);
		_exit(1);
	}
}

static void server(int lfd)
{
	int ep = epoll_create1(0);
	struct epoll_event evs[512], ev = { .events = EPOLLIN, .data.fd = lfd };
	char c;

	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (!stop) {
		int k = epoll_wait(ep, evs, 512, 200);
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int s;
				while ((s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct epoll_event e = { .events = EPOLLIN, .data.fd = s };
					epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
				}
			} else {
				if (read(fd, &c, 1) == 1 && write(fd, &c, 1) != 1)
					die("echo");
				/* one byte per connection: stop watching, keep it open */
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			}
		}
	}
	_exit(0);
}

/* one group: a server child and this client; writes 'r' to ready_fd when done */
static void group(int port, long n, int ready_fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int lfd, one = 1, *fds = calloc(n, sizeof(int));
	pid_t srv;
	char c;

	raise_nofile(n + 64);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!fds || lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 4096))
		die("listen");
	srv = fork();
	if (srv < 0)
		die("fork");
	if (srv == 0)
		server(lfd);
	close(lfd);
	for (long i = 0; i < n && !stop; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (void *)&a, sizeof(a)))
			die("connect");
		if (write(fds[i], "x", 1) != 1)
			die("write");
	}
	/* read the echoes after all writes, so the server works concurrently */
	for (long i = 0; i < n && !stop; i++)
		if (read(fds[i], &c, 1) != 1)
			die("read echo");
	if (!stop && write(ready_fd, "r", 1) != 1)
		die("ready pipe");
	while (!stop)
		pause();
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	_exit(0);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 0;
	int base = argc > 2 ? atoi(argv[2]) : 29000;
	int ngroups, pfd[2], done = 0, status, rc = 0;
	pid_t *pids;
	char c;

	if (n <= 0) {
		fprintf(stderr, "usage: sockhold N [BASE_PORT]\n");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ngroups = (n + PER_GROUP - 1) / PER_GROUP;
	pids = calloc(ngroups, sizeof(pid_t));
	if (!pids || pipe(pfd))
		die("init");
	for (int g = 0; g < ngroups; g++) {
		long share = n / ngroups + (g < n % ngroups);
		pids[g] = fork();
		if (pids[g] < 0)
			die("fork");
		if (pids[g] == 0) {
			close(pfd[0]);
			group(base + g, share, pfd[1]);
		}
	}
	close(pfd[1]);
	while (done < ngroups && !stop) {
		ssize_t r = read(pfd[0], &c, 1);
		if (r == 1)
			done++;
		else if (r == 0 || errno != EINTR)
			break; /* a group died */
	}
	if (done == ngroups)
		fprintf(stderr, "ready %ld\n", n);
	else
		rc = 1;
	while (!stop && !rc)
		pause();
	for (int g = 0; g < ngroups; g++)
		kill(pids[g], SIGTERM);
	for (int g = 0; g < ngroups; g++)
		if (waitpid(pids[g], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			rc = 1;
	return rc;
}
