# Benchmark suite (issue 8), included by the main Makefile.
#   make bench            every part below, in order (about 11 minutes on 2 cores)
#   make bench-syscall    added ns per traced syscall: off / floor / sonde
#   make bench-nginx      nginx + wrk: req/s at saturation, CPU per request
#   make bench-drops      highest transaction rate with zero ring-buffer drops
#   make bench-agent      sonde CPU per 10k req/s, RSS at 0/10k/50k sockets
#   make bench-wakeups    consumer wakeups per event delivered
# Each part prints a Markdown table and appends it to docs/PERFORMANCE.md.
# Knobs: BENCH_ROUNDS=N (default 10), BENCH_ARGS='...' (passed to bench.py).
# Needs root (BPF, cgroups). Build products go to $(OUTPUT)/bench/.

BENCH_OUT    := $(OUTPUT)/bench
BENCH_CFLAGS := -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -I$(BENCH_OUT)
BENCH_LIBBPF := -static -lbpf -lelf -lz
BENCH_ROUNDS ?= 10
BENCH_RUN     = python3 bench/bench.py --out $(BENCH_OUT) --sonde $(SONDE) \
		--rounds $(BENCH_ROUNDS) --doc docs/PERFORMANCE.md \
		--cmd "make $@$(if $(filter-out 10,$(BENCH_ROUNDS)), BENCH_ROUNDS=$(BENCH_ROUNDS))$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" \
		$(BENCH_ARGS)

BENCH_TOOLS := $(BENCH_OUT)/floor $(BENCH_OUT)/copycat $(BENCH_OUT)/syscall_load \
	       $(BENCH_OUT)/httpload $(BENCH_OUT)/sockhold \
	       $(BENCH_OUT)/tinyhttpd

.PHONY: bench bench-deps bench-build bench-sonde bench-syscall bench-nginx \
	bench-drops bench-agent bench-wakeups bench-hooks-check FORCE

$(BENCH_OUT):
	@mkdir -p $@

FORCE:

bench-deps:
	@bench/deps.sh

# sonde is built if it can be; while it cannot, its columns read n/a.
bench-sonde:
	@$(MAKE) --no-print-directory $(SONDE) || \
		echo "bench: WARNING: $(SONDE) did not build; sonde columns will read n/a" >&2

bench-build: $(BENCH_TOOLS)

# deps first (a no-op when everything is there), then the tools
$(BENCH_TOOLS) $(BENCH_OUT)/floor_hooks.h: | bench-deps

# The floor's hooks are read from the SEC() lines of bpf/*.bpf.c on every
# build (the file is only replaced when the list changed), so the floor can
# never drift from what sonde attaches.
$(BENCH_OUT)/floor_hooks.h: FORCE | $(BENCH_OUT)
	@BPF_CPP="$(CLANG) -E $(filter-out -MMD -MP,$(BPF_CFLAGS))" bench/hooks.sh bpf > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; \
		echo "bench: floor hooks: $$(grep -c FLOOR_ $@) ($$(head -1 $@ | sed 's/.*from //; s/ \*\///'))"; fi

$(BENCH_OUT)/floor.bpf.o: bench/floor.bpf.c $(BENCH_OUT)/floor_hooks.h $(VMLINUX_H) | $(BENCH_OUT)
	$(CLANG) $(BPF_CFLAGS) -I$(BENCH_OUT) -c $< -o $@

$(BENCH_OUT)/copycat.bpf.o: bench/copycat.bpf.c bench/copycat.h $(VMLINUX_H) | $(BENCH_OUT)
	$(CLANG) $(BPF_CFLAGS) -Ibench -c $< -o $@

$(BENCH_OUT)/%.skel.h: $(BENCH_OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

$(BENCH_OUT)/floor: bench/floor.c $(BENCH_OUT)/floor.skel.h
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LIBBPF)

$(BENCH_OUT)/copycat: bench/copycat.c bench/copycat.h $(BENCH_OUT)/copycat.skel.h
	$(CC) $(BENCH_CFLAGS) -Ibench $< -o $@ $(BENCH_LIBBPF)

$(BENCH_OUT)/%: bench/%.c | $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) $< -o $@

# Compare the floor's attached hooks with what a running sonde attached.
bench-hooks-check: bench-build bench-sonde
	@python3 bench/bench.py --out $(BENCH_OUT) --sonde $(SONDE) hooks

bench: bench-deps bench-build bench-sonde
	@$(BENCH_RUN) all

bench-syscall bench-nginx bench-drops bench-agent bench-wakeups: bench-deps bench-build bench-sonde
	@$(BENCH_RUN) $(patsubst bench-%,%,$@)

# Profiler sampling cost (issue 7): CPU time of a fixed CPU-bound job with
# sonde off / --profile at 99 Hz / at 999 Hz, interleaved; appends to
# docs/PERFORMANCE.md. Not part of `make bench` (it runs alone in ~2 minutes).
.PHONY: bench-profile
bench-profile: bench-sonde
	python3 bench/profile_bench.py --sonde $(SONDE) --rounds $(BENCH_ROUNDS) \
		--doc docs/PERFORMANCE.md $(BENCH_ARGS)
