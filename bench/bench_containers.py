"""Containers (issue 14): `service create --replicas 3` and `--replicas 50`
of a busybox image from create to all running, warm (image in the node's
store) and cold (a fresh node pulls it), median of runs; memory per running
container (swarmd's share: swarmd's RSS growth plus the shim and `runc run`
kept per container); start latency of one container against one process.
One node (this machine has 2 cores), the image from a docker-registry on
loopback built from busybox-static (tests/integration/registry.py).

Then where one container's start goes: the node logs each start phase at
debug level with the monotonic clock (exec_container.c ctr_phase, the
agent's status sent/acknowledged in session.c); the median of each phase
over the runs, for 1 container and for each of 3 and 50 started at once.

    sudo /usr/bin/python3 bench/bench_containers.py   (root, runc, docker-registry)
    BENCH_CTR_RUNS (3), BENCH_CTR_ONLY=breakdown (only the breakdown)
"""
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

from benchlib import Daemon, fig, median, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import registry  # noqa: E402

RUNS = int(os.environ.get("BENCH_CTR_RUNS", "3"))


def running(m, name):
    for line in m.ok("service", "ls").splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4 and cols[1] == name:
            return cols[3]
    return ""


def containers(node):
    root = node.state_dir / "runc"
    return os.listdir(root) if root.exists() else []


def node_up(base, name, reg, *extra):
    n = Daemon(base, name).start("--insecure-registry", reg.host, *extra)
    n.init()
    wait_for(lambda: " Ready " in n.ok("node", "ls"), timeout=10, what="node ready")
    return n


def node_down(n):
    """Services removed and containers gone, then SIGTERM (snapshots
    unmounted, nothing left behind)."""
    for line in n.ok("service", "ls", "-q").split():
        n.ok("service", "rm", line)
    wait_for(lambda: containers(n) == [], timeout=120, interval=0.05, what="containers gone")
    n.proc.send_signal(signal.SIGTERM)
    n.proc.wait(timeout=60)


def create_to_running(m, name, count, image, *args):
    t0 = time.monotonic()
    m.ok("service", "create", "-d", "--name", name, "--replicas", str(count), image, *args)
    wait_for(lambda: running(m, name) == f"{count}/{count}", timeout=300, interval=0.005,
             what=f"{name} running")
    return time.monotonic() - t0


def remove(m, name):
    m.ok("service", "rm", name)
    wait_for(lambda: containers(m) == [] and name not in m.ok("service", "ls"), timeout=120,
             interval=0.02, what=f"{name} removed")


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    """pid's children, recursively (from /proc/*/stat)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


PHASES = [
    # (name, from the line ..., meaning)
    ("assigned", "create, schedule, dispatch: the node's executor has the task"),
    ("step", "the executor's start step runs (zero-delay timer)"),
    ("image", "image check (in the store: no pull)"),
    ("snapshot", "overlayfs snapshot made and mounted"),
    ("config", "user, /etc files, OCI config.json written"),
    ("starting", "STARTING recorded (task DB)"),
    ("spawned", "shim spawned (runc run under it)"),
    ("pidfile", "runc made the container's init (its pid file seen)"),
    ("running", "RUNNING recorded"),
    ("sent", "RUNNING sent to the manager (status batch)"),
    ("acked", "the manager stored it and answered"),
    ("seen", "`service ls` shows it (CLI poll)"),
]
PHASE_RE = re.compile(r"task (\w+): start phase (\w+) at ([0-9.]+) ms")
SENT_RE = re.compile(r"task (\w+): status 512 sent at ([0-9.]+) ms")
ACK_RE = re.compile(r"task (\w+): status acknowledged at ([0-9.]+) ms")


def phase_times(log_text, t0, seen):
    """{task: {phase: seconds since t0}} from the node's debug log."""
    out = {}
    for m in PHASE_RE.finditer(log_text):
        out.setdefault(m[1], {}).setdefault(m[2], float(m[3]) / 1000 - t0)
    for m in SENT_RE.finditer(log_text):
        if m[1] in out:
            out[m[1]].setdefault("sent", float(m[2]) / 1000 - t0)
    for m in ACK_RE.finditer(log_text):
        ph = out.get(m[1], {})
        if "sent" in ph and "acked" not in ph and float(m[2]) / 1000 - t0 >= ph["sent"]:
            ph["acked"] = float(m[2]) / 1000 - t0
    for ph in out.values():
        ph["seen"] = seen
    return out


