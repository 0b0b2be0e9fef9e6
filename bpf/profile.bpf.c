// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Continuous profiling in the kernel: stack samples are counted here, per
 * (process, thread, user stack, kernel stack), and user space reads the
 * counts once per interval and names the frames. Nothing per sample crosses
 * to user space.
 *
 *   on-CPU:  a perf_event program on every online CPU (software cpu-clock at
 *            --profile-hz) counts one sample per tick of the running thread;
 *   off-CPU: the sched_switch raw tracepoint notes when and where (stack) a
 *            thread blocks; sched_wakeup adds the blocked time when it is
 *            woken.
 *
 * Double buffering. `prof_epoch` (in .bss, written by user space through the
 * mmapped skeleton) is read once per program run. Counts go to the map of
 * the epoch's parity, stacks to the stack map of slot epoch % 3. At the end
 * of an interval user space bumps the epoch, reads the closed count map and
 * the stacks it names, then clears that count map and the stack slot no one
 * can reference any more ((E - 1) % 3 once epoch E is closed). Three stack
 * slots and not two because an off-CPU period that began in epoch E - 1 and
 * ends in epoch E is counted in E's map but names a stack captured in slot
 * (E - 1) % 3, which must survive until E is read. A period spanning more
 * than one boundary names no stack (SONDE_PROF_STACK_EXPIRED, counted).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time knobs, set by user space through skel->rodata. */
const volatile __u32 filter_tgid = 0;      /* --pid: 0 = every process */
const volatile __u64 offcpu_min_ns = 1000000; /* --offcpu-min-us */

/* Interval generation; user space increments it, programs only read it. */
volatile __u64 prof_epoch = 0;

#define EFAULT 14

/*
 * stacks0..2: BPF_MAP_TYPE_HASH, one per slot (epoch % 3).
 * Key: a 64-bit hash of the frames (>= SONDE_PROF_STACK_FIRST). Value:
 * struct sonde_prof_stack. Lifecycle: inserted by the programs during the
 * slot's epoch (a stack already there is left alone); read by user space when
 * it closes that epoch and the next; user space deletes every entry of slot
 * (E - 1) % 3 after reading epoch E. Size: --profile-stacks. When full, new
 * stacks are counted as SONDE_PROF_STACK_LOST (stat stacks_full).
 */
#define STACK_MAP(name)                                                        \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 16384);                                    \
		__type(key, __u64);                                            \
		__type(value, struct sonde_prof_stack);                        \
	} name SEC(".maps")
STACK_MAP(stacks0);
STACK_MAP(stacks1);
STACK_MAP(stacks2);

/*
 * stack_scratch: BPF_MAP_TYPE_PERCPU_ARRAY, 2 entries of struct
 * sonde_prof_stack: where a stack is captured before it is hashed and
 * stored (too big for the BPF stack). Key 0 for the on-CPU program, 1 for
 * the off-CPU one, so they never share a buffer. Lives for the whole run.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sonde_prof_stack);
} stack_scratch SEC(".maps");

/*
 * counts0/counts1: BPF_MAP_TYPE_HASH, one per epoch parity.
 * Key: struct sonde_prof_key (pid, tid, stack ids, kind, slot).
 * Value: struct sonde_prof_val (samples or blocked ns, names).
 * Lifecycle: created by the first sample of a key in the epoch; read and then
 * emptied by user space after the epoch closes. When full, samples are
 * counted in samples_dropped / offcpu_dropped instead.
 */
#define COUNT_MAP(name)                                                        \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 16384);                                    \
		__type(key, struct sonde_prof_key);                            \
		__type(value, struct sonde_prof_val);                          \
	} name SEC(".maps")
COUNT_MAP(counts0);
COUNT_MAP(counts1);

/* Where a blocked thread went to sleep. */
struct offcpu_start {
	__u64 ts_ns;      /* switch-out time, CLOCK_MONOTONIC */
	__u64 epoch;      /* epoch at switch-out: its slot holds the stacks */
	__u64 ustack;     /* stack ids in slot epoch % 3 */
	__u64 kstack;
};

