# Native parser tests and libFuzzer targets for bpf/proto/*.h.
# Included from tests/tests.mk; uses OUTPUT, CC and CLANG from the Makefile.
#
#   make test-unit                 unit tests under ASan/UBSan (default and
#                                  tiny-window builds of the parser, one binary)
#   make test-fuzz [FUZZ_SECONDS=60]  each fuzz target for FUZZ_SECONDS (in
#                                  parallel), after replaying the seed corpus
#
# Products land in $(OUTPUT)/tests/unit and $(OUTPUT)/tests/fuzz; the fuzz seed
# corpus is generated there from tests/unit/captures, nothing is written into
# the source tree.

OUTPUT       ?= .output
CC           ?= gcc
CLANG        ?= clang
FUZZ_SECONDS ?= 60

UNIT_DIR      := $(OUTPUT)/tests/unit
FUZZ_DIR      := $(OUTPUT)/tests/fuzz
UNIT_CAPTURES := tests/unit/captures
UNIT_BIN      := $(UNIT_DIR)/test_http1

SAN_FLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
UNIT_CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror $(SAN_FLAGS) -I bpf -I .
# the second build: a 16-byte window and a 7-step budget, so window refills
# and budget resumption happen at every offset of every capture
UNIT_SMALL   := -DSONDE_TEST_SMALL -DH1_WINDOW=16 -DH1_STEPS=7

$(UNIT_DIR)/test_http1.o: tests/unit/test_http1.c
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -DSONDE_TEST_WITH_SMALL -MMD -MP -MF $(@:.o=.d) -MT $@ -c $< -o $@

$(UNIT_DIR)/test_http1_small.o: tests/unit/test_http1.c
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(UNIT_SMALL) -MMD -MP -MF $(@:.o=.d) -MT $@ -c $< -o $@

$(UNIT_BIN): $(UNIT_DIR)/test_http1.o $(UNIT_DIR)/test_http1_small.o
	$(CC) $(SAN_FLAGS) $^ -o $@

# Message-engine parsers: one native test binary each (tests/unit/test_X.c on
# l7m_driver.h); each prints "unit-X: N passed, M failed".
UNIT_L7M_TESTS := test_redis test_pgsql test_mysql test_memcached test_mqtt test_mongo test_dns test_infer
UNIT_L7M_BINS  := $(addprefix $(UNIT_DIR)/,$(UNIT_L7M_TESTS))

$(UNIT_L7M_BINS): $(UNIT_DIR)/%: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -MMD -MP -MF $@.d -MT $@ $< -o $@

