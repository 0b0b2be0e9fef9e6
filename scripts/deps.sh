#!/usr/bin/env bash
# Install the Debian packages sonde's build, run and tests need. Idempotent:
# checks what is installed first and does nothing when everything is there.
# Usage: scripts/deps.sh [build|test|all]   (default: all)
set -euo pipefail

build_pkgs=(make gcc clang libbpf-dev bpftool libelf-dev zlib1g-dev nanopb libnanopb-dev
            protobuf-compiler pkg-config)
test_pkgs=(nginx-light redis-server dnsmasq-base bind9-dnsutils mosquitto mosquitto-clients curl python3 libclang-rt-14-dev iproute2 procps
           qemu-system-x86 busybox-static cpio xz-utils zstd prometheus)
# flows tier: offloads off on the veth pair, loss made with nftables
test_pkgs+=(ethtool nftables)
# the profiler tier: Go's own pprof reads sonde's profiles; binutils for nm
test_pkgs+=(golang-go binutils)
# SQL e2e (tests/e2e/test_sql.py): the servers, their CLIs, and the client
# libraries the extended-protocol / prepared-statement peers link against
test_pkgs+=(postgresql postgresql-client mariadb-server mariadb-client libpq-dev libmariadb-dev)

want=()
case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run as root (sudo make ...) to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian's nginx package starts the default site on install; keep it from
# taking port 80 on machines without an init system.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
