#!/bin/bash
# gen-btf.sh — minimised BTF for a kernel that lacks /sys/kernel/btf/vmlinux.
#
#   scripts/gen-btf.sh [-o OUT] [-r RELEASE] SOURCE [BPF_OBJECT...]
#
# SOURCE is where the kernel's full type information comes from:
#   running                 /sys/kernel/btf/vmlinux of the machine you are on
#   a raw BTF file          e.g. a copy of another machine's /sys/kernel/btf/vmlinux
#   a vmlinux ELF           with a .BTF section, or with DWARF (a linux-image-*-dbg
#                           package's /usr/lib/debug/boot/vmlinux-*): then pahole
#                           (Debian package dwarves) encodes BTF from the DWARF first
#   a vmlinuz (bzImage)     the compressed kernel from /boot; its vmlinux is extracted
#   a linux-image-*.deb     a Debian kernel package; its vmlinuz is used
# BPF_OBJECT... are sonde's compiled BPF objects (default: .output/*.bpf.o, as
# built by `make`). `bpftool gen min_core_btf` keeps only the types and fields
# those objects' CO-RE relocations touch: a few kilobytes instead of megabytes.
#
# OUT defaults to btf/RELEASE.btf, RELEASE (the kernel's `uname -r`) to what
# SOURCE tells (the .deb's or bzImage's version string, or `uname -r` for
# running). Run sonde on that kernel with `--btf OUT`.
#
# Needs bpftool (Debian package bpftool) with `gen min_core_btf` (v7 and later),
# binutils (objcopy), and for compressed kernels lz4, zstd, xz-utils or gzip.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BPFTOOL=${BPFTOOL:-bpftool}
out="" release=""

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "gen-btf: $*" >&2; exit 1; }

while getopts "o:r:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	r) release=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
src=$1
shift
if [ $# -eq 0 ]; then
	set -- "$root"/.output/*.bpf.o
	[ -e "$1" ] || die "no BPF objects given and none in $root/.output (run make first)"
fi
for o in "$@"; do [ -r "$o" ] || die "cannot read BPF object $o"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

magic() { head -c "$2" "$1" | od -An -tx1 | tr -d ' \n'; }

# bzImage: the version string sits at 0x200 + the 16-bit offset at 0x20e
bzimage_release() {
	local off
	off=$(od -An -tu2 -j $((0x20e)) -N 2 "$1" | tr -d ' ')
	dd if="$1" bs=1 skip=$((off + 0x200)) count=200 2>/dev/null | tr '\0' '\n' | head -1 | cut -d' ' -f1
}

full=$tmp/vmlinux.btf
case $src in
running)
	[ -r /sys/kernel/btf/vmlinux ] || die "this kernel has no /sys/kernel/btf/vmlinux: give a vmlinux or its -dbg package's vmlinux"
	cp /sys/kernel/btf/vmlinux "$full"
	: "${release:=$(uname -r)}"
	;;
*.deb)
	dpkg-deb --fsys-tarfile "$src" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' ||
		die "$src holds no boot/vmlinuz-*"
	img=$(ls "$tmp"/boot/vmlinuz-*)
	: "${release:=${img##*/vmlinuz-}}"
	"$here/kernels/extract-vmlinux.sh" "$img" "$tmp/vmlinux"
	src=$tmp/vmlinux
	;;
esac

if [ ! -s "$full" ]; then
	[ -r "$src" ] || die "cannot read $src"
	case $(magic "$src" 4) in
	9feb01*) cp "$src" "$full" ;; # raw BTF, little-endian magic 0xeb9f
	7f454c46)                     # ELF vmlinux
		if objcopy -O binary --only-section=.BTF "$src" "$full" 2>/dev/null && [ -s "$full" ]; then
			:
		elif command -v pahole >/dev/null; then
			echo "gen-btf: $src has no .BTF section; encoding it from DWARF with pahole" >&2
			pahole --btf_encode_detached="$full" "$src" || die "pahole could not encode BTF from $src"
		else
			die "$src has no .BTF section and pahole (package dwarves) is not installed"
		fi
		: "${release:=$(strings -n 12 "$src" | sed -n 's/^Linux version \([^ ]*\) .*/\1/p' | head -1)}"
		;;
	*)
		if [ "$(dd if="$src" bs=1 skip=$((0x202)) count=4 2>/dev/null)" = HdrS ]; then
			: "${release:=$(bzimage_release "$src")}"
			"$here/kernels/extract-vmlinux.sh" "$src" "$tmp/vmlinux"
			objcopy -O binary --only-section=.BTF "$tmp/vmlinux" "$full" 2>/dev/null || true
			[ -s "$full" ] || die "the kernel in $src was built without BTF (CONFIG_DEBUG_INFO_BTF): use its -dbg package's vmlinux"
		else
			die "$src is neither BTF, an ELF vmlinux, a bzImage nor a .deb"
		fi
		;;
	esac
fi

[ -n "$release" ] || [ -n "$out" ] || die "cannot tell the kernel release of $src: give -r RELEASE or -o OUT"
: "${out:=$root/btf/$release.btf}"
mkdir -p "$(dirname "$out")"

"$BPFTOOL" btf dump file "$full" >/dev/null 2>&1 || die "$src: the BTF does not parse"
"$BPFTOOL" gen min_core_btf "$full" "$out.tmp" "$@" >/dev/null ||
	die "bpftool gen min_core_btf failed (bpftool v7 or later is needed)"
mv "$out.tmp" "$out"
types=$("$BPFTOOL" btf dump file "$out" | grep -c '^\[')
echo "gen-btf: ${release:-?}: $out, $(stat -c %s "$out") bytes, $types types (full BTF $(stat -c %s "$full") bytes)" >&2
