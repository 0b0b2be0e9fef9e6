#!/bin/sh
# Install what `make bench` needs from Debian's packages: wrk, nginx-light,
# bpftrace, tshark, linux-perf (plus bpftool/clang/libbpf used to build the
# floor and copycat programs). Idempotent: does nothing when all are present.
set -eu

# command-or-path:package
need="wrk:wrk nginx:nginx-light bpftrace:bpftrace tshark:tshark perf:linux-perf
bpftool:bpftool clang:clang /usr/include/bpf/libbpf.h:libbpf-dev
/usr/include/gelf.h:libelf-dev /usr/include/zlib.h:zlib1g-dev python3:python3"

missing=""
for pair in $need; do
	what=${pair%%:*}
	pkg=${pair#*:}
	case $what in
	/*) [ -e "$what" ] && continue ;;
	*) command -v "$what" >/dev/null 2>&1 && continue
	   [ -x "/usr/sbin/$what" ] && continue ;;
	esac
	# a package may be installed while its command is not on PATH
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' && continue
	missing="$missing $pkg"
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/deps.sh: missing:$missing; run as root to install them" >&2
	exit 1
fi

echo "bench/deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer it beforehand.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
