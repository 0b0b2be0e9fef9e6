/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * MQTT 3.1, 3.1.1 and 5.0 for the message engine (proto/l7m.h).
 *
 * Every control packet is a fixed header (type and flags in one byte, then
 * the remaining length as a 1-4 byte varint) and a body of that length, so a
 * packet is one token: the header and the fields the parser wants are read
 * from the window, the rest is skipped by length.
 *
 * Transactions, client to server (the request stream):
 *   CONNECT -> CONNACK, PINGREQ -> PINGRESP (one at a time on a connection:
 *   paired by a fixed id above the 16-bit packet identifiers, MQTT_ID_*),
 *   PUBLISH QoS 1 -> PUBACK, PUBLISH QoS 2 -> PUBREC, PUBREL -> PUBCOMP,
 *   SUBSCRIBE -> SUBACK, UNSUBSCRIBE -> UNSUBACK (paired by packet identifier).
 * Not transactions (framed and skipped): PUBLISH QoS 0 and DISCONNECT (one
 * way: the engine has no one-way transaction yet, docs/PROTOCOLS.md), AUTH,
 * and the server's deliveries to a subscriber (PUBLISH, PUBREL from the
 * server and the client's acks of them): those are requests from the server,
 * which the engine's one request direction per connection does not carry.
 *
 * Record fields: op = packet type (1 CONNECT, 3 PUBLISH, 6 PUBREL, 8 SUBSCRIBE,
 * 10 UNSUBSCRIBE, 12 PINGREQ), op2 = QoS of a PUBLISH or of the first
 * SUBSCRIBE filter, protocol level of a CONNECT (3, 4, 5); id = packet
 * identifier; text = topic (PUBLISH), first topic filter (SUBSCRIBE,
 * UNSUBSCRIBE), client identifier (CONNECT); route = empty (topics are not
 * bounded: the packet type is the metric endpoint). Response: status =
 * CONNACK return code / reason code, first SUBACK return code, ack reason
 * code (MQTT 5); count = SUBACK/UNSUBACK return codes; SONDE_F_ERROR when a
 * code says failure (CONNACK != 0, reason codes >= 0x80).
 */
#ifndef SONDE_PROTO_MQTT_H
#define SONDE_PROTO_MQTT_H

#include "proto/l7m.h"

enum mqtt_type {
	MQTT_CONNECT = 1, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
	MQTT_PUBCOMP, MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE, MQTT_UNSUBACK,
	MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT, MQTT_AUTH,
};

/* Pairing ids of the packets that carry no identifier (above 0xffff). */
#define MQTT_ID_CONNECT 0x10001u
#define MQTT_ID_PING    0x1000cu

#define MQTT_MAX_LEN 268435455u /* the largest remaining length */

/* The protocol level a CONNECT announced, kept in the request stream
 * (c->req.st2; 0 before one is seen: 3.1.1 layouts are assumed). */
#define MQTT_LEVEL(c) ((c)->req.st2)

static const char mqtt_name[8] H1_RODATA = "\x00\x04MQTT";
static const char mqtt_name_v31[8] H1_RODATA = "\x00\x06MQIsdp";

/* Big-endian 16-bit value at w[pos]. */
SONDE_INLINE __u32 mqtt_u16(const __u8 *w, __u32 pos)
{
	return (__u32)L7M_AT(w, pos) << 8 | L7M_AT(w, pos + 1);
}

/*
 * The variable-byte integer at w[pos] (remaining length, property length):
 * its value in *v and its size in bytes; 0 when the window ends inside it,
 * -1 when it is longer than 4 bytes.
 */
SONDE_INLINE int mqtt_varint(const __u8 *w, __u32 wlen, __u32 pos, __u32 *v)
{
	__u32 val = 0, k;

	for (k = 0; k < 4; k++) {
		__u8 b;

		if (pos + k >= wlen)
			return 0;
		b = L7M_AT(w, pos + k);
		val |= (__u32)(b & 0x7f) << (7 * k);
		if (!(b & 0x80)) {
			*v = val;
			return k + 1;
		}
	}
	return -1;
}

/* Are the fixed-header flags right for the type (MQTT 3.1.1 table 2.2)? */
SONDE_INLINE int mqtt_flags_ok(__u8 type, __u8 flags)
{
	if (type == MQTT_PUBLISH)
		return ((flags >> 1) & 3) != 3;
	if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
		return flags == 2;
	return flags == 0;
}

