// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * L4 flows (issue 5): load bpf/flow.bpf.c, attach its TC program to the
 * chosen interfaces (clsact ingress and egress; loopback egress only) and its
 * socket filter to AF_PACKET sockets on mirror ports, then once a second read
 * the kernel's flow map: 1 s and 60 s meters (differences since the last
 * read), and one flow log per flow that closed or timed out, which is then
 * deleted from the map. User space keeps only the last snapshot of each flow.
 * docs/FLOWS.md lists every field, close type and timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sonde.h"
#include "flow_id.h"
#include "flow.skel.h"

#define MAX_TAPS 64
#define SEC_NS 1000000000ull
#define ARPHRD_ETHER_ 1
#define ARPHRD_LOOPBACK_ 772

const char *const flow_timeout_names[FT__COUNT] = {
	[FT_CLOSED] = "closed", [FT_SYN] = "syn", [FT_FIN] = "fin",
	[FT_TCP] = "tcp", [FT_UDP] = "udp", [FT_ICMP] = "icmp",
};

/* One TC attachment (one interface, one direction). */
struct tc_tap {
	struct bpf_tc_hook hook;
	struct bpf_tc_opts opts;
	bool created_qdisc; /* we made the clsact qdisc: remove it at exit */
	bool destroy_hook;  /* this entry destroys the qdisc (one per interface) */
};

/* What user space remembers of a flow between two reads. */
struct flow_entry {
	struct flow_entry *next;
	struct sonde_flow_key key;
	struct sonde_flow_val val;       /* last read */
	struct sonde_flow_val sec_base;  /* at the last 1 s meter */
	struct sonde_flow_val min_base;  /* at the last 60 s meter */
	uint64_t gen;                    /* sweep that last saw it */
};

struct flows {
	struct flow_bpf *skel;
	const struct run_opts *o;
	struct bpf_link *links[2];
	struct tc_tap tc[MAX_TAPS];
	int n_tc;
	int mirror_fd[MAX_TAPS];
	int n_mirror;
	struct flow_entry **buckets;
	size_t n_buckets;
	size_t n_entries;
	uint64_t gen;
	uint64_t last_poll_ns, next_minute_ns;
	uint64_t minute_start_rt, sec_start_rt;
	/* counters (stats line, /metrics) */
	uint64_t logs, meters, evicted, sweeps_late, deleted, live, max_sweep_ns;
};

bool flows_wanted(const struct run_opts *o)
{
	return o->flows || o->flow_if || o->flow_mirror;
}

/* --flow-timeouts closed=2,syn=5,...: any subset, seconds. */
int parse_flow_timeouts(const char *s, struct run_opts *o)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end;
		int k;

		for (k = 0; k < FT__COUNT; k++)
			if (eq && (size_t)(eq - tok) == strlen(flow_timeout_names[k]) &&
			    !strncmp(tok, flow_timeout_names[k], eq - tok))
				break;
		if (k == FT__COUNT) {
			fprintf(stderr, "sonde: --flow-timeouts wants NAME=SECONDS pairs with NAME one of "
					"closed, syn, fin, tcp, udp, icmp; not '%s'\n", tok);
			return -1;
		}
		errno = 0;
		o->flow_timeout[k] = strtod(eq + 1, &end);
		if (errno || end == eq + 1 || *end || o->flow_timeout[k] < 0 ||
		    o->flow_timeout[k] > 1e7) {
			fprintf(stderr, "sonde: --flow-timeouts %s: want seconds between 0 and 1e7\n",
				tok);
			return -1;
		}
	}
	return 0;
}

/* ---- interfaces ----------------------------------------------------------- */

static int iface_type(const char *name)
{
	char path[300];
	FILE *f;
	int t = -1;

	snprintf(path, sizeof(path), "/sys/class/net/%s/type", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &t) != 1)
			t = -1;
		fclose(f);
	}
	return t;
}

