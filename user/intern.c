// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* String interning: the pprof string table, and the dedup tables of the
 * profile writers (functions, locations, folded stacks). */
#include <stdlib.h>
#include <string.h>

#include "profile.h"

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int grow_slots(struct intern *t)
{
	uint32_t n = t->nslots ? t->nslots * 2 : 256;
	uint32_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -1;
	for (uint32_t id = 0; id < t->n; id++) {
		uint32_t i = hash_str(t->strs[id]) & (n - 1);

		while (slots[i])
			i = (i + 1) & (n - 1);
		slots[i] = id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = n;
	return 0;
}

uint32_t intern_find(const struct intern *t, const char *s)
{
	if (!t->nslots)
		return UINT32_MAX;
	for (uint32_t i = hash_str(s) & (t->nslots - 1); t->slots[i]; i = (i + 1) & (t->nslots - 1))
		if (!strcmp(t->strs[t->slots[i] - 1], s))
			return t->slots[i] - 1;
	return UINT32_MAX;
}

uint32_t intern_id(struct intern *t, const char *s)
{
	uint32_t id = intern_find(t, s), i;
	char *copy;

	if (id != UINT32_MAX)
		return id;
	/* keep the table at most half full */
	if ((t->n + 1) * 2 > t->nslots && grow_slots(t))
		return UINT32_MAX;
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		char **strs = realloc(t->strs, cap * sizeof(*strs));

		if (!strs)
			return UINT32_MAX;
		t->strs = strs;
		t->cap = cap;
	}
	copy = strdup(s);
	if (!copy)
		return UINT32_MAX;
	id = t->n++;
	t->strs[id] = copy;
	for (i = hash_str(s) & (t->nslots - 1); t->slots[i]; i = (i + 1) & (t->nslots - 1))
		;
	t->slots[i] = id + 1;
	return id;
}

void intern_free(struct intern *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
