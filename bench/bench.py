#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""sonde benchmark suite (issue 8): the harness behind `make bench*`.

    bench.py [--out DIR] [--sonde PATH] [--rounds N] [--doc FILE] PART
    PART: syscall | nginx | drops | agent | wakeups | all | hooks

Every figure is a ratio or a difference between runs interleaved in this one
invocation (configurations rotate their order round by round), with the work
stated in fixed counts and CPU time read from cgroups (every process
involved, the agent included). Each part prints a Markdown table and appends
it, with date, kernel, CPU model, commit and the exact command, to the doc.

Only the Python standard library is used. Needs root (BPF, cgroups).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

NA_NOT_BUILT = "n/a (not built yet)"
NGINX_PORT = 28080
TINY_PORT = 28081
SOCKHOLD_PORT = 29000
METRICS_PORT = 29433


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# statistics and formatting

def quartiles(xs):
    xs = sorted(xs)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_num(v, digits=0, sign=False):
    if v is None or v != v:
        return "n/a"
    s = f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"
    return s


def fmt_spread(xs, digits=0, sign=False, unit=""):
    """median [IQR q1..q3] of a list"""
    if not xs:
        return "n/a"
    q1, m, q3 = quartiles(xs)
    return (f"{fmt_num(m, digits, sign)}{unit} "
            f"[{fmt_num(q1, digits, sign)}..{fmt_num(q3, digits, sign)}]")


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# --------------------------------------------------------------------------
# cgroups: CPU time of every process of a role (load, server, agent)

class Cgroup:
    """A cgroup whose CPU time we read: v1 cpuacct (ns) when mounted, else v2."""

    ROOT = None

    @classmethod
    def root(cls):
        if cls.ROOT:
            return cls.ROOT
        cands = [("/sys/fs/cgroup/cpuacct", "v1"),
                 ("/sys/fs/cgroup/cpu,cpuacct", "v1"),
                 ("/sys/fs/cgroup", "v2"),
                 ("/sys/fs/cgroup/unified", "v2")]
        for path, kind in cands:
            if kind == "v1" and os.path.exists(f"{path}/cpuacct.usage"):
                cls.ROOT = (path, kind)
                break
            if kind == "v2" and os.path.exists(f"{path}/cgroup.controllers"):
                cls.ROOT = (path, kind)
                break
        if not cls.ROOT:
            sys.exit("bench: no cgroup v1 cpuacct or cgroup v2 hierarchy found")
        return cls.ROOT

    def __init__(self, name):
        base, self.kind = self.root()
        self.path = f"{base}/sonde-bench/{name}"
        os.makedirs(self.path, exist_ok=True)

    @property
    def cpu_file(self):
        return f"{self.path}/cpuacct.usage" if self.kind == "v1" else f"{self.path}/cpu.stat"

    def cpu_ns(self):
        with open(self.cpu_file) as f:
            data = f.read()
        if self.kind == "v1":
            return int(data)
        m = re.search(r"usage_usec (\d+)", data)
        return int(m.group(1)) * 1000

    def enter(self):
        """for preexec_fn: move the calling process here"""
        with open(f"{self.path}/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))

    def pids(self):
        try:
            with open(f"{self.path}/cgroup.procs") as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def kill_all(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)

    def remove(self):
        self.kill_all()
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def preexec(cg=None, cpus=None):
    def fn():
        os.setsid()
        if cg:
            cg.enter()
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
    return fn


def settle(cg, quiet_ns=3_000_000, period=0.2, limit=10.0):
    """wait until a cgroup stops burning CPU (an agent draining its backlog)"""
    t_end = time.time() + limit
    last = cg.cpu_ns()
    while time.time() < t_end:
        time.sleep(period)
        now = cg.cpu_ns()
        if now - last < quiet_ns:
            return
        last = now


# --------------------------------------------------------------------------
# agents: the configurations measured against "off"

class Agent:
    """One configuration: off, floor, sonde (full logs / metrics only),
    copycat (payload-copying collector), tshark (packet capture)."""

    def __init__(self, h, kind, cg, extra=None, cpus=None):
        self.h, self.kind, self.cg, self.cpus = h, kind, cg, cpus
        self.extra = extra or []
        self.proc = None
        self.lines = []
        self.ready = threading.Event()
        self.stats = {}
        self.exit_code = None

    def argv(self):
        h = self.h
        if self.kind == "floor":
            return [h.tool("floor")], "ready"
        if self.kind in ("sonde", "sonde-metrics"):
            argv = [h.sonde, "run", "--quiet"]
            if self.kind == "sonde-metrics":
                argv += ["--logs", "none"]
            if "--metrics-listen" in h.sonde_help():
                # its own port, so a sonde someone else runs on the default one does not collide
                argv += ["--metrics-listen", f"127.0.0.1:{METRICS_PORT}"]
            return argv + self.extra, "ready"
        if self.kind == "copycat":
            return [h.tool("copycat")], "ready"
        if self.kind == "tshark":
            port = self.extra[0] if self.extra else NGINX_PORT
            return (["tshark", "-i", "lo", "-n", "-f", f"tcp port {port}",
                     "-Y", "http", "-T", "fields", "-e", "frame.time_epoch",
                     "-e", "http.request.method", "-e", "http.request.uri",
                     "-e", "http.response.code", "-e", "http.time"],
                    "Capturing on")
        raise ValueError(self.kind)

    def start(self, timeout=60):
        if self.kind == "off":
            return self
        argv, pattern = self.argv()
        self.pattern = pattern
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, errors="replace",
            preexec_fn=preexec(self.cg, self.cpus))
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.kind} did not become ready:\n" + "".join(self.lines[-20:]))
        if not self.alive():
            raise RuntimeError(f"{self.kind} exited:\n" + "".join(self.lines[-20:]))
        if self.kind.startswith("sonde"):
            # past its start-up work (the first map reads fault in its tables), so that
            # what is measured is the steady state
            time.sleep(self.h.a.sonde_warmup)
        return self

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if self.pattern in line:
                self.ready.set()
            m = re.search(r"stats (\{.*\})", line)
            if m:
                try:
                    self.stats = json.loads(m.group(1))
                except ValueError:
                    pass
            m = re.search(r"(\d+) packets? dropped", line)
            if m and self.kind == "tshark":
                self.stats["dropped"] = self.stats.get("dropped", 0) + int(m.group(1))
            m = re.search(r"(\d+) packets? captured", line)
            if m and self.kind == "tshark":
                self.stats["captured"] = int(m.group(1))
        self.ready.set()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        if not self.proc:
            return self
        if self.kind == "tshark":
            # after a saturation run tshark would spend ~10 s dissecting its backlog, which no
            # figure uses: give it a moment, then end it (its packet counts are then unknown)
            timeout = 1
        if self.proc.poll() is None:
            # to the whole process group, as a terminal's Ctrl-C (tshark forwards
            # nothing to its dumpcap child otherwise)
            t_end = time.time() + timeout
            while self.proc.poll() is None and time.time() < t_end:
                # again every 2 s: tshark loses a SIGINT that comes right after it starts
                try:
                    os.killpg(self.proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                if self.kind != "tshark":
                    log(f"{self.kind} ignored SIGINT for {timeout}s; killing it")
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.exit_code = self.proc.returncode
        time.sleep(0.05)  # let the reader thread see the last lines
        self.cg.kill_all()
        return self


# --------------------------------------------------------------------------
# /proc and BPF introspection

def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def ctx_switches(pid):
    """voluntary and involuntary context switches summed over all threads"""
    vol = invol = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for t in tids:
        st = proc_status(f"{pid}/task/{t}")
        vol += int(st.get("voluntary_ctxt_switches", 0))
        invol += int(st.get("nonvoluntary_ctxt_switches", 0))
    return vol, invol


def bpf_fdinfo(pid):
    """maps and programs a process holds: {'maps': {id: memlock}, 'progs': {id: (run_ns, cnt)}}"""
    maps, progs = {}, {}
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return {"maps": maps, "progs": progs}
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        info = {k.strip(): v.strip() for k, v in info.items()}
        if "map_id" in info:
            maps[int(info["map_id"])] = int(info.get("memlock", 0))
        elif "prog_id" in info and "run_cnt" in info:
            progs[int(info["prog_id"])] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return {"maps": maps, "progs": progs}


def map_entries(map_id, key_size, limit=2_000_000):
    """count a hash map's entries with BPF_MAP_GET_NEXT_KEY (bpftool dump is too slow for 100k)"""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    NR_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
    if not NR_BPF:
        return None
    attr = ctypes.create_string_buffer(128)
    ctypes.c_uint32.from_buffer(attr, 0).value = map_id
    fd = libc.syscall(NR_BPF, 14, attr, 128)  # BPF_MAP_GET_FD_BY_ID
    if fd < 0:
        return None
    k1 = ctypes.create_string_buffer(key_size)
    k2 = ctypes.create_string_buffer(key_size)
    n, cur = 0, None
    try:
        while n < limit:
            a = ctypes.create_string_buffer(128)
            ctypes.c_uint32.from_buffer(a, 0).value = fd
            ctypes.c_uint64.from_buffer(a, 8).value = ctypes.addressof(cur) if cur else 0
            ctypes.c_uint64.from_buffer(a, 16).value = ctypes.addressof(k2 if cur is k1 else k1)
            if libc.syscall(NR_BPF, 4, a, 128) != 0:  # BPF_MAP_GET_NEXT_KEY
                break
            cur = k2 if cur is k1 else k1
            n += 1
    finally:
        os.close(fd)
    return n


def bpftool_json(*args):
    try:
        out = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout or "null")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def prog_names(ids):
    names = {}
    for i in ids:
        j = bpftool_json("prog", "show", "id", str(i))
        names[i] = j.get("name", str(i)) if isinstance(j, dict) else str(i)
    return names


