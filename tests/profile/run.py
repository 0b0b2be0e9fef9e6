#!/usr/bin/env python3
"""Profiler tests: the real sonde binary with --profile --offcpu on the real
kernel, against C workloads built here with frame pointers (and once
stripped), started after sonde is ready. Every check compares what sonde
reported (records, pprof files read by Go's own pprof, folded files) with
what the workloads did.

Usage: run.py --sonde .output/sonde [--keep]
Ends with the line "profile: N passed, M failed".
"""
import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
HZ = 999
INTERVAL = 2
SLEEP_MS, SLEEPS = 100, 20


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def build(workdir):
    """The workload twice: -O0 keeps a frame pointer in every function (gcc
    12 drops it in leaf functions at -O1 and above, even when told not to),
    and a stripped copy whose only names are in .dynsym."""
    src = os.path.join(HERE, "workload.c")
    out = os.path.join(workdir, "workload")
    common = ["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-pthread"]
    subprocess.run(common + [src, "-o", out], check=True)
    stripped = os.path.join(workdir, "workload-stripped")
    subprocess.run(common + ["-fvisibility=hidden", "-rdynamic", "-s", src, "-o", stripped],
                   check=True)
    syms = subprocess.run(["nm", "-D", stripped], capture_output=True, text=True).stdout
    check("exported_burn" in syms and "hidden_burn" not in syms,
          "the stripped workload should export exported_burn only:\n" + syms)
    nm = subprocess.run(["nm", stripped], capture_output=True, text=True)
    check("no symbols" in nm.stderr, "workload-stripped still has a .symtab")
    return out, stripped


class Session:
    """One sonde run with both profilers and every workload; records from stdout."""

    def __init__(self, sonde, workdir):
        self.dir = os.path.join(workdir, "profiles")
        os.makedirs(self.dir)
        self.rec_path = os.path.join(workdir, "records.bin")
        self.out_path = os.path.join(workdir, "sonde.out")
        self.err_path = os.path.join(workdir, "sonde.err")
        cmd = [sonde, "run", "--json", "--profile", "--offcpu", "--profile-hz", str(HZ),
               "--profile-interval", str(INTERVAL), "--profile-dir", self.dir,
               "--output", self.rec_path, "--metrics-listen", "off", "--port", "1"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.out_path, "w"),
                                     stderr=open(self.err_path, "w"))
        deadline = time.time() + 60
        while time.time() < deadline:
            if "ready" in open(self.err_path).read():
                return
            if self.proc.poll() is not None:
                raise Failure("sonde exited before ready: " + open(self.err_path).read())
            time.sleep(0.1)
        self.proc.kill()
        raise Failure("sonde not ready after 60 s: " + open(self.err_path).read())

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("sonde did not exit within 60 s of SIGINT")
        self.err = open(self.err_path).read()
        check(rc == 0, f"sonde exited {rc}: {self.err[-2000:]}")
        self.records = [json.loads(l) for l in open(self.out_path) if l.strip()]
        self.profiles = [r for r in self.records if r["type"] == "profile"]
        stats = [l for l in self.err.splitlines() if l.startswith("sonde: stats ")]
        check(stats, "no stats line at exit: " + self.err[-2000:])
        self.stats = json.loads(stats[-1][len("sonde: stats "):])

    def of(self, pid, kind="cpu"):
        return [r for r in self.profiles if r["pid"] == pid and r["kind"] == kind]


def leaf(stack):
    return stack.split(";")[-1]


def leaf_user(stack):
    """The innermost user-space frame of a folded stack."""
    frames = [f for f in stack.split(";")[1:] if not f.endswith("_[k]")]
    return frames[-1] if frames else ""


def run_workloads(binary, stripped):
    """Everything at once (the profile separates them by pid); returns pids."""
    jobs = {
        "ratio": [binary, "ratio", "4"],
        "syscall": [binary, "syscall", "2"],
        "sleep": [binary, "sleep", str(SLEEP_MS), str(SLEEPS)],
        "short": [binary, "short", "300"],
        "stripped": [stripped, "stripped", "2"],
        "jit": [binary, "jit", "1.5"],
        "thread": [binary, "thread", "1.5"],
    }
    procs = {name: subprocess.Popen(cmd) for name, cmd in jobs.items()}
    pids = {name: p.pid for name, p in procs.items()}
    for name, p in procs.items():
        check(p.wait(timeout=60) == 0, f"workload {name} failed")
    return pids


def go_pprof(args, path, workdir):
    env = dict(os.environ, HOME=workdir, GOCACHE=os.path.join(workdir, "gocache"),
               GOPATH=os.path.join(workdir, "gopath"), GOFLAGS="", GOTOOLCHAIN="local")
    r = subprocess.run(["go", "tool", "pprof"] + args + [path], capture_output=True, text=True,
                       env=env, timeout=120)
    check(r.returncode == 0, f"go tool pprof {' '.join(args)} {path} failed:\n{r.stderr}")
    return r.stdout


