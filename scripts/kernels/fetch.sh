#!/bin/bash
# fetch.sh [LIST] — make sure every kernel of the matrix list is in the cache.
#
# For each line "ID SUITES PACKAGE-GLOB" of LIST (tests/kernels/list), the
# kernel cache (KERNELS_CACHE, /var/cache/sonde-kernels) gets a directory ID/
# holding:
#   package       "<name> <version>" that ID resolved to (the pin: fetched once)
#   *.deb         the Debian package itself
#   vmlinuz       the kernel image qemu boots
#   config        the kernel's build config
#   release       its `uname -r`
#   vmlinux.btf   the kernel's full BTF (raw), extracted from vmlinuz on the host
#   ok            written last: the entry is complete
# and the script prints "ID RELEASE DIR" for each kernel on stdout.
#
# Nothing touches the network when the cache is complete. Otherwise package
# lists are fetched into a scratch directory with apt's own client, pointed
# at a sources list this script writes from the machine's own apt sources
# (their mirror URIs, other suites), so the machine's apt state is left alone.
#
# Environment: KERNELS_CACHE, KERNELS (space-separated IDs to keep, default
# all), KERNELS_REFRESH=1 (resolve again and fetch a newer build if any).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
list=${1:-$here/../../tests/kernels/list}
cache=${KERNELS_CACHE:-/var/cache/sonde-kernels}
only=${KERNELS:-}
refresh=${KERNELS_REFRESH:-0}

log() { echo "fetch-kernels: $*" >&2; }
die() { log "$*"; exit 1; }

[ -r "$list" ] || die "no kernel list at $list"
mkdir -p "$cache" || die "cannot create $cache (run as root, or set KERNELS_CACHE)"

# --- the machine's mirrors -------------------------------------------------
# Prints "main URI KEYRING" and "security URI KEYRING" from the deb822 files
# in /etc/apt/sources.list.d and one-line sources.list files. Nothing about
# any host is written in this project: the URIs are read here, at run time.
machine_mirrors() {
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -r "$f" ] || continue
			awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no" && uri != "")
					print (suites ~ /-security/ ? "security" : "main"), uri, (key == "" ? "-" : key)
				types = uri = suites = key = ""; enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				k = tolower($1); sub(/:$/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") { split(v, u, /[ \t]+/); uri = u[1] }
				else if (k == "suites") suites = v
				else if (k == "signed-by") key = v
				else if (k == "enabled") enabled = tolower(v)
			}
			END { flush() }' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -r "$f" ] || continue
			awk '$1 == "deb" {
				key = "-"; i = 2
				if ($2 ~ /^\[/) {
					for (; i <= NF; i++) {
						if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) }
						if ($i ~ /\]$/) { i++; break }
					}
				}
				print ($(i+1) ~ /-security/ ? "security" : "main"), $i, key
			}' "$f"
		done
	} | awk '!seen[$1]++'
}

