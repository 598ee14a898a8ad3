#!/usr/bin/env python3
"""Time from kill -9 of the leader to the first successful write, for a
3-member zonekeeper ensemble and a 3-server Apache ZooKeeper 3.8 ensemble,
measured the same way (docs/ensemble.md, issue "Replicated ensemble").

Each repeat starts a fresh ensemble on loopback, writes through a kazoo
client that lists all three servers, finds the leader (`srvr` Mode line),
kill -9s it, and times how long until a create through the client succeeds.
Prints every sample and the median per system.

usage: failover-compare.py [--repeats N] [--only zonekeeper|zookeeper]
needs: the compat venv's python (kazoo), Debian's zookeeper package, and
target/release/zonekeeper-server (cargo build --release -p zonekeeper-server).
Runs only on 127.0.0.1.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "zonekeeper-server")
ZK_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"


def free_base(n):
    """A base port below the ephemeral range with n*10 free ports above it."""
    import random
    while True:
        base = random.randint(15000, 28000)
        ok = True
        for p in range(base, base + n * 10):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base


def four(port, word):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(word)
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        return out.decode(errors="replace")
    except OSError:
        return ""


def mode(port):
    for line in four(port, b"srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def wait(cond, timeout, what):
    t = time.time()
    while time.time() - t < timeout:
        if cond():
            return
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


def start_zonekeeper(tmp, base):
    procs = []
    ports = [base + i for i in range(3)]
    members = ""
    for i in range(3):
        members += '[[members]]\nid = %d\nzone = "zone-%d"\nclient_addr = "127.0.0.1:%d"\npeer_addr = "127.0.0.1:%d"\n' % (
            i + 1, i + 1, ports[i], base + 20 + i)
    for i in range(3):
        d = os.path.join(tmp, "m%d" % (i + 1))
        os.makedirs(d)
        cfg = os.path.join(d, "zonekeeper.toml")
        with open(cfg, "w") as f:
            f.write('id = %d\ndata_dir = "%s/data"\nclient_addr = "127.0.0.1:%d"\nadmin_addr = "127.0.0.1:%d"\n'
                    'peer_addr = "127.0.0.1:%d"\nmax_client_connections = 0\n%s'
                    % (i + 1, d, ports[i], base + 10 + i, base + 20 + i, members))
        procs.append(subprocess.Popen([SERVER, "--config", cfg], stdout=subprocess.DEVNULL,
                                      stderr=open(os.path.join(d, "log"), "w")))
    return procs, ports


def start_zookeeper(tmp, base):
    procs = []
    ports = [base + i for i in range(3)]
    servers = "".join("server.%d=127.0.0.1:%d:%d\n" % (i + 1, base + 20 + i, base + 30 + i) for i in range(3))
    for i in range(3):
        d = os.path.join(tmp, "z%d" % (i + 1))
        os.makedirs(os.path.join(d, "data"))
        with open(os.path.join(d, "data", "myid"), "w") as f:
            f.write("%d\n" % (i + 1))
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s/data\nclientPort=%d\n"
                    "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                    "4lw.commands.whitelist=*\n%s" % (d, ports[i], servers))
        procs.append(subprocess.Popen(
            ["java", "-Xmx256m", "-cp", ZK_CP, "-Dzookeeper.log.dir=" + d,
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
            stdout=open(os.path.join(d, "out"), "w"), stderr=subprocess.STDOUT))
    return procs, ports


def one_run(system):
    tmp = tempfile.mkdtemp(prefix="failover-%s-" % system)
    base = free_base(4)
    procs, ports = (start_zonekeeper if system == "zonekeeper" else start_zookeeper)(tmp, base)
    try:
        wait(lambda: all(mode(p) in ("leader", "follower") for p in ports), 90, system + " to serve")
        hosts = ",".join("127.0.0.1:%d" % p for p in ports)
        c = KazooClient(hosts, timeout=10, connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.2))
        c.start(timeout=30)
        for i in range(20):
            c.create("/warm-", b"x", sequence=True)
        leader = [i for i, p in enumerate(ports) if mode(p) == "leader"][0]
        t0 = time.time()
        os.kill(procs[leader].pid, signal.SIGKILL)
        n = 0
        while True:
            try:
                c.create("/after-%d" % n, b"x")
                break
            except Exception:  # noqa: BLE001 - any failure means "not yet"
                n += 1
                time.sleep(0.02)
            if time.time() - t0 > 60:
                raise RuntimeError("no write within 60 s after killing the leader")
        took = time.time() - t0
        c.stop()
        c.close()
        return took
    finally:
        for p in procs:
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        subprocess.call(["rm", "-rf", tmp])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", choices=["zonekeeper", "zookeeper"])
    a = ap.parse_args()
    systems = [a.only] if a.only else ["zonekeeper", "zookeeper"]
    result = {}
    for s in systems:
        samples = []
        for r in range(a.repeats):
            t = one_run(s)
            samples.append(t)
            print("%s run %d: %.3f s from leader kill to first write" % (s, r + 1, t), flush=True)
        result[s] = statistics.median(samples)
    for s, m in result.items():
        print("%s median: %.3f s" % (s, m))
    if len(result) == 2:
        print("ratio zonekeeper/zookeeper: %.2f" % (result["zonekeeper"] / result["zookeeper"]))


if __name__ == "__main__":
    sys.exit(main())
