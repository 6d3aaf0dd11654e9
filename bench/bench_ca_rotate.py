"""Root CA rotation: `swarm ca --rotate` (without -d, so it returns once every
node has a certificate from the new root and trusts it) on one manager
holding 1,000 simulated workers (bench/simnodes: real joins and mTLS sessions;
each renews over mTLS when the leader asks, as a real node does).

    /usr/bin/python3 bench/bench_ca_rotate.py   # BENCH_SIM_NODES=1000, BENCH_ROTATE_RUNS=3
"""
import os
import re
import signal
import subprocess
import tempfile
import time

from benchlib import BUILD, Daemon, fig, median, wait_for, wait_binary

SIMNODES = BUILD / "bench" / "simnodes"
SIM_NODES = int(os.environ.get("BENCH_SIM_NODES", "1000"))
RUNS = int(os.environ.get("BENCH_ROTATE_RUNS", "3"))


def main():
    wait_binary(SIMNODES)
    base = tempfile.mkdtemp(prefix="swarm-bench-carotate-")
    m = Daemon(base, "m1").start("--executor", "sim")
    sim = None
    log = open(os.path.join(base, "simnodes.log"), "w")
    try:
        m.init()
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        sim = subprocess.Popen([str(SIMNODES), "--manager", m.addr, "--token", token,
                                "--count", str(SIM_NODES), "--dir", os.path.join(base, "sim")],
                               stdout=subprocess.PIPE, stderr=log, text=True)
        line = sim.stdout.readline()
        assert re.match(r"joined: \d+ nodes", line), line
        wait_for(lambda: m.ok("node", "ls").count(" Ready ") == SIM_NODES + 1, timeout=120,
                 interval=0.5, what="all simulated workers Ready")
        times = []
        for _ in range(RUNS):
            before = m.ok("swarm", "ca").strip()
            t0 = time.monotonic()
            r = m.ctl("swarm", "ca", "--rotate", "-q", timeout=600)
            times.append(time.monotonic() - t0)
            if r.returncode != 0 or r.stdout != "" or m.ok("swarm", "ca").strip() == before:
                raise SystemExit(f"swarm ca --rotate failed: {r.stderr}\n{m.log_tail()}")
            wait_for(lambda: m.ok("node", "ls").count(" Ready ") == SIM_NODES + 1, timeout=300,
                     interval=0.5, what="all Ready after the rotation")
        fig(f"ca_rotate_{SIM_NODES}_sim_workers_median", median(times), "s")
        fig(f"ca_rotate_{SIM_NODES}_sim_workers_max", max(times), "s")
    finally:
        if sim is not None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
        log.close()
        m.stop()
        subprocess.run(["rm", "-rf", base])


if __name__ == "__main__":
    main()
