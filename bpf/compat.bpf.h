/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Small shims that let one object load from old kernels to new ones.
 *
 * Event channel: the `events` map is a BPF ring buffer (5.8+) or, when user
 * space finds no ring buffer support or is given --force-perfbuf, a perf
 * event array; user space sets its type before load and `use_ringbuf` in
 * rodata. The verifier sees the rodata constant and never visits the branch
 * for the other map type, so both helpers can sit in one program.
 *
 * bpf_probe_read_user/kernel (5.5+) are used throughout; libbpf rewrites them
 * to bpf_probe_read on kernels that lack them.
 */
#ifndef SONDE_COMPAT_BPF_H
#define SONDE_COMPAT_BPF_H

/* Syscall tracepoint contexts: the stable layout of
 * /sys/kernel/tracing/events/syscalls/sys_{enter,exit}_X/format. */
struct sys_enter_ctx {
	__u64 common;        /* common_type, flags, preempt_count, pid */
	__s64 syscall_nr;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s64 syscall_nr;
	__s64 ret;
};

const volatile bool use_ringbuf = true;
/* Ring buffer: wake the consumer only once this many bytes wait, so a busy
 * host pays one wakeup per batch; user space also polls on a short timer so
 * a quiet host still sees its records promptly. */
const volatile __u64 ringbuf_wakeup_bytes = 64 * 1024;

/*
 * events: BPF_MAP_TYPE_RINGBUF (or PERF_EVENT_ARRAY, set by user space).
 * Carries sonde_l7_event records; consumed and freed by user space polling.
 * Size set by user space (--ring-size).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/*
 * event_heap: per-CPU scratch to build an event when the perf buffer is the
 * channel (it copies from a buffer instead of reserving in place).
 * Key: 0. Lives for the whole run.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sonde_l7_event);
} event_heap SEC(".maps");

static __always_inline void *event_reserve(__u64 size)
{
	__u32 zero = 0;

	if (use_ringbuf)
		return bpf_ringbuf_reserve(&events, size, 0);
	return bpf_map_lookup_elem(&event_heap, &zero);
}

/* Returns 0 when the event is on its way, <0 when the channel was full. */
static __always_inline long event_submit(void *ctx, void *ev, __u64 size)
{
	if (use_ringbuf) {
		__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ringbuf_wakeup_bytes
				      ? BPF_RB_FORCE_WAKEUP
				      : BPF_RB_NO_WAKEUP;

		bpf_ringbuf_submit(ev, flags);
		return 0;
	}
	return bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, size);
}

#endif /* SONDE_COMPAT_BPF_H */
