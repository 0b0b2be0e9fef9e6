// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The floor: one empty program on each hook sonde attaches to. What the
 * kernel charges for running *any* BPF program there (the tracepoint's
 * enabled path, the program dispatch) is the floor; sonde's added cost is
 * compared against it.
 *
 * The hook list is not written here: floor_hooks.h is generated at build
 * time by bench/hooks.sh from the SEC() lines of bpf/<capability>.bpf.c, so the floor
 * always mirrors exactly the tracepoints sonde uses (one program per distinct
 * hook).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define FLOOR_TP(cat, name)                                        \
	SEC("tracepoint/" #cat "/" #name)                          \
	int floor__##cat##__##name(void *ctx) { return 0; }
#define FLOOR_RAW_TP(name)                                         \
	SEC("raw_tracepoint/" #name)                               \
	int floor__raw__##name(void *ctx) { return 0; }

#include "floor_hooks.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