.PHONY: test-unit test-fuzz
# every binary runs; the sum of their lines is the tier's one summary line
test-unit: $(UNIT_BIN) $(UNIT_L7M_BINS)
	@pass=0; fail=0; \
	for t in "$(UNIT_BIN) $(UNIT_CAPTURES)" $(UNIT_L7M_BINS); do \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
			$$t > $(UNIT_DIR)/last.log 2>&1; rc=$$?; cat $(UNIT_DIR)/last.log; \
		line=$$(grep -E '^unit[-a-z0-9]*: [0-9]+ passed, [0-9]+ failed' $(UNIT_DIR)/last.log | tail -n 1); \
		if [ -z "$$line" ]; then fail=$$((fail + 1)); echo "unit: $$t died (rc $$rc)"; continue; fi; \
		p=$$(echo "$$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); \
		f=$$(echo "$$line" | sed -E 's/.* ([0-9]+) failed.*/\1/'); \
		[ $$rc -ne 0 ] && [ $$f -eq 0 ] && f=1; \
		pass=$$((pass + p)); fail=$$((fail + f)); \
	done; \
	echo "unit: $$pass passed, $$fail failed"; test $$fail -eq 0

# --- fuzzing ---------------------------------------------------------------
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -I bpf -I .
# targets: the parser as the kernel runs it, and with a tiny window and budget
FUZZ_TARGETS := fuzz_http1 fuzz_http1_small
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
FUZZ_SEEDS   := $(FUZZ_DIR)/seeds/http1

$(FUZZ_DIR)/fuzz_http1: tests/fuzz/fuzz_http1.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -MF $@.d -MT $@ $< -o $@

$(FUZZ_DIR)/fuzz_http1_small: tests/fuzz/fuzz_http1.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -DH1_WINDOW=16 -DH1_STEPS=5 -MMD -MP -MF $@.d -MT $@ $< -o $@

# Message-engine SQL parsers (PostgreSQL, MySQL): one target, seeded from
# tests/unit/captures/{pgsql,mysql} by mkcorpus_sql.py into seeds/fuzz_sql
FUZZ_TARGETS += fuzz_sql
FUZZ_BINS    += $(FUZZ_DIR)/fuzz_sql
FUZZ_EXTRA_SEEDS += $(FUZZ_DIR)/seeds/fuzz_sql/.stamp

$(FUZZ_DIR)/fuzz_sql: tests/fuzz/fuzz_sql.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -MF $@.d -MT $@ $< -o $@

$(FUZZ_DIR)/seeds/fuzz_sql/.stamp: tests/fuzz/mkcorpus_sql.py $(wildcard $(UNIT_CAPTURES)/pgsql/* $(UNIT_CAPTURES)/mysql/*)
	@rm -rf $(@D) && mkdir -p $(@D)
	python3 tests/fuzz/mkcorpus_sql.py $(UNIT_CAPTURES) $(@D)
	@touch $@

# The same target for Redis and DNS (DNS as datagrams), seeded from
# tests/unit/captures/{redis,dns}
FUZZ_TARGETS += fuzz_redis_dns
FUZZ_BINS    += $(FUZZ_DIR)/fuzz_redis_dns
FUZZ_EXTRA_SEEDS += $(FUZZ_DIR)/seeds/fuzz_redis_dns/.stamp

$(FUZZ_DIR)/fuzz_redis_dns: tests/fuzz/fuzz_sql.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -DFUZZ_PROTO_A=SONDE_PROTO_REDIS -DFUZZ_PROTO_B=SONDE_PROTO_DNS \
		-DFUZZ_DGRAM_B=1 -MMD -MP -MF $@.d -MT $@ $< -o $@

$(FUZZ_DIR)/seeds/fuzz_redis_dns/.stamp: tests/fuzz/mkcorpus_sql.py $(wildcard $(UNIT_CAPTURES)/redis/* $(UNIT_CAPTURES)/dns/*)
	@rm -rf $(@D) && mkdir -p $(@D)
	python3 tests/fuzz/mkcorpus_sql.py $(UNIT_CAPTURES) $(@D) redis dns
	@touch $@

$(FUZZ_DIR)/mkcorpus: tests/fuzz/mkcorpus.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -MMD -MP -MF $@.d -MT $@ $< -o $@

# one seed per capture and role, in the fuzz targets' record format
$(FUZZ_SEEDS)/.stamp: $(FUZZ_DIR)/mkcorpus $(wildcard $(UNIT_CAPTURES)/*)
	@rm -rf $(FUZZ_SEEDS) && mkdir -p $(FUZZ_SEEDS)
	$(FUZZ_DIR)/mkcorpus $(UNIT_CAPTURES) $(FUZZ_SEEDS)
	@touch $@

# Each target: replay the seeds and the checked-in regressions once, then fuzz
# for FUZZ_SECONDS; the targets run side by side. A target passes when both
# runs exit 0. Logs: $(FUZZ_DIR)/<target>.log, crashes: $(FUZZ_DIR)/artifacts/.
test-fuzz: $(FUZZ_BINS) $(FUZZ_SEEDS)/.stamp $(FUZZ_EXTRA_SEEDS)
	@mkdir -p $(FUZZ_DIR)/artifacts
	@pass=0; fail=0; pids=""; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t; \
		seeds=$(FUZZ_SEEDS); dict=-dict=tests/fuzz/http1.dict; \
		if [ -d $(FUZZ_DIR)/seeds/$$t ]; then seeds=$(FUZZ_DIR)/seeds/$$t; dict=; fi; \
		( $(FUZZ_DIR)/$$t -runs=0 $$seeds tests/fuzz/regress && \
		  $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-max_len=16384 $$dict -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
			$(FUZZ_DIR)/corpus/$$t $$seeds ) > $(FUZZ_DIR)/$$t.log 2>&1 & \
		pids="$$pids $$!:$$t"; \
	done; \
	for p in $$pids; do \
		t=$${p#*:}; \
		if wait $${p%%:*}; then \
			pass=$$((pass + 1)); \
			echo "fuzz $$t: ok ($$(grep -o 'stat::number_of_executed_units: *[0-9]*' $(FUZZ_DIR)/$$t.log | grep -o '[0-9]*$$') runs)"; \
		else \
			fail=$$((fail + 1)); echo "fuzz $$t: FAILED, log $(FUZZ_DIR)/$$t.log"; \
			tail -n 40 $(FUZZ_DIR)/$$t.log; \
		fi; \
	done; \
	echo "fuzz: $$pass passed, $$fail failed"; \
	test $$fail -eq 0

-include $(wildcard $(UNIT_DIR)/*.d $(FUZZ_DIR)/*.d)