resolve_and_fetch() {
	local id=$1 suites=$2 glob=$3 dir=$cache/$1
	local scratch=$cache/.apt mirrors main_uri sec_uri main_key sec_key key
	mirrors=$(machine_mirrors)
	main_uri=$(awk '$1 == "main" { print $2 }' <<<"$mirrors")
	main_key=$(awk '$1 == "main" { print $3 }' <<<"$mirrors")
	sec_uri=$(awk '$1 == "security" { print $2 }' <<<"$mirrors")
	sec_key=$(awk '$1 == "security" { print $3 }' <<<"$mirrors")
	[ -n "$main_uri" ] || die "no Debian mirror found in this machine's apt sources"

	rm -rf "${scratch:?}/$id"
	mkdir -p "$scratch/$id/lists/partial" "$scratch/$id/cache/archives/partial" "$scratch/$id/empty"
	local src=$scratch/$id/sources.list s uri
	: >"$src"
	for s in ${suites//,/ }; do
		if [[ $s == *-security ]]; then
			uri=$sec_uri key=$sec_key
			[ -n "$uri" ] || { log "$id: no security mirror in apt sources, skipping suite $s"; continue; }
		else
			uri=$main_uri key=$main_key
		fi
		[ "$key" != - ] || key=/usr/share/keyrings/debian-archive-keyring.gpg
		echo "deb [signed-by=$key] $uri $s main" >>"$src"
	done
	local -a opts=(-o "Dir::Etc::sourcelist=$src" -o Dir::Etc::sourceparts=-
		-o "Dir::State::Lists=$scratch/$id/lists" -o "Dir::Cache=$scratch/$id/cache"
		-o "Dir::Etc::preferencesparts=$scratch/$id/empty" -o Dir::Etc::preferences=/dev/null
		-o APT::Sandbox::User=root -q=2)
	log "$id: reading package lists for $suites"
	apt-get "${opts[@]}" update >&2 || die "$id: apt-get update failed (no network to the Debian mirror?)"

	# every package matching the glob, every version: keep the highest
	local best_pkg="" best_ver="" p v
	local -a names=()
	while read -r p; do
		# shellcheck disable=SC2053 # glob match on purpose
		[[ $p == $glob ]] || continue
		[[ $p == *-dbg || $p == *-unsigned ]] && continue
		names+=("$p")
	done < <(apt-cache "${opts[@]}" pkgnames linux-image- | sort)
	[ ${#names[@]} -gt 0 ] || die "$id: no package matches $glob in $suites"
	while IFS='|' read -r p v _; do
		p=${p// /} v=${v// /}
		if [ -z "$best_ver" ] || dpkg --compare-versions "$v" gt "$best_ver"; then
			best_pkg=$p best_ver=$v
		fi
	done < <(apt-cache "${opts[@]}" madison "${names[@]}")
	[ -n "$best_pkg" ] || die "$id: no package matches $glob in $suites"

	if [ -f "$dir/ok" ] && [ "$(cat "$dir/package")" = "$best_pkg $best_ver" ]; then
		log "$id: $best_pkg $best_ver is already cached"
		rm -rf "${scratch:?}/$id"
		return
	fi
	log "$id: downloading $best_pkg $best_ver"
	rm -rf "$dir.new"
	mkdir -p "$dir.new"
	(cd "$dir.new" && apt-get "${opts[@]}" download "$best_pkg=$best_ver" >&2) ||
		die "$id: apt-get download $best_pkg=$best_ver failed"
	echo "$best_pkg $best_ver" >"$dir.new/package"
	unpack "$id" "$dir.new"
	rm -rf "$dir" "${scratch:?}/$id"
	mv "$dir.new" "$dir"
}

# Unpacks vmlinuz, config and BTF from the .deb in DIR; marks DIR complete.
unpack() {
	local id=$1 dir=$2 deb x release
	deb=$(ls "$dir"/*.deb)
	x=$dir/x
	rm -rf "$x"
	mkdir -p "$x"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/*'
	release=$(cd "$x/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//')
	[ -n "$release" ] || die "$id: no boot/vmlinuz-* in $deb"
	mv "$x/boot/vmlinuz-$release" "$dir/vmlinuz"
	mv "$x/boot/config-$release" "$dir/config"
	echo "$release" >"$dir/release"
	rm -rf "$x"
	for opt in CONFIG_BPF_SYSCALL CONFIG_DEBUG_INFO_BTF CONFIG_FTRACE_SYSCALLS \
		CONFIG_SERIAL_8250_CONSOLE CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP; do
		grep -q "^$opt=y" "$dir/config" || log "$id: warning: $release lacks $opt=y"
	done
	# full BTF of the kernel, for minimised BTF (scripts/gen-btf.sh)
	"$here/extract-vmlinux.sh" "$dir/vmlinuz" "$dir/vmlinux.tmp"
	if objcopy -O binary --only-section=.BTF "$dir/vmlinux.tmp" "$dir/vmlinux.btf" &&
		[ -s "$dir/vmlinux.btf" ]; then
		:
	else
		log "$id: $release has no .BTF section"
		rm -f "$dir/vmlinux.btf"
	fi
	rm -f "$dir/vmlinux.tmp"
	touch "$dir/ok"
}

while read -r id suites glob _; do
	case $id in '' | '#'*) continue ;; esac
	if [ -n "$only" ] && [[ " $only " != *" $id "* ]]; then continue; fi
	dir=$cache/$id
	if [ "$refresh" = 1 ] || [ ! -f "$dir/ok" ]; then
		resolve_and_fetch "$id" "$suites" "$glob"
	fi
	echo "$id $(cat "$dir/release") $dir"
done <"$list"