def pprof_flat(text):
    """name -> flat value from `go tool pprof -top` output."""
    flat = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([\d.]+)\s+[\d.]+%\s+[\d.]+%\s+[\d.]+\s+[\d.]+%\s+(.+)$", line)
        if m:
            flat[m.group(2).strip()] = float(m.group(1))
    return flat


# ---- the checks -----------------------------------------------------------

def t_ratio(s, pids, ctx):
    recs = s.of(pids["ratio"])
    by_leaf = collections.Counter()
    for r in recs:
        by_leaf[leaf_user(r["stack"])] += r["samples"]
    top = [name for name, _ in by_leaf.most_common(2)]
    check(set(top) == {"burn_three", "burn_one"}, f"top functions: {by_leaf.most_common(5)}")
    ratio = by_leaf["burn_three"] / by_leaf["burn_one"]
    check(abs(ratio - 3) <= 0.3, f"burn_three:burn_one = {ratio:.3f}, want 3 within 10% "
          f"({by_leaf['burn_three']}:{by_leaf['burn_one']} samples)")
    full = [r for r in recs if r["stack"].endswith(";main;run_ratio;burn_three")]
    check(full, "no stack walks burn_three <- run_ratio <- main: "
          + str([r["stack"] for r in recs][:5]))
    # (a sample may land in the forked child before exec: it is python's)
    burns = [r for r in recs if "burn_" in r["stack"]]
    check(all(r["comm"] == "workload" and r["thread"] == "workload" and r["hz"] == HZ
              for r in burns), "comm, thread or hz wrong: "
          + str({(r["comm"], r["thread"], r["hz"]) for r in burns}))
    print(f"    burn_three:burn_one = {by_leaf['burn_three']}:{by_leaf['burn_one']}"
          f" = {ratio:.3f}")


def t_kernel_frames(s, pids, ctx):
    recs = [r for r in s.of(pids["syscall"]) if "syscall_heavy" in r["stack"]]
    total = sum(r["samples"] for r in recs)
    kern = [r for r in recs if r["stack"].endswith("_[k]")]
    ksum = sum(r["samples"] for r in kern)
    check(total > 0, "no samples in syscall_heavy")
    check(ksum * 2 >= total, f"only {ksum} of {total} syscall_heavy samples have kernel frames")
    reads = [r for r in kern if re.search(r";(vfs_read|ksys_read|__x64_sys_read)_\[k\]",
                                          r["stack"])]
    check(reads, "no read(2) kernel frames under syscall_heavy: "
          + str([r["stack"] for r in kern][:3]))
    print(f"    {ksum}/{total} samples in the kernel, e.g. {reads[0]['stack']}")


def t_pprof_go(s, pids, ctx):
    """Go's pprof reads every file, and its per-function counts are ours."""
    files = sorted(glob.glob(os.path.join(s.dir, "cpu-*.pb.gz")))
    check(files, "no cpu pprof files")
    seen = set()
    for path in files:
        with gzip.open(path) as f:
            f.read()  # a valid gzip stream
        out = go_pprof(["-top", "-nodecount=100000", "-nodefraction=0", "-edgefraction=0",
                        "-sample_index=samples"], path, ctx)
        flat = pprof_flat(out)
        mine = collections.Counter()
        for r in s.profiles:
            if r["pprof"] == path:
                mine[leaf(r["stack"]).removesuffix("_[k]")] += r["samples"]
        for fn in ("burn_three", "burn_one"):
            if mine[fn] or fn in flat:
                check(flat.get(fn, 0) == mine[fn],
                      f"{path}: pprof says {fn} {flat.get(fn)}, records say {mine[fn]}")
                seen.add(fn)
    check(seen == {"burn_three", "burn_one"}, f"go tool pprof never listed {seen ^ {'burn_three', 'burn_one'}}")
    off = sorted(glob.glob(os.path.join(s.dir, "offcpu-*.pb.gz")))
    listed = any("sleepy_wait" in go_pprof(["-top", "-nodecount=100000"], p, ctx) for p in off)
    check(listed, "go tool pprof lists sleepy_wait in no off-CPU file")
    tags = go_pprof(["-tags"], files[0], ctx)
    check("comm" in tags and "thread" in tags and "pid" in tags, "labels missing:\n" + tags)