/* Physical: its sysfs node is not under /sys/devices/virtual. */
static bool iface_physical(const char *name)
{
	char path[300], target[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/net/%s", name);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = 0;
	return !strstr(target, "/virtual/");
}

static int mirror_open(struct flows *fl, const char *name, int ifindex)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC };
	int prog = bpf_program__fd(fl->skel->progs.flow_mirror);
	int fd, rcvbuf = 4096;

	if (fl->n_mirror >= MAX_TAPS) {
		fprintf(stderr, "sonde: at most %d mirror ports\n", MAX_TAPS);
		return -1;
	}
	/* protocol 0: nothing arrives before the filter is in place */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof(prog)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
		fprintf(stderr, "sonde: cannot open a packet socket on %s for flows: %s\n", name,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fl->mirror_fd[fl->n_mirror++] = fd;
	return 0;
}

static int tc_attach_one(struct flows *fl, int ifindex, enum bpf_tc_attach_point point,
			 bool created, bool destroy)
{
	struct tc_tap *t = &fl->tc[fl->n_tc];
	int err;

	memset(t, 0, sizeof(*t));
	t->hook.sz = sizeof(t->hook);
	t->hook.ifindex = ifindex;
	t->hook.attach_point = point;
	t->opts.sz = sizeof(t->opts);
	t->opts.prog_fd = bpf_program__fd(fl->skel->progs.flow_tc);
	err = bpf_tc_attach(&t->hook, &t->opts);
	if (err)
		return err;
	t->created_qdisc = created;
	t->destroy_hook = destroy;
	fl->n_tc++;
	return 0;
}

/* clsact ingress and egress (egress only on loopback, where every packet
 * passes both); a failure says why and falls back to a packet socket. */
static int tc_open(struct flows *fl, const char *name)
{
	int ifindex = if_nametoindex(name), type = iface_type(name);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	bool loop = type == ARPHRD_LOOPBACK_, created;
	int err;

	if (!ifindex) {
		fprintf(stderr, "sonde: --flow-if: no interface '%s' (see 'ip link')\n", name);
		return -1;
	}
	if (type != ARPHRD_ETHER_ && !loop) {
		fprintf(stderr, "sonde: --flow-if %s: link type %d is not Ethernet or loopback; "
				"sonde parses Ethernet frames only\n", name, type);
		return -1;
	}
	if (fl->n_tc + 2 > MAX_TAPS) {
		fprintf(stderr, "sonde: at most %d flow interfaces\n", MAX_TAPS / 2);
		return -1;
	}
	if (fl->o->flow_no_tc) {
		err = -EOPNOTSUPP; /* the fallback, on demand: it must work where TC cannot */
		goto fallback;
	}
	err = bpf_tc_hook_create(&hook);
	created = err == 0;
	if (err && err != -EEXIST)
		goto fallback;
	err = tc_attach_one(fl, ifindex, BPF_TC_EGRESS, created, loop && created);
	if (!err && !loop)
		err = tc_attach_one(fl, ifindex, BPF_TC_INGRESS, created, created);
	if (!err)
		return 0;
	if (created && fl->n_tc == 0) {
		/* nothing of ours on it: do not leave the qdisc behind */
		bpf_tc_hook_destroy(&hook);
	}
fallback:
	fprintf(stderr, "sonde: cannot attach TC to %s (%s); counting its flows from a packet "
			"socket instead\n", name, strerror(-err));
	return mirror_open(fl, name, ifindex);
}

static int for_each_name(struct flows *fl, const char *list, bool mirror)
{
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *n = strtok_r(buf, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		if (mirror) {
			int ifindex = if_nametoindex(n);

			if (!ifindex) {
				fprintf(stderr, "sonde: --flow-mirror: no interface '%s'\n", n);
				return -1;
			}
			if (mirror_open(fl, n, ifindex))
				return -1;
		} else if (tc_open(fl, n)) {
			return -1;
		}
	}
	return 0;
}

/* --flows alone: every non-virtual interface, and lo (egress only). */
static int default_ifaces(struct flows *fl)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "sonde: cannot list /sys/class/net: %s\n", strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) && !rc) {
		int type;

		if (e->d_name[0] == '.')
			continue;
		type = iface_type(e->d_name);
		if (type == ARPHRD_LOOPBACK_ || (type == ARPHRD_ETHER_ && iface_physical(e->d_name)))
			rc = tc_open(fl, e->d_name);
	}
	closedir(d);
	return rc;
}

/* ---- load ---------------------------------------------------------------- */

/* --verifier-stats: the verifier's work per flow program (log level 4). */
#define N_FLOW_PROGS 4
static char *vlog[N_FLOW_PROGS];