def map_details(ids):
    out = {}
    for i in ids:
        j = bpftool_json("map", "show", "id", str(i))
        if isinstance(j, dict):
            out[i] = j
    return out


def attached_tracepoints(pid):
    j = bpftool_json("perf", "show") or []
    return sorted({e.get("tracepoint") or e.get("func") or "?" for e in j if e.get("pid") == pid})


def prog_costs(pid, fn):
    """run fn() and return ({prog name: (run_time_ns, run_cnt)}, fn's result) for the programs
    process pid holds (kernel.bpf_stats_enabled must be on). Programs reached by tail calls
    count inside their caller, the entry program."""
    before = bpf_fdinfo(pid)["progs"]
    res = fn()
    after = bpf_fdinfo(pid)["progs"]
    names = prog_names(after.keys())
    out = {}
    for i, (t1, c1) in after.items():
        t0, c0 = before.get(i, (0, 0))
        if c1 > c0:
            n = names.get(i, str(i))
            t, c = out.get(n, (0, 0))
            out[n] = (t + t1 - t0, c + c1 - c0)
    return out, res


class BpfStats:
    """kernel.bpf_stats_enabled on for a block, restored after"""

    def __enter__(self):
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            self.old = f.read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        return self

    def __exit__(self, *a):
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self.old)


# --------------------------------------------------------------------------
# nginx

