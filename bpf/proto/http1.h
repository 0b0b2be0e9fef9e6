/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * HTTP/1.x inference, framing, field extraction and request/response pairing
 * as pure C. The same code compiles into the BPF socket tracer and into the
 * native unit tests and fuzzers, so what the tests prove is what the kernel runs.
 *
 * Model: a connection has two byte streams. One carries requests, the other
 * responses; which is which is learnt from the first bytes seen (inference).
 * Each stream runs a byte-level state machine over message heads and chunk-size
 * lines, and skips bodies arithmetically (content-length, chunk data), so body
 * bytes are never read. Requests take a slot in a small pipeline queue when they
 * start; a response that ends completes the oldest slot and is reported through
 * sonde_h1_emit(). Messages may be split at any byte across syscalls.
 *
 * The includer provides, before including this header:
 *   SONDE_INLINE                      function qualifier (always_inline in BPF)
 *   sonde_read_user(dst, n, src)      copy n (<= H1_WINDOW) bytes; 0 on success
 *   sonde_h1_emit(ctx, conn, slot, status, resp_bytes, ts_end, flags)
 *   sonde_stat_add(ctx, field_index)  count an event in struct sonde_stats
 * and may override H1_WINDOW and H1_STEPS.
 *
 * Bounds (documented in docs/RECORDS.md):
 *   - H1_STEPS parser steps per syscall: one step scans one byte of a head or
 *     chunk line, or skips a whole body/chunk run. Heads longer than that in a
 *     single syscall lose framing (counted as parse_budget) and resync on the
 *     next message that starts a syscall.
 *   - SONDE_PATH_MAX bytes of path, SONDE_PIPELINE_DEPTH outstanding requests.
 */
#ifndef SONDE_PROTO_HTTP1_H
#define SONDE_PROTO_HTTP1_H

#include "events.h"

#ifndef H1_WINDOW
#define H1_WINDOW 256 /* bytes copied from user memory at a time; power of 2 */
#endif
#ifndef H1_BARRIER
#define H1_BARRIER() __asm__ __volatile__("" ::: "memory")
#endif
#ifndef H1_OPAQUE
#define H1_OPAQUE(v) __asm__ __volatile__("" : "+r"(v))
#endif
/* Whether numeric and id-like path segments become placeholders in routes;
 * BPF points this at a load-time constant (--route-normalize). */
#ifndef H1_ROUTE_NORMALISE
#define H1_ROUTE_NORMALISE 1
#endif
#ifndef H1_STEPS
#define H1_STEPS 1024 /* parser steps per feed call */
#endif

/* Directions of a connection as seen by the traced process. */
enum h1_dir { H1_DIR_NONE = 0, H1_DIR_SEND = 1, H1_DIR_RECV = 2 };

/* Where a stream is inside its current message. */
enum h1_phase {
	H1_IDLE = 0,      /* between messages */
	H1_REQ_METHOD,    /* request line: method token */
	H1_REQ_TARGET,    /* request line: target (path) */
	H1_REQ_VERSION,   /* request line: "HTTP/1.x" */
	H1_RESP_VERSION,  /* status line: "HTTP/1.x" */
	H1_RESP_STATUS,   /* status line: three digits */
	H1_LINE_SKIP,     /* rest of a line nobody needs, then a header line */
	H1_HDR_START,     /* first byte of a header line, or the empty line */
	H1_HDR_NAME,      /* header name, matched against the few we need */
	H1_HDR_VALUE,     /* value of Content-Length or Transfer-Encoding */
	H1_BODY,          /* content-length body: skipped by count */
	H1_CHUNK_SIZE,    /* hex size of the next chunk */
	H1_CHUNK_EXT,     /* chunk extension, up to the end of the line */
	H1_CHUNK_DATA,    /* chunk data plus its CRLF: skipped by count */
	H1_TRAILER_START, /* first byte of a trailer line, or the empty line */
	H1_TRAILER_SKIP,  /* rest of a trailer line */
	H1_BODY_EOF,      /* body delimited by connection close */
	H1_LOST,          /* framing lost: waits for a syscall that starts a message */
	H1_UPGRADED,      /* 101 or CONNECT tunnel: no longer HTTP/1 */
};

/* h1_stream.flags */
#define H1S_CHUNKED   0x01 /* Transfer-Encoding ends in chunked */
#define H1S_HAS_LEN   0x02 /* Content-Length seen */
#define H1S_NO_SLOT   0x04 /* request beyond the pipeline depth: not tracked;
                               * response that answers no tracked request */
#define H1S_CR        0x08 /* status line: a CR seen (tolerated before LF) */

/* Header names whose values decide framing (matched lower-case). */
#define H1_HDR_CONTENT_LENGTH    1
#define H1_HDR_TRANSFER_ENCODING 2

