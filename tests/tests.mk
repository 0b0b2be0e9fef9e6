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
