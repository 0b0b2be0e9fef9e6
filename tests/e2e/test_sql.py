"""PostgreSQL and MySQL/MariaDB end to end: Debian's postgres 15 and mariadbd
10.11 started here in temp dirs (TCP on ports 35432/35306 and unix sockets
in the temp dirs), real clients (psql, the mariadb CLI, and the libpq /
libmariadb peers of tests/e2e/peers for the extended protocol and prepared
statements), the real sonde. Every request each client makes is checked
against the client's and the server's records: count, command, query text,
tag / SQLSTATE / error number, rows, error flag, request bytes, latency
bounds; framing is never lost and nothing is left unpaired.

Run by tests/e2e/run.py (every tests/e2e/test_*.py module's run()).
"""
import os
import shutil
import subprocess
import tempfile
import time

from run import Failure, Sonde, check

PG_PORT = 35432
MY_PORT = 35306
METRICS_PORT = 35090
HERE = os.path.dirname(os.path.abspath(__file__))


# ---- servers and clients ------------------------------------------------------

def need(*tools):
    for t in tools:
        if not shutil.which(t):
            raise Failure(f"{t} is not installed (scripts/deps.sh installs it)")


def pg_bin(name):
    """postgres' server programs live in /usr/lib/postgresql/N/bin on Debian."""
    if shutil.which(name):
        return shutil.which(name)
    for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True):
        p = os.path.join("/usr/lib/postgresql", d, "bin", name)
        if os.path.exists(p):
            return p
    raise Failure(f"{name} not found (scripts/deps.sh installs postgresql)")


