#!/usr/bin/env python3
"""End-to-end tests: the real sonde binary attached to the real kernel, real
servers (Debian's nginx-light, python's http.server) and real clients (curl,
python sockets) started here, on loopback. Every request made is checked
against what sonde reported: exactly once per role, with method, path, status,
addresses, byte counts and latency bounds.

Usage: run.py --sonde .output/sonde [--only NAME]
Ends with the line "e2e: N passed, M failed".
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

NGINX_PORT = 18080
PY_PORT = 18081
RAW_PORT = 18082
PORTS = f"{NGINX_PORT},{PY_PORT},{RAW_PORT}"
HERE = os.path.dirname(os.path.abspath(__file__))


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- the processes under test ------------------------------------------------

class Sonde:
    """sonde run --json, stopped with SIGINT; records parsed from stdout."""

    def __init__(self, binary, workdir, extra=()):
        self.out_path = os.path.join(workdir, "sonde.out")
        self.err_path = os.path.join(workdir, "sonde.err")
        self.rec_path = os.path.join(workdir, "records.bin")
        # /metrics only where a test asks for it: the default port may be taken
        listen = [] if "--metrics-listen" in extra else ["--metrics-listen", "off"]
        cmd = [binary, "run", "--json", "--port", PORTS, "--output", self.rec_path,
               "--timeout", "2", *listen, *extra]
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
        time.sleep(1.5)  # let the last events and the 1 s timeout sweep through
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("sonde did not exit within 20 s of SIGINT")
        err = open(self.err_path).read()
        check(rc == 0, f"sonde exited {rc}: {err}")
        self.records = [json.loads(l) for l in open(self.out_path) if l.strip()]
        stats = [l for l in err.splitlines() if l.startswith("sonde: stats ")]
        check(stats, "no stats line at exit: " + err)
        self.stats = json.loads(stats[-1][len("sonde: stats "):])
        self.metrics = [r for r in self.records if r["type"] == "metric"]
        return [r for r in self.records if r["type"] == "l7"]


def start_nginx(workdir):
    root = os.path.join(workdir, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<html>hello from nginx</html>\n")
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    sock = os.path.join(workdir, "nginx.sock")
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  server {{
    listen 127.0.0.1:{NGINX_PORT};
    listen [::1]:{NGINX_PORT};
    listen unix:{sock};
    root {root};
    location /ka/ {{ return 200 "ok\\n"; }}
    location /pipe/ {{ return 200 "pipelined\\n"; }}
  }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-e", os.path.join(workdir, "nginx-error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(NGINX_PORT, proc, "nginx")
    return proc, sock


def start_pyserver(workdir):
    log = os.path.join(workdir, "pyserver.log")
    open(log, "w").close()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "pyserver.py"), str(PY_PORT), log])
    wait_port(PY_PORT, proc, "python server")
    return proc, log


def wait_port(port, proc, name):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise Failure(f"{name} exited with {proc.returncode}")
            time.sleep(0.05)
    raise Failure(f"{name} is not listening on {port}")


def curl(*args):
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def read_response(f):
    """One Content-Length-framed response from a buffered socket file; its status line."""
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
    return status


def pid_of(name):
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
    return {int(p) for p in out}


# ---- assertions on records ------------------------------------------------------

def recs(records, prefix, role=None):
    return [r for r in records if r["path"].startswith(prefix) and (role is None or r["role"] == role)]


def expect_once_per_role(records, path, method, status, server_comm=None, client_comm=None):
    """Exactly one client and one server record for this path, with the fields."""
    for role, comm in (("client", client_comm), ("server", server_comm)):
        got = [r for r in records if r["path"] == path and r["role"] == role]
        check(len(got) == 1, f"{path}: expected 1 {role} record, got {len(got)}: {got}")
        r = got[0]
        check(r["type"] == "l7" and r["proto"] == "http", f"{path}: {r}")
        check(r["method"] == method, f"{path} {role}: method {r['method']} != {method}")
        check(r["status"] == status, f"{path} {role}: status {r['status']} != {status}")
        check(not r["timeout"] and r["latency_ns"] > 0, f"{path} {role}: latency {r}")
        if comm:
            check(r["comm"] == comm, f"{path} {role}: comm {r['comm']} != {comm}")
    c = [r for r in records if r["path"] == path and r["role"] == "client"][0]
    s = [r for r in records if r["path"] == path and r["role"] == "server"][0]
    for k in ("saddr", "sport", "daddr", "dport", "req_bytes", "resp_bytes"):
        check(c[k] == s[k], f"{path}: client and server disagree on {k}: {c[k]} vs {s[k]}")
    check(s["latency_ns"] <= c["latency_ns"],
          f"{path}: server latency {s['latency_ns']} > client latency {c['latency_ns']}")
    return c, s


# ---- the workload ---------------------------------------------------------------

class Workload:
    """Everything the tests do while one sonde runs; assertions come after."""

    def __init__(self, workdir, nginx_sock, pylog):
        self.workdir = workdir
        self.nginx_sock = nginx_sock
        self.pylog = pylog
        self.rtt = {}    # path -> client-measured round trip, ns

    def run(self, cases):
        for name, fn in cases:
            fn(self)

    # each method drives one behaviour; names match the checks below
    def basic(self):
        check(curl(f"http://127.0.0.1:{NGINX_PORT}/index.html") == "200", "curl index")
        check(curl(f"http://127.0.0.1:{NGINX_PORT}/basic/missing") == "404", "curl 404")
        check(curl("-I", f"http://127.0.0.1:{NGINX_PORT}/index.html?head=1") == "200", "curl HEAD")

    def post(self):
        body = "x" * 5000
        check(curl("-X", "POST", "--data-binary", body,
                   f"http://127.0.0.1:{PY_PORT}/post/one") == "200", "curl POST")

    def big(self):
        check(curl(f"http://127.0.0.1:{NGINX_PORT}/big.bin") == "200", "curl big")

    def ipv6(self):
        check(curl("-g", f"http://[::1]:{NGINX_PORT}/index.html?v6=1") == "200", "curl ipv6")

    def unix(self):
        check(curl("--unix-socket", self.nginx_sock, "http://localhost/index.html?unix=1") == "200",
              "curl unix")

    def pipelined(self):
        s = socket.create_connection(("127.0.0.1", NGINX_PORT))
        reqs = b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(4))
        s.sendall(reqs)
        data = b""
        while data.count(b"pipelined\n") < 4:
            chunk = s.recv(65536)
            check(chunk, "nginx closed the pipelined connection early")
            data += chunk
        s.close()

    def keepalive(self):
        s = socket.create_connection(("127.0.0.1", NGINX_PORT))
        f = s.makefile("rb")
        for i in range(1000):
            s.sendall(b"GET /ka/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            status = read_response(f)
            check(status.startswith(b"HTTP/1.1 200"), f"keep-alive {i}: {status!r}")
        s.close()

    def latency(self):
        s = socket.create_connection(("127.0.0.1", PY_PORT))
        f = s.makefile("rb")
        for ms in (0, 20, 60):
            path = f"/sleep/{ms}/lat"
            t0 = time.monotonic_ns()
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            status = read_response(f)
            self.rtt[path] = time.monotonic_ns() - t0
            check(status.startswith(b"HTTP/1.1 200"), f"{path}: {status!r}")
        s.close()

    def chunked(self):
        check(curl(f"http://127.0.0.1:{PY_PORT}/chunked/12/c") == "200", "curl chunked")

    def statuses(self):
        for code in (201, 404, 503):
            check(curl(f"http://127.0.0.1:{PY_PORT}/status/{code}/s") == str(code), f"status {code}")

    def cut_off(self):
        # the server reads the request and closes without answering
        s = socket.create_connection(("127.0.0.1", PY_PORT))
        s.sendall(b"GET /close/now HTTP/1.1\r\nHost: x\r\n\r\n")
        check(s.recv(100) == b"", "server answered /close")
        s.close()

    def unanswered(self):
        # the server never answers: sonde reports the request on timeout (2 s)
        self.hang = socket.create_connection(("127.0.0.1", PY_PORT))
        self.hang.sendall(b"GET /hang/forever HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(3.5)


CASES = [(n, getattr(Workload, n)) for n in
         ("basic", "post", "big", "ipv6", "unix", "pipelined", "keepalive", "latency",
          "chunked", "statuses", "cut_off", "unanswered")]


def check_basic(rs, w):
    expect_once_per_role(rs, "/index.html", "GET", 200, "nginx", "curl")
    expect_once_per_role(rs, "/basic/missing", "GET", 404, "nginx", "curl")
    c, s = expect_once_per_role(rs, "/index.html?head=1", "HEAD", 200, "nginx", "curl")
    check(c["dport"] == NGINX_PORT and c["daddr"] == "127.0.0.1" and c["family"] == "ipv4", c)


def check_post(rs, w):
    c, s = expect_once_per_role(rs, "/post/one", "POST", 200, "python3", "curl")
    check(c["req_bytes"] > 5000, f"POST req_bytes {c['req_bytes']} misses the 5000-byte body")


def check_big(rs, w):
    c, s = expect_once_per_role(rs, "/big.bin", "GET", 200, "nginx", "curl")
    check(c["resp_bytes"] > (1 << 20), f"1 MB response counted {c['resp_bytes']} bytes")


def check_ipv6(rs, w):
    c, _ = expect_once_per_role(rs, "/index.html?v6=1", "GET", 200, "nginx", "curl")
    check(c["family"] == "ipv6" and c["daddr"] == "::1" and c["saddr"] == "::1", c)


def check_unix(rs, w):
    c, _ = expect_once_per_role(rs, "/index.html?unix=1", "GET", 200, "nginx", "curl")
    check(c["family"] == "unix", c)


def check_pipelined(rs, w):
    for i in range(4):
        expect_once_per_role(rs, f"/pipe/{i}", "GET", 200, "nginx")
    order = [r["path"] for r in rs if r["path"].startswith("/pipe/") and r["role"] == "server"]
    check(order == [f"/pipe/{i}" for i in range(4)], f"pipelined responses out of order: {order}")


def check_keepalive(rs, w):
    for role in ("client", "server"):
        got = recs(rs, "/ka/", role)
        paths = sorted(int(r["path"].split("/")[2]) for r in got)
        check(paths == list(range(1000)),
              f"keep-alive {role}: {len(got)} records, missing {sorted(set(range(1000)) - set(paths))[:10]}")
        check(len({r["conn_id"] for r in got}) == 1, f"keep-alive {role}: more than one connection")
        check(all(r["status"] == 200 for r in got), f"keep-alive {role}: bad status")


def check_latency(rs, w):
    server_times = {}
    for line in open(w.pylog):
        p, ns = line.split()
        server_times.setdefault(p, int(ns))
    for path, rtt in w.rtt.items():
        c, s = expect_once_per_role(rs, path, "GET", 200, "python3", "python3")
        own = server_times[path]
        check(s["latency_ns"] >= own,
              f"{path}: server-side latency {s['latency_ns']} below the server's own time {own}")
        check(c["latency_ns"] <= rtt,
              f"{path}: client-side latency {c['latency_ns']} above the measured round trip {rtt}")


def check_chunked(rs, w):
    c, s = expect_once_per_role(rs, "/chunked/12/c", "GET", 200, "python3", "curl")
    body = sum(len((f"chunk {i} " * (i + 1)).encode()) for i in range(12))
    check(c["resp_bytes"] > body, f"chunked resp_bytes {c['resp_bytes']} <= body {body}")


def check_statuses(rs, w):
    for code in (201, 404, 503):
        c, s = expect_once_per_role(rs, f"/status/{code}/s", "GET", code, "python3", "curl")
        check(c["error"] == (code >= 400), f"status {code}: error flag {c['error']}")


def check_cut_off(rs, w):
    for role in ("client", "server"):
        got = [r for r in rs if r["path"] == "/close/now" and r["role"] == role]
        check(len(got) == 1, f"/close/now {role}: {len(got)} records")
        check(got[0]["closed"] and got[0]["status"] == 0 and got[0]["error"], got[0])


def check_unanswered(rs, w):
    for role in ("client", "server"):
        got = [r for r in rs if r["path"] == "/hang/forever" and r["role"] == role]
        check(len(got) == 1, f"/hang/forever {role}: {len(got)} records")
        check(got[0]["timeout"] and got[0]["status"] == 0 and got[0]["error"], got[0])


CHECKS = {n: globals()["check_" + n] for n, _ in CASES}


def check_decode(binary, sonde):
    out = subprocess.run([binary, "decode", sonde.rec_path], capture_output=True, text=True)
    check(out.returncode == 0, "sonde decode failed: " + out.stderr)
    decoded = [json.loads(l) for l in out.stdout.splitlines()]
    check(decoded == sonde.records,
          f"decode gave {len(decoded)} records, run printed {len(sonde.records)}; they differ")


# ---- runner ---------------------------------------------------------------------

def run_suite(binary, workdir, extra, only, label):
    results = []
    nginx, sock = start_nginx(workdir)
    py, pylog = start_pyserver(workdir)
    w = Workload(workdir, sock, pylog)
    cases = [(n, f) for n, f in CASES if not only or n in only]
    try:
        sonde = Sonde(binary, workdir, extra)
        for name, fn in cases:
            try:
                fn(w)
            except Exception as e:  # the workload itself failed
                results.append((f"{label}{name}", f"workload: {e}"))
        records = sonde.stop()
    finally:
        for p in (nginx, py):
            p.terminate()
            p.wait(timeout=10)
    failed = {n for n, _ in results}
    for name, _ in cases:
        if f"{label}{name}" in failed:
            continue
        try:
            CHECKS[name](records, w)
            results.append((f"{label}{name}", None))
        except Failure as e:
            results.append((f"{label}{name}", str(e)))
    try:
        check(sonde.stats["events_dropped"] == 0, f"events dropped: {sonde.stats}")
        results.append((f"{label}no_drops", None))
    except Failure as e:
        results.append((f"{label}no_drops", str(e)))
    if not only or "decode" in only:
        try:
            check_decode(binary, sonde)
            results.append((f"{label}decode_roundtrip", None))
        except Failure as e:
            results.append((f"{label}decode_roundtrip", str(e)))
    return results


def check_errors(binary):
    """Clear one-line errors for bad input."""
    results = []
    for name, args, want in (
        ("error_bad_option", ["run", "--duration", "soon"], "--duration wants a number"),
        ("error_missing_btf", ["run", "--no-sys-btf", "--btf", "/nonexistent.btf"], "--btf /nonexistent.btf"),
        ("error_decode_missing", ["decode", "/nonexistent.rec"], "cannot open /nonexistent.rec"),
    ):
        r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
        ok = r.returncode != 0 and want in r.stderr and len(r.stderr.strip().splitlines()) <= 20
        results.append((name, None if ok else f"rc={r.returncode} stderr={r.stderr!r}"))
    with tempfile.NamedTemporaryFile(suffix=".rec") as f:
        f.write(b"\x05abc")
        f.flush()
        r = subprocess.run([binary, "decode", f.name], capture_output=True, text=True)
        ok = r.returncode != 0 and "truncated" in r.stderr
        results.append(("error_decode_truncated", None if ok else r.stderr))
    nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             binary, "run", "--duration", "1"], capture_output=True, text=True)
    ok = nobody.returncode != 0 and "root" in nobody.stderr
    results.append(("error_not_root", None if ok else nobody.stderr))
    return results


def check_pin_and_pid(binary):
    """--pin exposes the counters to bpftool with field names; --pid keeps only
    that process's side of each call."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-pin-") as wd:
        os.chmod(wd, 0o755)
        nginx, _ = start_nginx(wd)
        try:
            workers = [p for p in pid_of("nginx") if p != nginx.pid and
                       open(f"/proc/{p}/stat").read().split()[3] == str(nginx.pid)]
            check(len(workers) == 1, f"nginx workers: {workers}")
            sonde = Sonde(binary, wd, ["--pin", "--pid", str(workers[0])])
            for i in range(5):
                check(curl(f"http://127.0.0.1:{NGINX_PORT}/pid/{i}") == "404", "curl")
            dump = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", "/sys/fs/bpf/sonde/stats"],
                                  capture_output=True, text=True)
            records = sonde.stop()
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
        try:
            check(dump.returncode == 0, "bpftool map dump failed: " + dump.stderr)
            per_cpu = json.loads(dump.stdout)[0]["formatted"]["values"]
            check(all("events_sent" in v["value"] for v in per_cpu), f"no named counters: {dump.stdout[:300]}")
            check(sum(v["value"]["events_sent"] for v in per_cpu) >= 5, "pinned events_sent below 5")
            check(not os.path.exists("/sys/fs/bpf/sonde/stats"), "pins left behind after exit")
            results.append(("pin_bpftool", None))
        except (Failure, KeyError, ValueError) as e:
            results.append(("pin_bpftool", str(e)))
        try:
            got = recs(records, "/pid/")
            check(len(got) == 5 and all(r["role"] == "server" and r["pid"] == workers[0] for r in got),
                  f"--pid {workers[0]}: {[(r['role'], r['pid'], r['path']) for r in got]}")
            results.append(("pid_filter", None))
        except Failure as e:
            results.append(("pid_filter", str(e)))
    return results


