// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `sonde run`: check the host, load and attach the socket tracer, then poll
 * the event channel and the connection map until told to stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sonde.h"
#include "socket_trace.skel.h"

#define BPFFS_MAGIC 0xcafe4a11
#define TRACEFS_MAGIC 0x74726163
#define DEBUGFS_MAGIC 0x64626720
#define PIN_DIR "/sys/fs/bpf/sonde"
#define SYS_BTF "/sys/kernel/btf/vmlinux"

static struct flows *flows; /* L4 flows (user/flow.c), NULL unless asked for */
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stats_requested;

static void on_stop(int sig) { (void)sig; stop_requested = 1; }
static void on_usr1(int sig) { (void)sig; stats_requested = 1; }

/* ---- libbpf output: kept, and shown only when it explains a failure ----- */

static char *libbpf_log;
static size_t libbpf_log_len, libbpf_log_cap;
static bool libbpf_verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	va_list copy;
	int n;

	if (!libbpf_verbose && level != LIBBPF_WARN)
		return 0;
	/* verifier logs arrive as one message of up to megabytes: size it first */
	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return 0;
	if (libbpf_log_len + n + 1 > libbpf_log_cap) {
		size_t cap = libbpf_log_cap ? libbpf_log_cap : 1 << 16;
		char *p;

		while (cap < libbpf_log_len + n + 1)
			cap *= 2;
		p = realloc(libbpf_log, cap);
		if (!p)
			return 0;
		libbpf_log = p;
		libbpf_log_cap = cap;
	}
	vsnprintf(libbpf_log + libbpf_log_len, n + 1, fmt, ap);
	if (libbpf_verbose)
		fputs(libbpf_log + libbpf_log_len, stderr);
	libbpf_log_len += n;
	return 0;
}

/* Save what libbpf and the verifier said, and name the rejected program. */
static void report_load_failure(const char *log_path, int err)
{
	const char *p = libbpf_log ? strstr(libbpf_log, "BPF program load failed") : NULL;
	char prog[64] = "?";
	FILE *f = fopen(log_path, "w");

	if (p) {
		const char *q = p;

		while (q > libbpf_log && q[-1] != '\n')
			q--;
		sscanf(q, "libbpf: prog '%63[^']'", prog);
	}
	if (f) {
		fputs(libbpf_log ? libbpf_log : "(libbpf said nothing)\n", f);
		fclose(f);
	}
	if (p)
		fprintf(stderr, "sonde: the kernel's verifier rejected program '%s' (%s); "
				"its log is in %s\n",
			prog, strerror(-err), f ? log_path : "(could not write the log file)");
	else
		fprintf(stderr, "sonde: loading the BPF programs failed: %s; libbpf's log is in %s\n",
			strerror(-err), f ? log_path : "(could not write the log file)");
}

/* ---- host checks -------------------------------------------------------- */

static int fs_is(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == magic;
}

static int check_kernel(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
	    (major < 4 || (major == 4 && minor < 14))) {
		fprintf(stderr, "sonde: kernel %s is older than 4.14, the oldest sonde supports\n",
			u.release);
		return -1;
	}
	return 0;
}

/* libbpf attaches tracepoints through tracefs (or debugfs/tracing). */
static int ensure_tracefs(void)
{
	if (fs_is("/sys/kernel/tracing", TRACEFS_MAGIC) ||
	    fs_is("/sys/kernel/debug/tracing", TRACEFS_MAGIC))
		return 0;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return 0;
	fprintf(stderr, "sonde: tracefs is not mounted and mounting it failed (%s): "
			"run 'mount -t tracefs nodev /sys/kernel/tracing'\n",
		strerror(errno));
	return -1;
}

static int ensure_bpffs(void)
{
	if (fs_is("/sys/fs/bpf", BPFFS_MAGIC))
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) == 0)
		return 0;
	fprintf(stderr, "sonde: --pin needs bpffs at /sys/fs/bpf and mounting it failed (%s): "
			"run 'mount -t bpf bpf /sys/fs/bpf'\n",
		strerror(errno));
	return -1;
}

static bool readable(const char *path)
{
	return access(path, R_OK) == 0;
}

/* Directory holding this executable, for the btf/ files shipped beside it. */
static void exe_dir(char *out, size_t n)
{
	ssize_t len = readlink("/proc/self/exe", out, n - 1);

	if (len <= 0) {
		snprintf(out, n, ".");
		return;
	}
	out[len] = 0;
	char *slash = strrchr(out, '/');
	if (slash)
		*slash = 0;
}

