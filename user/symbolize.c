// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Symbolization: instruction pointers from the kernel's stack maps to
 * function names, in user space (it needs files, /proc and memory the kernel
 * must not spend).
 *
 * - User frames: /proc/PID/maps says which file is mapped where; the file is
 *   opened through /proc/PID/map_files/START-END (works for deleted files and
 *   for processes in other mount namespaces), else /proc/PID/root/PATH. Its
 *   .symtab (or .dynsym when stripped) is loaded with libelf once per binary:
 *   the cache is keyed by device/inode/size/mtime and by GNU build-id, so one
 *   library shared by many processes, or the same image in many containers,
 *   is loaded once. Unreferenced tables are evicted, least recently used
 *   first, above the memory budget.
 * - Processes are read when the kernel first sees them (prof_events), so a
 *   short-lived process is still named after it exits; live processes are
 *   read again once per interval (dlopen, exec).
 * - Anonymous executable memory (JITs) is named from /tmp/perf-PID.map as
 *   the process sees it (/proc/PID/root/tmp/perf-NSPID.map).
 * - Kernel frames: /proc/kallsyms.
 * Frames nothing covers are "[unknown]", binaries without a symbol for the
 * address give "[file+0xoffset]"; both are counted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "profile.h"

#define MAX_LOADS 16
#define PROC_BUCKETS 1024

struct elf_sym {
	uint64_t addr;
	uint64_t size;
	uint32_t name;  /* offset in names */
	uint32_t global;
};

struct elf_load {
	uint64_t off, vaddr, filesz;
};

/* One binary's symbols, shared by every process mapping it. */
struct elf_syms {
	char key[96];        /* dev:ino:size:mtime of the file it was read from */
	char build_id[48];   /* hex, "" if the binary has none */
	char *path;          /* as the first process named it */
	struct elf_sym *syms;
	uint32_t nsyms;
	char *names;
	struct elf_load loads[MAX_LOADS];
	int nloads;
	size_t bytes;        /* memory held, for the budget */
	int refs;            /* process mappings pointing here */
	uint64_t last_used;  /* interval it was last used in */
	struct elf_syms *next;
};

struct jit_sym {
	uint64_t start, size;
	char *name;
};

struct pmap {
	uint64_t start, end, off;
	struct elf_syms *elf; /* NULL: anonymous, special or unreadable */
	char *path;           /* "" for anonymous memory */
};

struct proc {
	uint32_t pid;
	uint64_t read_gen;    /* interval its maps were last read in */
	bool gone;            /* exited before its maps could be read */
	struct pmap *maps;
	int n;
	struct jit_sym *jit;  /* from perf-PID.map, sorted */
	int njit;
	uint64_t jit_gen;     /* interval the perf map was last looked at */
	struct timespec jit_mtime;
	struct proc *next;
};

struct ksym {
	uint64_t addr;
	char *name;
};

struct pending {
	uint32_t pid;
	uint64_t at_ns;  /* when it was noted */
};

struct symbolizer {
	struct pending *pend; /* processes to read once more (RECHECK_NS) */
	size_t npend, pend_cap;
	struct elf_syms *elfs;
	struct proc *procs[PROC_BUCKETS];
	struct ksym *ksyms;
	size_t nksyms;
	char *ksym_names;
	size_t budget;
	uint64_t gen;         /* interval counter */
	struct sym_stats st;
};

/* ---- ELF symbol tables ------------------------------------------------- */

static int sym_cmp(const void *a, const void *b)
{
	const struct elf_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* at one address, a global name before a local alias */
	return (int)y->global - (int)x->global;
}

static void read_build_id(Elf *e, char *out, size_t n)
{
	Elf_Scn *scn = NULL;

	out[0] = 0;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)d->d_buf + name_off, "GNU", 4))
				continue;
			for (size_t i = 0; i < nh.n_descsz && 2 * i + 2 < n; i++)
				snprintf(out + 2 * i, 3, "%02x",
					 ((unsigned char *)d->d_buf)[desc_off + i]);
			return;
		}
	}
}

