// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The profiler's user side: load bpf/profile.bpf.c, open a cpu-clock perf
 * event per online CPU, and once per --profile-interval close the kernel's
 * generation of counts (see the comment at the top of profile.bpf.c), name
 * the frames (symbolize.c) and write the interval three ways:
 *   - records in the record stream (one per process, thread and stack),
 *   - <dir>/<kind>-<UTC time>-<seq>.pb.gz, a gzip-compressed pprof profile,
 *   - <dir>/<kind>-<UTC time>-<seq>.folded, folded stacks for flame graphs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "profile.h"
#include "profile.skel.h"
#include "sonde.h"

#define SYMCACHE_BUDGET (64u << 20)

struct entry {
	struct sonde_prof_key k;
	struct sonde_prof_val v;
};

struct profiler {
	const struct run_opts *o;
	struct record_sink *sink;
	struct profile_bpf *skel;
	const char *btf;
	struct ring_buffer *rb;
	struct symbolizer *sym;
	int ncpus;                 /* possible CPUs */
	int *pe_fd;                /* per CPU: the perf event, -1 when none */
	struct bpf_link **pe_link;
	struct bpf_link *links[4]; /* off-CPU switch and wake-up, exec, exit */
	/* New processes are read by a thread of their own: the main loop can be
	 * busy naming an interval for hundreds of milliseconds, long enough for
	 * a short-lived process to exit unread. `lock` guards the symbolizer. */
	pthread_t noter;
	bool noter_running;
	volatile bool noter_stop;
	pthread_mutex_t lock;
	uint64_t epoch;
	uint64_t win_mono, win_real; /* start of the open interval */
	uint64_t next_flush;
	uint64_t seq;
	/* counters for the stats line */
	uint64_t intervals, files_written, write_errors, stacks_missing, cpus_attached,
		cpus_added, cpus_removed, attach_errors, pids_noted, stacks_expired;
};

/* ---- perf events per CPU ------------------------------------------------ */

/* "0-3,5" -> online[0..ncpus) */
static int read_online(bool *online, int ncpus)
{
	char buf[1024], *p = buf;
	int fd = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	memset(online, 0, ncpus * sizeof(*online));
	while (*p && *p != '\n') {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p)
			return -EINVAL;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long c = a; c <= b && c < ncpus; c++)
			online[c] = true;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static int attach_cpu(struct profiler *p, int cpu)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = p->o->profile_hz,
	};
	int fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	struct bpf_link *link;

	if (fd < 0)
		return -errno;
	link = bpf_program__attach_perf_event(p->skel->progs.on_cpu_sample, fd);
	if (!link) {
		int err = -errno;

		close(fd);
		return err;
	}
	p->pe_fd[cpu] = fd;
	p->pe_link[cpu] = link;
	return 0;
}

static void detach_cpu(struct profiler *p, int cpu)
{
	bpf_link__destroy(p->pe_link[cpu]);
	close(p->pe_fd[cpu]);
	p->pe_link[cpu] = NULL;
	p->pe_fd[cpu] = -1;
}

/* Attach to CPUs that came online, detach from those that went away (a per-CPU
 * event does not come back by itself when its CPU does). */
static int sync_cpus(struct profiler *p, bool first)
{
	bool online[p->ncpus];
	int err = read_online(online, p->ncpus);

	if (err)
		return err;
	for (int c = 0; c < p->ncpus; c++) {
		if (online[c] && p->pe_fd[c] < 0) {
			err = attach_cpu(p, c);
			if (err) {
				p->attach_errors++;
				if (first)
					return err;
				continue;
			}
			p->cpus_attached++;
			if (!first)
				p->cpus_added++;
		} else if (!online[c] && p->pe_fd[c] >= 0) {
			detach_cpu(p, c);
			p->cpus_attached--;
			p->cpus_removed++;
		}
	}
	return 0;
}

/* ---- open / load / attach ------------------------------------------------- */

