#!/usr/bin/python3
"""swarmd footprint as an idle one-node manager: VmRSS 5 s after `swarm init`
and CPU% over 10 s idle (utime+stime from /proc/PID/stat). For reference,
Docker 20.10 idles at about 85 MB here; the aim is under 10 MB."""
import os
import time

from benchlib import Daemon, fig

SETTLE_S = float(os.environ.get("BENCH_RSS_SETTLE", "5"))
IDLE_S = float(os.environ.get("BENCH_IDLE_SECONDS", "10"))


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)


def main():
    with Daemon(name="rss") as d:
        d.start()
        pid = d.proc.pid
        fig("rss_inactive", status_kb(pid, "VmRSS") / 1024, "MB", "{:.1f}")
        d.init()
        t_init = time.monotonic()
        # Settle: sample once SETTLE_S have passed since init (bounded sleep).
        time.sleep(max(0.0, SETTLE_S - (time.monotonic() - t_init)))
        assert d.proc.poll() is None, d.log_tail()
        fig("rss_idle_manager", status_kb(pid, "VmRSS") / 1024, "MB", "{:.1f}")
        fig("rss_idle_manager_peak", status_kb(pid, "VmHWM") / 1024, "MB", "{:.1f}")
        print(f"threads: {status_kb(pid, 'Threads')}")
        hz = os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(IDLE_S)
        c1, t1 = cpu_ticks(pid), time.monotonic()
        fig("cpu_idle_manager", 100.0 * (c1 - c0) / hz / (t1 - t0), "%", "{:.2f}")
        fig("cpu_idle_window", t1 - t0, "s", "{:.1f}")
        print("reference: docker 20.10 idle RSS about 85 MB; aim under 10 MB")


if __name__ == "__main__":
    main()