def letters(n):
    """A path segment no normalisation touches: base-26 letters."""
    out = ""
    while True:
        out += chr(ord("a") + n % 26)
        n //= 26
        if not n:
            return out


def prom_query(port, q):
    import urllib.parse
    import urllib.request
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        res = json.load(r)["data"]["result"]
    return [float(x["value"][1]) for x in res]


def start_prometheus(workdir, target):
    prom = shutil.which("prometheus")
    if not prom:
        return None
    conf = os.path.join(workdir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write(f"global:\n  scrape_interval: 1s\nscrape_configs:\n"
                f"  - job_name: sonde\n    static_configs:\n      - targets: ['{target}']\n")
    proc = subprocess.Popen([prom, f"--config.file={conf}", f"--storage.tsdb.path={workdir}/tsdb",
                             "--web.listen-address=127.0.0.1:19090"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "prom.log"), "w"))
    # Prometheus applies its targets after a discovery delay (~5 s): wait
    # until sonde has been scraped once
    for _ in range(150):
        try:
            if prom_query(19090, 'up{job="sonde"}') == [1.0]:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise Failure("prometheus did not start: " + open(os.path.join(workdir, "prom.log")).read()[-500:])


def check_metrics(binary):
    """Metrics count every request exactly, with --logs none, in the right
    latency buckets, under a cardinality flood, and through a real Prometheus."""
    results = []
    flood = 100000
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-metrics-") as wd:
        os.chmod(wd, 0o755)
        nginx, _ = start_nginx(wd)
        py, _ = start_pyserver(wd)
        prom = None
        try:
            sonde = Sonde(binary, wd, ["--logs", "none", "--max-series", "256",
                                       "--metrics-listen", "127.0.0.1:19433"])
            prom = start_prometheus(wd, "127.0.0.1:19433")
            mix = {200: 40, 404: 10, 503: 5}
            # one request first, seen by Prometheus before the rest, so the
            # series has a sample from before the burst and its rate shows it
            check(curl(f"http://127.0.0.1:{PY_PORT}/status/200/m1") == "200", "mix")
            if prom:
                sel = 'route="/status/:num/m1",role="server"'
                for _ in range(50):
                    if prom_query(19090, f"sum(sonde_requests_total{{{sel}}})") == [1.0]:
                        break
                    time.sleep(0.2)
            for code, n in mix.items():
                for _ in range(n - (code == 200)):
                    check(curl(f"http://127.0.0.1:{PY_PORT}/status/{code}/m1") == str(code), "mix")
            s = socket.create_connection(("127.0.0.1", PY_PORT))
            f = s.makefile("rb")
            for i in range(20):
                s.sendall(b"GET /sleep/30/m2 HTTP/1.1\r\nHost: x\r\n\r\n")
                read_response(f)
            s.close()
            prom_results = {}
            if prom:
                sel = 'route="/status/:num/m1",role="server"'
                # sonde reads its map each second, Prometheus scrapes each second
                for _ in range(50):
                    if prom_query(19090, f"sum(sonde_requests_total{{{sel}}})") == [55.0]:
                        break
                    time.sleep(0.2)
                prom_results["requests"] = prom_query(19090, f"sum(sonde_requests_total{{{sel}}})")
                prom_results["errors"] = prom_query(19090, f"sum(sonde_request_errors_total{{{sel}}})")
                # a rate needs two samples of the series in its window
                for _ in range(50):
                    prom_results["rate"] = prom_query(19090, f"sum(rate(sonde_requests_total{{{sel}}}[1m]))")
                    if prom_results["rate"] and prom_results["rate"][0] > 0:
                        break
                    time.sleep(0.2)
            # the flood: distinct paths nothing normalises, on one keep-alive connection
            s = socket.create_connection(("127.0.0.1", NGINX_PORT))
            f = s.makefile("rb")
            batch = 4  # pipelined within sonde's depth of 4
            for start in range(0, flood, batch):
                s.sendall(b"".join(b"GET /flood/%s HTTP/1.1\r\nHost: x\r\n\r\n" % letters(i).encode()
                                   for i in range(start, start + batch)))
                for _ in range(batch):
                    read_response(f)
            s.close()
            scrape = subprocess.run(["curl", "-s", "http://127.0.0.1:19433/metrics"],
                                    capture_output=True, text=True).stdout
            records = sonde.stop()
        finally:
            for p in (nginx, py, prom):
                if p:
                    p.terminate()
                    p.wait(timeout=20)
    st = sonde.stats
    total = sum(mix.values()) + 20 + flood

    def series(role, route):
        return [m for m in sonde.metrics if m["interval_s"] == 1 and m["role"] == role and m["route"] == route]

    def outcome(name, fn):
        try:
            fn()
            results.append((name, None))
        except (Failure, KeyError, IndexError, ValueError) as e:
            results.append((name, str(e)))

    def exact_counts():
        for role in ("client", "server"):
            got = series(role, "/status/:num/m1")
            n = sum(m["requests"] for m in got)
            check(n == 55, f"{role}: {n} requests in /status/:num/m1, want 55")
            check(sum(m["errors_4xx"] for m in got) == 10 and sum(m["errors_5xx"] for m in got) == 5,
                  f"{role}: error split {[(m['errors_4xx'], m['errors_5xx']) for m in got]}")
        # every transaction, both sides, is in some series (the overflow one included)
        n = sum(m["requests"] for m in sonde.metrics if m["interval_s"] == 1)
        check(n == 2 * total, f"series hold {n} transactions, want {2 * total}")

    def logs_none():
        check(not records, f"{len(records)} request records with --logs none")
        check(st["events_sent"] == 0 and st["logs_suppressed"] == 2 * total,
              f"events_sent {st['events_sent']}, logs_suppressed {st['logs_suppressed']}, want 0 and {2 * total}")

    def latency_buckets():
        got = series("server", "/sleep/:num/m2")
        check(sum(m["requests"] for m in got) == 20, f"sleep series: {got}")
        p50s = [m["p50_ns"] for m in got]
        check(all(30e6 <= p <= 40e6 for p in p50s), f"server p50 {p50s} outside 30-40 ms")
        line = [l for l in scrape.splitlines() if l.startswith("sonde_request_duration_seconds_bucket{")
                and 'route="/sleep/:num/m2"' in l and 'role="server"' in l]
        le = {l.split(',le="')[1].split('"')[0]: int(l.split()[-1]) for l in line}
        check(le.get("0.025") == 0 and le.get("0.05") == 20, f"histogram buckets {le}")

    def flood_bounded():
        check(st["metric_overflow"] > 0, "no overflow counted under a 100k-path flood")
        series_line = [l for l in scrape.splitlines() if l.startswith("sonde_metric_series ")]
        n = int(series_line[0].split()[1])
        check(n <= 256, f"{n} series exceed --max-series 256")
        ovf = sum(m["requests"] for m in sonde.metrics if m["interval_s"] == 1 and m["overflow"])
        check(ovf == st["metric_overflow"], f"overflow series holds {ovf}, counter says {st['metric_overflow']}")

    def prometheus():
        if not prom_results:
            raise Failure("prometheus is not installed (scripts/deps.sh installs it)")
        check(prom_results["requests"] == [55.0], f"PromQL requests {prom_results['requests']}")
        check(prom_results["errors"] == [15.0], f"PromQL errors {prom_results['errors']}")
        check(prom_results["rate"] and prom_results["rate"][0] > 0, f"PromQL rate {prom_results['rate']}")

    outcome("metrics_exact_counts", exact_counts)
    outcome("metrics_logs_none", logs_none)
    outcome("metrics_latency_buckets", latency_buckets)
    outcome("metrics_cardinality_flood", flood_bounded)
    outcome("metrics_prometheus_scrape", prometheus)
    return results


