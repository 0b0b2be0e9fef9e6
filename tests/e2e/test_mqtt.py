"""MQTT end to end: Debian's mosquitto broker with mosquitto_pub and
mosquitto_sub (MQTT 3.1.1 and 5, QoS 0, 1 and 2), against the real sonde.
Every transaction the clients make is checked against the client's and the
broker's records; QoS 0 publishes and DISCONNECT get no record (one-way
packets: docs/PROTOCOLS.md).

Run by tests/e2e/run.py (every tests/e2e/test_*.py module's run()).
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from run import Failure, Sonde, check, wait_port

PORT = 34883


def start_broker(wd):
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        raise Failure("mosquitto is not installed (scripts/deps.sh installs it)")
    conf = os.path.join(wd, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {PORT} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT, proc, "mosquitto")
    except Failure:
        proc.kill()
        raise
    return proc


def pub(topic, msg, qos, version="mqttv311"):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(PORT), "-V", version,
                    "-q", str(qos), "-t", topic, "-m", msg, "-i", f"pub-q{qos}-{version}"],
                   check=True, timeout=20)


def run(binary, only):
    if only and "mqtt" not in only:
        return []
    if not shutil.which("mosquitto_pub"):
        return [("mqtt_setup", "mosquitto_pub is not installed (scripts/deps.sh installs "
                               "mosquitto-clients)")]
    results = []
    with tempfile.TemporaryDirectory(prefix="sonde-e2e-mqtt-") as wd:
        os.chmod(wd, 0o755)
        broker = start_broker(wd)
        try:
            sonde = Sonde(binary, wd, ["--port", str(PORT)])
            sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(PORT),
                                    "-q", "1", "-t", "sensors/#", "-i", "sub-1", "-C", "3"],
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            pub("sensors/t0", "zero", 0)
            pub("sensors/t1", "one", 1)
            pub("sensors/t2", "two", 2, "mqttv5")
            out, _ = sub.communicate(timeout=20)
            check(out.split() == ["zero", "one", "two"], f"subscriber got {out!r}")
            time.sleep(0.5)
            l7 = sonde.stop()
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    mq = [r for r in l7 if r["proto"] == "mqtt"]

    def side(role, client_id_or_topic=None):
        return [r for r in mq if r["role"] == role]

    def publishes():
        for role in ("client", "server"):
            got = sorted((r["command"], r["resource"], r["op2"], r["error"]) for r in side(role)
                         if r["command"] in ("PUBLISH", "PUBREL"))
            want = sorted([("PUBLISH", "sensors/t1", 1, False), ("PUBLISH", "sensors/t2", 2, False),
                           ("PUBREL", "", 0, False)])
            check(got == want, f"{role} publish records {got}, want {want}")
            for r in side(role):
                check(r["dport"] == PORT and r["latency_ns"] > 0, f"port/latency: {r}")

    def connects():
        for role in ("client", "server"):
            got = sorted((r["resource"], r["op2"], r["status"]) for r in side(role)
                         if r["command"] == "CONNECT")
            want = sorted([("pub-q0-mqttv311", 4, 0), ("pub-q1-mqttv311", 4, 0),
                           ("pub-q2-mqttv5", 5, 0), ("sub-1", 4, 0)])
            check(got == want, f"{role} CONNECT records {got}, want {want}")

    def subscribe():
        for role in ("client", "server"):
            got = [(r["resource"], r["op2"], r["count"]) for r in side(role)
                   if r["command"] == "SUBSCRIBE"]
            check(got == [("sensors/#", 1, 1)], f"{role} SUBSCRIBE records {got}")

    def nothing_else():
        # QoS 0 publish and DISCONNECT are one-way; deliveries to the
        # subscriber are not the subscriber's requests
        other = [r for r in mq if r["command"] not in ("CONNECT", "PUBLISH", "PUBREL", "SUBSCRIBE")]
        check(not other, f"unexpected records {other}")
        check(not [r for r in mq if r["resource"] == "sensors/t0"], "a QoS 0 publish was paired")
        check(sonde.stats["parse_lost"] == 0, f"framing lost: {sonde.stats}")

    for name, fn in (("mqtt_publish_qos", publishes), ("mqtt_connect", connects),
                     ("mqtt_subscribe", subscribe), ("mqtt_one_way_not_paired", nothing_else)):
        try:
            fn()
            results.append((name, None))
        except Failure as e:
            results.append((name, str(e)))
    return results
