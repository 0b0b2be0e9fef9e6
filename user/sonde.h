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
	uint32_t max_series_per_proc; /* series one process may have; 0 = no limit */
	uint32_t enabled_protos;    /* --protocols: bit per enum sonde_proto */
	uint32_t n_proto_ports;     /* --proto-port hints */
	uint16_t proto_port_port[SONDE_MAX_PROTO_PORTS];
	uint8_t proto_port_proto[SONDE_MAX_PROTO_PORTS];
	uint32_t metric_idle_s;     /* drop series idle this long */
	bool top;                   /* sonde top: a live table instead of records */
	/* flows (issue 5, user/flow.c); off unless one of the first three is given */
	bool flows;                 /* --flows: default interfaces */
	const char *flow_if;        /* --flow-if LIST */
	const char *flow_mirror;    /* --flow-mirror LIST */
	uint32_t flow_max;          /* --flow-max: flow map entries */
	bool flow_meters;           /* 1 s / 60 s meter records (--flow-meters on|off) */
	double flow_timeout[6];     /* --flow-timeouts, seconds, enum flow_timeout order */
	bool flow_no_tc;            /* --flow-no-tc: take the packet-socket fallback (tests) */
	/* profiling (profile.c, docs/PROFILING.md) */
	bool profile;               /* --profile: on-CPU stack sampling */
	uint32_t profile_hz;        /* samples per second per CPU */
	double profile_interval_s;  /* a profile is written this often */
	bool offcpu;                /* --offcpu: blocked time per stack */
	uint32_t offcpu_min_us;     /* shorter blocked periods are not counted */
	const char *profile_dir;    /* where .pb.gz and .folded files go */
	uint32_t profile_stacks;    /* stack map entries per slot */
	uint32_t profile_entries;   /* count map entries per generation */
};

/* flow.c: L4 flows and TCP health aggregated in the kernel (docs/FLOWS.md) */
enum flow_timeout { FT_CLOSED, FT_SYN, FT_FIN, FT_TCP, FT_UDP, FT_ICMP, FT__COUNT };
extern const char *const flow_timeout_names[FT__COUNT];
struct flows;
struct record_sink;
bool flows_wanted(const struct run_opts *o);
int parse_flow_timeouts(const char *s, struct run_opts *o);
/* Load, attach to the interfaces; NULL after saying why. */
struct flows *flows_open(const struct run_opts *o);
/* Every second: meters, flow logs of closed and timed-out flows. */
void flows_poll(struct flows *f, struct record_sink *sink, uint64_t now_mono_ns);
/* At exit: report every open flow (close_type "exit"). */
void flows_finish(struct flows *f, struct record_sink *sink);
void flows_close(struct flows *f);
/* ,"flow_x":N pairs for the stats line; Prometheus lines for /metrics. */
void flows_stats_json(struct flows *f, FILE *out);
void flows_write_prometheus(struct flows *f, FILE *out);
void flow_print_json(const sonde_Flow *fl, FILE *f);

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
/* The kernel's per-process series counts (--max-series-per-process), kept
 * true by metrics_poll; -1 = none. */
void metrics_set_proc_map(struct metrics *m, int proc_fd);
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
/* dns.c */
const char *dns_qtype_name(unsigned qtype);
const char *dns_rcode_name(unsigned rcode);
void dns_name_from_wire(const char *wire, size_t n, char *out, size_t outn);
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

/* profile.c: on-CPU / off-CPU profiles (docs/PROFILING.md) */
struct profiler;
struct bpf_object;
/* Open (not load) the profiling programs; BTF as for the tracer. */
struct profiler *profiler_new(const struct run_opts *o, struct record_sink *sink,
			      const char *btf);
struct bpf_object *profiler_object(struct profiler *p);
/* Load, attach to every online CPU and start the first interval. 0 or -errno
 * (a load error is -errno from libbpf, for report_load_failure). */
int profiler_load(struct profiler *p);
int profiler_attach(struct profiler *p);
/* Every second: CPU hotplug, and the interval's profile when it is due. */
void profiler_tick(struct profiler *p, uint64_t now_mono_ns);
/* At exit: the last, partial interval. */
void profiler_finish(struct profiler *p);
void profiler_free(struct profiler *p);
/* ,"profile_x":N,... for the stats line; Prometheus lines for /metrics. */
void profiler_stats_json(struct profiler *p, FILE *f);
void profiler_write_health(struct profiler *p, FILE *f);
/* The profile fields of a record as JSON, after "comm" and its comma. */
void profile_record_json(const sonde_Record *r, FILE *f);

#endif /* SONDE_USER_H */
