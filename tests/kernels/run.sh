#!/bin/bash
# run.sh — the kernel matrix: boot each listed Debian kernel under qemu with a
# busybox initramfs holding the static sonde and the static test peers, run
# the end-to-end check in the guest once per mode, and judge the result line
# each guest prints. Called by `make test-kernels`; see docs/KERNELS.md.
#
#   tests/kernels/run.sh [--stand-in] [--update-doc] [--if-available]
#
#   --stand-in      no sonde: the guest runs only the peers (plumbing check)
#   --update-doc    regenerate the results section of docs/KERNELS.md
#   --if-available  print one SKIP line and exit 0 when qemu or the kernels
#                   cannot be had (for `make test`), instead of failing
#
# Environment (make passes the first four):
#   OUTPUT    build directory (.output); results go to $OUTPUT/kernels/
#   SONDE     the static sonde binary ($OUTPUT/sonde)
#   BPF_OBJS  sonde's BPF objects, for minimised BTF ($OUTPUT/*.bpf.o)
#   BPFTOOL   bpftool (bpftool)
#   KERNELS   IDs from tests/kernels/list to run (all)
#   MODES     modes to run per kernel (ringbuf perfbuf nobtf btfdir)
#   ACCEL     kvm | tcg | auto (auto: kvm when a probe guest boots with it)
#   TIMEOUT   seconds before a guest is killed and failed (240)
#   JOBS      guests run at once (number of CPUs)
#   REQUESTS  requests the client makes in each guest (50)
#   SONDE_ARGS  extra arguments for `sonde run` in every guest
#   KERNELS_CACHE  where kernels are cached (/var/cache/sonde-kernels)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1

OUTPUT=${OUTPUT:-.output}
SONDE=${SONDE:-$OUTPUT/sonde}
BPFTOOL=${BPFTOOL:-bpftool}
MODES=${MODES:-ringbuf perfbuf nobtf btfdir}
ACCEL=${ACCEL:-auto}
TIMEOUT=${TIMEOUT:-240}
JOBS=${JOBS:-$(nproc)}
REQUESTS=${REQUESTS:-50}
PORT=${PORT:-8080}
export KERNELS_CACHE=${KERNELS_CACHE:-/var/cache/sonde-kernels}

stand_in=0 update_doc=0 if_available=0
for a in "$@"; do
	case $a in
	--stand-in) stand_in=1 ;;
	--update-doc) update_doc=1 ;;
	--if-available) if_available=1 ;;
	*) echo "usage: $0 [--stand-in] [--update-doc] [--if-available]" >&2; exit 2 ;;
	esac
done
[ $stand_in = 1 ] && MODES=stand-in

out=$OUTPUT/kernels
mkdir -p "$out"
log() { echo "test-kernels: $*" >&2; }
# Cannot run at all: a SKIP line when asked to be lenient, else a failure.
unavailable() {
	if [ $if_available = 1 ]; then
		echo "SKIP test-kernels: $*"
		exit 0
	fi
	log "$*"
	echo "kernels: 0 passed, 1 failed"
	exit 1
}

# --- what the host needs ---------------------------------------------------
[ "$(id -u)" = 0 ] || [ -w "$(dirname "$KERNELS_CACHE")" ] || [ -w "$KERNELS_CACHE" ] ||
	unavailable "needs root (or a writable KERNELS_CACHE) for the kernel cache"
"$root/scripts/kernels/deps.sh" >&2 || unavailable "could not install qemu-system-x86, busybox-static, cpio (scripts/kernels/deps.sh)"
qemu=$(command -v qemu-system-x86_64) || unavailable "qemu-system-x86_64 is not installed"
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || unavailable "$busybox is not the static busybox (busybox-static)"

fetched=$("$root/scripts/kernels/fetch.sh" "$here/list") ||
	unavailable "the kernel images could not be fetched into $KERNELS_CACHE (see above)"
[ -n "$fetched" ] || unavailable "no kernel selected (KERNELS=${KERNELS:-})"

for p in httpd httpc; do
	[ -x "$out/$p" ] || unavailable "$out/$p is not built (make $out/$p)"
done
if [ $stand_in = 0 ]; then
	[ -x "$SONDE" ] || unavailable "$SONDE is not built"
	file -L "$SONDE" | grep -q 'statically linked' || log "warning: $SONDE is not statically linked; the guest has no shared libraries but bpftool's"
fi

