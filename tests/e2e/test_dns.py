"""DNS end to end: Debian's dnsmasq (authoritative for sonde.test, no
upstream) answering dig and a python resolver client over UDP (unconnected
and connected sockets, concurrent queries on one socket) and TCP, against
the real sonde. Every query made is checked against both records.

Run by tests/e2e/run.py (every tests/e2e/test_*.py module's run()).
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from run import Failure, Sonde, check, wait_port

PORT = 34053


def start_dnsmasq(wd):
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not os.path.exists(binary):
        raise Failure("dnsmasq is not installed (scripts/deps.sh installs dnsmasq-base)")
    pid = os.path.join(wd, "dnsmasq.pid")
    proc = subprocess.Popen([binary, "--keep-in-foreground", f"--port={PORT}",
                             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                             "--no-hosts", "--local=/sonde.test/",
                             "--address=/a.sonde.test/10.1.2.3",
                             "--address=/six.sonde.test/fd00::6",
                             f"--pid-file={pid}", "--log-facility=-", "--user=root"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT, proc, "dnsmasq")
    except Failure:
        proc.kill()
        raise
    return proc


def query(txid, name, qtype=1):
    head = struct.pack(">HHHHHH", txid, 0x0100, 1, 0, 0, 0)
    body = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return head + body + struct.pack(">HH", qtype, 1)


def rcode(msg):
    return struct.unpack(">H", msg[2:4])[0] & 0xF


def dig(*args):
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(PORT), *args],
                          capture_output=True, text=True, timeout=20).stdout


def run(binary, only):
    if only and "dns" not in only:
        return []
    if not shutil.which("dig"):
        return [("dns_setup", "dig is not installed (scripts/deps.sh installs bind9-dnsutils)")]
    results = []
    answers = {}
    tcp_status = None
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-dns-") as wd:
        os.chmod(wd, 0o755)
        server = start_dnsmasq(wd)
        try:
            sonde = Sonde(binary, wd, ["--port", str(PORT)])
            out = dig("a.sonde.test", "+short")
            check(out.strip() == "10.1.2.3", f"dig answered {out!r}")
            out = dig("missing.sonde.test")
            check("NXDOMAIN" in out, f"dig NXDOMAIN: {out!r}")
            # over TCP dig writes the length and the message as two iovecs of one writev
            out = dig("+tcp", "a.sonde.test", "MX")
            check("status: " in out, f"dig +tcp: {out!r}")
            tcp_status = out.split("status: ")[1].split(",")[0]
            # concurrent queries on one unconnected socket, answered out of order or not
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # four: the requests sonde tracks per socket at once
            names = [("a.sonde.test", 1), ("six.sonde.test", 28), ("no1.sonde.test", 1),
                     ("a.sonde.test", 28)]
            for i, (n, t) in enumerate(names):
                u.sendto(query(0x5000 + i, n, t), ("127.0.0.1", PORT))
            for _ in names:
                msg, _ = u.recvfrom(1024)
                answers[struct.unpack(">H", msg[:2])[0]] = rcode(msg)
            u.close()
            # connected UDP socket
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.connect(("127.0.0.1", PORT))
            c.send(query(0x6001, "a.sonde.test"))
            c.recv(1024)
            c.close()
            # TCP: length and message in one write, then in two writes
            t = socket.create_connection(("127.0.0.1", PORT))
            q = query(0x7001, "a.sonde.test")
            t.sendall(struct.pack(">H", len(q)) + q)
            t.recv(1024)
            q = query(0x7002, "nx.sonde.test")
            t.sendall(struct.pack(">H", len(q)))
            time.sleep(0.05)
            t.sendall(q)
            t.recv(1024)
            t.close()
            time.sleep(0.5)
            l7 = sonde.stop()
        finally:
            server.terminate()
            server.wait(timeout=10)
    dns = [r for r in l7 if r["proto"] == "dns"]

    def by(role, comm=None):
        return [r for r in dns if r["role"] == role and (comm is None or r["comm"] == comm)]

    dig_ports = {r["sport"] for r in by("client") if r["comm"] != "python3"}

    def dig_udp():
        for role in ("client", "server"):
            recs = [r for r in by(role) if r["resource"] in ("a.sonde.test", "missing.sonde.test")
                    and r["family"] == "ipv4" and r["sport"] in dig_ports and r["command"] != "MX"]
            got = sorted((r["resource"], r["command"], r["detail"], r["error"]) for r in recs)
            want = [("a.sonde.test", "A", "NOERROR", False),
                    ("missing.sonde.test", "A", "NXDOMAIN", True)]
            check(got == want, f"dig {role} records {got}")
        ok = [r for r in by("client") if r["resource"] == "a.sonde.test" and r["sport"] in dig_ports]
        check(ok and ok[0]["count"] == 1 and ok[0]["dport"] == PORT and ok[0]["latency_ns"] > 0,
              f"dig answer count/port/latency {ok}")

    def concurrent():
        for role in ("client", "server"):
            recs = {r["txid"]: r for r in by(role) if 0x5000 <= r["txid"] < 0x5100}
            check(len(recs) == len(names), f"{role}: {len(recs)} of {len(names)} concurrent queries")
            for i, (n, t) in enumerate(names):
                r = recs[0x5000 + i]
                want_rc = answers[0x5000 + i]
                check(r["resource"] == n and r["op2"] == t and r["status"] == want_rc and
                      r["error"] == (want_rc != 0),
                      f"{role} query {i}: {r['resource']} {r['op2']} rcode {r['status']}, "
                      f"want {n} {t} {want_rc}")
                if role == "server":
                    check(r["sport"] != 0 and r["saddr"] == "127.0.0.1",
                          f"server record names its client: {r}")

    def connected():
        recs = [r for r in dns if r["txid"] == 0x6001]
        check(sorted(r["role"] for r in recs) == ["client", "server"], f"connected UDP {recs}")

    def tcp():
        mx = [r for r in dns if r["command"] == "MX" and r["resource"] == "a.sonde.test"]
        check(sorted(r["role"] for r in mx) == ["client", "server"] and
              all(r["detail"] == tcp_status for r in mx),
              f"dig +tcp MX ({tcp_status}) records: {mx}")
        for txid, rc in ((0x7001, "NOERROR"), (0x7002, "NXDOMAIN")):
            recs = [r for r in dns if r["txid"] == txid]
            check(sorted(r["role"] for r in recs) == ["client", "server"] and
                  all(r["detail"] == rc for r in recs), f"TCP query {txid:#x}: {recs}")

    def metrics():
        ser = [m for m in sonde.metrics if m["proto"] == "dns" and m["role"] == "server"
               and m["interval_s"] == 1]
        total = sum(m["requests"] for m in ser)
        check(total == len(by("server")), f"metric requests {total} vs {len(by('server'))} records")
        check(any(m["method"] == "AAAA" for m in ser), f"no AAAA series: {ser}")
        check(sonde.stats["unpaired_responses"] == 0, f"unpaired: {sonde.stats}")

    for name, fn in (("dns_dig_udp", dig_udp), ("dns_concurrent_ids", concurrent),
                     ("dns_connected_udp", connected), ("dns_tcp", tcp), ("dns_metrics", metrics)):
        try:
            fn()
            results.append((name, None))
        except Failure as e:
            results.append((name, str(e)))
    return results