/* Parse state of one direction of a connection. */
struct h1_stream {
	__u64 remaining; /* content-length being read, then body/chunk bytes left */
	__u64 msg_bytes; /* bytes of the current message so far */
	__u64 acc;       /* method characters, status digits or chunk size */
	__u16 status;    /* status of the response being read */
	__u8 phase;      /* enum h1_phase */
	__u8 sub;        /* position inside the token being matched */
	__u8 cand;       /* header names still matching (bit per H1_HDR_*) */
	__u8 hdr;        /* H1_HDR_* whose value is being read */
	__u8 flags;      /* H1S_* */
	__u8 acc_len;    /* characters in acc */
};

/* One request waiting for its response. */
struct h1_slot {
	__u64 ts_start;  /* first request byte crossed the syscall boundary */
	__u64 req_bytes;
	__u32 pid;
	__u32 tid;
	__u32 seq;       /* request number this slot holds */
	__u8 method;     /* enum sonde_http_method */
	__u8 flags;      /* SONDE_F_* gathered while parsing the request */
	__u8 path_len;
	__u8 req_done;   /* request message fully seen */
	char path[SONDE_PATH_MAX];
	/* the path normalised into a metric route as it streams by (see
	 * h1_route_byte): "/users/42?x" becomes "/users/:num" */
	char route[SONDE_ROUTE_MAX];
	__u8 route_len;
	__u8 route_seg;    /* where the current segment starts in route */
	__u8 route_seglen;
	__u8 route_flags;  /* H1R_* */
	__u32 _pad;
};

/* h1_slot.route_flags: what the current path segment could still be. */
#define H1R_DIGITS    0x01 /* only digits so far */
#define H1R_HEXY      0x02 /* only hex digits and dashes */
#define H1R_ANY_DIGIT 0x04 /* at least one digit */
#define H1R_DONE      0x08 /* the query or the end of the path was reached */

/* Everything HTTP/1 keeps per connection. */
struct h1_conn {
	struct h1_stream req;
	struct h1_stream resp;
	__u32 req_seq;   /* requests started */
	__u32 resp_seq;  /* responses completed (or given up) */
	__u8 req_dir;    /* enum h1_dir carrying requests; NONE until inferred */
	__u8 _pad[7];
	struct h1_slot slots[SONDE_PIPELINE_DEPTH];
};

/* Timing and identity of the syscall being fed. */
struct h1_meta {
	__u64 ts_start; /* when its first byte counts as sent or received */
	__u64 ts_end;   /* when it completed */
	__u32 pid;
	__u32 tid;
};

/* Resumable position inside one syscall's buffer. */
struct h1_cursor {
	__u64 off;   /* bytes of the buffer consumed */
	__u64 len;   /* bytes the syscall moved */
	__u32 wpos;  /* next byte in the window */
	__u32 wlen;  /* bytes valid in the window */
	__u32 ev;    /* H1_EV_* waiting for h1_feed_event() */
	__u32 _pad;
};

#define H1_STAT(f) (__builtin_offsetof(struct sonde_stats, f) / sizeof(__u64))

SONDE_INLINE int sonde_read_user(void *dst, __u32 n, const void *src);
SONDE_INLINE void sonde_h1_emit(void *ctx, struct h1_conn *c, struct h1_slot *s,
				__u16 status, __u64 resp_bytes, __u64 ts_end, __u8 flags);
SONDE_INLINE void sonde_stat_add(void *ctx, __u32 field);

/* ---- constant strings ---------------------------------------------------- */

/* File scope, not function-local statics (two locals of one name break the
 * object's BTF), and placed in .rodata by name: clang 14 otherwise puts them in
 * mergeable .rodata.str/.cst sections that its BTF still calls .rodata, and
 * the kernel rejects that BTF. */
#ifndef H1_RODATA
#define H1_RODATA
#endif
static const char h1_version_prefix[8] H1_RODATA = "HTTP/1.";
static const char h1_name_content_length[16] H1_RODATA = "content-length";
static const char h1_name_transfer_encoding[32] H1_RODATA = "transfer-encoding";
static const char h1_token_chunked[8] H1_RODATA = "chunked";
#define H1_LEN_CONTENT_LENGTH 14
#define H1_LEN_TRANSFER_ENCODING 17
#define H1_LEN_CHUNKED 7

/* ---- small pure helpers ------------------------------------------------ */

SONDE_INLINE int h1_is_upper(__u8 c) { return c >= 'A' && c <= 'Z'; }
SONDE_INLINE int h1_is_digit(__u8 c) { return c >= '0' && c <= '9'; }

