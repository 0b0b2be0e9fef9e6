/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * DNS for the message engine (proto/l7m.h): over UDP one message per
 * datagram, over TCP each message behind a 2-byte length (RFC 1035 4.2.2).
 *
 * Record fields: text = the query name in wire form (length-prefixed labels,
 * turned into dotted form in user space), op = the query type's low byte and
 * op2 = the query type, id = the transaction id (pairing: concurrent queries
 * on one socket pair by id), status = RCODE, count = ANCOUNT, SONDE_F_ERROR
 * when RCODE is not NOERROR. Only QUERY (opcode 0) messages with exactly one
 * question are taken for DNS; anything else loses framing and is counted.
 */
#ifndef SONDE_PROTO_DNS_H
#define SONDE_PROTO_DNS_H

#include "proto/l7m.h"

#define DNS_HDR_LEN 12
#define DNS_MIN_MSG (DNS_HDR_LEN + 5) /* header, root name, type and class */

SONDE_INLINE __u32 dns_u16(const __u8 *w, __u32 i)
{
	return ((__u32)L7M_AT(w, i) << 8) | L7M_AT(w, i + 1);
}

/*
 * Is there a plausible DNS message header at w[off] (a message of mlen
 * bytes)? H1_INFER_REQUEST for a query, H1_INFER_RESPONSE for an answer,
 * H1_INFER_NONE otherwise. Strict: one question, opcode QUERY, a first
 * label of 0..63 bytes, a query with no answer records.
 */
SONDE_INLINE int dns_header_kind(const __u8 *w, __u32 wlen, __u32 off, __u32 mlen)
{
	__u32 flags, qd, an, ns, ar, label;

	if (off + DNS_HDR_LEN + 1 > wlen || mlen < DNS_MIN_MSG || mlen > 65535)
		return H1_INFER_NONE;
	flags = dns_u16(w, off + 2);
	qd = dns_u16(w, off + 4);
	an = dns_u16(w, off + 6);
	ns = dns_u16(w, off + 8);
	ar = dns_u16(w, off + 10);
	label = L7M_AT(w, off + DNS_HDR_LEN);
	if (qd != 1 || ((flags >> 11) & 0xf) != 0 || label > 63)
		return H1_INFER_NONE;
	if (!(flags & 0x8000)) {
		/* a query: no answers, rcode 0, at most the EDNS record */
		if (an || ns || ar > 1 || (flags & 0xf))
			return H1_INFER_NONE;
		return H1_INFER_REQUEST;
	}
	if ((flags & 0xf) > 10)
		return H1_INFER_NONE;
	return H1_INFER_RESPONSE;
}

/* A datagram's first bytes: DNS over UDP? */
SONDE_INLINE int dns_infer_dgram(const __u8 *w, __u32 n, __u32 dgram_len)
{
	return dns_header_kind(w, n, 0, dgram_len);
}

/*
 * A stream's first bytes: DNS over TCP? Either a length and a message, or a
 * message alone (a client or server that moves the 2-byte length in a
 * syscall of its own: that syscall matched nothing, this one is the message).
 */
SONDE_INLINE int dns_infer_stream(const __u8 *w, __u32 n)
{
	int k;

	if (n < 2 + DNS_HDR_LEN + 1)
		return H1_INFER_NONE;
	k = dns_header_kind(w, n, 2, dns_u16(w, 0));
	if (k == H1_INFER_NONE)
		k = dns_header_kind(w, n, 0, n);
	return k;
}

/* Offset of the first zero byte at or after pos within max bytes, or 0. */
SONDE_INLINE __u32 dns_name_end(const __u8 *w, __u32 wlen, __u32 pos, __u32 max)
{
	__u64 end = 0, found = 0, k;

	for (k = 0; k < L7M_WIN; k++) {
		__u64 hit = l7m_eq8(L7M_AT(w, pos + k), 0) & l7m_lt(pos + k, wlen) &
			    l7m_lt(k, max) & (1 - found);

		H1_OPAQUE(hit);
		end += hit * (pos + k);
		found |= hit;
	}
	return found ? end : 0;
}

/* The step function of the message engine for DNS. */
SONDE_INLINE int dns_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st, int is_req,
			  const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	__u32 off = c->dgram ? 0 : 2, mlen, id, flags, name, end, qtype = 0;
	int kind;

	(void)ctx;
	(void)st;
	if (c->dgram) {
		mlen = in->avail;
		kind = dns_header_kind(w, wlen, off, mlen);
	} else {
		if (wlen < 2 + DNS_HDR_LEN + 1)
			return at_end ? L7M_NEED : L7M_LOST;
		mlen = dns_u16(w, 0);
		kind = dns_header_kind(w, wlen, off, mlen);
		if (kind == H1_INFER_NONE) {
			/* the first message of a connection whose length prefix went by
			 * in a syscall of its own, before the protocol was known: the
			 * message alone, up to the end of the syscall */
			off = 0;
			mlen = in->avail;
			kind = dns_header_kind(w, wlen, off, mlen);
		}
	}
	if (kind == H1_INFER_NONE)
		return L7M_LOST;
	if ((kind == H1_INFER_REQUEST) != is_req)
		return L7M_LOST; /* a query on the answer stream, or the reverse */
	id = dns_u16(w, off);
	flags = dns_u16(w, off + 2);
	in->consume = off + mlen;
	if (is_req) {
		name = off + DNS_HDR_LEN;
		end = dns_name_end(w, wlen, name, 255);
		if (end && end + 2 < wlen)
			qtype = dns_u16(w, end + 1);
		/* the wire-form name, up to the end found or the window */
		l7m_text_append(in, w, wlen, name, end ? end - name : wlen - name);
		in->op = qtype > 255 ? 255 : qtype;
		in->op2 = qtype;
		in->id = id;
		in->has_id = 1;
		in->ev = L7M_EV_REQUEST;
		return L7M_OK;
	}
	c->acc.has_id = 1;
	c->acc.id = id;
	c->acc.status = flags & 0xf;
	c->acc.count = dns_u16(w, off + 6);
	if (flags & 0xf)
		c->acc.flags |= SONDE_F_ERROR;
	in->ev = L7M_EV_RESPONSE;
	return L7M_OK;
}

#endif /* SONDE_PROTO_DNS_H */