static int on_pid_event(void *ctx, void *data, size_t size)
{
	struct profiler *p = ctx;
	const struct sonde_prof_pid_event *e = data;

	if (size < sizeof(*e) || e->kind != SONDE_EV_PROF_PID)
		return 0;
	pthread_mutex_lock(&p->lock);
	p->pids_noted++;
	sym_note_pid(p->sym, e->pid);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The noter thread: new-process notices, and their second reading. */
static void *noter_main(void *arg)
{
	struct profiler *p = arg;

	while (!p->noter_stop) {
		ring_buffer__poll(p->rb, 20);
		pthread_mutex_lock(&p->lock);
		sym_poll(p->sym);
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

struct profiler *profiler_new(const struct run_opts *o, struct record_sink *sink, const char *btf)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	struct profiler *p;

	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) != 1) {
		fprintf(stderr, "sonde: profiling needs the BPF ring buffer (kernel 5.8 or later); "
				"run without --profile/--offcpu on this kernel\n");
		return NULL;
	}
	if (mkdir(o->profile_dir, 0755) && errno != EEXIST) {
		/* one level of parents, for the default /var/lib/sonde/profiles */
		char parent[4096], *slash;

		snprintf(parent, sizeof(parent), "%s", o->profile_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = 0;
			mkdir(parent, 0755);
		}
		mkdir(o->profile_dir, 0755);
	}
	if (access(o->profile_dir, W_OK)) {
		fprintf(stderr, "sonde: cannot write profiles to %s: %s; pass --profile-dir DIR\n",
			o->profile_dir, strerror(errno));
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->o = o;
	p->sink = sink;
	pthread_mutex_init(&p->lock, NULL);
	p->btf = btf;
	p->ncpus = libbpf_num_possible_cpus();
	p->pe_fd = malloc(p->ncpus * sizeof(*p->pe_fd));
	p->pe_link = calloc(p->ncpus, sizeof(*p->pe_link));
	for (int c = 0; p->pe_fd && c < p->ncpus; c++)
		p->pe_fd[c] = -1;
	p->sym = sym_new(SYMCACHE_BUDGET);
	if (!p->pe_fd || !p->pe_link || !p->sym)
		goto fail;
	open_opts.btf_custom_path = btf;
	p->skel = profile_bpf__open_opts(&open_opts);
	if (!p->skel) {
		fprintf(stderr, "sonde: cannot open the profiling BPF object: %s\n", strerror(errno));
		goto fail;
	}
	p->skel->rodata->filter_tgid = o->pid;
	p->skel->rodata->offcpu_min_ns = (uint64_t)o->offcpu_min_us * 1000;
	bpf_map__set_max_entries(p->skel->maps.stacks0, o->profile_stacks);
	bpf_map__set_max_entries(p->skel->maps.stacks1, o->profile_stacks);
	bpf_map__set_max_entries(p->skel->maps.stacks2, o->profile_stacks);
	bpf_map__set_max_entries(p->skel->maps.counts0, o->profile_entries);
	bpf_map__set_max_entries(p->skel->maps.counts1, o->profile_entries);
	bpf_program__set_autoload(p->skel->progs.on_cpu_sample, o->profile);
	bpf_program__set_autoload(p->skel->progs.off_cpu_switch, o->offcpu);
	bpf_program__set_autoload(p->skel->progs.off_cpu_wakeup, o->offcpu);
	return p;
fail:
	profiler_free(p);
	return NULL;
}

struct bpf_object *profiler_object(struct profiler *p)
{
	return p->skel->obj;
}

int profiler_load(struct profiler *p)
{
	return profile_bpf__load(p->skel);
}

int profiler_attach(struct profiler *p)
{
	struct bpf_program *progs[4] = { p->skel->progs.off_cpu_switch,
					 p->skel->progs.off_cpu_wakeup, p->skel->progs.prof_exec,
					 p->skel->progs.prof_exit };
	int err;

	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.prof_events), on_pid_event, p, NULL);
	if (!p->rb) {
		fprintf(stderr, "sonde: cannot open the profiler's ring buffer: %s\n",
			strerror(errno));
		return -1;
	}
	if (pthread_create(&p->noter, NULL, noter_main, p)) {
		fprintf(stderr, "sonde: cannot start the profiler's thread\n");
		return -1;
	}
	p->noter_running = true;
	for (int i = 0; i < 4; i++) {
		if (i < 2 && !p->o->offcpu)
			continue;
		p->links[i] = bpf_program__attach(progs[i]);
		if (!p->links[i]) {
			fprintf(stderr, "sonde: attaching %s failed: %s\n",
				bpf_program__name(progs[i]), strerror(errno));
			return -1;
		}
	}
	if (p->o->profile) {
		err = sync_cpus(p, true);
		if (err == -EINVAL) {
			fprintf(stderr, "sonde: the kernel refused sampling at %u Hz: is it above "
					"kernel.perf_event_max_sample_rate? lower --profile-hz\n",
				p->o->profile_hz);
			return -1;
		}
		if (err) {
			fprintf(stderr, "sonde: cannot open the cpu-clock perf event: %s\n",
				strerror(-err));
			return -1;
		}
	}
	p->win_mono = mono_ns();
	p->win_real = realtime_ns();
	p->next_flush = p->win_mono + (uint64_t)(p->o->profile_interval_s * 1e9);
	fprintf(stderr, "sonde: profiling: %s%s%s, interval %gs, files in %s\n",
		p->o->profile ? "on-CPU" : "", p->o->profile && p->o->offcpu ? " and " : "",
		p->o->offcpu ? "off-CPU" : "", p->o->profile_interval_s, p->o->profile_dir);
	if (p->o->profile)
		fprintf(stderr, "sonde: profiling: %" PRIu64 " CPUs at %u Hz\n", p->cpus_attached,
			p->o->profile_hz);
	return 0;
}

