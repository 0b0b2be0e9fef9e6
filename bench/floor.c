// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Loader for the floor: attaches every program of floor.bpf.o (embedded as a
 * skeleton), prints "ready" on stderr, and waits for SIGINT/SIGTERM.
 *   usage: floor [--list]    (--list: print the attached hooks and exit)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "floor.skel.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int quiet_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	int list_only = argc > 1 && strcmp(argv[1], "--list") == 0;
	struct floor_bpf *skel;
	struct bpf_program *prog;
	int n = 0;

	libbpf_set_print(quiet_print);
	if (list_only) {
		struct bpf_object_open_opts o = { .sz = sizeof(o) };
		skel = floor_bpf__open_opts(&o);
		if (!skel)
			return 1;
		bpf_object__for_each_program(prog, skel->obj)
			printf("%s\n", bpf_program__section_name(prog));
		floor_bpf__destroy(skel);
		return 0;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "floor: open/load failed: %s\n", strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		struct bpf_link *l = bpf_program__attach(prog);
		if (!l) {
			fprintf(stderr, "floor: attach %s failed: %s\n",
				bpf_program__section_name(prog), strerror(errno));
			floor_bpf__destroy(skel);
			return 1;
		}
		/* links are owned by us until exit; the kernel detaches them
		 * when the process closes their fds */
		n++;
	}
	fprintf(stderr, "floor: %d empty programs attached\nready\n", n);

	while (!stop)
		pause();
	floor_bpf__destroy(skel);
	fprintf(stderr, "floor: detached\n");
	return 0;
}
