"""Redis end to end: Debian's redis-server and redis-cli, plus a python
client for pipelining and pub/sub, against the real sonde. Every command
made is checked against the client's and the server's record.

Run by tests/e2e/run.py (every tests/e2e/test_*.py module's run()).
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from run import Failure, Sonde, check, wait_port

PORT = 34379


def start_redis(wd):
    server = shutil.which("redis-server")
    if not server:
        raise Failure("redis-server is not installed (scripts/deps.sh installs it)")
    sock = os.path.join(wd, "redis.sock")
    proc = subprocess.Popen([server, "--port", str(PORT), "--bind", "127.0.0.1",
                             "--unixsocket", sock, "--unixsocketperm", "777",
                             "--save", "", "--appendonly", "no", "--dir", wd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT, proc, "redis-server")
    except Failure:
        proc.kill()
        raise
    return proc, sock


def cli(*args, sock=None):
    cmd = ["redis-cli"] + (["-s", sock] if sock else ["-p", str(PORT)]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()


def resp(*args):
    out = f"*{len(args)}\r\n"
    for a in args:
        out += f"${len(a)}\r\n{a}\r\n"
    return out.encode()


def read_replies(s, n):
    """Read until n top-level RESP replies are complete (simple types and bulks only)."""
    buf = b""
    while True:
        count, pos = 0, 0
        while pos < len(buf):
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            if buf[pos:pos + 1] == b"$" and int(buf[pos + 1:end]) >= 0:
                end = end + 2 + int(buf[pos + 1:end])
                if end + 2 > len(buf):
                    break
            pos = end + 2
            count += 1
        if count >= n:
            return buf
        chunk = s.recv(65536)
        if not chunk:
            raise Failure("redis closed the connection")
        buf += chunk


def records_for(l7, role, comm=None):
    return [r for r in l7 if r["proto"] == "redis" and r["role"] == role
            and (comm is None or r["comm"] == comm)]


def option_results(binary):
    """--protocols leaves a protocol out; --proto-port limits a port to one."""
    out = []
    cases = (("redis_protocols_off", ["--protocols", "http,dns"], 0),
             ("redis_proto_port_other", ["--proto-port", f"pgsql={PORT}"], 0),
             ("redis_proto_port_same", ["--proto-port", f"redis={PORT}", "--protocols", "redis"], 2))
    for name, opts, want in cases:
        with tempfile.TemporaryDirectory(prefix="sonde-e2e-redis-opt-") as wd:
            os.chmod(wd, 0o755)
            server, _ = start_redis(wd)
            try:
                sonde = Sonde(binary, wd, ["--port", str(PORT), *opts])
                cli("SET", "opt", "1")
                l7 = sonde.stop()
            finally:
                server.terminate()
                server.wait(timeout=10)
        got = [r for r in l7 if r["dport"] == PORT]
        try:
            check(len(got) == want and all(r["proto"] == "redis" for r in got),
                  f"{opts}: {len(got)} records {[r['proto'] for r in got]}, want {want} redis")
            out.append((name, None))
        except Failure as e:
            out.append((name, str(e)))
    return out


def run(binary, only):
    if only and "redis" not in only:
        return []
    results = []
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-redis-") as wd:
        os.chmod(wd, 0o755)
        server, sock = start_redis(wd)
        try:
            sonde = Sonde(binary, wd, ["--port", str(PORT)])
            # one connection per redis-cli call
            cli("SET", "user:1", "alice")
            cli("GET", "user:1")
            cli("GET", "missing")
            cli("INCR", "user:1")                 # an error reply
            cli("RPUSH", "list", "a", "b", "c")
            cli("LRANGE", "list", "0", "-1")
            cli("SET", "over:unix", "1", sock=sock)
            # pipelining: four commands (the pipeline depth sonde tracks) in one
            # write, four replies in one read
            p = socket.create_connection(("127.0.0.1", PORT))
            p.sendall(resp("SET", "p", "1") + resp("INCR", "p") + resp("GET", "p") +
                      resp("DEL", "p"))
            read_replies(p, 4)
            p.close()
            # pub/sub: messages arrive without requests and must not pair
            sub = socket.create_connection(("127.0.0.1", PORT))
            sub.sendall(resp("SUBSCRIBE", "news"))
            read_replies(sub, 4)  # the confirmation: *3 $9 $4 :1 = 4 items
            for i in range(3):
                cli("PUBLISH", "news", f"hello{i}")
            got = b""
            while got.count(b"message") < 3:
                got += sub.recv(65536)
            sub.close()
            time.sleep(0.5)
            l7 = sonde.stop()
        finally:
            server.terminate()
            server.wait(timeout=10)

    def commands():
        want = [("SET", "user:1", "+", False), ("GET", "user:1", "$", False),
                ("GET", "missing", "$", False), ("INCR", "user:1", "-", True),
                ("RPUSH", "list", ":", False), ("LRANGE", "list", "*", False)]
        cli_ports = {r["sport"] for r in records_for(l7, "client", "redis-cli")}
        for role in ("client", "server"):
            recs = [r for r in records_for(l7, role)
                    if r["family"] == "ipv4" and r["sport"] in cli_ports
                    and r["command"] != "PUBLISH"]
            # redis-cli may send COMMAND DOCS first: keep the data commands
            recs = [r for r in recs if r["command"] not in ("COMMAND", "HELLO")]
            got = [(r["command"], r["resource"], r["reply"], r["error"]) for r in recs]
            check(got == want, f"{role} records {got}, want {want}")
            for r in recs:
                check(r["dport"] == PORT and r["latency_ns"] > 0 and r["resp_bytes"] > 0,
                      f"endpoints/latency/bytes wrong: {r}")
            incr = recs[3]
            check(incr["detail"] == "ERR", f"error word {incr['detail']!r}")
            check(recs[5]["count"] == 3, f"LRANGE count {recs[5]['count']}")
            check(recs[0]["req_bytes"] == len(resp("SET", "user:1", "alice")),
                  f"SET request bytes {recs[0]['req_bytes']}")

    def unix_socket():
        recs = [r for r in l7 if r["proto"] == "redis" and r["family"] == "unix"
                and r["command"] == "SET"]
        check(len(recs) == 2 and {r["role"] for r in recs} == {"client", "server"},
              f"unix socket SET records: {recs}")
        check(all(r["resource"] == "over:unix" for r in recs), f"{recs}")

    def pipelined():
        want = [("SET", "p"), ("INCR", "p"), ("GET", "p"), ("DEL", "p")]
        for role, comm in (("client", None), ("server", "redis-server")):
            recs = [r for r in records_for(l7, role, comm) if r["command"] in
                    ("SET", "INCR", "GET", "DEL") and r["resource"] == "p"]
            got = [(r["command"], r["resource"]) for r in recs]
            check(got == want, f"{role} pipelined records {got}")
            check([r["reply"] for r in recs] == ["+", ":", "$", ":"], f"replies {recs}")

    def pubsub():
        subs = [r for r in l7 if r["proto"] == "redis" and r["command"] == "SUBSCRIBE"]
        check(len(subs) == 2, f"SUBSCRIBE records {subs}")
        pubs = [r for r in records_for(l7, "client", "redis-cli") if r["command"] == "PUBLISH"]
        check(len(pubs) == 3 and all(r["reply"] == ":" for r in pubs), f"PUBLISH records {pubs}")
        check(sonde.stats["unpaired_responses"] == 0,
              f"pushed messages were taken as answers: {sonde.stats}")
        check(sonde.stats["parse_lost"] == 0, f"framing lost: {sonde.stats}")

    def metrics():
        ser = [m for m in sonde.metrics if m["proto"] == "redis" and m["role"] == "server"
               and m["route"] == "INCR" and m["interval_s"] == 1]
        check(sum(m["requests"] for m in ser) == 2 and sum(m["errors"] for m in ser) == 1,
              f"INCR series {ser}")

    results += option_results(binary)
    for name, fn in (("redis_commands", commands), ("redis_unix_socket", unix_socket),
                     ("redis_pipelined", pipelined), ("redis_pubsub", pubsub),
                     ("redis_metrics", metrics)):
        try:
            fn()
            results.append((name, None))
        except Failure as e:
            results.append((name, str(e)))
    return results
