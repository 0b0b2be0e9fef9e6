# bench-flows (issue 5): veth packet rate with flow tracking on vs off, one
# interleaved run. Included by the main Makefile. Root; uses the flow tests'
# namespaces (sflow-a/sflow-b), so do not run it alongside make test-flows.
#   make bench-flows [BENCH_FLOWS_ARGS='--rounds 10 --seconds 3 --flows 64']
BENCH_FLOWS_ARGS ?=
.PHONY: bench-flows
$(OUTPUT)/bench/udpblast: bench/udpblast.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE $< -o $@

bench-flows: $(SONDE) $(OUTPUT)/bench/udpblast
	python3 bench/flows.py --sonde $(SONDE) --blast $(OUTPUT)/bench/udpblast $(BENCH_FLOWS_ARGS)
