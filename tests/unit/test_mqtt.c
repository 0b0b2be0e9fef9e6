// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the MQTT parser (bpf/proto/mqtt.h) on the message engine.
 * The conversations are captures of Debian's mosquitto 2.0 broker with
 * mosquitto_pub and mosquitto_sub (MQTT 3.1.1 and 5, QoS 0/1/2, subscribe,
 * unsubscribe, keep-alive pings), fed whole and cut at every piece size, as
 * client and as server. mosquitto's clients read the fixed header a byte at
 * a time, so the engine's carry-over is exercised by the captures as they are.
 */
#include "l7m_captures.h"

#define P SONDE_PROTO_MQTT

static void no_loss(void)
{
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
}

static void check_connect(int i, const char *client, int level)
{
	ASSERT_EQ(drv_tx[i].op, MQTT_CONNECT);
	ASSERT_EQ(drv_tx[i].op2, level);
	ASSERT_EQ(drv_tx[i].id, MQTT_ID_CONNECT);
	ASSERT_EQ(drv_tx[i].reply, MQTT_CONNACK);
	ASSERT_EQ(drv_tx[i].status, 0);
	ASSERT_EQ(drv_tx[i].flags & SONDE_F_ERROR, 0);
	TX_STR(i, text, client);
	TX_STR(i, route, "");
}

static void check_pub_q0(void)
{
	/* QoS 0 PUBLISH and DISCONNECT are one-way: not transactions */
	ASSERT_EQ(drv_ntx, 1);
	check_connect(0, "pub0", 4);
	ASSERT_EQ(drv_tx[0].req_bytes, 18);
	ASSERT_EQ(drv_tx[0].resp_bytes, 4);
	no_loss();
}

static void check_pub_q1(void)
{
	ASSERT_EQ(drv_ntx, 2);
	check_connect(0, "pub1", 4);
	ASSERT_EQ(drv_tx[1].op, MQTT_PUBLISH);
	ASSERT_EQ(drv_tx[1].op2, 1);
	ASSERT_EQ(drv_tx[1].id, 1);
	TX_STR(1, text, "sensors/temp");
	ASSERT_EQ(drv_tx[1].reply, MQTT_PUBACK);
	/* when a cut write hides the identifier, the bytes before it (the
	 * topic) go by before the request starts */
	if (FIELDS_VISIBLE)
		ASSERT_EQ(drv_tx[1].req_bytes, 25);
	ASSERT_TRUE(drv_tx[1].req_bytes >= 9);
	ASSERT_EQ(drv_tx[1].resp_bytes, 4);
	no_loss();
}

static void check_pub_q2(int level, const char *client, const char *topic)
{
	ASSERT_EQ(drv_ntx, 3);
	check_connect(0, client, level);
	ASSERT_EQ(drv_tx[1].op, MQTT_PUBLISH);
	ASSERT_EQ(drv_tx[1].op2, 2);
	ASSERT_EQ(drv_tx[1].id, 1);
	TX_STR(1, text, topic);
	ASSERT_EQ(drv_tx[1].reply, MQTT_PUBREC);
	ASSERT_EQ(drv_tx[2].op, MQTT_PUBREL);
	ASSERT_EQ(drv_tx[2].id, 1);
	ASSERT_EQ(drv_tx[2].reply, MQTT_PUBCOMP);
	ASSERT_EQ(drv_tx[2].req_bytes, 4);
	ASSERT_EQ(drv_tx[2].resp_bytes, 4);
	no_loss();
}

static void check_pub_q2_v311(void) { check_pub_q2(4, "pub2", "sensors/temp"); }
static void check_pub_q2_v5(void) { check_pub_q2(5, "pub5", "sensors/hum"); }

static void check_sub(void)
{
	/* the three deliveries and their acks go the other way: skipped */
	ASSERT_EQ(drv_ntx, 2);
	check_connect(0, "sub1", 4);
	ASSERT_EQ(drv_tx[1].op, MQTT_SUBSCRIBE);
	if (FIELDS_VISIBLE) /* the filter's options byte */
		ASSERT_EQ(drv_tx[1].op2, 2);
	ASSERT_EQ(drv_tx[1].id, 1);
	TX_STR(1, text, "sensors/#");
	ASSERT_EQ(drv_tx[1].reply, MQTT_SUBACK);
	ASSERT_EQ(drv_tx[1].status, 2); /* granted QoS */
	ASSERT_EQ(drv_tx[1].count, 1);
	no_loss();
}

static void check_unsub(void)
{
	/* the client quit before the UNSUBACK: that request stays pending */
	ASSERT_EQ(drv_ntx, 2);
	check_connect(0, "subU", 4);
	TX_STR(1, text, "x/y");
	ASSERT_EQ(drv_tx[1].status, 0);
	ASSERT_EQ(drv_tx[1].id, 1);
	no_loss();
}

static void check_sub_v5_ping(void)
{
	ASSERT_EQ(drv_ntx, 3);
	check_connect(0, "sub5", 5);
	ASSERT_EQ(drv_tx[0].resp_bytes, 11);
	ASSERT_EQ(drv_tx[1].op, MQTT_SUBSCRIBE);
	TX_STR(1, text, "a/b");
	if (FIELDS_VISIBLE)
		ASSERT_EQ(drv_tx[1].op2, 1);
	ASSERT_EQ(drv_tx[1].count, 2);
	ASSERT_EQ(drv_tx[1].status, 1);
	ASSERT_EQ(drv_tx[2].op, MQTT_PINGREQ);
	ASSERT_EQ(drv_tx[2].reply, MQTT_PINGRESP);
	ASSERT_EQ(drv_tx[2].req_bytes, 2);
	ASSERT_EQ(drv_tx[2].resp_bytes, 2);
	no_loss();
}