/* ---- reading a closed generation ------------------------------------------ */

static int read_counts(int fd, struct entry **out, size_t *n)
{
	struct sonde_prof_key key, next;
	size_t cap = 0;
	void *prev = NULL;

	*out = NULL;
	*n = 0;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct entry *e = realloc(*out, ncap * sizeof(*e));

			if (!e)
				return -ENOMEM;
			*out = e;
			cap = ncap;
		}
		if (bpf_map_lookup_elem(fd, &key, &(*out)[*n].v))
			continue;
		(*out)[*n].k = key;
		(*n)++;
	}
	return 0;
}

static void clear_map(int fd, size_t key_size)
{
	char key[64];

	if (key_size > sizeof(key))
		return;
	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		if (bpf_map_delete_elem(fd, key))
			break;
}

static int stack_fd(struct profiler *p, int slot)
{
	struct bpf_map *m[SONDE_PROF_STACK_SLOTS] = { p->skel->maps.stacks0, p->skel->maps.stacks1,
						     p->skel->maps.stacks2 };

	return bpf_map__fd(m[slot % SONDE_PROF_STACK_SLOTS]);
}

/* Instruction pointers of a stack, leaf first; 0 when there is none. */
static int read_stack(struct profiler *p, int slot, uint64_t id, uint64_t *ips)
{
	struct sonde_prof_stack st;

	if (id < SONDE_PROF_STACK_FIRST || bpf_map_lookup_elem(stack_fd(p, slot), &id, &st))
		return 0;
	if (st.len > SONDE_PROF_STACK_DEPTH)
		st.len = SONDE_PROF_STACK_DEPTH;
	memcpy(ips, st.ips, st.len * sizeof(*ips));
	return st.len;
}

/* ---- one interval of one kind ------------------------------------------ */

/* A (process, thread, folded stack) of the interval. */
struct agg {
	uint32_t pid, tid;
	uint64_t value, count;
	const char *comm, *thread;
	struct pprof_frame *frames; /* leaf first */
	uint32_t nframes, unknown;
	bool truncated;
	char *folded;
};

struct interval {
	struct profiler *p;
	int kind;
	struct intern names;      /* every string the frames point to */
	struct intern keys;       /* "pid/tid/folded" -> agg index */
	struct agg *aggs;
	size_t naggs, cap;
};