static void verifier_logs_request(struct flows *fl)
{
	struct bpf_program *p;
	int i = 0;

	bpf_object__for_each_program(p, fl->skel->obj) {
		if (i >= N_FLOW_PROGS || !(vlog[i] = calloc(1, 1 << 16)))
			break;
		bpf_program__set_log_buf(p, vlog[i], 1 << 16);
		bpf_program__set_log_level(p, 4);
		i++;
	}
}

static void verifier_logs_print(struct flows *fl)
{
	struct bpf_program *p;
	int i = 0;

	bpf_object__for_each_program(p, fl->skel->obj) {
		long insns = -1, usec = -1;
		const char *q;

		if (i >= N_FLOW_PROGS || !vlog[i])
			break;
		if ((q = strstr(vlog[i], "processed ")))
			sscanf(q, "processed %ld insns", &insns);
		if ((q = strstr(vlog[i], "verification time")))
			sscanf(q, "verification time %ld usec", &usec);
		fprintf(stderr, "verifier: prog=%s insns=%ld time_us=%ld\n", bpf_program__name(p),
			insns, usec);
		free(vlog[i]);
		vlog[i++] = NULL;
	}
}

struct flows *flows_open(const struct run_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts, .btf_custom_path = o->btf);
	struct flows *fl = calloc(1, sizeof(*fl));
	int err;

	if (!fl)
		return NULL;
	fl->o = o;
	fl->n_buckets = 1;
	while (fl->n_buckets < o->flow_max)
		fl->n_buckets <<= 1;
	fl->buckets = calloc(fl->n_buckets, sizeof(*fl->buckets));
	fl->skel = flow_bpf__open_opts(&open_opts);
	if (!fl->buckets || !fl->skel) {
		fprintf(stderr, "sonde: cannot open the flow BPF object: %s\n", strerror(errno));
		goto fail;
	}
	bpf_map__set_max_entries(fl->skel->maps.flows, o->flow_max);
	bpf_map__set_max_entries(fl->skel->maps.sockinfo, o->flow_max);
	if (o->verifier_stats)
		verifier_logs_request(fl);
	err = flow_bpf__load(fl->skel);
	if (o->verifier_stats)
		verifier_logs_print(fl);
	if (err) {
		fprintf(stderr, "sonde: loading the flow programs failed: %s (SONDE_DEBUG=1 shows "
				"libbpf's log)\n", strerror(-err));
		goto fail;
	}
	fl->links[0] = bpf_program__attach(fl->skel->progs.flow_sock_state);
	fl->links[1] = bpf_program__attach(fl->skel->progs.flow_sock_recv);
	if (!fl->links[0] || !fl->links[1])
		fprintf(stderr, "sonde: flows: the sock/tcp tracepoints did not attach (%s); flows "
				"will lack the kernel's RTT, retransmissions and owner process\n",
			strerror(errno));
	if ((o->flow_if && for_each_name(fl, o->flow_if, false)) ||
	    (o->flow_mirror && for_each_name(fl, o->flow_mirror, true)) ||
	    (o->flows && !o->flow_if && default_ifaces(fl)))
		goto fail;
	if (fl->n_tc + fl->n_mirror == 0) {
		fprintf(stderr, "sonde: flows: no interface to watch (give --flow-if)\n");
		goto fail;
	}
	fprintf(stderr, "sonde: flows: %d TC hooks, %d packet sockets\n", fl->n_tc, fl->n_mirror);
	return fl;
fail:
	flows_close(fl);
	return NULL;
}

void flows_close(struct flows *fl)
{
	if (!fl)
		return;
	for (int i = fl->n_tc - 1; i >= 0; i--) {
		struct tc_tap *t = &fl->tc[i];

		t->opts.prog_fd = 0;
		t->opts.prog_id = 0;
		t->opts.flags = 0;
		bpf_tc_detach(&t->hook, &t->opts);
		if (t->destroy_hook) {
			t->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&t->hook);
		}
	}
	for (int i = 0; i < fl->n_mirror; i++)
		close(fl->mirror_fd[i]);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(fl->links[i]);
	flow_bpf__destroy(fl->skel);
	if (fl->buckets) {
		for (size_t b = 0; b < fl->n_buckets; b++) {
			for (struct flow_entry *e = fl->buckets[b], *n; e; e = n) {
				n = e->next;
				free(e);
			}
		}
		free(fl->buckets);
	}
	free(fl);
}

