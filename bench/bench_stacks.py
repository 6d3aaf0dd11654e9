"""Stacks (issue 15): the time from `swarmctl stack deploy` of a 10-service
stack (one /bin/sleep replica each, on the stack's default overlay network)
until `stack services` shows every service converged (1/1), with nodes as
hosts (a manager and a worker, each in a network namespace of its own,
tests/integration/netlab.py) and the process executor. The stack is removed
(`stack rm`, which waits for its tasks) between runs; BENCH_STACK_RUNS runs
(default 5), median and spread printed. Needs root and network namespaces
(says so and exits 0 otherwise).

    /usr/bin/python3 bench/bench_stacks.py
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from bench_network import Node, wait_for  # noqa: E402
from benchlib import SWARMD, wait_binary  # noqa: E402
from netlab import NetLab, netns_unavailable  # noqa: E402

RUNS = int(os.environ.get("BENCH_STACK_RUNS", "5"))
SERVICES = 10


def compose(path):
    lines = ["version: '3.8'", "services:"]
    for i in range(SERVICES):
        lines += [f"  s{i}:", "    image: /bin/sleep", "    command: ['1000']"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def converged(m):
    r = m.ctl("stack", "services", "--format", "{{.Replicas}}", "bench")
    rows = r.stdout.split()
    return r.returncode == 0 and len(rows) == SERVICES and all(x == "1/1" for x in rows)


def main():
    reason = netns_unavailable()
    if reason:
        print(f"# bench_stacks skipped: {reason}")
        return
    wait_binary(SWARMD)
    base = Path(tempfile.mkdtemp(prefix="swarm-bench-stacks-"))
    lab = NetLab(2, base="10.217").build()
    nodes = []
    try:
        m = Node(base, "m1", lab.ips[0], lab.names[0])
        nodes.append(m)
        w = Node(base, "w2", lab.ips[1], lab.names[1])
        nodes.append(w)
        m.ok("swarm", "init", "--advertise-addr", m.ip)
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{m.ip}:2377")
        wait_for(lambda: m.ok("node", "ls").count("Ready") == 2, 20, "2 nodes Ready")
        f = compose(base / "docker-compose.yml")
        times = []
        for _ in range(RUNS):
            t0 = time.monotonic()
            m.ok("stack", "deploy", "-c", f, "bench")
            wait_for(lambda: converged(m), 120, "every service 1/1")
            times.append((time.monotonic() - t0) * 1000)
            m.ok("stack", "rm", "bench")
        print(f"stack_deploy_{SERVICES}_services_to_converged_median: {statistics.median(times):.0f} ms")
        print(f"stack_deploy_{SERVICES}_services_to_converged_min_max: {min(times):.0f}..{max(times):.0f} ms")
    finally:
        for n in nodes:
            n.stop()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            if line.split()[4].startswith(str(base)):
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        lab.destroy()
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)


if __name__ == "__main__":
    main()
