// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* `sonde run` options. getopt_long takes `--opt value` and `--opt=value` alike. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "sonde.h"

enum {
	OPT_DURATION = 256, OPT_JSON, OPT_QUIET, OPT_OUTPUT, OPT_PID, OPT_PORT, OPT_PIN,
	OPT_FORCE_PERFBUF, OPT_BTF, OPT_NO_SYS_BTF, OPT_TIMEOUT, OPT_RING_SIZE, OPT_MAX_CONNS,
	OPT_VERIFIER_STATS, OPT_VERIFIER_LOG, OPT_LOGS, OPT_METRICS_LISTEN, OPT_ROUTE_NORMALIZE,
	OPT_MAX_SERIES, OPT_METRIC_IDLE, OPT_HELP, OPT_MAX_SERIES_PROC, OPT_PROTOCOLS,
	OPT_PROTO_PORT,
	OPT_FLOWS, OPT_FLOW_IF, OPT_FLOW_MIRROR, OPT_FLOW_MAX, OPT_FLOW_METERS, OPT_FLOW_TIMEOUTS,
	OPT_FLOW_NO_TC,
	OPT_PROFILE, OPT_PROFILE_HZ, OPT_PROFILE_INTERVAL, OPT_OFFCPU, OPT_OFFCPU_MIN_US,
	OPT_PROFILE_DIR, OPT_PROFILE_STACKS, OPT_PROFILE_ENTRIES,
};

static const struct option run_options[] = {
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "pin", no_argument, NULL, OPT_PIN },
	{ "force-perfbuf", no_argument, NULL, OPT_FORCE_PERFBUF },
	{ "btf", required_argument, NULL, OPT_BTF },
	{ "no-sys-btf", no_argument, NULL, OPT_NO_SYS_BTF },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "verifier-stats", no_argument, NULL, OPT_VERIFIER_STATS },
	{ "verifier-log", required_argument, NULL, OPT_VERIFIER_LOG },
	{ "logs", required_argument, NULL, OPT_LOGS },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "route-normalize", required_argument, NULL, OPT_ROUTE_NORMALIZE },
	{ "max-series", required_argument, NULL, OPT_MAX_SERIES },
	{ "max-series-per-process", required_argument, NULL, OPT_MAX_SERIES_PROC },
	{ "protocols", required_argument, NULL, OPT_PROTOCOLS },
	{ "proto-port", required_argument, NULL, OPT_PROTO_PORT },
	{ "metric-idle", required_argument, NULL, OPT_METRIC_IDLE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "flows", no_argument, NULL, OPT_FLOWS },
	{ "flow-if", required_argument, NULL, OPT_FLOW_IF },
	{ "flow-mirror", required_argument, NULL, OPT_FLOW_MIRROR },
	{ "flow-max", required_argument, NULL, OPT_FLOW_MAX },
	{ "flow-meters", required_argument, NULL, OPT_FLOW_METERS },
	{ "flow-timeouts", required_argument, NULL, OPT_FLOW_TIMEOUTS },
	{ "flow-no-tc", no_argument, NULL, OPT_FLOW_NO_TC },
	{ "profile", no_argument, NULL, OPT_PROFILE },
	{ "profile-hz", required_argument, NULL, OPT_PROFILE_HZ },
	{ "profile-interval", required_argument, NULL, OPT_PROFILE_INTERVAL },
	{ "offcpu", no_argument, NULL, OPT_OFFCPU },
	{ "offcpu-min-us", required_argument, NULL, OPT_OFFCPU_MIN_US },
	{ "profile-dir", required_argument, NULL, OPT_PROFILE_DIR },
	{ "profile-stacks", required_argument, NULL, OPT_PROFILE_STACKS },
	{ "profile-entries", required_argument, NULL, OPT_PROFILE_ENTRIES },
	{ 0 },
};

