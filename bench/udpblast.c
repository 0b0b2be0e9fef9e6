// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * UDP packet-rate load for bench-flows: many small datagrams over N flows.
 *   udpblast send ADDR PORT FLOWS SECONDS   sendmmsg batches from FLOWS sockets
 *   udpblast recv PORT IDLE_MS              count datagrams until IDLE_MS quiet;
 *                                           prints "received N"
 * 18-byte payloads make 64-byte Ethernet frames: the packet rate is the load.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXFLOWS 256

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int do_send(const char *addr, int port, int flows, double secs)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = "sonde-bench-flows!", .iov_len = 18 };
	int fds[MAXFLOWS];
	unsigned long sent = 0;
	double end;

	if (flows < 1 || flows > MAXFLOWS || inet_pton(AF_INET, addr, &dst.sin_addr) != 1) {
		fprintf(stderr, "udpblast: bad address or flow count (1..%d)\n", MAXFLOWS);
		return 2;
	}
	for (int i = 0; i < flows; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, sizeof(dst))) {
			perror("udpblast: socket/connect");
			return 1;
		}
	}
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	end = now() + secs;
	for (int f = 0; now() < end; f = (f + 1) % flows) {
		int n = sendmmsg(fds[f], msgs, BATCH, 0);

		if (n > 0)
			sent += n;
	}
	printf("sent %lu\n", sent);
	return 0;
}

static int do_recv(int port, int idle_ms)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(port) };
	static char bufs[BATCH][64];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 64 << 20;
	unsigned long got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&me, sizeof(me))) {
		perror("udpblast: bind");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	/* the first datagram may be far off; after that, stop at the first quiet spell */
	if (poll(&p, 1, 60000) <= 0)
		return 1;
	while (poll(&p, 1, idle_ms) > 0) {
		int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);

		if (n > 0)
			got += n;
	}
	printf("received %lu\n", got);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "recv"))
		return do_recv(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: udpblast send ADDR PORT FLOWS SECONDS | recv PORT IDLE_MS\n");
	return 2;
}
