"""The dispatcher at scale and under hostile workers: assignments and list
replies larger than one message, checked worker reports, the manager list
pushed to sessions, and removed workers stopping their tasks."""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conftest import ROOT, parse_table, wait_for
from test_managers import leader_of
from test_workers import join_worker, status_of

SLEEP = "sleep"
PS_COLS = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"]


def ps(m, *args):
    return parse_table(m.ok("service", "ps", "--no-trunc", *args), PS_COLS)


def replicas(m, svc):
    rows = parse_table(m.ok("service", "ls"), ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"])
    return next((r["REPLICAS"] for r in rows if r["NAME"] == svc), None)


def running_rows(rows):
    return [r for r in rows if r["DESIRED STATE"] == "Running"
            and r["CURRENT STATE"].startswith("Running")]


def pids_with(marker):
    """Processes whose environment holds MARKER (a task's --env)."""
    found = set()
    needle = marker.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if needle in f.read():
                    found.add(int(d))
        except OSError:
            continue
    return found


def alive_with(pid, marker):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return marker.encode() in env and state != "Z"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    out = tmp_path_factory.mktemp("dispatch_stubs")
    subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--python_out={out}", f"--grpc_python_out={out}",
                    *[str(p) for p in (ROOT / "proto").glob("*.proto")]], check=True)
    sys.path.insert(0, str(out))
    return out


def drained_manager(swarm):
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    wait_for(lambda: m.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="m1 ready")
    m.ok("node", "update", "--availability", "drain", "m1")
    return m


# ------------------------------------------------------------ big messages

def test_hundred_replicas_of_60k_env_all_shown(swarm):
    """100 tasks x 60 KB of env: 6 MB of assignments and of list replies,
    over the 4 MiB message limit; every row is shown and the worker gets
    its complete set again after a restart."""
    m = drained_manager(swarm)
    w = swarm.node("w1").start("--executor", "sim")
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
    wait_for(lambda: (status_of(m, "w1") or {}).get("STATUS") == "Ready", timeout=10,
             what="w1 Ready")
    big = "x" * 60000
    m.ok("service", "create", "-d", "--name", "big", "--replicas", "100", "--env",
         f"BIG={big}", SLEEP, "1000", timeout=60)
    wait_for(lambda: replicas(m, "big") == "100/100", timeout=60, interval=0.5,
             what="100/100 running")
    rows = ps(m, "big")
    assert len(rows) == 100, len(rows)
    assert len(running_rows(rows)) == 100
    assert {r["NODE"] for r in rows} == {"w1"}
    assert len(parse_table(m.ok("node", "ps", "w1"), PS_COLS)) == 100
    assert len(m.ok("service", "ps", "-q", "big").split()) == 100
    # Inspect of many services of 60 KB each: one reply per service.
    for name in ("big2", "big3"):
        m.ok("service", "create", "-d", "--name", name, "--replicas", "0", "--env",
             f"BIG={big}", SLEEP, "1000", timeout=60)
    out = m.ok("service", "inspect", "big", "big2", "big3")
    assert [s["Spec"]["Name"] for s in json.loads(out)] == ["big", "big2", "big3"]
    assert out.count(f'"BIG={big}"') == 3
    assert len(parse_table(m.ok("service", "ls"), ["ID", "NAME"])) == 3

    # A restarted worker gets its 6 MB complete set in chunks and applies it:
    # what changed while it was away (scaled down to 60) reaches it only
    # that way; then its stream stays open for the next change.
    w.kill()
    m.ok("service", "scale", "-d", "big=60", timeout=60)
    w.start("--executor", "sim")
    wait_for(lambda: (status_of(m, "w1") or {}).get("STATUS") == "Ready", timeout=15,
             what="w1 Ready again")

    def settled(n):
        rows = ps(m, "big")
        stale = [r for r in rows if r["DESIRED STATE"] != "Running"
                 and r["CURRENT STATE"].startswith("Running")]
        return not stale and len(running_rows(rows)) == n and replicas(m, "big") == f"{n}/{n}"
    wait_for(lambda: settled(60), timeout=60, interval=0.5,
             what="the tasks scaled away stopped on the worker")
    m.ok("service", "scale", "-d", "big=61", timeout=60)
    wait_for(lambda: settled(61), timeout=60, interval=0.5, what="61/61 running")
    log = w.log_path.read_text(errors="replace")
    assert "exceeds" not in log and "out of memory" not in log, w.log_tail()


