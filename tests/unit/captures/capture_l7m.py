#!/usr/bin/env python3
"""Capture what a real client exchanges with a real server, one syscall a line.

    capture_l7m.py PORT OUT.cap -- client command ...

runs the client under strace and keeps the socket syscalls of its connections
to 127.0.0.1:PORT (several connections are written one after the other,
separated by a line "#conn"). Each line of OUT.cap is one syscall seen from
the client: "> hex" for bytes it sent, "< hex" for bytes it received. The
native tests (tests/unit/test_*.c via l7m_driver.h) and the fuzz seeds read
this format.
"""
import re
import subprocess
import sys
import tempfile

CALLS = ("connect", "close", "read", "write", "sendto", "recvfrom", "sendmsg",
         "recvmsg", "writev", "readv")
SEND = {"write", "sendto", "sendmsg", "writev"}
STR = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')


def decode(s):
    return bytes.fromhex(s.replace("\\x", ""))


def main():
    port, out = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    with tempfile.NamedTemporaryFile(suffix=".st") as tr:
        subprocess.run(["strace", "-f", "-qq", "-xx", "-s", "1048576", "-o", tr.name,
                        "-e", "trace=" + ",".join(CALLS)] + cmd, check=False)
        lines = open(tr.name, encoding="latin-1").read().splitlines()
    conns = {}    # (pid, fd) -> list of (dir, bytes)
    order = []
    pending = {}  # pid -> head of a call another thread interrupted
    joined = []
    for ln in lines:
        m = re.match(r"(\d+)\s+(.*) <unfinished \.\.\.>$", ln)
        if m:
            pending[m.group(1)] = m.group(2)
            continue
        m = re.match(r"(\d+)\s+<\.\.\. \w+ resumed>(.*)$", ln)
        if m and m.group(1) in pending:
            ln = m.group(1) + " " + pending.pop(m.group(1)) + m.group(2)
        joined.append(ln)
    for ln in joined:
        m = re.match(r"(\d+)\s+(\w+)\((\d+),(.*)\)\s+=\s+(-?\d+)", ln)
        if not m:
            continue
        pid, call, fd, args, ret = m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5))
        key = (pid, fd)
        if call == "connect":
            if ("htons(%s)" % port) in args and (ret == 0 or "EINPROGRESS" in ln):
                conns[key] = []
                order.append(key)
            continue
        if call == "connect" or key not in conns:
            continue
        if call == "close":
            conns[("closed", len(order), key)] = conns.pop(key)
            order[order.index(key)] = ("closed", len(order), key)
            continue
        if ret <= 0:
            continue
        data = b"".join(decode(s) for s in STR.findall(args))[:ret]
        conns[key].append((">" if call in SEND else "<", data))
    with open(out, "w") as f:
        for i, key in enumerate(order):
            if i:
                f.write("#conn\n")
            for d, data in conns[key]:
                f.write("%s %s\n" % (d, data.hex()))
    print("%s: %d connection(s), %d syscalls" % (out, len(order),
          sum(len(conns[k]) for k in order)))


if __name__ == "__main__":
    main()