/* Value of a hex digit, or -1. */
SONDE_INLINE int h1_hex(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Method token (up to 8 upper-case letters packed big-endian) to enum. */
SONDE_INLINE __u8 h1_method_code(__u64 tok)
{
	switch (tok) {
	case 0x474554ULL: return SONDE_M_GET;
	case 0x504f5354ULL: return SONDE_M_POST;
	case 0x505554ULL: return SONDE_M_PUT;
	case 0x44454c455445ULL: return SONDE_M_DELETE;
	case 0x48454144ULL: return SONDE_M_HEAD;
	case 0x4f5054494f4e53ULL: return SONDE_M_OPTIONS;
	case 0x5041544348ULL: return SONDE_M_PATCH;
	case 0x434f4e4e454354ULL: return SONDE_M_CONNECT;
	case 0x5452414345ULL: return SONDE_M_TRACE;
	}
	return SONDE_M_UNKNOWN;
}

/*
 * Does this look like the start of an HTTP/1 message? Looks at up to 8 bytes.
 * Returns H1_DIR_SEND if the bytes are a request (so the stream they travel on
 * carries requests), H1_DIR_RECV if they are a response, H1_DIR_NONE if neither.
 * The result is relative: "request" or "response", mapped to directions by
 * the caller.
 */
#define H1_INFER_NONE     0
#define H1_INFER_REQUEST  1
#define H1_INFER_RESPONSE 2
SONDE_INLINE int h1_infer(const __u8 *b, __u32 n)
{
	__u64 tok = 0;
	__u32 i;

	if (n >= 8 && b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' &&
	    b[4] == '/' && b[5] == '1' && b[6] == '.' && h1_is_digit(b[7]))
		return H1_INFER_RESPONSE;
	for (i = 0; i < 8 && i < n; i++) {
		if (b[i] == ' ')
			return h1_method_code(tok) != SONDE_M_UNKNOWN ? H1_INFER_REQUEST
								       : H1_INFER_NONE;
		if (!h1_is_upper(b[i]))
			return H1_INFER_NONE;
		tok = (tok << 8) | b[i];
	}
	return H1_INFER_NONE;
}

/* ---- pipeline queue ---------------------------------------------------- */

SONDE_INLINE struct h1_slot *h1_slot_of(struct h1_conn *c, __u32 seq)
{
	return &c->slots[seq & (SONDE_PIPELINE_DEPTH - 1)];
}

/*
 * Slots are always valid memory; whether one holds a live request is a separate
 * question. (A pointer that may be NULL depending on a comparison is what the
 * BPF verifier loses track of once the compiler merges the branches.)
 */

/* Slot of the request the next response answers. */
SONDE_INLINE struct h1_slot *h1_head_slot(struct h1_conn *c)
{
	return h1_slot_of(c, c->resp_seq);
}

/* Does that slot hold the request (outstanding and not overflowed)? */
SONDE_INLINE int h1_head_tracked(struct h1_conn *c)
{
	return c->resp_seq != c->req_seq && h1_head_slot(c)->seq == c->resp_seq;
}

/* A request begins: take a slot unless the pipeline is full. */
SONDE_INLINE void h1_request_begin(void *ctx, struct h1_conn *c, const struct h1_meta *m)
{
	struct h1_stream *st = &c->req;
	struct h1_slot *s;
	__u32 seq = c->req_seq;

	c->req_seq = seq + 1;
	if (seq - c->resp_seq >= SONDE_PIPELINE_DEPTH) {
		st->flags |= H1S_NO_SLOT;
		sonde_stat_add(ctx, H1_STAT(pipeline_overflow));
		return;
	}
	s = h1_slot_of(c, seq);
	s->seq = seq;
	s->ts_start = m->ts_start;
	s->req_bytes = 0;
	s->pid = m->pid;
	s->tid = m->tid;
	s->method = SONDE_M_UNKNOWN;
	s->flags = 0;
	s->path_len = 0;
	s->req_done = 0;
	s->route_len = 0;
	s->route_seg = 0;
	s->route_seglen = 0;
	s->route_flags = H1R_DIGITS | H1R_HEXY;
}

/* ---- metric routes -------------------------------------------------------- */

/*
 * A path segment just ended: a segment of digits becomes ":num", one of 8 or
 * more hex digits and dashes with a digit among them (uuids, hashes, object
 * ids) becomes ":id". Everything up to the query string counts.
 */
SONDE_INLINE void h1_route_end_segment(struct h1_slot *s)
{
	__u8 f = s->route_flags, n = s->route_seglen, o = s->route_seg;
	int num = f & H1R_DIGITS, id = (f & H1R_HEXY) && (f & H1R_ANY_DIGIT) && n >= 8;

	if (!H1_ROUTE_NORMALISE || n == 0 || (!num && !id) || o > SONDE_ROUTE_MAX - 5)
		return;
	s->route[o & (SONDE_ROUTE_MAX - 1)] = ':';
	s->route[(o + 1) & (SONDE_ROUTE_MAX - 1)] = num ? 'n' : 'i';
	s->route[(o + 2) & (SONDE_ROUTE_MAX - 1)] = num ? 'u' : 'd';
	if (num)
		s->route[(o + 3) & (SONDE_ROUTE_MAX - 1)] = 'm';
	s->route_len = o + (num ? 4 : 3);
}

/* One byte of the request target, for the route. */
SONDE_INLINE void h1_route_byte(struct h1_slot *s, __u8 ch)
{
	__u8 f = s->route_flags;
	__u8 n;

	if (f & H1R_DONE)
		return;
	if (ch == '?' || ch == '#') {
		h1_route_end_segment(s);
		s->route_flags = f | H1R_DONE;
		return;
	}
	if (ch == '/') {
		h1_route_end_segment(s);
		s->route_seg = s->route_len + 1;
		s->route_seglen = 0;
		s->route_flags = H1R_DIGITS | H1R_HEXY;
	} else {
		int digit = ch >= '0' && ch <= '9';
		int hex = digit || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') || ch == '-';

		if (!digit)
			f &= ~H1R_DIGITS;
		if (!hex)
			f &= ~H1R_HEXY;
		if (digit)
			f |= H1R_ANY_DIGIT;
		s->route_flags = f;
		if (s->route_seglen < 255)
			s->route_seglen++;
	}
	n = s->route_len;
	if (n < SONDE_ROUTE_MAX - 1) {
		s->route[n & (SONDE_ROUTE_MAX - 1)] = ch;
		s->route_len = n + 1;
	}
}

/* The target ended (the space before the version). */
SONDE_INLINE void h1_route_finish(struct h1_slot *s)
{
	if (!(s->route_flags & H1R_DONE)) {
		h1_route_end_segment(s);
		s->route_flags |= H1R_DONE;
	}
}

/* Slot of the request being parsed. */
SONDE_INLINE struct h1_slot *h1_current_request(struct h1_conn *c)
{
	return h1_slot_of(c, c->req_seq - 1);
}

/* Does the request being parsed have a slot (pipeline not overflowed)? */
SONDE_INLINE int h1_current_tracked(struct h1_conn *c)
{
	return !(c->req.flags & H1S_NO_SLOT);
}

/* Every outstanding request is forgotten (framing lost somewhere). */
SONDE_INLINE void h1_drop_pending(struct h1_conn *c)
{
	c->resp_seq = c->req_seq;
	/* a response in flight answered one of them: it must not complete
	 * the next request */
	if (c->resp.phase != H1_IDLE)
		c->resp.flags |= H1S_NO_SLOT;
}

/* The response at the head of the queue ended (or was given up): report it. */
SONDE_INLINE void h1_complete(void *ctx, struct h1_conn *c, __u16 status, __u64 resp_bytes,
			      __u64 ts_end, __u8 flags)
{
	struct h1_slot *s = h1_head_slot(c);

	if (c->resp_seq == c->req_seq) {
		sonde_stat_add(ctx, H1_STAT(unpaired_responses));
		return;
	}
	if (h1_head_tracked(c)) {
		if (!s->req_done)
			flags |= SONDE_F_NO_REQUEST_END;
		sonde_h1_emit(ctx, c, s, status, resp_bytes, ts_end, flags | s->flags);
	}
	c->resp_seq++;
}

/* ---- stream state machine ---------------------------------------------- */

SONDE_INLINE void h1_stream_reset(struct h1_stream *st)
{
	st->remaining = 0;
	st->msg_bytes = 0;
	st->acc = 0;
	st->status = 0;
	st->phase = H1_IDLE;
	st->sub = 0;
	st->cand = 0;
	st->hdr = 0;
	st->flags = 0;
	st->acc_len = 0;
}

/* Framing is gone on this stream; pairing cannot be trusted either. */
SONDE_INLINE void h1_lose(void *ctx, struct h1_conn *c, struct h1_stream *st)
{
	h1_stream_reset(st);
	st->phase = H1_LOST;
	h1_drop_pending(c);
	sonde_stat_add(ctx, H1_STAT(parse_lost));
}

/* A response ended: report it with its request, unless it answers none
 * (H1S_NO_SLOT on the response stream: it began with no request outstanding,
 * or its request was dropped or timed out meanwhile). */
SONDE_INLINE void h1_response_done(void *ctx, struct h1_conn *c, struct h1_stream *st,
				   __u64 ts_end)
{
	if (st->flags & H1S_NO_SLOT)
		sonde_stat_add(ctx, H1_STAT(unpaired_responses));
	else
		h1_complete(ctx, c, st->status, st->msg_bytes, ts_end, 0);
}

/* A whole message ended on stream st at the current byte. */
SONDE_INLINE void h1_message_end(void *ctx, struct h1_conn *c, struct h1_stream *st,
				 const struct h1_meta *m)
{
	if (st == &c->req) {
		struct h1_slot *s = h1_current_request(c);

		/* a request whose response already came has left the queue */
		if (h1_current_tracked(c) && c->req_seq != c->resp_seq) {
			s->req_bytes = st->msg_bytes;
			s->req_done = 1;
		}
	} else {
		h1_response_done(ctx, c, st, m->ts_end);
	}
	h1_stream_reset(st);
}

/* The head (start line and headers) of a message ended: choose its body. */
SONDE_INLINE void h1_head_end(void *ctx, struct h1_conn *c, struct h1_stream *st,
			      const struct h1_meta *m)
{
	if (st == &c->req) {
		/* a CONNECT request has no body; its tunnel starts with a 2xx */
		if (st->flags & H1S_CHUNKED) {
			st->phase = H1_CHUNK_SIZE;
			st->acc = 0;
			st->acc_len = 0;
		} else if ((st->flags & H1S_HAS_LEN) && st->remaining > 0) {
			st->phase = H1_BODY;
		} else {
			h1_message_end(ctx, c, st, m);
		}
		return;
	}

	/* response */
	{
		struct h1_slot *s = h1_head_slot(c);
		int tracked = !(st->flags & H1S_NO_SLOT) && h1_head_tracked(c);
		__u16 status = st->status;
		int head_req = tracked && s->method == SONDE_M_HEAD;
		int connect_ok = tracked && s->method == SONDE_M_CONNECT && status >= 200 &&
				 status < 300;

		if (status >= 100 && status < 200 && status != 101) {
			/* interim response (100 Continue, 103 Early Hints): the final
			 * one is still to come */
			h1_stream_reset(st);
			return;
		}
		if (status == 101 || connect_ok) {
			h1_response_done(ctx, c, st, m->ts_end);
			h1_stream_reset(st);
			st->phase = H1_UPGRADED;
			c->req.phase = H1_UPGRADED;
			return;
		}
		if (head_req || status == 204 || status == 304) {
			h1_message_end(ctx, c, st, m);
		} else if (st->flags & H1S_CHUNKED) {
			st->phase = H1_CHUNK_SIZE;
			st->acc = 0;
			st->acc_len = 0;
		} else if (st->flags & H1S_HAS_LEN) {
			if (st->remaining > 0)
				st->phase = H1_BODY;
			else
				h1_message_end(ctx, c, st, m);
		} else {
			st->phase = H1_BODY_EOF;
		}
	}
}

/* Match one byte of a header name against the names that matter. */
SONDE_INLINE void h1_header_name_byte(struct h1_stream *st, __u8 ch)
{
	const char *cl = h1_name_content_length;
	const char *te = h1_name_transfer_encoding;
	__u8 lc = ch | 0x20;
	__u8 i = st->sub;

	if (ch == ':') {
		if ((st->cand & H1_HDR_CONTENT_LENGTH) && i == H1_LEN_CONTENT_LENGTH) {
			st->hdr = H1_HDR_CONTENT_LENGTH;
			st->flags |= H1S_HAS_LEN;
			st->remaining = 0;
			st->phase = H1_HDR_VALUE;
		} else if ((st->cand & H1_HDR_TRANSFER_ENCODING) && i == H1_LEN_TRANSFER_ENCODING) {
			st->hdr = H1_HDR_TRANSFER_ENCODING;
			st->flags &= ~H1S_CHUNKED;
			st->sub = 0;
			st->phase = H1_HDR_VALUE;
		} else {
			st->phase = H1_LINE_SKIP;
		}
		return;
	}
	if (i >= H1_LEN_CONTENT_LENGTH || cl[i & 15] != lc)
		st->cand &= ~H1_HDR_CONTENT_LENGTH;
	if (i >= H1_LEN_TRANSFER_ENCODING || te[i & 31] != lc)
		st->cand &= ~H1_HDR_TRANSFER_ENCODING;
	st->sub = i + 1;
	if (!st->cand)
		st->phase = H1_LINE_SKIP;
}

/* One byte of a Content-Length or Transfer-Encoding value. */
SONDE_INLINE int h1_header_value_byte(struct h1_stream *st, __u8 ch)
{

	if (st->hdr == H1_HDR_CONTENT_LENGTH) {
		if (h1_is_digit(ch)) {
			if (st->remaining > 0xffffffffffffULL)
				return -1; /* absurd length: not HTTP we can frame */
			st->remaining = st->remaining * 10 + (ch - '0');
		} else if (ch != ' ' && ch != '\t' && ch != '\r') {
			st->phase = H1_LINE_SKIP;
		}
		return 0;
	}
	/* "chunked" must be the final coding: remember whether the value
	 * currently ends with it */
	if (ch == ' ' || ch == '\t' || ch == '\r')
		return 0;
	if (st->sub < H1_LEN_CHUNKED && (ch | 0x20) == h1_token_chunked[st->sub & 7]) {
		st->sub++;
		if (st->sub == H1_LEN_CHUNKED)
			st->flags |= H1S_CHUNKED;
	} else {
		st->flags &= ~H1S_CHUNKED;
		st->sub = (ch | 0x20) == 'c' ? 1 : 0;
	}
	return 0;
}

/* What a byte can end, handled outside the byte loop (see h1_feed_steps). */
#define H1_EV_HEAD_END 1 /* the empty line after the headers */
#define H1_EV_MSG_END  2 /* the empty line after chunked trailers */

/*
 * Feed one byte to a stream that is in a scanning phase.
 * Returns 0 to go on, H1_EV_* when the byte ends a head or a message,
 * -1 when framing is lost.
 */
SONDE_INLINE int h1_byte(void *ctx, struct h1_conn *c, struct h1_stream *st, __u8 ch,
			 const struct h1_meta *m)
{
	int is_req = st == &c->req;

	if (st->phase != H1_IDLE)
		st->msg_bytes++;

	switch (st->phase) {
	case H1_IDLE:
		if (ch == '\r' || ch == '\n')
			return 0; /* stray line ends between messages are allowed */
		st->msg_bytes = 1;
		if (is_req) {
			if (!h1_is_upper(ch))
				return -1;
			h1_request_begin(ctx, c, m);
			st->acc = ch;
			st->acc_len = 1;
			st->phase = H1_REQ_METHOD;
		} else {
			if (ch != 'H')
				return -1;
			/* nothing outstanding: it answers a request never seen
			 * (attached mid-connection) or already given up */
			if (c->resp_seq == c->req_seq)
				st->flags |= H1S_NO_SLOT;
			st->sub = 1;
			st->phase = H1_RESP_VERSION;
		}
		return 0;

	case H1_REQ_METHOD:
		if (ch == ' ') {
			__u8 code = h1_method_code(st->acc);

			if (code == SONDE_M_UNKNOWN)
				return -1;
			if (h1_current_tracked(c))
				h1_current_request(c)->method = code;
			st->phase = H1_REQ_TARGET;
			return 0;
		}
		if (!h1_is_upper(ch) || st->acc_len >= 8)
			return -1;
		st->acc = (st->acc << 8) | ch;
		st->acc_len++;
		return 0;

	case H1_REQ_TARGET:
		if (ch == ' ') {
			if (h1_current_tracked(c))
				h1_route_finish(h1_current_request(c));
			st->sub = 0;
			st->phase = H1_REQ_VERSION;
			return 0;
		}
		if (ch == '\r' || ch == '\n')
			return -1; /* HTTP/0.9 or garbage */
		{
			struct h1_slot *s = h1_current_request(c);

			if (h1_current_tracked(c)) {
				__u8 n = s->path_len;

				h1_route_byte(s, ch);
				if (n < SONDE_PATH_MAX) {
					s->path[n] = ch;
					s->path_len = n + 1;
				} else {
					s->flags |= SONDE_F_PATH_TRUNCATED;
				}
			}
		}
		return 0;

	case H1_REQ_VERSION:
		/* "HTTP/1." then anything up to the line end */
		if (st->sub < 7) {
			if (ch != h1_version_prefix[st->sub & 7])
				return -1;
			st->sub++;
			if (st->sub == 7)
				st->phase = H1_LINE_SKIP; /* the rest of the line */
			return 0;
		}
		return 0;

	case H1_RESP_VERSION:
		if (st->sub < 7) {
			if (ch != h1_version_prefix[st->sub & 7])
				return -1;
			st->sub++;
			return 0;
		}
		if (st->sub == 7) {
			if (!h1_is_digit(ch))
				return -1;
			st->sub++;
			return 0;
		}
		if (ch != ' ')
			return -1;
		st->acc = 0;
		st->acc_len = 0;
		st->phase = H1_RESP_STATUS;
		return 0;

	case H1_RESP_STATUS:
		if (st->acc_len < 3) {
			if (!h1_is_digit(ch))
				return -1;
			st->acc = st->acc * 10 + (ch - '0');
			st->acc_len++;
			if (st->acc_len == 3) /* kept if the response is cut here */
				st->status = (__u16)st->acc;
			return 0;
		}
		if (ch == '\n')
			st->phase = H1_HDR_START;
		else if (ch == ' ' || ch == '\r')
			st->phase = H1_LINE_SKIP;
		else
			return -1;
		return 0;

	case H1_LINE_SKIP:
		if (ch == '\n')
			st->phase = H1_HDR_START;
		return 0;

	case H1_HDR_START:
		if (ch == '\r')
			return 0;
		if (ch == '\n')
			return H1_EV_HEAD_END;
		st->phase = H1_HDR_NAME;
		st->cand = H1_HDR_CONTENT_LENGTH | H1_HDR_TRANSFER_ENCODING;
		st->sub = 0;
		h1_header_name_byte(st, ch);
		return 0;

	case H1_HDR_NAME:
		if (ch == '\n') {
			st->phase = H1_HDR_START; /* a line without a colon: ignore it */
			return 0;
		}
		h1_header_name_byte(st, ch);
		return 0;

	case H1_HDR_VALUE:
		if (ch == '\n') {
			st->phase = H1_HDR_START;
			return 0;
		}
		return h1_header_value_byte(st, ch);

	case H1_CHUNK_SIZE: {
		int v = h1_hex(ch);

		if (v >= 0) {
			if (st->acc_len >= 15)
				return -1;
			st->acc = (st->acc << 4) | (__u64)v;
			st->acc_len++;
			return 0;
		}
		if (ch == '\r')
			return 0;
		if (ch == ';' || ch == ' ' || ch == '\t') {
			st->phase = H1_CHUNK_EXT;
			return 0;
		}
		if (ch != '\n' || st->acc_len == 0)
			return -1;
	}
		/* fallthrough - the size line ended */
	case H1_CHUNK_EXT:
		if (ch != '\n')
			return 0;
		if (st->acc_len == 0)
			return -1;
		if (st->acc == 0) {
			st->phase = H1_TRAILER_START;
		} else {
			st->remaining = st->acc + 2; /* data and its CRLF */
			st->phase = H1_CHUNK_DATA;
		}
		st->acc = 0;
		st->acc_len = 0;
		return 0;

	case H1_TRAILER_START:
		if (ch == '\r')
			return 0;
		if (ch == '\n')
			return H1_EV_MSG_END;
		st->phase = H1_TRAILER_SKIP;
		return 0;

	case H1_TRAILER_SKIP:
		if (ch == '\n')
			st->phase = H1_TRAILER_START;
		return 0;
	}
	return 0;
}

/* Phases in which bytes are skipped by count instead of scanned. */
SONDE_INLINE int h1_phase_skips(__u8 phase)
{
	return phase == H1_BODY || phase == H1_CHUNK_DATA || phase == H1_BODY_EOF ||
	       phase == H1_UPGRADED;
}

/* Skip up to n body bytes; returns how many were consumed. The end of a
 * content-length body is left in *ev for h1_feed_event(). */
SONDE_INLINE __u64 h1_skip(struct h1_stream *st, __u64 n, __u32 *ev)
{
	if (st->phase == H1_BODY_EOF || st->phase == H1_UPGRADED) {
		st->msg_bytes += n;
		return n;
	}
	if (n > st->remaining)
		n = st->remaining;
	st->remaining -= n;
	st->msg_bytes += n;
	if (st->remaining == 0) {
		if (st->phase == H1_BODY) {
			*ev = H1_EV_MSG_END;
		} else {
			st->phase = H1_CHUNK_SIZE;
			st->acc = 0;
			st->acc_len = 0;
		}
	}
	return n;
}

SONDE_INLINE struct h1_stream *h1_stream_for(struct h1_conn *c, __u8 dir)
{
	return dir == c->req_dir ? &c->req : &c->resp;
}

/*
 * Bind a connection's streams to directions from the first bytes seen.
 * Returns 1 when they are HTTP/1 and bound, 0 otherwise.
 */
SONDE_INLINE int h1_bind(struct h1_conn *c, __u8 dir, const __u8 *first, __u32 n)
{
	int kind = h1_infer(first, n);

	if (kind == H1_INFER_REQUEST)
		c->req_dir = dir;
	else if (kind == H1_INFER_RESPONSE)
		c->req_dir = dir == H1_DIR_SEND ? H1_DIR_RECV : H1_DIR_SEND;
	else
		return 0;
	return 1;
}

/*
 * Most bytes of a head are header values nobody needs: skip them 8 at a time
 * while no line feed is among them (the has-zero-byte trick on x ^ "\n"*8).
 * Returns 1 when 8 bytes were skipped.
 */
SONDE_INLINE int h1_skip8(struct h1_stream *st, const __u8 *win, struct h1_cursor *cur)
{
	__u32 idx = cur->wpos;
	__u64 x, t;

	if (st->phase != H1_LINE_SKIP || idx > H1_WINDOW - 8 || idx + 8 > cur->wlen)
		return 0;
	/* keep the compiler from computing the address before the bound check,
	 * which the verifier could not follow */
	H1_OPAQUE(idx);
	__builtin_memcpy(&x, win + idx, sizeof(x));
	t = x ^ 0x0a0a0a0a0a0a0a0aULL;
	if ((t - 0x0101010101010101ULL) & ~t & 0x8080808080808080ULL)
		return 0;
	cur->wpos += 8;
	cur->off += 8;
	st->msg_bytes += 8;
	return 1;
}

/*
 * Advance through one syscall's bytes: skip a run of body bytes, then scan up to
 * H1_STEPS bytes of a head or chunk line, stopping early at the end of a head or
 * message. Such an end is left in cur->ev and the caller must pass it to
 * h1_feed_event() before feeding on. `win` is a scratch buffer of H1_WINDOW
 * bytes. Returns 1 when the buffer is consumed, 0 when there is more (call
 * again; BPF continues with a tail call), -1 when framing was lost (the rest
 * of the buffer is ignored).
 *
 * The byte loop does only cheap per-byte work. The verifier walks every loop
 * iteration and every exit from it, so the heavy transitions (and the record
 * emission behind them) live in h1_feed_event, which BPF runs as a separate
 * tail-called program.
 */
SONDE_INLINE int h1_feed_steps(void *ctx, struct h1_conn *c, __u8 dir, const __u8 *src,
			       struct h1_cursor *cur, __u8 *win, const struct h1_meta *m)
{
	struct h1_stream *st = h1_stream_for(c, dir);
	int ev = 0;
	__u32 i;

	if (cur->off >= cur->len)
		return 1;
	if (h1_phase_skips(st->phase)) {
		cur->off += h1_skip(st, cur->len - cur->off, &cur->ev);
		cur->wpos = cur->wlen = 0; /* the window no longer matches */
		if (cur->ev || cur->off >= cur->len || h1_phase_skips(st->phase))
			return cur->off >= cur->len;
	}
	if (st->phase == H1_LOST)
		return -1;
	if (cur->wpos >= cur->wlen) {
		__u64 left = cur->len - cur->off;
		__u32 n = left > H1_WINDOW ? H1_WINDOW : (__u32)left;

		if (n == 0 || n > H1_WINDOW || sonde_read_user(win, n, src + cur->off)) {
			h1_lose(ctx, c, st);
			return -1;
		}
		cur->wlen = n;
		cur->wpos = 0;
	}
	for (i = 0; i < H1_STEPS; i++) {
		/* Make every step reload its state from memory, so the verifier
		 * sees the same abstract state at each loop head and prunes. */
		H1_BARRIER();
		if (cur->wpos >= cur->wlen)
			break;
		if (h1_skip8(st, win, cur))
			continue;
		ev = h1_byte(ctx, c, st, win[cur->wpos & (H1_WINDOW - 1)], m);
		if (ev < 0)
			break;
		cur->wpos++;
		cur->off++;
		if (ev || h1_phase_skips(st->phase))
			break;
	}
	if (ev < 0) {
		h1_lose(ctx, c, st);
		return -1;
	}
	cur->ev = ev;
	return cur->off >= cur->len;
}

/* Act on the end of a head or message that h1_feed_steps stopped at. */
SONDE_INLINE void h1_feed_event(void *ctx, struct h1_conn *c, __u8 dir, struct h1_cursor *cur,
				const struct h1_meta *m)
{
	struct h1_stream *st = h1_stream_for(c, dir);
	__u32 ev = cur->ev;

	cur->ev = 0;
	if (ev == H1_EV_HEAD_END)
		h1_head_end(ctx, c, st, m);
	else if (ev == H1_EV_MSG_END)
		h1_message_end(ctx, c, st, m);
}

/*
 * Feed a whole buffer natively (tests, fuzzers, user space): the same steps
 * the BPF program takes through its tail calls, in a loop.
 * Returns 1 when consumed, -1 when framing was lost.
 */
SONDE_INLINE int h1_feed_all(void *ctx, struct h1_conn *c, __u8 dir, const __u8 *src,
			     struct h1_cursor *cur, __u8 *win, const struct h1_meta *m)
{
	for (;;) {
		int r = h1_feed_steps(ctx, c, dir, src, cur, win, m);

		if (r < 0)
			return -1;
		if (cur->ev)
			h1_feed_event(ctx, c, dir, cur, m);
		if (r == 1)
			return 1;
	}
}

/*
 * Start feeding one syscall's bytes on direction dir: a stream that lost
 * framing gets a fresh start if this syscall begins with a message.
 * `first`/`n` are the first bytes of the buffer (already copied).
 */
SONDE_INLINE void h1_feed_begin(struct h1_conn *c, __u8 dir, const __u8 *first, __u32 n)
{
	struct h1_stream *st = h1_stream_for(c, dir);
	int kind;

	if (st->phase != H1_LOST)
		return;
	kind = h1_infer(first, n);
	if ((st == &c->req && kind == H1_INFER_REQUEST) ||
	    (st == &c->resp && kind == H1_INFER_RESPONSE))
		h1_stream_reset(st);
}

/* The peer closed its side (read returned 0): a close-delimited body ends. */
SONDE_INLINE void h1_peer_eof(void *ctx, struct h1_conn *c, __u8 dir, const struct h1_meta *m)
{
	struct h1_stream *st = h1_stream_for(c, dir);

	if (st == &c->resp && st->phase == H1_BODY_EOF)
		h1_message_end(ctx, c, st, m);
}

/*
 * The socket is being closed: a close-delimited response ends normally; every
 * other outstanding request is reported as cut off.
 */
SONDE_INLINE void h1_close(void *ctx, struct h1_conn *c, const struct h1_meta *m)
{
	__u32 i;

	if (c->resp.phase == H1_BODY_EOF)
		h1_message_end(ctx, c, &c->resp, m);
	/* a response in flight that answers none of the pending requests */
	if (c->resp.flags & H1S_NO_SLOT)
		h1_stream_reset(&c->resp);
	for (i = 0; i < SONDE_PIPELINE_DEPTH; i++) {
		if (c->resp_seq == c->req_seq)
			break;
		if (h1_head_tracked(c))
			sonde_stat_add(ctx, H1_STAT(closed_pending));
		h1_complete(ctx, c, c->resp.status, c->resp.msg_bytes, m->ts_end, SONDE_F_CLOSED);
		h1_stream_reset(&c->resp);
	}
}

/*
 * Report the oldest outstanding request if it waited longer than timeout_ns.
 * Returns 1 if one was reported. Used by the user-space sweep.
 */
SONDE_INLINE int h1_expire_one(void *ctx, struct h1_conn *c, __u64 now, __u64 timeout_ns)
{
	if (c->resp_seq == c->req_seq)
		return 0;
	/* a request that started after `now` was read is young, not ancient */
	if (h1_head_tracked(c) && (h1_head_slot(c)->ts_start >= now ||
				   now - h1_head_slot(c)->ts_start < timeout_ns))
		return 0;
	h1_complete(ctx, c, 0, 0, now, SONDE_F_TIMEOUT);
	/* a response in flight answered the expired request, not the next */
	if (c->resp.phase != H1_IDLE)
		c->resp.flags |= H1S_NO_SLOT;
	return 1;
}

#endif /* SONDE_PROTO_HTTP1_H */