def t_folded(s, pids, ctx):
    files = sorted(glob.glob(os.path.join(s.dir, "cpu-*.folded")))
    check(files, "no folded files")
    for path in files:
        pb = path.removesuffix(".folded") + ".pb.gz"
        total = 0
        for line in open(path):
            stack, _, n = line.rstrip("\n").rpartition(" ")
            check(stack and n.isdigit(), f"{path}: bad line {line!r}")
            total += int(n)
        mine = sum(r["samples"] for r in s.profiles if r["pprof"] == pb)
        check(total == mine, f"{path}: {total} samples, records of that interval {mine}")


def t_offcpu(s, pids, ctx):
    recs = [r for r in s.of(pids["sleep"], "offcpu") if "sleepy_wait" in r["stack"]]
    ns = sum(r["value_ns"] for r in recs)
    blocked = sum(r["blocked"] for r in recs)
    want = SLEEP_MS * SLEEPS * 1e6
    check(recs, "no off-CPU record in sleepy_wait")
    check(abs(ns - want) <= 0.1 * want, f"sleepy_wait blocked {ns / 1e6:.1f} ms, want "
          f"{want / 1e6:.0f} ms within 10%")
    # Known issue (docs/PROFILING.md): on a loaded host one blocked period in a
    # few runs goes uncounted; more than one is a failure.
    check(SLEEPS - 1 <= blocked <= SLEEPS, f"sleepy_wait blocked {blocked} times, want {SLEEPS}")
    if blocked != SLEEPS:
        print(f"    WARNING: {SLEEPS - blocked} blocked period not counted (known issue)")
    check(any("do_nanosleep_[k]" in r["stack"] for r in recs), "no do_nanosleep kernel frame")
    print(f"    sleepy_wait: {blocked} blocks, {ns / 1e6:.1f} ms (slept {want / 1e6:.0f} ms)")


def t_started_after(s, pids, ctx):
    recs = s.of(pids["ratio"]) + s.of(pids["syscall"])
    total = sum(r["samples"] for r in recs)
    # libc's start-up frame (__libc_start_call_main) is local to a stripped
    # libc: it reads [libc.so.6+0x...], counted, in every stack
    named_user = sum(r["samples"] for r in recs if ";main;" in r["stack"])
    check(total and named_user >= 0.9 * total,
          f"{named_user}/{total} samples of processes started after sonde reach main")


def t_short_lived(s, pids, ctx):
    recs = s.of(pids["short"])
    total = sum(r["samples"] for r in recs)
    named = sum(r["samples"] for r in recs if "short_burn" in r["stack"])
    check(total > 0, "no samples of the short-lived process")
    check(named >= 0.5 * total, f"only {named}/{total} samples of the short-lived process "
          "are named short_burn (its maps must be read while it lives)")
    check(os.path.exists(f"/proc/{pids['short']}") is False, "short-lived process still there")


def t_stripped(s, pids, ctx):
    recs = s.of(pids["stripped"])
    exp = sum(r["samples"] for r in recs if leaf_user(r["stack"]) == "exported_burn")
    hidden = [r for r in recs if re.fullmatch(r"\[workload-stripped\+0x[0-9a-f]+\]",
                                               leaf_user(r["stack"]))]
    check(exp > 0, "exported_burn (in .dynsym) not named in the stripped binary")
    check(hidden and all(r["unknown_frames"] > 0 for r in hidden),
          "hidden_burn should read [workload-stripped+0x...] and be counted: "
          + str([r["stack"] for r in recs][:5]))
    check(s.stats["profile_frames_addr_only"] > 0, "frames_addr_only not counted")
    check(not any("hidden_burn" in r["stack"] for r in recs), "hidden_burn named?")


def t_jit(s, pids, ctx):
    recs = s.of(pids["jit"])
    jit = sum(r["samples"] for r in recs if leaf_user(r["stack"]) == "jit_spin_loop")
    total = sum(r["samples"] for r in recs)
    check(jit >= 0.5 * total, f"jit_spin_loop named in {jit}/{total} samples (perf-PID.map)")
    check(any(r["stack"].endswith(";main;run_jit;jit_spin_loop") for r in recs),
          "the walk from JIT code back to main is broken")
    check(s.stats["profile_frames_jit"] > 0, "frames_jit not counted")


def t_threads(s, pids, ctx):
    recs = [r for r in s.of(pids["thread"]) if "thread_burn" in r["stack"]]
    check(recs, "no samples in thread_burn")
    check(all(r["thread"] == "burner" and r["comm"] == "workload" and r["tid"] != r["pid"]
              for r in recs), "thread or process name wrong: "
          + str({(r["comm"], r["thread"], r["tid"]) for r in recs}))


def t_decode(s, pids, ctx, sonde):
    out = subprocess.run([sonde, "decode", s.rec_path], capture_output=True, text=True)
    check(out.returncode == 0, "sonde decode failed: " + out.stderr)
    decoded = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    check([r for r in decoded if r["type"] == "profile"] == s.profiles,
          "the record file's profile records differ from what was printed")