def check_proc_limit(binary):
    """--max-series-per-process: a process past its share counts the rest in
    its own overflow series, not in the global one, and nothing is lost."""
    paths, limit = 300, 50
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-proclimit-") as wd:
        os.chmod(wd, 0o755)
        nginx, _ = start_nginx(wd)
        try:
            sonde = Sonde(binary, wd, ["--logs", "none", "--max-series", "4096",
                                       "--max-series-per-process", str(limit)])
            s = socket.create_connection(("127.0.0.1", NGINX_PORT))
            f = s.makefile("rb")
            for i in range(paths):
                s.sendall(b"GET /proc/%s HTTP/1.1\r\nHost: x\r\n\r\n" % letters(i).encode())
                read_response(f)
            s.close()
            sonde.stop()
        finally:
            nginx.terminate()
            nginx.wait(timeout=20)
    try:
        st = sonde.stats
        ms = [m for m in sonde.metrics if m["interval_s"] == 1]
        for role in ("server", "client"):
            own = {m["route"] for m in ms if m["role"] == role and m["route"].startswith("/proc/")}
            check(len(own) <= limit, f"{role}: {len(own)} series, limit {limit}")
            ovf = [m for m in ms if m["overflow"] and m["pid"] != 0 and
                   m["comm"] == ("nginx" if role == "server" else "python3")]
            n_own = sum(m["requests"] for m in ms if m["role"] == role and m["route"] in own)
            n_ovf = sum(m["requests"] for m in ovf)
            check(n_own + n_ovf == paths and n_ovf >= paths - limit,
                  f"{role}: {n_own} in own series + {n_ovf} in its overflow, want {paths}")
        proc_ovf = sum(m["requests"] for m in ms if m["overflow"] and m["pid"] != 0)
        check(proc_ovf == st["metric_proc_overflow"] and st["metric_overflow"] == 0,
              f"per-process overflow {proc_ovf} vs counter {st['metric_proc_overflow']}, "
              f"global {st['metric_overflow']}")
        return [("metrics_per_process_limit", None)]
    except Failure as e:
        return [("metrics_per_process_limit", str(e))]


