"""Workers: join time (command to Ready), kill -9 to Down at the default
heartbeat settings, and one manager holding 1,000 simulated workers (real
joins and mTLS sessions from bench/simnodes): its RSS and CPU while idle.

    /usr/bin/python3 bench/bench_workers.py    # BENCH_SIM_NODES=1000 by default
"""
import os
import re
import signal
import subprocess
import time

from benchlib import BUILD, Daemon, fig, median, wait_for, wait_binary

SIMNODES = BUILD / "bench" / "simnodes"
SIM_NODES = int(os.environ.get("BENCH_SIM_NODES", "1000"))


def row(m, host):
    for line in m.ok("node", "ls").splitlines()[1:]:
        if f" {host} " in line:
            return line
    return ""


def bench_join_and_down(base):
    m = Daemon(base, "m1").start()
    m.init()
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    joins, downs = [], []
    for i in range(10):
        w = Daemon(base, f"w{i}").start()
        t0 = time.monotonic()
        w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
        wait_for(lambda: " Ready " in row(m, f"w{i}"), timeout=10, what="Ready")
        joins.append(time.monotonic() - t0)
        w.proc.kill()
        t0 = time.monotonic()
        wait_for(lambda: " Down " in row(m, f"w{i}"), timeout=20, interval=0.02, what="Down")
        downs.append(time.monotonic() - t0)
        w.proc.wait()
    fig("worker_join_to_ready_median", median(joins), "s")
    fig("worker_join_to_ready_max", max(joins), "s")
    fig("worker_kill9_to_down_median", median(downs), "s")
    fig("worker_kill9_to_down_max", max(downs), "s (goal < 3.5 s; Docker default about 15 s)")
    m.stop()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_sim_workers(base):
    wait_binary(SIMNODES)
    m = Daemon(base, "sim-manager").start("--executor", "sim")
    m.init()
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    log = open(os.path.join(base, "simnodes.log"), "w")
    sim = subprocess.Popen([str(SIMNODES), "--manager", m.addr, "--token", token,
                            "--count", str(SIM_NODES), "--dir", os.path.join(base, "simnodes")],
                           stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = sim.stdout.readline()
        mt = re.match(r"joined: (\d+) nodes in ([\d.]+) s", line)
        if mt:
            fig("sim_workers_joined", int(mt.group(1)), "nodes", "{}")
            fig("sim_workers_join_all", float(mt.group(2)), "s")
        wait_for(lambda: m.ok("node", "ls").count(" Ready ") == SIM_NODES + 1, timeout=60,
                 interval=0.5, what="all simulated workers Ready")
        time.sleep(3)
        pid = m.proc.pid
        hz = os.sysconf("SC_CLK_TCK")
        a, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(10)
        b, t1 = cpu_ticks(pid), time.monotonic()
        fig("manager_rss_with_1000_sim_workers", rss_mb(pid), "MB (goal < 150 MB)")
        fig("manager_cpu_idle_with_1000_sim_workers", 100.0 * (b - a) / hz / (t1 - t0),
            "% of one core (goal < 10 %)")
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        log.close()
        m.stop()


def main():
    import tempfile
    base = tempfile.mkdtemp(prefix="swarm-bench-workers-")
    try:
        bench_join_and_down(base)
        bench_sim_workers(base)
    finally:
        subprocess.run(["rm", "-rf", base])


if __name__ == "__main__":
    main()