/*
 * Which BTF describes this kernel: the kernel's own, else --btf, else a file
 * named after the release in the btf/ directories sonde ships. NULL in *path
 * means "the kernel's own". Returns -1 with a message when there is none.
 */
static int find_btf(const struct run_opts *o, char *path, size_t n, const char **chosen)
{
	struct utsname u;
	char dir[512];
	const char *cands[] = { "%s/btf/%s.btf", "%s/../btf/%s.btf", "%s/../share/sonde/btf/%s.btf",
				"/usr/share/sonde/btf/%s%s.btf" };

	if (o->btf) {
		if (!readable(o->btf)) {
			fprintf(stderr, "sonde: --btf %s: %s\n", o->btf, strerror(errno));
			return -1;
		}
		*chosen = o->btf;
		return 0;
	}
	if (!o->no_sys_btf && readable(SYS_BTF)) {
		*chosen = NULL;
		return 0;
	}
	uname(&u);
	exe_dir(dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		if (i == 3)
			snprintf(path, n, cands[i], "", u.release);
		else
			snprintf(path, n, cands[i], dir, u.release);
		if (readable(path)) {
			*chosen = path;
			return 0;
		}
	}
	fprintf(stderr, "sonde: no BTF for kernel %s: %s is missing and no btf/%s.btf ships with "
			"sonde; generate one with scripts/gen-btf.sh (see docs/KERNELS.md) and pass "
			"--btf PATH\n",
		u.release, SYS_BTF, u.release);
	return -1;
}

/* ---- load and attach ---------------------------------------------------- */

struct tracer {
	struct socket_trace_bpf *skel;
	struct ring_buffer *rb;
	struct perf_buffer *pb;
	bool ringbuf;
	uint64_t perf_lost;
	int attached;
	int programs;
};

static void configure(struct socket_trace_bpf *skel, const struct run_opts *o, bool ringbuf)
{
	struct bpf_map *events = skel->maps.events;

	skel->rodata->self_tgid = getpid();
	skel->rodata->filter_tgid = o->pid;
	skel->rodata->n_filter_ports = o->n_ports;
	for (uint32_t i = 0; i < o->n_ports; i++)
		skel->rodata->filter_ports[i] = o->ports[i];
	skel->rodata->use_ringbuf = ringbuf;
	skel->rodata->log_mode = o->log_mode;
	skel->rodata->log_sample_n = o->log_sample_n;
	skel->rodata->route_normalise = !o->route_raw;
	bpf_map__set_max_entries(skel->maps.red, o->max_series);
	skel->rodata->max_series_per_proc = o->max_series_per_proc;
	skel->rodata->enabled_protos = o->enabled_protos;
	skel->rodata->n_proto_ports = o->n_proto_ports;
	for (uint32_t i = 0; i < o->n_proto_ports; i++) {
		skel->rodata->proto_port_port[i] = o->proto_port_port[i];
		skel->rodata->proto_port_proto[i] = o->proto_port_proto[i];
	}
	skel->rodata->ringbuf_wakeup_bytes = o->ring_bytes / 8;
	bpf_map__set_max_entries(skel->maps.conns, o->max_conns);
	if (ringbuf) {
		bpf_map__set_max_entries(events, o->ring_bytes);
	} else {
		bpf_map__set_type(events, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
		bpf_map__set_key_size(events, sizeof(__u32));
		bpf_map__set_value_size(events, sizeof(__u32));
		bpf_map__set_max_entries(events, libbpf_num_possible_cpus());
	}
	/* tail-call targets are reached from the probes, not attached */
	bpf_program__set_autoattach(skel->progs.feed_prog, false);
	bpf_program__set_autoattach(skel->progs.feed_event_prog, false);
}

/* Per-program verifier work (--verifier-stats), from log level 4 (stats). */
struct verifier_logs {
	char *buf[64];
	struct bpf_program *prog[64];
	int n;
};

static void verifier_stats_request(struct bpf_object *obj, struct verifier_logs *vl)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, obj) {
		if (vl->n >= 64)
			break;
		vl->buf[vl->n] = calloc(1, 1 << 16);
		if (!vl->buf[vl->n])
			break;
		bpf_program__set_log_buf(p, vl->buf[vl->n], 1 << 16);
		bpf_program__set_log_level(p, 4);
		vl->prog[vl->n++] = p;
	}
}

