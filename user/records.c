// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Records: a kernel event becomes a nanopb Record, which is printed as a
 * human line or a JSON line and written length-delimited to the record file.
 * `sonde decode` prints records with the same JSON function, so a file
 * round-trips to exactly what `sonde run --json` printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "sonde.h"
#include "flow_id.h"

const char *const method_names[SONDE_M__COUNT] = {
	[SONDE_M_UNKNOWN] = "", [SONDE_M_GET] = "GET", [SONDE_M_POST] = "POST",
	[SONDE_M_PUT] = "PUT", [SONDE_M_DELETE] = "DELETE", [SONDE_M_HEAD] = "HEAD",
	[SONDE_M_OPTIONS] = "OPTIONS", [SONDE_M_PATCH] = "PATCH",
	[SONDE_M_CONNECT] = "CONNECT", [SONDE_M_TRACE] = "TRACE",
};

const char *proto_name(uint8_t proto)
{
	static const char *const names[SONDE_PROTO__COUNT] = {
		[SONDE_PROTO_HTTP1] = "http", [SONDE_PROTO_REDIS] = "redis",
		[SONDE_PROTO_PGSQL] = "pgsql", [SONDE_PROTO_MYSQL] = "mysql",
		[SONDE_PROTO_MEMCACHED] = "memcached", [SONDE_PROTO_DNS] = "dns",
		[SONDE_PROTO_MQTT] = "mqtt", [SONDE_PROTO_KAFKA] = "kafka",
		[SONDE_PROTO_MONGO] = "mongodb", [SONDE_PROTO_HTTP2] = "http2",
	};

	return proto < SONDE_PROTO__COUNT && names[proto] ? names[proto] : "";
}

/* PostgreSQL: the type of the message that starts the request. */
static const char *pgsql_op_name(uint8_t op)
{
	switch (op) {
	case 'Q': return "Query";
	case 'P': return "Parse";
	case 'B': return "Bind";
	case 'D': return "Describe";
	case 'E': return "Execute";
	case 'C': return "Close";
	case 'F': return "FunctionCall";
	}
	return "";
}

/* MySQL/MariaDB: the command byte. */
static const char *mysql_op_name(uint8_t op)
{
	static const char *const names[] = {
		[0x00] = "COM_SLEEP", [0x01] = "COM_QUIT", [0x02] = "COM_INIT_DB",
		[0x03] = "COM_QUERY", [0x04] = "COM_FIELD_LIST", [0x05] = "COM_CREATE_DB",
		[0x06] = "COM_DROP_DB", [0x07] = "COM_REFRESH", [0x08] = "COM_SHUTDOWN",
		[0x09] = "COM_STATISTICS", [0x0a] = "COM_PROCESS_INFO", [0x0b] = "COM_CONNECT",
		[0x0c] = "COM_PROCESS_KILL", [0x0d] = "COM_DEBUG", [0x0e] = "COM_PING",
		[0x0f] = "COM_TIME", [0x10] = "COM_DELAYED_INSERT", [0x11] = "COM_CHANGE_USER",
		[0x12] = "COM_BINLOG_DUMP", [0x13] = "COM_TABLE_DUMP", [0x14] = "COM_CONNECT_OUT",
		[0x15] = "COM_REGISTER_SLAVE", [0x16] = "COM_STMT_PREPARE",
		[0x17] = "COM_STMT_EXECUTE", [0x18] = "COM_STMT_SEND_LONG_DATA",
		[0x19] = "COM_STMT_CLOSE", [0x1a] = "COM_STMT_RESET", [0x1b] = "COM_SET_OPTION",
		[0x1c] = "COM_STMT_FETCH", [0x1d] = "COM_DAEMON", [0x1e] = "COM_BINLOG_DUMP_GTID",
		[0x1f] = "COM_RESET_CONNECTION",
	};

	if (op == 0xfa)
		return "COM_STMT_BULK_EXECUTE";
	return op < sizeof(names) / sizeof(names[0]) && names[op] ? names[op] : "";
}

