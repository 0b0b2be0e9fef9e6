#!/bin/busybox sh
# /init of the kernel-matrix guest (tests/kernels/run.sh builds the initramfs).
#
# Runs one end-to-end check of the static sonde against the static peers,
# prints one machine-readable line on the console and powers off:
#
#   SONDE-RESULT kernel=<uname -r> mode=<mode> ready=1 progs=<n> attached=<n>
#       expected=50 client=50 server=50 dup=0 httpc=50 rc=0 result=PASS
#
# preceded by one SONDE-VERIFIER line per BPF program sonde loaded. The mode
# and the workload come from the kernel command line (unknown name=value
# parameters reach init as environment variables):
#   sonde_mode   ringbuf (default) | perfbuf (--force-perfbuf) |
#                nobtf (--no-sys-btf --btf /btf/<uname -r>.btf) |
#                btfdir (--no-sys-btf: sonde finds /btf/<uname -r>.btf itself) |
#                stand-in (no sonde: the peers only)
#   sonde_n      requests on the one keep-alive connection (50)
#   sonde_port   server port (8080)
#   sonde_ready  seconds to wait for sonde's "ready" line (150: verifying the
#                message-engine programs under TCG takes a minute on 5.10)
#   sonde_args   extra arguments for sonde run, ',' standing for ' '
# Whatever sonde wrote (stdout, stderr, verifier logs) goes to the host as a
# tar stream on the second serial port (ttyS1) when the host gave one.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mode=${sonde_mode:-ringbuf}
n=${sonde_n:-50}
port=${sonde_port:-8080}
ready_wait=${sonde_ready:-150}
extra=$(echo "${sonde_args:-}" | tr ',' ' ')

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/debug/tracing
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
echo 1 >/proc/sys/kernel/printk_ratelimit 2>/dev/null

kernel=$(uname -r)
out=/tmp/out
mkdir -p $out
say() { echo "SONDE-$*"; }
finish() {
	if [ -e /dev/ttyS1 ] && [ "${sonde_tty1:-1}" = 1 ]; then
		stty -F /dev/ttyS1 raw -echo 2>/dev/null
		(cd /tmp && tar c out) >/dev/ttyS1 2>/dev/null
	fi
	sync
	poweroff -f
	sleep 10
}

case $mode in
ringbuf) margs="" ;;
perfbuf) margs="--force-perfbuf" ;;
nobtf) margs="--no-sys-btf --btf /btf/$kernel.btf"
	[ -r "/btf/$kernel.btf" ] || say "INFO mode=nobtf: no /btf/$kernel.btf in the initramfs"
	# be a kernel without BTF: /sys/kernel/btf/vmlinux is not there at all,
	# so neither sonde nor libbpf can fall back on it
	mount -t tmpfs -o size=1m nobtf /sys/kernel/btf ;;
btfdir) margs="--no-sys-btf" # sonde must find /btf/<release>.btf beside itself
	mount -t tmpfs -o size=1m nobtf /sys/kernel/btf ;;
stand-in) margs="" ;;
*) say "RESULT kernel=$kernel mode=$mode result=FAIL reason=unknown-mode"; finish ;;
esac

