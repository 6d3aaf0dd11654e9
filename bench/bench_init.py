#!/usr/bin/python3
"""`swarm init` to `node ls` answering, on a fresh swarmd each run.

Figures: daemon start to control socket answering; `swarmctl swarm init`
alone; from launching `swarm init` until `swarmctl node ls` succeeds.
Median and max over RUNS (default 10) runs."""
import os
import time

from benchlib import Daemon, fig, median

RUNS = int(os.environ.get("BENCH_INIT_RUNS", "10"))


def one_run():
    with Daemon(name="init") as d:
        t = time.perf_counter()
        d.start()
        start_s = time.perf_counter() - t
        t0 = time.perf_counter()
        d.init()
        t1 = time.perf_counter()
        deadline = t0 + 30
        while True:
            r = d.ctl("node", "ls")
            if r.returncode == 0 and len(r.stdout.splitlines()) == 2:
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"node ls never answered: {r.stderr}\n{d.log_tail()}")
        t2 = time.perf_counter()
        return start_s, t1 - t0, t2 - t0


def main():
    # What one swarmctl invocation costs, as a floor for the figures below.
    with Daemon(name="floor") as d:
        d.start()
        xs = []
        for _ in range(RUNS):
            t = time.perf_counter()
            d.ok("info")
            xs.append(time.perf_counter() - t)
        fig("swarmctl_info_inactive_median", median(xs), "s")
    runs = [one_run() for _ in range(RUNS)]
    print(f"runs: {RUNS}")
    for i, name in enumerate(["daemon_start_to_socket", "swarm_init", "init_to_node_ls"]):
        xs = [r[i] for r in runs]
        fig(f"{name}_median", median(xs), "s")
        fig(f"{name}_max", max(xs), "s")


if __name__ == "__main__":
    main()