static const char *keep(struct interval *iv, const char *s)
{
	uint32_t id = intern_id(&iv->names, s);

	return id == UINT32_MAX ? "" : iv->names.strs[id];
}

/* Append a frame (leaf-first order) and its folded name. */
static void add_frame(struct interval *iv, struct pprof_frame *fr, uint32_t *n, uint32_t *unknown,
		      const struct sym_frame *sf)
{
	fr[*n] = (struct pprof_frame){ .name = keep(iv, sf->name), .file = keep(iv, sf->file),
				       .build_id = keep(iv, sf->build_id), .addr = sf->addr };
	(*n)++;
	if (sf->how != SYM_NAMED)
		(*unknown)++;
}

static void add_marker(struct interval *iv, struct pprof_frame *fr, uint32_t *n, const char *name)
{
	fr[*n] = (struct pprof_frame){ .name = keep(iv, name), .file = "", .build_id = "" };
	(*n)++;
}

/* Folded text, root first: process;user frames;kernel frames_[k]. */
static char *fold(const char *pcomm, const struct pprof_frame *fr, uint32_t n, uint32_t nkernel)
{
	size_t len = strlen(pcomm) + 1;
	char *s, *w;

	for (uint32_t i = 0; i < n; i++)
		len += strlen(fr[i].name) + 5;
	s = malloc(len);
	if (!s)
		return NULL;
	w = s + sprintf(s, "%s", pcomm[0] ? pcomm : "[unknown]");
	for (uint32_t i = n; i-- > 0;) {
		/* ';' separates frames: a name must not contain one */
		*w++ = ';';
		for (const char *c = fr[i].name; *c; c++)
			*w++ = *c == ';' ? ':' : *c == ' ' ? '_' : *c;
		if (i < nkernel)
			w += sprintf(w, "_[k]");
	}
	*w = 0;
	return s;
}

/* Off-CPU kernel stacks are taken inside the tracepoint: their leaf frames are
 * sonde's own program and the tracepoint glue (bpf_trace_run*, __bpf_trace_*),
 * not where the thread blocked. The number of leaf frames to skip. */
static int bpf_frames(struct profiler *p, const uint64_t *kips, int nk)
{
	for (int i = 0; i < nk && i < 4; i++) {
		const char *name = sym_kernel_peek(p->sym, kips[i]);

		if (name && (!strncmp(name, "bpf_trace_run", 13) || !strncmp(name, "__bpf_trace_", 12) ||
			     !strncmp(name, "__traceiter_", 12)))
			return i + 1;
	}
	return 0;
}