def t_windows(s, pids, ctx):
    """Intervals tile time: each record's window is the interval that holds it,
    windows of one file are equal, and consecutive files touch."""
    wins = sorted({(r["start_ns"], r["end_ns"], r["pprof"]) for r in s.profiles
                   if r["kind"] == "cpu"})
    check(len(wins) >= 2, f"only {len(wins)} intervals")
    for (a0, a1, _), (b0, b1, _) in zip(wins, wins[1:]):
        check(a1 == b0, f"interval windows do not touch: {a1} then {b0}")
    check(all(r["ts_ns"] == r["start_ns"] for r in s.profiles), "ts_ns is not the window start")


def t_counters(s, pids, ctx):
    st = s.stats
    for k in ("profile_samples", "profile_intervals", "profile_files_written", "profile_cpus"):
        check(st.get(k, 0) > 0, f"stat {k} is {st.get(k)}")
    check(st["profile_samples_dropped"] == 0 and st["profile_stacks_full"] == 0
          and st["profile_write_errors"] == 0, f"drops: {st}")


def t_bad_input(sonde, workdir):
    r = subprocess.run([sonde, "run", "--profile", "--profile-hz", "0"], capture_output=True,
                       text=True)
    check(r.returncode == 2 and "--profile-hz wants a number" in r.stderr, r.stderr)
    r = subprocess.run([sonde, "run", "--profile", "--profile-dir", "/proc/sonde-nope",
                        "--duration", "1", "--metrics-listen", "off"], capture_output=True,
                       text=True, timeout=60)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(r.returncode == 1 and len(lines) == 1 and "cannot write profiles to /proc/sonde-nope"
          in lines[0], f"rc {r.returncode}: {r.stderr}")


def t_plain_run(sonde, workdir):
    """Without --profile nothing of the profiler is loaded or written."""
    d = os.path.join(workdir, "plain")
    os.makedirs(d)
    r = subprocess.run([sonde, "run", "--duration", "1", "--metrics-listen", "off",
                        "--profile-dir", d, "--quiet"], capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, r.stderr)
    check("profile_" not in r.stderr and "profiling" not in r.stderr, r.stderr)
    check(os.listdir(d) == [], "files written without --profile")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    sonde = os.path.abspath(a.sonde)
    if os.geteuid() != 0:
        print("profile: the tests load BPF programs; run them as root (sudo make test-profile)")
        print("profile: 0 passed, 1 failed")
        return 1
    if not shutil.which("go"):
        print("profile: go (Debian's golang-go) is missing; run scripts/deps.sh")
        print("profile: 0 passed, 1 failed")
        return 1
    workdir = tempfile.mkdtemp(prefix="sonde-profile-")
    passed = failed = 0

    def run(name, fn, *args):
        nonlocal passed, failed
        t0 = time.time()
        try:
            fn(*args)
            passed += 1
            print(f"ok   {name} ({time.time() - t0:.1f}s)")
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            print(f"FAIL {name}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc()

    session = None
    try:
        binary, stripped = build(workdir)
        session = Session(sonde, workdir)
        pids = run_workloads(binary, stripped)
        time.sleep(0.5)
        session.stop()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL session: {e}")
        if not isinstance(e, Failure):
            traceback.print_exc()
        if session and session.proc.poll() is None:
            session.proc.kill()
        failed += 1
        session = None
    if session:
        for name, fn in [("ratio 3:1 on top", t_ratio),
                         ("kernel frames of a syscall-heavy function", t_kernel_frames),
                         ("go tool pprof reads the files, same counts", t_pprof_go),
                         ("folded files match the records", t_folded),
                         ("off-CPU time of a sleeper within 10%", t_offcpu),
                         ("processes started after sonde are named", t_started_after),
                         ("short-lived process named after exit", t_short_lived),
                         ("stripped binary: .dynsym, else address, counted", t_stripped),
                         ("JIT code named from /tmp/perf-PID.map", t_jit),
                         ("thread and process names", t_threads),
                         ("interval windows tile time", t_windows),
                         ("counters in the stats line", t_counters)]:
            run(name, fn, session, pids, workdir)
        run("record file decodes to the same records", t_decode, session, pids, workdir, sonde)
    run("bad input: one clear line", t_bad_input, sonde, workdir)
    run("plain run loads no profiler", t_plain_run, sonde, workdir)
    for f in glob.glob("/tmp/perf-*.map"):
        try:
            if session and int(f.split("-")[1].split(".")[0]) in pids.values():
                os.unlink(f)
        except (ValueError, OSError):
            pass
    if a.keep:
        print(f"profile: work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"profile: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
