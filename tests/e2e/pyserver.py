#!/usr/bin/env python3
"""A real HTTP/1.1 server built on python's http.server, started by the e2e
tests as its own process, with routes that make known behaviour:

  /sleep/<ms>/...     answers 200 after sleeping <ms> milliseconds
  /chunked/<n>/...    answers 200 with <n> chunks, written one by one
  /status/<code>/...  answers <code>
  /close/...          reads the request and closes without answering
  /hang/...           reads the request and never answers (until killed)
  POST anything       answers 200 with the body length

Each request's own processing time (request parsed to answer about to be written)
is appended to the log file given as argv[2], one "path ns" line per request,
so the test can compare it with what sonde reports for the server side.
"""
import http.server
import socketserver
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _log_time(self, start):
        with open(LOG, "a") as f:
            f.write(f"{self.path} {self.work_done - start}\n")

    def _reply(self, code, body):
        # the server's own processing ends where writing the answer begins
        self.work_done = time.monotonic_ns()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        start = time.monotonic_ns()
        parts = self.path.split("/")
        kind = parts[1] if len(parts) > 1 else ""
        if kind == "sleep":
            time.sleep(int(parts[2]) / 1000.0)
            self._reply(200, b"slept\n")
        elif kind == "chunked":
            n = int(parts[2])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(n):
                data = (f"chunk {i} " * (i + 1)).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                time.sleep(0.002)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif kind == "status":
            self._reply(int(parts[2]), b"status\n")
        elif kind == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        elif kind == "hang":
            time.sleep(3600)
            return
        else:
            self._reply(200, b"ok\n")
        self._log_time(start)

    do_HEAD = do_GET

    def do_POST(self):
        start = time.monotonic_ns()
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self._reply(200, f"got {len(body)}\n".encode())
        self._log_time(start)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    PORT = int(sys.argv[1])
    LOG = sys.argv[2]
    Server(("127.0.0.1", PORT), Handler).serve_forever()