/* May a packet of this type travel on this stream? */
SONDE_INLINE int mqtt_type_ok(__u8 type, int is_req)
{
	if (!type)
		return 0;
	if (is_req)
		return type != MQTT_CONNACK && type != MQTT_SUBACK && type != MQTT_UNSUBACK &&
		       type != MQTT_PINGRESP;
	return type != MQTT_CONNECT && type != MQTT_SUBSCRIBE && type != MQTT_UNSUBSCRIBE &&
	       type != MQTT_PINGREQ;
}

/* A 2-byte-length string at w[pos] as the request text, if it starts in
 * the window; returns the offset just past it. */
SONDE_INLINE __u32 mqtt_text_string(struct l7m_info *in, const __u8 *w, __u32 wlen, __u32 pos)
{
	__u32 n;

	if (pos + 2 > wlen)
		return pos + 2;
	n = mqtt_u16(w, pos);
	l7m_text_append(in, w, wlen, pos + 2, n);
	return pos + 2 + n;
}

/* Offset of the first byte after MQTT 5 properties at w[pos] (or pos when
 * the connection is not MQTT 5); 0 when the window ends first. */
SONDE_INLINE __u32 mqtt_skip_props(struct l7m_conn *c, const __u8 *w, __u32 wlen, __u32 pos)
{
	__u32 v = 0;
	int n;

	if (MQTT_LEVEL(c) != 5)
		return pos;
	n = mqtt_varint(w, wlen, pos, &v);
	if (n <= 0 || v > L7M_BUF)
		return 0;
	return pos + n + v;
}

/* CONNECT: protocol level and client identifier. */
SONDE_INLINE void mqtt_connect(struct l7m_conn *c, const __u8 *w, __u32 wlen, __u32 h,
			       struct l7m_info *in)
{
	__u32 nl, pos, v = 0;
	int n;

	in->ev = L7M_EV_REQUEST;
	in->has_id = 1;
	in->id = MQTT_ID_CONNECT;
	if (h + 2 > wlen)
		return;
	nl = mqtt_u16(w, h);
	if (nl > 6 || h + 2 + nl >= wlen)
		return;
	in->op2 = L7M_AT(w, h + 2 + nl);
	MQTT_LEVEL(c) = in->op2;
	pos = h + 2 + nl + 4; /* level, connect flags, keep alive */
	if (in->op2 == 5) {
		n = mqtt_varint(w, wlen, pos, &v);
		if (n <= 0 || v > L7M_BUF)
			return;
		pos += n + v;
	}
	mqtt_text_string(in, w, wlen, pos);
}

/* st->phase */
#define MQTT_PH_PACKET 0 /* at a fixed header */
#define MQTT_PH_PUBID  1 /* at the packet identifier of a PUBLISH whose topic
			  * filled the window; st0 = bytes after it, st1 = QoS */

/* PUBLISH from the client: QoS 1 and 2 start a transaction. */
SONDE_INLINE void mqtt_publish(struct l7m_stream *st, const __u8 *w, __u32 wlen, __u32 h,
			       __u32 rem, __u8 qos, struct l7m_info *in)
{
	__u32 pos, tl;

	if (!qos || h + 2 > wlen)
		return; /* QoS 0: no answer comes */
	tl = mqtt_u16(w, h);
	pos = h + 2 + tl;
	if (pos + 2 > wlen && tl + 4 <= rem) {
		/* the identifier is past the window (a long topic, a cut
		 * write): this token ends before it, the next one pairs */
		st->phase = MQTT_PH_PUBID;
		st->st0 = rem - tl - 4;
		st->st1 = qos;
		in->consume = pos;
		return;
	}
	if (pos + 2 > wlen)
		return;
	in->ev = L7M_EV_REQUEST;
	in->op2 = qos;
	in->has_id = 1;
	in->id = mqtt_u16(w, pos);
	mqtt_text_string(in, w, wlen, h);
}