class Nginx:
    def __init__(self, h, port=NGINX_PORT, body=100):
        self.h, self.port = h, port
        self.dir = tempfile.mkdtemp(prefix="sonde-bench-nginx-")
        os.makedirs(f"{self.dir}/www")
        with open(f"{self.dir}/www/x.txt", "w") as f:
            f.write("x" * (body - 1) + "\n")
        self.body = body
        conf = f"""
user root;
worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    sendfile off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    default_type text/plain;
    client_body_temp_path {self.dir}/tmp;
    server {{ listen 127.0.0.1:{port} backlog=4096; root {self.dir}/www; }}
}}
"""
        with open(f"{self.dir}/nginx.conf", "w") as f:
            f.write(conf)
        self.cg = Cgroup("nginx")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.dir, "-c", f"{self.dir}/nginx.conf"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=preexec(self.cg))
        for _ in range(100):
            time.sleep(0.05)
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                import socket
                s = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
                s.close()
                return self
            except OSError:
                continue
        raise RuntimeError("nginx did not listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.cg.remove()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/x.txt"


class TinyHttpd:
    """bench/tinyhttpd.c: a one-thread epoll HTTP/1.1 server, cheaper per request than nginx"""

    def __init__(self, h, port=TINY_PORT, body=100):
        self.h, self.port, self.body = h, port, body
        self.cg = Cgroup("server")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.h.tool("tinyhttpd"), str(self.port), str(self.body)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=preexec(self.cg))
        line = self.proc.stderr.readline()
        if "ready" not in line:
            raise RuntimeError(f"tinyhttpd did not start: {line}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.cg.remove()


# --------------------------------------------------------------------------
# the harness

class Harness:
    def __init__(self, args):
        self.a = args
        self.out = args.out
        self.sonde = os.path.abspath(args.sonde) if args.sonde else None
        self.rounds = args.rounds
        self.doc = args.doc
        ncpu = os.cpu_count() or 1
        # agents on CPU 0, the measured load on the last CPU: the agent's
        # consumer does not steal the load's CPU, and both are counted apart
        self.agent_cpus = {0} if ncpu > 1 else None
        self.load_cpus = {ncpu - 1} if ncpu > 1 else None
        import shlex
        argv, skip = [], False
        for a in sys.argv:
            if skip:
                skip = False
                continue
            if a == "--cmd":
                skip = True
                continue
            argv.append(a)
        py = "python3 " + shlex.join(argv)
        self.cmd = f"`{args.cmd}` (runs `{py}`)" if args.cmd else f"`{py}`"
        self._help = None
        self.cgroups = {}

    # ---- environment
    def tool(self, name):
        return os.path.join(self.out, name)

    def cg(self, name):
        if name not in self.cgroups:
            self.cgroups[name] = Cgroup(name)
        return self.cgroups[name]

    def cleanup(self):
        base, _ = Cgroup.root()
        try:  # the harness leaves its own cgroup before removing it
            with open(f"{base}/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
        for name, c in self.cgroups.items():
            if name == "harness":
                try:
                    os.rmdir(c.path)
                except OSError:
                    pass
            else:
                c.remove()
        try:
            os.rmdir(f"{base}/sonde-bench")
        except OSError:
            pass

    def have_sonde(self):
        return bool(self.sonde) and os.access(self.sonde, os.X_OK)

    def sonde_help(self):
        if self._help is None:
            self._help = ""
            if self.have_sonde():
                r = subprocess.run([self.sonde, "run", "--help"], capture_output=True, text=True)
                self._help = r.stdout + r.stderr
        return self._help

    def config_na(self, kind):
        """None if the configuration can run, else why not"""
        if kind in ("sonde", "sonde-metrics", "sonde-perfbuf") and not self.have_sonde():
            return NA_NOT_BUILT
        if kind == "sonde-metrics" and "--logs" not in self.sonde_help():
            return NA_NOT_BUILT
        if kind == "sonde-perfbuf" and "--force-perfbuf" not in self.sonde_help():
            return "n/a (no --force-perfbuf)"
        if kind == "tshark" and not shutil.which("tshark"):
            return "n/a (tshark missing)"
        if kind == "copycat" and not os.access(self.tool("copycat"), os.X_OK):
            return "n/a (copycat not built)"
        return None

    def agent(self, kind, cg_name="agent", extra=None, pinned=False):
        """pinned: on agent_cpus (bench-syscall keeps the agent off the load's CPU);
        elsewhere the scheduler places everything, as on a real host"""
        real = "sonde" if kind == "sonde-perfbuf" else kind
        ex = list(extra or [])
        if kind == "sonde-perfbuf":
            ex.append("--force-perfbuf")
        return Agent(self, real, self.cg(cg_name), ex, self.agent_cpus if pinned else None)

    def order(self, configs, r):
        k = r % len(configs)
        return configs[k:] + configs[:k]

    # ---- report
    def header(self, part):
        def sh(cmd):
            try:
                return subprocess.run(cmd, capture_output=True, text=True, shell=True).stdout.strip()
            except OSError:
                return ""
        commit = sh("git rev-parse --short HEAD 2>/dev/null") or "no commit"
        if sh("git status --porcelain 2>/dev/null | grep -v '^??' | head -1") or \
                sh("git status --porcelain -- bpf user bench 2>/dev/null | head -1"):
            commit += " (+ uncommitted changes)"
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                m = re.search(r"model name\s*:\s*(.*)", f.read())
                cpu = m.group(1) if m else "?"
        except OSError:
            pass
        sonde = "not built"
        if self.have_sonde():
            st = os.stat(self.sonde)
            sonde = f"{self.sonde} built {time.strftime('%Y-%m-%d %H:%M', time.localtime(st.st_mtime))}"
        return (f"### bench-{part} — {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}\n\n"
                f"kernel {platform.release()}, CPU {cpu} × {os.cpu_count()}, commit {commit}, "
                f"sonde: {sonde}  \n"
                f"command: {self.cmd}\n")

    # ---- how busy the rest of the machine was (other people's work skews CPU figures)
    @staticmethod
    def busy_ns():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal
        return (v[0] + v[1] + v[2] + v[5] + v[6]) * 1e9 / tick, v[7] * 1e9 / tick

    def bench_ns(self):
        base, kind = Cgroup.root()
        try:
            if kind == "v1":
                with open(f"{base}/sonde-bench/cpuacct.usage") as f:
                    return int(f.read())
            with open(f"{base}/sonde-bench/cpu.stat") as f:
                return int(re.search(r"usage_usec (\d+)", f.read()).group(1)) * 1000
        except (OSError, AttributeError):
            return 0

    def foreign_bpf(self):
        """pids outside the benchmark with BPF programs on tracepoints (another sonde, say)"""
        ours = set()
        for c in self.cgroups.values():
            ours.update(c.pids())
        j = bpftool_json("perf", "show") or []
        out = {}
        for e in j:
            p = e.get("pid")
            if p in ours or p == os.getpid():
                continue
            comm = proc_status(p).get("Name", "?")
            out[p] = comm
        return out

    def wait_quiet(self, limit, cores=0.15):
        """on a shared machine, wait (up to limit s) until other processes calm down
        and no one else has BPF programs on tracepoints"""
        t_end = time.time() + limit
        while True:
            b0, o0 = self.busy_ns()[0], self.bench_ns()
            time.sleep(1.0)
            other = (self.busy_ns()[0] - b0 - (self.bench_ns() - o0)) / 1e9
            fb = self.foreign_bpf()
            if (other <= cores and not fb) or time.time() >= t_end:
                if other > cores or fb:
                    log(f"machine still busy ({other:.2f} cores used by other processes"
                        f"{', BPF tracepoints held by ' + str(fb) if fb else ''}); going on")
                return
            log(f"waiting for a quiet machine ({other:.2f} cores used by other processes"
                f"{', BPF tracepoints held by ' + str(fb) if fb else ''})")

    def part_begin(self):
        if self.a.wait_quiet:
            self.wait_quiet(self.a.wait_quiet)
        self.t_begin = time.time()
        self.fb_begin = self.foreign_bpf()
        self.busy_begin = self.busy_ns()
        self.bench_begin = self.bench_ns()

    def foreign_line(self):
        wall = time.time() - self.t_begin
        busy, steal = self.busy_ns()
        other = (busy - self.busy_begin[0]) - (self.bench_ns() - self.bench_begin)
        cores = max(0.0, other / 1e9 / wall)
        st = (steal - self.busy_begin[1]) / 1e9 / wall
        warn = " **(busy machine: figures are less reliable)**" if cores > 0.15 else ""
        fb = {**self.fb_begin, **self.foreign_bpf()}
        if fb:
            warn += (" **Other processes had BPF programs on tracepoints too ("
                     + ", ".join(f"{c} [{p}]" for p, c in fb.items()) + "): their cost is in every column.**")
        return (f"\nThis part took {wall:.0f} s; processes outside the benchmark used "
                f"{cores:.2f} cores on average meanwhile (host steal {st:.2f} cores){warn}.\n")

    def report(self, part, body):
        body = body.rstrip() + "\n" + self.foreign_line()
        text = self.header(part) + "\n" + body.rstrip() + "\n"
        print(text, flush=True)
        if self.doc:
            new = not os.path.exists(self.doc)
            os.makedirs(os.path.dirname(os.path.abspath(self.doc)), exist_ok=True)
            with open(self.doc, "a") as f:
                if new:
                    f.write("# Performance\n\n## Run log\n\n"
                            "Appended by `make bench*` (bench/bench.py), newest last.\n\n")
                f.write(text + "\n")

    # ---- running loads
    def run_load(self, argv, cg, cpus=None, timeout=300):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=preexec(cg, cpus))
        if r.returncode not in (0, 3):
            raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
        kv = dict(re.findall(r"(\w+)=([\d.]+)", r.stdout))
        return {k: float(v) for k, v in kv.items()}

    def httpload(self, cg, port, count, rate=0, conns=32, max_s=60, path="/x.txt"):
        argv = [self.tool("httpload"), "-p", str(port), "-n", str(int(count)), "-c", str(conns),
                "-u", path, "-t", str(max_s)]
        if rate:
            argv += ["-r", str(rate)]
        return self.run_load(argv, cg, timeout=max_s + 30)


# --------------------------------------------------------------------------
# part 1: added ns per traced syscall

SYSCALL_LOADS = [
    # key, label, argv tail, default count
    ("tcp64", "TCP 64 B request/response", ["tcp", "64"], 60_000),
    ("tcp4k", "TCP 4 KB request/response", ["tcp", "4096"], 30_000),
    ("http64", "HTTP/1.1 64 B request/response", ["http", "64"], 60_000),
    ("null", "write 64 B to /dev/null", ["null"], 2_000_000),
    ("getppid", "getppid (no hook on it)", ["getppid"], 1_000_000),
]


def part_syscall(h):
    scale = h.a.scale
    loads = [(k, lbl, tail, max(1000, int(n * scale))) for k, lbl, tail, n in SYSCALL_LOADS]
    configs = ["off", "floor", "sonde-metrics", "sonde"]
    na = {c: h.config_na(c) for c in configs}
    run_cfgs = [c for c in configs if not na[c]]
    load_cg, agent_cg = h.cg("load"), h.cg("agent")
    ns = {c: {k: [] for k, *_ in loads} for c in run_cfgs}        # ns/syscall in the load
    agent_ns = {c: {k: [] for k, *_ in loads} for c in run_cfgs}  # agent's own ns/syscall
    syscalls = {k: 0 for k, *_ in loads}
    agent_stats = {c: [] for c in run_cfgs}

    log(f"syscall: {h.rounds} rounds of {run_cfgs}; loads " +
        ", ".join(f"{k}×{n}" for k, _, _, n in loads))
    for r in range(h.rounds):
        for c in h.order(run_cfgs, r):
            ag = h.agent(c, pinned=True).start()
            time.sleep(0.2)
            for k, lbl, tail, n in loads:
                a0 = agent_cg.cpu_ns()
                res = h.run_load([h.tool("syscall_load"), "--cpu", load_cg.cpu_file] + tail + [str(n)],
                                 load_cg, h.load_cpus)
                a1 = agent_cg.cpu_ns()
                syscalls[k] = int(res["syscalls"])
                ns[c][k].append(res["cpu_ns"] / res["syscalls"])
                agent_ns[c][k].append((a1 - a0) / res["syscalls"])
            ag.stop()
            if c.startswith("sonde"):
                agent_stats[c].append(ag.stats)
        log(f"syscall: round {r + 1}/{h.rounds} done")

    def added(c, k):
        return [x - o for x, o in zip(ns[c][k], ns["off"][k])]

    def col(c, k, what="added"):
        if na.get(c):
            return na[c]
        return fmt_spread(added(c, k), 0, sign=True)

    def floor_noisy(k):
        q1, m, q3 = quartiles(added("floor", k))
        return m <= 0 or q1 <= 0

    def ratio(c, k):
        if na.get(c) or na.get("floor"):
            return na.get(c) or na.get("floor")
        if floor_noisy(k):
            return "n/m (floor within noise)"
        if med(added(c, k)) <= 0:
            return "n/m (within noise)"
        return f"{med(added(c, k)) / med(added('floor', k)):.2f}"

    rows = []
    for k, lbl, tail, n in loads:
        unit = "pairs" if tail[0] in ("tcp", "http") else "calls"
        rows.append([f"{lbl}, {n:,} {unit}", f"{syscalls[k]:,}",
                     fmt_spread(ns["off"][k], 0),
                     col("floor", k), col("sonde-metrics", k), col("sonde", k),
                     ratio("sonde-metrics", k), ratio("sonde", k),
                     na["sonde"] or fmt_spread(agent_ns["sonde"][k], 0)])
    body = [md_table(
        ["load (fixed count)", "syscalls per run", "off: ns per syscall",
         "floor: added ns", "sonde metrics-only: added ns", "sonde full logs: added ns",
         "metrics ÷ floor", "full ÷ floor", "sonde process: own ns per syscall"], rows)]
    body.append(
        f"\nns of CPU per syscall of the loaded processes (cgroup CPU time over the timed loop, "
        f"client and server together, pinned to one CPU; agents on another); \"added\" is the "
        f"per-round difference from the \"off\" run of the same round; median [IQR] over "
        f"{h.rounds} interleaved rounds. The last column is the agent process's own CPU "
        f"(its cgroup) over the same loops per syscall, which the floor does not have. "
        f"sonde ran `sonde run --quiet` (records consumed, not printed).")
    if not na["floor"] and not floor_noisy("null"):
        fl = med(added("floor", "null"))
        parts = []
        for c in ("sonde-metrics", "sonde"):
            if na[c]:
                continue
            parts.append(f"{'metrics-only' if c == 'sonde-metrics' else 'full logs'} "
                         + ", ".join(f"{k} {med(added(c, k)) / fl:.1f}×" if med(added(c, k)) > 0
                                     else f"{k} n/m" for k, *_ in loads if k != "getppid"))
        body.append(f"\nThe floor costs the same pair of empty programs on every traced syscall; it is "
                    f"measured most precisely on the /dev/null loop ({fl:.0f} ns per syscall). Against "
                    f"that floor: " + ("; ".join(parts) or "sonde n/a") + ".")
    http_pairs = [n for k, _, _, n in loads if k == "http64"][0]
    for c in ("sonde", "sonde-metrics"):
        if agent_stats.get(c):
            sent = [s.get("events_sent", 0) for s in agent_stats[c]]
            drop = [s.get("events_dropped", 0) for s in agent_stats[c]]
            body.append(f"\n{c}: records sent per round (all loads) median {med(sent):,.0f} "
                        f"(the HTTP load alone should give {2 * http_pairs:,}: one per pair on each "
                        f"side; the other loads none), dropped max {max(drop):,}.")
    body.append(hooks_line(h))
    if not na["sonde"] and not h.a.no_profile:
        body.append(syscall_profile(h, loads))
    h.report("syscall", "\n".join(body))


def hooks_line(h):
    """the floor's attached hooks against the ones sonde attached"""
    fl = h.agent("floor").start()
    floor_tps = attached_tracepoints(fl.pid)
    fl.stop()
    if not h.have_sonde():
        return f"\nFloor hooks ({len(floor_tps)}): {', '.join(floor_tps)}; sonde not built to compare."
    so = h.agent("sonde").start()
    sonde_tps = attached_tracepoints(so.pid)
    so.stop()
    if set(floor_tps) == set(sonde_tps):
        return f"\nHooks: the floor attached the same {len(floor_tps)} tracepoints as sonde."
    return (f"\nHooks DIFFER: only floor: {sorted(set(floor_tps) - set(sonde_tps))}; "
            f"only sonde: {sorted(set(sonde_tps) - set(floor_tps))}.")


def syscall_profile(h, loads):
    """per-program run time per call from kernel.bpf_stats_enabled, one run per load"""
    keep = [l for l in loads if l[0] in ("tcp64", "http64", "null")]
    per = {}  # prog -> {load: (ns per call, calls per syscall)}
    names = {}
    load_cg = h.cg("load")
    with BpfStats():
        for kind in ("floor", "sonde"):
            ag = h.agent(kind, pinned=True).start()
            time.sleep(0.2)
            for k, lbl, tail, n in keep:
                n = max(1000, n // 4)
                before = bpf_fdinfo(ag.pid)["progs"]
                res = h.run_load([h.tool("syscall_load"), "--cpu", load_cg.cpu_file] + tail + [str(n)],
                                 load_cg, h.load_cpus)
                after = bpf_fdinfo(ag.pid)["progs"]
                if not names.get(kind):
                    names[kind] = prog_names(after.keys())
                for pid_, (t1, c1) in after.items():
                    t0, c0 = before.get(pid_, (0, 0))
                    if c1 - c0 <= 0:
                        continue
                    name = f"{kind}: {names[kind].get(pid_, pid_)}"
                    per.setdefault(name, {})[k] = ((t1 - t0) / (c1 - c0), (c1 - c0) / res["syscalls"])
            ag.stop()
    perf_txt = perf_profile(h, [l for l in loads if l[0] == "http64"][0])
    rows = []
    for name in sorted(per, key=lambda p: (not p.startswith("sonde"), -max(v[0] * v[1] for v in per[p].values()))):
        rows.append([name] + [
            (f"{per[name][k][0]:.0f} ns × {per[name][k][1]:.2f}" if k in per[name] else "–")
            for k, *_ in keep])
    return ("\n\nWhere the time goes (kernel.bpf_stats_enabled=1, one run per load at a quarter "
            "of the count; run_time_ns/run_cnt per program, × calls per syscall of the load; "
            "bpf_stats adds its own ~20-40 ns per call, so these are not the figures above):\n\n"
            + md_table(["program"] + [lbl for _, lbl, *_ in keep], rows) + perf_txt)


def perf_profile(h, load, top=20):
    """perf record (cpu-clock) of the load processes under sonde: where the time goes"""
    if not shutil.which("perf"):
        return ""
    k, lbl, tail, n = load
    n = max(1000, n // 4)
    data = os.path.join(h.out, "perf.data")
    ag = h.agent("sonde", pinned=True).start()
    time.sleep(0.2)
    try:
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-o", data, "--",
                        h.tool("syscall_load")] + tail + [str(n)],
                       capture_output=True, timeout=120, preexec_fn=preexec(h.cg("load"), h.load_cpus))
    finally:
        ag.stop()
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "sym", "--no-children", "-q"],
                       capture_output=True, text=True, timeout=120)
    lines = [l.rstrip() for l in r.stdout.splitlines() if l.strip()][:top]
    bpf = 0.0
    for l in r.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%.*bpf_prog_", l)
        if m:
            bpf += float(m.group(1))
    return (f"\n\n`perf record -e cpu-clock` of the {lbl} load under sonde ({n:,} pairs): "
            f"JIT-ed BPF programs (bpf_prog_*) hold {bpf:.1f}% of the samples; top {top} symbols:\n\n"
            "```\n" + "\n".join(lines) + "\n```")


