#!/usr/bin/env python3
"""Flow tests (issue 5): the real sonde binary, TC and AF_PACKET taps on a real
veth pair between two network namespaces made here (sflow-a 10.77.0.1 sfa0,
sflow-b 10.77.0.2 sfb0), real TCP/UDP traffic from python sockets.

sonde runs inside sflow-b with --flow-if sfb0 --flow-mirror sfb0, so every
flow is reported twice, once per tap; the two must agree. An independent
AF_PACKET capture on sfb0 (offloads off, so a packet is a wire packet) gives
the exact packet and IP byte counts each TCP flow must have; payload bytes
are what the test sent.

Delay: this kernel has neither netem nor fq, so the RTT test routes
sflow-a's traffic to 10.77.0.2 through a TUN device whose reader (a thread
here) holds each packet for the delay, then sends it out of sfa0 on a packet
socket. Loss: nftables `numgen` drops every 7th large segment at sflow-b's
input hook, which runs after TC ingress, so sonde sees every retransmission.

Usage: run.py --sonde .output/sonde    Ends with "flows: N passed, M failed".
"""
import argparse
import collections
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

NS_A, NS_B = "sflow-a", "sflow-b"
IF_A, IF_B = "sfa0", "sfb0"
IP_A, IP_B = "10.77.0.1", "10.77.0.2"
TUN = "sfat0"
P_EXACT, P_RTT0, P_RTT1, P_LOSS, P_ZWIN, P_REFUSED, P_RST, P_UDP, P_GSO = (
    37001, 37002, 37003, 37004, 37005, 37006, 37007, 37008, 37009)
DELAY_S = 0.080
LIBC = ctypes.CDLL(None, use_errno=True)  # os.setns is python 3.12+
CLONE_NEWNET = 0x40000000


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def sh(*cmd, ns=None, check_rc=True):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check_rc and r.returncode:
        raise Failure(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


# ---- namespaces ----------------------------------------------------------------

def teardown():
    for ns in (NS_A, NS_B):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def setup():
    teardown()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", IF_A, "netns", NS_A, "type", "veth", "peer", "name", IF_B,
       "netns", NS_B)
    for ns, dev, ip in ((NS_A, IF_A, IP_A), (NS_B, IF_B, IP_B)):
        sh("ip", "addr", "add", ip + "/24", "dev", dev, ns=ns)
        sh("ip", "link", "set", dev, "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        # one skb = one wire packet, so the capture counts what the wire carries
        sh("ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", ns=ns)
        sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", f"net.ipv4.conf.{dev}.rp_filter=0",
           ns=ns)


