#!/usr/bin/python3
"""A small MongoDB server for the e2e tests, written from the wire protocol
specification (OP_MSG, OP_QUERY/OP_REPLY; MongoDB has no server in Debian).
It keeps documents in memory and answers the commands pymongo 3.11 (Debian's
python3-pymongo) sends for insert/find/update/delete/count and a few errors:
    mongo_peer.py PORT
Prints "ready" once listening. Runs with /usr/bin/python3 (uses Debian's
python3-bson for the BSON documents)."""
import socketserver
import struct
import sys
import threading

import bson

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
HELLO = {"ismaster": True, "maxBsonObjectSize": 16 * 1024 * 1024,
         "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
         "localTime": None, "logicalSessionTimeoutMinutes": 30,
         "connectionId": 1, "minWireVersion": 0, "maxWireVersion": 8,
         "readOnly": False, "ok": 1.0}
store = {}  # "db.coll" -> list of documents
lock = threading.Lock()
next_id = [1000]


def matches(doc, flt):
    return all(doc.get(k) == v for k, v in (flt or {}).items())


def command(body):
    """Run one command document; returns the reply document."""
    name = next(iter(body))
    db = body.get("$db", "admin")
    ns = "%s.%s" % (db, body[name]) if isinstance(body[name], str) else db
    with lock:
        if name.lower() in ("ismaster", "hello"):
            import datetime
            return dict(HELLO, localTime=datetime.datetime.utcnow())
        if name in ("ping", "endSessions"):
            return {"ok": 1.0}
        if name == "buildInfo" or name == "buildinfo":
            return {"version": "4.2.0", "versionArray": [4, 2, 0, 0], "ok": 1.0}
        if name == "insert":
            docs = body.get("documents", [])
            store.setdefault(ns, []).extend(docs)
            return {"n": len(docs), "ok": 1.0}
        if name == "find":
            docs = [d for d in store.get(ns, []) if matches(d, body.get("filter"))]
            if body.get("limit"):
                docs = docs[:abs(body["limit"])]
            return {"cursor": {"firstBatch": docs, "id": 0, "ns": ns}, "ok": 1.0}
        if name == "update":
            n = 0
            for u in body.get("updates", []):
                for d in store.get(ns, []):
                    if matches(d, u.get("q")):
                        d.update(u.get("u", {}).get("$set", {}))
                        n += 1
                        if not u.get("multi"):
                            break
            return {"n": n, "nModified": n, "ok": 1.0}
        if name == "delete":
            n = 0
            for q in body.get("deletes", []):
                keep = [d for d in store.get(ns, []) if not matches(d, q.get("q"))]
                n += len(store.get(ns, [])) - len(keep)
                store[ns] = keep
            return {"n": n, "ok": 1.0}
        if name in ("count", "countDocuments"):
            return {"n": len([d for d in store.get(ns, []) if matches(d, body.get("query"))]),
                    "ok": 1.0}
        if name == "aggregate":
            docs = store.get(ns, [])
            return {"cursor": {"firstBatch": [{"_id": 1, "n": len(docs)}], "id": 0, "ns": ns},
                    "ok": 1.0}
        if name == "drop":
            if ns not in store:
                return {"ok": 0.0, "errmsg": "ns not found", "code": 26,
                        "codeName": "NamespaceNotFound"}
            del store[ns]
            return {"ok": 1.0}
    return {"ok": 0.0, "errmsg": "no such command: '%s'" % name, "code": 59,
            "codeName": "CommandNotFound"}


def read_exact(f, n):
    b = f.read(n)
    if len(b) != n:
        raise EOFError
    return b


class Handler(socketserver.StreamRequestHandler):
    def send(self, opcode, response_to, payload):
        next_id[0] += 1
        hdr = struct.pack("<iiii", 16 + len(payload), next_id[0], response_to, opcode)
        self.wfile.write(hdr + payload)
        self.wfile.flush()

    def handle(self):
        try:
            while True:
                length, req_id, _, opcode = struct.unpack("<iiii", read_exact(self.rfile, 16))
                body = read_exact(self.rfile, length - 16)
                if opcode == OP_QUERY:
                    # flags, cstring collection, skip, return, query document
                    end = body.index(b"\0", 4)
                    q = bson.decode(body[end + 9:])
                    q = q.get("$query", q)
                    reply = bson.encode(command(q))
                    self.send(OP_REPLY, req_id, struct.pack("<iqii", 8, 0, 0, 1) + reply)
                elif opcode == OP_MSG:
                    flags = struct.unpack("<I", body[:4])[0]
                    pos, doc = 4, None
                    while pos < len(body) - (4 if flags & 1 else 0):
                        kind = body[pos]
                        pos += 1
                        size = struct.unpack("<i", body[pos:pos + 4])[0]
                        if kind == 0:
                            doc = bson.decode(body[pos:pos + size])
                        else:  # a document sequence: fold it into the command
                            end = body.index(b"\0", pos + 4)
                            ident = body[pos + 4:end].decode()
                            seq, p = [], end + 1
                            while p < pos + size:
                                n = struct.unpack("<i", body[p:p + 4])[0]
                                seq.append(bson.decode(body[p:p + n]))
                                p += n
                            doc = doc or {}
                            doc[ident] = seq
                        pos += size
                    reply = command(doc)
                    if flags & 2:  # moreToCome: the client wants no answer
                        continue
                    self.send(OP_MSG, req_id, struct.pack("<I", 0) + b"\0" + bson.encode(reply))
                else:
                    return
        except (EOFError, ConnectionError):
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    srv.serve_forever()