# --- minimised BTF for the no-BTF mode ------------------------------------
btfdir=$out/btf
rm -rf "$btfdir"
mkdir -p "$btfdir"
if [[ " $MODES " == *" nobtf "* || " $MODES " == *" btfdir "* ]]; then
	read -r -a objs <<<"${BPF_OBJS:-$(ls "$OUTPUT"/*.bpf.o 2>/dev/null | tr '\n' ' ')}"
	[ ${#objs[@]} -gt 0 ] || unavailable "no BPF objects in $OUTPUT to minimise BTF for"
	while read -r id release dir; do
		if [ ! -s "$dir/vmlinux.btf" ]; then
			log "$id: no BTF extracted from the kernel image; the nobtf run will fail"
			continue
		fi
		BPFTOOL=$BPFTOOL "$root/scripts/gen-btf.sh" -r "$release" -o "$btfdir/$release.btf" \
			"$dir/vmlinux.btf" "${objs[@]}" 2>&1 | sed 's/^/test-kernels: /' >&2
		if [ -f "btf/$release.btf" ] && ! cmp -s "btf/$release.btf" "$btfdir/$release.btf"; then
			log "note: btf/$release.btf differs from the BTF the current objects need (regenerate: make kernels-btf)"
		fi
	done <<<"$fetched"
fi

# --- the initramfs: one for every guest of this run -----------------------
stage=$out/initramfs
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,peers,btf,lib64,lib/x86_64-linux-gnu}
cp "$busybox" "$stage/bin/busybox"
install -m 0755 "$here/init.sh" "$stage/init"
cp "$out/httpd" "$out/httpc" "$stage/peers/"
cp "$btfdir"/*.btf "$stage/btf/" 2>/dev/null
[ $stand_in = 0 ] && cp "$SONDE" "$stage/sonde"
# bpftool counts programs and attachments from the kernel's side
if bpftool_bin=$(command -v "$BPFTOOL"); then
	cp "$bpftool_bin" "$stage/bpftool"
	for lib in $(ldd "$bpftool_bin" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
		case $lib in
		/lib64/*) cp -L "$lib" "$stage/lib64/" ;;
		*) cp -L "$lib" "$stage/lib/x86_64-linux-gnu/" ;;
		esac
	done
fi
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null
initrd=$out/initramfs.cpio.gz
(cd "$stage" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$initrd" ||
	unavailable "could not build the initramfs"

# --- kvm or tcg ------------------------------------------------------------
# /dev/kvm being there is not enough: nested hypervisors may not run a stock
# kernel (a probe guest hangs). The verdict is kept per host kernel and qemu.
first_vmlinuz=$(head -1 <<<"$fetched" | awk '{ print $3 }')/vmlinuz
kvm_works() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	local key verdict_file p
	key=$(uname -r)-$("$qemu" --version | head -1 | awk '{ print $4 }')
	verdict_file=$KERNELS_CACHE/kvm-probe.$key
	if [ ! -f "$verdict_file" ]; then
		p=$out/kvm-probe
		rm -rf "$p" && mkdir -p "$p/bin"
		cp "$busybox" "$p/bin/busybox"
		printf '#!/bin/busybox sh\n/bin/busybox echo KVM-PROBE-OK\n/bin/busybox poweroff -f\n' >"$p/init"
		chmod +x "$p/init"
		(cd "$p" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1) >"$p.cpio.gz"
		if timeout -s KILL 20 "$qemu" -accel kvm -cpu host -m 256M -smp 1 -nodefaults -display none \
			-serial stdio -no-reboot -kernel "$first_vmlinuz" -initrd "$p.cpio.gz" \
			-append "console=ttyS0 quiet panic=-1" </dev/null 2>&1 | grep -aq KVM-PROBE-OK; then
			echo yes >"$verdict_file"
		else
			echo no >"$verdict_file"
		fi
		rm -rf "$p" "$p.cpio.gz"
	fi
	[ "$(cat "$verdict_file")" = yes ]
}
case $ACCEL in
kvm) accel=(-accel kvm -cpu host) ;;
tcg) accel=(-accel tcg) ;;
*)
	if kvm_works; then
		accel=(-accel kvm -cpu host)
	else
		[ -e /dev/kvm ] && log "kvm: /dev/kvm is there but a guest does not boot with it here; using TCG"
		accel=(-accel tcg)
	fi
	;;
esac
ACCEL_NAME=${accel[1]}

# --- the runs --------------------------------------------------------------
# One guest per kernel and mode; its console is $out/<id>-<mode>.log, what
# sonde wrote is unpacked from the second serial port into $out/<id>-<mode>/.
run_guest() {
	local id=$1 release=$2 dir=$3 mode=$4 name=$1-$4 rc
	local logf=$out/$name.log start end
	rm -rf "${out:?}/$name" "$out/$name.tar"
	start=$(date +%s.%N)
	timeout -s KILL "$TIMEOUT" "$qemu" "${accel[@]}" -m 1G -smp 1 -nodefaults -display none \
		-no-reboot -serial stdio -serial "file:$out/$name.tar" \
		-kernel "$dir/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 sonde_mode=$mode sonde_n=$REQUESTS sonde_port=$PORT${SONDE_ARGS:+ sonde_args=${SONDE_ARGS// /,}}" \
		</dev/null >"$logf" 2>&1
	rc=$?
	end=$(date +%s.%N)
	mkdir -p "$out/$name"
	tar -xf "$out/$name.tar" -C "$out/$name" 2>/dev/null && rm -f "$out/$name.tar"
	local line
	line=$(tr -d '\r' <"$logf" | grep -a '^SONDE-RESULT ' | tail -1)
	if [ -z "$line" ]; then
		if [ $rc = 137 ]; then
			line="SONDE-RESULT kernel=$release mode=$mode result=FAIL reason=timeout-${TIMEOUT}s"
		else
			line="SONDE-RESULT kernel=$release mode=$mode result=FAIL reason=no-result-line(qemu-rc=$rc)"
		fi
	fi
	printf '%s id=%s secs=%.1f\n' "$line" "$id" "$(echo "$end - $start" | bc)" >"$out/$name.result"
	tr -d '\r' <"$logf" | grep -a '^SONDE-VERIFIER ' | sed "s/\$/ id=$id/" >"$out/$name.verifier"
}

t0=$(date +%s)
log "$(wc -l <<<"$fetched") kernel(s) x modes ($MODES), accel=$ACCEL_NAME, $JOBS at once, ${TIMEOUT}s timeout each"
rm -f "$out"/*.result "$out"/*.verifier
running=0
while read -r id release dir; do
	for mode in $MODES; do
		if [ $running -ge "$JOBS" ]; then
			wait -n
			running=$((running - 1))
		fi
		run_guest "$id" "$release" "$dir" "$mode" &
		running=$((running + 1))
	done
done <<<"$fetched"
wait
t1=$(date +%s)

# --- summary ---------------------------------------------------------------
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
passed=0 failed=0
: >"$out/results.txt"
printf '%-6s %-28s %-9s %-6s %5s %8s %-8s %6s %6s %6s %s\n' kernel release mode result progs attached channel client server secs reason
while read -r id release dir; do
	for mode in $MODES; do
		r=$(cat "$out/$id-$mode.result" 2>/dev/null || echo "SONDE-RESULT result=FAIL reason=lost")
		echo "$r" >>"$out/results.txt"
		res=$(field result "$r")
		if [ "$res" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
		reason=$(field reason "$r")
		if [ "$res" != PASS ] && [ -n "$(field ready "$r")" ]; then
			reason="$reason (ready=$(field ready "$r") rc=$(field rc "$r") httpc=$(field httpc "$r") dup=$(field dup "$r"))"
		fi
		printf '%-6s %-28s %-9s %-6s %5s %8s %-8s %6s %6s %6s %s\n' "$id" "$release" "$mode" "$res" \
			"$(field progs "$r")" "$(field attached "$r")" "$(field channel "$r")" "$(field client "$r")" \
			"$(field server "$r")" "$(field secs "$r")" "${reason:-}"
		[ "$res" = PASS ] || log "$id $mode: console log kept in $out/$id-$mode.log, sonde's files in $out/$id-$mode/"
	done
done <<<"$fetched"
cat "$out"/*.verifier >"$out/verifier.txt" 2>/dev/null
while read -r id release dir; do echo "$id $release $(cat "$dir/package")"; done <<<"$fetched" >"$out/kernels.txt"
echo "$ACCEL_NAME $((t1 - t0)) $JOBS" >"$out/run-info.txt"
log "matrix took $((t1 - t0)) s with $ACCEL_NAME"

if [ $update_doc = 1 ] && [ $stand_in = 0 ]; then
	"$here/update-doc.sh" "$out" "$root/docs/KERNELS.md" && log "docs/KERNELS.md results section regenerated"
fi
echo "kernels: $passed passed, $failed failed"
[ $failed = 0 ]
