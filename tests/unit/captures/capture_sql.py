#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""
Regenerate the PostgreSQL and MySQL captures used by tests/unit/test_pgsql.c,
tests/unit/test_mysql.c and the fuzz seed corpus. Not run by `make test`: the
captures are checked in so the unit tests are deterministic. Run as root from
the repo root (needs postgresql, mariadb-server, mariadb-client, strace):

    python3 tests/unit/captures/capture_sql.py [OUTDIR]

It starts a private postgres (port 35432, unix socket in a temp dir) and a
private mariadbd (port 35310, socket in the temp dir), runs real clients
(psql, the mariadb CLI, and the libpq / libmariadb peers of tests/e2e/peers)
under strace, and keeps exactly the bytes each client's socket moved.

For every conversation NAME it writes OUTDIR/<proto>/NAME.cap: one line per
socket syscall of the client, in order, "> HEX" (bytes the client sent) or
"< HEX" (bytes it received).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OUT = sys.argv[1] if len(sys.argv) > 1 else HERE
PG_PORT = 35432
MY_PORT = 35310

SYSCALL = re.compile(r'^(?:\d+ +)?(read|write|recvfrom|sendto|recv|send)\((\d+)<(.*?)>, "((?:\\x[0-9a-f]{2})*)"'
                     r'.*\) = (-?\d+)')
HEXCHAR = re.compile(r'\\x([0-9a-f]{2})')


def build_peers(tmp):
    pg = os.path.join(tmp, "pgext")
    my = os.path.join(tmp, "mystmt")
    peers = os.path.join(ROOT, "tests", "e2e", "peers")
    subprocess.check_call(["gcc", "-O1", "-I/usr/include/postgresql", os.path.join(peers, "pgext.c"),
                           "-lpq", "-o", pg])
    flags = subprocess.check_output(["pkg-config", "--cflags", "--libs", "libmariadb"], text=True).split()
    subprocess.check_call(["gcc", "-O1", os.path.join(peers, "mystmt.c"), *flags, "-o", my])
    return pg, my


