#!/usr/bin/env python3
"""bench-flows: packets per second through the sfa0/sfb0 veth pair with flow
tracking on versus off, interleaved in one run (issue 5).

Each round runs every configuration once, in a rotating order:
  none  no sonde at all
  off   sonde run without flow options (the socket tracer only)
  on    sonde run --flow-if sfb0 (TC ingress+egress on the receiving side)
The load is bench/udpblast: 64-byte frames over FLOWS UDP flows from sflow-a
for SECONDS, counted by a receiver in sflow-b. The figure is the median over
rounds of the per-round ratio on/off (and on/none), with the interquartile
range. Prints a Markdown table.
Usage: flows.py --sonde S --blast B [--rounds 8] [--seconds 3] [--flows 64]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "flows"))
import run as net  # the tests' namespace set-up (sflow-a/sflow-b, offloads off)

PORT = 37500


def one(args, config):
    sonde = None
    if config != "none":
        cmd = ["ip", "netns", "exec", net.NS_B, args.sonde, "run", "--quiet",
               "--metrics-listen", "off", "--port", "37999"]
        if config == "on":
            cmd += ["--flow-if", net.IF_B, "--flow-meters", "off"]
        sonde = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = ""
        while "ready" not in line:
            line = sonde.stderr.readline()
            if not line:
                raise SystemExit("bench-flows: sonde did not start")
        time.sleep(1)
    recv = subprocess.Popen(["ip", "netns", "exec", net.NS_B, args.blast, "recv", str(PORT),
                             "300"], stdout=subprocess.PIPE, text=True)
    recv.stdout.readline()  # ready
    subprocess.run(["ip", "netns", "exec", net.NS_A, args.blast, "send", net.IP_B, str(PORT),
                    str(args.flows), str(args.seconds)], check=True, stdout=subprocess.DEVNULL)
    got = int(recv.stdout.readline().split()[1])
    recv.wait()
    if sonde:
        sonde.send_signal(2)
        sonde.wait(timeout=30)
    return got / args.seconds


def q(xs):
    xs = sorted(xs)
    if len(xs) < 4:
        return f"{statistics.median(xs):.3f}"
    qs = statistics.quantiles(xs, n=4)
    return f"{statistics.median(xs):.3f} [{qs[0]:.3f}–{qs[2]:.3f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", required=True)
    ap.add_argument("--blast", required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--flows", type=int, default=64)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench-flows: needs root")
    configs = ["none", "off", "on"]
    pps = {c: [] for c in configs}
    net.setup()
    try:
        for r in range(args.rounds):
            order = configs[r % 3:] + configs[:r % 3]
            for c in order:
                pps[c].append(one(args, c))
            print(f"round {r + 1}: " + ", ".join(f"{c} {pps[c][-1]:,.0f} pps" for c in configs),
                  flush=True)
    finally:
        net.teardown()
    on_off = [a / b for a, b in zip(pps["on"], pps["off"])]
    on_none = [a / b for a, b in zip(pps["on"], pps["none"])]
    print()
    print(f"| configuration | packets/s, median of {args.rounds} rounds |")
    print("| --- | --- |")
    for c, name in (("none", "no sonde"), ("off", "sonde, flows off"),
                    ("on", "sonde --flow-if sfb0")):
        print(f"| {name} | {statistics.median(pps[c]):,.0f} |")
    print()
    print(f"flows on / flows off (per round, median [IQR]): {q(on_off)}; "
          f"loss {100 * (1 - statistics.median(on_off)):.1f}%")
    print(f"flows on / no sonde: {q(on_none)}")


if __name__ == "__main__":
    main()
