/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * copycat: the payload-copying design sonde is measured against (what
 * DeepFlow's agent does): every read/write-family syscall on a socket ships
 * its first COPYCAT_BYTES bytes to user space, which parses HTTP and pairs
 * requests with responses there. Written for the benchmark only.
 */
#ifndef COPYCAT_H
#define COPYCAT_H

#define COPYCAT_BYTES 256

enum copycat_dir { COPYCAT_SEND = 1, COPYCAT_RECV = 2 };

/* One syscall's worth of payload; sent with its header and n bytes of data. */
struct copycat_event {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 fd;
	__s32 ret;    /* the syscall's return value: bytes moved */
	__u16 n;      /* bytes of data that follow (<= COPYCAT_BYTES) */
	__u8 dir;     /* enum copycat_dir */
	__u8 _pad[5];
	char data[COPYCAT_BYTES];
};

/* counters[] indexes */
enum copycat_counter { CC_EVENTS = 0, CC_LOST = 1, CC_NOT_SOCKET = 2, CC__N = 4 };

#endif