static void add_entry(struct interval *iv, const struct entry *e)
{
	struct profiler *p = iv->p;
	uint64_t uips[SONDE_PROF_STACK_DEPTH], kips[SONDE_PROF_STACK_DEPTH];
	struct pprof_frame fr[2 * SONDE_PROF_STACK_DEPTH + 2];
	int nu = read_stack(p, e->k.slot, e->k.ustack, uips);
	int nk = read_stack(p, e->k.slot, e->k.kstack, kips);
	uint32_t n = 0, unknown = 0, nkernel;
	struct sym_frame sf;
	char key[64], *folded;
	uint32_t idx;
	struct agg *a;
	char pcomm[SONDE_COMM_LEN + 1], comm[SONDE_COMM_LEN + 1];

	snprintf(pcomm, sizeof(pcomm), "%.*s", SONDE_COMM_LEN, e->v.pcomm);
	snprintf(comm, sizeof(comm), "%.*s", SONDE_COMM_LEN, e->v.comm);
	for (int i = e->k.kind == SONDE_PROF_OFFCPU ? bpf_frames(p, kips, nk) : 0; i < nk; i++) {
		sym_kernel(p->sym, kips[i], i == 0, &sf);
		add_frame(iv, fr, &n, &unknown, &sf);
	}
	nkernel = n;
	if (e->k.ustack == SONDE_PROF_STACK_EXPIRED) {
		add_marker(iv, fr, &n, "[stack expired]");
		unknown++;
	} else if (e->k.ustack == SONDE_PROF_STACK_LOST ||
		   (e->k.ustack >= SONDE_PROF_STACK_FIRST && !nu)) {
		add_marker(iv, fr, &n, "[stack lost]");
		unknown++;
		p->stacks_missing++;
	}
	for (int i = 0; i < nu; i++) {
		/* a sample taken in the kernel has the syscall's return point as
		 * its user leaf: a return address like the rest */
		sym_user(p->sym, e->k.pid, uips[i], i == 0 && nk == 0, &sf);
		add_frame(iv, fr, &n, &unknown, &sf);
	}
	folded = fold(pcomm, fr, n, nkernel);
	if (!folded)
		return;
	snprintf(key, sizeof(key), "%u/%u/", e->k.pid, e->k.tid);
	{
		size_t klen = strlen(key) + strlen(folded) + 1;
		char *full = malloc(klen);

		if (!full) {
			free(folded);
			return;
		}
		snprintf(full, klen, "%s%s", key, folded);
		idx = intern_id(&iv->keys, full);
		free(full);
	}
	if (idx == UINT32_MAX) {
		free(folded);
		return;
	}
	if (idx < iv->naggs) { /* same thread, same names: another address */
		iv->aggs[idx].value += e->v.value;
		iv->aggs[idx].count += e->v.count;
		free(folded);
		return;
	}
	if (iv->naggs == iv->cap) {
		size_t ncap = iv->cap ? iv->cap * 2 : 256;
		struct agg *na = realloc(iv->aggs, ncap * sizeof(*na));

		if (!na) {
			free(folded);
			return;
		}
		iv->aggs = na;
		iv->cap = ncap;
	}
	a = &iv->aggs[iv->naggs++];
	*a = (struct agg){ .pid = e->k.pid, .tid = e->k.tid, .value = e->v.value,
			   .count = e->v.count, .comm = keep(iv, pcomm), .thread = keep(iv, comm),
			   .nframes = n, .unknown = unknown, .folded = folded,
			   .truncated = nu == SONDE_PROF_STACK_DEPTH || nk == SONDE_PROF_STACK_DEPTH };
	a->frames = malloc(n * sizeof(*fr) + 1);
	if (a->frames)
		memcpy(a->frames, fr, n * sizeof(*fr));
	else
		a->nframes = 0;
}

static void interval_free(struct interval *iv)
{
	for (size_t i = 0; i < iv->naggs; i++) {
		free(iv->aggs[i].frames);
		free(iv->aggs[i].folded);
	}
	free(iv->aggs);
	intern_free(&iv->names);
	intern_free(&iv->keys);
}

static const char *kind_name(int kind)
{
	return kind == SONDE_PROF_CPU ? "cpu" : "offcpu";
}

/* The sample value as pprof and the records count it. */
static uint64_t value_ns(const struct profiler *p, int kind, const struct agg *a)
{
	return kind == SONDE_PROF_CPU ? a->value * (1000000000ull / p->o->profile_hz) : a->value;
}

/* Copy a string into a fixed field, cut to fit. */
static void copy_trunc(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);

	memcpy(dst, src, len);
	dst[len] = 0;
}

