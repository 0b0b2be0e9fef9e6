// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * pprof writer: symbolized samples -> profile.proto (user/pprof.proto),
 * encoded by nanopb straight into a zlib gzip stream.
 *
 * The tables are built first (strings, mappings, functions, locations, each
 * deduplicated through an intern table), then the Profile is encoded field by
 * field through nanopb callbacks, so no size limit applies and nothing is
 * encoded twice except nanopb's sizing of each submessage.
 *
 * Mappings are one per binary (file + build-id), in the binary's own address
 * space: a Location's address is the ELF virtual address the symbol table
 * uses (for kernel frames, the kernel address). Every mapping says
 * has_functions, so pprof never tries to symbolize again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <pb_encode.h>

#include "pprof.pb.h"
#include "profile.h"

struct loc {
	uint32_t map;   /* mapping id */
	uint32_t func;  /* function id */
	uint64_t addr;
};

struct pp {
	struct intern strs;   /* string table; id 0 is "" */
	struct intern maps;   /* "file\1build_id" -> mapping id - 1 */
	struct intern funcs;  /* "name\1file" -> function id - 1 */
	struct intern locs;   /* "map:addr:func" -> location id - 1 */
	uint32_t *map_file, *map_bid;
	size_t map_cap;
	uint32_t *func_name, *func_file;
	size_t func_cap;
	struct loc *loc;
	size_t loc_cap;
	uint64_t *sample_locs; /* every sample's location ids, one after another */
	size_t nlocs_total, sample_locs_cap;
	size_t *sample_first;  /* index of a sample's first location id */
	uint32_t *label_str;   /* per sample: comm, thread string ids */
	const struct pprof_meta *meta;
	const struct pprof_sample *samples;
	size_t nsamples;
	bool oom;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	q = realloc(*p, ncap * elem);
	if (!q)
		return -1;
	*p = q;
	*cap = ncap;
	return 0;
}

static uint32_t str_id(struct pp *b, const char *s)
{
	uint32_t id = intern_id(&b->strs, s ? s : "");

	if (id == UINT32_MAX)
		b->oom = true;
	return id;
}

static uint32_t mapping_id(struct pp *b, const struct pprof_frame *f)
{
	char key[1024];
	uint32_t idx;

	snprintf(key, sizeof(key), "%s\1%s", f->file, f->build_id);
	idx = intern_id(&b->maps, key);
	if (idx == UINT32_MAX || grow((void **)&b->map_file, &b->map_cap, idx + 1, 4)) {
		b->oom = true;
		return 0;
	}
	if (idx + 1 == b->maps.n) { /* new */
		b->map_bid = realloc(b->map_bid, b->map_cap * 4);
		if (!b->map_bid) {
			b->oom = true;
			return 0;
		}
		b->map_file[idx] = str_id(b, f->file);
		b->map_bid[idx] = str_id(b, f->build_id);
	}
	return idx + 1;
}

static uint32_t function_id(struct pp *b, const struct pprof_frame *f)
{
	char key[1024];
	uint32_t idx;

	snprintf(key, sizeof(key), "%s\1%s", f->name, f->file);
	idx = intern_id(&b->funcs, key);
	if (idx == UINT32_MAX || grow((void **)&b->func_name, &b->func_cap, idx + 1, 4)) {
		b->oom = true;
		return 0;
	}
	if (idx + 1 == b->funcs.n) {
		b->func_file = realloc(b->func_file, b->func_cap * 4);
		if (!b->func_file) {
			b->oom = true;
			return 0;
		}
		b->func_name[idx] = str_id(b, f->name);
		b->func_file[idx] = str_id(b, f->file);
	}
	return idx + 1;
}

static uint64_t location_id(struct pp *b, const struct pprof_frame *f)
{
	uint32_t map = f->file[0] ? mapping_id(b, f) : 0;
	uint32_t func = function_id(b, f);
	char key[64];
	uint32_t idx;

	snprintf(key, sizeof(key), "%u:%llx:%u", map, (unsigned long long)f->addr, func);
	idx = intern_id(&b->locs, key);
	if (idx == UINT32_MAX || grow((void **)&b->loc, &b->loc_cap, idx + 1, sizeof(*b->loc))) {
		b->oom = true;
		return 0;
	}
	b->loc[idx] = (struct loc){ .map = map, .func = func, .addr = f->addr };
	return idx + 1;
}

