/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Declarations shared by sonde's user-space pieces. */
#ifndef SONDE_USER_H
#define SONDE_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>

#include "events.h"
#include "record.pb.h"

/* Everything `sonde run` can be told. */
struct run_opts {
	double duration_s;          /* 0 = until interrupted */
	bool json;                  /* JSON lines on stdout */
	bool quiet;                 /* nothing per record on stdout */
	const char *output;         /* record file, or NULL */
	uint32_t pid;               /* 0 = every process */
	uint16_t ports[SONDE_MAX_PORT_FILTERS];
	uint32_t n_ports;
	bool pin;                   /* pin inspectable maps under /sys/fs/bpf/sonde */
	bool force_perfbuf;
	const char *btf;            /* BTF file to use instead of the kernel's */
	bool no_sys_btf;            /* ignore /sys/kernel/btf/vmlinux */
	double timeout_s;           /* report requests unanswered this long */
	uint32_t ring_bytes;        /* ring buffer size */
	uint32_t max_conns;         /* connection state entries */
	bool verifier_stats;        /* print per-program verifier work */
	const char *verifier_log;   /* where a rejected program's log goes */
	uint32_t log_mode;          /* 0 all, 1 errors, 2 sampled, 3 none (--logs) */
	uint32_t log_sample_n;      /* --logs sampled:N */
	const char *metrics_listen; /* host:port of /metrics, "" = off */
	bool route_raw;             /* --route-normalize=off */
	uint32_t max_series;        /* metric series in the kernel map */
	uint32_t metric_idle_s;     /* drop series idle this long */
	bool top;                   /* sonde top: a live table instead of records */
};

/* top.c: `sonde top` */
struct top;
struct top *top_new(void);
void top_free(struct top *t);
void top_on_metric(void *arg, const sonde_Record *r);
/* Show the last second; returns true when the view is done (not a terminal). */
bool top_render(struct top *t);

/* metrics.c: the kernel's RED map -> metric records and Prometheus text */
struct record_sink;
struct metrics *metrics_new(int red_fd, const struct run_opts *o);
void metrics_free(struct metrics *m);
/* Read the map; emit 1 s records, and 60 s records every minute. */
void metrics_poll(struct metrics *m, struct record_sink *sink, uint64_t now_mono_ns);
/* Prometheus text exposition of everything known, plus health lines. */
void metrics_write_prometheus(struct metrics *m, FILE *f);
int metrics_series(const struct metrics *m);
/* A timeout found by the user-space sweep: counted in its series here, since
 * the kernel never saw it end. */
void metrics_add_timeout(struct metrics *m, const struct sonde_red_key *key);

/* prom.c: a minimal HTTP/1.0 server for GET /metrics */
int prom_listen(const char *hostport);
/* Answer one waiting scrape; `health` appends sonde's own metrics. */
void prom_serve_one(int listen_fd, struct metrics *m, void (*health)(FILE *, void *), void *arg);

int parse_run_opts(int argc, char **argv, struct run_opts *o);
int cmd_run(const struct run_opts *o);
int cmd_decode(const char *path);

/* records.c: kernel event -> record -> JSON / text / file */
struct record_sink {
	FILE *out;             /* record file (length-delimited), or NULL */
	bool json;
	bool quiet;
	uint64_t realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC at start */
	uint64_t records;      /* records handled */
	uint64_t write_errors; /* records the file did not take */
	/* also handed every metric record (sonde top) */
	void (*on_metric)(void *arg, const sonde_Record *r);
	void *on_metric_arg;
};

void l7_event_to_record(const struct sonde_l7_event *e, uint64_t realtime_offset_ns,
			sonde_Record *r);
void record_print_json(const sonde_Record *r, FILE *f);
void record_print_text(const sonde_Record *r, FILE *f);
int record_write_delimited(const sonde_Record *r, FILE *f);
void sink_l7_event(struct record_sink *s, const struct sonde_l7_event *e);
void sink_record(struct record_sink *s, const sonde_Record *r);
extern const char *const method_names[SONDE_M__COUNT];
/* "http", "redis", ... ("" for unknown) */
const char *proto_name(uint8_t proto);
/* Name of an operation code of a protocol ("GET", "COM_QUERY" ...; "" if none). */
const char *l7_op_name(uint8_t proto, uint8_t op);

/* sweep.c: requests that never got a response */
/* Report requests older than timeout_ns (records as --logs says, and in the
 * metric series); *live counts the connection states in the map. With
 * timeout_ns UINT64_MAX it only counts. Returns the number reported. */
struct metrics;
int sweep_timeouts(int conns_fd, uint64_t timeout_ns, const struct run_opts *o,
		   struct record_sink *sink, struct metrics *m, uint64_t *live);

/* The name of a process (SONDE_COMM_LEN bytes, empty if it is gone). */
void read_proc_comm(uint32_t pid, char *comm);
uint64_t mono_ns(void);
uint64_t realtime_ns(void);

#endif /* SONDE_USER_H */