/*
 * offcpu_start: BPF_MAP_TYPE_LRU_HASH. Key: tid. Value: struct offcpu_start.
 * Lifecycle: written when a thread blocks (switch-out in a sleeping state),
 * removed when it is woken; threads never woken again age out by LRU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct offcpu_start);
} offcpu_start SEC(".maps");

/*
 * known_pids: BPF_MAP_TYPE_LRU_HASH. Key: tgid. Value: unused (1).
 * Processes user space has been told about (prof_events), so it reads their
 * /proc/PID/maps while they are alive. Lifecycle: added at a process's first
 * sample; removed at exec (new mappings) and when the group leader exits
 * (the pid may be reused); LRU bounds it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} known_pids SEC(".maps");

/*
 * prof_events: BPF_MAP_TYPE_RINGBUF of struct sonde_prof_pid_event, one per
 * process first seen. Consumed by user space every poll (100 ms).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} prof_events SEC(".maps");

/*
 * prof_stats: BPF_MAP_TYPE_PERCPU_ARRAY, key 0, value struct
 * sonde_prof_stats. Counters since load; user space sums the CPUs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_prof_stats);
} prof_stats SEC(".maps");

static __always_inline struct sonde_prof_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&prof_stats, &zero);
}

#define STAT_INC(field)                                                        \
	do {                                                                   \
		struct sonde_prof_stats *s__ = stats();                        \
		if (s__)                                                       \
			s__->field++;                                          \
	} while (0)

/* Tell user space about a process it has not seen (once per exec). */
static __always_inline void note_pid(__u32 pid)
{
	struct sonde_prof_pid_event *e;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&known_pids, &pid))
		return;
	bpf_map_update_elem(&known_pids, &pid, &one, BPF_ANY);
	e = bpf_ringbuf_reserve(&prof_events, sizeof(*e), 0);
	if (!e) {
		STAT_INC(pid_events_dropped);
		return;
	}
	e->kind = SONDE_EV_PROF_PID;
	e->pid = pid;
	bpf_ringbuf_submit(e, 0);
}

/* FNV-1a over the frames: the stack's id in the stack maps. */
static __always_inline __u64 stack_hash(const struct sonde_prof_stack *st)
{
	__u64 h = 14695981039346656037ull ^ st->len;

	for (int i = 0; i < SONDE_PROF_STACK_DEPTH; i++) {
		if (i >= st->len)
			break;
		h = (h ^ st->ips[i]) * 1099511628211ull;
	}
	return h < SONDE_PROF_STACK_FIRST ? h + SONDE_PROF_STACK_FIRST : h;
}

/* Capture the current user (or kernel) stack into the slot's stack map and
 * return its id, or SONDE_PROF_STACK_NONE / _LOST. */
static __always_inline __u64 capture(void *ctx, __u32 scratch, __u32 slot, __u64 flags)
{
	struct sonde_prof_stack *st = bpf_map_lookup_elem(&stack_scratch, &scratch);
	void *map = slot == 0 ? (void *)&stacks0 : slot == 1 ? (void *)&stacks1 : (void *)&stacks2;
	long n;
	__u64 id;

	if (!st)
		return SONDE_PROF_STACK_LOST;
	n = bpf_get_stack(ctx, st->ips, sizeof(st->ips), flags);
	if (n == -EFAULT || n == 0)
		return SONDE_PROF_STACK_NONE; /* no stack of this kind here */
	if (n < 0) {
		STAT_INC(stack_errors);
		return SONDE_PROF_STACK_LOST;
	}
	st->len = n / sizeof(__u64);
	id = stack_hash(st);
	/* an identical stack may be there already: the same id, nothing to do */
	if (bpf_map_update_elem(map, &id, st, BPF_NOEXIST) && !bpf_map_lookup_elem(map, &id)) {
		STAT_INC(stacks_full);
		return SONDE_PROF_STACK_LOST;
	}
	return id;
}

/* Add value to the key's entry in the count map of this parity, creating it
 * (with the thread and process names) on first use. Returns 0, or -1 when
 * the map is full. */
static __always_inline int count_add(__u64 parity, struct sonde_prof_key *key, __u64 value,
				     struct task_struct *task)
{
	struct sonde_prof_val *v, init = {};
	void *map = parity ? (void *)&counts1 : (void *)&counts0;

	v = bpf_map_lookup_elem(map, key);
	if (!v) {
		init.value = value;
		init.count = 1;
		BPF_CORE_READ_STR_INTO(&init.comm, task, comm);
		BPF_CORE_READ_STR_INTO(&init.pcomm, task, group_leader, comm);
		if (!bpf_map_update_elem(map, key, &init, BPF_NOEXIST))
			return 0;
		/* another CPU created it first, or the map is full */
		v = bpf_map_lookup_elem(map, key);
		if (!v)
			return -1;
	}
	__sync_fetch_and_add(&v->value, value);
	__sync_fetch_and_add(&v->count, 1);
	return 0;
}

/* On-CPU: one sample of whatever runs on this CPU at the tick. */
SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_prof_key key = {};
	__u64 epoch = prof_epoch;
	__u32 slot = epoch % SONDE_PROF_STACK_SLOTS;

	key.pid = id >> 32;
	key.tid = (__u32)id;
	if (key.tid == 0) /* the idle task: the CPU was not busy */
		return 0;
	if (filter_tgid && key.pid != filter_tgid)
		return 0;
	STAT_INC(samples);
	note_pid(key.pid);
	key.kind = SONDE_PROF_CPU;
	key.slot = slot;
	key.ustack = capture(ctx, 0, slot, BPF_F_USER_STACK);
	key.kstack = capture(ctx, 0, slot, 0);
	if (count_add(epoch & 1, &key, 1, (struct task_struct *)bpf_get_current_task()))
		STAT_INC(samples_dropped);
	return 0;
}

