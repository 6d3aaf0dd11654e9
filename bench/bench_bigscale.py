"""A large scale-up on ONE node: time from `service create --replicas N` to
N/N running, on a single manager running the simulated executor (every task
of the service on that one node). While it proceeds, `node ls` is polled:
the figures also say how long the slowest answer took and whether the node
ever left Ready (it must not: a node that misses its heartbeats goes Down,
its tasks are replaced and its whole set is sent again).

    /usr/bin/python3 bench/bench_bigscale.py            # 20000 50000 100000
    BENCH_BIGSCALE_REPLICAS="100000" /usr/bin/python3 bench/bench_bigscale.py
    SWARM_BUILD_DIR=/path/to/other/build ...            # compare two builds

A size that does not converge within BENCH_BIGSCALE_TIMEOUT seconds (default
900) is reported as such (`... did not converge`), and the next size runs.
"""
import os
import tempfile
import time

from benchlib import Daemon, fig

SIZES = [int(x) for x in os.environ.get("BENCH_BIGSCALE_REPLICAS", "20000 50000 100000").split()]
TIMEOUT = float(os.environ.get("BENCH_BIGSCALE_TIMEOUT", "900"))


def running(m):
    r = m.ctl("service", "ls", timeout=60)
    if r.returncode != 0:
        return None
    lines = r.stdout.splitlines()[1:]
    return lines[0].split()[3] if lines else None


def node_status(m):
    t0 = time.monotonic()
    r = m.ctl("node", "ls", timeout=60)
    took = time.monotonic() - t0
    if r.returncode != 0:
        return None, took
    lines = r.stdout.splitlines()
    if len(lines) < 2 or "STATUS" not in lines[0]:
        return None, took
    at = lines[0].index("STATUS")
    return lines[1][at:].split()[0], took


def scale_up(base, n):
    m = Daemon(base, f"big{n}").start("--executor", "sim")
    try:
        m.init()
        deadline = time.monotonic() + 30
        while node_status(m)[0] != "Ready":
            if time.monotonic() > deadline:
                raise SystemExit("node never Ready")
            time.sleep(0.1)
        t0 = time.monotonic()
        m.ok("service", "create", "-d", "--name", "big", "--replicas", str(n), "sleep", "1000")
        slowest, not_ready, answered = 0.0, 0, 0
        done = False
        while time.monotonic() - t0 < TIMEOUT:
            state, took = node_status(m)
            slowest = max(slowest, took)
            if state is not None:
                answered += 1
                if state != "Ready":
                    not_ready += 1
            if running(m) == f"{n}/{n}":
                done = True
                break
            time.sleep(0.5)
        total = time.monotonic() - t0
        downs = m.log_path.read_text(errors="replace").count("missed its heartbeats")
        if done:
            fig(f"scale_up_{n}_replicas_one_sim_node", total, "s")
        else:
            print(f"scale_up_{n}_replicas_one_sim_node: did not converge in {TIMEOUT:.0f} s "
                  f"(last {running(m)})", flush=True)
        fig(f"scale_up_{n}_slowest_node_ls", slowest, "s")
        print(f"scale_up_{n}_node_not_ready_polls: {not_ready} of {answered}", flush=True)
        print(f"scale_up_{n}_heartbeat_timeouts: {downs}", flush=True)
    finally:
        m.stop()


def main():
    base = tempfile.mkdtemp(prefix="swarm-bench-bigscale-")
    try:
        for n in SIZES:
            scale_up(base, n)
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
