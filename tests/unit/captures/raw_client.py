#!/usr/bin/env python3
"""Send requests to a real server one write each and read what it answers:
    raw_client.py PORT FILE     (FILE: one request a line, Python escapes:
                                 set k 0 0 5\\r\\nhello\\r\\n)
Used with capture_l7m.py to capture server answers to requests no Debian
client sends (pipelines, noreply, errors)."""
import socket, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(0.3)
for line in open(path, encoding="utf-8"):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    s.sendall(line.encode().decode("unicode_escape").encode("latin-1"))
    time.sleep(0.05)
    try:
        while True:
            if not s.recv(65536):
                break
    except socket.timeout:
        pass
s.close()