const char *l7_op_name(uint8_t proto, uint8_t op)
{
	if (proto == SONDE_PROTO_HTTP1)
		return op < SONDE_M__COUNT ? method_names[op] : "";
	if (proto == SONDE_PROTO_PGSQL)
		return pgsql_op_name(op);
	if (proto == SONDE_PROTO_MYSQL)
		return mysql_op_name(op);
	if (proto == SONDE_PROTO_DNS)
		return dns_qtype_name(op);
	if (proto == SONDE_PROTO_MQTT) {
		/* MQTT control packet types that start a transaction */
		switch (op) {
		case 1: return "CONNECT";
		case 3: return "PUBLISH";
		case 6: return "PUBREL";
		case 8: return "SUBSCRIBE";
		case 10: return "UNSUBSCRIBE";
		case 12: return "PINGREQ";
		}
		return "";
	}
	/* Redis: the command is the record's text, not a code */
	return "";
}

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void read_proc_comm(uint32_t pid, char *comm)
{
	char path[64];
	FILE *f;

	memset(comm, 0, SONDE_COMM_LEN);
	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(comm, SONDE_COMM_LEN, f))
		comm[strcspn(comm, "\n")] = 0;
	fclose(f);
}

static void format_addr(uint8_t family, const uint8_t *a, char *out, size_t n)
{
	if (family == SONDE_FAMILY_INET)
		inet_ntop(AF_INET, a, out, n);
	else if (family == SONDE_FAMILY_INET6)
		inet_ntop(AF_INET6, a, out, n);
	else
		out[0] = 0;
}

static const char *family_name(uint8_t family)
{
	switch (family) {
	case SONDE_FAMILY_INET: return "ipv4";
	case SONDE_FAMILY_INET6: return "ipv6";
	case SONDE_FAMILY_UNIX: return "unix";
	}
	return "";
}

static void copy_str(char *dst, size_t n, const char *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = 0;
}

/* The fields of a message-engine protocol's event (docs/PROTOCOLS.md). */
static void l7m_event_fields(const struct sonde_l7_event *e, sonde_L7 *l)
{
	size_t n = e->path_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : e->path_len;
	const char *sp;

	l->path[0] = 0;
	l->method[0] = 0;
	l->error = (e->flags & (SONDE_F_ERROR | SONDE_F_TIMEOUT | SONDE_F_CLOSED)) != 0;
	copy_str(l->detail, sizeof(l->detail), e->detail,
		 e->detail_len > SONDE_DETAIL_MAX ? SONDE_DETAIL_MAX : e->detail_len);
	l->op2 = e->op2;
	l->txid = e->id;
	l->code = e->code;
	l->count = e->count;
	if (e->reply >= 0x20 && e->reply < 0x7f) {
		l->reply[0] = e->reply;
		l->reply[1] = 0;
	}
	strcpy(l->command, l7_op_name(e->proto, e->method));
	if (e->proto == SONDE_PROTO_REDIS) {
		/* text is "COMMAND key" */
		sp = memchr(e->path, ' ', n);
		copy_str(l->command, sizeof(l->command), e->path, sp ? (size_t)(sp - e->path) : n);
		if (sp)
			copy_str(l->resource, sizeof(l->resource), sp + 1, n - (sp + 1 - e->path));
		return;
	}
	if (e->proto == SONDE_PROTO_DNS) {
		strcpy(l->command, dns_qtype_name(e->op2));
		dns_name_from_wire(e->path, n, l->resource, sizeof(l->resource));
		if (!(e->flags & (SONDE_F_TIMEOUT | SONDE_F_CLOSED)))
			strcpy(l->detail, dns_rcode_name(e->status));
		return;
	}
	copy_str(l->resource, sizeof(l->resource), e->path, n);
}