static void emit_records(struct interval *iv, const char *pprof_path, uint64_t end_real)
{
	struct profiler *p = iv->p;

	for (size_t i = 0; i < iv->naggs; i++) {
		const struct agg *a = &iv->aggs[i];
		sonde_Record r = sonde_Record_init_zero;
		sonde_Profile *pr = &r.profile;
		const char *stack = a->folded;
		size_t len = strlen(stack);

		r.type = sonde_RecordType_RECORD_PROFILE;
		r.ts_ns = p->win_real;
		r.pid = a->pid;
		r.tid = a->tid;
		snprintf(r.comm, sizeof(r.comm), "%s", a->comm);
		r.has_profile = true;
		snprintf(pr->kind, sizeof(pr->kind), "%s", kind_name(iv->kind));
		pr->truncated = a->truncated;
		if (len >= sizeof(pr->stack)) {
			/* keep the leaf end, from a frame boundary */
			stack += len - (sizeof(pr->stack) - 1);
			stack += strcspn(stack, ";");
			pr->truncated = true;
		}
		copy_trunc(pr->stack, sizeof(pr->stack), stack);
		pr->samples = iv->kind == SONDE_PROF_CPU ? a->value : a->count;
		pr->value_ns = value_ns(p, iv->kind, a);
		pr->start_ns = p->win_real;
		pr->end_ns = end_real;
		snprintf(pr->thread, sizeof(pr->thread), "%s", a->thread);
		pr->hz = iv->kind == SONDE_PROF_CPU ? p->o->profile_hz : 0;
		pr->frames = a->nframes;
		pr->unknown_frames = a->unknown;
		copy_trunc(pr->pprof, sizeof(pr->pprof), pprof_path);
		sink_record(p->sink, &r);
	}
}

/* Folded stacks summed over threads of a process: "stack value" lines,
 * samples for cpu, microseconds for offcpu (as flame graph tools expect). */
static int write_folded(struct interval *iv, const char *path)
{
	struct intern lines = { 0 };
	uint64_t *sum = calloc(iv->naggs + 1, sizeof(*sum));
	char tmp[4400];
	FILE *f;
	int err = 0;

	if (!sum)
		return -ENOMEM;
	for (size_t i = 0; i < iv->naggs; i++) {
		uint32_t id = intern_id(&lines, iv->aggs[i].folded);

		if (id != UINT32_MAX)
			sum[id] += iv->kind == SONDE_PROF_CPU ? iv->aggs[i].value
							      : iv->aggs[i].value / 1000;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		err = -errno;
	} else {
		for (uint32_t i = 0; i < lines.n; i++)
			fprintf(f, "%s %" PRIu64 "\n", lines.strs[i], sum[i]);
		if (fclose(f))
			err = -errno;
		if (!err && rename(tmp, path))
			err = -errno;
	}
	free(sum);
	intern_free(&lines);
	return err;
}

static int write_pprof(struct interval *iv, const char *path, uint64_t end_real)
{
	struct profiler *p = iv->p;
	struct pprof_sample *s = calloc(iv->naggs + 1, sizeof(*s));
	struct pprof_meta m = { .nvalues = 2, .time_ns = p->win_real,
				.duration_ns = end_real - p->win_real };
	int err;

	if (!s)
		return -ENOMEM;
	if (iv->kind == SONDE_PROF_CPU) {
		m.sample_type[0] = "samples", m.sample_unit[0] = "count";
		m.sample_type[1] = "cpu", m.sample_unit[1] = "nanoseconds";
		m.period_type = "cpu", m.period_unit = "nanoseconds";
		m.period = 1000000000ll / p->o->profile_hz;
	} else {
		m.sample_type[0] = "blocked", m.sample_unit[0] = "count";
		m.sample_type[1] = "offcpu", m.sample_unit[1] = "nanoseconds";
		m.period_type = "offcpu", m.period_unit = "nanoseconds";
		m.period = 1;
	}
	for (size_t i = 0; i < iv->naggs; i++) {
		const struct agg *a = &iv->aggs[i];

		s[i] = (struct pprof_sample){
			.frames = a->frames, .nframes = a->nframes, .pid = a->pid, .tid = a->tid,
			.comm = a->comm, .thread = a->thread,
			.values = { (int64_t)(iv->kind == SONDE_PROF_CPU ? a->value : a->count),
				    (int64_t)value_ns(p, iv->kind, a) },
		};
	}
	err = pprof_write(path, &m, s, iv->naggs);
	free(s);
	return err;
}