static void verifier_stats_print(struct verifier_logs *vl)
{
	for (int i = 0; i < vl->n; i++) {
		const char *s = vl->buf[i];
		const char *t = strstr(s, "verification time");
		const char *q = strstr(s, "processed ");
		long usec = -1, insns = -1;

		if (t)
			sscanf(t, "verification time %ld usec", &usec);
		if (q)
			sscanf(q, "processed %ld insns", &insns);
		fprintf(stderr, "verifier: prog=%s insns=%ld time_us=%ld\n",
			bpf_program__name(vl->prog[i]), insns, usec);
		free(vl->buf[i]);
	}
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct record_sink *sink = ctx;
	const struct sonde_l7_event *e = data;

	if (size < sizeof(*e) || e->kind != SONDE_EV_L7)
		return 0;
	sink_l7_event(sink, e);
	return 0;
}

static void handle_perf_event(void *ctx, int cpu, void *data, __u32 size)
{
	/* a perf sample's raw data is only 4-byte aligned (it follows a u32
	 * size): copy it before reading it as a struct with u64 fields */
	struct sonde_l7_event e;

	(void)cpu;
	if (size < sizeof(e))
		return;
	memcpy(&e, data, sizeof(e));
	handle_event(ctx, &e, sizeof(e));
}

static struct tracer *perf_owner;
static void handle_perf_lost(void *ctx, int cpu, __u64 lost)
{
	(void)ctx;
	(void)cpu;
	if (perf_owner)
		perf_owner->perf_lost += lost;
}

static int pin_maps(struct socket_trace_bpf *skel)
{
	struct bpf_map *maps[] = { skel->maps.conns, skel->maps.stats, skel->maps.inflight };
	char path[256];

	if (ensure_bpffs())
		return -1;
	mkdir(PIN_DIR, 0700);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), PIN_DIR "/%s", bpf_map__name(maps[i]));
		unlink(path);
		if (bpf_map__pin(maps[i], path)) {
			fprintf(stderr, "sonde: cannot pin %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void unpin_maps(struct socket_trace_bpf *skel)
{
	bpf_map__unpin(skel->maps.conns, NULL);
	bpf_map__unpin(skel->maps.stats, NULL);
	bpf_map__unpin(skel->maps.inflight, NULL);
	rmdir(PIN_DIR);
}

static int count_attached(struct socket_trace_bpf *skel, int *programs)
{
	struct bpf_program *p;
	int n = 0, total = 0;
	struct bpf_link **links = (struct bpf_link **)&skel->links;

	bpf_object__for_each_program(p, skel->obj) {
		if (!bpf_program__autoattach(p))
			continue;
		total++;
	}
	for (size_t i = 0; i < sizeof(skel->links) / sizeof(*links); i++)
		if (links[i])
			n++;
	*programs = total;
	return n;
}

static int tracer_open(struct tracer *t, const struct run_opts *o, struct record_sink *sink)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	struct verifier_logs vl = { 0 };
	char btf_path[512];
	const char *btf = NULL;
	bool ringbuf;
	int err;

	if (find_btf(o, btf_path, sizeof(btf_path), &btf))
		return -1;
	open_opts.btf_custom_path = btf;
	ringbuf = !o->force_perfbuf && libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;

	t->skel = socket_trace_bpf__open_opts(&open_opts);
	if (!t->skel) {
		fprintf(stderr, "sonde: cannot open the BPF object: %s\n", strerror(errno));
		return -1;
	}
	configure(t->skel, o, ringbuf);
	if (o->verifier_stats)
		verifier_stats_request(t->skel->obj, &vl);
	err = socket_trace_bpf__load(t->skel);
	if (o->verifier_stats)
		verifier_stats_print(&vl);
	if (err) {
		report_load_failure(o->verifier_log, err);
		return -1;
	}
	{
		/* the series that takes transactions once the metric map is full
		 * must exist before it fills */
		struct sonde_red_key ovf = { .method = SONDE_M_OVERFLOW };
		int ncpu = libbpf_num_possible_cpus();
		void *zero = calloc(ncpu > 0 ? ncpu : 1, sizeof(struct sonde_red_val));

		if (!zero || bpf_map_update_elem(bpf_map__fd(t->skel->maps.red), &ovf, zero,
						 BPF_NOEXIST)) {
			fprintf(stderr, "sonde: cannot prepare the metric map: %s\n", strerror(errno));
			free(zero);
			return -1;
		}
		free(zero);
	}
	err = socket_trace_bpf__attach(t->skel);
	if (err) {
		fprintf(stderr, "sonde: attaching the probes failed: %s; are syscall tracepoints "
				"(CONFIG_FTRACE_SYSCALLS) in this kernel?\n",
			strerror(-err));
		return -1;
	}
	t->attached = count_attached(t->skel, &t->programs);
	t->ringbuf = ringbuf;
	if (ringbuf) {
		t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), handle_event, sink, NULL);
		err = t->rb ? 0 : -errno;
	} else {
		perf_owner = t;
		t->pb = perf_buffer__new(bpf_map__fd(t->skel->maps.events), 64, handle_perf_event,
					 handle_perf_lost, sink, NULL);
		err = t->pb ? 0 : -errno;
	}
	if (err) {
		fprintf(stderr, "sonde: cannot open the event channel: %s\n", strerror(-err));
		return -1;
	}
	if (o->pin && pin_maps(t->skel))
		return -1;
	fprintf(stderr, "sonde: ready: %d/%d probes attached, events via %s, BTF %s\n", t->attached,
		t->programs, ringbuf ? "ring buffer" : "perf buffer", btf ? btf : SYS_BTF);
	return 0;
}

