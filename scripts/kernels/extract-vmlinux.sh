#!/bin/sh
# extract-vmlinux.sh VMLINUZ OUT
#
# Writes the uncompressed ELF vmlinux hidden in a bzImage (vmlinuz) to OUT.
# A bzImage is a small decompressor followed by the compressed kernel; we
# look for the magic of each compression format the kernel supports, try to
# decompress from every hit, and keep the first result that is an ELF file.
# Trailing bytes after the compressed stream make the decompressors complain;
# that is expected, so their exit status is ignored and the ELF check decides.
set -eu

img=${1:?usage: extract-vmlinux.sh VMLINUZ OUT}
out=${2:?usage: extract-vmlinux.sh VMLINUZ OUT}
export LC_ALL=C

is_elf() { [ -s "$1" ] && [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

if is_elf "$img"; then cp "$img" "$out"; exit 0; fi

tmp=$(mktemp "${out}.XXXXXX")
trap 'rm -f "$tmp"' EXIT

# magic (as grep -P escapes) and the command that decompresses stdin
try() {
	magic=$1; shift
	for off in $(grep -obUaP "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -8); do
		tail -c +"$((off + 1))" "$img" | "$@" > "$tmp" 2>/dev/null || true
		if is_elf "$tmp"; then
			mv "$tmp" "$out"
			trap - EXIT
			echo "extract-vmlinux: $(basename "$img"): $1 payload at offset $off" >&2
			exit 0
		fi
	done
}

try '\x28\xb5\x2f\xfd'             zstd -dcq
try '\x02\x21\x4c\x18'             lz4 -dcq
try '\xfd\x37\x7a\x58\x5a\x00'     xz -dcq
try '\x1f\x8b\x08'                 gzip -dcq
try '\x5d\x00\x00\x00'             xz -dcq --format=lzma
try '\x42\x5a\x68'                 bzip2 -dcq
try '\x89\x4c\x5a\x4f'             lzop -dcq

echo "extract-vmlinux: no known compressed ELF payload in $img" >&2
exit 1
