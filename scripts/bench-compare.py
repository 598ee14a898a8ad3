#!/usr/bin/env python3
"""zonekeeper against Apache ZooKeeper, side by side (docs/performance.md).

Starts Apache ZooKeeper (Debian's `zookeeper` package, installed if missing)
and zonekeeper with the same durability -- an fsync before every
acknowledged write, group commit allowed (ZooKeeper forceSync=yes,
zonekeeper fsync=true) -- as a single server and as a 3-member ensemble on
127.0.0.1, runs every workload of target/release/zonekeeper-bench against
both, alternating which goes first, and prints a table: throughput,
p50/p99/p99.9 latency, ops per CPU-second of the server processes
(utime+stime from /proc), their resident memory, and the
zonekeeper/ZooKeeper ratio per row. Then the memory row (1,000,000 znodes of
100 bytes loaded into fresh servers, RSS after) and the transport ceiling
(the same generator against `zonekeeper-bench ceiling`).

usage: scripts/bench-compare.py [--quick] [--topology single|ensemble|both]
                                [--out DIR] [--base-port N] [--skip-build]
  --quick: 3 s per workload, 1,000 watchers, 100,000 znodes (about 4 min);
  the full run is about 13-15 min on a 2-core machine.
Writes DIR/results.json and DIR/results.md (default target/bench/).
Only 127.0.0.1 is used; every process it starts is stopped at the end.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "zonekeeper-server")
BENCH = os.path.join(ROOT, "target", "release", "zonekeeper-bench")
ZK_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
# Enough for 1,000,000 znodes of 100 bytes (ZooKeeper needs roughly 0.5 GB
# of live heap for them); the same for every workload and member.
ZK_HEAP = "2g"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---- setup -------------------------------------------------------------------

def ensure_zookeeper():
    if os.path.exists("/usr/share/java/zookeeper.jar") and shutil.which("java"):
        return
    log("installing Debian package zookeeper")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.check_call(sudo + ["apt-get", "update", "-q"], env=env)
    subprocess.check_call(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", "zookeeper"], env=env)


def build():
    log("cargo build --release -p zonekeeper-server -p zonekeeper-bench")
    subprocess.check_call(["cargo", "build", "--release", "-p", "zonekeeper-server", "-p", "zonekeeper-bench"],
                          cwd=ROOT)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- processes -----------------------------------------------------------------

def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/statm" % pid) as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


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
        s.close()
        return out.decode(errors="replace")
    except OSError:
        return ""


def mode(port):
    for line in four(port, b"srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


class Cluster:
    """n members of one system on consecutive client ports from `base`."""

    def __init__(self, system, n, base, tmp):
        self.system, self.n, self.base = system, n, base
        self.dir = os.path.join(tmp, "%s-%d-%d" % (system, n, base))
        self.ports = [base + i for i in range(n)]
        self.procs = []

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        (self._start_zonekeeper if self.system == "zonekeeper" else self._start_zookeeper)()
        deadline = time.time() + 120
        want = ("standalone",) if self.n == 1 else ("leader", "follower")
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited; logs in %s" % (self.system, self.dir))
            if all(mode(p) in want for p in self.ports) and (
                    self.n == 1 or any(mode(p) == "leader" for p in self.ports)):
                time.sleep(1)
                return self
            time.sleep(0.2)
        raise RuntimeError("%s did not start serving; logs in %s" % (self.system, self.dir))

    def _start_zonekeeper(self):
        b = self.base
        members = ""
        if self.n > 1:
            for i in range(self.n):
                members += ('[[members]]\nid = %d\nzone = "zone-%d"\nclient_addr = "127.0.0.1:%d"\n'
                            'peer_addr = "127.0.0.1:%d"\n' % (i + 1, i + 1, b + i, b + 20 + i))
        for i in range(self.n):
            d = os.path.join(self.dir, "m%d" % (i + 1))
            os.makedirs(d)
            cfg = os.path.join(d, "zonekeeper.toml")
            with open(cfg, "w") as f:
                f.write('id = %d\ndata_dir = "%s/data"\nclient_addr = "127.0.0.1:%d"\n'
                        'admin_addr = "127.0.0.1:%d"\npeer_addr = "127.0.0.1:%d"\n'
                        'max_client_connections = 0\nfour_letter_words = "*"\nfsync = true\n'
                        'log_level = "warn"\n%s'
                        % (i + 1, d, b + i, b + 10 + i, b + 20 + i, members))
            self.procs.append(subprocess.Popen([SERVER, "--config", cfg], stdout=subprocess.DEVNULL,
                                               stderr=open(os.path.join(d, "log"), "w")))

    def _start_zookeeper(self):
        b = self.base
        servers = ""
        if self.n > 1:
            servers = "".join("server.%d=127.0.0.1:%d:%d\n" % (i + 1, b + 20 + i, b + 30 + i)
                              for i in range(self.n))
        for i in range(self.n):
            d = os.path.join(self.dir, "z%d" % (i + 1))
            os.makedirs(os.path.join(d, "data"))
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            cfg = os.path.join(d, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s/data\nclientPort=%d\n"
                        "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                        "4lw.commands.whitelist=*\nforceSync=yes\nstandaloneEnabled=true\n%s"
                        % (d, b + i, servers))
            with open(os.path.join(d, "log4j.properties"), "w") as f:
                f.write("log4j.rootLogger=WARN, FILE\nlog4j.appender.FILE=org.apache.log4j.FileAppender\n"
                        "log4j.appender.FILE.File=%s/zookeeper.log\n"
                        "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.FILE.layout.ConversionPattern=%%d %%-5p [%%t] %%m%%n\n" % d)
            self.procs.append(subprocess.Popen(
                ["java", "-Xmx" + ZK_HEAP, "-cp", ZK_CP, "-Dzookeeper.log.dir=" + d,
                 "-Dlog4j.configuration=file:%s/log4j.properties" % d,
                 "-Dzookeeper.forceSync=yes",
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
                stdout=open(os.path.join(d, "out"), "w"), stderr=subprocess.STDOUT))

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def servers(self):
        return ",".join("127.0.0.1:%d" % p for p in self.ports)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


# ---- runs --------------------------------------------------------------------

def bench(servers, args, pids, label):
    """Runs zonekeeper-bench; returns its report plus server CPU and RSS."""
    cmd = [BENCH, "run", "--servers", servers, "--progress", "0"] + args
    c0 = cpu_seconds(pids)
    t0 = time.time()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    wall = time.time() - t0
    cpu = cpu_seconds(pids) - c0
    if out.returncode != 0:
        log("%s failed: %s" % (label, out.stderr.strip()[-2000:]))
        return {"failed": out.stderr.strip()[-2000:], "cmd": " ".join(cmd)}
    r = json.loads(out.stdout)
    r["cmd"] = " ".join(cmd)
    r["server_cpu_seconds"] = cpu
    r["wall_seconds"] = wall
    total = r.get("extra", {}).get("total_ops", r["ops"])
    r["ops_per_cpu_second"] = total / cpu if cpu > 0 else None
    r["rss_bytes"] = rss_bytes(pids)
    errs = sum(r["errors"].values()) + len(r["failures"])
    log("%-28s %10.0f ops/s  p99 %7.2f ms  %s" % (
        label, r["throughput"], r["latency_us"]["p99"] / 1000.0, ("%d ERRORS" % errs) if errs else ""))
    return r


def workloads(quick):
    d, wu = ("3", "1") if quick else ("10", "2")
    common = ["--duration", d, "--warmup", wu, "--clients", "64", "--value-size", "100"]
    watchers = "1000" if quick else "10000"
    return [
        ("create", common + ["--workload", "create"]),
        ("set", common + ["--workload", "set"]),
        ("get", common + ["--workload", "get"]),
        ("exists", common + ["--workload", "exists"]),
        ("mixed 90% reads", common + ["--workload", "mixed", "--read-ratio", "0.9"]),
        ("multi (4 setData)", common + ["--workload", "multi", "--multi-ops", "4"]),
        ("set, open loop 1000/s", common + ["--workload", "set", "--rate", "1000"]),
        ("session churn", common + ["--workload", "session-churn"]),
        ("ephemeral churn", common + ["--workload", "ephemeral-churn"]),
        ("lock contention (recipe)", common + ["--workload", "lock"]),
        ("watch fan-out %s" % watchers, ["--workload", "watch", "--watchers", watchers, "--rounds", "5"]),
    ]


def topology(n, tmp, base, quick, results):
    name = "single" if n == 1 else "ensemble3"
    log("== %s: starting ZooKeeper and zonekeeper" % name)
    zk = Cluster("zookeeper", n, base, tmp).start()
    zn = Cluster("zonekeeper", n, base + 100, tmp).start()
    # The transport ceiling runs beside the single servers, so its get and
    # set rows are measured in the same minutes as theirs.
    ceil = None
    if n == 1:
        port = base + 390
        ceil = subprocess.Popen([BENCH, "ceiling", "--listen", "127.0.0.1:%d" % port], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    try:
        for i, (label, args) in enumerate(workloads(quick)):
            order = [zk, zn] if i % 2 == 0 else [zn, zk]
            for c in order:
                r = bench(c.servers(), args, c.pids, "%s %s %s" % (name, c.system, label))
                results.append(dict(r, topology=name, system=c.system, workload=label))
            if ceil is not None and label in ("get", "set"):
                r = bench("127.0.0.1:%d" % port, args, [ceil.pid], "ceiling %s" % label)
                results.append(dict(r, topology="ceiling", system="ceiling", workload=label))
    finally:
        if ceil is not None:
            ceil.send_signal(signal.SIGINT)
            ceil.wait(timeout=10)
        zn.stop()
        zk.stop()


def memory(tmp, base, quick, results):
    count = "100000" if quick else "1000000"
    label = "memory: %s znodes" % ("100k" if quick else "1M")
    for i, system in enumerate(["zookeeper", "zonekeeper"]):
        c = Cluster(system, 1, base + 200 + 100 * i, tmp).start()
        try:
            idle = rss_bytes(c.pids)
            r = bench(c.servers(), ["--workload", "load", "--count", count, "--batch", "100",
                                    "--clients", "8", "--value-size", "100"], c.pids, "single %s %s" % (system, label))
            time.sleep(2)
            r["rss_bytes"] = rss_bytes(c.pids)
            r["idle_rss_bytes"] = idle
            results.append(dict(r, topology="single", system=system, workload=label))
        finally:
            c.stop()


def ceiling(base, quick, results):
    port = base + 390
    p = subprocess.Popen([BENCH, "ceiling", "--listen", "127.0.0.1:%d" % port], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        for label, args in workloads(quick)[1:3]:
            r = bench("127.0.0.1:%d" % port, args, [p.pid], "ceiling %s" % label)
            results.append(dict(r, topology="ceiling", system="ceiling", workload=label))
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)


# ---- table -------------------------------------------------------------------

def fmt_num(v, unit=""):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f%s" % (v, unit)
    return "%.2f%s" % (v, unit)


def row_values(r):
    if "failed" in r:
        return ["failed"] + ["-"] * 6
    lat = r["latency_us"]
    note = ""
    extra = r.get("extra", {})
    if "median_time_to_last_ms" in extra:
        note = "last notified %.1f ms" % extra["median_time_to_last_ms"]
    if "znodes_per_second" in extra:
        note = "%.0f znodes/s" % extra["znodes_per_second"]
    errs = sum(r["errors"].values()) + len(r["failures"])
    if errs:
        note += " %d errors" % errs
    return [fmt_num(r["throughput"]), fmt_num(lat["p50"] / 1000.0), fmt_num(lat["p99"] / 1000.0),
            fmt_num(lat["p999"] / 1000.0), fmt_num(r.get("ops_per_cpu_second")),
            fmt_num(r.get("rss_bytes", 0) / 2 ** 20), note.strip()]


def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def table(results):
    head = ["topology", "workload", "system", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "ops/CPU-s", "RSS MiB", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keyed = {}
    for r in results:
        keyed.setdefault((r["topology"], r["workload"]), {})[r["system"]] = r
    for (topo, wl), by in keyed.items():
        for s in ("zookeeper", "zonekeeper", "ceiling"):
            if s in by:
                lines.append("| " + " | ".join([topo, wl, s] + row_values(by[s])) + " |")
        zk, zn = by.get("zookeeper"), by.get("zonekeeper")
        if zk and zn and "failed" not in zk and "failed" not in zn:
            note = ""
            ezk, ezn = zk.get("extra", {}), zn.get("extra", {})
            if "median_time_to_last_ms" in ezk and "median_time_to_last_ms" in ezn:
                note = "time to last: " + ratio(ezn["median_time_to_last_ms"], ezk["median_time_to_last_ms"])
            lines.append("| " + " | ".join([
                topo, wl, "**zonekeeper/ZooKeeper**",
                ratio(zn["throughput"], zk["throughput"]),
                ratio(zn["latency_us"]["p50"], zk["latency_us"]["p50"]),
                ratio(zn["latency_us"]["p99"], zk["latency_us"]["p99"]),
                ratio(zn["latency_us"]["p999"], zk["latency_us"]["p999"]),
                ratio(zn.get("ops_per_cpu_second"), zk.get("ops_per_cpu_second")),
                ratio(zn.get("rss_bytes"), zk.get("rss_bytes")), note]) + " |")
    # reads against the ceiling
    for wl in ("get", "set"):
        c = keyed.get(("ceiling", wl), {}).get("ceiling")
        z = keyed.get(("single", wl), {}).get("zonekeeper")
        if c and z and "failed" not in c and "failed" not in z:
            lines.append("| single | %s | **zonekeeper/ceiling** | %s | %s | %s | %s | %s | - | |" % (
                wl, ratio(z["throughput"], c["throughput"]),
                ratio(z["latency_us"]["p50"], c["latency_us"]["p50"]),
                ratio(z["latency_us"]["p99"], c["latency_us"]["p99"]),
                ratio(z["latency_us"]["p999"], c["latency_us"]["p999"]),
                ratio(z.get("ops_per_cpu_second"), c.get("ops_per_cpu_second"))))
    return "\n".join(lines)


def machine():
    info = {"nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    try:
        info["zookeeper"] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "zookeeper"],
                                           stdout=subprocess.PIPE, text=True).stdout
        info["java"] = subprocess.run(["java", "-version"], stderr=subprocess.PIPE, text=True).stderr.splitlines()[0]
    except OSError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--topology", choices=["single", "ensemble", "both", "none"], default="both")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--base-port", type=int, default=22000,
                    help="ports BASE..BASE+399 on 127.0.0.1 are used (default 22000)")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="skip the 1M-znode memory row")
    a = ap.parse_args()
    ensure_zookeeper()
    if not a.skip_build:
        build()
    fds = raise_fd_limit()
    log("open files limit %d" % fds)
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bench-compare-")
    results = []
    info = machine()
    t0 = time.time()
    try:
        if a.topology in ("single", "both"):
            topology(1, tmp, a.base_port, a.quick, results)
        if a.topology in ("ensemble", "both"):
            topology(3, tmp, a.base_port, a.quick, results)
        if not a.no_memory:
            memory(tmp, a.base_port, a.quick, results)
        if a.topology not in ("single", "both"):
            ceiling(a.base_port, a.quick, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        # Whatever was measured is written, even if a later step failed.
        write_results(a, info, results, t0)


def write_results(a, info, results, t0):
    info["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    info["minutes"] = round((time.time() - t0) / 60, 1)
    md = table(results)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"machine": info, "zookeeper_heap": ZK_HEAP, "quick": a.quick, "results": results}, f, indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("Machine: %s\n\n%s\n" % (json.dumps(info), md))
    print(md)
    print("\nmachine: %s\nwritten: %s/results.json, results.md" % (json.dumps(info), a.out))


if __name__ == "__main__":
    sys.exit(main())