/* SUBSCRIBE / UNSUBSCRIBE: identifier, first filter (and its QoS). */
SONDE_INLINE void mqtt_subscribe(struct l7m_conn *c, const __u8 *w, __u32 wlen, __u32 h,
				 __u8 type, struct l7m_info *in)
{
	__u32 pos;

	in->ev = L7M_EV_REQUEST;
	in->has_id = 1;
	in->id = mqtt_u16(w, h);
	pos = mqtt_skip_props(c, w, wlen, h + 2);
	if (!pos)
		return;
	pos = mqtt_text_string(in, w, wlen, pos);
	if (type == MQTT_SUBSCRIBE && pos < wlen)
		in->op2 = L7M_AT(w, pos) & 3;
}

/* A request-stream packet: which transaction it starts, if any. */
SONDE_INLINE void mqtt_request(struct l7m_conn *c, struct l7m_stream *st, const __u8 *w,
			       __u32 wlen, __u32 h, __u32 rem, __u8 b0, struct l7m_info *in)
{
	__u8 type = b0 >> 4;

	in->op = type;
	if (type == MQTT_CONNECT)
		mqtt_connect(c, w, wlen, h, in);
	else if (type == MQTT_PUBLISH)
		mqtt_publish(st, w, wlen, h, rem, (b0 >> 1) & 3, in);
	else if (type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
		mqtt_subscribe(c, w, wlen, h, type, in);
	else if (type == MQTT_PUBREL) {
		in->ev = L7M_EV_REQUEST;
		in->has_id = 1;
		in->id = mqtt_u16(w, h);
	} else if (type == MQTT_PINGREQ) {
		in->ev = L7M_EV_REQUEST;
		in->has_id = 1;
		in->id = MQTT_ID_PING;
	}
	/* DISCONNECT, AUTH, the client's acks of deliveries: no transaction */
}

/* A response-stream packet: the transaction it ends, if any. */
SONDE_INLINE void mqtt_response(struct l7m_conn *c, const __u8 *w, __u32 wlen, __u32 h,
				__u32 rem, __u8 type, struct l7m_info *in)
{
	struct l7m_acc *a = &c->acc;
	__u32 code = 0, pos, v = 0;
	int n;

	if (type == MQTT_CONNACK) {
		a->id = MQTT_ID_CONNECT;
		code = L7M_AT(w, h + 1);
	} else if (type == MQTT_PINGRESP) {
		a->id = MQTT_ID_PING;
	} else if (type == MQTT_PUBACK || type == MQTT_PUBREC || type == MQTT_PUBCOMP ||
		   type == MQTT_SUBACK || type == MQTT_UNSUBACK) {
		a->id = mqtt_u16(w, h);
		if (type == MQTT_SUBACK || type == MQTT_UNSUBACK) {
			/* return codes follow the properties (MQTT 5) */
			pos = h + 2;
			if (MQTT_LEVEL(c) == 5) {
				n = mqtt_varint(w, wlen, pos, &v);
				pos += n > 0 ? n + v : rem;
			}
			if (pos < h + rem) {
				a->count = h + rem - pos;
				code = pos < wlen ? L7M_AT(w, pos) : 0;
			}
		} else if (rem >= 3) {
			code = L7M_AT(w, h + 2); /* MQTT 5 reason code */
		}
	} else {
		return; /* a delivery from the server, DISCONNECT, AUTH */
	}
	a->has_id = 1;
	a->status = code;
	a->reply = type;
	if ((type == MQTT_CONNACK && code) || code >= 0x80)
		a->flags |= SONDE_F_ERROR;
	in->ev = L7M_EV_RESPONSE;
}

/*
 * Bytes of a packet the parser must see to pair it: up to the packet
 * identifier, the protocol level of a CONNECT, the first return code of a
 * SUBACK. Computed from what the window shows so far; when the bytes are
 * not all there and the syscall ended, the step waits for the next one
 * (within the engine's carry).
 */
SONDE_INLINE __u32 mqtt_need(struct l7m_conn *c, const __u8 *w, __u32 wlen, __u8 b0,
			     int is_req, __u32 h, __u32 rem)
{
	__u8 type = b0 >> 4;
	__u32 need = h, v = 0;
	int n;

	if (is_req) {
		if (type == MQTT_CONNECT)
			need = h + 7;
		else if (type == MQTT_PUBLISH && ((b0 >> 1) & 3))
			need = wlen >= h + 2 ? h + 4 + mqtt_u16(w, h) : h + 2;
		else if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE ||
			 type == MQTT_UNSUBSCRIBE)
			need = h + 2;
	} else if (type == MQTT_SUBACK || type == MQTT_UNSUBACK) {
		need = h + 3;
		if (MQTT_LEVEL(c) == 5 && wlen >= h + 3) {
			n = mqtt_varint(w, wlen, h + 2, &v);
			need = n > 0 ? h + 3 + n + v : h + 3 + 4;
		}
	} else if (type != MQTT_PINGRESP && type != MQTT_DISCONNECT && type != MQTT_PUBLISH &&
		   type != MQTT_AUTH) {
		need = h + 3;
	}
	return need < h + rem ? need : h + rem;
}

