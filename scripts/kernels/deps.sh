#!/bin/sh
# deps.sh — the Debian packages the kernel matrix needs on the host; installs
# what is missing and does nothing when everything is there. scripts/deps.sh
# may call it; tests/kernels/run.sh does.
set -eu
pkgs="qemu-system-x86 busybox-static cpio gzip lz4 zstd xz-utils binutils bpftool file bc"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "kernels/deps.sh: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "kernels/deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2 ||
	{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $missing >&2; }