def ns_call(ns, fn, *args):
    """Run fn in a thread that has joined network namespace ns; sockets made
    there stay in ns wherever they are used later."""
    out = {}

    def body():
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            if LIBC.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            os.close(fd)
            out["v"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["e"] = e
    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out.get("v")


def sock_in(ns, *args):
    return ns_call(ns, socket.socket, *args)


def spawn(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


# ---- independent capture ----------------------------------------------------------

class Capture:
    """AF_PACKET on sfb0 in sflow-b: per (src, sport, dst, dport) packets and IP bytes."""

    def __init__(self):
        self.s = sock_in(NS_B, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.s.bind((IF_B, 0))
        self.s.settimeout(0.2)
        self.count = collections.Counter()
        self.bytes = collections.Counter()
        self.stop = False
        self.t = spawn(self.loop)

    def loop(self):
        while not self.stop:
            try:
                frame = self.s.recv(65536)
            except socket.timeout:
                continue
            if len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            ihl = (ip[0] & 15) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            if ip[9] not in (6, 17):
                continue
            sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
            k = (socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport)
            self.count[k] += 1
            self.bytes[k] += total

    def close(self):
        self.stop = True
        self.t.join()
        self.s.close()


# ---- sonde -------------------------------------------------------------------------

class Sonde:
    def __init__(self, binary, workdir):
        self.out = os.path.join(workdir, "flows.out")
        self.err = os.path.join(workdir, "flows.err")
        cmd = ["ip", "netns", "exec", NS_B, binary, "run", "--json", "--port", "37999",
               "--metrics-listen", "127.0.0.1:37900", "--flow-if", IF_B, "--flow-mirror", IF_B,
               "--flow-timeouts", "closed=1,syn=3,udp=2", "--output",
               os.path.join(workdir, "flows.bin")]
        self.proc = subprocess.Popen(cmd, stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        deadline = time.time() + 60
        while time.time() < deadline:
            if "ready" in open(self.err).read():
                return
            if self.proc.poll() is not None:
                raise Failure("sonde exited before ready: " + open(self.err).read())
            time.sleep(0.1)
        self.proc.kill()
        raise Failure("sonde not ready after 60 s: " + open(self.err).read())

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=30)
        err = open(self.err).read()
        check(rc == 0, f"sonde exited {rc}: {err}")
        self.records = [json.loads(l) for l in open(self.out) if l.strip()]
        stats = [l for l in err.splitlines() if l.startswith("sonde: stats ")]
        check(stats, "no stats line: " + err)
        self.stats = json.loads(stats[-1][len("sonde: stats "):])
        self.flows = [r for r in self.records if r["type"] == "flow"]


def logs_for(sonde, port, tap="tc", l4="tcp"):
    return [r for r in sonde.flows if r["interval_s"] == 0 and r["dport"] == port and
            r["tap"] == tap and r["l4"] == l4]


COMPARED = ("pkts_c2s", "pkts_s2c", "bytes_c2s", "bytes_s2c", "payload_c2s", "payload_s2c",
            "retrans_c2s", "retrans_s2c", "zero_win_c2s", "zero_win_s2c", "ooo_c2s", "ooo_s2c",
            "syn_c2s", "syn_s2c", "fin_c2s", "fin_s2c", "rst_c2s", "rst_s2c", "flags_c2s",
            "flags_s2c", "close_type", "saddr", "sport", "daddr", "dport", "flow_id")


def same_in_mirror(sonde, port, l4="tcp"):
    """Every flow log of the TC tap has its twin from the mirror tap."""
    tc = sorted(logs_for(sonde, port, "tc", l4), key=lambda r: r["sport"])
    mi = sorted(logs_for(sonde, port, "mirror", l4), key=lambda r: r["sport"])
    check(len(tc) == len(mi), f"port {port}: {len(tc)} TC flow logs, {len(mi)} mirror")
    for a, b in zip(tc, mi):
        for k in COMPARED:
            check(a[k] == b[k], f"port {port} sport {a['sport']}: {k} tc={a[k]} mirror={b[k]}")
    return tc


# ---- traffic -------------------------------------------------------------------------

def listener(port, backlog=16, rcvbuf=None):
    s = sock_in(NS_B, socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((IP_B, port))
    s.listen(backlog)
    return s


def recv_exact(c, n):
    got = 0
    while got < n:
        d = c.recv(min(65536, n - got))
        if not d:
            raise Failure(f"peer closed after {got} of {n} bytes")
        got += len(d)


def client(port):
    s = sock_in(NS_A, socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(20)
    s.connect((IP_B, port))
    return s


def tcp_exchange(port, sizes):
    """For each (up, down): connect, send up bytes, the server answers down
    bytes, both close. Returns the client ports."""
    ls = listener(port)

    def serve():
        for up, down in sizes:
            c, _ = ls.accept()
            recv_exact(c, up)
            c.sendall(b"d" * down)
            c.recv(1)  # the client's FIN
            c.close()
    t = spawn(serve)
    ports = []
    for up, down in sizes:
        s = client(port)
        ports.append(s.getsockname()[1])
        s.sendall(b"u" * up)
        recv_exact(s, down)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
    t.join(20)
    ls.close()
    return ports


TCP_INFO_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info


def total_retrans(s):
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, TCP_INFO_TOTAL_RETRANS)[0]


class DelayLine:
    """sflow-a -> 10.77.0.2 through TUN; each packet waits DELAY_S, then goes out
    of sfa0 on a packet socket (this kernel has no netem or fq)."""

    def __init__(self, delay):
        self.delay = delay
        self.stop = False
        self.tun = ns_call(NS_A, self.open_tun)
        mac_b = open_mac(NS_B)
        mac_a = open_mac(NS_A)
        self.out = sock_in(NS_A, socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.out.bind((IF_A, 0))
        self.eth = mac_b + mac_a
        sh("ip", "link", "set", TUN, "up", ns=NS_A)
        sh("ip", "route", "add", IP_B + "/32", "dev", TUN, "src", IP_A, ns=NS_A)
        self.q = collections.deque()
        self.cv = threading.Condition()
        self.threads = [spawn(self.reader), spawn(self.writer)]

    @staticmethod
    def open_tun():
        fd = os.open("/dev/net/tun", os.O_RDWR)
        IFF_TUN, IFF_NO_PI, TUNSETIFF = 0x0001, 0x1000, 0x400454ca
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN.encode(), IFF_TUN | IFF_NO_PI))
        return fd

    def reader(self):
        while not self.stop:
            r, _, _ = select.select([self.tun], [], [], 0.1)
            if not r:
                continue
            pkt = os.read(self.tun, 65536)
            with self.cv:
                self.q.append((time.monotonic() + self.delay, pkt))
                self.cv.notify()

    def writer(self):
        while not self.stop:
            with self.cv:
                while not self.q and not self.stop:
                    self.cv.wait(0.1)
                if self.stop:
                    return
                due, pkt = self.q.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # the TUN also carries the device's own IPv6 chatter: label it as such
            self.out.send(self.eth + (b"\x86\xdd" if pkt[0] >> 4 == 6 else b"\x08\x00") + pkt)

    def close(self):
        sh("ip", "route", "del", IP_B + "/32", "dev", TUN, ns=NS_A, check_rc=False)
        self.stop = True
        with self.cv:
            self.cv.notify()
        for t in self.threads:
            t.join()
        os.close(self.tun)
        self.out.close()


def open_mac(ns):
    dev = IF_A if ns == NS_A else IF_B
    out = sh("ip", "-j", "link", "show", dev, ns=ns)
    return bytes.fromhex(json.loads(out)[0]["address"].replace(":", ""))


# ---- scenarios: each makes traffic, then returns a check run after sonde stops ----

def scenario_exact(cap):
    sizes = [(100, 300), (1000, 20000), (5000, 50), (64000, 64000), (1, 1)]
    ports = tcp_exchange(P_EXACT, sizes)

    def verify(sonde):
        logs = same_in_mirror(sonde, P_EXACT)
        check(len(logs) == len(sizes), f"{len(sizes)} connections made, {len(logs)} flow logs")
        by = {r["sport"]: r for r in logs}
        for (up, down), sp in zip(sizes, ports):
            r = by.get(sp)
            check(r, f"no flow log for client port {sp}")
            c2s, s2c = (IP_A, sp, IP_B, P_EXACT), (IP_B, P_EXACT, IP_A, sp)
            want = {"payload_c2s": up, "payload_s2c": down, "pkts_c2s": cap.count[c2s],
                    "pkts_s2c": cap.count[s2c], "bytes_c2s": cap.bytes[c2s],
                    "bytes_s2c": cap.bytes[s2c], "close_type": "fin", "retrans_c2s": 0,
                    "retrans_s2c": 0, "syn_c2s": 1, "syn_s2c": 1, "fin_c2s": 1, "fin_s2c": 1,
                    "rst_c2s": 0, "rst_s2c": 0, "saddr": IP_A, "daddr": IP_B,
                    "client_by": "syn"}
            for k, v in want.items():
                check(r[k] == v, f"port {sp}: {k} = {r[k]}, want {v}")
            check(r["rtt_ns"] > 0 and r["rtt_ns"] == r["rtt_client_ns"] + r["rtt_server_ns"],
                  f"port {sp}: rtt {r['rtt_ns']} client {r['rtt_client_ns']} "
                  f"server {r['rtt_server_ns']}")
            check(r["local_client"] and r["local_server"] and r["server_pid"] == os.getpid()
                  and r["client_pid"] == os.getpid(),
                  f"port {sp}: socket owners {r['client_pid']}/{r['server_pid']}, "
                  f"want {os.getpid()}")
            # the meters of the flow add up to its log
            for k in ("pkts_c2s", "pkts_s2c", "bytes_c2s", "bytes_s2c"):
                for iv in (1, 60):
                    m = sum(x[k] for x in sonde.flows if x["interval_s"] == iv and
                            x["tap"] == "tc" and x["sport"] == sp and x["dport"] == P_EXACT)
                    check(m == r[k], f"port {sp}: {iv} s meters sum {k} to {m}, log {r[k]}")
    return verify


def scenario_rtt():
    plain = tcp_exchange(P_RTT0, [(10, 10)])
    dl = DelayLine(DELAY_S)
    try:
        delayed = tcp_exchange(P_RTT1, [(10, 10)])
    finally:
        dl.close()

    def verify(sonde):
        a = [r for r in same_in_mirror(sonde, P_RTT0) if r["sport"] == plain[0]]
        b = [r for r in same_in_mirror(sonde, P_RTT1) if r["sport"] == delayed[0]]
        check(len(a) == 1 and len(b) == 1, f"flow logs: plain {len(a)}, delayed {len(b)}")
        a, b = a[0], b[0]
        added = (b["rtt_client_ns"] - a["rtt_client_ns"]) / 1e9
        print(f"  rtt: client side {a['rtt_client_ns'] / 1e6:.3f} ms plain, "
              f"{b['rtt_client_ns'] / 1e6:.3f} ms with {DELAY_S * 1e3:.0f} ms added; "
              f"kernel srtt of the client {b['srtt_client_ns'] / 1e6:.3f} ms")
        check(DELAY_S * 0.95 <= added <= DELAY_S + 0.05,
              f"handshake RTT (client side) {a['rtt_client_ns']} ns plain, "
              f"{b['rtt_client_ns']} ns with {DELAY_S * 1000:.0f} ms added")
        check(b["rtt_server_ns"] < 0.02e9, f"server side RTT {b['rtt_server_ns']} ns, no delay "
              "on that side")
        check(b["rtt_ns"] >= DELAY_S * 1e9, f"rtt_ns {b['rtt_ns']}")
    return verify


def scenario_loss():
    rules = (f"table inet sflow {{\n chain input {{\n type filter hook input priority 0;\n"
             f" tcp dport {P_LOSS} meta length > 500 numgen inc mod 7 == 0 drop\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", NS_B, "nft", "-f", "-"], input=rules, text=True,
                   check=True)
    ls = listener(P_LOSS)
    size = 400000

    def serve():
        c, _ = ls.accept()
        recv_exact(c, size)
        c.sendall(b"k")
        c.recv(1)
        c.close()
    t = spawn(serve)
    s = client(P_LOSS)
    s.sendall(b"x" * size)
    recv_exact(s, 1)
    sender_retrans = total_retrans(s)
    sport = s.getsockname()[1]
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    t.join(20)
    ls.close()
    sh("nft", "delete", "table", "inet", "sflow", ns=NS_B)

    def verify(sonde):
        r = [x for x in same_in_mirror(sonde, P_LOSS) if x["sport"] == sport]
        check(len(r) == 1, f"{len(r)} flow logs for the lossy connection")
        r = r[0]
        print(f"  loss: sonde retrans_c2s {r['retrans_c2s']}, ooo_c2s {r['ooo_c2s']}, sender "
              f"TCP_INFO total_retrans {sender_retrans}, kernel_retrans_c2s "
              f"{r['kernel_retrans_c2s']}")
        check(sender_retrans > 0, "the drop rule made no retransmission")
        check(0 < r["retrans_c2s"] <= sender_retrans and
              r["retrans_c2s"] >= sender_retrans * 0.8,
              f"sonde counted {r['retrans_c2s']} retransmissions, the sender's TCP_INFO "
              f"{sender_retrans}")
        check(r["kernel_retrans_c2s"] >= sender_retrans,
              f"kernel_retrans_c2s {r['kernel_retrans_c2s']}, TCP_INFO {sender_retrans}")
        check(r["payload_c2s"] >= size, f"payload_c2s {r['payload_c2s']} < {size}")
        check(r["close_type"] == "fin", f"close_type {r['close_type']}")
    return verify


def scenario_zero_window():
    ls = listener(P_ZWIN, rcvbuf=4096)
    go = threading.Event()
    total = [0]

    def serve():
        c, _ = ls.accept()
        go.wait(20)  # not reading: the window closes
        while c.recv(65536):
            pass
        c.close()
    t = spawn(serve)
    s = client(P_ZWIN)
    s.setblocking(False)
    deadline = time.time() + 1.5
    while time.time() < deadline:
        try:
            total[0] += s.send(b"z" * 4096)
        except BlockingIOError:
            time.sleep(0.05)
    go.set()
    s.setblocking(True)
    s.close()
    t.join(20)
    ls.close()

    def verify(sonde):
        r = same_in_mirror(sonde, P_ZWIN)
        check(len(r) == 1, f"{len(r)} flow logs")
        r = r[0]
        check(r["zero_win_s2c"] >= 1, f"zero_win_s2c {r['zero_win_s2c']}: the receiver "
              "stopped reading")
        check(r["zero_win_c2s"] == 0, f"zero_win_c2s {r['zero_win_c2s']}")
        # retransmitted bytes (a window probe carrying data, say) count again
        check(r["payload_c2s"] == total[0] or
              (r["payload_c2s"] > total[0] and r["retrans_c2s"] > 0),
              f"payload_c2s {r['payload_c2s']} (retrans {r['retrans_c2s']}), sent {total[0]}")
    return verify


def scenario_refused():
    s = client_socket()
    try:
        s.connect((IP_B, P_REFUSED))
        raise Failure("connect to a closed port succeeded")
    except ConnectionRefusedError:
        pass
    sport = s.getsockname()[1]
    s.close()

    def verify(sonde):
        r = same_in_mirror(sonde, P_REFUSED)
        check(len(r) == 1, f"{len(r)} flow logs")
        r = r[0]
        check(r["sport"] == sport and r["close_type"] == "refused" and r["pkts_c2s"] == 1 and
              r["pkts_s2c"] == 1 and r["rst_s2c"] == 1 and r["syn_s2c"] == 0,
              f"refused connection reported as {r}")
    return verify


def client_socket():
    s = sock_in(NS_A, socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    return s


def scenario_rst():
    ls = listener(P_RST)

    def serve():
        c, _ = ls.accept()
        recv_exact(c, 50)
        try:
            c.recv(1)  # the RST ends it
        except ConnectionResetError:
            pass
        c.close()
    t = spawn(serve)
    s = client(P_RST)
    s.sendall(b"r" * 50)
    time.sleep(0.1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    t.join(20)
    ls.close()

    def verify(sonde):
        r = same_in_mirror(sonde, P_RST)
        check(len(r) == 1, f"{len(r)} flow logs")
        r = r[0]
        check(r["close_type"] == "client_rst" and r["rst_c2s"] == 1 and r["fin_c2s"] == 0,
              f"abortive close reported as close_type {r['close_type']} rst_c2s {r['rst_c2s']}")
        check(r["payload_c2s"] == 50, f"payload_c2s {r['payload_c2s']}")
    return verify


def scenario_udp():
    srv = sock_in(NS_B, socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind((IP_B, P_UDP))
    sizes = [10, 200, 700, 33, 512]  # answers are twice as long: no fragments

    def serve():
        for _ in sizes:
            d, a = srv.recvfrom(2048)
            srv.sendto(d * 2, a)
    t = spawn(serve)
    c = sock_in(NS_A, socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    for n in sizes:
        c.sendto(b"q" * n, (IP_B, P_UDP))
        c.recvfrom(4096)
    sport = c.getsockname()[1]
    t.join(5)
    c.close()
    srv.close()

    def verify(sonde):
        r = same_in_mirror(sonde, P_UDP, "udp")
        check(len(r) == 1, f"{len(r)} UDP flow logs")
        r = r[0]
        want = {"sport": sport, "pkts_c2s": len(sizes), "pkts_s2c": len(sizes),
                "payload_c2s": sum(sizes), "payload_s2c": 2 * sum(sizes),
                "bytes_c2s": sum(sizes) + 28 * len(sizes),
                "bytes_s2c": 2 * sum(sizes) + 28 * len(sizes), "close_type": "idle_timeout",
                "client_by": "first"}
        for k, v in want.items():
            check(r[k] == v, f"UDP flow: {k} = {r[k]}, want {v}")
    return verify


def scenario_gso():
    """Offloads on: TSO super-packets are counted as their wire segments by both taps."""
    for ns, dev in ((NS_A, IF_A), (NS_B, IF_B)):
        sh("ethtool", "-K", dev, "tso", "on", "gso", "on", ns=ns)
    try:
        ports = tcp_exchange(P_GSO, [(2000000, 10)])
    finally:
        for ns, dev in ((NS_A, IF_A), (NS_B, IF_B)):
            sh("ethtool", "-K", dev, "tso", "off", "gso", "off", ns=ns)

    def verify(sonde):
        r = [x for x in same_in_mirror(sonde, P_GSO) if x["sport"] == ports[0]]
        check(len(r) == 1, f"{len(r)} flow logs")
        r = r[0]
        check(r["payload_c2s"] == 2000000, f"payload_c2s {r['payload_c2s']}")
        # at most 1448 payload bytes per wire segment
        check(r["pkts_c2s"] >= 2000000 // 1448, f"pkts_c2s {r['pkts_c2s']}: GSO segments "
              "not counted")
        # 20 IP + 32 TCP (with timestamps) per segment, the SYN's options 8 more
        check(r["bytes_c2s"] == r["payload_c2s"] + 52 * r["pkts_c2s"] + 8,
              f"bytes_c2s {r['bytes_c2s']} != payload + 52 x packets + 8")
    return verify


def scenario_l7_join():
    """An HTTP exchange on the socket tracer's port: its L7 records carry the
    flow_id of the flow log of the same connection."""
    ls = listener(37999)

    def serve():
        c, _ = ls.accept()
        req = b""
        while b"\r\n\r\n" not in req:
            req += c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.recv(1)
        c.close()
    t = spawn(serve)
    s = client(37999)
    s.sendall(b"GET /flow-join HTTP/1.1\r\nHost: sflow\r\n\r\n")
    resp = b""
    while not resp.endswith(b"ok"):
        resp += s.recv(4096)
    sport = s.getsockname()[1]
    s.close()
    t.join(10)
    ls.close()

    def verify(sonde):
        logs = [r for r in logs_for(sonde, 37999) if r["sport"] == sport]
        l7 = [r for r in sonde.records if r["type"] == "l7" and r["path"] == "/flow-join"]
        check(len(logs) == 1, f"{len(logs)} flow logs for the HTTP connection")
        check(len(l7) == 2, f"{len(l7)} L7 records for the request (want client and server)")
        for r in l7:
            check(r.get("flow_id") == logs[0]["flow_id"],
                  f"L7 {r['role']} flow_id {r.get('flow_id')}, flow log {logs[0]['flow_id']}")
    return verify


def check_stats(sonde):
    st = sonde.stats
    for k in ("flow_packets", "flows_created", "flows_evicted", "flow_sweeps_late",
              "flow_create_failed", "flow_truncated"):
        check(k in st, f"stats line lacks {k}")
    check(st["flows_evicted"] == 0 and st["flow_create_failed"] == 0 and
          st["flow_truncated"] == 0, f"flow losses in a small test: {st}")
    check(st["flow_logs"] == len([r for r in sonde.flows if r["interval_s"] == 0]),
          "flow_logs counter differs from the flow logs printed")


def check_bad_input(binary):
    r = subprocess.run([binary, "run", "--flow-if", "nosuch0", "--duration", "1",
                        "--metrics-listen", "off"], capture_output=True, text=True, timeout=60)
    check(r.returncode != 0 and "no interface 'nosuch0'" in r.stderr,
          f"--flow-if nosuch0: rc {r.returncode}, {r.stderr!r}")
    r = subprocess.run([binary, "run", "--flow-timeouts", "tcp=abc"], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 2 and "--flow-timeouts" in r.stderr, f"bad timeouts: {r.stderr!r}")


def check_tc_fallback(binary, workdir):
    """--flow-no-tc takes the path of a failed TC attach: sonde says so and
    counts the interface's flows from a packet socket."""
    out = os.path.join(workdir, "fallback.out")
    p = subprocess.Popen(["ip", "netns", "exec", NS_B, binary, "run", "--json",
                          "--metrics-listen", "off", "--port", "37999", "--flow-if", IF_B,
                          "--flow-timeouts", "udp=1", "--flow-meters", "off",
                          "--flow-no-tc"],
                         stdout=open(out, "w"), stderr=subprocess.PIPE, text=True)
    err = ""
    while "ready" not in err:
        line = p.stderr.readline()
        check(line, "sonde exited: " + err)
        err += line
    check("cannot attach TC to sfb0" in err and "packet socket instead" in err,
          "no fallback message: " + err)
    c = sock_in(NS_A, socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3):
        c.sendto(b"f" * 100, (IP_B, P_UDP))
    sport = c.getsockname()[1]
    c.close()
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    check(p.returncode == 0, f"sonde exited {p.returncode}")
    recs = [json.loads(l) for l in open(out) if l.strip()]
    got = [r for r in recs if r["type"] == "flow" and r["sport"] == sport]
    check(len(got) == 1 and got[0]["tap"] == "mirror" and got[0]["pkts_c2s"] == 3 and
          got[0]["payload_c2s"] == 300, f"fallback flow logs: {got}")
    q = sh("tc", "filter", "show", "dev", IF_B, "ingress", ns=NS_B)
    check("flow_tc" not in q, "TC attached despite --flow-no-tc: " + q)


def check_off_by_default(binary, workdir):
    r = subprocess.run(["ip", "netns", "exec", NS_B, binary, "run", "--duration", "1",
                        "--metrics-listen", "off", "--port", "37999"], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, f"plain sonde run: {r.stderr}")
    check("flows:" not in r.stderr and "flow_packets" not in r.stderr,
          "plain sonde run loaded the flow tracker")
    q = sh("tc", "filter", "show", "dev", IF_B, "ingress", ns=NS_B)
    check("flow_tc" not in q, "a TC filter was left on sfb0: " + q)
    q = sh("tc", "qdisc", "show", "dev", IF_B, ns=NS_B)
    check("clsact" not in q, "the clsact qdisc sonde made was left on sfb0: " + q)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("flows: needs root (network namespaces, BPF)")
        print("flows: 0 passed, 1 failed")
        return 1
    workdir = "/tmp/sonde-flows"
    os.makedirs(workdir, exist_ok=True)
    passed = failed = 0
    results = []

    def record(name, fn, *a):
        nonlocal passed, failed
        try:
            fn(*a)
            passed += 1
            print(f"PASS {name}")
        except Exception as e:
            failed += 1
            print(f"FAIL {name}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc()

    sonde = None
    try:
        setup()
        sonde = Sonde(args.sonde, workdir)
        cap = Capture()
        checks = []
        for name, fn, a in (("exact_counts", scenario_exact, (cap,)), ("rtt_delay", scenario_rtt, ()),
                            ("loss_retrans", scenario_loss, ()),
                            ("zero_window", scenario_zero_window, ()),
                            ("refused", scenario_refused, ()), ("rst_close", scenario_rst, ()),
                            ("udp", scenario_udp, ()), ("gso_mirror", scenario_gso, ()),
                            ("l7_join", scenario_l7_join, ())):
            try:
                checks.append((name, fn(*a)))
            except Exception as e:
                failed += 1
                print(f"FAIL {name} (traffic): {e}")
                traceback.print_exc()
        time.sleep(3.5)  # closed=1 and udp=2 timeouts, then a sweep
        cap.close()
        sonde.stop()
        for name, v in checks:
            record(name, v, sonde)
        record("stats", check_stats, sonde)
        # the same records come back from the record file
        dec = subprocess.run([args.sonde, "decode", os.path.join(workdir, "flows.bin")],
                             capture_output=True, text=True)
        record("decode", lambda: check(
            [json.loads(l) for l in dec.stdout.splitlines()] == sonde.records,
            "sonde decode differs from --json"))
        record("bad_input", check_bad_input, args.sonde)
        record("off_by_default", check_off_by_default, args.sonde, workdir)
        record("tc_fallback", check_tc_fallback, args.sonde, workdir)
    except Exception as e:
        failed += 1
        print(f"FAIL setup: {e}")
        traceback.print_exc()
    finally:
        if sonde and sonde.proc.poll() is None:
            sonde.proc.kill()
            sonde.proc.wait()
        teardown()
    print(f"flows: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
