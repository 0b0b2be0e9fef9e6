// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* sonde: zero-code observability collector. Subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "sonde.h"

#ifndef SONDE_VERSION
#define SONDE_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fputs("usage: sonde <command> [options]\n"
	      "  run [options]     collect until interrupted (sonde run --help for options)\n"
	      "  top [options]     live table of services by request rate (run's options)\n"
	      "  decode PATH       print every record of a record file as a JSON line\n"
	      "  version           print the version\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "run")) {
		struct run_opts o;

		if (parse_run_opts(argc - 1, argv + 1, &o))
			return 2;
		return cmd_run(&o);
	}
	if (!strcmp(argv[1], "top")) {
		struct run_opts o;

		if (parse_run_opts(argc - 1, argv + 1, &o))
			return 2;
		/* metrics only: the table is built from the kernel's series */
		o.top = true;
		o.log_mode = 3;
		o.quiet = true;
		return cmd_run(&o);
	}
	if (!strcmp(argv[1], "decode")) {
		if (argc != 3) {
			fprintf(stderr, "usage: sonde decode PATH\n");
			return 2;
		}
		return cmd_decode(argv[2]);
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("sonde %s\n", SONDE_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sonde: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
