#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""
Regenerate the HTTP/1 captures used by tests/unit/test_http1.c and the fuzz
seed corpus. Not run by `make test`: the captures are checked in so the unit
tests are deterministic. Run as root from the repo root:

    python3 tests/unit/captures/capture.py [OUTDIR]

It starts real servers on loopback (nginx with a config of its own in a temp
dir, `python3 -m http.server`, and a small http.server-based server for the
behaviours nginx does not produce: many-chunk bodies, 100 Continue, 103 Early
Hints, close-delimited bodies, 101 Upgrade) and records exactly the bytes each
client sent and received.

For every exchange NAME it writes
  NAME.req     every byte the client sent, raw
  NAME.resp    every byte the client received, raw
  NAME.chunks  the client's syscalls in order, one a line: "> N" (send of N
               bytes), "< N" (recv of N bytes), "EOF" (recv returned 0)
  NAME.expect  one line per transaction, from an independent Python framer:
               METHOD PATH STATUS REQ_BYTES RESP_BYTES
               (RESP_BYTES counts the final response only, not 1xx interims)
"""
import http.server
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


# ---- an independent framer: the oracle for NAME.expect -------------------

def parse_head(buf, pos):
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        return None
    head = buf[pos:end].decode("latin-1").split("\r\n")
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return head[0], hdrs, end + 4


def chunked_end(buf, pos):
    """End offset of a chunked body starting at pos, or None if incomplete."""
    while True:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return None
        size = int(buf[pos:nl].split(b";")[0].strip(), 16)
        pos = nl + 2
        if size == 0:
            while True:  # trailers up to the empty line
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    return None
                if nl == pos:
                    return nl + 2
                pos = nl + 2
        pos += size + 2
        if pos > len(buf):
            return None


def frame_requests(buf):
    out, pos = [], 0
    while pos < len(buf):
        h = parse_head(buf, pos)
        if h is None:
            break
        line, hdrs, body = h
        method, target = line.split(" ")[:2]
        if "chunked" in hdrs.get("transfer-encoding", ""):
            end = chunked_end(buf, body)
        else:
            end = body + int(hdrs.get("content-length", "0"))
        if end is None or end > len(buf):
            break
        out.append((method, target, end - pos))
        pos = end
    return out


def frame_responses(buf, methods, eof):
    """[(status, bytes)] for final responses; methods pairs FIFO for HEAD."""
    out, pos, i = [], 0, 0
    while pos < len(buf):
        h = parse_head(buf, pos)
        if h is None:
            break
        line, hdrs, body = h
        status = int(line.split(" ")[1])
        if 100 <= status < 200 and status != 101:
            pos = body
            continue
        method = methods[i] if i < len(methods) else "GET"
        if status == 101 or (method == "CONNECT" and 200 <= status < 300):
            out.append((status, body - pos))
            break
        if method == "HEAD" or status in (204, 304):
            end = body
        elif "chunked" in hdrs.get("transfer-encoding", ""):
            end = chunked_end(buf, body)
        elif "content-length" in hdrs:
            end = body + int(hdrs["content-length"])
        else:
            end = len(buf) if eof else None
        if end is None or end > len(buf):
            break
        out.append((status, end - pos))
        pos, i = end, i + 1
    return out


# ---- a client that records its own syscalls --------------------------------

class Rec:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.req = bytearray()
        self.resp = bytearray()
        self.chunks = []
        self.eof = False

    def send(self, data):
        self.s.sendall(data)
        self.req += data
        self.chunks.append("> %d" % len(data))

    def recv_once(self, timeout=5.0):
        self.s.settimeout(timeout)
        d = self.s.recv(65536)
        if not d:
            self.eof = True
            self.chunks.append("EOF")
            return False
        self.resp += d
        self.chunks.append("< %d" % len(d))
        return True

    def methods(self):
        return [m for m, _, _ in frame_requests(bytes(self.req))]

    def wait_responses(self, n):
        """Read until n final responses are complete (or EOF)."""
        while len(frame_responses(bytes(self.resp), self.methods(), self.eof)) < n:
            if self.eof or not self.recv_once():
                break

    def wait_head_bytes(self, marker):
        while marker not in self.resp:
            if not self.recv_once():
                break

    def read_to_eof(self):
        while not self.eof and self.recv_once():
            pass

    def save(self, name):
        req, resp = bytes(self.req), bytes(self.resp)
        reqs = frame_requests(req)
        resps = frame_responses(resp, [m for m, _, _ in reqs], self.eof)
        with open(os.path.join(OUT, name + ".req"), "wb") as f:
            f.write(req)
        with open(os.path.join(OUT, name + ".resp"), "wb") as f:
            f.write(resp)
        with open(os.path.join(OUT, name + ".chunks"), "w") as f:
            f.write("\n".join(self.chunks) + "\n")
        with open(os.path.join(OUT, name + ".expect"), "w") as f:
            for (m, t, rb), (st, sb) in zip(reqs, resps):
                f.write("%s %s %d %d %d\n" % (m, t, st, rb, sb))
        print("%-22s req %6d resp %7d syscalls %4d transactions %d" %
              (name, len(req), len(resp), len(self.chunks), min(len(reqs), len(resps))))
        self.s.close()


class Proxy(threading.Thread):
    """Relay one connection to upstream, recording it as the client saw it."""

    def __init__(self, upstream):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.upstream = upstream
        self.rec = None
        self.start()

    def run(self):
        c, _ = self.ls.accept()
        u = socket.create_connection(("127.0.0.1", self.upstream))
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rec = Rec.__new__(Rec)
        rec.req, rec.resp, rec.chunks, rec.eof = bytearray(), bytearray(), [], False
        open_c, open_u = True, True
        while open_c or open_u:
            r, _, _ = select.select([x for x, o in ((c, open_c), (u, open_u)) if o], [], [], 10)
            if not r:
                break
            for s in r:
                d = s.recv(65536)
                if s is c:
                    if not d:
                        open_c = False
                        u.shutdown(socket.SHUT_WR)
                        continue
                    rec.req += d
                    rec.chunks.append("> %d" % len(d))
                    u.sendall(d)
                else:
                    if not d:
                        open_u = False
                        rec.eof = True
                        rec.chunks.append("EOF")
                        c.shutdown(socket.SHUT_WR)
                        continue
                    rec.resp += d
                    rec.chunks.append("< %d" % len(d))
                    c.sendall(d)
        rec.s = c
        self.rec = rec


def via_proxy(name, upstream, argv):
    p = Proxy(upstream)
    subprocess.run([a.replace("PORT", str(p.port)) for a in argv], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.join(15)
    p.rec.save(name)


# ---- a Python server for what nginx does not send --------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sonde-capture/1"

    def log_message(self, *a):
        pass

    def body(self, status, data, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        if self.path == "/chunked":
            # many chunks of varied sizes, one with an extension, a trailer
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            out = bytearray()
            for i in range(64):
                n = (i * 37) % 300 + 1
                ext = b";name=v%d" % i if i % 16 == 5 else b""
                out += b"%x%s\r\n" % (n, ext) + bytes([97 + i % 26]) * n + b"\r\n"
                if i % 8 == 7:  # several chunks per write
                    self.wfile.write(bytes(out))
                    out.clear()
            out += b"0\r\nX-Checksum: 42\r\n\r\n"
            self.wfile.write(bytes(out))
        elif self.path == "/early":
            self.send_response_only(103)
            self.send_header("Link", "</style.css>; rel=preload; as=style")
            self.end_headers()
            time.sleep(0.05)
            self.body(200, b"<html>early hints</html>\n", "text/html")
        elif self.path == "/close":
            # HTTP/1.1 response delimited by the connection close
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(5):
                self.wfile.write(b"line %d of a close-delimited body\n" % i)
                time.sleep(0.01)
            self.close_connection = True
        elif self.path == "/ws":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            self.end_headers()
            time.sleep(0.05)
            self.wfile.write(b"\x81\x05hello\x82\x03\x00\xff\x10")
            self.close_connection = True
        elif self.path == "/nocontent":
            self.send_response(204)
            self.end_headers()
        else:
            self.body(404, b"not found\n")

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        self.body(200, b'{"received": %d}\n' % len(data), "application/json")

    do_PUT = do_POST

    def do_DELETE(self):
        self.body(200, b"deleted\n")

    def do_CONNECT(self):
        # a proxy tunnel: 200, then bytes that are not HTTP in both directions
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.request.recv(4096)
        self.wfile.write(b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00")
        self.close_connection = True

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH")
        self.end_headers()

    def do_PATCH(self):
        self.do_POST()


def req(method, path, host, extra=b"", body=b""):
    h = b"%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sonde-capture/1\r\nAccept: */*\r\n" % (
        method.encode(), path.encode(), host.encode())
    if body:
        h += b"Content-Length: %d\r\n" % len(body)
    return h + extra + b"\r\n" + body


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="sonde-capture-")
    procs = []
    try:
        www = os.path.join(tmp, "www")
        os.makedirs(os.path.join(www, "gz"))
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<!doctype html>\n<html><head><title>sonde</title></head>"
                    "<body><h1>It works</h1></body></html>\n")
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(bytes((i * 131 + 7) & 0xff for i in range(100000)))
        with open(os.path.join(www, "gz", "text.txt"), "w") as f:
            for i in range(6000):
                f.write("%d line of text that compresses, %x %d\n" % (i, i * 2654435761 & 0xffffffff, i * i))
        mtime = 1700000000
        for dp, _, fs in os.walk(www):
            for fn in fs:
                os.utime(os.path.join(dp, fn), (mtime, mtime))
        os.chmod(tmp, 0o755)
        ims = "Tue, 14 Nov 2023 22:13:20 GMT"

        nport = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
worker_processes 1;
master_process off;
daemon off;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(t)s/body;
    proxy_temp_path %(t)s/proxy;
    fastcgi_temp_path %(t)s/fastcgi;
    uwsgi_temp_path %(t)s/uwsgi;
    scgi_temp_path %(t)s/scgi;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    keepalive_requests 1000;
    server {
        listen 127.0.0.1:%(p)d;
        root %(t)s/www;
        location /gz/ { gzip on; gzip_types text/plain; gzip_min_length 1; gzip_comp_level 1; }
        location = /empty { return 204; }
        location = /created { return 201 "created\\n"; }
    }
}
""" % {"t": tmp, "p": nport})
        procs.append(subprocess.Popen(["nginx", "-c", conf, "-e", os.path.join(tmp, "error.log")]))
        wait_port(nport)

        pport = free_port()
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", pport), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()

        hport = free_port()
        hdir = os.path.join(tmp, "pyhttp")
        os.makedirs(hdir)
        with open(os.path.join(hdir, "hello.txt"), "w") as f:
            f.write("hello from python -m http.server\n")
        procs.append(subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                       str(hport)], cwd=hdir, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_port(hport)

        nh = "127.0.0.1:%d" % nport
        ph = "127.0.0.1:%d" % pport
        hh = "127.0.0.1:%d" % hport

        def one(name, port, data, n=1):
            r = Rec(port)
            r.send(data)
            r.wait_responses(n)
            r.save(name)
            return r

        # --- nginx, one exchange each
        one("nginx_get", nport, req("GET", "/index.html", nh))
        one("nginx_head", nport, req("HEAD", "/index.html", nh))
        one("nginx_304", nport, req("GET", "/index.html", nh, b"If-Modified-Since: %s\r\n" % ims.encode()))
        one("nginx_404", nport, req("GET", "/no/such/file", nh))
        one("nginx_big", nport, req("GET", "/big.bin", nh))
        one("nginx_gzip_chunked", nport, req("GET", "/gz/text.txt", nh, b"Accept-Encoding: gzip\r\n"))
        one("nginx_trace", nport, req("TRACE", "/index.html", nh))
        one("nginx_204", nport, req("GET", "/empty", nh))
        one("nginx_post", nport, req("POST", "/created", nh, b"Content-Type: application/octet-stream\r\n",
                                     bytes(range(256)) * 12))
        longpath = "/very/long/path/" + "segment-%02d/" * 12 % tuple(range(12)) + "leaf?query=" + "x" * 40
        one("nginx_longpath", nport, req("GET", longpath, nh))

        # --- nginx, pipelined: six requests in one send, depth beyond 4
        paths = ["/index.html", "/empty", "/no/such/file", "/index.html", "/created", "/index.html"]
        methods = ["GET", "GET", "GET", "HEAD", "GET", "GET"]
        one("nginx_pipeline6", nport, b"".join(req(m, p, nh) for m, p in zip(methods, paths)), 6)

        # --- nginx, keep-alive: many sequential exchanges on one connection
        r = Rec(nport)
        seq = [("GET", "/index.html", b"", b""), ("HEAD", "/index.html", b"", b""),
               ("GET", "/index.html", b"If-Modified-Since: %s\r\n" % ims.encode(), b""),
               ("GET", "/no/such/file", b"", b""), ("GET", "/empty", b"", b""),
               ("GET", "/gz/text.txt", b"Accept-Encoding: gzip\r\n", b""),
               ("POST", "/created", b"", b"a=1&b=2&c=3"), ("GET", "/big.bin", b"", b"")]
        for i in range(24):
            m, p, x, b = seq[i % len(seq)]
            r.send(req(m, p, nh, x, b))
            r.wait_responses(i + 1)
        r.save("nginx_keepalive")

        # --- the Python server
        one("py_chunked", pport, req("GET", "/chunked", ph))
        one("py_post", pport, req("POST", "/upload", ph, b"Content-Type: application/json\r\n",
                                  b'{"k": "' + b"v" * 500 + b'"}'))
        one("py_103", pport, req("GET", "/early", ph))
        one("py_204", pport, req("GET", "/nocontent", ph))
        one("py_options", pport, req("OPTIONS", "/anything", ph))
        one("py_delete", pport, req("DELETE", "/item/7", ph))
        one("py_put", pport, req("PUT", "/item/7", ph, b"", b"new value"))
        one("py_patch", pport, req("PATCH", "/item/7", ph, b"", b"patch"))
        r = Rec(pport)
        r.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        r.wait_head_bytes(b"\r\n\r\n")
        r.send(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00")
        r.read_to_eof()
        r.save("py_connect")
        r = Rec(pport)
        r.send(req("GET", "/close", ph))
        r.read_to_eof()
        r.save("py_close")
        r = Rec(pport)
        r.send(req("GET", "/ws", ph, b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     b"Sec-WebSocket-Version: 13\r\n"))
        r.read_to_eof()
        r.save("py_upgrade")

        # --- python3 -m http.server (HTTP/1.0, closes after each response)
        r = Rec(hport)
        r.send(req("GET", "/hello.txt", hh))
        r.read_to_eof()
        r.save("pyhttp_get")
        r = Rec(hport)
        r.send(req("GET", "/missing.txt", hh))
        r.read_to_eof()
        r.save("pyhttp_404")

        # --- curl through a recording proxy
        body = os.path.join(tmp, "body.bin")
        with open(body, "wb") as f:
            f.write(b"0123456789abcdef" * 128)
        via_proxy("curl_continue", pport,
                  ["curl", "-sS", "-o", "/dev/null", "-H", "Expect: 100-continue",
                   "--data-binary", "@" + body, "http://127.0.0.1:PORT/upload"])
        via_proxy("curl_get", nport, ["curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:PORT/index.html"])
        via_proxy("curl_head", nport, ["curl", "-sS", "-I", "-o", "/dev/null", "http://127.0.0.1:PORT/index.html"])
        via_proxy("curl_gzip", nport, ["curl", "-sS", "--compressed", "-o", "/dev/null",
                                       "http://127.0.0.1:PORT/gz/text.txt"])
        via_proxy("curl_big", nport, ["curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:PORT/big.bin"])
        srv.shutdown()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
