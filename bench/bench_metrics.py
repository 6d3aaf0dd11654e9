#!/usr/bin/python3
"""The cost of metrics on an idle one-node manager: two managers started side
by side, one without --metrics-addr and one with it and scraped every second
(over HTTP, as Prometheus does), for BENCH_METRICS_SECONDS (30). Prints each
one's VmRSS at the end and CPU% over the window (utime+stime from
/proc/PID/stat), the difference, and the scrape's median time and size.
Run side by side, both see the same machine noise."""
import os
import statistics
import time
import urllib.request

from benchlib import Daemon, fig

WINDOW_S = float(os.environ.get("BENCH_METRICS_SECONDS", "30"))
SETTLE_S = 5.0
PORT = 9323


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)


def scrape(url):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
    return time.monotonic() - t0, len(body)


def main():
    hz = os.sysconf("SC_CLK_TCK")
    with Daemon(name="metrics-off") as off, Daemon(name="metrics-on") as on:
        off.start()
        on.start("--metrics-addr", f"{on.ip}:{PORT}")
        off.init()
        on.init()
        url = f"http://{on.ip}:{PORT}/metrics"
        time.sleep(SETTLE_S)
        for d in (off, on):
            assert d.proc.poll() is None, d.log_tail()
        c0 = {d.name: cpu_ticks(d.proc.pid) for d in (off, on)}
        t0 = time.monotonic()
        times, sizes = [], []
        next_at = t0
        while time.monotonic() - t0 < WINDOW_S:
            dt, n = scrape(url)
            times.append(dt)
            sizes.append(n)
            next_at += 1.0
            time.sleep(max(0.0, next_at - time.monotonic()))
        t1 = time.monotonic()
        res = {}
        for d in (off, on):
            cpu = 100.0 * (cpu_ticks(d.proc.pid) - c0[d.name]) / hz / (t1 - t0)
            rss = status_kb(d.proc.pid, "VmRSS") / 1024
            res[d.name] = (rss, cpu)
            fig(f"{d.name}_rss", rss, "MB", "{:.1f}")
            fig(f"{d.name}_cpu", cpu, "%", "{:.2f}")
        fig("metrics_rss_cost", res["metrics-on"][0] - res["metrics-off"][0], "MB", "{:.2f}")
        fig("metrics_cpu_cost", res["metrics-on"][1] - res["metrics-off"][1], "% of a core",
            "{:.2f}")
        fig("scrapes", len(times), "", "{:d}")
        fig("scrape_median", statistics.median(times) * 1000, "ms", "{:.2f}")
        fig("scrape_size", statistics.median(sizes) / 1024, "KiB", "{:.1f}")
        fig("window", t1 - t0, "s", "{:.1f}")


if __name__ == "__main__":
    main()