static void write_kind(struct profiler *p, int kind, const struct entry *e, size_t n,
		       uint64_t end_real)
{
	struct interval iv = { .p = p, .kind = kind };
	char stamp[32], base[4096], pb[4200], folded[4200];
	time_t secs = p->win_real / 1000000000ull;
	struct tm tm;
	uint64_t total = 0, t0 = mono_ns();
	int err;

	for (size_t i = 0; i < n; i++) {
		if (e[i].k.kind != kind)
			continue;
		/* one entry at a time: the noter gets in between */
		pthread_mutex_lock(&p->lock);
		add_entry(&iv, &e[i]);
		pthread_mutex_unlock(&p->lock);
	}
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(base, sizeof(base), "%s/%s-%s-%04" PRIu64, p->o->profile_dir, kind_name(kind),
		 stamp, p->seq);
	snprintf(pb, sizeof(pb), "%s.pb.gz", base);
	snprintf(folded, sizeof(folded), "%s.folded", base);
	err = write_pprof(&iv, pb, end_real);
	if (!err)
		err = write_folded(&iv, folded);
	if (err) {
		p->write_errors++;
		fprintf(stderr, "sonde: writing the %s profile %s failed: %s\n", kind_name(kind), base,
			strerror(-err));
	} else {
		p->files_written += 2;
	}
	emit_records(&iv, err ? "" : pb, end_real);
	for (size_t i = 0; i < iv.naggs; i++)
		total += kind == SONDE_PROF_CPU ? iv.aggs[i].value : iv.aggs[i].value / 1000000;
	if (!err)
		fprintf(stderr, "sonde: profile: %s %" PRIu64 " %s in %zu stacks -> %s (%.0f ms)\n",
			kind_name(kind), total, kind == SONDE_PROF_CPU ? "samples" : "ms blocked",
			iv.naggs, pb, (mono_ns() - t0) / 1e6);
	interval_free(&iv);
}

/* Close the open generation and write it. */
static void flush(struct profiler *p)
{
	uint64_t closed = p->epoch;
	uint64_t end_mono = mono_ns(), end_real = realtime_ns();
	struct entry *e = NULL;
	size_t n = 0;
	int counts = bpf_map__fd(closed & 1 ? p->skel->maps.counts1 : p->skel->maps.counts0);

	p->epoch = closed + 1;
	__atomic_store_n(&p->skel->bss->prof_epoch, p->epoch, __ATOMIC_RELEASE);
	/* a program that read the old epoch just before may still be adding to
	 * the closed maps: they run for microseconds */
	usleep(2000);
	if (read_counts(counts, &e, &n))
		fprintf(stderr, "sonde: out of memory reading the profile counts\n");
	if (p->o->profile)
		write_kind(p, SONDE_PROF_CPU, e, n, end_real);
	if (p->o->offcpu)
		write_kind(p, SONDE_PROF_OFFCPU, e, n, end_real);
	free(e);
	/* the closed counts, and the stack slot nothing can name any more */
	clear_map(counts, sizeof(struct sonde_prof_key));
	clear_map(stack_fd(p, (closed + 2) % SONDE_PROF_STACK_SLOTS), sizeof(uint64_t));
	pthread_mutex_lock(&p->lock);
	sym_interval_end(p->sym);
	pthread_mutex_unlock(&p->lock);
	if (p->sink->out)
		fflush(p->sink->out);
	p->intervals++;
	p->seq++;
	p->win_mono = end_mono;
	p->win_real = end_real;
	p->next_flush = end_mono + (uint64_t)(p->o->profile_interval_s * 1e9);
}

void profiler_tick(struct profiler *p, uint64_t now)
{
	if (!p)
		return;
	if (p->o->profile)
		sync_cpus(p, false);
	if (now >= p->next_flush)
		flush(p);
}

void profiler_finish(struct profiler *p)
{
	if (p && p->rb)
		flush(p);
}

/* ---- counters ------------------------------------------------------------- */

static const char *const prof_stat_names[] = {
	"samples", "samples_dropped", "stacks_full", "stack_errors", "offcpu_switches",
	"offcpu_below_min", "offcpu_expired", "offcpu_dropped", "pid_events_dropped",
};

