#!/usr/bin/env python3
"""Sampling cost of the profiler (issue 7): CPU time of a fixed CPU-bound job
(tests/profile/workload.c `work`) with sonde off, with --profile at 99 Hz and
at 999 Hz, configurations interleaved round by round (rotating order), as
ratios of medians from this one run. sonde runs with every capability it has
(the socket tracer too), so the ratio is what a node pays.

Usage: profile_bench.py --sonde .output/sonde [--rounds 7] [--units 300]
       [--doc docs/PERFORMANCE.md]   (appends the table to the run log)
"""
import argparse
import datetime
import os
import platform
import resource
import signal
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [("off", None), ("99 Hz", 99), ("999 Hz", 999)]


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_sonde(sonde, hz, workdir):
    err = open(os.path.join(workdir, "sonde.err"), "w+")
    p = subprocess.Popen([sonde, "run", "--quiet", "--profile", "--profile-hz", str(hz),
                          "--profile-interval", "60", "--profile-dir", workdir,
                          "--metrics-listen", "off"], stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 60
    while time.time() < deadline:
        err.seek(0)
        if "ready" in err.read():
            return p
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    err.seek(0)
    raise SystemExit("sonde did not start: " + err.read())


def job(binary, units):
    """CPU seconds the fixed job took (user + system)."""
    before = child_cpu()
    subprocess.run([binary, "work", str(units)], check=True)
    return child_cpu() - before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--units", type=int, default=6000, help="work units of the job (~0.5 ms each)")
    ap.add_argument("--doc", help="append the table to this file's run log")
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="sonde-bench-profile-")
    binary = os.path.join(workdir, "workload")
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-pthread",
                    os.path.join(HERE, "..", "tests", "profile", "workload.c"), "-o", binary],
                   check=True)
    job(binary, a.units // 10)  # warm-up
    times = {name: [] for name, _ in CONFIGS}
    for r in range(a.rounds):
        order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
        for name, hz in order:
            sonde = start_sonde(os.path.abspath(a.sonde), hz, workdir) if hz else None
            try:
                times[name].append(job(binary, a.units))
            finally:
                if sonde:
                    sonde.send_signal(signal.SIGINT)
                    sonde.wait(timeout=60)
        print(f"round {r + 1}/{a.rounds}: " +
              ", ".join(f"{n} {times[n][-1]:.3f}s" for n, _ in CONFIGS), flush=True)
    base = statistics.median(times["off"])
    rows = ["| configuration | job CPU s (median of %d) | ratio to off | added |" % a.rounds,
            "| --- | --- | --- | --- |"]
    for name, _ in CONFIGS:
        m = statistics.median(times[name])
        rows.append(f"| {name} | {m:.3f} | {m / base:.4f} | {100 * (m / base - 1):+.2f}% |")
    table = "\n".join(rows)
    print(table)
    if a.doc:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        with open(a.doc, "a") as f:
            f.write(f"\n### bench-profile, {datetime.date.today()}, kernel "
                    f"{platform.release()}, {os.cpu_count()} CPUs, commit {commit}\n\n"
                    f"`make bench-profile` (rounds {a.rounds}, {a.units} units)\n\n{table}\n")
    subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