static void run_usage(FILE *f)
{
	fputs("usage: sonde run [options]\n"
	      "  --duration SECONDS   stop after this long (default: until SIGINT/SIGTERM)\n"
	      "  --json               one JSON object per record on stdout\n"
	      "  --quiet              nothing per record on stdout\n"
	      "  --output PATH        also write records to PATH (length-delimited protobuf)\n"
	      "  --pid PID            trace only this process\n"
	      "  --port P[,P...]      trace only connections with one of these ports (up to 8)\n"
	      "  --pin                pin maps under /sys/fs/bpf/sonde for bpftool\n"
	      "  --force-perfbuf      use the perf buffer even where a ring buffer exists\n"
	      "  --btf PATH           kernel BTF to use (for kernels without /sys/kernel/btf)\n"
	      "  --no-sys-btf         ignore /sys/kernel/btf/vmlinux\n"
	      "  --timeout SECONDS    report requests unanswered this long (default 10)\n"
	      "  --ring-size BYTES    ring buffer size, a power of 2 (default 8388608)\n"
	      "  --max-conns N        connections tracked at once (default 65536)\n"
	      "  --verifier-stats     print each program's verifier work on stderr\n"
	      "  --verifier-log PATH  where to save the log of a rejected program\n"
	      "                       (default /tmp/sonde-verifier.log)\n"
	      "  --logs MODE          request records: all (default), errors, sampled:N, none;\n"
	      "                       metrics count every request whatever the mode\n"
	      "  --metrics-listen A:P serve Prometheus /metrics on A:P (default 127.0.0.1:9433;\n"
	      "                       'off' to disable)\n"
	      "  --route-normalize on|off  numeric and uuid path segments to :num/:id in\n"
	      "                       metric routes (default on)\n"
	      "  --max-series N       metric series the kernel keeps (default 16384)\n"
	      "  --protocols LIST     protocols to recognise, e.g. http,redis,dns (default all:\n"
	      "                       http redis pgsql mysql memcached dns mqtt kafka mongodb http2)\n"
	      "  --proto-port P=PORT[,P=PORT...]  connections on PORT are only tried as P\n"
	      "                       (e.g. dns=5353,redis=6380; at most 8)\n"
	      "  --max-series-per-process N  series one process may have before its own\n"
	      "                       overflow series takes the rest (default 2048, 0 = no limit)\n"
	      "  --metric-idle SECONDS  forget series idle this long (default 600)\n"
	      "flows (off unless --flows, --flow-if or --flow-mirror; docs/FLOWS.md):\n"
	      "  --flows              track L4 flows on every non-virtual interface and lo\n"
	      "  --flow-if IF[,IF...] track flows with TC on these interfaces (lo: egress only)\n"
	      "  --flow-mirror IF[,IF...]  track flows seen on these mirror/SPAN ports\n"
	      "                       (AF_PACKET socket filter, promiscuous)\n"
	      "  --flow-max N         flows tracked at once (default 65536)\n"
	      "  --flow-meters on|off 1 s and 60 s flow meter records (default on)\n"
	      "  --flow-timeouts K=S[,K=S...]  closed=2 syn=5 fin=30 tcp=300 udp=30 icmp=10\n"
	      "  --flow-no-tc         use the packet-socket fallback instead of TC (--flow-if)\n"
	      "  --profile            on-CPU profiles: stack samples on every CPU\n"
	      "  --profile-hz N       samples per second per CPU (default 99)\n"
	      "  --profile-interval SECONDS  write a profile this often (default 60)\n"
	      "  --offcpu             off-CPU profiles: time blocked per stack\n"
	      "  --offcpu-min-us N    ignore blocked periods shorter than this (default 1000)\n"
	      "  --profile-dir DIR    where the .pb.gz (pprof) and .folded files go\n"
	      "                       (default /var/lib/sonde/profiles)\n"
	      "  --profile-stacks N   distinct stacks kept per interval (default 16384)\n"
	      "  --profile-entries N  (thread, stack) counters per interval (default 16384)\n",
	      f);
}

static int parse_number(const char *opt, const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "sonde: --%s wants a number between %g and %g, not '%s'\n", opt,
			min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_ports(const char *s, struct run_opts *o)
{
	char buf[256];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		double v;

		if (o->n_ports >= SONDE_MAX_PORT_FILTERS) {
			fprintf(stderr, "sonde: --port takes at most %d ports\n",
				SONDE_MAX_PORT_FILTERS);
			return -1;
		}
		if (parse_number("port", tok, 1, 65535, &v))
			return -1;
		o->ports[o->n_ports++] = (uint16_t)v;
	}
	return 0;
}