/* task_struct before 5.14 called __state `state` (and it was a long). */
struct task_struct___pre514 {
	volatile long state;
} __attribute__((preserve_access_index));

/* The thread is going to sleep (not merely giving up the CPU while still
 * runnable: preempted, or rescheduled on the way back to user mode). */
static __always_inline bool blocking(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state) != 0; /* 0 = TASK_RUNNING */
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state) != 0;
}

/* Off-CPU, first half: the current thread (prev) blocks. Remember when, and
 * where from. */
static __always_inline void switch_out(void *ctx, struct task_struct *prev, __u64 now,
				       __u64 epoch)
{
	struct offcpu_start st = {};
	__u32 slot = epoch % SONDE_PROF_STACK_SLOTS;
	__u32 tid = BPF_CORE_READ(prev, pid);
	__u32 pid = BPF_CORE_READ(prev, tgid);

	if (tid == 0 || (filter_tgid && pid != filter_tgid))
		return;
	note_pid(pid);
	st.ts_ns = now;
	st.epoch = epoch;
	/* at sched_switch, current is still prev: these are its stacks */
	st.ustack = capture(ctx, 1, slot, BPF_F_USER_STACK);
	st.kstack = capture(ctx, 1, slot, 0);
	if (bpf_map_update_elem(&offcpu_start, &tid, &st, BPF_ANY))
		STAT_INC(offcpu_dropped);
	else
		STAT_INC(offcpu_switches);
}

/* Off-CPU, second half: the thread is woken; count the time it was blocked
 * against the stack it blocked in. Counted at the wake-up, not when it runs
 * again: the wait for a CPU after it (run-queue latency) is not blocking and
 * would make a sleep look longer on a busy host. */
static __always_inline void woken(struct task_struct *next, __u64 now, __u64 epoch)
{
	__u32 tid = BPF_CORE_READ(next, pid);
	struct sonde_prof_key key = {};
	struct offcpu_start *st;
	__u64 delta;

	st = bpf_map_lookup_elem(&offcpu_start, &tid);
	if (!st)
		return;
	delta = now - st->ts_ns;
	key.pid = BPF_CORE_READ(next, tgid);
	key.tid = tid;
	key.kind = SONDE_PROF_OFFCPU;
	key.slot = st->epoch % SONDE_PROF_STACK_SLOTS;
	if (epoch - st->epoch > 1) {
		/* slot recycled since: the ids may name someone else's stack */
		key.ustack = SONDE_PROF_STACK_EXPIRED;
		key.kstack = SONDE_PROF_STACK_EXPIRED;
	} else {
		key.ustack = st->ustack;
		key.kstack = st->kstack;
	}
	bpf_map_delete_elem(&offcpu_start, &tid);
	if (delta < offcpu_min_ns) {
		STAT_INC(offcpu_below_min);
		return;
	}
	if (key.ustack == SONDE_PROF_STACK_EXPIRED)
		STAT_INC(offcpu_expired);
	if (count_add(epoch & 1, &key, delta, next))
		STAT_INC(offcpu_dropped);
}

/* sched_switch(bool preempt, struct task_struct *prev, struct task_struct
 * *next[, unsigned int prev_state since 5.18]): the first three arguments are
 * the same on every kernel sonde supports. */
SEC("raw_tp/sched_switch")
int off_cpu_switch(struct bpf_raw_tracepoint_args *ctx)
{
	bool preempt = (bool)ctx->args[0];
	struct task_struct *prev = (struct task_struct *)ctx->args[1];

	if (!preempt && blocking(prev))
		switch_out(ctx, prev, bpf_ktime_get_ns(), prof_epoch);
	return 0;
}

/* sched_wakeup(struct task_struct *p): every wake-up of a sleeping thread
 * (try_to_wake_up), from whatever context woke it. */
SEC("raw_tp/sched_wakeup")
int off_cpu_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
	woken((struct task_struct *)ctx->args[0], bpf_ktime_get_ns(), prof_epoch);
	return 0;
}

/* A process replaced its image: its mappings must be read again. */
SEC("tp/sched/sched_process_exec")
int prof_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_delete_elem(&known_pids, &pid);
	return 0;
}

/* The group leader exits: its pid may be reused by a new process. */
SEC("tp/sched/sched_process_exit")
int prof_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;

	if (pid == (__u32)id)
		bpf_map_delete_elem(&known_pids, &pid);
	return 0;
}