def test_assignments_larger_than_the_response_budget(swarm):
    """600 tasks x 60 KB of env on one worker: 36 MB of assignments, more
    than a connection's response budget (32 MiB). The dispatcher sends them
    as fast as the worker takes them instead of queueing them all, so the
    stream is never reset for its budget: all of them run, also after the
    worker restarts and gets its complete set again."""
    m = drained_manager(swarm)
    w = swarm.node("w1").start("--executor", "sim")
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
    wait_for(lambda: (status_of(m, "w1") or {}).get("STATUS") == "Ready", timeout=10,
             what="w1 Ready")
    big = "x" * 60000
    m.ok("service", "create", "-d", "--name", "big", "--replicas", "600", "--env",
         f"BIG={big}", SLEEP, "1000", timeout=120)
    wait_for(lambda: replicas(m, "big") == "600/600", timeout=180, interval=1,
             what="600/600 running")
    w.kill()
    m.ok("service", "scale", "-d", "big=590", timeout=60)
    w.start("--executor", "sim")
    wait_for(lambda: (status_of(m, "w1") or {}).get("STATUS") == "Ready", timeout=30,
             what="w1 Ready again")
    wait_for(lambda: replicas(m, "big") == "590/590" and len(running_rows(ps(m, "big"))) == 590,
             timeout=180, interval=1, what="590/590 running after the restart")
    log = m.log_path.read_text(errors="replace")
    assert "over its budget" not in log, [l for l in log.splitlines() if "budget" in l][:3]
    assert "assignments stream ended" not in log, m.log_tail()


# ---------------------------------------------------------- worker reports