/* --logs all|errors|none|sampled:N */
static int parse_logs(const char *s, struct run_opts *o)
{
	double n;

	if (!strcmp(s, "all"))
		o->log_mode = 0;
	else if (!strcmp(s, "errors"))
		o->log_mode = 1;
	else if (!strcmp(s, "none"))
		o->log_mode = 3;
	else if (!strncmp(s, "sampled:", 8) && !parse_number("logs sampled", s + 8, 1, 1e9, &n)) {
		o->log_mode = 2;
		o->log_sample_n = (uint32_t)n;
	} else {
		fprintf(stderr, "sonde: --logs takes all, errors, none or sampled:N, not '%s'\n", s);
		return -1;
	}
	return 0;
}

/* A protocol's name ("http", "redis" ...) to its enum sonde_proto; 0 if unknown. */
static int proto_by_name(const char *name, size_t len)
{
	for (int p = 1; p < SONDE_PROTO__COUNT; p++) {
		const char *n = proto_name(p);

		if (n[0] && strlen(n) == len && !strncmp(n, name, len))
			return p;
	}
	return 0;
}

/* --protocols http,redis,...: only these are recognised. */
static int parse_protocols(const char *arg, struct run_opts *o)
{
	const char *p = arg;

	if (!strcmp(arg, "all")) {
		o->enabled_protos = ~0u;
		return 0;
	}
	o->enabled_protos = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		int id = proto_by_name(p, len);

		if (!id) {
			fprintf(stderr, "sonde: --protocols: unknown protocol '%.*s' (known: http redis "
					"pgsql mysql memcached dns mqtt kafka mongodb http2)\n",
				(int)len, p);
			return -1;
		}
		o->enabled_protos |= 1u << id;
		p += len + (p[len] == ',');
	}
	return 0;
}

/* --proto-port dns=5353,redis=6380 */
static int parse_proto_ports(const char *arg, struct run_opts *o)
{
	const char *p = arg;

	while (*p) {
		size_t len = strcspn(p, ","), nlen = strcspn(p, "=");
		char *end;
		long port;
		int id;

		if (nlen >= len) {
			fprintf(stderr, "sonde: --proto-port wants PROTOCOL=PORT, got '%.*s'\n",
				(int)len, p);
			return -1;
		}
		id = proto_by_name(p, nlen);
		port = strtol(p + nlen + 1, &end, 10);
		if (!id || end != p + len || port < 1 || port > 65535) {
			fprintf(stderr, "sonde: --proto-port: '%.*s' is not PROTOCOL=PORT with a known "
					"protocol and a port 1-65535\n",
				(int)len, p);
			return -1;
		}
		if (o->n_proto_ports >= SONDE_MAX_PROTO_PORTS) {
			fprintf(stderr, "sonde: --proto-port: at most %d hints\n",
				SONDE_MAX_PROTO_PORTS);
			return -1;
		}
		o->proto_port_port[o->n_proto_ports] = port;
		o->proto_port_proto[o->n_proto_ports] = id;
		o->n_proto_ports++;
		p += len + (p[len] == ',');
	}
	return 0;
}

