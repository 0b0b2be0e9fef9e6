# Kernel matrix (docs/KERNELS.md): the static sonde booted under qemu on each
# kernel of tests/kernels/list, in ring buffer, perf buffer and two no-BTF modes.
# Included by the main Makefile, which defines OUTPUT, SONDE, BPF_OBJS, BPFTOOL.
#
#   make test-kernels               run the matrix, regenerate the results in docs/KERNELS.md
#   make test-kernels-if-available  the same without touching docs/, or one SKIP line when
#                                   qemu or the kernel images cannot be had (for make test)
#   make test-kernels-stand-in      boot every kernel with the peers only (no sonde)
#   make kernels-fetch              only download and unpack the kernels into the cache
#   make kernels-btf                regenerate btf/<release>.btf for every listed kernel
#   make kernels-features           what the BPF objects ask of the kernel, with the first kernel of each
# Knobs (environment or make variables): KERNELS="5.10 6.1", MODES="ringbuf perfbuf nobtf btfdir",
# ACCEL=kvm|tcg|auto, TIMEOUT=240, JOBS, REQUESTS=50, KERNELS_CACHE=/var/cache/sonde-kernels.

KERNELS_OUT   := $(OUTPUT)/kernels
KERNELS_PEERS := $(KERNELS_OUT)/httpd $(KERNELS_OUT)/httpc
PEER_CC       ?= gcc
PEER_CFLAGS   := -static -O2 -Wall -Wextra -Werror
KERNELS_ENV    = OUTPUT=$(OUTPUT) SONDE=$(SONDE) BPFTOOL=$(BPFTOOL) BPF_OBJS="$(BPF_OBJS)"

.PHONY: test-kernels test-kernels-if-available test-kernels-stand-in kernels-fetch kernels-btf kernels-peers kernels-features

$(KERNELS_OUT):
	@mkdir -p $@

$(KERNELS_PEERS): $(KERNELS_OUT)/%: tests/kernels/peers/%.c | $(KERNELS_OUT)
	$(PEER_CC) $(PEER_CFLAGS) $< -o $@

kernels-peers: $(KERNELS_PEERS)

test-kernels: $(SONDE) $(BPF_OBJS) $(KERNELS_PEERS)
	@$(KERNELS_ENV) tests/kernels/run.sh --update-doc

test-kernels-if-available: $(SONDE) $(BPF_OBJS) $(KERNELS_PEERS)
	@$(KERNELS_ENV) tests/kernels/run.sh --if-available

test-kernels-stand-in: $(KERNELS_PEERS)
	@$(KERNELS_ENV) tests/kernels/run.sh --stand-in

kernels-fetch:
	@scripts/kernels/fetch.sh tests/kernels/list

kernels-btf: $(BPF_OBJS)
	@scripts/kernels/fetch.sh tests/kernels/list | while read -r id release dir; do \
		BPFTOOL=$(BPFTOOL) scripts/gen-btf.sh -r $$release -o btf/$$release.btf \
			$$dir/vmlinux.btf $(BPF_OBJS) || exit 1; \
	done

# what the BPF objects ask of the kernel, feature by feature (docs/KERNELS.md)
kernels-features: $(BPF_OBJS)
	@OBJDUMP=llvm-objdump BPFTOOL=$(BPFTOOL) scripts/kernels/bpf-features.sh $(BPF_OBJS)