def test_worker_reports_are_checked(swarm, stubs):
    import grpc
    import dispatcher_pb2
    import dispatcher_pb2_grpc
    import objects_pb2

    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    w = join_worker(swarm, m, "w1")
    m.ok("service", "create", "-d", "--name", "mine", "--constraint", "node.hostname==w1",
         SLEEP, "1000")
    m.ok("service", "create", "-d", "--name", "other", "--constraint", "node.hostname==m1",
         SLEEP, "1000")
    wait_for(lambda: replicas(m, "mine") == "1/1" and replicas(m, "other") == "1/1",
             timeout=20, what="both running")
    mine = ps(m, "mine")[0]["ID"]
    other = ps(m, "other")[0]["ID"]
    # Speak for w1 with its certificate (its daemon stopped).
    w.kill()
    certs = w.state_dir / "certificates"
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs / "swarm-root-ca.crt").read_bytes(),
        private_key=(certs / "swarm-node.key").read_bytes(),
        certificate_chain=(certs / "swarm-node.crt").read_bytes())
    ch = grpc.secure_channel(m.addr, creds, options=[
        ("grpc.ssl_target_name_override", "swarm-manager"),
        ("grpc.max_send_message_length", 8 << 20)])
    try:
        stub = dispatcher_pb2_grpc.DispatcherStub(ch)
        stream = stub.Session(dispatcher_pb2.SessionRequest(), timeout=120)
        sid = next(stream).session_id
        assert sid
        now = int(time.time() * 1000)
        S = objects_pb2

        def report(*updates):
            stub.Heartbeat(dispatcher_pb2.HeartbeatRequest(session_id=sid), timeout=10)
            req = dispatcher_pb2.UpdateTaskStatusRequest(session_id=sid)
            for tid, st in updates:
                req.updates.add(task_id=tid, status=st)
            try:
                stub.UpdateTaskStatus(req, timeout=30)
                return grpc.StatusCode.OK, ""
            except grpc.RpcError as e:
                return e.code(), e.details()

        def status(state=S.TASK_STATE_RUNNING, ts=None, err="", msg="running"):
            return S.TaskStatus(state=state, timestamp=now if ts is None else ts, err=err,
                                message=msg)

        unknown = "0" * 25
        # Unknown and foreign task IDs.
        code, why = report((unknown, status()))
        assert code == grpc.StatusCode.NOT_FOUND and unknown in why, (code, why)
        code, why = report((other, status()))
        assert code == grpc.StatusCode.PERMISSION_DENIED and other in why, (code, why)
        # All or nothing: a good update next to an unknown ID is not recorded.
        code, _ = report((mine, status(S.TASK_STATE_FAILED, err="boom-not-recorded")),
                         (unknown, status()))
        assert code == grpc.StatusCode.NOT_FOUND
        # A 1 MB error string, zero / negative / far-future timestamps, a
        # manager-only state, a malformed ID.
        for bad in [status(S.TASK_STATE_FAILED, err="e" * (1 << 20)), status(ts=0),
                    status(ts=-5), status(ts=now + 7 * 24 * 3600 * 1000),
                    status(S.TASK_STATE_PENDING)]:
            code, why = report((mine, bad))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, why)
        code, why = report(("../../etc", status()))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "invalid task ID" in why
        # 3 MB of unknown IDs: refused by count, before any lookup.
        code, why = report(*[(f"{i:025d}", status()) for i in range(60000)])
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "too many updates" in why, why
        # A state older than the recorded one.
        code, why = report((mine, status(S.TASK_STATE_PREPARING)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and mine in why, (code, why)
        # Nothing of the refused reports landed; a good one does.
        row = ps(m, "mine")[0]
        assert row["CURRENT STATE"].startswith("Running") and "boom" not in row["ERROR"], row
        assert report((mine, status(S.TASK_STATE_FAILED, err="worker says boom")))[0] == \
            grpc.StatusCode.OK
        wait_for(lambda: "worker says boom" in m.ok("service", "ps", "--no-trunc", "mine"),
                 timeout=10, what="the accepted report recorded")
        stream.cancel()
    finally:
        ch.close()


# ------------------------------------------------------------ manager list

def test_worker_learns_managers_added_later(swarm, stubs):
    """1 manager + a worker; 2 managers join; the first dies: the worker
    fails over (it was told about the new managers), stays Ready, and its
    tasks are not started elsewhere."""
    import localstate_pb2

    m1 = drained_manager(swarm)
    w = join_worker(swarm, m1, "w1")
    marker = f"DISPATCH_MGR_{uuid.uuid4().hex}"
    m1.ok("service", "create", "-d", "--name", "keep", "--replicas", "2", "--env",
          f"{marker}=1", SLEEP, "1000")
    wait_for(lambda: replicas(m1, "keep") == "2/2", timeout=20, what="2/2")
    ids = {r["ID"] for r in running_rows(ps(m1, "keep"))}
    pids = wait_for(lambda: pids_with(marker), timeout=10, what="task processes")

    token = m1.ok("swarm", "join-token", "-q", "manager").strip()
    others = [swarm.node(n).start() for n in ("m2", "m3")]
    for n in others:
        n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, m1.addr)
    managers = [m1] + others
    wait_for(lambda: all(sorted(r["MANAGER STATUS"] for r in n.node_rows()
                                if r["MANAGER STATUS"]) == ["Leader", "Reachable", "Reachable"]
                         for n in managers), timeout=20, what="3 managers reachable")

    # The worker hears of them (and keeps them in its local state).
    def known():
        ls = localstate_pb2.LocalState()
        ls.ParseFromString((w.state_dir / "node-state.pb").read_bytes())
        return {n.addr for n in others} <= set(ls.managers)
    wait_for(known, timeout=10, what="the worker's manager list holding m2 and m3")

    m1.kill()
    wait_for(lambda: leader_of(others), timeout=20, what="a new leader")
    wait_for(lambda: (status_of(others[0], "w1") or {}).get("STATUS") == "Ready", timeout=15,
             what="w1 Ready after failover")
    time.sleep(4)  # past 3 heartbeat periods: a worker without a session would be Down
    assert status_of(others[0], "w1")["STATUS"] == "Ready"
    rows = running_rows(ps(others[0], "keep"))
    assert {r["ID"] for r in rows} == ids, rows
    assert all(r["NODE"] == "w1" for r in rows)
    assert all(alive_with(p, marker) for p in pids)


# --------------------------------------------------------- removed workers

def test_removed_worker_stops_its_tasks(swarm):
    m = drained_manager(swarm)
    w1 = join_worker(swarm, m, "w1")
    marker = f"DISPATCH_RM_{uuid.uuid4().hex}"
    m.ok("service", "create", "-d", "--name", "rmme", "--replicas", "2", "--env",
         f"{marker}=1", SLEEP, "1000")
    wait_for(lambda: replicas(m, "rmme") == "2/2", timeout=20, what="2/2 on w1")
    old = wait_for(lambda: (lambda p: p if len(p) >= 2 else None)(pids_with(marker)),
                   timeout=10, what="w1's task processes")
    w2 = join_worker(swarm, m, "w2")

    m.ok("node", "rm", "--force", "w1")
    # w1 learns it was removed: its tasks' processes end, it leaves the swarm.
    wait_for(lambda: not any(alive_with(p, marker) for p in old), timeout=20,
             what="w1's task processes gone")
    wait_for(lambda: "Swarm: inactive" in w1.ok("info"), timeout=10, what="w1 inactive")
    assert "removed from the swarm" in w1.log_path.read_text(errors="replace")
    assert w1.alive()
    # The replacements run on w2.
    wait_for(lambda: len([r for r in running_rows(ps(m, "rmme")) if r["NODE"] == "w2"]) == 2,
             timeout=20, what="replacements running on w2")
    assert len(pids_with(marker) - old) >= 2
    assert w2.alive()


def test_loop_stall_does_not_mark_live_nodes_down(swarm, monkeypatch, tmp_path):
    """Timers before reads: when the leader's loop was held for longer than
    three heartbeat periods (a long store transaction, a big pass), the
    heartbeats that came meanwhile wait unread while libuv runs the
    heartbeat check first. Live nodes must stay Ready. The stall is made
    with the clock shim: the manager's monotonic clock jumps 6 s at once,
    which is what its loop sees after a 6 s callback."""
    from test_certs import SHIM
    assert SHIM.exists(), f"{SHIM} not built"
    mono = tmp_path / "mono-offset"
    mono.write_text("0")
    with monkeypatch.context() as env:
        env.setenv("LD_PRELOAD", str(SHIM))
        env.setenv("SWARM_CLOCK_MONO_OFFSET_FILE", str(mono))
        opts = os.environ.get("ASAN_OPTIONS", "")
        env.setenv("ASAN_OPTIONS", ":".join(filter(None, [opts, "verify_asan_link_order=0"])))
        m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    wait_for(lambda: m.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="manager ready")
    w = join_worker(swarm, m)  # a worker whose clock and loop run undisturbed
    mono.write_text("6000")
    # Watch for well over the 3 s a node gets: nobody may go Down.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = m.log_path.read_text(errors="replace")
        assert "missed its heartbeats" not in log, log[-2000:]
        rows = parse_table(m.ok("node", "ls"), ["ID", "HOSTNAME", "STATUS", "AVAILABILITY"])
        assert sorted(r["STATUS"] for r in rows) == ["Ready", "Ready"], rows
        time.sleep(0.2)
    # The manager did see its loop stall (the shim was in effect).
    assert "ms late: heartbeat deadlines moved" in m.log_path.read_text(errors="replace")
    # A node that really goes silent is still found (later by the stall).
    w.kill()
    wait_for(lambda: status_of(m, "w1")["STATUS"] == "Down", timeout=15, interval=0.1,
             what="killed worker Down")
