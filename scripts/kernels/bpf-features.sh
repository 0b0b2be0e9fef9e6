#!/bin/bash
# bpf-features.sh OBJECT.bpf.o... — what compiled BPF objects ask of the kernel,
# and the first mainline kernel that has each thing. The evidence behind the
# "Minimum kernel per feature" table of docs/KERNELS.md (make kernels-features).
#
# Reads the objects themselves, not the sources: program sections and their
# instruction counts, helper calls (llvm-objdump), map types (the .maps BTF),
# global data sections, bpf-to-bpf calls, and loops (back-edges in each
# program's control-flow graph). Prints one line per feature:
#   <first kernel>  <kind>  <name>  <where>
#   <first kernel>  <kind>  <name>  <programs or maps>  [fallback]
# sorted by kernel, then "floor: <kernel>": the highest of them that has no
# fallback (ring buffer: the perf buffer; probe_read_user/kernel: libbpf's
# rewrite to bpf_probe_read).
# Needs llvm-objdump (package llvm) and bpftool.
set -euo pipefail
OBJDUMP=${OBJDUMP:-llvm-objdump}
BPFTOOL=${BPFTOOL:-bpftool}
[ $# -ge 1 ] || { echo "usage: $0 OBJECT.bpf.o..." >&2; exit 2; }

# First mainline kernel of each helper, map type and program type sonde may
# use (from the kernel's history; bcc's docs/kernel-versions.md lists them too).
versions() {
	cat <<'EOF'
helper bpf_map_lookup_elem 3.19
helper bpf_map_update_elem 3.19
helper bpf_map_delete_elem 3.19
helper bpf_probe_read 4.1
helper bpf_ktime_get_ns 4.1
helper bpf_get_prandom_u32 4.1
helper bpf_get_smp_processor_id 4.1
helper bpf_tail_call 4.2
helper bpf_get_current_pid_tgid 4.2
helper bpf_get_current_uid_gid 4.2
helper bpf_get_current_comm 4.2
helper bpf_perf_event_output 4.4
helper bpf_get_stackid 4.6
helper bpf_get_current_task 4.8
helper bpf_probe_read_str 4.11
helper bpf_get_stack 4.18
helper bpf_get_current_cgroup_id 4.18
helper bpf_probe_read_user 5.5 libbpf-rewrites-to-bpf_probe_read
helper bpf_probe_read_kernel 5.5 libbpf-rewrites-to-bpf_probe_read
helper bpf_probe_read_user_str 5.5 libbpf-rewrites-to-bpf_probe_read
helper bpf_probe_read_kernel_str 5.5 libbpf-rewrites-to-bpf_probe_read
helper bpf_ringbuf_output 5.8 perf-buffer-when-use_ringbuf-is-false
helper bpf_ringbuf_reserve 5.8 perf-buffer-when-use_ringbuf-is-false
helper bpf_ringbuf_submit 5.8 perf-buffer-when-use_ringbuf-is-false
helper bpf_ringbuf_discard 5.8 perf-buffer-when-use_ringbuf-is-false
helper bpf_ringbuf_query 5.8 perf-buffer-when-use_ringbuf-is-false
helper bpf_ktime_get_boot_ns 5.8
helper bpf_get_task_stack 5.9
helper bpf_loop 5.17
map hash 3.19
map array 3.19
map prog_array 4.2
map perf_event_array 4.3
map percpu_hash 4.6
map percpu_array 4.6
map stack_trace 4.6
map lru_hash 4.10
map lru_percpu_hash 4.10
map lpm_trie 4.11
map array_of_maps 4.12
map hash_of_maps 4.12
map ringbuf 5.8 perf_event_array-set-by-user-space
prog tracepoint 4.7
prog syscall-tracepoint 4.14
prog raw_tracepoint 4.17
prog kprobe 4.1
prog uprobe 4.1
prog perf_event 4.9
prog tc 4.1
prog xdp 4.8
prog socket 3.19
prog cgroup_skb 4.10
other global-data 5.2
other bounded-loops 5.3
other bpf-to-bpf-calls 4.16
other tail-calls-with-bpf-to-bpf-calls 5.10
other over-4096-insns-per-program 5.2
EOF
}

helpers=$("$BPFTOOL" feature list_builtins helpers 2>/dev/null) ||
	{ echo "bpf-features: bpftool too old for 'feature list_builtins'" >&2; exit 1; }
maptypes=$("$BPFTOOL" feature list_builtins map_types)

found=$(mktemp)
trap 'rm -f "$found"' EXIT
for obj in "$@"; do
	base=$(basename "$obj")
	# programs: executable sections; loops, calls and sizes from the disassembly
	"$OBJDUMP" -d --no-show-raw-insn "$obj" | awk -v obj="$base" -v helpers="$helpers" '
		BEGIN { nh = split(helpers, H, "\n") }
		function flush(   v, i, w, top, cnt, back) {
			if (prog == "") return
			print "prog-size", prog, ninsn, obj
			# DFS over the control-flow graph; an edge to a node on the stack is a loop
			split("", color); top = 0; back = 0
			stack[++top] = first; it[first] = 0; color[first] = 1
			while (top > 0) {
				v = stack[top]
				if (it[v] < nsucc[v]) {
					w = succ[v, ++it[v]]
					if (!(w in pcs)) continue
					if (color[w] == 1) back++
					else if (color[w] == 0) { color[w] = 1; it[w] = 0; stack[++top] = w }
				} else { color[v] = 2; top-- }
			}
			if (back) print "other", "bounded-loops", prog, obj
			if (ninsn > 4096) print "other", "over-4096-insns-per-program", prog, obj
			split("", pcs); split("", nsucc); split("", succ); split("", it); split("", color)
		}
		/^Disassembly of section/ { flush(); prog = ""; sec = $4; sub(/:$/, "", sec); next }
		/^[0-9a-f]+ <[A-Za-z_][A-Za-z0-9_]*>:$/ {
			name = $2; gsub(/[<>:]/, "", name)
			if (name ~ /^LBB/) next
			flush(); prog = name; ninsn = 0; first = ""; prev = ""
			print "section", sec, prog, obj
			next
		}
		prog != "" && /^ *[0-9]+:/ {
			pc = $1; sub(/:$/, "", pc); pc += 0
			ins = $0; sub(/^ *[0-9]+:[ \t]*/, "", ins)
			ninsn += (ins ~ / ll$/) ? 2 : 1
			if (first == "") first = pc
			pcs[pc] = 1
			if (prev != "" && fall) succ[prev, ++nsucc[prev]] = pc
			fall = 1
			nsucc[pc] += 0
			if (ins ~ /^exit/) fall = 0
			if (match(ins, /goto [+-][0-9]+/)) {
				off = substr(ins, RSTART + 5, RLENGTH - 5) + 0
				succ[pc, ++nsucc[pc]] = pc + off + 1
				if (ins ~ /^goto/) fall = 0
			}
			if (ins ~ /^call -?[0-9]+$/) {
				id = substr(ins, 6) + 0
				if (id > 0 && id < nh) print "helper", H[id + 1], prog, obj
			} else if (ins ~ /^call /) {
				print "other", "bpf-to-bpf-calls", prog, obj
			}
			prev = pc
		}
		END { flush() }'
	# map types: the .maps BTF gives each map a "type" member: a pointer to an
	# array whose element count is the map type
	"$BPFTOOL" btf dump file "$obj" 2>/dev/null | awk -v obj="$base" -v types="$maptypes" '
		BEGIN { nt = split(types, T, "\n") }
		/^\[[0-9]+\]/ { id = $1; gsub(/[\[\]]/, "", id); kind[id] = $2; cur = id
			if ($2 == "ARRAY") { n = $0; sub(/.*nr_elems=/, "", n); nel[id] = n + 0 }
			if ($2 == "PTR" || $2 == "VAR") { t = $0; sub(/.*type_id=/, "", t); sub(/[^0-9].*/, "", t); to[id] = t }
			if ($2 == "DATASEC") { ds = $3; gsub(/\047/, "", ds) } else ds = ""
			if ($2 == "VAR") { nm = $3; gsub(/\047/, "", nm); varname[id] = nm }
			next }
		/^\t\047type\047 type_id=/ { t = $2; sub(/type_id=/, "", t); typemem[cur] = t + 0; next }
		ds == ".maps" && /^\ttype_id=/ { v = $1; sub(/type_id=/, "", v); mapvars[v] = 1; next }
		ds ~ /^\.(rodata|data|bss)/ && /VAR/ { print "other", "global-data", ds, obj; next }
		END {
			for (v in mapvars) {
				s = to[v]; p = typemem[s]; a = to[p]
				if (a in nel && nel[a] < nt) print "map", T[nel[a] + 1], varname[v], obj
			}
		}'
done >"$found"

# syscall tracepoints need 4.14; other tracepoints 4.7
sed -i 's/^section tracepoint\/syscalls\/[^ ]* /prog syscall-tracepoint /; s/^section tracepoint[^ ]* /prog tracepoint /' "$found"
# helper calls of a program that also makes bpf-to-bpf calls and tail calls
awk '$1 == "helper" && $2 == "bpf_tail_call" { t[$3] = 1 } $1 == "other" && $2 == "bpf-to-bpf-calls" { c[$3] = 1 }
	END { for (p in t) if (p in c) print "other tail-calls-with-bpf-to-bpf-calls", p, "-" }' "$found" >>"$found"

table=$(versions | awk '
	NR == FNR { v[$1 " " $2] = $3; fb[$1 " " $2] = $4; next }
	$1 == "prog-size" || $1 == "section" { next }
	{ k = $1 " " $2; w[k] = w[k] (w[k] == "" ? "" : ",") $3 }
	END {
		for (k in w) {
			n = split(w[k], a, ","); split("", u); s = ""; m = 0
			for (i = 1; i <= n; i++) if (!(a[i] in u)) { u[a[i]] = 1; m++; if (m <= 3) s = s (s == "" ? "" : ",") a[i] }
			if (m > 3) s = s ",... (" m " in all)"
			printf "%-6s %-7s %-28s %-55s %s\n", (k in v ? v[k] : "?"), substr(k, 1, index(k, " ") - 1), substr(k, index(k, " ") + 1), s, (fb[k] == "" ? "" : "fallback: " fb[k])
		}
	}' - "$found" | sort -t. -k1,1n -k2,2n)
echo "$table"
awk '$1 == "prog-size" { printf "size   %-7s %-38s %d instructions (%s)\n", "prog", $2, $3, $4 }' "$found"
echo "$table" | awk '$1 != "?" && !/fallback:/ { split($1, a, "."); x = a[1] * 1000 + a[2]; if (x > best) { best = x; b = $1 } }
	$1 != "?" { split($1, a, "."); x = a[1] * 1000 + a[2]; if (x > all) { all = x; c = $1 } }
	$1 == "?" { unknown = unknown " " $3 }
	END { print "floor: " b " (" c " where every feature is native)" (unknown == "" ? "" : "; unknown to this script:" unknown) }'