static int build(struct pp *b)
{
	size_t first_cap = 0, label_cap = 0;

	str_id(b, "");
	for (int i = 0; i < b->meta->nvalues; i++) {
		str_id(b, b->meta->sample_type[i]);
		str_id(b, b->meta->sample_unit[i]);
	}
	str_id(b, b->meta->period_type);
	str_id(b, b->meta->period_unit);
	str_id(b, "pid");
	str_id(b, "tid");
	str_id(b, "comm");
	str_id(b, "thread");
	if (grow((void **)&b->sample_first, &first_cap, b->nsamples + 1, sizeof(size_t)) ||
	    grow((void **)&b->label_str, &label_cap, 2 * b->nsamples + 2, 4))
		return -ENOMEM;
	for (size_t i = 0; i < b->nsamples && !b->oom; i++) {
		const struct pprof_sample *s = &b->samples[i];

		b->sample_first[i] = b->nlocs_total;
		if (grow((void **)&b->sample_locs, &b->sample_locs_cap,
			 b->nlocs_total + s->nframes, sizeof(uint64_t)))
			return -ENOMEM;
		for (uint32_t j = 0; j < s->nframes; j++)
			b->sample_locs[b->nlocs_total++] = location_id(b, &s->frames[j]);
		b->label_str[2 * i] = str_id(b, s->comm);
		b->label_str[2 * i + 1] = str_id(b, s->thread);
	}
	b->sample_first[b->nsamples] = b->nlocs_total;
	return b->oom ? -ENOMEM : 0;
}

/* ---- encoding (nanopb callbacks) ------------------------------------------ */

/* A packed repeated varint field (proto3's default for repeated scalars). */
static bool encode_packed(pb_ostream_t *os, uint32_t tag, const uint64_t *v, size_t n)
{
	pb_ostream_t sizing = PB_OSTREAM_SIZING;

	if (!n)
		return true;
	for (size_t i = 0; i < n; i++)
		pb_encode_varint(&sizing, v[i]);
	if (!pb_encode_tag(os, PB_WT_STRING, tag) || !pb_encode_varint(os, sizing.bytes_written))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!pb_encode_varint(os, v[i]))
			return false;
	return true;
}

static bool enc_value_types(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct pp *b = *arg;

	for (int i = 0; i < b->meta->nvalues; i++) {
		perftools_profiles_ValueType vt = {
			.type = intern_find(&b->strs, b->meta->sample_type[i]),
			.unit = intern_find(&b->strs, b->meta->sample_unit[i]),
		};

		if (!pb_encode_tag_for_field(os, f) ||
		    !pb_encode_submessage(os, perftools_profiles_ValueType_fields, &vt))
			return false;
	}
	return true;
}

struct sample_arg {
	struct pp *b;
	size_t i;
};

static bool enc_sample_locs(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	const struct sample_arg *a = *arg;
	size_t first = a->b->sample_first[a->i];

	return encode_packed(os, f->tag, a->b->sample_locs + first,
			     a->b->sample_first[a->i + 1] - first);
}

static bool enc_sample_values(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	const struct sample_arg *a = *arg;
	const struct pprof_sample *s = &a->b->samples[a->i];
	uint64_t v[2] = { (uint64_t)s->values[0], (uint64_t)s->values[1] };

	return encode_packed(os, f->tag, v, a->b->meta->nvalues);
}

static bool enc_label(pb_ostream_t *os, const pb_field_t *f, const perftools_profiles_Label *l)
{
	return pb_encode_tag_for_field(os, f) &&
	       pb_encode_submessage(os, perftools_profiles_Label_fields, l);
}

static bool enc_sample_labels(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	const struct sample_arg *a = *arg;
	const struct intern *st = &a->b->strs;
	const struct pprof_sample *s = &a->b->samples[a->i];
	perftools_profiles_Label pid = { .key = intern_find(st, "pid"), .num = s->pid };
	perftools_profiles_Label tid = { .key = intern_find(st, "tid"), .num = s->tid };
	perftools_profiles_Label comm = { .key = intern_find(st, "comm"),
					  .str = a->b->label_str[2 * a->i] };
	perftools_profiles_Label thread = { .key = intern_find(st, "thread"),
					    .str = a->b->label_str[2 * a->i + 1] };

	return enc_label(os, f, &pid) && enc_label(os, f, &tid) && enc_label(os, f, &comm) &&
	       enc_label(os, f, &thread);
}

static bool enc_samples(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct pp *b = *arg;

	for (size_t i = 0; i < b->nsamples; i++) {
		struct sample_arg a = { b, i };
		perftools_profiles_Sample s = {
			.location_id = { .funcs.encode = enc_sample_locs, .arg = &a },
			.value = { .funcs.encode = enc_sample_values, .arg = &a },
			.label = { .funcs.encode = enc_sample_labels, .arg = &a },
		};

		if (!pb_encode_tag_for_field(os, f) ||
		    !pb_encode_submessage(os, perftools_profiles_Sample_fields, &s))
			return false;
	}
	return true;
}