void l7_event_to_record(const struct sonde_l7_event *e, uint64_t realtime_offset_ns,
			sonde_Record *r)
{
	sonde_L7 *l = &r->l7;

	memset(r, 0, sizeof(*r));
	r->type = sonde_RecordType_RECORD_L7;
	r->ts_ns = e->ts_ns + realtime_offset_ns;
	r->pid = e->pid;
	r->tid = e->tid;
	copy_str(r->comm, sizeof(r->comm), e->comm, strnlen(e->comm, SONDE_COMM_LEN));
	r->has_l7 = true;
	strcpy(l->proto, proto_name(e->proto));
	strcpy(l->role, e->role == SONDE_ROLE_SERVER ? "server" : "client");
	format_addr(e->ep.family, e->ep.saddr, l->saddr, sizeof(l->saddr));
	format_addr(e->ep.family, e->ep.daddr, l->daddr, sizeof(l->daddr));
	l->sport = e->ep.sport;
	l->dport = e->ep.dport;
	l->latency_ns = e->latency_ns;
	l->req_bytes = e->req_bytes;
	l->resp_bytes = e->resp_bytes;
	l->status = e->status;
	l->timeout = e->flags & SONDE_F_TIMEOUT;
	l->closed = e->flags & SONDE_F_CLOSED;
	l->path_truncated = e->flags & SONDE_F_PATH_TRUNCATED;
	/* an error is a 4xx/5xx answer or no complete answer at all */
	l->error = e->status >= 400 || l->timeout || (l->closed && e->status == 0);
	if (e->method < SONDE_M__COUNT)
		strcpy(l->method, method_names[e->method]);
	copy_str(l->path, sizeof(l->path), e->path,
		 e->path_len > SONDE_PATH_MAX ? SONDE_PATH_MAX : e->path_len);
	l->conn_id = e->conn_id;
	strcpy(l->family, family_name(e->ep.family));
	l->tls = false;
	if (e->ep.family == SONDE_FAMILY_INET || e->ep.family == SONDE_FAMILY_INET6)
		l->flow_id = sonde_flow_id_of(e->ep.family == SONDE_FAMILY_INET ? 1 : 2, IPPROTO_TCP,
					      e->ep.saddr, e->ep.sport, e->ep.daddr, e->ep.dport);
	if (e->proto != SONDE_PROTO_HTTP1)
		l7m_event_fields(e, l);
}

/* JSON string: escapes quotes, backslashes and every byte outside printable
 * ASCII (as \u00XX), so hostile paths still make valid JSON. */
static void json_str(FILE *f, const char *key, const char *s, bool comma)
{
	fprintf(f, "\"%s\":\"", key);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputs(comma ? "\"," : "\"", f);
}

static const char *record_type_name(sonde_RecordType t)
{
	switch (t) {
	case sonde_RecordType_RECORD_L7: return "l7";
	case sonde_RecordType_RECORD_FLOW: return "flow";
	case sonde_RecordType_RECORD_METRIC: return "metric";
	case sonde_RecordType_RECORD_PROFILE: return "profile";
	case sonde_RecordType_RECORD_SPAN: return "span";
	case sonde_RecordType_RECORD_TAG: return "tag";
	default: return "unknown";
	}
}