static void tracer_close(struct tracer *t, bool pinned)
{
	ring_buffer__free(t->rb);
	perf_buffer__free(t->pb);
	if (t->skel && pinned)
		unpin_maps(t->skel);
	socket_trace_bpf__destroy(t->skel);
}

/*
 * Wait up to timeout_ms for events or a scrape, then take every event waiting.
 * The kernel wakes us only when a batch is waiting (see ringbuf_wakeup_bytes);
 * whatever arrived since is taken when the wait times out, so a quiet host
 * still sees its records within timeout_ms. Returns 1 when prom_fd is ready.
 */
static int tracer_poll(struct tracer *t, int prom_fd, int timeout_ms)
{
	struct pollfd fds[2] = {
		{ .fd = t->rb ? ring_buffer__epoll_fd(t->rb) : perf_buffer__epoll_fd(t->pb),
		  .events = POLLIN },
		{ .fd = prom_fd, .events = POLLIN },
	};
	int n = poll(fds, prom_fd >= 0 ? 2 : 1, timeout_ms);

	if (n < 0 && errno != EINTR)
		return -errno;
	if (t->rb)
		n = ring_buffer__consume(t->rb);
	else
		n = perf_buffer__consume(t->pb);
	if (n < 0)
		return n;
	return prom_fd >= 0 && (fds[1].revents & POLLIN);
}

/* ---- profiler (profile.c) ------------------------------------------------ */

/* The profiler of this run, if --profile or --offcpu: its counters join the
 * stats line and /metrics. */
static struct profiler *run_profiler;

/* Open, load (verifier stats and failures reported as for the tracer) and
 * attach the profiling programs. */
static struct profiler *profiler_start(const struct run_opts *o, struct record_sink *sink)
{
	struct verifier_logs vl = { 0 };
	char btf_path[512];
	const char *btf = NULL;
	struct profiler *p;
	int err;

	if (find_btf(o, btf_path, sizeof(btf_path), &btf))
		return NULL;
	p = profiler_new(o, sink, btf);
	if (!p)
		return NULL;
	if (o->verifier_stats)
		verifier_stats_request(profiler_object(p), &vl);
	err = profiler_load(p);
	if (o->verifier_stats)
		verifier_stats_print(&vl);
	if (err) {
		report_load_failure(o->verifier_log, err);
		profiler_free(p);
		return NULL;
	}
	if (profiler_attach(p)) {
		profiler_free(p);
		return NULL;
	}
	return p;
}

/* ---- counters ----------------------------------------------------------- */

static const char *const stat_names[] = {
	"syscalls_traced", "events_sent", "events_dropped", "conns_created", "conns_closed",
	"parse_lost", "parse_budget", "pipeline_overflow", "unpaired_responses",
	"iov_truncated", "closed_pending", "metric_overflow", "logs_suppressed",
	"requests_abandoned", "metric_proc_overflow", "inflight_replaced",
};

