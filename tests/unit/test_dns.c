// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Native tests of the DNS parser (bpf/proto/dns.h) on the message engine:
 * messages as dig and dnsmasq exchange them (captured with strace), over UDP
 * (one datagram per syscall) and TCP (length-prefixed, cut at every size).
 */
#include "l7m_driver.h"

#define C H1_DIR_SEND
#define R H1_DIR_RECV

/* dig a.sonde.test (EDNS with a cookie) and dnsmasq's answer 10.1.2.3 */
static const unsigned char q_a[] = {
	0x25, 0x64, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x01, 'a', 0x05, 's', 'o', 'n', 'd', 'e', 0x04, 't', 'e', 's', 't', 0x00,
	0x00, 0x01, 0x00, 0x01,
	0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
static const unsigned char r_a[] = {
	0x25, 0x64, 0x85, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x01, 'a', 0x05, 's', 'o', 'n', 'd', 'e', 0x04, 't', 'e', 's', 't', 0x00,
	0x00, 0x01, 0x00, 0x01,
	0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 10, 1, 2, 3,
};
/* b.sonde.test: NXDOMAIN, with another id */
static const unsigned char q_b[] = {
	0xac, 0x09, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 'b', 0x05, 's', 'o', 'n', 'd', 'e', 0x04, 't', 'e', 's', 't', 0x00,
	0x00, 0x1c, 0x00, 0x01,
};
static const unsigned char r_b[] = {
	0xac, 0x09, 0x81, 0x83, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 'b', 0x05, 's', 'o', 'n', 'd', 'e', 0x04, 't', 'e', 's', 't', 0x00,
	0x00, 0x1c, 0x00, 0x01,
};

static void check_two(void)
{
	ASSERT_EQ(drv_ntx, 2);
	/* answered out of order: paired by id */
	ASSERT_EQ(drv_tx[0].id, 0xac09);
	ASSERT_EQ(drv_tx[0].status, 3);
	ASSERT_TRUE(drv_tx[0].flags & SONDE_F_ERROR);
	ASSERT_EQ(drv_tx[0].op2, 28);
	ASSERT_EQ(drv_tx[1].id, 0x2564);
	ASSERT_EQ(drv_tx[1].status, 0);
	ASSERT_EQ(drv_tx[1].count, 1);
	ASSERT_EQ(drv_tx[1].op2, 1);
	ASSERT_EQ(drv_tx[1].req_bytes, sizeof(q_a));
	ASSERT_EQ(drv_tx[1].resp_bytes, sizeof(r_a));
	ASSERT_TRUE(!memcmp(drv_tx[1].text, "\1a\5sonde\4test", 13));
	ASSERT_EQ(drv_stats[H1_STAT(unpaired_responses)], 0);
	ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
}

static void test_udp_concurrent(void)
{
	struct drv d;
	const struct drv_call calls[] = {
		{ C, q_a, sizeof(q_a) }, { C, q_b, sizeof(q_b) },
		{ R, r_b, sizeof(r_b) }, { R, r_a, sizeof(r_a) },
	};

	drv_reset(&d, SONDE_PROTO_DNS, C);
	d.c.dgram = 1;
	drv_run(&d, calls, 4, 0);
	check_two();
}

static unsigned char tcp_req[2 * 64], tcp_resp[2 * 64];

static size_t prefix(unsigned char *out, const unsigned char *m, size_t n)
{
	out[0] = n >> 8;
	out[1] = n & 0xff;
	memcpy(out + 2, m, n);
	return n + 2;
}

static void test_tcp_every_split(void)
{
	size_t nq = 0, nr = 0, piece;
	struct drv d;

	nq += prefix(tcp_req + nq, q_a, sizeof(q_a));
	nq += prefix(tcp_req + nq, q_b, sizeof(q_b));
	nr += prefix(tcp_resp + nr, r_b, sizeof(r_b));
	nr += prefix(tcp_resp + nr, r_a, sizeof(r_a));
	for (piece = 0; piece <= 40; piece++) {
		const struct drv_call calls[] = { { C, tcp_req, nq }, { R, tcp_resp, nr } };

		SET_CTX("piece %zu", piece);
		drv_reset(&d, SONDE_PROTO_DNS, C);
		drv_run(&d, calls, 2, piece);
		ASSERT_EQ(drv_ntx, 2);
		ASSERT_EQ(drv_tx[0].id, 0xac09);
		ASSERT_EQ(drv_tx[1].id, 0x2564);
		ASSERT_EQ(drv_stats[H1_STAT(parse_lost)], 0);
	}
}

static void test_inference(void)
{
	__u8 w[L7M_BUF] = { 0 };
	int kind = 0;
	size_t n;

	memcpy(w, q_a, sizeof(q_a));
	ASSERT_EQ(l7m_infer_dgram(w, sizeof(q_a), sizeof(q_a), &kind), SONDE_PROTO_DNS);
	ASSERT_EQ(kind, H1_INFER_REQUEST);
	memcpy(w, r_a, sizeof(r_a));
	ASSERT_EQ(l7m_infer_dgram(w, sizeof(r_a), sizeof(r_a), &kind), SONDE_PROTO_DNS);
	ASSERT_EQ(kind, H1_INFER_RESPONSE);
	n = prefix(w, q_b, sizeof(q_b));
	ASSERT_EQ(l7m_infer(w, n, &kind), SONDE_PROTO_DNS);
	/* not DNS: HTTP, a random datagram, a query with answers */
	memcpy(w, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	ASSERT_EQ(l7m_infer_dgram(w, 27, 27, &kind), SONDE_PROTO_UNKNOWN);
	memset(w, 0x41, 64);
	ASSERT_EQ(l7m_infer_dgram(w, 64, 64, &kind), SONDE_PROTO_UNKNOWN);
	memcpy(w, q_b, sizeof(q_b));
	w[7] = 1; /* ANCOUNT 1 in a query */
	ASSERT_EQ(l7m_infer_dgram(w, sizeof(q_b), sizeof(q_b), &kind), SONDE_PROTO_UNKNOWN);
}

int main(void)
{
	RUN(test_udp_concurrent);
	RUN(test_tcp_every_split);
	RUN(test_inference);
	UNIT_SUMMARY("dns");
}