void record_print_json(const sonde_Record *r, FILE *f)
{
	fputc('{', f);
	json_str(f, "type", record_type_name(r->type), true);
	fprintf(f, "\"ts_ns\":%" PRIu64 ",\"pid\":%u,\"tid\":%u,", r->ts_ns, r->pid, r->tid);
	json_str(f, "comm", r->comm, r->has_l7 || r->has_metric || r->has_profile);
	if (r->has_metric) {
		const sonde_Metric *m = &r->metric;

		fprintf(f, "\"interval_s\":%u,", m->interval_s);
		json_str(f, "proto", m->proto, true);
		json_str(f, "role", m->role, true);
		json_str(f, "method", m->method, true);
		json_str(f, "route", m->route, true);
		json_str(f, "daddr", m->daddr, true);
		fprintf(f, "\"dport\":%u,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
			   ",\"errors_4xx\":%" PRIu64 ",\"errors_5xx\":%" PRIu64
			   ",\"errors_other\":%" PRIu64 ",\"req_bytes\":%" PRIu64
			   ",\"resp_bytes\":%" PRIu64 ",\"p50_ns\":%" PRIu64 ",\"p90_ns\":%" PRIu64
			   ",\"p99_ns\":%" PRIu64 ",\"latency_sum_ns\":%" PRIu64 ",\"overflow\":%s",
			m->dport, m->requests, m->errors, m->errors_4xx, m->errors_5xx,
			m->errors_other, m->req_bytes, m->resp_bytes, m->p50_ns, m->p90_ns, m->p99_ns,
			m->latency_sum_ns, m->overflow ? "true" : "false");
	}
	if (r->has_l7) {
		const sonde_L7 *l = &r->l7;

		json_str(f, "proto", l->proto, true);
		json_str(f, "role", l->role, true);
		json_str(f, "family", l->family, true);
		json_str(f, "saddr", l->saddr, true);
		fprintf(f, "\"sport\":%u,", l->sport);
		json_str(f, "daddr", l->daddr, true);
		fprintf(f, "\"dport\":%u,", l->dport);
		fprintf(f, "\"latency_ns\":%" PRIu64 ",\"req_bytes\":%" PRIu64
			   ",\"resp_bytes\":%" PRIu64 ",\"status\":%u,\"error\":%s,",
			l->latency_ns, l->req_bytes, l->resp_bytes, l->status,
			l->error ? "true" : "false");
		if (strcmp(l->proto, "http")) {
			json_str(f, "command", l->command, true);
			json_str(f, "resource", l->resource, true);
			json_str(f, "detail", l->detail, true);
			json_str(f, "reply", l->reply, true);
			fprintf(f, "\"op2\":%u,\"txid\":%u,\"code\":%u,\"count\":%" PRIu64 ",",
				l->op2, l->txid, l->code, l->count);
		}
		/* SQL: the statement prefix also under its DESIGN.md name */
		if (!strcmp(l->proto, "pgsql") || !strcmp(l->proto, "mysql"))
			json_str(f, "query", l->resource, true);
		json_str(f, "method", l->method, true);
		json_str(f, "path", l->path, true);
		fprintf(f, "\"path_truncated\":%s,\"timeout\":%s,\"closed\":%s,\"tls\":%s,"
			   "\"conn_id\":%" PRIu64,
			l->path_truncated ? "true" : "false", l->timeout ? "true" : "false",
			l->closed ? "true" : "false", l->tls ? "true" : "false", l->conn_id);
	}
	if (r->has_l7 && r->l7.flow_id)
		fprintf(f, ",\"flow_id\":%" PRIu64, r->l7.flow_id);
	if (r->has_flow)
		flow_print_json(&r->flow, f);
	if (r->has_profile)
		profile_record_json(r, f);
	fputs("}\n", f);
}

void record_print_text(const sonde_Record *r, FILE *f)
{
	const sonde_L7 *l = &r->l7;
	time_t secs = r->ts_ns / 1000000000ull;
	struct tm tm;
	char when[16];

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (!r->has_l7) {
		fprintf(f, "%s.%03u %s[%u] %s\n", when, (unsigned)(r->ts_ns / 1000000 % 1000),
			r->comm, r->pid, record_type_name(r->type));
		return;
	}
	fprintf(f, "%s.%03u %-15s %7u %-6s %s", when, (unsigned)(r->ts_ns / 1000000 % 1000),
		r->comm, r->pid, l->role, l->proto);
	if (!strcmp(l->family, "unix"))
		fprintf(f, " unix");
	else
		fprintf(f, " %s:%u -> %s:%u", l->saddr, l->sport, l->daddr, l->dport);
	if (strcmp(l->proto, "http"))
		fprintf(f, " %s %s%s", l->command, l->resource, l->path_truncated ? "..." : "");
	else
		fprintf(f, " %s %s%s", l->method, l->path, l->path_truncated ? "..." : "");
	if (l->timeout)
		fprintf(f, " TIMEOUT");
	else if (l->closed && !l->status)
		fprintf(f, " CLOSED");
	else
		fprintf(f, " %u %.3fms", l->status, l->latency_ns / 1e6);
	fprintf(f, " req=%" PRIu64 "B resp=%" PRIu64 "B\n", l->req_bytes, l->resp_bytes);
}