def breakdown(n, image, count, runs):
    """Median per phase (ms, each from the previous one) of `count`
    containers created at once; for count > 1 also the last one's."""
    per_phase = {name: [] for name, _ in PHASES}
    totals = []
    for run in range(runs):
        name = f"b{count}x{run}"
        start = n.log_path.stat().st_size
        t0 = time.monotonic()
        totals.append(create_to_running(n, name, count, image, "sleep", "1000"))
        seen = time.monotonic() - t0
        time.sleep(0.2)  # the acknowledgements' lines
        with open(n.log_path, errors="replace") as f:
            f.seek(start)
            tasks = phase_times(f.read(), t0, seen)
        remove(n, name)
        for ph in tasks.values():
            prev = 0.0
            for pname, _ in PHASES:
                if pname in ph:
                    per_phase[pname].append((ph[pname] - prev) * 1000)
                    prev = ph[pname]
    print(f"# start of {count} container(s) at once, phase by phase (median over "
          f"{runs} runs x {count} tasks, ms since the phase before; create to all running "
          f"median {median(totals):.3f} s)")
    for pname, what in PHASES:
        vals = per_phase[pname]
        if vals:
            print(f"  {pname:9s} {median(vals):8.1f} ms  (max {max(vals):7.1f})  {what}")
    return per_phase



def breakdowns(base, reg, image):
    """Where a container's start goes: a node logging at debug level, its
    image pulled once, then 1, 3 and 50 containers started at once."""
    n = node_up(base, "phases", reg, "--log-level", "debug")
    create_to_running(n, "prime", 1, image, "sleep", "1000")
    remove(n, "prime")
    for count in (1, 3, 50):
        breakdown(n, image, count, max(RUNS, 5) if count == 1 else RUNS)
    node_down(n)

def main():
    if os.geteuid() != 0 or not registry.available():
        raise SystemExit("needs root, runc, docker-registry and busybox-static")
    base = Path(tempfile.mkdtemp(prefix="swarm-bench-ctr-"))
    reg = registry.Registry(base / "registry", "127.0.0.1").start()
    image = registry.push_busybox(reg, "busybox", "1")["ref"]
    try:
        if os.environ.get("BENCH_CTR_ONLY") == "breakdown":
            breakdowns(base, reg, image)
            return
        # Cold: a fresh node each run, nothing in its store.
        for count in (3, 50):
            times = []
            for run in range(RUNS):
                n = node_up(base, f"cold{count}x{run}", reg)
                times.append(create_to_running(n, "c", count, image, "sleep", "1000"))
                node_down(n)
            fig(f"container_create_{count}_replicas_cold_median", median(times),
                f"s (runs {', '.join(f'{t:.2f}' for t in times)}; Docker here: "
                f"{'0.37-0.56' if count == 3 else '2.65'} s warm)")
        # Warm: the image is in the store.
        n = node_up(base, "warm", reg)
        create_to_running(n, "prime", 1, image, "sleep", "1000")
        remove(n, "prime")
        for count in (3, 50):
            times = []
            for run in range(RUNS):
                times.append(create_to_running(n, f"w{count}x{run}", count, image, "sleep",
                                               "1000"))
                if count == 50 and run == 0:
                    # Memory per running container, swarmd's share.
                    idle = rss_kib(n.proc.pid)
                    procs = descendants(n.proc.pid)
                    shims = [p for p in procs if comm(p) in ("swarmd-shim", "swarmd", "exe")]
                    runcs = [p for p in procs if comm(p).startswith("runc")]
                    anon = sum(rss_kib(p, "RssAnon") for p in shims + runcs)
                    fig("container_memory_per_running_container", anon / 50 / 1024,
                        f"MB private (shim + runc run per container: {len(shims)} shims, "
                        f"{len(runcs)} runc, RssAnon), swarmd RSS {idle / 1024:.1f} MB "
                        "with 50 running")
                remove(n, f"w{count}x{run}")
            fig(f"container_create_{count}_replicas_warm_median", median(times),
                f"s (runs {', '.join(f'{t:.2f}' for t in times)}; Docker here: "
                f"{'0.37-0.56' if count == 3 else '2.65'} s)")
        # Start latency: one container against one process, create to running.
        ctr, proc = [], []
        for run in range(max(RUNS, 5)):
            ctr.append(create_to_running(n, f"one{run}", 1, image, "sleep", "1000"))
            remove(n, f"one{run}")
            proc.append(create_to_running(n, f"p{run}", 1, "sleep", "1000"))
            remove(n, f"p{run}")
        fig("start_latency_container_vs_process_median", median(ctr),
            f"s container vs {median(proc):.3f} s process (create to running, 1 replica)")
        node_down(n)
        breakdowns(base, reg, image)
    finally:
        reg.stop()


if __name__ == "__main__":
    main()