static bool enc_mappings(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct pp *b = *arg;

	for (uint32_t i = 0; i < b->maps.n; i++) {
		perftools_profiles_Mapping m = {
			.id = i + 1,
			.filename = b->map_file[i],
			.build_id = b->map_bid[i],
			.has_functions = true,
		};

		if (!pb_encode_tag_for_field(os, f) ||
		    !pb_encode_submessage(os, perftools_profiles_Mapping_fields, &m))
			return false;
	}
	return true;
}

static bool enc_line(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	const struct loc *l = *arg;
	perftools_profiles_Line line = { .function_id = l->func };

	return pb_encode_tag_for_field(os, f) &&
	       pb_encode_submessage(os, perftools_profiles_Line_fields, &line);
}

static bool enc_locations(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct pp *b = *arg;

	for (uint32_t i = 0; i < b->locs.n; i++) {
		perftools_profiles_Location l = {
			.id = i + 1,
			.mapping_id = b->loc[i].map,
			.address = b->loc[i].addr,
			.line = { .funcs.encode = enc_line, .arg = &b->loc[i] },
		};

		if (!pb_encode_tag_for_field(os, f) ||
		    !pb_encode_submessage(os, perftools_profiles_Location_fields, &l))
			return false;
	}
	return true;
}

static bool enc_functions(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct pp *b = *arg;

	for (uint32_t i = 0; i < b->funcs.n; i++) {
		perftools_profiles_Function fn = {
			.id = i + 1,
			.name = b->func_name[i],
			.system_name = b->func_name[i],
			.filename = b->func_file[i],
		};

		if (!pb_encode_tag_for_field(os, f) ||
		    !pb_encode_submessage(os, perftools_profiles_Function_fields, &fn))
			return false;
	}
	return true;
}

static bool enc_strings(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct pp *b = *arg;

	for (uint32_t i = 0; i < b->strs.n; i++)
		if (!pb_encode_tag_for_field(os, f) ||
		    !pb_encode_string(os, (const pb_byte_t *)b->strs.strs[i], strlen(b->strs.strs[i])))
			return false;
	return true;
}

static bool gz_out(pb_ostream_t *os, const pb_byte_t *buf, size_t n)
{
	return !n || gzwrite((gzFile)os->state, buf, (unsigned)n) == (int)n;
}

static void pp_free(struct pp *b)
{
	intern_free(&b->strs);
	intern_free(&b->maps);
	intern_free(&b->funcs);
	intern_free(&b->locs);
	free(b->map_file);
	free(b->map_bid);
	free(b->func_name);
	free(b->func_file);
	free(b->loc);
	free(b->sample_locs);
	free(b->sample_first);
	free(b->label_str);
}

int pprof_write(const char *path, const struct pprof_meta *m, const struct pprof_sample *s,
		size_t n)
{
	struct pp b = { .meta = m, .samples = s, .nsamples = n };
	perftools_profiles_Profile p = perftools_profiles_Profile_init_zero;
	char tmp[4400];
	pb_ostream_t os;
	gzFile gz;
	int err = build(&b);

	if (err) {
		pp_free(&b);
		return err;
	}
	p.sample_type = (pb_callback_t){ .funcs.encode = enc_value_types, .arg = &b };
	p.sample = (pb_callback_t){ .funcs.encode = enc_samples, .arg = &b };
	p.mapping = (pb_callback_t){ .funcs.encode = enc_mappings, .arg = &b };
	p.location = (pb_callback_t){ .funcs.encode = enc_locations, .arg = &b };
	p.function = (pb_callback_t){ .funcs.encode = enc_functions, .arg = &b };
	p.string_table = (pb_callback_t){ .funcs.encode = enc_strings, .arg = &b };
	p.time_nanos = m->time_ns;
	p.duration_nanos = m->duration_ns;
	p.has_period_type = true;
	p.period_type.type = intern_find(&b.strs, m->period_type);
	p.period_type.unit = intern_find(&b.strs, m->period_unit);
	p.period = m->period;
	p.default_sample_type = intern_find(&b.strs, m->sample_type[m->nvalues - 1]);

	/* written beside and renamed, so a reader never sees half a file */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	gz = gzopen(tmp, "wb6");
	if (!gz) {
		err = errno ? -errno : -EIO;
		pp_free(&b);
		return err;
	}
	os = (pb_ostream_t){ .callback = gz_out, .state = gz, .max_size = SIZE_MAX };
	if (!pb_encode(&os, perftools_profiles_Profile_fields, &p))
		err = -EIO;
	if (gzclose(gz) != Z_OK && !err)
		err = -EIO;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	pp_free(&b);
	return err;
}
