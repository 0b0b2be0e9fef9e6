// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Cross-protocol inference: the first syscalls of every captured
 * conversation of every protocol (tests/unit/captures/PROTO/NAME.cap, and
 * the HTTP/1 captures) are offered to every protocol's inference, exactly as
 * the socket tracer does on a new connection (HTTP/1 first, then
 * l7m_infer's order). A conversation must be recognised as its own protocol
 * and no syscall of it as any other: a misclassification is a bug.
 *
 * Usage: test_infer [CAPTURE_DIR]   (default tests/unit/captures)
 */
#include <dirent.h>

#include "l7m_driver.h"

#define INFER_SYSCALLS 8 /* INFER_MAX_TRIES in the tracer */

/* pending: the parser exists but its inference is not in the kernel yet
 * (bpf/proto/l7m_dispatch.h): its captures must not be taken for anything
 * else, and are not yet expected to be recognised. */
static const struct {
	const char *dir;
	__u8 proto;
	int pending;
} dirs[] = {
	{ "pgsql", SONDE_PROTO_PGSQL, 0 },         { "mysql", SONDE_PROTO_MYSQL, 0 },
	{ "memcached", SONDE_PROTO_MEMCACHED, 1 }, { "mqtt", SONDE_PROTO_MQTT, 0 },
	{ "mongo", SONDE_PROTO_MONGO, 1 },         { "kafka", SONDE_PROTO_KAFKA, 1 },
	{ "redis", SONDE_PROTO_REDIS, 0 },         { "dns", SONDE_PROTO_DNS, 0 },
};

/* What the tracer would decide on these first bytes: HTTP/1 or an engine
 * protocol, or UNKNOWN. */
static __u8 infer_one(const __u8 *b, size_t n)
{
	__u8 w[L7M_BUF] = { 0 };
	int kind = 0;

	if (n > sizeof(w))
		n = sizeof(w);
	memcpy(w, b, n);
	if (h1_infer(w, n < 8 ? n : 8) != H1_INFER_NONE)
		return SONDE_PROTO_HTTP1;
	return l7m_infer(w, n, &kind);
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One conversation file ("< hex" / "> hex" per syscall): its first
 * syscalls inferred. Returns the protocol found first (UNKNOWN if none). */
static __u8 check_capture(const char *path, __u8 want)
{
	static char line[1 << 20];
	static __u8 buf[1 << 19];
	__u8 found = SONDE_PROTO_UNKNOWN;
	FILE *f = fopen(path, "r");
	int calls = 0;

	if (!f) {
		t_report(__FILE__, __LINE__, "cannot open %s", path);
		return 0;
	}
	while (calls < INFER_SYSCALLS && fgets(line, sizeof(line), f)) {
		size_t n = 0;
		__u8 got;

		if ((line[0] != '<' && line[0] != '>') || line[1] != ' ')
			continue;
		for (char *p = line + 2; hexval(p[0]) >= 0 && hexval(p[1]) >= 0 && n < sizeof(buf);
		     p += 2)
			buf[n++] = hexval(p[0]) << 4 | hexval(p[1]);
		calls++;
		got = infer_one(buf, n);
		if (got != SONDE_PROTO_UNKNOWN && got != want)
			t_report(__FILE__, __LINE__, "%s: syscall %d taken for protocol %u, not %u",
				 path, calls, got, want);
		if (found == SONDE_PROTO_UNKNOWN)
			found = got;
	}
	fclose(f);
	return found;
}

static const char *capdir = "tests/unit/captures";

static void test_captures_infer_as_their_protocol(void)
{
	char path[512];
	int files = 0;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/%s", capdir, dirs[i].dir);
		d = opendir(path);
		if (!d)
			continue; /* a protocol without captures yet */
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);

			if (l < 5 || strcmp(e->d_name + l - 4, ".cap"))
				continue;
			snprintf(path, sizeof(path), "%s/%s/%s", capdir, dirs[i].dir, e->d_name);
			SET_CTX("%.150s", path);
			if (dirs[i].pending)
				check_capture(path, dirs[i].proto);
			else
				ASSERT_EQ(check_capture(path, dirs[i].proto), dirs[i].proto);
			files++;
		}
		closedir(d);
	}
	ASSERT_TRUE(files >= 20);
}

/* HTTP/1 captures: HTTP, and no engine protocol claims them. */
static void test_http_is_not_taken_by_the_engine(void)
{
	char path[512];
	DIR *d = opendir(capdir);
	struct dirent *e;
	int files = 0;

	if (!d) {
		t_report(__FILE__, __LINE__, "no %s", capdir);
		return;
	}
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), n;
		__u8 w[L7M_BUF] = { 0 };
		int kind = 0;
		FILE *f;

		if (l < 5 || (strcmp(e->d_name + l - 4, ".req") && strcmp(e->d_name + l - 5, ".resp")))
			continue;
		snprintf(path, sizeof(path), "%s/%s", capdir, e->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		n = fread(w, 1, sizeof(w), f);
		fclose(f);
		if (!n)
			continue;
		SET_CTX("%.150s", path);
		ASSERT_EQ(l7m_infer(w, n, &kind), SONDE_PROTO_UNKNOWN);
		ASSERT_EQ(l7m_infer_dgram(w, n, n, &kind), SONDE_PROTO_UNKNOWN);
		ASSERT_TRUE(h1_infer(w, n < 8 ? n : 8) != H1_INFER_NONE);
		files++;
	}
	closedir(d);
	ASSERT_TRUE(files >= 10);
}

/* Text that looks like several protocols at once is nobody's. */
static void test_ambiguous_bytes_are_unknown(void)
{
	static const char *const samples[] = {
		"\r\n", "HELLO\r\n", "ping\n", "SSH-2.0-OpenSSH_9.2\r\n", "220 smtp ready\r\n",
		"{\"jsonrpc\":\"2.0\"}", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	};

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		SET_CTX("sample %zu", i);
		ASSERT_EQ(infer_one((const __u8 *)samples[i], strlen(samples[i]) ? strlen(samples[i]) : 1),
			  SONDE_PROTO_UNKNOWN);
	}
}

int main(int argc, char **argv)
{
	(void)drv_run;
	(void)drv_reset;
	if (argc > 1)
		capdir = argv[1];
	RUN(test_captures_infer_as_their_protocol);
	RUN(test_http_is_not_taken_by_the_engine);
	RUN(test_ambiguous_bytes_are_unknown);
	UNIT_SUMMARY("infer");
}
