/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Shared by tests/unit/test_pgsql.c and test_mysql.c: load a conversation
 * captured from a real client and server (tests/unit/captures/<proto>/
 * NAME.cap, written by capture_sql.py: one line per socket syscall of the
 * client, "> HEX" sent, "< HEX" received), run it through the engine as the
 * client saw it and as the server saw it, whole and cut at every piece size,
 * and compare the transactions with what the test expects.
 */
#ifndef SONDE_TEST_SQL_CASES_H
#define SONDE_TEST_SQL_CASES_H

#include "l7m_driver.h"

#define CAP_MAX_CALLS 256

struct cap {
	struct drv_call calls[CAP_MAX_CALLS];
	int n;
};

static const char *cap_dir = "tests/unit/captures";

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Load proto/name.cap; exits on a missing or malformed file (a broken test). */
static void cap_load(struct cap *cap, const char *proto, const char *name)
{
	char path[512], *line = NULL;
	size_t cap_len = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s.cap", cap_dir, proto, name);
	f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(2);
	}
	cap->n = 0;
	while ((n = getline(&line, &cap_len, f)) > 0) {
		struct drv_call *c;
		__u8 *buf;
		size_t i, len;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (n < 2 || (line[0] != '>' && line[0] != '<') || cap->n >= CAP_MAX_CALLS) {
			fprintf(stderr, "%s: bad line %d\n", path, cap->n + 1);
			exit(2);
		}
		len = (n - 2) / 2;
		buf = malloc(len ? len : 1);
		for (i = 0; i < len; i++) {
			int hi = hexval(line[2 + 2 * i]), lo = hexval(line[3 + 2 * i]);

			if (hi < 0 || lo < 0) {
				fprintf(stderr, "%s: bad hex on line %d\n", path, cap->n + 1);
				exit(2);
			}
			buf[i] = hi << 4 | lo;
		}
		c = &cap->calls[cap->n++];
		c->dir = line[0] == '>' ? H1_DIR_SEND : H1_DIR_RECV;
		c->data = buf;
		c->len = len;
	}
	free(line);
	fclose(f);
}

static void cap_free(struct cap *cap)
{
	int i;

	for (i = 0; i < cap->n; i++)
		free((void *)cap->calls[i].data);
	cap->n = 0;
}

/* One expected transaction. */
struct want {
	__u8 op;
	const char *text;   /* exact when fed as captured, else a prefix */
	const char *route;
	const char *detail; /* the same */
	__u8 reply;
	__u8 flags;         /* SONDE_F_ERROR, SONDE_F_PATH_TRUNCATED */
	__u32 code;
	__u32 count;
	__u32 id;
	__u64 req_bytes, resp_bytes;
};

static int is_prefix(const char *got, const char *want)
{
	return strncmp(got, want, strlen(got)) == 0;
}

/* Text bytes a step always sees: the engine carries 16 bytes of a token's
 * head; the header and a short statement name ("s1") take 8. */
#define SQL_MIN_VISIBLE (L7M_CARRY - 8)

static void check_tx(const struct drv_tx *t, const struct want *w, int whole)
{
	ASSERT_EQ(t->op, w->op);
	ASSERT_EQ(t->reply, w->reply);
	ASSERT_EQ(t->flags & SONDE_F_ERROR, w->flags & SONDE_F_ERROR);
	ASSERT_EQ(t->code, w->code);
	ASSERT_EQ(t->count, w->count);
	ASSERT_EQ(t->id, w->id);
	ASSERT_EQ(t->req_bytes, w->req_bytes);
	ASSERT_EQ(t->resp_bytes, w->resp_bytes);
	ASSERT_TRUE(t->ts_end >= t->ts_start);
	if (whole) {
		ASSERT_STR(t->text, w->text);
		ASSERT_STR(t->route, w->route);
		ASSERT_STR(t->detail, w->detail);
		ASSERT_EQ(t->flags, w->flags);
		return;
	}
	/* cut into pieces: fields from the head the engine carries at least */
	ASSERT_TRUE(is_prefix(t->text, w->text));
	ASSERT_TRUE(strlen(t->text) >= (strlen(w->text) < SQL_MIN_VISIBLE ? strlen(w->text)
									   : SQL_MIN_VISIBLE));
	ASSERT_TRUE(is_prefix(t->route, w->route));
	ASSERT_TRUE(is_prefix(t->detail, w->detail));
}

/* Feed a capture as its client (req_dir SEND) or its server saw it. */
static void run_view(struct drv *d, __u8 proto, const struct cap *cap, int server, size_t piece)
{
	struct drv_call calls[CAP_MAX_CALLS];
	int i;

	for (i = 0; i < cap->n; i++) {
		calls[i] = cap->calls[i];
		if (server)
			calls[i].dir = calls[i].dir == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND;
	}
	drv_reset(d, proto, server ? H1_DIR_RECV : H1_DIR_SEND);
	drv_run(d, calls, cap->n, piece);
}

/*
 * The capture, both views, whole and at every piece size up to 64 bytes:
 * exactly the wanted transactions each time, nothing lost or unpaired.
 */
static void check_capture(__u8 proto, const char *proto_dir, const char *name,
			  const struct want *want, int nwant)
{
	struct cap cap;
	struct drv d;
	size_t piece;
	int server, i;

	cap_load(&cap, proto_dir, name);
	for (server = 0; server < 2; server++) {
		for (piece = 0; piece <= 64; piece++) {
			SET_CTX("%s, %s view, piece %zu", name, server ? "server" : "client", piece);
			run_view(&d, proto, &cap, server, piece);
			ASSERT_EQ(drv_ntx, nwant);
			for (i = 0; i < nwant && i < drv_ntx; i++) {
				SET_CTX("%s, %s view, piece %zu, transaction %d", name,
					server ? "server" : "client", piece, i);
				check_tx(&drv_tx[i], &want[i], piece == 0);
			}
			ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
			ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
			ASSERT_EQ(drv_stats[H1_STAT(pipeline_overflow)], 0);
			if (t_fail)
				break;
		}
	}
	cap_free(&cap);
}

#define CHECK_CAPTURE(proto, dir, name, want) \
	check_capture(proto, dir, name, want, (int)(sizeof(want) / sizeof(want[0])))

#endif /* SONDE_TEST_SQL_CASES_H */