step() { echo "SONDE-STEP $*"; }
step "mode=$mode kernel=$kernel: starting the server"
/peers/httpd -p "$port" -r /tmp/httpd.ready 2>$out/httpd.err &
i=0
while [ ! -e /tmp/httpd.ready ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

ready=0 spid=""
if [ "$mode" = stand-in ]; then
	# no sonde yet: exercise the plumbing only (peers, counting, result line)
	ready=1
else
	step "starting sonde"
	# shellcheck disable=SC2086 # word splitting of the argument lists is wanted
	/sonde run --json --duration 120 --port "$port" --verifier-stats $margs $extra \
		>$out/sonde.json 2>$out/sonde.err &
	spid=$!
	# sonde's stderr on the console as it comes, so a guest killed by the
	# host's timeout still shows how far sonde got
	mkfifo /tmp/sonde.err.pipe
	(while IFS= read -r l; do echo "  sonde| $l"; done </tmp/sonde.err.pipe) &
	tail -f $out/sonde.err >/tmp/sonde.err.pipe 2>/dev/null &
	tailpid=$!
	t0=$(date +%s)
	while :; do
		if grep -qw ready $out/sonde.err 2>/dev/null; then ready=1; break; fi
		kill -0 $spid 2>/dev/null || break
		[ $(($(date +%s) - t0)) -ge "$ready_wait" ] && break
		sleep 0.1
	done
fi

progs=0 attached=0 probes=- channel=-
if [ $ready = 1 ] && [ -n "$spid" ]; then
	# sonde's own count from its ready line ("ready: 20/20 probes attached, ...")
	probes=$(sed -n 's/.*ready: *\([0-9]*\/[0-9]*\) probes.*/\1/p' $out/sonde.err | head -1)
	[ -n "$probes" ] || probes=-
fi
if [ $ready = 1 ] && [ -n "$spid" ] && [ -x /bpftool ]; then
	# independent count of what is loaded and attached, from the kernel
	/bpftool prog show >$out/bpftool-prog.txt 2>&1
	/bpftool perf show >$out/bpftool-perf.txt 2>&1
	/bpftool link show >$out/bpftool-link.txt 2>&1
	/bpftool map show >$out/bpftool-map.txt 2>&1
	progs=$(grep -c '^[0-9]*: ' $out/bpftool-prog.txt)
	attached=$(grep -c "pid $spid " $out/bpftool-perf.txt)
	# the event channel the kernel really has: a ring buffer or a perf event array
	if grep -q '^[0-9]*: ringbuf ' $out/bpftool-map.txt; then
		channel=ringbuf
	elif grep -q '^[0-9]*: perf_event_array ' $out/bpftool-map.txt; then
		channel=perfbuf
	fi
fi
# the channel each mode must end up with: the ring buffer from 5.8 on unless
# --force-perfbuf
want_channel=ringbuf
kmaj=${kernel%%.*} kmin=${kernel#*.}
kmin=${kmin%%[!0-9]*}
if [ "$mode" = perfbuf ] || [ "$kmaj" -lt 5 ] || { [ "$kmaj" = 5 ] && [ "$kmin" -lt 8 ]; }; then
	want_channel=perfbuf
fi
[ "$mode" = stand-in ] && channel=$want_channel

httpc_ok=0
if [ $ready = 1 ]; then
	step "ready; running the client"
	/peers/httpc -p "$port" -n "$n" >$out/httpc.out 2>&1
	httpc_ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' $out/httpc.out)
fi

rc=-
if [ -n "$spid" ]; then
	if kill -0 $spid 2>/dev/null; then
		step "client done; stopping sonde"
		sleep 1 # let the last records reach user space, then stop it
		kill -INT $spid
		i=0
		while kill -0 $spid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		if kill -0 $spid 2>/dev/null; then
			say "INFO sonde ignored SIGINT for 10 s: killed"
			kill -9 $spid
		fi
	fi
	wait $spid
	rc=$?
	sleep 0.2
	kill "$tailpid" 2>/dev/null
fi
[ "$mode" = stand-in ] && rc=0

# each request /k/<i> must be reported exactly once per role, and that one
# record must say GET and 200 (a second record of any kind, e.g. a spurious
# timeout, counts as a duplicate)
# shellcheck disable=SC2016 # awk program
counts=$(awk -v n="$n" '
	function field(name,   m) {
		if (match($0, "\"" name "\"[ ]*:[ ]*\"[^\"]*\"")) {
			m = substr($0, RSTART, RLENGTH); sub(/^"[^"]*"[ ]*:[ ]*"/, "", m); sub(/"$/, "", m); return m
		}
		return ""
	}
	{
		p = field("path"); r = field("role")
		if (p !~ /^\/k\/[0-9]+$/ || (r != "client" && r != "server")) next
		i = substr(p, 4) + 0
		seen[r, i]++
		if ($0 ~ /"method"[ ]*:[ ]*"GET"/ && $0 ~ /"status"[ ]*:[ ]*200[^0-9]/) good[r, i]++
	}
	END {
		for (i = 0; i < n; i++) {
			if (seen["client", i] == 1 && good["client", i] == 1) c++
			if (seen["server", i] == 1 && good["server", i] == 1) s++
			if (seen["client", i] > 1 || seen["server", i] > 1) d++
		}
		printf "client=%d server=%d dup=%d\n", c, s, d
	}' $out/sonde.json 2>/dev/null)
[ -n "$counts" ] || counts="client=0 server=0 dup=0"
if [ "$mode" = stand-in ]; then counts="client=$httpc_ok server=$httpc_ok dup=0"; fi

result=FAIL reason=
if [ $ready != 1 ]; then reason=" reason=not-ready"
elif [ "$rc" != 0 ]; then reason=" reason=sonde-exit-$rc"
elif [ "$httpc_ok" != "$n" ]; then reason=" reason=client-failed"
elif [ "$channel" != "$want_channel" ]; then reason=" reason=channel-$channel-not-$want_channel"
elif [ "$counts" != "client=$n server=$n dup=0" ]; then reason=" reason=records-missing-or-duplicated"
fi
if [ $ready = 1 ] && [ "$rc" = 0 ] && [ "$httpc_ok" = "$n" ] &&
	[ "$counts" = "client=$n server=$n dup=0" ] && [ "$channel" = "$want_channel" ]; then
	result=PASS reason=
fi

# per-program verifier statistics (sonde --verifier-stats)
grep '^verifier: ' $out/sonde.err 2>/dev/null | sed "s/^verifier: /SONDE-VERIFIER kernel=$kernel mode=$mode /"
if [ $result = FAIL ]; then
	echo "---- sonde stderr (last 60 lines) ----"
	tail -n 60 $out/sonde.err 2>/dev/null
	# sonde names the file it saved a rejected program's verifier log in
	for f in $( (grep -o "[^ :'\"]*verifier[^ :'\"]*\.log" $out/sonde.err; find / /tmp -xdev -name '*verifier*.log' ! -path '/tmp/out/*') 2>/dev/null | sort -u); do
		[ -r "$f" ] || f=/$f
		[ -r "$f" ] || continue
		cp "$f" $out/ 2>/dev/null
		echo "---- verifier log $f (last 80 lines; whole file on ttyS1) ----"
		tail -n 80 "$f"
	done
	echo "---- httpc ----"
	cat $out/httpc.out 2>/dev/null
	echo "----"
fi
say "RESULT kernel=$kernel mode=$mode ready=$ready probes=$probes progs=$progs attached=$attached channel=$channel expected=$n $counts httpc=${httpc_ok:-0} rc=$rc result=$result$reason"
finish