static void read_loads(Elf *e, struct elf_syms *es)
{
	size_t n = 0;

	if (elf_getphdrnum(e, &n))
		return;
	for (size_t i = 0; i < n && es->nloads < MAX_LOADS; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		es->loads[es->nloads++] = (struct elf_load){ ph.p_offset, ph.p_vaddr, ph.p_filesz };
	}
}

/* The function symbols of one symbol table section, appended to es. */
static int read_symtab(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, struct elf_syms *es,
		       size_t *names_cap, size_t *names_len)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t count = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	struct elf_sym *syms;

	if (!d || !count)
		return 0;
	syms = realloc(es->syms, (es->nsyms + count) * sizeof(*syms));
	if (!syms)
		return -1;
	es->syms = syms;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym s;
		const char *name;
		size_t len;

		if (!gelf_getsym(d, i, &s) || s.st_shndx == SHN_UNDEF || !s.st_value)
			continue;
		if (GELF_ST_TYPE(s.st_info) != STT_FUNC && GELF_ST_TYPE(s.st_info) != STT_GNU_IFUNC)
			continue;
		name = elf_strptr(e, sh->sh_link, s.st_name);
		if (!name || !*name)
			continue;
		len = strlen(name) + 1;
		if (*names_len + len > *names_cap) {
			size_t cap = *names_cap ? *names_cap * 2 : 4096;
			char *p;

			while (cap < *names_len + len)
				cap *= 2;
			p = realloc(es->names, cap);
			if (!p)
				return -1;
			es->names = p;
			*names_cap = cap;
		}
		memcpy(es->names + *names_len, name, len);
		es->syms[es->nsyms++] = (struct elf_sym){
			.addr = s.st_value, .size = s.st_size, .name = (uint32_t)*names_len,
			.global = GELF_ST_BIND(s.st_info) != STB_LOCAL,
		};
		*names_len += len;
	}
	return 0;
}

/* Functions from .symtab, or from .dynsym when the binary is stripped. */
static int read_functions(Elf *e, struct elf_syms *es)
{
	size_t names_cap = 0, names_len = 0;
	int pass;

	for (pass = 0; pass < 2 && !es->nsyms; pass++) {
		Elf_Scn *scn = NULL;
		GElf_Word want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;

		while ((scn = elf_nextscn(e, scn))) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != want)
				continue;
			if (read_symtab(e, scn, &sh, es, &names_cap, &names_len))
				return -1;
		}
	}
	qsort(es->syms, es->nsyms, sizeof(*es->syms), sym_cmp);
	es->bytes = sizeof(*es) + es->nsyms * sizeof(*es->syms) + names_cap;
	return 0;
}

static struct elf_syms *elf_syms_load_fd(int fd)
{
	struct elf_syms *es;
	Elf *e;

	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return NULL;
	if (elf_kind(e) != ELF_K_ELF) {
		elf_end(e);
		return NULL;
	}
	es = calloc(1, sizeof(*es));
	if (!es) {
		elf_end(e);
		return NULL;
	}
	read_build_id(e, es->build_id, sizeof(es->build_id));
	read_loads(e, es);
	if (read_functions(e, es)) {
		elf_end(e);
		elf_syms_free(es);
		return NULL;
	}
	elf_end(e);
	return es;
}

void elf_syms_free(struct elf_syms *e)
{
	if (!e)
		return;
	free(e->syms);
	free(e->names);
	free(e->path);
	free(e);
}

struct elf_syms *elf_syms_load_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct elf_syms *e;

	if (fd < 0)
		return NULL;
	elf_version(EV_CURRENT);
	e = elf_syms_load_fd(fd);
	close(fd);
	if (e)
		e->path = strdup(path);
	return e;
}