int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	double v;
	int c;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 10;
	o->ring_bytes = 8u << 20;
	o->max_conns = 65536;
	o->verifier_log = "/tmp/sonde-verifier.log";
	o->log_sample_n = 1;
	o->metrics_listen = "127.0.0.1:9433";
	o->max_series = 16384;
	o->max_series_per_proc = 2048;
	o->enabled_protos = ~0u;
	o->metric_idle_s = 600;
	o->flow_max = 65536;
	o->flow_meters = true;
	parse_flow_timeouts("closed=2,syn=5,fin=30,tcp=300,udp=30,icmp=10", o);
	o->profile_hz = 99;
	o->profile_interval_s = 60;
	o->offcpu_min_us = 1000;
	o->profile_dir = "/var/lib/sonde/profiles";
	o->profile_stacks = 16384;
	o->profile_entries = 16384;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", run_options, NULL)) != -1) {
		switch (c) {
		case OPT_DURATION:
			if (parse_number("duration", optarg, 0, 1e9, &o->duration_s))
				return -1;
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_QUIET: o->quiet = true; break;
		case OPT_OUTPUT: o->output = optarg; break;
		case OPT_PID:
			if (parse_number("pid", optarg, 1, 4194304, &v))
				return -1;
			o->pid = (uint32_t)v;
			break;
		case OPT_PORT:
			if (parse_ports(optarg, o))
				return -1;
			break;
		case OPT_PIN: o->pin = true; break;
		case OPT_FORCE_PERFBUF: o->force_perfbuf = true; break;
		case OPT_BTF: o->btf = optarg; break;
		case OPT_NO_SYS_BTF: o->no_sys_btf = true; break;
		case OPT_TIMEOUT:
			if (parse_number("timeout", optarg, 0.001, 86400, &o->timeout_s))
				return -1;
			break;
		case OPT_RING_SIZE:
			if (parse_number("ring-size", optarg, 4096, 1u << 30, &v))
				return -1;
			o->ring_bytes = (uint32_t)v;
			if (o->ring_bytes & (o->ring_bytes - 1)) {
				fprintf(stderr, "sonde: --ring-size must be a power of 2\n");
				return -1;
			}
			break;
		case OPT_MAX_CONNS:
			if (parse_number("max-conns", optarg, 64, 1 << 24, &v))
				return -1;
			o->max_conns = (uint32_t)v;
			break;
		case OPT_VERIFIER_STATS: o->verifier_stats = true; break;
		case OPT_VERIFIER_LOG: o->verifier_log = optarg; break;
		case OPT_LOGS:
			if (parse_logs(optarg, o))
				return -1;
			break;
		case OPT_METRICS_LISTEN:
			o->metrics_listen = strcmp(optarg, "off") ? optarg : "";
			break;
		case OPT_ROUTE_NORMALIZE:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "sonde: --route-normalize takes on or off\n");
				return -1;
			}
			o->route_raw = !strcmp(optarg, "off");
			break;
		case OPT_MAX_SERIES:
			if (parse_number("max-series", optarg, 16, 1 << 20, &v))
				return -1;
			o->max_series = (uint32_t)v;
			break;
		case OPT_PROTOCOLS:
			if (parse_protocols(optarg, o))
				return -1;
			break;
		case OPT_PROTO_PORT:
			if (parse_proto_ports(optarg, o))
				return -1;
			break;
		case OPT_MAX_SERIES_PROC:
			if (parse_number("max-series-per-process", optarg, 0, 1 << 20, &v))
				return -1;
			o->max_series_per_proc = (uint32_t)v;
			break;
		case OPT_METRIC_IDLE:
			if (parse_number("metric-idle", optarg, 0, 1e7, &v))
				return -1;
			o->metric_idle_s = (uint32_t)v;
			break;
		case OPT_FLOWS: o->flows = true; break;
		case OPT_FLOW_IF: o->flow_if = optarg; break;
		case OPT_FLOW_MIRROR: o->flow_mirror = optarg; break;
		case OPT_FLOW_MAX:
			if (parse_number("flow-max", optarg, 64, 1 << 24, &v))
				return -1;
			o->flow_max = (uint32_t)v;
			break;
		case OPT_FLOW_METERS:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "sonde: --flow-meters takes on or off\n");
				return -1;
			}
			o->flow_meters = !strcmp(optarg, "on");
			break;
		case OPT_FLOW_NO_TC: o->flow_no_tc = true; break;
		case OPT_FLOW_TIMEOUTS:
			if (parse_flow_timeouts(optarg, o))
				return -1;
			break;
		case OPT_PROFILE: o->profile = true; break;
		case OPT_PROFILE_HZ:
			if (parse_number("profile-hz", optarg, 1, 100000, &v))
				return -1;
			o->profile_hz = (uint32_t)v;
			break;
		case OPT_PROFILE_INTERVAL:
			if (parse_number("profile-interval", optarg, 1, 86400, &o->profile_interval_s))
				return -1;
			break;
		case OPT_OFFCPU: o->offcpu = true; break;
		case OPT_OFFCPU_MIN_US:
			if (parse_number("offcpu-min-us", optarg, 0, 1e9, &v))
				return -1;
			o->offcpu_min_us = (uint32_t)v;
			break;
		case OPT_PROFILE_DIR: o->profile_dir = optarg; break;
		case OPT_PROFILE_STACKS:
			if (parse_number("profile-stacks", optarg, 64, 1 << 20, &v))
				return -1;
			o->profile_stacks = (uint32_t)v;
			break;
		case OPT_PROFILE_ENTRIES:
			if (parse_number("profile-entries", optarg, 64, 1 << 22, &v))
				return -1;
			o->profile_entries = (uint32_t)v;
			break;
		case OPT_HELP:
			run_usage(stdout);
			exit(0);
		default:
			run_usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sonde: unexpected argument '%s'\n", argv[optind]);
		run_usage(stderr);
		return -1;
	}
	return 0;
}
