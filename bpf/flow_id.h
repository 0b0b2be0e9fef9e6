/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The flow id: one number per 5-tuple, the same whichever direction a packet
 * travels and whichever side (flow tracker, socket tracer, user space)
 * computes it. Pure C on the __u8..__u64 types, so BPF programs and user
 * space include the same code (after vmlinux.h or <linux/types.h>).
 *
 * Definition (docs/FLOWS.md):
 *   1. Each endpoint is (address as 16 bytes, port). IPv4 uses the first 4
 *      bytes, the other 12 are zero; IPv4-mapped IPv6 addresses are IPv4.
 *   2. The endpoints are put in canonical order: the smaller address bytes
 *      (compared as unsigned bytes, first to last) first; equal addresses,
 *      the smaller port first.
 *   3. flow_id = FNV-1a 64 over: family (1 byte: 1 IPv4, 2 IPv6), L4 protocol
 *      (1 byte: 6, 17, 1, 58), address 0 (16 bytes), address 1 (16 bytes),
 *      port 0 (2 bytes, big-endian), port 1 (2 bytes, big-endian).
 * The tap and interface are not part of it: every observation of one
 * connection shares its id.
 */
#ifndef SONDE_FLOW_ID_H
#define SONDE_FLOW_ID_H

#define SONDE_FNV64_OFFSET 0xcbf29ce484222325ULL
#define SONDE_FNV64_PRIME 0x100000001b3ULL

/* < 0 when endpoint a sorts before b, 0 when equal, > 0 after. */
static inline int sonde_ep_cmp(const __u8 *a, __u16 aport, const __u8 *b, __u16 bport)
{
	for (int i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	return aport == bport ? 0 : (aport < bport ? -1 : 1);
}

static inline __u64 sonde_fnv_byte(__u64 h, __u8 b)
{
	return (h ^ b) * SONDE_FNV64_PRIME;
}

/* Endpoints must already be in canonical order (as in struct sonde_flow_key). */
static inline __u64 sonde_flow_id(__u8 family, __u8 l4, const __u8 *addr0, const __u8 *addr1,
				  __u16 port0, __u16 port1)
{
	__u64 h = SONDE_FNV64_OFFSET;

	h = sonde_fnv_byte(h, family);
	h = sonde_fnv_byte(h, l4);
	for (int i = 0; i < 16; i++)
		h = sonde_fnv_byte(h, addr0[i]);
	for (int i = 0; i < 16; i++)
		h = sonde_fnv_byte(h, addr1[i]);
	h = sonde_fnv_byte(h, port0 >> 8);
	h = sonde_fnv_byte(h, port0 & 0xff);
	h = sonde_fnv_byte(h, port1 >> 8);
	h = sonde_fnv_byte(h, port1 & 0xff);
	return h;
}

/* The id of a connection given as client -> server (either order works). */
static inline __u64 sonde_flow_id_of(__u8 family, __u8 l4, const __u8 *saddr, __u16 sport,
				     const __u8 *daddr, __u16 dport)
{
	if (sonde_ep_cmp(saddr, sport, daddr, dport) <= 0)
		return sonde_flow_id(family, l4, saddr, daddr, sport, dport);
	return sonde_flow_id(family, l4, daddr, saddr, dport, sport);
}

#endif /* SONDE_FLOW_ID_H */