#define N_PROF_STATS (sizeof(struct sonde_prof_stats) / sizeof(__u64))
_Static_assert(sizeof(prof_stat_names) / sizeof(prof_stat_names[0]) == N_PROF_STATS,
	       "every profiler counter has a name");

static void read_prof_stats(struct profiler *p, uint64_t *sum)
{
	struct sonde_prof_stats *per = calloc(p->ncpus, sizeof(*per));
	uint32_t zero = 0;

	memset(sum, 0, N_PROF_STATS * sizeof(*sum));
	if (per && !bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.prof_stats), &zero, per))
		for (int c = 0; c < p->ncpus; c++)
			for (size_t i = 0; i < N_PROF_STATS; i++)
				sum[i] += ((__u64 *)&per[c])[i];
	free(per);
}

/* Every counter as a name and a value, kernel's first. */
static size_t all_stats(struct profiler *p, const char **names, uint64_t *vals)
{
	struct sym_stats ss;
	size_t n = N_PROF_STATS;

	read_prof_stats(p, vals);
	memcpy(names, prof_stat_names, sizeof(prof_stat_names));
	pthread_mutex_lock(&p->lock);
	sym_get_stats(p->sym, &ss);
	pthread_mutex_unlock(&p->lock);
#define ADD(nm, v) (names[n] = (nm), vals[n++] = (v))
	ADD("stacks_missing", p->stacks_missing);
	ADD("frames", ss.frames);
	ADD("frames_unknown", ss.unknown);
	ADD("frames_addr_only", ss.addr_only);
	ADD("frames_jit", ss.jit);
	ADD("frames_kernel_unknown", ss.kernel_unknown);
	ADD("procs_read", ss.procs_read);
	ADD("procs_gone", ss.procs_gone);
	ADD("elf_loaded", ss.elf_loaded);
	ADD("elf_failed", ss.elf_failed);
	ADD("elf_evicted", ss.elf_evicted);
	ADD("symcache_bytes", ss.cache_bytes);
	ADD("intervals", p->intervals);
	ADD("files_written", p->files_written);
	ADD("write_errors", p->write_errors);
	ADD("cpus", p->cpus_attached);
	ADD("cpus_added", p->cpus_added);
	ADD("cpus_removed", p->cpus_removed);
	ADD("cpu_attach_errors", p->attach_errors);
	ADD("pids_noted", p->pids_noted);
#undef ADD
	return n;
}

void profiler_stats_json(struct profiler *p, FILE *f)
{
	const char *names[64];
	uint64_t vals[64];
	size_t n;

	if (!p || !p->skel)
		return;
	n = all_stats(p, names, vals);
	for (size_t i = 0; i < n; i++)
		fprintf(f, ",\"profile_%s\":%" PRIu64, names[i], vals[i]);
}

void profiler_write_health(struct profiler *p, FILE *f)
{
	const char *names[64];
	uint64_t vals[64];
	size_t n;

	if (!p || !p->skel)
		return;
	n = all_stats(p, names, vals);
	for (size_t i = 0; i < n; i++) {
		bool gauge = !strcmp(names[i], "symcache_bytes") || !strcmp(names[i], "cpus");

		fprintf(f, "# TYPE sonde_profile_%s%s %s\nsonde_profile_%s%s %" PRIu64 "\n",
			names[i], gauge ? "" : "_total", gauge ? "gauge" : "counter", names[i],
			gauge ? "" : "_total", vals[i]);
	}
}

void profiler_free(struct profiler *p)
{
	if (!p)
		return;
	if (p->noter_running) {
		p->noter_stop = true;
		pthread_join(p->noter, NULL);
	}
	for (int c = 0; p->pe_fd && c < p->ncpus; c++)
		if (p->pe_fd[c] >= 0)
			detach_cpu(p, c);
	for (int i = 0; i < 4; i++)
		bpf_link__destroy(p->links[i]);
	ring_buffer__free(p->rb);
	profile_bpf__destroy(p->skel);
	sym_free(p->sym);
	free(p->pe_fd);
	free(p->pe_link);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
