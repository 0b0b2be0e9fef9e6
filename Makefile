# sonde: one build for the BPF objects, skeletons, nanopb code, the static
# `sonde` binary and the tests. Everything lands in $(OUTPUT); nothing is
# written into the source tree.

OUTPUT    ?= .output
ARCH      ?= x86
CLANG     ?= clang
CC        ?= gcc
BPFTOOL   ?= bpftool
PROTOC    ?= protoc
VMLINUX_H := vmlinux/$(ARCH)/vmlinux.h
SONDE     := $(OUTPUT)/sonde

# Kernel side: CO-RE objects, debug info for BTF, -O2 as the verifier expects.
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(OUTPUT) -Ibpf -Ivmlinux/$(ARCH) -MMD -MP

# User side: warnings are errors; statically linked so one file runs anywhere.
CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -I$(OUTPUT) -Ibpf -Iuser -MMD -MP
LDLIBS  := -Wl,-Bstatic -lbpf -lelf -lz -lprotobuf-nanopb
LDFLAGS ?= -static

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
PROTO_C   := $(OUTPUT)/record.pb.c
PROTO_O   := $(OUTPUT)/record.pb.o

.PHONY: all deps run test test-e2e clean help
# the BPF objects are kept: the BTF minimiser and bpftool read them too
.SECONDARY: $(BPF_OBJS)
all: $(SONDE)

help:
	@echo "make            build $(SONDE)"
	@echo "make run        install what is missing, build, run the collector (root)"
	@echo "make test       install what is missing, build, run every test (root)"
	@echo "make test-unit  native parser tests under ASan/UBSan"
	@echo "make test-fuzz  libFuzzer on every parser, time-bounded"
	@echo "make test-e2e   real servers and clients against the real sonde (root)"
	@echo "make test-profile  the profiler against workloads built at test time (root)"

deps:
	@scripts/deps.sh

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests:
	@mkdir -p $@

# --- kernel side -----------------------------------------------------------
$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) | $(OUTPUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# --- records ---------------------------------------------------------------
$(PROTO_C): user/record.proto user/record.options | $(OUTPUT)
	cd user && $(PROTOC) --nanopb_out=../$(OUTPUT) record.proto
	@test -f $(PROTO_C)

$(OUTPUT)/record.pb.h: $(PROTO_C)

$(PROTO_O): $(PROTO_C)
	$(CC) $(CFLAGS) -c $< -o $@

# pprof's profile.proto (the profiler's output), nanopb like the records
PPROF_C := $(OUTPUT)/pprof.pb.c
$(PPROF_C): user/pprof.proto | $(OUTPUT)
	cd user && $(PROTOC) --nanopb_out=../$(OUTPUT) pprof.proto
	@test -f $(PPROF_C)

$(OUTPUT)/pprof.pb.h: $(PPROF_C)

$(OUTPUT)/pprof.pb.o: $(PPROF_C)
	$(CC) $(CFLAGS) -c $< -o $@

# --- user side -------------------------------------------------------------
$(USER_OBJS): $(SKELS) $(OUTPUT)/record.pb.h | $(OUTPUT)/user
$(OUTPUT)/user/%.o: user/%.c
	$(CC) $(CFLAGS) -c $< -o $@

$(SONDE): $(USER_OBJS) $(PROTO_O)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# the profiler's pprof writer
$(USER_OBJS): $(OUTPUT)/pprof.pb.h
$(SONDE): $(OUTPUT)/pprof.pb.o

# --- running ---------------------------------------------------------------
run: deps $(SONDE)
	$(SONDE) run $(SONDE_ARGS)

include tests/tests.mk
-include bench/bench.mk
-include bench/flows.mk
-include tests/kernels/kernels.mk

clean:
	rm -rf $(OUTPUT)

-include $(wildcard $(OUTPUT)/*.d $(OUTPUT)/user/*.d $(OUTPUT)/tests/*.d)