/* The step function of the message engine for MQTT. */
SONDE_INLINE int mqtt_step(void *ctx, struct l7m_conn *c, struct l7m_stream *st, int is_req,
			   const __u8 *w, __u32 wlen, int at_end, struct l7m_info *in)
{
	__u8 b0 = L7M_AT(w, 0), type = b0 >> 4;
	__u32 rem = 0, h;
	int n;

	(void)ctx;
	if (st->phase == MQTT_PH_PUBID) {
		if (wlen < 2)
			return at_end ? L7M_NEED : L7M_LOST;
		in->ev = L7M_EV_REQUEST;
		in->op = MQTT_PUBLISH;
		in->op2 = st->st1;
		in->has_id = 1;
		in->id = mqtt_u16(w, 0);
		in->flags |= SONDE_F_PATH_TRUNCATED; /* the topic went by */
		in->consume = 2 + st->st0;
		st->phase = MQTT_PH_PACKET;
		return L7M_OK;
	}
	if (!mqtt_type_ok(type, is_req) || !mqtt_flags_ok(type, b0 & 15))
		return L7M_LOST;
	n = mqtt_varint(w, wlen, 1, &rem);
	if (n < 0)
		return L7M_LOST;
	if (n == 0)
		return at_end && wlen <= L7M_CARRY ? L7M_NEED : L7M_LOST;
	h = 1 + n;
	/* a short packet cut by the end of the syscall: wait for the bytes
	 * that pair it (clients read the fixed header a byte at a time) */
	if (wlen < mqtt_need(c, w, wlen, b0, is_req, h, rem) && at_end && wlen <= L7M_CARRY)
		return L7M_NEED;
	/* framed: commit */
	in->consume = h + rem;
	if (is_req)
		mqtt_request(c, st, w, wlen, h, rem, b0, in);
	else if (wlen >= mqtt_need(c, w, wlen, b0, 0, h, rem))
		mqtt_response(c, w, wlen, h, rem, type, in);
	return L7M_OK;
}

/* Does w start an MQTT CONNECT ("\x10" len "\0\4MQTT" level 3..5)? */
SONDE_INLINE int mqtt_infer(const __u8 *w, __u32 n)
{
	__u32 rem = 0, h, lvl, i;
	int k;

	if (n < 12 || L7M_AT(w, 0) != 0x10)
		return H1_INFER_NONE;
	k = mqtt_varint(w, n, 1, &rem);
	if (k <= 0 || rem < 12)
		return H1_INFER_NONE;
	h = 1 + k;
	if (h + 10 > n)
		return H1_INFER_NONE;
	if (L7M_AT(w, h + 1) == 4) {
		for (i = 0; i < 6; i++)
			if (L7M_AT(w, h + i) != (__u8)mqtt_name[i])
				return H1_INFER_NONE;
		lvl = L7M_AT(w, h + 6);
		if (lvl != 4 && lvl != 5)
			return H1_INFER_NONE;
		/* connect flags: bit 0 is reserved */
		return L7M_AT(w, h + 7) & 1 ? H1_INFER_NONE : H1_INFER_REQUEST;
	}
	for (i = 0; i < 8; i++)
		if (L7M_AT(w, h + i) != (__u8)mqtt_name_v31[i])
			return H1_INFER_NONE;
	if (h + 10 > n || L7M_AT(w, h + 8) != 3 || (L7M_AT(w, h + 9) & 1))
		return H1_INFER_NONE;
	return H1_INFER_REQUEST;
}

#endif /* SONDE_PROTO_MQTT_H */