_Static_assert(sizeof(stat_names) / sizeof(stat_names[0]) ==
		       sizeof(struct sonde_stats) / sizeof(__u64),
	       "every counter in struct sonde_stats has a name");

#define N_STATS (sizeof(struct sonde_stats) / sizeof(__u64))

/* The kernel's counters summed over CPUs, perf buffer losses included. */
static void read_stats(struct tracer *t, __u64 *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sonde_stats *per = calloc(ncpu > 0 ? ncpu : 1, sizeof(*per));
	__u32 zero = 0;

	memset(sum, 0, N_STATS * sizeof(*sum));
	if (per && ncpu > 0 &&
	    bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stats), &zero, per) == 0) {
		for (int c = 0; c < ncpu; c++)
			for (size_t i = 0; i < N_STATS; i++)
				sum[i] += ((__u64 *)&per[c])[i];
	}
	free(per);
	sum[2] += t->perf_lost; /* events_dropped */
}

/* LRU evictions are not visible one by one: every state created and not freed
 * by close is either still live or was evicted. */
static uint64_t evicted(const __u64 *sum, uint64_t live)
{
	return sum[3] > sum[4] + live ? sum[3] - sum[4] - live : 0;
}

static void print_stats(struct tracer *t, const struct record_sink *sink, uint64_t timeouts,
			uint64_t live)
{
	__u64 sum[N_STATS];

	read_stats(t, sum);
	fprintf(stderr, "sonde: stats {");
	for (size_t i = 0; i < N_STATS; i++)
		fprintf(stderr, "\"%s\":%llu,", stat_names[i], (unsigned long long)sum[i]);
	fprintf(stderr, "\"conns_live\":%" PRIu64 ",\"conns_evicted\":%" PRIu64
			",\"records\":%" PRIu64 ",\"timeouts_reported\":%" PRIu64
			",\"record_write_errors\":%" PRIu64,
		live, evicted(sum, live), sink->records, timeouts, sink->write_errors);
	flows_stats_json(flows, stderr);
	profiler_stats_json(run_profiler, stderr);
	fputs("}\n", stderr);
}

/* What /metrics says about sonde itself. */
struct health {
	struct tracer *t;
	struct metrics *m;
	const struct run_opts *o;
	uint64_t *live;
};

static void write_health(FILE *f, void *arg)
{
	struct health *h = arg;
	__u64 sum[N_STATS];

	read_stats(h->t, sum);
	for (size_t i = 0; i < N_STATS; i++)
		fprintf(f, "# TYPE sonde_%s_total counter\nsonde_%s_total %llu\n", stat_names[i],
			stat_names[i], (unsigned long long)sum[i]);
	fprintf(f, "# HELP sonde_conns_tracked Connection states in the kernel map.\n"
		   "# TYPE sonde_conns_tracked gauge\nsonde_conns_tracked %" PRIu64 "\n"
		   "# TYPE sonde_conns_limit gauge\nsonde_conns_limit %u\n"
		   "# TYPE sonde_conns_evicted_total counter\nsonde_conns_evicted_total %" PRIu64 "\n"
		   "# HELP sonde_metric_series Metric series in the kernel map.\n"
		   "# TYPE sonde_metric_series gauge\nsonde_metric_series %d\n"
		   "# TYPE sonde_metric_series_limit gauge\nsonde_metric_series_limit %u\n"
		   "# HELP sonde_probes_attached Probes attached, of sonde_probes.\n"
		   "# TYPE sonde_probes_attached gauge\nsonde_probes_attached %d\n"
		   "# TYPE sonde_probes gauge\nsonde_probes %d\n",
		*h->live, h->o->max_conns, evicted(sum, *h->live), metrics_series(h->m),
		h->o->max_series, h->t->attached, h->t->programs);
	flows_write_prometheus(flows, f);
	profiler_write_health(run_profiler, f);
}

/* ---- run ---------------------------------------------------------------- */