/* ---- user-space table ----------------------------------------------------- */

static size_t key_hash(const struct flows *fl, const struct sonde_flow_key *k)
{
	uint64_t h = sonde_flow_id(k->family, k->l4, k->addr[0], k->addr[1], k->port[0],
				   k->port[1]);

	h ^= (uint64_t)k->ifindex * 0x9e3779b97f4a7c15ull + k->tap;
	return (h ^ (h >> 29)) & (fl->n_buckets - 1);
}

static struct flow_entry *entry_get(struct flows *fl, const struct sonde_flow_key *k)
{
	size_t b = key_hash(fl, k);
	struct flow_entry *e;

	for (e = fl->buckets[b]; e; e = e->next)
		if (!memcmp(&e->key, k, sizeof(*k)))
			return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = *k;
	e->next = fl->buckets[b];
	fl->buckets[b] = e;
	fl->n_entries++;
	return e;
}

static void entry_remove(struct flows *fl, struct flow_entry *gone)
{
	struct flow_entry **pp = &fl->buckets[key_hash(fl, &gone->key)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			free(gone);
			fl->n_entries--;
			return;
		}
	}
}

/* ---- records ---------------------------------------------------------------- */

static void addr_str(uint8_t family, const uint8_t *a, char *out, size_t n)
{
	inet_ntop(family == SONDE_FAMILY_INET6 ? AF_INET6 : AF_INET, a, out, n);
}

static const char *l4_name(uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	default: return "icmp";
	}
}

static const char *client_by_name(uint8_t by)
{
	switch (by) {
	case SONDE_CLIENT_BY_SYN: return "syn";
	case SONDE_CLIENT_BY_FIRST: return "first";
	default: return "port";
	}
}

static uint64_t diff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Counters of `cur` minus `base` (meters), or `cur` itself (base NULL). */
static void fill_counters(sonde_Flow *r, const struct sonde_flow_val *cur,
			  const struct sonde_flow_val *base)
{
	static const struct sonde_flow_val zero;
	const struct sonde_flow_dir *c = &cur->dir[cur->client & 1], *s = &cur->dir[!(cur->client & 1)];
	const struct sonde_flow_val *b0 = base ? base : &zero;
	const struct sonde_flow_dir *bc = &b0->dir[cur->client & 1], *bs = &b0->dir[!(cur->client & 1)];

	r->pkts_c2s = diff(c->pkts, bc->pkts);
	r->pkts_s2c = diff(s->pkts, bs->pkts);
	r->bytes_c2s = diff(c->bytes, bc->bytes);
	r->bytes_s2c = diff(s->bytes, bs->bytes);
	r->payload_c2s = diff(c->payload, bc->payload);
	r->payload_s2c = diff(s->payload, bs->payload);
	r->retrans_c2s = diff(c->retrans, bc->retrans);
	r->retrans_s2c = diff(s->retrans, bs->retrans);
	r->zero_win_c2s = diff(c->zero_win, bc->zero_win);
	r->zero_win_s2c = diff(s->zero_win, bs->zero_win);
	r->ooo_c2s = diff(c->ooo, bc->ooo);
	r->ooo_s2c = diff(s->ooo, bs->ooo);
	r->syn_c2s = diff(c->syn, bc->syn);
	r->syn_s2c = diff(s->syn, bs->syn);
	r->fin_c2s = diff(c->fin, bc->fin);
	r->fin_s2c = diff(s->fin, bs->fin);
	r->rst_c2s = diff(c->rst, bc->rst);
	r->rst_s2c = diff(s->rst, bs->rst);
	r->flags_c2s = c->flags;
	r->flags_s2c = s->flags;
}

