/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Captured conversations for the message-engine tests: files written by
 * tests/unit/captures/capture_l7m.py from a real client and server, one
 * syscall a line ("> hex" sent by the client, "< hex" received), connections
 * separated by "#conn". cap_load() reads one connection of a file into
 * drv_call entries; each_split() feeds it whole and cut at every piece size.
 */
#ifndef SONDE_TEST_L7M_CAPTURES_H
#define SONDE_TEST_L7M_CAPTURES_H

#include "l7m_driver.h"

#define CAP_MAX_CALLS 256
#define CAP_DIR "tests/unit/captures/"

struct cap {
	struct drv_call calls[CAP_MAX_CALLS];
	int n;
	__u8 proto;
};

static int cap_hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Load connection `conn` (0-based) of a capture file; exits on a bad file so a
 * missing capture can never pass silently. */
static void cap_load(struct cap *cp, __u8 proto, const char *file, int conn)
{
	char path[256], *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int cur = 0;
	FILE *f;

	snprintf(path, sizeof(path), CAP_DIR "%s", file);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open capture %s (run from the repository root)\n", path);
		exit(2);
	}
	memset(cp, 0, sizeof(*cp));
	cp->proto = proto;
	while ((len = getline(&line, &cap, f)) > 0) {
		__u8 *buf;
		ssize_t i, n = 0;

		if (!strncmp(line, "#conn", 5)) {
			cur++;
			continue;
		}
		if (cur != conn || len < 3 || (line[0] != '>' && line[0] != '<'))
			continue;
		if (cp->n >= CAP_MAX_CALLS) {
			fprintf(stderr, "capture %s: more than %d syscalls\n", path, CAP_MAX_CALLS);
			exit(2);
		}
		buf = malloc(len / 2 + 1);
		for (i = 2; i + 1 < len; i += 2) {
			int hi = cap_hex(line[i]), lo = cap_hex(line[i + 1]);

			if (hi < 0 || lo < 0)
				break;
			buf[n++] = hi << 4 | lo;
		}
		cp->calls[cp->n++] = (struct drv_call){
			line[0] == '>' ? H1_DIR_SEND : H1_DIR_RECV, buf, (size_t)n,
		};
	}
	free(line);
	fclose(f);
	if (!cp->n) {
		fprintf(stderr, "capture %s: no syscalls in connection %d\n", path, conn);
		exit(2);
	}
}

static void cap_free(struct cap *cp)
{
	int i;

	for (i = 0; i < cp->n; i++)
		free((void *)cp->calls[i].data);
	cp->n = 0;
}

/* Fields (text, detail) are only checked when every syscall of the
 * conversation reached the parser whole or in pieces of at least this many
 * bytes: shorter pieces cut a message head, and the parser reports what it
 * saw (framing, pairing and sizes are checked at every piece size). */
static int fields_visible;
static const char *cap_name = "";
#define FIELDS_VISIBLE fields_visible
#ifndef FIELD_PIECE_MIN
#define FIELD_PIECE_MIN 64
#endif

/* Run a conversation whole and at every piece size 1..64 and some larger
 * ones, as the client (requests sent) and check with `check` each time. */
static void each_split_dir(const struct drv_call *calls, int n, __u8 proto, __u8 req_dir,
			   void (*check)(void))
{
	static const size_t big[] = { 100, 127, 128, 129, 143, 144, 145, 200, 255, 256, 1000 };
	struct drv d;
	size_t piece, k;

	for (k = 0; k < 65 + sizeof(big) / sizeof(big[0]); k++) {
		int i;

		piece = k < 65 ? k : big[k - 65];
		fields_visible = 1;
		for (i = 0; piece && piece < FIELD_PIECE_MIN && i < n; i++)
			if (calls[i].len > piece)
				fields_visible = 0;
		SET_CTX("%s %s piece %zu", cap_name, req_dir == H1_DIR_SEND ? "client" : "server", piece);
		drv_reset(&d, proto, req_dir);
		drv_run(&d, calls, n, piece);
		check();
	}
}

static void each_split(const struct drv_call *calls, int n, __u8 proto, void (*check)(void))
{
	each_split_dir(calls, n, proto, H1_DIR_SEND, check);
}

/* The same conversation seen from the server: directions swapped. */
static void each_split_server(const struct drv_call *calls, int n, __u8 proto,
			      void (*check)(void))
{
	struct drv_call *sw = calloc(n, sizeof(*sw));
	int i;

	for (i = 0; i < n; i++) {
		sw[i] = calls[i];
		sw[i].dir = calls[i].dir == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND;
	}
	each_split_dir(sw, n, proto, H1_DIR_RECV, check);
	free(sw);
}

/* Run a capture file's connection as client and as server. */
static void cap_check(__u8 proto, const char *file, int conn, void (*check)(void))
{
	struct cap cp;

	cap_load(&cp, proto, file, conn);
	cap_name = file;
	each_split(cp.calls, cp.n, proto, check);
	each_split_server(cp.calls, cp.n, proto, check);
	cap_free(&cp);
}

#define TX_STR(i, field, want)                                                \
	do {                                                                  \
		if (FIELDS_VISIBLE)                                           \
			ASSERT_STR(drv_tx[i].field, want);                    \
	} while (0)

#endif /* SONDE_TEST_L7M_CAPTURES_H */
