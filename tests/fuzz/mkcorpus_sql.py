#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Seeds for the message-engine fuzz targets (tests/fuzz/fuzz_sql.c, built
once per pair of protocols) from the captures of tests/unit/captures/
{A,B}/*.cap: each conversation as its client saw it and as its server saw it,
in the fuzz target's record format, then a close. A "#conn" line (the next
connection of a capture) becomes a close too.

Usage: mkcorpus_sql.py CAPTURE_DIR OUT_DIR [A B]   (default: pgsql mysql)
"""
import os
import sys

MAX_SEED = 12000


def record(read, payload):
    out = b""
    while payload:
        chunk, payload = payload[:65536], payload[65536:]
        n = len(chunk) - 1
        if n > 255:
            out += bytes([(0x80 if read else 0) | 0x20, n & 0xff, n >> 8]) + chunk
        else:
            out += bytes([0x80 if read else 0, n]) + chunk
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    pair = sys.argv[3:5] if len(sys.argv) >= 5 else ["pgsql", "mysql"]
    os.makedirs(dst, exist_ok=True)
    n = 0
    for proto, bit in ((pair[0], 0), (pair[1], 1)):
        d = os.path.join(src, proto)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".cap"):
                continue
            calls = []
            for line in open(os.path.join(d, name)):
                line = line.rstrip("\n")
                if line.startswith("#conn"):
                    calls.append((None, b""))
                elif line[:2] in ("< ", "> "):
                    calls.append((line[0] == "<", bytes.fromhex(line[2:])))
            for server in (0, 1):
                seed = bytes([bit | (2 if server else 0)])
                for read, data in calls:
                    rec = bytes([0x40]) if read is None else record(read != bool(server), data)
                    if len(seed) + len(rec) > MAX_SEED:
                        break
                    seed += rec
                seed += bytes([0x40])  # close
                role = "server" if server else "client"
                with open(os.path.join(dst, f"{proto}_{name[:-4]}.{role}"), "wb") as f:
                    f.write(seed)
                n += 1
    print(f"mkcorpus_sql: {n} seeds of {pair[0]} and {pair[1]} in {dst}")


if __name__ == "__main__":
    main()