/* A kernel comm (not always NUL-terminated) into a 16-byte record string. */
static void copy_comm(char dst[16], const char *src)
{
	size_t n = strnlen(src, SONDE_COMM_LEN);

	if (n > 15)
		n = 15;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* What the local sockets of this 5-tuple told the tracepoints. */
static void join_socket(struct flows *fl, const struct flow_entry *e, sonde_Record *rec)
{
	struct sonde_flow_key k = e->key;
	struct sonde_sock_info si;
	sonde_Flow *r = &rec->flow;
	const struct sonde_sock_side *cs, *ss;
	uint8_t c = e->val.client & 1;

	k.ifindex = 0;
	k.tap = 0;
	if (e->key.l4 != IPPROTO_TCP ||
	    bpf_map_lookup_elem(bpf_map__fd(fl->skel->maps.sockinfo), &k, &si))
		return;
	cs = &si.side[c];
	ss = &si.side[!c];
	r->local_client = cs->seen;
	r->local_server = ss->seen;
	r->client_pid = cs->pid;
	r->server_pid = ss->pid;
	r->srtt_client_ns = (uint64_t)cs->srtt_us * 1000;
	r->srtt_server_ns = (uint64_t)ss->srtt_us * 1000;
	r->kernel_retrans_c2s = cs->total_retrans;
	r->kernel_retrans_s2c = ss->total_retrans;
	copy_comm(r->server_comm, ss->comm);
	/* the record's process: the client's if it is here, else the server's */
	if (cs->pid) {
		rec->pid = cs->pid;
		copy_comm(rec->comm, cs->comm);
	} else if (ss->pid) {
		rec->pid = ss->pid;
		copy_comm(rec->comm, ss->comm);
	}
}

static void emit(struct flows *fl, struct record_sink *sink, const struct flow_entry *e,
		 const struct sonde_flow_val *base, uint32_t interval_s, const char *close_type,
		 uint64_t ts_rt)
{
	const struct sonde_flow_key *k = &e->key;
	const struct sonde_flow_val *v = &e->val;
	uint8_t c = v->client & 1, s = !c;
	sonde_Record rec = sonde_Record_init_zero;
	sonde_Flow *r = &rec.flow;
	char ifname[IF_NAMESIZE] = "";

	rec.type = sonde_RecordType_RECORD_FLOW;
	rec.ts_ns = ts_rt;
	rec.has_flow = true;
	snprintf(r->l4, sizeof(r->l4), "%s", l4_name(k->l4));
	snprintf(r->family, sizeof(r->family), "%s",
		 k->family == SONDE_FAMILY_INET6 ? "ipv6" : "ipv4");
	addr_str(k->family, k->addr[c], r->saddr, sizeof(r->saddr));
	addr_str(k->family, k->addr[s], r->daddr, sizeof(r->daddr));
	r->sport = k->port[c];
	r->dport = k->port[s];
	r->flow_id = sonde_flow_id(k->family, k->l4, k->addr[0], k->addr[1], k->port[0], k->port[1]);
	r->interval_s = interval_s;
	if (close_type)
		snprintf(r->close_type, sizeof(r->close_type), "%s", close_type);
	r->duration_ns = diff(v->last_ns, v->first_ns);
	fill_counters(r, v, base);
	if (v->syn_ns && v->synack_ns > v->syn_ns)
		r->rtt_server_ns = v->synack_ns - v->syn_ns;
	if (v->synack_ns && v->ack_ns > v->synack_ns)
		r->rtt_client_ns = v->ack_ns - v->synack_ns;
	if (r->rtt_server_ns && r->rtt_client_ns)
		r->rtt_ns = r->rtt_server_ns + r->rtt_client_ns;
	snprintf(r->tap, sizeof(r->tap), "%s", k->tap == SONDE_TAP_MIRROR ? "mirror" : "tc");
	if (if_indextoname(k->ifindex, ifname))
		snprintf(r->interface, sizeof(r->interface), "%s", ifname);
	r->ifindex = k->ifindex;
	snprintf(r->client_by, sizeof(r->client_by), "%s", client_by_name(v->client_by));
	join_socket(fl, e, &rec);
	sink_record(sink, &rec);
	if (interval_s)
		fl->meters++;
	else
		fl->logs++;
}

/* ---- closing ----------------------------------------------------------------- */

static uint64_t tmo(const struct flows *fl, enum flow_timeout t)
{
	return (uint64_t)(fl->o->flow_timeout[t] * 1e9);
}

/* The close type of a flow that has ended by now, or NULL while it lives. */
static const char *close_type(const struct flows *fl, const struct sonde_flow_val *v, uint64_t now)
{
	uint8_t c = v->client & 1;
	const struct sonde_flow_dir *dc = &v->dir[c], *ds = &v->dir[!c];
	uint64_t idle = diff(now, v->last_ns);

	if (v->first_rst && idle >= tmo(fl, FT_CLOSED)) {
		if ((v->first_rst - 1) == c)
			return "client_rst";
		/* a server RST before any SYN-ACK answers the SYN: nothing listens */
		return dc->syn && !ds->syn ? "refused" : "server_rst";
	}
	if (dc->fin && ds->fin && idle >= tmo(fl, FT_CLOSED))
		return "fin";
	if (v->client_by == SONDE_CLIENT_BY_SYN && !v->ack_ns && !v->first_rst &&
	    idle >= tmo(fl, FT_SYN))
		return "handshake_timeout";
	if ((dc->fin || ds->fin) && !v->first_rst && idle >= tmo(fl, FT_FIN))
		return "half_close_timeout";
	if (idle >= tmo(fl, FT_TCP))
		return "idle_timeout";
	return NULL;
}

static const char *timeout_type(const struct flows *fl, const struct flow_entry *e, uint64_t now)
{
	uint64_t idle = diff(now, e->val.last_ns);

	if (e->key.l4 == IPPROTO_TCP)
		return close_type(fl, &e->val, now);
	if (idle >= tmo(fl, e->key.l4 == IPPROTO_UDP ? FT_UDP : FT_ICMP))
		return "idle_timeout";
	return NULL;
}

/* The flow is over: its last partial meters, then its log. */
static void finish(struct flows *fl, struct record_sink *sink, struct flow_entry *e,
		   const char *type, uint64_t mono_to_rt)
{
	if (fl->o->flow_meters) {
		if (e->val.dir[0].pkts + e->val.dir[1].pkts !=
		    e->sec_base.dir[0].pkts + e->sec_base.dir[1].pkts)
			emit(fl, sink, e, &e->sec_base, 1, NULL, fl->sec_start_rt);
		if (e->val.dir[0].pkts + e->val.dir[1].pkts !=
		    e->min_base.dir[0].pkts + e->min_base.dir[1].pkts)
			emit(fl, sink, e, &e->min_base, 60, NULL, fl->minute_start_rt);
	}
	emit(fl, sink, e, NULL, 0, type, e->val.first_ns + mono_to_rt);
}

static bool moved(const struct sonde_flow_val *a, const struct sonde_flow_val *b)
{
	return a->dir[0].pkts != b->dir[0].pkts || a->dir[1].pkts != b->dir[1].pkts;
}

void flows_poll(struct flows *fl, struct record_sink *sink, uint64_t now)
{
	int map = bpf_map__fd(fl->skel->maps.flows);
	uint64_t mono_to_rt = sink->realtime_offset_ns, now_rt = now + mono_to_rt;
	struct sonde_flow_key key, next, *dead = NULL;
	size_t n_dead = 0, cap_dead = 0;
	bool minute, have = false;
	uint64_t t0 = mono_ns();

	if (!fl->last_poll_ns) {
		fl->next_minute_ns = now + 60 * SEC_NS;
		fl->sec_start_rt = fl->minute_start_rt = now_rt - SEC_NS;
	} else if (now - fl->last_poll_ns > 3 * SEC_NS / 2) {
		fl->sweeps_late++; /* the loop was held up: meters cover more than 1 s */
	}
	fl->last_poll_ns = now;
	minute = now >= fl->next_minute_ns;
	fl->gen++;
	fl->live = 0;
	while (bpf_map_get_next_key(map, have ? &key : NULL, &next) == 0) {
		struct flow_entry *e;
		const char *type;

		key = next;
		have = true;
		e = entry_get(fl, &key);
		if (!e || bpf_map_lookup_elem(map, &key, &e->val))
			continue;
		fl->live++;
		e->gen = fl->gen;
		if (fl->o->flow_meters && moved(&e->val, &e->sec_base)) {
			emit(fl, sink, e, &e->sec_base, 1, NULL, fl->sec_start_rt);
		}
		e->sec_base = e->val;
		if (minute) {
			if (fl->o->flow_meters && moved(&e->val, &e->min_base))
				emit(fl, sink, e, &e->min_base, 60, NULL, fl->minute_start_rt);
			e->min_base = e->val;
		}
		type = timeout_type(fl, e, now);
		if (!type)
			continue;
		finish(fl, sink, e, type, mono_to_rt);
		if (n_dead == cap_dead) {
			struct sonde_flow_key *p = realloc(dead, (cap_dead * 2 + 16) * sizeof(*p));

			if (!p)
				break;
			dead = p;
			cap_dead = cap_dead * 2 + 16;
		}
		dead[n_dead++] = key;
	}
	/* delete after the walk: deleting under get_next_key would restart it */
	for (size_t i = 0; i < n_dead; i++) {
		struct flow_entry *e = entry_get(fl, &dead[i]);

		bpf_map_delete_elem(map, &dead[i]);
		if (e)
			entry_remove(fl, e);
		fl->deleted++;
		fl->live--;
	}
	free(dead);
	/* in the table, gone from the map, not deleted by us: the LRU evicted it */
	for (size_t b = 0; b < fl->n_buckets; b++) {
		for (struct flow_entry *e = fl->buckets[b], *n; e; e = n) {
			n = e->next;
			if (e->gen == fl->gen)
				continue;
			fl->evicted++;
			finish(fl, sink, e, "evicted", mono_to_rt);
			entry_remove(fl, e);
		}
	}
	fl->sec_start_rt = now_rt;
	if (minute) {
		fl->minute_start_rt = now_rt;
		fl->next_minute_ns = now + 60 * SEC_NS;
	}
	if (mono_ns() - t0 > fl->max_sweep_ns)
		fl->max_sweep_ns = mono_ns() - t0;
}

void flows_finish(struct flows *fl, struct record_sink *sink)
{
	uint64_t now = mono_ns();

	if (!fl)
		return;
	flows_poll(fl, sink, now);
	for (size_t b = 0; b < fl->n_buckets; b++) {
		for (struct flow_entry *e = fl->buckets[b], *n; e; e = n) {
			n = e->next;
			finish(fl, sink, e, "exit", sink->realtime_offset_ns);
			entry_remove(fl, e);
		}
	}
}

/* ---- counters ------------------------------------------------------------------ */

static const char *const kstat_names[] = {
	"flow_packets", "flow_not_ip", "flow_other_l4", "flow_fragments", "flow_truncated",
	"flows_created", "flow_create_failed", "flow_sock_updates",
};
#define N_KSTATS (sizeof(struct sonde_flow_stats) / sizeof(__u64))
_Static_assert(sizeof(kstat_names) / sizeof(kstat_names[0]) == N_KSTATS,
	       "every counter in struct sonde_flow_stats has a name");

static void read_kstats(struct flows *fl, __u64 *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sonde_flow_stats *per = calloc(ncpu > 0 ? ncpu : 1, sizeof(*per));
	__u32 zero = 0;

	memset(sum, 0, N_KSTATS * sizeof(*sum));
	if (per && ncpu > 0 &&
	    bpf_map_lookup_elem(bpf_map__fd(fl->skel->maps.flow_stats), &zero, per) == 0)
		for (int c = 0; c < ncpu; c++)
			for (size_t i = 0; i < N_KSTATS; i++)
				sum[i] += ((__u64 *)&per[c])[i];
	free(per);
}

void flows_stats_json(struct flows *fl, FILE *out)
{
	__u64 sum[N_KSTATS];

	if (!fl)
		return;
	read_kstats(fl, sum);
	for (size_t i = 0; i < N_KSTATS; i++)
		fprintf(out, ",\"%s\":%llu", kstat_names[i], (unsigned long long)sum[i]);
	fprintf(out, ",\"flows_live\":%" PRIu64 ",\"flows_evicted\":%" PRIu64
		     ",\"flow_logs\":%" PRIu64 ",\"flow_meters\":%" PRIu64
		     ",\"flow_sweeps_late\":%" PRIu64 ",\"flow_sweep_max_us\":%" PRIu64,
		fl->live, fl->evicted, fl->logs, fl->meters, fl->sweeps_late,
		fl->max_sweep_ns / 1000);
}

void flows_write_prometheus(struct flows *fl, FILE *out)
{
	__u64 sum[N_KSTATS];

	if (!fl)
		return;
	read_kstats(fl, sum);
	for (size_t i = 0; i < N_KSTATS; i++)
		fprintf(out, "# TYPE sonde_%s_total counter\nsonde_%s_total %llu\n", kstat_names[i],
			kstat_names[i], (unsigned long long)sum[i]);
	fprintf(out, "# HELP sonde_flows_tracked Flows in the kernel map.\n"
		     "# TYPE sonde_flows_tracked gauge\nsonde_flows_tracked %" PRIu64 "\n"
		     "# TYPE sonde_flows_limit gauge\nsonde_flows_limit %u\n"
		     "# HELP sonde_flows_evicted_total Flows the full map evicted before their end.\n"
		     "# TYPE sonde_flows_evicted_total counter\nsonde_flows_evicted_total %" PRIu64 "\n"
		     "# HELP sonde_flow_sweeps_late_total Flow reads more than 1.5 s apart.\n"
		     "# TYPE sonde_flow_sweeps_late_total counter\nsonde_flow_sweeps_late_total %" PRIu64
		     "\n",
		fl->live, fl->o->flow_max, fl->evicted, fl->sweeps_late);
}

/* ---- JSON --------------------------------------------------------------------- */

void flow_print_json(const sonde_Flow *r, FILE *f)
{
	fprintf(f, ",\"l4\":\"%s\",\"family\":\"%s\",\"saddr\":\"%s\",\"sport\":%u,"
		   "\"daddr\":\"%s\",\"dport\":%u,\"flow_id\":%" PRIu64 ",\"interval_s\":%u,"
		   "\"close_type\":\"%s\",\"duration_ns\":%" PRIu64,
		r->l4, r->family, r->saddr, r->sport, r->daddr, r->dport, r->flow_id, r->interval_s,
		r->close_type, r->duration_ns);
	fprintf(f, ",\"pkts_c2s\":%" PRIu64 ",\"pkts_s2c\":%" PRIu64 ",\"bytes_c2s\":%" PRIu64
		   ",\"bytes_s2c\":%" PRIu64 ",\"payload_c2s\":%" PRIu64 ",\"payload_s2c\":%" PRIu64,
		r->pkts_c2s, r->pkts_s2c, r->bytes_c2s, r->bytes_s2c, r->payload_c2s, r->payload_s2c);
	fprintf(f, ",\"retrans_c2s\":%u,\"retrans_s2c\":%u,\"zero_win_c2s\":%u,\"zero_win_s2c\":%u"
		   ",\"ooo_c2s\":%u,\"ooo_s2c\":%u,\"syn_c2s\":%u,\"syn_s2c\":%u,\"fin_c2s\":%u"
		   ",\"fin_s2c\":%u,\"rst_c2s\":%u,\"rst_s2c\":%u,\"flags_c2s\":%u,\"flags_s2c\":%u",
		r->retrans_c2s, r->retrans_s2c, r->zero_win_c2s, r->zero_win_s2c, r->ooo_c2s,
		r->ooo_s2c, r->syn_c2s, r->syn_s2c, r->fin_c2s, r->fin_s2c, r->rst_c2s, r->rst_s2c,
		r->flags_c2s, r->flags_s2c);
	fprintf(f, ",\"rtt_ns\":%" PRIu64 ",\"rtt_client_ns\":%" PRIu64 ",\"rtt_server_ns\":%" PRIu64
		   ",\"tap\":\"%s\",\"interface\":\"%s\",\"ifindex\":%u,\"client_by\":\"%s\"",
		r->rtt_ns, r->rtt_client_ns, r->rtt_server_ns, r->tap, r->interface, r->ifindex,
		r->client_by);
	fprintf(f, ",\"local_client\":%s,\"local_server\":%s,\"client_pid\":%u,\"server_pid\":%u"
		   ",\"server_comm\":\"",
		r->local_client ? "true" : "false", r->local_server ? "true" : "false",
		r->client_pid, r->server_pid);
	for (const unsigned char *p = (const unsigned char *)r->server_comm; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fprintf(f, "\",\"srtt_client_ns\":%" PRIu64 ",\"srtt_server_ns\":%" PRIu64
		   ",\"kernel_retrans_c2s\":%u,\"kernel_retrans_s2c\":%u",
		r->srtt_client_ns, r->srtt_server_ns, r->kernel_retrans_c2s, r->kernel_retrans_s2c);
}
