/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Pure C pieces of the in-kernel metrics, shared with user space and tests:
 * the latency bucket of a transaction. (Routes are built by the HTTP parser
 * as the path streams by: h1_route_byte in proto/http1.h.)
 * The includer defines SONDE_INLINE.
 */
#ifndef SONDE_METRICS_H
#define SONDE_METRICS_H

#include "events.h"

#ifndef SONDE_KEEP_LOOP
#ifdef __bpf__
#define SONDE_KEEP_LOOP() __asm__ __volatile__("" ::: "memory")
#else
#define SONDE_KEEP_LOOP() do { } while (0)
#endif
#endif

/*
 * Bucket of a latency. Microseconds (ns >> 10, so a "microsecond" is 1.024 us)
 * below 8 have a bucket each; above, each octave [2^m, 2^(m+1)) is cut into 8
 * equal parts. Bucket b >= 8 covers [lo, lo + w) with w = lo / 8 at most:
 * a value reported as its bucket's middle is off by 6.25% at most.
 */
SONDE_INLINE __u32 sonde_lat_bucket(__u64 ns)
{
	__u64 v = ns >> 10;
	__u32 m = 0, b;

	if (v < (1 << SONDE_LAT_SUB_BITS))
		return (__u32)v;
	/* m = index of the highest set bit, by halving (no loop, no clz in BPF) */
	if (v >> 32) { m += 32; v >>= 32; }
	if (v >> 16) { m += 16; v >>= 16; }
	if (v >> 8) { m += 8; v >>= 8; }
	if (v >> 4) { m += 4; v >>= 4; }
	if (v >> 2) { m += 2; v >>= 2; }
	if (v >> 1) { m += 1; }
	v = ns >> 10;
	b = ((m - SONDE_LAT_SUB_BITS + 1) << SONDE_LAT_SUB_BITS) +
	    (__u32)((v >> (m - SONDE_LAT_SUB_BITS)) & ((1 << SONDE_LAT_SUB_BITS) - 1));
	return b < SONDE_LAT_BUCKETS ? b : SONDE_LAT_BUCKETS - 1;
}

/* Lower bound of a bucket in nanoseconds (inverse of sonde_lat_bucket). */
static inline __u64 sonde_lat_bucket_lo_ns(__u32 b)
{
	__u32 sub = 1 << SONDE_LAT_SUB_BITS;
	__u32 oct, part;

	if (b < sub)
		return (__u64)b << 10;
	oct = (b >> SONDE_LAT_SUB_BITS) - 1 + SONDE_LAT_SUB_BITS; /* highest bit */
	part = b & (sub - 1);
	return ((1ULL << oct) + ((__u64)part << (oct - SONDE_LAT_SUB_BITS))) << 10;
}

#endif /* SONDE_METRICS_H */