static void install_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cmd_run(const struct run_opts *o)
{
	struct record_sink sink = { .json = o->json, .quiet = o->quiet };
	struct tracer t = { 0 };
	uint64_t start, next_sweep, timeouts = 0, live = 0;
	struct metrics *metrics = NULL;
	struct top *top = NULL;
	struct health health;
	int prom_fd = -1;
	int rc = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "sonde: needs root (it loads BPF programs into the kernel): "
				"run it with sudo\n");
		return 1;
	}
	if (check_kernel() || ensure_tracefs())
		return 1;
	if (o->output) {
		sink.out = fopen(o->output, "wb");
		if (!sink.out) {
			fprintf(stderr, "sonde: cannot write %s: %s\n", o->output, strerror(errno));
			return 1;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_verbose = getenv("SONDE_DEBUG") != NULL;
	libbpf_set_print(libbpf_print);
	install_signals();
	sink.realtime_offset_ns = realtime_ns() - mono_ns();

	/* flows first: "ready" (printed by tracer_open) means everything is attached */
	if (flows_wanted(o) && !(flows = flows_open(o))) {
		rc = 1;
		goto out;
	}
	/* before the tracer, so that "ready" means the profiler is attached too */
	if (o->profile || o->offcpu) {
		run_profiler = profiler_start(o, &sink);
		if (!run_profiler) {
			rc = 1;
			goto out;
		}
	}
	if (tracer_open(&t, o, &sink)) {
		rc = 1;
		goto out;
	}
	metrics = metrics_new(bpf_map__fd(t.skel->maps.red), o);
	if (metrics && o->max_series_per_proc)
		metrics_set_proc_map(metrics, bpf_map__fd(t.skel->maps.proc_series));
	if (!metrics) {
		fprintf(stderr, "sonde: out of memory for %u metric series\n", o->max_series);
		rc = 1;
		goto out;
	}
	if (o->metrics_listen[0]) {
		prom_fd = prom_listen(o->metrics_listen);
		if (prom_fd < 0) {
			rc = 1;
			goto out;
		}
	}
	if (o->top) {
		top = top_new();
		if (!top) {
			rc = 1;
			goto out;
		}
		sink.on_metric = top_on_metric;
		sink.on_metric_arg = top;
	}
	health = (struct health){ .t = &t, .m = metrics, .o = o, .live = &live };
	start = mono_ns();
	next_sweep = start + 1000000000ull;
	while (!stop_requested) {
		uint64_t now;
		int n = tracer_poll(&t, prom_fd, 100);

		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "sonde: polling events failed: %s\n", strerror(-n));
			rc = 1;
			break;
		}
		if (n > 0)
			prom_serve_one(prom_fd, metrics, write_health, &health);
		now = mono_ns();
		if (now >= next_sweep) {
			live = 0;
			timeouts += sweep_timeouts(bpf_map__fd(t.skel->maps.conns),
						   (uint64_t)(o->timeout_s * 1e9), o, &sink, metrics,
						   &live);
			metrics_poll(metrics, &sink, now);
			if (flows)
				flows_poll(flows, &sink, now);
			profiler_tick(run_profiler, now);
			if (top && top_render(top))
				break;
			next_sweep = now + 1000000000ull;
			if (sink.out)
				fflush(sink.out);
		}
		if (stats_requested) {
			stats_requested = 0;
			live = 0;
			sweep_timeouts(bpf_map__fd(t.skel->maps.conns), UINT64_MAX, o, &sink, metrics,
				       &live);
			print_stats(&t, &sink, timeouts, live);
		}
		if (o->duration_s > 0 && now - start >= (uint64_t)(o->duration_s * 1e9))
			break;
	}
	/* drain what the kernel already sent before detaching */
	if (t.rb)
		ring_buffer__consume(t.rb);
	else if (t.pb)
		perf_buffer__consume(t.pb);
	/* count the live states once more for the final figures (an infinite
	 * timeout reports nothing) */
	live = 0;
	sweep_timeouts(bpf_map__fd(t.skel->maps.conns), UINT64_MAX, o, &sink, metrics, &live);
	/* the last partial second of metrics */
	metrics_poll(metrics, &sink, mono_ns());
	flows_finish(flows, &sink);
	/* the last, partial profile interval */
	profiler_finish(run_profiler);
	print_stats(&t, &sink, timeouts, live);
out:
	if (prom_fd >= 0)
		close(prom_fd);
	metrics_free(metrics);
	top_free(top);
	tracer_close(&t, o->pin);
	flows_close(flows);
	flows = NULL;
	profiler_free(run_profiler);
	run_profiler = NULL;
	if (sink.out && fclose(sink.out)) {
		fprintf(stderr, "sonde: writing %s failed: %s\n", o->output, strerror(errno));
		rc = 1;
	}
	free(libbpf_log);
	return rc;
}
