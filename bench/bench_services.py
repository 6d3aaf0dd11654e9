"""Services: time from `service create` to all tasks running (process
executor, 3 managers + 2 workers), 10,000 replicas on 1,000 simulated
workers with 3 managers, and the time until the 20 tasks of a killed worker
run elsewhere.

    /usr/bin/python3 bench/bench_services.py
    (BENCH_E2E_REPLICAS=10000 BENCH_SIM_NODES=1000 by default)
"""
import os
import re
import signal
import subprocess
import tempfile
import time

from benchlib import BUILD, Daemon, fig, median, wait_for, wait_binary

SIMNODES = BUILD / "bench" / "simnodes"
E2E_REPLICAS = int(os.environ.get("BENCH_E2E_REPLICAS", "10000"))
SIM_NODES = int(os.environ.get("BENCH_SIM_NODES", "1000"))


def replicas(m, name):
    for line in m.ok("service", "ls").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4 and cols[1] == name:
            return cols[3]
    return ""


def swarm_of(base, managers, workers, *extra):
    nodes = [Daemon(base, f"m{i + 1}").start(*extra) for i in range(managers)]
    nodes += [Daemon(base, f"w{i + 1}").start(*extra) for i in range(workers)]
    m = nodes[0]
    m.init()
    mt = m.ok("swarm", "join-token", "-q", "manager").strip()
    wt = m.ok("swarm", "join-token", "-q", "worker").strip()
    for i, n in enumerate(nodes[1:], start=1):
        n.ok("swarm", "join", "--token", mt if i < managers else wt, "--advertise-addr", n.ip,
             m.addr)
    wait_for(lambda: m.ok("node", "ls").count(" Ready ") == len(nodes), timeout=30,
             interval=0.05, what="all nodes Ready")
    return nodes


def bench_create(base):
    nodes = swarm_of(base, 3, 2)
    m = nodes[0]
    for count in (3, 50):
        times = []
        for run in range(5):
            name = f"s{count}x{run}"
            t0 = time.monotonic()
            m.ok("service", "create", "-d", "--name", name, "--replicas", str(count),
                 "sleep", "1000")
            wait_for(lambda: replicas(m, name) == f"{count}/{count}", timeout=60,
                     interval=0.005, what=f"{name} running")
            times.append(time.monotonic() - t0)
            m.ok("service", "rm", name)
        fig(f"service_create_{count}_replicas_to_running_median", median(times),
            f"s (Docker here: {'0.37-0.56' if count == 3 else '2.65'} s)")
    # Kill a worker running 20 tasks: time until all 20 run elsewhere.
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "100", "sleep", "1000")
    wait_for(lambda: replicas(m, "web") == "100/100", timeout=60, what="web running")
    victim = nodes[3]
    on_victim = m.ok("node", "ps", victim.name)
    n_victim = sum(1 for line in on_victim.splitlines() if " Running " in line)
    t0 = time.monotonic()
    victim.proc.kill()
    wait_for(lambda: replicas(m, "web") != "100/100", timeout=10, interval=0.01,
             what="tasks lost")
    wait_for(lambda: replicas(m, "web") == "100/100", timeout=60, interval=0.01,
             what="tasks running elsewhere")
    fig("worker_killed_tasks_running_elsewhere", time.monotonic() - t0,
        f"s ({n_victim} tasks on the killed worker; goal < 5 s)")
    for n in nodes:
        n.stop()


def update_state(m, name):
    import json
    return json.loads(m.ok("service", "inspect", name))[0].get("UpdateStatus", {}).get("State")


def bench_rolling(base):
    """50 replicas, parallelism 10, delay 0, monitor 1 s: the total time of a
    rolling update. With Docker's timing a batch starts once the previous one
    runs, and only the last batch's monitor window is waited for: the ideal
    is 5 x (stop + start) + 1 s."""
    nodes = swarm_of(base, 3, 2)
    m = nodes[0]
    m.ok("service", "create", "-d", "--name", "roll", "--replicas", "50", "sleep", "1000")
    wait_for(lambda: replicas(m, "roll") == "50/50", timeout=60, what="roll running")
    t0 = time.monotonic()
    m.ok("service", "update", "-d", "--env-add", "V=2", "--update-parallelism", "10",
         "--update-delay", "0s", "--update-monitor", "1s", "roll")
    wait_for(lambda: update_state(m, "roll") == "completed", timeout=120, interval=0.02,
             what="update completed")
    total = time.monotonic() - t0
    fig("rolling_update_50_par10_monitor1s_total", total,
        "s (ideal 5 x (stop + start) + 1 s monitor of the last batch)")
    fig("rolling_update_overhead_over_1_monitor", total - 1.0, "s")
    for n in nodes:
        n.stop()


def bench_e2e(base):
    wait_binary(SIMNODES)
    nodes = swarm_of(base, 3, 0, "--executor", "sim")
    m = nodes[0]
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    log = open(os.path.join(base, "simnodes.log"), "w")
    sim = subprocess.Popen([str(SIMNODES), "--manager", m.addr, "--token", token,
                            "--count", str(SIM_NODES), "--dir", os.path.join(base, "sim")],
                           stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        sim.stdout.readline()
        wait_for(lambda: m.ok("node", "ls").count(" Ready ") == SIM_NODES + 3, timeout=120,
                 interval=0.5, what="simulated workers Ready")
        t0 = time.monotonic()
        m.ok("service", "create", "-d", "--name", "big", "--replicas", str(E2E_REPLICAS),
             "sleep", "1000")
        wait_for(lambda: replicas(m, "big") == f"{E2E_REPLICAS}/{E2E_REPLICAS}", timeout=300,
                 interval=0.1, what="all replicas running")
        fig(f"e2e_{E2E_REPLICAS}_replicas_on_{SIM_NODES}_sim_workers", time.monotonic() - t0,
            "s (goal < 10 s)")
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        log.close()
        for n in nodes:
            n.stop()


def main():
    base = tempfile.mkdtemp(prefix="swarm-bench-services-")
    try:
        bench_create(os.path.join(base, "create"))
        bench_rolling(os.path.join(base, "rolling"))
        bench_e2e(os.path.join(base, "e2e"))
    finally:
        subprocess.run(["rm", "-rf", base])


if __name__ == "__main__":
    main()
