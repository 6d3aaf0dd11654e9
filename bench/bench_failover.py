#!/usr/bin/python3
"""Manager failover: three real managers (swarmd processes, each on its own
loopback address, port 2377, own state dir), the leader killed with SIGKILL,
KILLS times (default 10, env BENCH_FAILOVER_KILLS).

For each kill, measured from the kill:
  - new leader: `swarmctl node ls` on the survivors, polled every 20 ms, until
    one shows a Leader that is not the killed manager;
  - first write: `swarmctl node update --label-add` on a survivor, polled
    (alternating survivors), until one succeeds.
Both polls run side by side from the moment of the kill. Then the killed
manager is restarted and the next round waits until it is Reachable again.

Figures: median and max of both. Goal: median under 1.5 s, max under 3 s
(Docker 20.10 on this kind of machine: 10-17 s)."""
import os
import shutil
import sys
import tempfile
import threading
import time

from benchlib import Daemon, fig, median

KILLS = int(os.environ.get("BENCH_FAILOVER_KILLS", "10"))
POLL_S = 0.020
ROUND_TIMEOUT_S = 30


def manager_status(d, timeout=10):
    """{hostname: MANAGER STATUS} as `d` sees it, or None."""
    try:
        r = d.ctl("node", "ls", timeout=timeout)
    except Exception:
        return None
    lines = r.stdout.splitlines()
    if r.returncode != 0 or not lines or "MANAGER STATUS" not in lines[0]:
        return None
    h = lines[0]
    h0, h1 = h.index("HOSTNAME"), h.index("STATUS")
    m0, m1 = h.index("MANAGER STATUS"), h.index("ENGINE VERSION")
    return {line[h0:h1].strip(): line[m0:m1].strip() for line in lines[1:]}


def leader_seen_by(d):
    st = manager_status(d)
    if st is None:
        return None
    leaders = [name for name, s in st.items() if s == "Leader"]
    return leaders[0] if len(leaders) == 1 else None


def all_reachable(ds):
    for d in ds:
        st = manager_status(d)
        if st is None or sorted(st.values()) != sorted(["Leader"] + ["Reachable"] * (len(ds) - 1)):
            return False
    return True


def poll(what, pred, deadline):
    """Call pred() every POLL_S until true; the time it became true, or None."""
    while time.monotonic() < deadline:
        t = time.monotonic()
        if pred():
            return time.monotonic()
        time.sleep(max(0.0, POLL_S - (time.monotonic() - t)))
    return None


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = pred()
        if r:
            return r
        time.sleep(0.05)
    raise SystemExit(f"bench_failover: timed out after {timeout}s waiting for {what}")


def one_round(ds, rnd):
    leader_name = wait(lambda: (lambda names: names.pop() if len(names) == 1 and None not in names
                                else None)({leader_seen_by(d) for d in ds}),
                       15, "all managers to agree on a leader")
    leader = next(d for d in ds if d.name == leader_name)
    survivors = [d for d in ds if d is not leader]
    leader.proc.kill()
    t0 = time.monotonic()
    deadline = t0 + ROUND_TIMEOUT_S
    out = {}

    def new_leader():
        i = [0]

        def pred():
            d = survivors[i[0] % len(survivors)]
            i[0] += 1
            name = leader_seen_by(d)
            return name is not None and name != leader_name
        out["leader"] = poll("new leader", pred, deadline)

    def first_write():
        i = [0]

        def pred():
            d = survivors[i[0] % len(survivors)]
            i[0] += 1
            try:
                r = d.ctl("node", "update", "--label-add", f"round{rnd}=1", d.name, timeout=20)
            except Exception:
                return False
            return r.returncode == 0
        out["write"] = poll("first write", pred, deadline)

    threads = [threading.Thread(target=new_leader), threading.Thread(target=first_write)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(ROUND_TIMEOUT_S + 30)
    leader.proc.wait(timeout=10)
    if out.get("leader") is None or out.get("write") is None:
        raise SystemExit(f"bench_failover: round {rnd}: no new leader or no write within "
                         f"{ROUND_TIMEOUT_S}s\n" + "\n".join(d.log_tail() for d in survivors))
    # Bring the killed manager back; it must be Reachable before the next kill.
    leader.start()
    wait(lambda: all_reachable(ds), 30, f"{leader.name} Reachable again")
    return out["leader"] - t0, out["write"] - t0, leader_name


def main():
    base = tempfile.mkdtemp(prefix="swarm-bench-failover-")
    ds = [Daemon(base=base, name=f"f{i + 1}") for i in range(3)]
    try:
        for d in ds:
            d.start()
        ds[0].init()
        token = ds[0].ok("swarm", "join-token", "-q", "manager").strip()
        for d in ds[1:]:
            d.ok("swarm", "join", "--token", token, "--advertise-addr", d.ip, ds[0].addr)
        wait(lambda: all_reachable(ds), 30, "3 managers reachable")
        rounds = []
        for rnd in range(KILLS):
            el, wr, killed = one_round(ds, rnd)
            rounds.append((el, wr))
            print(f"# kill {rnd + 1}: {killed} killed, new leader after {el:.3f} s, "
                  f"first write after {wr:.3f} s", file=sys.stderr, flush=True)
        print(f"failover_kills: {len(rounds)} kills")
        els = [r[0] for r in rounds]
        wrs = [r[1] for r in rounds]
        fig("failover_new_leader_median", median(els), "s")
        fig("failover_new_leader_max", max(els), "s")
        fig("failover_first_write_median", median(wrs), "s")
        fig("failover_first_write_max", max(wrs), "s")
    finally:
        for d in ds:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait(timeout=15)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
