// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * copycat kernel side: remember the buffer at syscall entry, and at exit, if
 * the fd is a socket and bytes moved, copy the first COPYCAT_BYTES bytes into
 * the ring buffer with a small header. No parsing in the kernel at all.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "copycat.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000

enum buf_kind { BUF_PLAIN = 0, BUF_IOV = 1, BUF_MSG = 2 };

struct pending {
	__u64 ptr;
	__u32 fd;
	__u8 kind; /* enum buf_kind */
	__u8 dir;  /* enum copycat_dir */
};

/* active: tid -> the call in flight; added at entry, deleted at exit */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending);
} active SEC(".maps");

/* events: payload copies to user space */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* scratch: per-CPU event under construction (variable-size output) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct copycat_event);
} scratch SEC(".maps");

/* counters: enum copycat_counter, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CC__N);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &k);
	if (v)
		*v += 1;
}

static __always_inline int enter(__u64 fd, __u64 ptr, __u8 kind, __u8 dir)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending p = { .ptr = ptr, .fd = (__u32)fd, .kind = kind, .dir = dir };

	bpf_map_update_elem(&active, &tid, &p, BPF_ANY);
	return 0;
}

static __always_inline int is_socket(__u32 fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *f = NULL;
	umode_t mode;

	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	return (mode & S_IFMT) == S_IFSOCK;
}

static __always_inline int leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	__u64 len, n;
	struct pending *p = bpf_map_lookup_elem(&active, &tid);
	struct copycat_event *e;
	__u64 buf = 0;

	if (!p)
		return 0;
	if (ret <= 0)
		goto out;
	len = ret;
	if (!is_socket(p->fd)) {
		count(CC_NOT_SOCKET);
		goto out;
	}
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		goto out;
	buf = p->ptr;
	if (p->kind == BUF_MSG) { /* struct user_msghdr -> first iovec */
		struct user_msghdr m;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)buf))
			goto out;
		buf = (__u64)m.msg_iov;
	}
	if (p->kind != BUF_PLAIN) { /* first iovec's base */
		struct iovec iov;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)buf))
			goto out;
		buf = (__u64)iov.iov_base;
		if (iov.iov_len < len)
			len = iov.iov_len;
	}
	n = len < COPYCAT_BYTES ? len : COPYCAT_BYTES;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = tid;
	e->fd = p->fd;
	e->ret = (__s32)ret;
	e->dir = p->dir;
	e->n = n;
	if (n > COPYCAT_BYTES)
		goto out; /* for the verifier */
	bpf_probe_read_user(e->data, n, (void *)buf);
	if (bpf_ringbuf_output(&events, e, offsetof(struct copycat_event, data) + n, 0))
		count(CC_LOST);
	else
		count(CC_EVENTS);
out:
	bpf_map_delete_elem(&active, &tid);
	return 0;
}

#define ENTER(name, kind, dir)                                                      \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                     \
	{                                                                           \
		return enter(ctx->args[0], ctx->args[1], kind, dir);                \
	}                                                                           \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                       \
	{                                                                           \
		return leave(ctx->ret);                                             \
	}

ENTER(read, BUF_PLAIN, COPYCAT_RECV)
ENTER(write, BUF_PLAIN, COPYCAT_SEND)
ENTER(recvfrom, BUF_PLAIN, COPYCAT_RECV)
ENTER(sendto, BUF_PLAIN, COPYCAT_SEND)
ENTER(readv, BUF_IOV, COPYCAT_RECV)
ENTER(writev, BUF_IOV, COPYCAT_SEND)
ENTER(recvmsg, BUF_MSG, COPYCAT_RECV)
ENTER(sendmsg, BUF_MSG, COPYCAT_SEND)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