def start_pg(tmp):
    d = os.path.join(tmp, "pg")
    os.makedirs(d)
    shutil.chown(d, "postgres")
    su = ["runuser", "-u", "postgres", "--"]
    subprocess.check_call(su + ["initdb", "-D", d + "/data", "-A", "trust", "-U", "postgres"],
                          stdout=subprocess.DEVNULL)
    p = subprocess.Popen(su + ["postgres", "-D", d + "/data", "-p", str(PG_PORT), "-k", d,
                               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.call(["pg_isready", "-q", "-h", d, "-p", str(PG_PORT)]) == 0:
            return p, d
        time.sleep(0.1)
    raise RuntimeError("postgres did not start")


def start_my(tmp):
    d = os.path.join(tmp, "my")
    os.makedirs(d)
    subprocess.check_call(["mariadb-install-db", "--no-defaults", "--datadir=" + d + "/data", "--user=root",
                           "--auth-root-authentication-method=normal", "--skip-test-db"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = d + "/sock"
    p = subprocess.Popen(["mariadbd", "--no-defaults", "--datadir=" + d + "/data", "--user=root",
                          "--port", str(MY_PORT), "--bind-address=127.0.0.1", "--socket=" + sock,
                          "--pid-file=" + d + "/pid", "--log-error=" + d + "/err"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.call(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", "select 1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            return p, sock
        time.sleep(0.1)
    raise RuntimeError("mariadbd did not start")


def capture(name, proto, argv, match, stdin=None):
    """Run argv under strace; keep the syscalls on sockets whose description contains match."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as tr:
        subprocess.run(["strace", "-f", "-qq", "-yy", "-xx", "-s", "1048576", "-o", tr.name,
                        "-e", "trace=read,write,recvfrom,sendto,connect", *argv],
                       input=stdin, stdout=subprocess.DEVNULL, check=False, text=True)
        lines = []
        text = HEXCHAR.sub(lambda h: "\\x%02x" % int(h.group(1), 16) if h.group(1) in ("22", "5c")
                           else chr(int(h.group(1), 16)), open(tr.name, errors="replace").read())
        # a client's unix socket shows only its inode: find it by the path it connected to
        conn = re.search(r'connect\(\d+<(UNIX-STREAM:\[\d+)\]>, \{sa_family=AF_UNIX, sun_path="[^"]*'
                         + re.escape(match) + r'"\}, \d+\) = 0', text)
        if conn:
            match = conn.group(1)
        for l in open(tr.name):
            m = SYSCALL.match(l)
            # -xx escapes the fd's description (socket endpoints, path) too
            if not m or match not in HEXCHAR.sub(lambda h: chr(int(h.group(1), 16)), m.group(3)):
                continue
            call, data, rc = m.group(1), m.group(4), int(m.group(5))
            if rc < 0:
                continue
            raw = bytes.fromhex(data.replace("\\x", ""))[:rc]
            sending = call in ("write", "sendto", "send")
            if rc == 0 and not sending:
                lines.append("< ")
                continue
            lines.append(("> " if sending else "< ") + raw.hex())
    os.makedirs(os.path.join(OUT, proto), exist_ok=True)
    with open(os.path.join(OUT, proto, name + ".cap"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{proto}/{name}: {len(lines)} syscalls")


def main():
    tmp = tempfile.mkdtemp(prefix="sonde-capsql-")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        pgext, mystmt = build_peers(tmp)
        pg, pgdir = start_pg(tmp)
        procs.append(pg)
        my, mysock = start_my(tmp)
        procs.append(my)
        tcp = f":{PG_PORT}"
        psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres"]
        capture("psql_tcp", "pgsql", psql + [
            "-c", "CREATE TABLE t (id int primary key, name text)",
            "-c", "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            "-c", "SELECT * FROM t ORDER BY id",
            "-c", "update t set name = 'z' where id < 3",
            "-c", "SELECT * FROM missing_table",
            "-c", "SELECT 1; SELECT 2, 3",
            "-c", "DROP TABLE IF EXISTS nope",
            "-c", "DROP TABLE t"], tcp)
        capture("psql_unix", "pgsql", ["psql", "-X", "-q", "-h", pgdir, "-p", str(PG_PORT), "-U", "postgres",
                                       "-c", "SELECT current_user", "-c", "SELEC 1"], "/.s.PGSQL.%d" % PG_PORT)
        long_q = "SELECT g AS " + "a_rather_long_column_alias_" * 4 + "x, repeat('x', 100) FROM generate_series(1, 400) g"
        capture("psql_big", "pgsql", psql + ["-c", long_q], tcp)
        capture("psql_copy", "pgsql", psql + ["-c", "CREATE TABLE c (a int, b text)",
                                              "-c", "COPY c FROM STDIN", "-c", "SELECT count(*) FROM c",
                                              "-c", "DROP TABLE c"], tcp, stdin="1\tone\n2\ttwo\n\\.\n")
        capture("ext_tcp", "pgsql", [pgext, f"host=127.0.0.1 port={PG_PORT} user=postgres sslmode=disable",
                                     "x:SELECT $1::int + 1|41", "p:s1:SELECT $1::text || $2::text",
                                     "e:s1|ab|cd", "e:s1|ef|gh", "x:SELECT 1/0", "q:SELECT 42"], tcp)
        capture("ext_unix", "pgsql", [pgext, f"host={pgdir} port={PG_PORT} user=postgres",
                                      "x:SELECT $1::text|unix", "x:SELECT nope_column"], "/.s.PGSQL.%d" % PG_PORT)

        my_cli = ["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(MY_PORT), "-u", "root", "--force"]
        mtcp = f":{MY_PORT}"
        capture("cli_tcp", "mysql", my_cli + ["-e",
            "CREATE DATABASE IF NOT EXISTS d; USE d; CREATE TABLE t (id int primary key, name text); "
            "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c'); SELECT * FROM t ORDER BY id; "
            "update t set name = 'z' where id < 3; SELECT 'def', 2; DROP TABLE t; "
            "SELECT * FROM missing_table"], mtcp)
        capture("cli_unix", "mysql", ["mariadb", "--no-defaults", "-S", mysock, "-u", "root", "--force", "-e",
                                      "SELECT 1; SELEC 2"], mysock)
        long_q = ("SELECT seq AS " + "a_rather_long_column_alias_" * 4 + "x, repeat('x', 100) FROM seq_1_to_400")
        capture("cli_big", "mysql", my_cli + ["-D", "mysql", "-e", long_q], mtcp)
        capture("stmt_tcp", "mysql", [mystmt, "127.0.0.1", str(MY_PORT),
                                      "q:CREATE DATABASE IF NOT EXISTS d", "q:USE d",
                                      "q:CREATE TABLE IF NOT EXISTS s (id int, name text)",
                                      "p:INSERT INTO s VALUES (?, ?)", "e|1|one", "e|2|two", "c",
                                      "p:SELECT id, name FROM s WHERE id >= ?", "e|1", "c",
                                      "p:SELECT * FROM nope", "P",
                                      "q:SELECT 1; SELECT 2, 3", "q:DROP TABLE s"], mtcp)
        capture("stmt_unix", "mysql", [mystmt, "localhost", mysock, "p:SELECT ? + 1", "e|41", "c",
                                       "q:SELECT * FROM mysql.nope"], mysock)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