def start_postgres(wd):
    d = os.path.join(wd, "pg")
    os.makedirs(d)
    shutil.chown(d, "postgres")
    su = ["runuser", "-u", "postgres", "--"]
    subprocess.run(su + [pg_bin("initdb"), "-D", d + "/data", "-A", "trust", "-U", "postgres"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = os.path.join(d, "log")
    proc = subprocess.Popen(su + [pg_bin("postgres"), "-D", d + "/data", "-p", str(PG_PORT),
                                  "-k", d, "-c", "listen_addresses=127.0.0.1",
                                  "-c", "fsync=off"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if subprocess.call([pg_bin("pg_isready"), "-q", "-h", d, "-p", str(PG_PORT)]) == 0:
            return proc, d
        time.sleep(0.1)
    proc.kill()
    raise Failure("postgres did not start: " + open(log).read()[-600:])


def start_mariadb(wd):
    d = os.path.join(wd, "my")
    os.makedirs(d)
    subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + d + "/data",
                    "--user=root", "--auth-root-authentication-method=normal",
                    "--skip-test-db"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    sock = d + "/sock"
    proc = subprocess.Popen(["mariadbd", "--no-defaults", "--datadir=" + d + "/data",
                             "--user=root", "--port", str(MY_PORT), "--bind-address=127.0.0.1",
                             "--socket=" + sock, "--pid-file=" + d + "/pid",
                             "--log-error=" + d + "/err", "--skip-log-bin"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if subprocess.call(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", "DO 1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            return proc, sock
        time.sleep(0.1)
    proc.kill()
    err = open(d + "/err").read()[-600:] if os.path.exists(d + "/err") else ""
    raise Failure("mariadbd did not start: " + err)


def build_peers(wd):
    pg, my = os.path.join(wd, "pgext"), os.path.join(wd, "mystmt")
    subprocess.run(["gcc", "-O1", "-Wall", "-I/usr/include/postgresql",
                    os.path.join(HERE, "peers", "pgext.c"), "-lpq", "-o", pg], check=True)
    flags = subprocess.check_output(["pkg-config", "--cflags", "--libs", "libmariadb"],
                                    text=True).split()
    subprocess.run(["gcc", "-O1", "-Wall", os.path.join(HERE, "peers", "mystmt.c"), *flags,
                    "-o", my], check=True)
    return pg, my


class Timed:
    """Run a client; remember the wall-clock bounds of the run (monotonic ns)."""

    def __init__(self):
        self.runs = []

    def __call__(self, name, argv, stdin=None):
        t0 = time.monotonic_ns()
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
        t1 = time.monotonic_ns()
        self.runs.append((name, t0, t1, p.stdout))
        return p.stdout


# ---- the workload ----------------------------------------------------------------

# (command, query, detail, error, count) for each request, in order
PSQL_TCP = [
    "CREATE TABLE t (id int primary key, name text)",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "SELECT * FROM t ORDER BY id",
    "update t set name = 'z' where id < 3",
    "SELECT * FROM missing_table",
    "DROP TABLE t",
]
PSQL_TCP_WANT = [
    ("Query", "CREATE TABLE t (id int primary key, name text)", "CREATE TABLE", False, 0),
    ("Query", "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT 0 3", False, 3),
    ("Query", "SELECT * FROM t ORDER BY id", "SELECT 3", False, 3),
    ("Query", "UPDATE t set name = 'z' where id < 3", "UPDATE 2", False, 2),
    ("Query", "SELECT * FROM missing_table", "42P01", True, 0),
    ("Query", "DROP TABLE t", "DROP TABLE", False, 0),
]
PSQL_UNIX = ["SELECT current_user", "SELEC 1"]
PSQL_UNIX_WANT = [
    ("Query", "SELECT current_user", "SELECT 1", False, 1),
    ("Query", "SELEC 1", "42601", True, 0),
]
PGEXT_TCP = ["x:SELECT $1::int + 1|41", "p:s1:SELECT $1::text || $2::text", "e:s1|ab|cd",
             "e:s1|ef|gh", "x:SELECT 1/0", "q:SELECT 42"]
PGEXT_TCP_WANT = [
    ("Parse", "SELECT $1::int + 1", "SELECT 1", False, 1),
    ("Parse", "SELECT $1::text || $2::text", "", False, 0),
    ("Bind", "s1", "SELECT 1", False, 1),
    ("Bind", "s1", "SELECT 1", False, 1),
    ("Parse", "SELECT 1/0", "22012", True, 0),
    ("Query", "SELECT 42", "SELECT 1", False, 1),
]
PGEXT_UNIX = ["x:SELECT $1::text|over unix"]
PGEXT_UNIX_WANT = [("Parse", "SELECT $1::text", "SELECT 1", False, 1)]

CLI_TCP = [
    "CREATE DATABASE IF NOT EXISTS e2e",
    "CREATE TABLE e2e.t (id int primary key, name text)",
    "INSERT INTO e2e.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "SELECT * FROM e2e.t ORDER BY id",
    "update e2e.t set name = 'z' where id < 3",
    "SELECT * FROM e2e.missing_table",
]
CLI_TCP_WANT = [  # (command, query, detail, error, count, code)
    ("COM_QUERY", "CREATE DATABASE IF NOT EXISTS e2e", "", False, 1, 0),
    ("COM_QUERY", "CREATE TABLE e2e.t (id int primary key, name text)", "", False, 0, 0),
    ("COM_QUERY", "INSERT INTO e2e.t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "", False, 3, 0),
    ("COM_QUERY", "SELECT * FROM e2e.t ORDER BY id", "", False, 3, 0),
    ("COM_QUERY", "UPDATE e2e.t set name = 'z' where id < 3", "", False, 2, 0),
    ("COM_QUERY", "SELECT * FROM e2e.missing_table", "42S02", True, 0, 1146),
]
CLI_UNIX = ["SELECT 1, 2", "SELEC 2"]
CLI_UNIX_WANT = [
    ("COM_QUERY", "SELECT 1, 2", "", False, 1, 0),
    ("COM_QUERY", "SELEC 2", "42000", True, 0, 1064),
]
STMT_TCP = ["p:INSERT INTO e2e.t VALUES (?, ?)", "e|7|seven", "e|8|eight", "c",
            "p:SELECT id, name FROM e2e.t WHERE id >= ?", "e|3", "c",
            "p:SELECT * FROM e2e.nope", "P", "q:DROP TABLE e2e.t"]
STMT_TCP_WANT = [
    ("COM_STMT_PREPARE", "INSERT INTO e2e.t VALUES (?, ?)", "", False, 2, 0),
    ("COM_STMT_EXECUTE", "", "", False, 1, 0),
    ("COM_STMT_EXECUTE", "", "", False, 1, 0),
    ("COM_STMT_PREPARE", "SELECT id, name FROM e2e.t WHERE id >= ?", "", False, 1, 0),
    ("COM_STMT_EXECUTE", "", "", False, 3, 0),
    ("COM_STMT_PREPARE", "SELECT * FROM e2e.nope", "42S02", True, 0, 1146),
    ("COM_PING", "", "", False, 0, 0),
    ("COM_QUERY", "DROP TABLE e2e.t", "", False, 0, 0),
]
STMT_UNIX = ["p:SELECT ? + 1", "e|41", "c"]
STMT_UNIX_WANT = [
    ("COM_STMT_PREPARE", "SELECT ? + 1", "", False, 1, 0),
    ("COM_STMT_EXECUTE", "", "", False, 1, 0),
]


def workload(wd, pgdir, mysock, pgext, mystmt):
    run = Timed()
    psql = ["psql", "-X", "-q", "-U", "postgres", "-d", "postgres", "-p", str(PG_PORT)]
    args = []
    for q in PSQL_TCP:
        args += ["-c", q]
    run("psql_tcp", psql + ["-h", "127.0.0.1"] + args)
    args = []
    for q in PSQL_UNIX:
        args += ["-c", q]
    run("psql_unix", psql + ["-h", pgdir] + args)
    out = run("pgext_tcp", [pgext, f"host=127.0.0.1 port={PG_PORT} user=postgres sslmode=disable",
                            *PGEXT_TCP])
    check(out.split("\n")[4] == "err 22012", f"pgext output {out!r}")
    run("pgext_unix", [pgext, f"host={pgdir} port={PG_PORT} user=postgres", *PGEXT_UNIX])
    mariadb = ["mariadb", "--no-defaults", "-u", "root", "--force"]
    run("cli_tcp", mariadb + ["-h", "127.0.0.1", "-P", str(MY_PORT), "-e",
                              "; ".join(CLI_TCP)])
    run("cli_unix", mariadb + ["-S", mysock, "-e", "; ".join(CLI_UNIX)])
    out = run("stmt_tcp", [mystmt, "127.0.0.1", str(MY_PORT), *STMT_TCP])
    check(out.split("\n")[2].startswith("ok "), f"mystmt output {out!r}")
    run("stmt_unix", [mystmt, "localhost", mysock, *STMT_UNIX])
    return run


# ---- checks ------------------------------------------------------------------------

def sql_records(l7, proto, role, family, comm=None):
    return [r for r in l7 if r["proto"] == proto and r["role"] == role
            and r["family"] == family and (comm is None or r["comm"] == comm)]


def check_conversation(l7, run, name, proto, family, client_comm, server_comm, want):
    """The client's and the server's records of one client run: exactly `want`."""
    t0, t1 = next((a, b) for n, a, b, _ in run.runs if n == name)
    for role, comm in (("client", client_comm), ("server", server_comm)):
        recs = sql_records(l7, proto, role, family, comm)
        # the server side of the same connections: the client's ports (TCP), or
        # the time window of the run (unix sockets have no ports)
        if family != "unix":
            ports = {r["sport"] for r in sql_records(l7, proto, "client", family, client_comm)}
            recs = [r for r in recs if r["sport"] in ports]
        recs = [r for r in recs if t0 <= r["ts_ns_mono"] <= t1]
        got = [(r["command"], r["query"], r["detail"], r["error"], r["count"]) +
               ((r["code"],) if proto == "mysql" else ()) for r in recs]
        check(got == want, f"{name} {role} records:\n  got  {got}\n  want {want}")
        for r in recs:
            check(0 < r["latency_ns"] < t1 - t0, f"{name}: latency out of bounds: {r}")
            check(r["req_bytes"] > 0 and r["resp_bytes"] > 0, f"{name}: bytes: {r}")
            check(not r["timeout"] and not r["closed"], f"{name}: cut off: {r}")
            if family != "unix":
                check(r["dport"] == (PG_PORT if proto == "pgsql" else MY_PORT),
                      f"{name}: server port {r}")


def check_request_bytes(l7, proto, query, size):
    recs = [r for r in l7 if r["proto"] == proto and r["query"] == query]
    check(len(recs) >= 2 and all(r["req_bytes"] == size for r in recs),
          f"request bytes of {query!r}: {[(r['role'], r['req_bytes']) for r in recs]}, want {size}")


def run(binary, only):
    if only and not {"sql", "pgsql", "mysql"} & set(only):
        return []
    need("psql", "mariadb", "mariadbd", "mariadb-install-db", "gcc", "pkg-config")
    results = []
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-sql-") as wd:
        os.chmod(wd, 0o755)
        pgext, mystmt = build_peers(wd)
        pg, pgdir = start_postgres(wd)
        try:
            my, mysock = start_mariadb(wd)
        except Failure:
            pg.terminate()
            raise
        try:
            time.sleep(0.3)  # the readiness probes' connections are over
            # a metrics listener of our own: the default port may be another test's
            sonde = Sonde(binary, wd, ["--port", f"{PG_PORT},{MY_PORT}",
                                       "--metrics-listen", f"127.0.0.1:{METRICS_PORT}"])
            run_ = workload(wd, pgdir, mysock, pgext, mystmt)
            time.sleep(0.5)
            l7 = sonde.stop()
        finally:
            pg.terminate()
            my.terminate()
            pg.wait(timeout=20)
            my.wait(timeout=20)
    # records carry wall-clock ts_ns; compare with the runs' monotonic bounds
    offset = time.time_ns() - time.monotonic_ns()
    for r in l7:
        r["ts_ns_mono"] = r["ts_ns"] - offset

    def case(name, fn):
        try:
            fn()
            results.append((name, None))
        except Failure as e:
            results.append((name, str(e)))

    pgsql = "pgsql"
    case("pgsql_psql_tcp", lambda: check_conversation(
        l7, run_, "psql_tcp", pgsql, "ipv4", "psql", "postgres", PSQL_TCP_WANT))
    case("pgsql_psql_unix", lambda: check_conversation(
        l7, run_, "psql_unix", pgsql, "unix", "psql", "postgres", PSQL_UNIX_WANT))
    case("pgsql_extended_tcp", lambda: check_conversation(
        l7, run_, "pgext_tcp", pgsql, "ipv4", "pgext", "postgres", PGEXT_TCP_WANT))
    case("pgsql_extended_unix", lambda: check_conversation(
        l7, run_, "pgext_unix", pgsql, "unix", "pgext", "postgres", PGEXT_UNIX_WANT))
    case("pgsql_request_bytes", lambda: check_request_bytes(
        l7, pgsql, "SELECT * FROM t ORDER BY id", 1 + 4 + len("SELECT * FROM t ORDER BY id") + 1))
    case("mysql_cli_tcp", lambda: check_conversation(
        l7, run_, "cli_tcp", "mysql", "ipv4", "mariadb", "mariadbd", CLI_TCP_WANT))
    case("mysql_cli_unix", lambda: check_conversation(
        l7, run_, "cli_unix", "mysql", "unix", "mariadb", "mariadbd", CLI_UNIX_WANT))
    case("mysql_stmt_tcp", lambda: check_conversation(
        l7, run_, "stmt_tcp", "mysql", "ipv4", "mystmt", "mariadbd", STMT_TCP_WANT))
    case("mysql_stmt_unix", lambda: check_conversation(
        l7, run_, "stmt_unix", "mysql", "unix", "mystmt", "mariadbd", STMT_UNIX_WANT))
    case("mysql_request_bytes", lambda: check_request_bytes(
        l7, "mysql", "SELECT * FROM e2e.t ORDER BY id", 4 + 1 + len("SELECT * FROM e2e.t ORDER BY id")))

    def statement_ids():
        # the id the server gave each prepared statement is on its PREPARE and
        # on every EXECUTE of it, client and server side alike
        for role in ("client", "server"):
            recs = [r for r in l7 if r["proto"] == "mysql" and r["role"] == role
                    and r["command"] in ("COM_STMT_PREPARE", "COM_STMT_EXECUTE")
                    and not r["error"] and r["family"] == "ipv4"]
            ids = [r["txid"] for r in recs]
            check(len(ids) == 5 and ids[0] == ids[1] == ids[2] and ids[3] == ids[4]
                  and ids[0] != ids[3] and ids[0] > 0, f"{role} statement ids {ids}")

    def health():
        check(sonde.stats["parse_lost"] == 0, f"framing lost: {sonde.stats}")
        check(sonde.stats["unpaired_responses"] == 0, f"unpaired responses: {sonde.stats}")
        check(sonde.stats["pipeline_overflow"] == 0, f"overflow: {sonde.stats}")

    def metrics():
        ser = [m for m in sonde.metrics if m["proto"] == "pgsql" and m["role"] == "server"
               and m["route"] == "SELECT" and m["interval_s"] == 1]
        # psql: 2 over TCP (one an error), 1 over unix; pgext: 3 Parses (one an
        # error) and a Query over TCP, 1 Parse over unix (Binds carry no query,
        # so no route)
        want = 2 + 1 + 4 + 1
        check(sum(m["requests"] for m in ser) == want, f"pgsql SELECT series {ser}, want {want}")
        check(sum(m["errors"] for m in ser) == 2, f"pgsql SELECT errors {ser}")

    case("mysql_statement_ids", statement_ids)
    case("sql_health", health)
    case("sql_metrics", metrics)
    big_results(binary, results)
    return results


BIG_PG = "SELECT g, repeat('x', 100) FROM generate_series(1, 400) g"
BIG_MY = "SELECT seq, repeat('x', 100) FROM mysql.seq_1_to_400"


def big_results(binary, results):
    """A 400-row result in 16 kB reads: hundreds of messages per syscall, near
    what one syscall's tail calls parse. The query after it must get its own
    response, and the big query is either reported with its own response or,
    if its framing was lost (counted), dropped and counted, never paired with
    another query's response."""
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-sqlbig-") as wd:
        os.chmod(wd, 0o755)
        pgext, mystmt = build_peers(wd)
        pg, pgdir = start_postgres(wd)
        try:
            my, mysock = start_mariadb(wd)
        except Failure:
            pg.terminate()
            raise
        try:
            time.sleep(0.3)
            sonde = Sonde(binary, wd, ["--port", f"{PG_PORT},{MY_PORT}",
                                       "--metrics-listen", f"127.0.0.1:{METRICS_PORT + 1}"])
            out = subprocess.run([pgext, f"host=127.0.0.1 port={PG_PORT} user=postgres",
                                  "q:" + BIG_PG, "q:SELECT 42"], capture_output=True, text=True)
            check(out.stdout.startswith("ok SELECT 400 400"), f"pgext: {out.stdout!r}")
            out = subprocess.run([mystmt, "127.0.0.1", str(MY_PORT), "q:" + BIG_MY,
                                  "q:SELECT 42"], capture_output=True, text=True)
            check(out.stdout.startswith("ok 0 0 400"), f"mystmt: {out.stdout!r}")
            time.sleep(0.5)
            l7 = sonde.stop()
        finally:
            pg.terminate()
            my.terminate()
            pg.wait(timeout=20)
            my.wait(timeout=20)

    def check_proto(proto, big, big_detail, after_detail):
        for role in ("client", "server"):
            recs = [r for r in l7 if r["proto"] == proto and r["role"] == role]
            after = [r for r in recs if r["query"] == "SELECT 42"]
            check(len(after) == 1 and after[0]["detail"] == after_detail and
                  after[0]["count"] == 1 and not after[0]["error"],
                  f"{proto} {role}: the query after the big result: {after}")
            for r in recs:
                if r["query"].startswith(big[:40]):
                    check(r["count"] == 400 and r["detail"] == big_detail and not r["error"],
                          f"{proto} {role}: the big query got another response: {r}")
            check(all(r["query"] in ("SELECT 42",) or r["query"].startswith(big[:40])
                      for r in recs), f"{proto} {role}: unexpected records {recs}")
        lost = sonde.stats["parse_lost"] + sonde.stats["parse_budget"]
        reported = sum(1 for r in l7 if r["query"].startswith(big[:40]))
        # client and server each report it, unless its framing was lost
        check(reported == 2 or sonde.stats["requests_abandoned"] >= 1 and lost > 0,
              f"big queries reported {reported}, stats {sonde.stats}")
        check(sonde.stats["unpaired_responses"] == 0, f"unpaired: {sonde.stats}")

    for name, fn in (("pgsql_big_result", lambda: check_proto("pgsql", BIG_PG, "SELECT 400",
                                                                 "SELECT 1")),
                     ("mysql_big_result", lambda: check_proto("mysql", BIG_MY, "", ""))):
        try:
            fn()
            results.append((name, None))
        except Failure as e:
            results.append((name, str(e)))
