/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Internals shared by the profiler's user-space pieces: profile.c (maps ->
 * samples -> outputs), symbolize.c (addresses -> names), pprof.c (samples ->
 * profile.proto), intern.c (string tables). */
#ifndef SONDE_PROFILE_H
#define SONDE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- intern.c: strings to dense ids (0, 1, 2, ...) ----------------------- */
struct intern {
	char **strs;       /* id -> string (owned) */
	uint32_t n, cap;
	uint32_t *slots;   /* open addressing: id + 1, 0 = empty */
	uint32_t nslots;   /* power of 2 */
};

/* The id of s, added if new; UINT32_MAX when out of memory. */
uint32_t intern_id(struct intern *t, const char *s);
/* The id of s, or UINT32_MAX when absent. */
uint32_t intern_find(const struct intern *t, const char *s);
void intern_free(struct intern *t);

/* ---- symbolize.c --------------------------------------------------------- */
enum sym_how {
	SYM_NAMED = 0,  /* a symbol from .symtab/.dynsym, kallsyms or a perf map */
	SYM_ADDR,       /* in a known binary but no symbol covers it: "[bin+0xoff]" */
	SYM_UNKNOWN,    /* in no known mapping: "[unknown]" */
};

struct sym_frame {
	const char *name;     /* valid until sym_interval_end() */
	const char *file;     /* binary path, "[kernel.kallsyms]", "[jit]", "" */
	const char *build_id; /* hex, or "" */
	uint64_t addr;        /* address in the file's own terms (ELF vaddr), or the ip */
	enum sym_how how;
	char buf[160];        /* storage for made-up names */
};

struct sym_stats {
	uint64_t frames;          /* frames named */
	uint64_t unknown;         /* [unknown]: in no mapping we know */
	uint64_t addr_only;       /* a binary without a symbol for the address */
	uint64_t jit;             /* named from /tmp/perf-PID.map */
	uint64_t kernel_unknown;  /* kernel frames kallsyms does not cover */
	uint64_t procs_read;      /* /proc/PID/maps reads */
	uint64_t procs_gone;      /* processes gone before their maps could be read */
	uint64_t elf_loaded;      /* binaries whose symbols were loaded */
	uint64_t elf_failed;      /* binaries that could not be opened or parsed */
	uint64_t elf_evicted;     /* symbol tables dropped to stay under the budget */
	uint64_t cache_bytes;     /* memory held by symbol tables now */
	uint64_t cache_binaries;  /* symbol tables held now */
};

struct symbolizer;
struct symbolizer *sym_new(size_t cache_budget_bytes);
void sym_free(struct symbolizer *s);
/* Read a process's mappings now, while it is alive (and its binaries). */
void sym_note_pid(struct symbolizer *s, uint32_t pid);
/* Every poll: read again the processes noted a moment ago. */
void sym_poll(struct symbolizer *s);
/* ip of a user frame; `leaf` false for return addresses (looked up at ip-1). */
void sym_user(struct symbolizer *s, uint32_t pid, uint64_t ip, bool leaf, struct sym_frame *f);
void sym_kernel(struct symbolizer *s, uint64_t ip, bool leaf, struct sym_frame *f);
/* The kernel symbol at or below addr, or NULL; not counted in the stats. */
const char *sym_kernel_peek(const struct symbolizer *s, uint64_t addr);
/* An interval is written: forget exited processes, evict over budget. */
void sym_interval_end(struct symbolizer *s);
void sym_get_stats(const struct symbolizer *s, struct sym_stats *out);
/* Exposed for the unit test: load a binary's symbols and name a vaddr. */
struct elf_syms;
struct elf_syms *elf_syms_load_path(const char *path);
const char *elf_syms_lookup(const struct elf_syms *e, uint64_t vaddr);
void elf_syms_free(struct elf_syms *e);

/* ---- pprof.c ------------------------------------------------------------- */
/* One frame of a sample, as handed to the pprof writer. */
struct pprof_frame {
	const char *name;
	const char *file;
	const char *build_id;
	uint64_t addr;
};

struct pprof_sample {
	const struct pprof_frame *frames; /* leaf first, as profile.proto wants */
	uint32_t nframes;
	int64_t values[2];
	uint32_t pid, tid;
	const char *comm;   /* process name */
	const char *thread; /* thread name */
};

struct pprof_meta {
	const char *sample_type[2]; /* e.g. "samples","cpu" */
	const char *sample_unit[2]; /* e.g. "count","nanoseconds" */
	int nvalues;
	const char *period_type, *period_unit;
	int64_t period;
	int64_t time_ns, duration_ns;
};

/* Write samples as a gzip-compressed profile.proto file. 0 or -errno. */
int pprof_write(const char *path, const struct pprof_meta *m, const struct pprof_sample *s,
		size_t n);

#endif /* SONDE_PROFILE_H */