/* The function containing vaddr, or NULL. */
static const struct elf_sym *elf_find(const struct elf_syms *e, uint64_t vaddr)
{
	size_t lo = 0, hi = e->nsyms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (e->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	/* the first (preferred) symbol at that address */
	while (lo > 1 && e->syms[lo - 2].addr == e->syms[lo - 1].addr)
		lo--;
	if (e->syms[lo - 1].size && vaddr >= e->syms[lo - 1].addr + e->syms[lo - 1].size)
		return NULL;
	return &e->syms[lo - 1];
}

const char *elf_syms_lookup(const struct elf_syms *e, uint64_t vaddr)
{
	const struct elf_sym *s = elf_find(e, vaddr);

	return s ? e->names + s->name : NULL;
}

/* File offset -> the vaddr the binary's own symbols use. */
static bool file_to_vaddr(const struct elf_syms *e, uint64_t off, uint64_t *vaddr)
{
	for (int i = 0; i < e->nloads; i++)
		if (off >= e->loads[i].off && off < e->loads[i].off + e->loads[i].filesz) {
			*vaddr = off - e->loads[i].off + e->loads[i].vaddr;
			return true;
		}
	return false;
}

/* ---- the cache of symbol tables ------------------------------------------ */

static struct elf_syms *cache_find(struct symbolizer *s, const char *key, const char *build_id)
{
	for (struct elf_syms *e = s->elfs; e; e = e->next)
		if ((key && !strcmp(e->key, key)) ||
		    (build_id && build_id[0] && !strcmp(e->build_id, build_id)))
			return e;
	return NULL;
}

/* The symbols of the file open on fd (mapped at `path`), cached. */
static struct elf_syms *cache_get(struct symbolizer *s, int fd, const char *path)
{
	struct elf_syms *e;
	struct stat st;
	char key[96];

	if (fstat(fd, &st))
		return NULL;
	snprintf(key, sizeof(key), "%llx:%llx:%llx:%lld.%09ld", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	e = cache_find(s, key, NULL);
	if (e)
		return e;
	e = elf_syms_load_fd(fd);
	if (!e) {
		s->st.elf_failed++;
		return NULL;
	}
	/* the same build in another container (another inode): keep the first */
	if (e->build_id[0]) {
		struct elf_syms *same = cache_find(s, NULL, e->build_id);

		if (same) {
			elf_syms_free(e);
			return same;
		}
	}
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->path = strdup(path);
	if (!e->path) {
		elf_syms_free(e);
		return NULL;
	}
	e->next = s->elfs;
	s->elfs = e;
	s->st.elf_loaded++;
	s->st.cache_bytes += e->bytes;
	s->st.cache_binaries++;
	return e;
}

/* Drop unreferenced tables, least recently used first, above the budget. */
static void cache_trim(struct symbolizer *s)
{
	while (s->st.cache_bytes > s->budget) {
		struct elf_syms **victim = NULL;

		for (struct elf_syms **pp = &s->elfs; *pp; pp = &(*pp)->next)
			if (!(*pp)->refs && (!victim || (*pp)->last_used < (*victim)->last_used))
				victim = pp;
		if (!victim)
			return; /* everything left is mapped by a live process */
		struct elf_syms *e = *victim;

		*victim = e->next;
		s->st.cache_bytes -= e->bytes;
		s->st.cache_binaries--;
		s->st.elf_evicted++;
		elf_syms_free(e);
	}
}

/* ---- processes ------------------------------------------------------------ */

static struct proc **proc_slot(struct symbolizer *s, uint32_t pid)
{
	struct proc **pp = &s->procs[pid % PROC_BUCKETS];

	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	return pp;
}

static void proc_clear_maps(struct proc *p)
{
	for (int i = 0; i < p->n; i++) {
		if (p->maps[i].elf)
			p->maps[i].elf->refs--;
		free(p->maps[i].path);
	}
	free(p->maps);
	p->maps = NULL;
	p->n = 0;
}

static void proc_clear(struct proc *p)
{
	proc_clear_maps(p);
	for (int i = 0; i < p->njit; i++)
		free(p->jit[i].name);
	free(p->jit);
	p->jit = NULL;
	p->njit = 0;
}

/* Open a mapped file as the process sees it. */
static int open_mapped(uint32_t pid, uint64_t start, uint64_t end, const char *path)
{
	char p[4200];
	int fd;

	snprintf(p, sizeof(p), "/proc/%u/map_files/%" PRIx64 "-%" PRIx64, pid, start, end);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	snprintf(p, sizeof(p), "/proc/%u/root%s", pid, path);
	return open(p, O_RDONLY | O_CLOEXEC);
}

static int add_map(struct symbolizer *s, struct proc *p, int *cap, uint64_t start, uint64_t end,
		   uint64_t off, const char *path)
{
	struct pmap *m;

	if (p->n == *cap) {
		int ncap = *cap ? *cap * 2 : 32;
		struct pmap *maps = realloc(p->maps, ncap * sizeof(*maps));

		if (!maps)
			return -1;
		p->maps = maps;
		*cap = ncap;
	}
	m = &p->maps[p->n];
	*m = (struct pmap){ .start = start, .end = end, .off = off };
	m->path = strdup(path);
	if (!m->path)
		return -1;
	p->n++;
	if (path[0] == '/') {
		int fd = open_mapped(p->pid, start, end, path);

		if (fd >= 0) {
			m->elf = cache_get(s, fd, path);
			close(fd);
		} else {
			s->st.elf_failed++;
		}
		if (m->elf)
			m->elf->refs++;
	}
	return 0;
}

/* Read /proc/PID/maps: executable mappings only. A process that has exited
 * (gone, or a zombie whose maps read empty) keeps the snapshot it had.
 * Returns -1 when nothing could be read. */
static int proc_read(struct symbolizer *s, struct proc *p)
{
	struct proc fresh = { .pid = p->pid };
	char path[64], line[4352];
	int cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", p->pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		char perms[8];
		int name_at = 0;
		char *name, *del;

		if (sscanf(line, "%llx-%llx %7s %llx %*x:%*x %*u %n", &start, &end, perms, &off,
			   &name_at) < 4 || !strchr(perms, 'x'))
			continue;
		name = line + name_at;
		name[strcspn(name, "\n")] = 0;
		/* a deleted file still opens through map_files */
		del = strstr(name, " (deleted)");
		if (del && !del[10])
			*del = 0;
		if (add_map(s, &fresh, &cap, start, end, off, name))
			break;
	}
	fclose(f);
	if (!fresh.n)
		return -1;
	proc_clear_maps(p);
	p->maps = fresh.maps;
	p->n = fresh.n;
	p->read_gen = s->gen;
	s->st.procs_read++;
	return 0;
}

static struct proc *proc_get(struct symbolizer *s, uint32_t pid, bool reread)
{
	struct proc **pp = proc_slot(s, pid);
	struct proc *p = *pp;

	if (p) {
		/* live processes are read again once per interval */
		if ((reread || p->read_gen != s->gen) && !p->gone && kill(pid, 0) == 0) {
			proc_read(s, p);
			p->read_gen = s->gen; /* tried: not again this interval */
		}
		return p;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	if (proc_read(s, p) && kill(pid, 0) && errno == ESRCH) {
		/* gone before we could look: remembered, so it is counted once */
		s->st.procs_gone++;
		p->gone = true;
	}
	p->read_gen = s->gen;
	*pp = p;
	return p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* A process is read when first seen, which is often in the middle of its
 * exec (the loader has not mapped the libraries yet, or the maps do not read
 * at all): it is read once more RECHECK_NS later, while it likely still
 * lives, so a short-lived process leaves a complete snapshot behind. */
#define RECHECK_NS 50000000ull

void sym_note_pid(struct symbolizer *s, uint32_t pid)
{
	proc_get(s, pid, true);
	if (s->npend == s->pend_cap) {
		size_t cap = s->pend_cap ? s->pend_cap * 2 : 64;
		struct pending *pd = realloc(s->pend, cap * sizeof(*pd));

		if (!pd)
			return;
		s->pend = pd;
		s->pend_cap = cap;
	}
	s->pend[s->npend++] = (struct pending){ pid, now_ns() };
}

void sym_poll(struct symbolizer *s)
{
	uint64_t now = now_ns();
	size_t kept = 0;

	for (size_t i = 0; i < s->npend; i++) {
		struct proc *p;

		if (now - s->pend[i].at_ns < RECHECK_NS) {
			s->pend[kept++] = s->pend[i];
			continue;
		}
		p = *proc_slot(s, s->pend[i].pid);
		if (p && kill(p->pid, 0) == 0 && proc_read(s, p) == 0)
			p->gone = false;
	}
	s->npend = kept;
}

/* ---- JIT perf maps --------------------------------------------------------- */

static int jit_cmp(const void *a, const void *b)
{
	const struct jit_sym *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The pid the process has in its own namespace (perf maps are named by it). */
static uint32_t ns_pid(uint32_t pid)
{
	char path[64], line[256];
	uint32_t nspid = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		for (char *tok = strtok(line + 6, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
			nspid = (uint32_t)strtoul(tok, NULL, 10); /* the innermost is last */
		break;
	}
	fclose(f);
	return nspid;
}

/* (Re)load perf-PID.map when it changed; checked once per interval. */
static void jit_refresh(struct symbolizer *s, struct proc *p)
{
	char path[128], line[1024];
	struct stat st;
	int cap = 0;
	FILE *f;

	if (p->jit_gen == s->gen + 1)
		return;
	p->jit_gen = s->gen + 1;
	snprintf(path, sizeof(path), "/proc/%u/root/tmp/perf-%u.map", p->pid, ns_pid(p->pid));
	if (stat(path, &st)) {
		snprintf(path, sizeof(path), "/tmp/perf-%u.map", p->pid);
		if (stat(path, &st))
			return;
	}
	if (st.st_mtim.tv_sec == p->jit_mtime.tv_sec && st.st_mtim.tv_nsec == p->jit_mtime.tv_nsec)
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	p->jit_mtime = st.st_mtim;
	for (int i = 0; i < p->njit; i++)
		free(p->jit[i].name);
	p->njit = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, size;
		int at = 0;

		if (sscanf(line, "%llx %llx %n", &start, &size, &at) < 2 || !at)
			continue;
		line[strcspn(line, "\n")] = 0;
		if (p->njit == cap) {
			int ncap = cap ? cap * 2 : 64;
			struct jit_sym *j = realloc(p->jit, ncap * sizeof(*j));

			if (!j)
				break;
			p->jit = j;
			cap = ncap;
		}
		p->jit[p->njit].start = start;
		p->jit[p->njit].size = size;
		p->jit[p->njit].name = strdup(line + at);
		if (p->jit[p->njit].name)
			p->njit++;
	}
	fclose(f);
	qsort(p->jit, p->njit, sizeof(*p->jit), jit_cmp);
}

static const char *jit_find(struct proc *p, uint64_t ip)
{
	const char *best = NULL;

	/* perf maps may list overlapping regions (code moved): the last start wins */
	for (int lo = 0, hi = p->njit; lo < hi;) {
		int mid = (lo + hi) / 2;

		if (p->jit[mid].start <= ip) {
			if (ip < p->jit[mid].start + p->jit[mid].size)
				best = p->jit[mid].name;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return best;
}

/* ---- naming frames ---------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void unknown(struct symbolizer *s, uint64_t ip, struct sym_frame *f)
{
	f->name = "[unknown]";
	f->file = "";
	f->build_id = "";
	f->addr = ip;
	f->how = SYM_UNKNOWN;
	s->st.unknown++;
}

void sym_user(struct symbolizer *s, uint32_t pid, uint64_t ip, bool leaf, struct sym_frame *f)
{
	/* a return address points after the call; the call is what ran */
	uint64_t at = leaf ? ip : ip - 1;
	struct proc *p = proc_get(s, pid, false);
	const struct pmap *m = NULL;

	s->st.frames++;
	if (!p) {
		unknown(s, ip, f);
		return;
	}
	for (int i = 0; i < p->n; i++)
		if (at >= p->maps[i].start && at < p->maps[i].end) {
			m = &p->maps[i];
			break;
		}
	if (!m || !m->elf) {
		const char *name;

		jit_refresh(s, p);
		name = jit_find(p, at);
		if (name) {
			f->name = name;
			f->file = "[jit]";
			f->build_id = "";
			f->addr = ip;
			f->how = SYM_NAMED;
			s->st.jit++;
			return;
		}
		if (m && m->path[0] == '[') { /* [vdso], [vsyscall] */
			f->name = m->path;
			f->file = m->path;
			f->build_id = "";
			f->addr = ip - m->start;
			f->how = SYM_NAMED;
			return;
		}
		unknown(s, ip, f);
		return;
	}
	uint64_t off = at - m->start + m->off, vaddr = off;
	const char *name = NULL;

	m->elf->last_used = s->gen;
	if (file_to_vaddr(m->elf, off, &vaddr))
		name = elf_syms_lookup(m->elf, vaddr);
	f->file = m->elf->path;
	f->build_id = m->elf->build_id;
	f->addr = vaddr;
	if (name) {
		f->name = name;
		f->how = SYM_NAMED;
		return;
	}
	snprintf(f->buf, sizeof(f->buf), "[%s+0x%" PRIx64 "]", base_name(m->path), off);
	f->name = f->buf;
	f->how = SYM_ADDR;
	s->st.addr_only++;
}

/* ---- kernel ---------------------------------------------------------------- */

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void kallsyms_load(struct symbolizer *s)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	size_t cap = 0, names_cap = 0, names_len = 0;
	char line[512];

	if (!f)
		return;
	/* names are kept as offsets while the pool grows, pointers at the end */
	while (fgets(line, sizeof(line), f)) {
		unsigned long long addr;
		char type, name[256];
		size_t len;

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || !addr)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		len = strlen(name) + 1;
		if (s->nksyms == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			struct ksym *k = realloc(s->ksyms, ncap * sizeof(*k));

			if (!k)
				break;
			s->ksyms = k;
			cap = ncap;
		}
		if (names_len + len > names_cap) {
			size_t ncap = names_cap ? names_cap * 2 : 1 << 20;
			char *n = realloc(s->ksym_names, ncap);

			if (!n)
				break;
			s->ksym_names = n;
			names_cap = ncap;
		}
		memcpy(s->ksym_names + names_len, name, len);
		s->ksyms[s->nksyms].addr = addr;
		s->ksyms[s->nksyms].name = (char *)(uintptr_t)names_len;
		s->nksyms++;
		names_len += len;
	}
	fclose(f);
	for (size_t i = 0; i < s->nksyms; i++)
		s->ksyms[i].name = s->ksym_names + (uintptr_t)s->ksyms[i].name;
	qsort(s->ksyms, s->nksyms, sizeof(*s->ksyms), ksym_cmp);
	if (!s->nksyms)
		fprintf(stderr, "sonde: /proc/kallsyms shows no addresses (kernel.kptr_restrict?); "
				"kernel frames will read [unknown] (counted in frames_unknown)\n");
}

/* The kernel symbol at or below addr, or NULL. */
const char *sym_kernel_peek(const struct symbolizer *s, uint64_t addr)
{
	size_t lo = 0, hi = s->nksyms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->ksyms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? s->ksyms[lo - 1].name : NULL;
}

void sym_kernel(struct symbolizer *s, uint64_t ip, bool leaf, struct sym_frame *f)
{
	const char *name = sym_kernel_peek(s, leaf ? ip : ip - 1);

	s->st.frames++;
	if (!name) {
		unknown(s, ip, f);
		s->st.kernel_unknown++;
		return;
	}
	f->name = name;
	f->file = "[kernel.kallsyms]";
	f->build_id = "";
	f->addr = ip;
	f->how = SYM_NAMED;
}

/* ---- lifecycle -------------------------------------------------------------- */

struct symbolizer *sym_new(size_t budget)
{
	struct symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	elf_version(EV_CURRENT);
	s->budget = budget;
	kallsyms_load(s);
	return s;
}

void sym_interval_end(struct symbolizer *s)
{
	for (int b = 0; b < PROC_BUCKETS; b++) {
		struct proc **pp = &s->procs[b];

		while (*pp) {
			struct proc *p = *pp;

			if (kill(p->pid, 0) && errno == ESRCH) {
				*pp = p->next;
				proc_clear(p);
				free(p);
			} else {
				pp = &p->next;
			}
		}
	}
	cache_trim(s);
	s->gen++;
}

void sym_get_stats(const struct symbolizer *s, struct sym_stats *out)
{
	*out = s->st;
}

void sym_free(struct symbolizer *s)
{
	if (!s)
		return;
	for (int b = 0; b < PROC_BUCKETS; b++)
		while (s->procs[b]) {
			struct proc *p = s->procs[b];

			s->procs[b] = p->next;
			proc_clear(p);
			free(p);
		}
	while (s->elfs) {
		struct elf_syms *e = s->elfs;

		s->elfs = e->next;
		elf_syms_free(e);
	}
	free(s->ksyms);
	free(s->ksym_names);
	free(s->pend);
	free(s);
}