# --------------------------------------------------------------------------
# part 2: nginx served to wrk

def wrk(h, url, secs, cg):
    r = subprocess.run(["wrk", "-t1", "-c32", f"-d{secs}s", url], capture_output=True, text=True,
                       timeout=secs + 30, preexec_fn=preexec(cg))
    m = re.search(r"Requests/sec:\s*([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError("wrk: " + r.stdout + r.stderr)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    return float(m.group(1)), int(errs.group(1)) if errs else 0


def part_nginx(h):
    configs = ["off", "sonde-metrics", "sonde", "copycat", "tshark"]
    labels = {"off": "off", "sonde-metrics": "sonde metrics-only", "sonde": "sonde full logs",
              "copycat": "payload copier (copycat, 256 B/syscall)", "tshark": "tshark -Y http on lo"}
    na = {c: h.config_na(c) for c in configs}
    run_cfgs = [c for c in configs if not na[c]]
    secs = h.a.wrk_secs
    count = int(h.a.nginx_count)
    rate = h.a.nginx_rate
    ngx = Nginx(h).start()
    client_cg, agent_cg = h.cg("client"), h.cg("agent")
    rps = {c: [] for c in run_cfgs}
    cpu = {c: {"nginx": [], "agent": [], "client": []} for c in run_cfgs}
    stats = {c: [] for c in run_cfgs}
    log(f"nginx: {h.rounds} rounds of {run_cfgs}: wrk -t1 -c32 -d{secs}s; {count} requests at {rate}/s")
    try:
        # warm up nginx (first requests open files, fault pages)
        h.httpload(client_cg, ngx.port, 5000, conns=32)
        for r in range(h.rounds):
            for c in h.order(run_cfgs, r):
                ag = h.agent(c, extra=[str(ngx.port)] if c == "tshark" else None).start()
                time.sleep(0.3)
                # (b) fixed count at a fixed rate: CPU per request, agent drain included
                n0, a0, c0 = ngx.cg.cpu_ns(), agent_cg.cpu_ns(), client_cg.cpu_ns()
                res = h.httpload(client_cg, ngx.port, count, rate=rate, conns=32)
                if c != "off":
                    settle(agent_cg)
                n1, a1, c1 = ngx.cg.cpu_ns(), agent_cg.cpu_ns(), client_cg.cpu_ns()
                done = res["completed"]
                cpu[c]["nginx"].append((n1 - n0) / done)
                cpu[c]["agent"].append((a1 - a0) / done)
                cpu[c]["client"].append((c1 - c0) / done)
                # (a) saturation
                rps[c].append(wrk(h, ngx.url, secs, client_cg)[0])
                ag.stop()
                stats[c].append(ag.stats)
            log(f"nginx: round {r + 1}/{h.rounds} done")
    finally:
        ngx.stop()

    def ratio_rps(c):
        if na[c]:
            return na[c]
        rr = [x / o for x, o in zip(rps[c], rps["off"])]
        return fmt_spread(rr, 3)

    def cpu_us(c, who):
        if na[c]:
            return na[c]
        return fmt_spread([x / 1000 for x in cpu[c][who]], 1)

    def total(c, r):
        return cpu[c]["nginx"][r] + cpu[c]["agent"][r] + cpu[c]["client"][r]

    def cpu_ratio(c, whos):
        if na[c]:
            return na[c]
        rr = [sum(cpu[c][w][r] for w in whos) / sum(cpu["off"][w][r] for w in whos)
              for r in range(len(cpu[c]["nginx"]))]
        return fmt_spread(rr, 2)

    # where sonde's time goes per request (bpf_stats on only for this extra pass)
    prof = ""
    if not na["sonde"] and not h.a.no_profile:
        ngx = Nginx(h).start()
        try:
            h.httpload(client_cg, ngx.port, 2000)
            with BpfStats():
                ag = h.agent("sonde").start()
                time.sleep(0.3)
                costs, res = prog_costs(ag.pid, lambda: h.httpload(client_cg, ngx.port, count, rate=rate))
                ag.stop()
        finally:
            ngx.stop()
        done = res["completed"]
        prow = []
        tot = 0.0
        for name, (t, cnt) in sorted(costs.items(), key=lambda kv: -kv[1][0]):
            tot += t / done
            prow.append([name, f"{cnt / done:.2f}", f"{t / cnt:.0f}", f"{t / done / 1000:.2f}"])
        prow.append(["**all programs**", "", "", f"**{tot / 1000:.2f}**"])
        prof = ("\n\nWhere sonde's kernel time goes per request (a separate pass with "
                f"kernel.bpf_stats_enabled=1, {count:,} requests at {rate:,}/s, both ends traced; "
                "tail-called parsers count inside their entry program; bpf_stats itself adds a few "
                "tens of ns per call):\n\n"
                + md_table(["program", "calls per request", "ns per call", "µs per request"], prow))

    rows = []
    for c in configs:
        rows.append([labels[c], fmt_spread(rps[c], 0) if not na[c] else na[c], ratio_rps(c),
                     cpu_us(c, "nginx"), cpu_us(c, "client"), cpu_us(c, "agent"),
                     cpu_ratio(c, ["nginx"]), cpu_ratio(c, ["nginx", "client", "agent"])])
    body = [md_table(["configuration", "wrk req/s at saturation", "req/s ÷ off",
                      "nginx µs CPU/req", "client µs CPU/req", "agent µs CPU/req",
                      "nginx CPU ÷ off", "all CPU ÷ off"], rows)]
    body.append(
        f"\nnginx-light, 1 worker, access_log off, sendfile off, a {ngx.body} B static file, "
        f"loopback. Saturation: `wrk -t1 -c32 -d{secs}s`. CPU per request: {count:,} requests at "
        f"{rate:,}/s over 32 keep-alive connections (bench/httpload.c), CPU of each cgroup "
        f"(nginx, client, agent; the agent's includes draining what it had queued) divided by the "
        f"count. Both ends are traced: the client runs on the same host. median [IQR] over "
        f"{h.rounds} interleaved rounds; ratios are per round against that round's off run.")
    notes = []
    for c in run_cfgs:
        if c == "off" or not stats[c]:
            continue
        s = stats[c]
        if c.startswith("sonde"):
            notes.append(f"{labels[c]}: records sent per round median {med([x.get('events_sent', 0) for x in s]):,.0f}, "
                         f"dropped max {max(x.get('events_dropped', 0) for x in s):,}")
        elif c == "copycat":
            notes.append(f"copycat: payload events per round median {med([x.get('events', 0) for x in s]):,.0f}, "
                         f"lost max {max(x.get('lost', 0) for x in s):,}, HTTP pairs median "
                         f"{med([x.get('paired', 0) for x in s]):,.0f}")
        elif c == "tshark" and any("captured" in x for x in s):
            notes.append(f"tshark: packets captured per round median {med([x.get('captured', 0) for x in s]):,.0f}, "
                         f"dropped max {max([x.get('dropped', 0) for x in s] or [0]):,}")
    if notes:
        body.append("\n" + ";  \n".join(notes) + ".")
    body.append(prof)
    h.report("nginx", "\n".join(body))


# --------------------------------------------------------------------------
# part 3: highest transaction rate with zero drops

def part_drops(h):
    if h.config_na("sonde"):
        h.report("drops", f"sonde: {NA_NOT_BUILT}")
        return
    secs = h.a.drops_secs
    budget = h.a.drops_budget
    conns = 64
    srv = TinyHttpd(h).start()
    client_cg, agent_cg = h.cg("client"), h.cg("agent")
    probes = []

    def probe(rate):
        ag = h.agent("sonde").start()
        time.sleep(0.2)
        # unlimited: run for secs; paced: the count that takes secs, with some slack
        count = int(rate * secs) if rate else 100_000_000
        a0 = agent_cg.cpu_ns()
        res = h.httpload(client_cg, srv.port, count, rate=rate, conns=conns, path="/",
                         max_s=secs * 1.5 if rate else secs)
        ag.stop()
        a1 = agent_cg.cpu_ns()
        st = ag.stats
        p = {"target": rate, "achieved": res["rate"], "completed": res["completed"],
             "sent": st.get("events_sent"), "dropped": st.get("events_dropped"),
             "agent_cores": (a1 - a0) / 1e9 / (res["elapsed_ns"] / 1e9),
             "ok_rate": (rate == 0) or res["rate"] >= 0.97 * rate,
             "stats": st}
        probes.append(p)
        log(f"drops: target {rate or 'max'}/s achieved {res['rate']:.0f}/s dropped {p['dropped']}")
        return p

    t0 = time.time()
    try:
        h.httpload(client_cg, srv.port, 5000, conns=conns, path="/")
        top = probe(0)  # as fast as the machine goes, with sonde on
        if top["dropped"] is None:
            raise RuntimeError("sonde printed no stats line with events_dropped")
        best, worst = None, None
        if top["dropped"] == 0:
            best = top
        else:
            lo, hi = 0.0, top["achieved"]
            while time.time() - t0 < budget and hi - lo > max(500, 0.03 * hi):
                mid = (lo + hi) / 2
                p = probe(round(mid))
                if p["dropped"] == 0 and p["ok_rate"]:
                    lo, best = mid, p
                else:
                    hi = mid
                    if p["dropped"]:
                        worst = p
        twice = None
        if best and best["target"]:
            t2 = best["target"] * 2
            twice = probe(t2) if t2 <= top["achieved"] * 1.02 else probe(0)
    finally:
        srv.stop()

    rows = []
    for p in probes:
        rows.append([f"{p['target']:,}/s" if p["target"] else "unlimited (saturation)",
                     f"{p['achieved']:,.0f}/s", f"{p['completed']:,.0f}",
                     f"{p['sent']:,}" if p["sent"] is not None else "?",
                     f"{p['dropped']:,}" if p["dropped"] is not None else "?",
                     f"{p['agent_cores']:.3f}"])
    body = [md_table(["target rate", "achieved", "transactions", "records sent", "records dropped",
                      "sonde cores"], rows)]
    if best is top:
        line = (f"**No drops even at saturation**: {top['achieved']:,.0f} transactions/s with zero drops "
                f"is the most this 2-core machine sustains with the server, the load generator and sonde "
                f"sharing it; twice that rate cannot be generated here")
        if twice:
            line += f" (a second saturated run dropped {twice['dropped']:,})"
        body.append("\n" + line + ".")
    elif best:
        body.append(f"\n**Highest sustained rate with zero drops: {best['achieved']:,.0f} transactions/s** "
                    f"(binary search, {secs} s per probe, time budget {budget} s).")
        if twice:
            how = f"at {twice['target']:,}/s" if twice["target"] else "at saturation (twice the rate is beyond it)"
            body.append(f"Drops {how}: **{twice['dropped']:,}** of {twice['sent'] + twice['dropped']:,} records.")
    else:
        body.append("\n**Drops at every rate tried** (lowest probe above).")
    body.append(f"\nServer: bench/tinyhttpd.c (one thread, epoll, a {srv.body} B body; about twice "
                f"nginx's rate here, so the event rate goes higher); load: bench/httpload.c, {conns} "
                f"keep-alive connections, the "
                f"target rate paced per request, {secs} s per probe; a probe counts as sustained when "
                f"it completes ≥ 97% of the target rate. A fresh `sonde run --quiet` per probe; "
                f"events_dropped is from its stats line. Each transaction is seen by both ends "
                f"(client and nginx), so up to 2 records per transaction.")
    h.report("drops", "\n".join(body))


# --------------------------------------------------------------------------
# part 4: agent CPU per 10k req/s and memory per tracked socket

def agent_memory(pid):
    st = proc_status(pid)
    info = bpf_fdinfo(pid)
    rss = int(st.get("VmRSS", "0 kB").split()[0]) * 1024
    hwm = int(st.get("VmHWM", "0 kB").split()[0]) * 1024
    return rss, hwm, sum(info["maps"].values()), info["maps"]


def hash_map_fill(map_ids):
    """'name entries/max' for every hash-type map among map_ids"""
    out = []
    for m in map_details(map_ids).values():
        if "hash" not in str(m.get("type", "")) or "percpu" in str(m.get("type", "")):
            continue
        n = map_entries(m["id"], m.get("bytes_key", 8))
        if n is not None:
            out.append(f"{m.get('name')} {n:,}/{m.get('max_entries', 0):,}")
    return ", ".join(out) or "–"


def part_agent(h):
    body = []
    # (1) the agent process's own CPU per 10k req/s (no baseline needed: it is
    # the agent's cgroup alone; what its BPF programs add to the traced
    # processes is bench-nginx's and bench-syscall's business)
    configs = ["sonde-metrics", "sonde"]
    labels = {"sonde": "sonde full logs", "sonde-metrics": "sonde metrics-only"}
    na = {c: h.config_na(c) for c in configs}
    run_cfgs = [c for c in configs if not na[c]]
    rates = [10_000, 20_000]
    secs = h.a.agent_secs
    rounds = max(2, h.rounds // 5)
    ngx = Nginx(h).start()
    client_cg, agent_cg = h.cg("client"), h.cg("agent")
    cores = {c: {r: [] for r in rates} for c in run_cfgs}
    try:
        h.httpload(client_cg, ngx.port, 5000)
        for rd in range(rounds):
            for c in h.order(run_cfgs, rd):
                ag = h.agent(c).start()
                time.sleep(0.3)
                for rate in h.order(rates, rd):
                    a0 = agent_cg.cpu_ns()
                    res = h.httpload(client_cg, ngx.port, rate * secs, rate=rate)
                    settle(agent_cg, limit=3)
                    a1 = agent_cg.cpu_ns()
                    wall = res["elapsed_ns"] / 1e9
                    cores[c][rate].append((a1 - a0) / 1e9 / wall * 10_000 / res["rate"])
                ag.stop()
            log(f"agent: CPU round {rd + 1}/{rounds} done")
    finally:
        ngx.stop()
    rows = []
    for c in configs:
        rows.append([labels[c]] + [na[c] or fmt_spread(cores[c][r], 4) for r in rates])
    body.append(md_table(["configuration"] + [f"sonde cores per 10k req/s, at {r // 1000}k req/s"
                                              for r in rates], rows))
    body.append(f"\nThe agent's own CPU (its cgroup: user and kernel time of the sonde process, "
                f"draining included) while nginx (as in bench-nginx) serves bench/httpload.c at a "
                f"fixed rate for {secs} s ({', '.join(f'{r * secs:,}' for r in rates)} requests; "
                f"both ends traced, 2 records per request), scaled to 10k req/s. BPF programs run in "
                f"the traced processes and are not in this figure (see bench-nginx and "
                f"bench-syscall). median [IQR] over {rounds} rounds.")

    # (2) resident memory at idle, 10k and 50k tracked connections
    if na["sonde"]:
        body.append(f"\nMemory: sonde {na['sonde']}.")
        h.report("agent", "\n".join(body))
        return
    hold_cg = h.cg("sockhold")
    rows = []
    ag = h.agent("sonde").start()
    maps_detail = {}
    try:
        time.sleep(1.0)
        rss, hwm, maps, ids = agent_memory(ag.pid)
        rows.append(["idle", "0", hash_map_fill(ids), f"{rss / 2**20:.1f}", f"{hwm / 2**20:.1f}",
                     f"{maps / 2**20:.1f}", f"{(rss + maps) / 2**20:.1f}"])
        for n in (10_000, 50_000):
            t0 = time.time()
            p = subprocess.Popen([h.tool("sockhold"), str(n), str(SOCKHOLD_PORT)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, preexec_fn=preexec(hold_cg))
            line = ""
            while True:
                line = p.stderr.readline()
                if not line or line.startswith("ready"):
                    break
            if not line.startswith("ready"):
                raise RuntimeError(f"sockhold {n} failed: {line}{p.stderr.read()}")
            setup = time.time() - t0
            time.sleep(1.5)
            rss, hwm, maps, ids = agent_memory(ag.pid)
            maps_detail = ids
            rows.append([f"{n:,} connections open", f"{2 * n:,} (both ends traced)",
                         hash_map_fill(ids), f"{rss / 2**20:.1f}", f"{hwm / 2**20:.1f}", f"{maps / 2**20:.1f}",
                         f"{(rss + maps) / 2**20:.1f}"])
            p.send_signal(signal.SIGTERM)
            p.wait(60)
            hold_cg.kill_all()
            log(f"agent: {n} connections set up in {setup:.1f}s")
            time.sleep(1.0)
    finally:
        ag.stop()
        hold_cg.kill_all()
    body.append("\n" + md_table(["state", "sockets", "map entries (hash maps: used/max)", "VmRSS MiB", "VmHWM MiB", "BPF maps memlock MiB",
                                 "RSS + maps MiB"], rows))
    big = sorted(map_details(maps_detail.keys()).values(), key=lambda m: -m.get("bytes_memlock", 0))[:6]
    if big:
        body.append("\nLargest sonde maps: " + ", ".join(
            f"{m.get('name')} ({m.get('type')}, {m.get('max_entries') or 0:,} entries, "
            f"{(m.get('bytes_memlock') or 0) / 2**20:.1f} MiB)" for m in big) + ".")
    body.append(f"\nbench/sockhold.c opens the connections over loopback (1 byte each way on each), "
                f"split over processes of ≤15k files (RLIMIT_NOFILE hard limit here); sonde "
                f"(`sonde run --quiet`) ran throughout; VmRSS read 1.5 s after the last connection was up.")
    h.report("agent", "\n".join(body))


# --------------------------------------------------------------------------
# part 5: consumer wakeups per event

def part_wakeups(h):
    configs = ["sonde", "sonde-perfbuf"]
    labels = {"sonde": "sonde (ring buffer)", "sonde-perfbuf": "sonde --force-perfbuf"}
    na = {c: h.config_na(c) for c in configs}
    if na["sonde"]:
        h.report("wakeups", f"sonde: {na['sonde']}")
        return
    run_cfgs = [c for c in configs if not na[c]]
    rates = [1_000, 10_000]
    secs = h.a.wakeup_secs
    rounds = max(1, h.rounds // 10)
    srv = Nginx(h).start()
    client_cg = h.cg("client")
    res = {c: {r: [] for r in rates} for c in run_cfgs}
    idle = {c: [] for c in run_cfgs}
    try:
        h.httpload(client_cg, srv.port, 5000)
        for rd in range(rounds):
            for c in h.order(run_cfgs, rd):
                for rate in h.order(rates, rd):
                    ag = h.agent(c).start()
                    time.sleep(0.5)
                    v0, _ = ctx_switches(ag.pid)
                    time.sleep(1.0)  # idle window: the flush timer alone
                    v1, _ = ctx_switches(ag.pid)
                    t1 = time.time()
                    h.httpload(client_cg, srv.port, rate * secs, rate=rate)
                    time.sleep(0.3)  # the bounded flush interval
                    v2, i2 = ctx_switches(ag.pid)
                    wall = time.time() - t1
                    ag.stop()
                    idle[c].append(v1 - v0)
                    res[c][rate].append({"vol": v2 - v1, "events": ag.stats.get("events_sent", 0),
                                         "wall": wall})
            log(f"wakeups: round {rd + 1}/{rounds} done")
    finally:
        srv.stop()
    rows = []
    for c in run_cfgs:
        idle_rate = med(idle[c])
        rows.append([labels[c], "idle", "0", f"{idle_rate:.1f}/s", "–", "–"])
        for rate in rates:
            xs = res[c][rate]
            per = [x["vol"] / x["events"] for x in xs if x["events"]]
            net = [max(0.0, x["vol"] - idle_rate * x["wall"]) / x["events"] for x in xs if x["events"]]
            rows.append(["", f"{rate:,} req/s", f"{med([x['events'] for x in xs]):,.0f}",
                         f"{med([x['vol'] / x['wall'] for x in xs]):.1f}/s",
                         fmt_spread(per, 4), fmt_spread(net, 4)])
    for c in configs:
        if na[c]:
            rows.append([labels[c], na[c], "", "", "", ""])
    body = [md_table(["consumer", "load", "records delivered", "wakeups (voluntary context switches)",
                      "wakeups per record", "per record, idle rate subtracted"], rows)]
    body.append(f"\nWakeups are sonde's voluntary context switches summed over its threads "
                f"(/proc/PID/task/*/status): 1 s idle, then {secs} s of nginx load at a fixed rate "
                f"(bench/httpload.c; both ends traced, so 2 records per request) plus 0.3 s for the "
                f"bounded flush; records are its stats line's events_sent. A fresh sonde per "
                f"measurement; median [IQR] over {rounds} round(s).")
    h.report("wakeups", "\n".join(body))


# --------------------------------------------------------------------------

def part_hooks(h):
    print(hooks_line(h).strip())


PARTS = {"syscall": part_syscall, "nginx": part_nginx, "drops": part_drops,
         "agent": part_agent, "wakeups": part_wakeups, "hooks": part_hooks}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=list(PARTS) + ["all"])
    ap.add_argument("--out", default=".output/bench", help="where the bench tools were built")
    ap.add_argument("--sonde", default=".output/sonde")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--doc", default="docs/PERFORMANCE.md", help="append the tables here ('' = don't)")
    ap.add_argument("--cmd", default=None, help="the command to record in the doc")
    ap.add_argument("--scale", type=float, default=1.0, help="bench-syscall counts × this")
    ap.add_argument("--no-profile", action="store_true", help="skip the bpf_stats profile")
    ap.add_argument("--wrk-secs", type=int, default=2)
    ap.add_argument("--nginx-count", type=int, default=10_000)
    ap.add_argument("--nginx-rate", type=int, default=10_000)
    ap.add_argument("--drops-secs", type=int, default=3)
    ap.add_argument("--drops-budget", type=int, default=75)
    ap.add_argument("--agent-secs", type=int, default=2)
    ap.add_argument("--wakeup-secs", type=int, default=2)
    ap.add_argument("--sonde-warmup", type=float, default=1.6,
                    help="seconds after sonde says ready before measuring (start-up work)")
    ap.add_argument("--wait-quiet", type=int, default=10,
                    help="before each part, wait up to this many s for other processes to go idle")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (BPF programs, cgroups); run it with sudo")
    if args.rounds < 1:
        sys.exit("bench: --rounds must be at least 1")
    h = Harness(args)
    h.cg("harness").enter()  # so its own CPU is not counted as another process's

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    t0 = time.time()
    try:
        parts = ["syscall", "nginx", "drops", "agent", "wakeups"] if args.part == "all" else [args.part]
        for p in parts:
            t = time.time()
            h.part_begin()
            PARTS[p](h)
            log(f"{p}: {time.time() - t:.0f} s")
    finally:
        h.cleanup()
    log(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