def check_top(binary):
    """sonde top, stdout not a terminal: one snapshot of the busiest series, then exit."""
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-top-") as wd:
        os.chmod(wd, 0o755)
        py, _ = start_pyserver(wd)
        stop = time.time() + 15
        try:
            top = subprocess.Popen([binary, "top", "--port", str(PY_PORT), "--metrics-listen", "off"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            while top.poll() is None and time.time() < stop:
                curl(f"http://127.0.0.1:{PY_PORT}/status/500/top/1")
            out, err = top.communicate(timeout=10)
        finally:
            py.terminate()
            py.wait(timeout=10)
    try:
        check(top.returncode == 0, f"sonde top exited {top.returncode}: {err}")
        lines = out.splitlines()
        check(lines and lines[0].split()[:3] == ["COMM", "PID", "ROLE"], f"no header: {out!r}")
        rows = [l for l in lines[1:] if "/status/:num/top/:num" in l]
        # one server (python), one row per curl process (each its own pid)
        servers = [r for r in rows if r.split()[2] == "server"]
        check(len(servers) == 1 and rows[0] == servers[0] and len(rows) >= 2,
              f"want the server row first, then client rows: {out[:600]!r}")
        check(all("100.0%" in r for r in rows), f"every row has 100% errors: {out[:600]!r}")
        return [("top_snapshot", None)]
    except Failure as e:
        return [("top_snapshot", str(e))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", required=True)
    ap.add_argument("--only", action="append")
    ap.add_argument("--tier", default="e2e", help="name on the summary line")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("e2e: these tests attach BPF programs and need root: run them with sudo")
        print("e2e: 0 passed, 1 failed")
        return 1
    binary = os.path.abspath(args.sonde)
    results = []
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-") as wd:
        os.chmod(wd, 0o755)
        results += run_suite(binary, wd, [], args.only, "")
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-pb-") as wd:
        os.chmod(wd, 0o755)
        only = args.only or ["basic", "big", "pipelined", "keepalive", "chunked", "unanswered"]
        results += run_suite(binary, wd, ["--force-perfbuf"], only, "perfbuf_")
    results += check_errors(binary)
    if not args.only:
        results += check_pin_and_pid(binary)
    if not args.only or "metrics" in args.only:
        results += check_metrics(binary)
        results += check_proc_limit(binary)
        results += check_top(binary)
    # protocol modules: every tests/e2e/test_*.py has run(binary, only) -> results
    import glob
    import importlib
    sys.path.insert(0, HERE)
    sys.modules.setdefault("run", sys.modules[__name__])
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod = importlib.import_module(os.path.basename(path)[:-3])
        try:
            results += mod.run(binary, args.only)
        except Exception as e:  # one module's crash must not hide the others' results
            results.append((mod.__name__, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    passed = sum(1 for _, e in results if e is None)
    for name, err in results:
        print(f"{'PASS' if err is None else 'FAIL'} {name}" + ("" if err is None else f": {err}"))
    print(f"{args.tier}: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
