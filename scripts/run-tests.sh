#!/usr/bin/env bash
# `make test`: build, then every test tier in turn, then one summary line.
# Each tier ends with its own "NAME: N passed, M failed" line; they are added up.
# A tier that dies without such a line counts as one failure.
# Knobs: FUZZ_SECONDS (default 30), SKIP_KERNELS=1 to leave out the qemu matrix.
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
logdir=.output/test-logs
mkdir -p "$logdir"
pass=0 fail=0 failed_tiers=()

if [ "$(id -u)" -ne 0 ]; then
  echo "test: the tests load BPF programs and start servers; run them as root (sudo make test)"
  echo "test: 0 passed, 1 failed"
  exit 1
fi

tier() {
  local name=$1; shift
  local log="$logdir/$name.log"
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E '^[A-Za-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    local p f
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail=$((fail + 1)); fi
  elif grep -q '^SKIP' "$log"; then
    :
  else
    if [ "$rc" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
  fi
  [ "$rc" -ne 0 ] && failed_tiers+=("$name")
  return 0
}

tier build "$MAKE" -j2 all
tier unit "$MAKE" test-unit
tier fuzz "$MAKE" test-fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
tier e2e "$MAKE" test-e2e
tier asan "$MAKE" test-asan
tier flows "$MAKE" test-flows
tier profile "$MAKE" test-profile
if [ "${SKIP_KERNELS:-0}" != 1 ]; then
  tier kernels "$MAKE" test-kernels-if-available
fi

[ ${#failed_tiers[@]} -gt 0 ] && echo "test: failed tiers: ${failed_tiers[*]} (logs in $logdir)"
echo "test: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ ${#failed_tiers[@]} -eq 0 ]