static void test_pub_q0(void) { cap_check(P, "mqtt/pub_v311_q0.cap", 0, check_pub_q0); }
static void test_pub_q1(void) { cap_check(P, "mqtt/pub_v311_q1.cap", 0, check_pub_q1); }
static void test_pub_q2(void) { cap_check(P, "mqtt/pub_v311_q2.cap", 0, check_pub_q2_v311); }
static void test_pub_v5_q2(void) { cap_check(P, "mqtt/pub_v5_q2.cap", 0, check_pub_q2_v5); }
static void test_sub(void) { cap_check(P, "mqtt/sub_v311.cap", 0, check_sub); }
static void test_unsub(void) { cap_check(P, "mqtt/sub_v311_unsub.cap", 0, check_unsub); }
static void test_sub_v5_ping(void) { cap_check(P, "mqtt/sub_v5_ping.cap", 0, check_sub_v5_ping); }

/* Refusals: a CONNACK with a return code, a SUBACK failure (0x80). */
static const struct drv_call refused[] = {
	{ H1_DIR_SEND, S("\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04nope") },
	{ H1_DIR_RECV, S("\x20\x02\x00\x05") }, /* not authorised */
	{ H1_DIR_SEND, S("\x82\x08\x00\x07\x00\x03\x24/x\x01") },
	{ H1_DIR_RECV, S("\x90\x03\x00\x07\x80") },
};

static void check_refused(void)
{
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_EQ(drv_tx[0].status, 5);
	ASSERT_TRUE(drv_tx[0].flags & SONDE_F_ERROR);
	ASSERT_EQ(drv_tx[1].id, 7);
	ASSERT_EQ(drv_tx[1].status, 0x80);
	ASSERT_TRUE(drv_tx[1].flags & SONDE_F_ERROR);
	TX_STR(1, text, "$/x");
	no_loss();
}

static void test_refused(void)
{
	cap_name = "refused";
	each_split(refused, 4, P, check_refused);
}

/* A PUBLISH larger than the window: skipped by its remaining length
 * (a 3-byte varint), the next packets still framed. */
static __u8 big_pub[20000];
static struct drv_call big[4];

static void check_big(void)
{
	ASSERT_EQ(drv_ntx, 2);
	ASSERT_EQ(drv_tx[0].req_bytes, big[0].len);
	ASSERT_EQ(drv_tx[0].op2, 1);
	ASSERT_EQ(drv_tx[0].id, 0x1234);
	TX_STR(0, text, "big/t");
	ASSERT_EQ(drv_tx[1].op, MQTT_PINGREQ);
	no_loss();
}

static void test_big_publish(void)
{
	__u32 rem = 2 + 5 + 2 + 17000, n = 0;

	big_pub[n++] = 0x32;
	big_pub[n++] = 0x80 | (rem & 0x7f);
	big_pub[n++] = 0x80 | ((rem >> 7) & 0x7f);
	big_pub[n++] = rem >> 14;
	memcpy(big_pub + n, "\x00\x05" "big/t\x12\x34", 9);
	n += 9;
	memset(big_pub + n, 'p', 17000);
	n += 17000;
	big[0] = (struct drv_call){ H1_DIR_SEND, big_pub, n };
	big[1] = (struct drv_call){ H1_DIR_RECV, S("\x40\x02\x12\x34") };
	big[2] = (struct drv_call){ H1_DIR_SEND, S("\xc0\x00") };
	big[3] = (struct drv_call){ H1_DIR_RECV, S("\xd0\x00") };
	cap_name = "big publish";
	each_split(big, 4, P, check_big);
	each_split_server(big, 4, P, check_big);
}

static void test_inference(void)
{
	static const struct {
		const char *bytes;
		size_t n;
		int want;
	} cases[] = {
		{ S("\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04pub0"), H1_INFER_REQUEST },
		{ S("\x10\x14\x00\x04MQTT\x05\x02\x00\x3c\x03\x21\x00\x14\x00\x04pub5"), H1_INFER_REQUEST },
		{ S("\x10\x12\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x04pub3"), H1_INFER_REQUEST },
		{ S("\x10\x10\x00\x04MQTT\x06\x02\x00\x3c\x00\x04pub0"), 0 }, /* level 6 */
		{ S("\x10\x10\x00\x04MQTT\x04\x03\x00\x3c\x00\x04pub0"), 0 }, /* reserved flag */
		{ S("\x10\x10\x00\x04MQTX\x04\x02\x00\x3c\x00\x04pub0"), 0 },
		{ S("\x20\x02\x00\x00"), 0 },                 /* a CONNACK */
		{ S("\x82\x0e\x00\x01\x00\tsensors/#\x02"), 0 },
		{ S("GET / HTTP/1.1\r\n"), 0 },
		{ S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00"), 0 }, /* TLS */
	};
	__u8 w[L7M_BUF];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(w, 0, sizeof(w));
		memcpy(w, cases[i].bytes, cases[i].n);
		SET_CTX("case %zu", i);
		ASSERT_EQ(mqtt_infer(w, cases[i].n), cases[i].want);
	}
}

int main(void)
{
	RUN(test_pub_q0);
	RUN(test_pub_q1);
	RUN(test_pub_q2);
	RUN(test_pub_v5_q2);
	RUN(test_sub);
	RUN(test_unsub);
	RUN(test_sub_v5_ping);
	RUN(test_refused);
	RUN(test_big_publish);
	RUN(test_inference);
	UNIT_SUMMARY("mqtt");
}