int record_write_delimited(const sonde_Record *r, FILE *f)
{
	uint8_t buf[sonde_Record_size + 16];
	pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof(buf));

	if (!pb_encode_ex(&os, sonde_Record_fields, r, PB_ENCODE_DELIMITED))
		return -1;
	return fwrite(buf, 1, os.bytes_written, f) == os.bytes_written ? 0 : -1;
}

void sink_record(struct record_sink *s, const sonde_Record *r)
{
	if (r->has_metric && s->on_metric)
		s->on_metric(s->on_metric_arg, r);
	s->records++;
	if (s->out && record_write_delimited(r, s->out))
		s->write_errors++;
	if (s->quiet)
		return;
	if (s->json)
		record_print_json(r, stdout);
	else if (r->has_l7)
		record_print_text(r, stdout); /* the human view shows transactions only */
}

void sink_l7_event(struct record_sink *s, const struct sonde_l7_event *e)
{
	sonde_Record r;

	l7_event_to_record(e, s->realtime_offset_ns, &r);
	sink_record(s, &r);
}

/* `sonde decode PATH`: every record of a record file as a JSON line. */
int cmd_decode(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	uint64_t n = 0;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "sonde: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (;;) {
		uint8_t buf[sonde_Record_size + 16];
		uint64_t len = 0;
		int shift = 0, c;
		sonde_Record r = sonde_Record_init_zero;
		pb_istream_t is;

		/* the varint length prefix */
		while ((c = fgetc(f)) != EOF) {
			len |= (uint64_t)(c & 0x7f) << shift;
			shift += 7;
			if (!(c & 0x80) || shift > 63)
				break;
		}
		if (c == EOF && shift == 0)
			break; /* clean end of file */
		if (c == EOF || len > sizeof(buf)) {
			fprintf(stderr, "sonde: %s: record %" PRIu64 " has a broken length prefix; "
					"the file is truncated or not a sonde record file\n",
				path, n + 1);
			rc = 1;
			break;
		}
		if (fread(buf, 1, len, f) != len) {
			fprintf(stderr, "sonde: %s: record %" PRIu64 " is truncated (file cut short)\n",
				path, n + 1);
			rc = 1;
			break;
		}
		is = pb_istream_from_buffer(buf, len);
		if (!pb_decode(&is, sonde_Record_fields, &r)) {
			fprintf(stderr, "sonde: %s: record %" PRIu64 " does not decode: %s\n", path,
				n + 1, PB_GET_ERROR(&is));
			rc = 1;
			break;
		}
		record_print_json(&r, stdout);
		n++;
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* The fields of a profile record (after "comm", which ends with a comma). */
void profile_record_json(const sonde_Record *r, FILE *f)
{
	const sonde_Profile *p = &r->profile;
	bool cpu = !strcmp(p->kind, "cpu");

	json_str(f, "kind", p->kind, true);
	json_str(f, "thread", p->thread, true);
	json_str(f, "stack", p->stack, true);
	fprintf(f, "\"%s\":%" PRIu64 ",\"value_ns\":%" PRIu64 ",\"start_ns\":%" PRIu64
		   ",\"end_ns\":%" PRIu64 ",\"hz\":%u,\"frames\":%u,\"unknown_frames\":%u,"
		   "\"truncated\":%s,",
		cpu ? "samples" : "blocked", p->samples, p->value_ns, p->start_ns, p->end_ns, p->hz,
		p->frames, p->unknown_frames, p->truncated ? "true" : "false");
	json_str(f, "pprof", p->pprof, false);
}
