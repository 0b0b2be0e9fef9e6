# Test tiers. `make test` runs them all (as root) and ends with one summary line.
-include tests/unit/unit.mk

E2E_PY ?= python3

.PHONY: test-e2e test-all-tiers
test-e2e: $(SONDE)
	$(E2E_PY) tests/e2e/run.py --sonde $(SONDE)

test: deps
	@scripts/run-tests.sh

# Flows (issue 5): two network namespaces joined by veth, real TCP/UDP traffic,
# sonde's TC and mirror taps against an independent capture (root).
.PHONY: test-flows
test-flows: $(SONDE)
	$(E2E_PY) tests/flows/run.py --sonde $(SONDE)
# Profiler tier: real sonde --profile --offcpu against workloads built at test
# time (tests/profile/run.py); needs root and Go's pprof (golang-go).
.PHONY: test-profile
test-profile: $(SONDE)
	$(E2E_PY) tests/profile/run.py --sonde $(SONDE)

# User space under AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer: the same sources built again, dynamically linked (the
# sanitizers' runtimes need it), then the end-to-end tests that drive every
# record path (HTTP, Redis, DNS, SQL, metrics with Prometheus and the 100k
# flood) with that binary. A sanitizer report makes sonde exit non-zero,
# which each test checks.
ASAN_DIR   := $(OUTPUT)/asan
ASAN_SONDE := $(ASAN_DIR)/sonde
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OBJS  := $(patsubst user/%.c,$(ASAN_DIR)/%.o,$(USER_SRCS)) $(ASAN_DIR)/record.pb.o \
	$(ASAN_DIR)/pprof.pb.o

$(ASAN_DIR)/%.o: user/%.c $(SKELS) $(OUTPUT)/record.pb.h $(OUTPUT)/pprof.pb.h
	@mkdir -p $(@D)
	$(CC) $(ASAN_FLAGS) -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -I$(OUTPUT) -Ibpf -Iuser \
		-c $< -o $@

$(ASAN_DIR)/%.pb.o: $(OUTPUT)/%.pb.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_FLAGS) -std=gnu11 -I$(OUTPUT) -c $< -o $@

$(ASAN_SONDE): $(ASAN_OBJS)
	$(CC) $(ASAN_FLAGS) $^ -Wl,-Bstatic -lbpf -lprotobuf-nanopb -Wl,-Bdynamic -lelf -lz -o $@

ASAN_E2E := --only basic --only big --only pipelined --only chunked --only redis --only dns \
	--only sql --only metrics

# Each run ends with "NAME: N passed, M failed"; the tier's line is their sum.
.PHONY: test-asan
test-asan: $(ASAN_SONDE)
	@export ASAN_OPTIONS=detect_leaks=1; pass=0; fail=0; \
	for run in "tests/e2e/run.py --tier asan-e2e $(ASAN_E2E)" "tests/profile/run.py" \
		   "tests/flows/run.py"; do \
		$(E2E_PY) $$run --sonde $(ASAN_SONDE) > $(ASAN_DIR)/last.log 2>&1; rc=$$?; \
		cat $(ASAN_DIR)/last.log; \
		line=$$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' $(ASAN_DIR)/last.log | tail -n 1); \
		if [ -z "$$line" ]; then fail=$$((fail + 1)); continue; fi; \
		p=$$(echo "$$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); \
		f=$$(echo "$$line" | sed -E 's/.* ([0-9]+) failed.*/\1/'); \
		[ $$rc -ne 0 ] && [ $$f -eq 0 ] && f=1; \
		pass=$$((pass + p)); fail=$$((fail + f)); \
	done; \
	echo "asan: $$pass passed, $$fail failed"; test $$fail -eq 0
