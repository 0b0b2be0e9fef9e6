// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Seed corpus for tests/fuzz/fuzz_http1.c from the captures of
 * tests/unit/captures: every NAME.chunks (with NAME.req, NAME.resp) becomes
 * two inputs in the fuzz target's record format, the connection as its client
 * saw it and as its server saw it.
 *
 * Usage: mkcorpus CAPTURE_DIR OUT_DIR
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEED 12000 /* well under the fuzzer's -max_len: small inputs run fast */

static unsigned char *slurp(const char *dir, const char *name, const char *ext, size_t *len)
{
	char path[1024];
	unsigned char *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
	f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n) {
		perror(path);
		exit(1);
	}
	buf[n] = 0;
	fclose(f);
	*len = n;
	return buf;
}

struct out {
	unsigned char buf[MAX_SEED + 16];
	size_t n;
};

/* One syscall's bytes as a data record (op 0 writes, op 3 reads); a seed that
 * would grow past MAX_SEED keeps what fits. */
static int put_data(struct out *o, int op, const unsigned char *p, size_t n)
{
	while (n) {
		size_t m = n > 65536 ? 65536 : n;

		if (o->n + 3 + m > MAX_SEED)
			m = MAX_SEED > o->n + 3 ? MAX_SEED - o->n - 3 : 0;
		if (m == 0)
			return -1;
		if (m > 256) {
			o->buf[o->n++] = 0x80 | op;
			o->buf[o->n++] = (m - 1) & 0xff;
			o->buf[o->n++] = (m - 1) >> 8;
		} else {
			o->buf[o->n++] = op;
			o->buf[o->n++] = m - 1;
		}
		memcpy(o->buf + o->n, p, m);
		o->n += m;
		p += m;
		n -= m;
	}
	return 0;
}

static void write_seed(const char *outdir, const char *name, const char *role, const struct out *o)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s", outdir, name, role);
	f = fopen(path, "wb");
	if (!f || fwrite(o->buf, 1, o->n, f) != o->n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void seeds_of(const char *dir, const char *outdir, const char *name)
{
	size_t rl, sl, cl;
	unsigned char *req = slurp(dir, name, ".req", &rl);
	unsigned char *resp = slurp(dir, name, ".resp", &sl);
	char *chunks = (char *)slurp(dir, name, ".chunks", &cl);
	static struct out o[2];

	for (int role = 0; role < 2; role++) {
		char *copy = strdup(chunks), *save, *line;
		size_t ro = 0, so = 0;

		o[role].n = 0;
		for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			size_t n = strtoul(line + 1, NULL, 10);
			int r = 0;

			if (line[0] == '>') {
				/* the client writes; the server reads */
				r = put_data(&o[role], role ? 3 : 0, req + ro, n);
				ro += n;
			} else if (line[0] == '<') {
				r = put_data(&o[role], role ? 0 : 3, resp + so, n);
				so += n;
			} else if (!strcmp(line, "EOF")) {
				/* client: read returned 0; server: it closed */
				o[role].buf[o[role].n++] = role ? 0x07 : 0x06;
			}
			if (r)
				break; /* long capture: the seed keeps its beginning */
		}
		o[role].buf[o[role].n++] = 0x07; /* close */
		write_seed(outdir, name, role ? "server" : "client", &o[role]);
		free(copy);
	}
	free(req);
	free(resp);
	free(chunks);
}

int main(int argc, char **argv)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s CAPTURE_DIR OUT_DIR\n", argv[0]);
		return 2;
	}
	d = opendir(argv[1]);
	if (!d) {
		perror(argv[1]);
		return 1;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char name[512];

		if (len < 8 || len >= sizeof(name) || strcmp(de->d_name + len - 7, ".chunks"))
			continue;
		memcpy(name, de->d_name, len - 7);
		name[len - 7] = 0;
		seeds_of(argv[1], argv[2], name);
		n++;
	}
	closedir(d);
	printf("mkcorpus: %d captures, %d seeds in %s\n", n, 2 * n, argv[2]);
	return n ? 0 : 1;
}
