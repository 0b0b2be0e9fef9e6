// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* DNS names for records: query types, response codes, wire-form names. */
#include <stdio.h>
#include <string.h>

#include "sonde.h"

/* Query type mnemonics (RFC 1035, 3596, 2782, 6891, 8659 ...). */
const char *dns_qtype_name(unsigned qtype)
{
	switch (qtype) {
	case 1: return "A";
	case 2: return "NS";
	case 5: return "CNAME";
	case 6: return "SOA";
	case 12: return "PTR";
	case 15: return "MX";
	case 16: return "TXT";
	case 28: return "AAAA";
	case 33: return "SRV";
	case 35: return "NAPTR";
	case 41: return "OPT";
	case 43: return "DS";
	case 46: return "RRSIG";
	case 48: return "DNSKEY";
	case 64: return "SVCB";
	case 65: return "HTTPS";
	case 255: return "ANY";
	case 257: return "CAA";
	}
	return "";
}

/* RCODE mnemonics (RFC 1035, 2136). */
const char *dns_rcode_name(unsigned rcode)
{
	static const char *const names[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
		"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
	};

	return rcode < sizeof(names) / sizeof(names[0]) ? names[rcode] : "";
}

/*
 * A wire-form name (length-prefixed labels, as the kernel copied it, maybe
 * cut) in dotted form: "\3www\7example\3com" -> "www.example.com". Bytes
 * outside printable ASCII are kept for the JSON escaper; a label running
 * past the copy ends the name.
 */
void dns_name_from_wire(const char *wire, size_t n, char *out, size_t outn)
{
	size_t i = 0, o = 0;

	if (!outn)
		return;
	while (i < n) {
		size_t len = (unsigned char)wire[i++];

		if (len == 0 || len > 63)
			break;
		if (o && o + 1 < outn)
			out[o++] = '.';
		for (size_t k = 0; k < len && i < n && o + 1 < outn; k++)
			out[o++] = wire[i++];
	}
	out[o] = 0;
}
