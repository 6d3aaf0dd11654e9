"""Local state against damage: a manager's store.db lost, emptied, garbage or
foreign while its Raft log is intact; node-state.pb missing; a garbage
worker/tasks.db; file modes in the state dir and the state dir's own mode and
owner."""
import os
import shutil
import sqlite3
import stat
import time

import pytest

from conftest import wait_for
from test_managers import all_reachable, leader_of, make_managers


def service_rows(node):
    return sorted(l.split()[1:3] for l in node.ok("service", "ls").splitlines()[1:])


def stored_service_names(node):
    """Service names in the node's own store.db, read directly."""
    db = sqlite3.connect(f"file:{node.state_dir / 'store.db'}?mode=ro", uri=True, timeout=5)
    try:
        return sorted(r[0] for r in db.execute("SELECT name FROM services"))
    finally:
        db.close()


def node_view(node):
    return sorted((r["HOSTNAME"], r["MANAGER STATUS"]) for r in node.node_rows())


def damage_store(path, how, foreign=None):
    for suffix in ("-wal", "-shm"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass
    if how == "deleted":
        os.unlink(path)
    elif how == "emptied":
        with open(path, "r+b") as f:
            f.truncate(0)
    elif how == "garbage":
        with open(path, "wb") as f:
            f.write(os.urandom(8192))
    elif how == "foreign":
        shutil.copyfile(foreign, path)


@pytest.mark.parametrize("how", ["deleted", "emptied", "garbage", "foreign"])
def test_follower_store_damaged_is_rebuilt(swarm, how):
    foreign = None
    if how == "foreign":
        # A store of another swarm: its services must never show up here.
        other = swarm.node("x1").start()
        other.ok("swarm", "init", "--advertise-addr", other.ip)
        other.ok("service", "create", "--name", "alien", "--replicas", "0", "true")
        other.stop()
        foreign = other.state_dir / "store.db"
    nodes = make_managers(swarm, 3)
    leader = wait_for(lambda: leader_of(nodes), timeout=10, what="a leader")
    for i in range(3):
        leader.ok("service", "create", "--name", f"web{i}", "--replicas", "0", "true")
    follower = next(n for n in nodes if n is not leader)
    want = service_rows(leader)
    wait_for(lambda: service_rows(follower) == want, timeout=10, what="follower has services")
    follower.stop()
    damage_store(follower.state_dir / "store.db", how, foreign)
    follower.start()
    # Its own view, from its own store, matches the others'.
    wait_for(lambda: service_rows(follower) == want, timeout=20,
             what=f"services on the restarted follower ({how} store)")
    wait_for(lambda: node_view(follower) == node_view(leader), timeout=20,
             what="node ls on the restarted follower")
    # It is a working member: writes through it and to it land everywhere.
    follower.ok("service", "create", "--name", "after", "--replicas", "0", "true")
    want = service_rows(leader)
    assert any(r[0] == "after" for r in want)
    for n in nodes:
        wait_for(lambda: service_rows(n) == want, timeout=10, what=f"services on {n.name}")
    wait_for(lambda: all_reachable(nodes), timeout=15, what="all managers reachable")
    # Its own store holds it all: with the other managers gone (no leader to
    # forward reads to), it answers from its local store.
    want = service_rows(leader)
    wait_for(lambda: stored_service_names(follower) == sorted(r[0] for r in want), timeout=10,
             what="the follower's own store.db caught up")
    for n in nodes:
        if n is not follower:
            n.kill()
    wait_for(lambda: service_rows(follower) == want, timeout=20,
             what="local reads on the rebuilt follower")
    if how in ("garbage", "foreign"):
        kept = [p.name for p in follower.state_dir.iterdir() if p.name.startswith(f"store.db.{'corrupt' if how == 'garbage' else 'foreign'}-")]
        assert kept, "the unusable store was not kept aside"


# ---- file modes and the state dir ------------------------------------------

def loose_modes(state_dir):
    """Every path under the state dir that group or others may touch."""
    loose = []
    for root, dirs, files in os.walk(state_dir):
        for name in [*dirs, *files]:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & 0o077:
                loose.append(f"{os.path.relpath(p, state_dir)} {stat.S_IMODE(st.st_mode):04o}")
    st = os.stat(state_dir)
    if st.st_mode & 0o077:
        loose.append(f". {stat.S_IMODE(st.st_mode):04o}")
    return loose


def test_file_modes_after_init_join_restart(swarm):
    m1 = swarm.node("m1")
    # A state dir made beforehand with mkdir's usual 0755: accepted, tightened.
    m1.state_dir.mkdir(mode=0o755)
    os.chmod(m1.state_dir, 0o755)
    m1.start()
    m1.ok("swarm", "init", "--advertise-addr", m1.ip)
    m2 = swarm.node("m2").start()
    w1 = swarm.node("w1").start()
    m2.ok("swarm", "join", "--token", m1.ok("swarm", "join-token", "-q", "manager").strip(),
          "--advertise-addr", m2.ip, m1.addr)
    w1.ok("swarm", "join", "--token", m1.ok("swarm", "join-token", "-q", "worker").strip(),
          "--advertise-addr", w1.ip, w1.addr.replace(w1.ip, m1.ip))
    m1.ok("service", "create", "--name", "talk", "--mode", "global", "sh", "-c",
          "echo hello; sleep 600")
    wait_for(lambda: sum(" Running " in l for l in m1.ok("service", "ps", "talk").splitlines()) == 3,
             timeout=30, what="talk running on every node")
    nodes = [m1, m2, w1]
    for n in nodes:
        for f in ("node-state.pb", "certificates/swarm-node.key", "swarmd.sock"):
            assert (n.state_dir / f).exists(), f"{n.name}: {f} missing"
    for n in (m1, m2):
        assert (n.state_dir / "store.db").exists() and any((n.state_dir / "raft").iterdir())
    assert (w1.state_dir / "worker" / "tasks.db").exists()
    for n in nodes:
        assert loose_modes(n.state_dir) == [], f"{n.name}: {loose_modes(n.state_dir)}"
    for n in nodes:
        n.stop()
        n.start()
    wait_for(lambda: sum(" Running " in l for l in m1.ok("service", "ps", "talk").splitlines()) == 3,
             timeout=30, what="talk running again after restarts")
    for n in nodes:
        assert loose_modes(n.state_dir) == [], f"{n.name} after restart: {loose_modes(n.state_dir)}"


def refused_start(node, expect):
    node.start(wait=False)
    rc = node.proc.wait(timeout=10)
    assert rc != 0
    text = node.log_path.read_text(errors="replace")
    assert expect in text, text


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_state_dir_writable_by_others_refused(swarm, mode):
    n = swarm.node("m1")
    n.state_dir.mkdir()
    os.chmod(n.state_dir, mode)
    refused_start(n, f"swarmd: state dir {n.state_dir} is writable by group or others "
                     f"(mode {mode:04o}); run chmod 700 {n.state_dir}")
    assert stat.S_IMODE(os.stat(n.state_dir).st_mode) == mode
    assert list(n.state_dir.iterdir()) == []
    os.chmod(n.state_dir, 0o700)
    n.start()
    n.ok("swarm", "init", "--advertise-addr", n.ip)


def test_state_dir_of_another_user_refused(swarm):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown the state dir to nobody")
    n = swarm.node("m1").start()
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    n.stop()
    os.chown(n.state_dir, 65534, 65534)
    refused_start(n, f"swarmd: state dir {n.state_dir} is owned by uid 65534, not by uid 0 "
                     f"that runs swarmd")
    os.chown(n.state_dir, 0, 0)
    n.start()
    wait_for(lambda: "Swarm: active" in n.ok("info"), timeout=10, what="back in its swarm")


# ---- node-state.pb missing ---------------------------------------------------

def test_missing_node_state_manager_rebuilt(swarm):
    nodes = make_managers(swarm, 3)
    leader = wait_for(lambda: leader_of(nodes), timeout=10, what="a leader")
    follower = next(n for n in nodes if n is not leader)
    before = follower.inspect("self")["ID"]
    follower.stop()
    (follower.state_dir / "node-state.pb").unlink()
    follower.start()
    # Still the same manager of the same swarm, not a node that left it.
    info = follower.ok("info")
    assert "Swarm: active" in info or "Swarm: pending" in info, info
    wait_for(lambda: all_reachable(nodes), timeout=20, what="all managers reachable")
    assert follower.inspect("self")["ID"] == before
    assert (follower.state_dir / "node-state.pb").exists()
    follower.ok("node", "update", "--label-add", "back=1", follower.name)
    for n in nodes:
        wait_for(lambda: n.inspect(follower.name)["Spec"].get("Labels") == {"back": "1"},
                 timeout=10, what=f"label seen on {n.name}")
    # And it survives another restart with the rebuilt file.
    follower.stop()
    follower.start()
    wait_for(lambda: all_reachable(nodes), timeout=20, what="all managers reachable again")


def test_missing_node_state_worker_refused(swarm):
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    w = swarm.node("w1").start()
    w.ok("swarm", "join", "--token", m.ok("swarm", "join-token", "-q", "worker").strip(),
         "--advertise-addr", w.ip, m.addr)
    node_id = w.ok("info").split("NodeID: ")[1].split()[0]
    w.stop()
    (w.state_dir / "node-state.pb").unlink()
    refused_start(w, f"swarmd: {w.state_dir}/node-state.pb is missing, but the certificates say "
                     f"this is node {node_id} (swarm-worker)")
    text = w.log_path.read_text(errors="replace")
    assert "refusing to start as if the node had left its swarm" in text
    assert f"swarmctl node rm --force {node_id}" in text
    # Nothing was erased: the certificates are still there for a restore.
    assert (w.state_dir / "certificates" / "swarm-node.key").exists()


def test_missing_node_state_and_store_manager_refused(swarm):
    nodes = make_managers(swarm, 3)
    leader = wait_for(lambda: leader_of(nodes), timeout=10, what="a leader")
    follower = next(n for n in nodes if n is not leader)
    follower.stop()
    (follower.state_dir / "node-state.pb").unlink()
    (follower.state_dir / "store.db").unlink()
    refused_start(follower, "its store.db is gone too, so its raft id is unknown")
    assert "swarmctl node demote" in follower.log_path.read_text(errors="replace")


# ---- a garbage worker/tasks.db ----------------------------------------------

def running_on(manager, service, hostname):
    rows = manager.ok("service", "ps", service).splitlines()[1:]
    return sum(1 for l in rows if f" {hostname} " in l and " Running " in l)


def task_processes(node, argv):
    """Live processes running argv that descend from the node's swarmd."""
    parents = {}
    cmds = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmds[int(pid)] = f.read().split(b"\0")[:-1]
        except OSError:
            continue
    want = [a.encode() for a in argv]
    found = 0
    for pid, cmd in cmds.items():
        if cmd != want:
            continue
        p, hops = pid, 0
        while p > 1 and hops < 10 and p != node.proc.pid:
            p, hops = parents.get(p, 0), hops + 1
        found += p == node.proc.pid
    return found


def test_garbage_tasks_db_worker_recovers(swarm):
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    w = swarm.node("w1").start()
    w.ok("swarm", "join", "--token", m.ok("swarm", "join-token", "-q", "worker").strip(),
         "--advertise-addr", w.ip, m.addr)
    m.ok("service", "create", "--name", "sleepy", "--replicas", "2", "--constraint",
         "node.role==worker", "sleep", "600")
    wait_for(lambda: running_on(m, "sleepy", "w1") == 2, timeout=30, what="2 tasks on w1")
    wait_for(lambda: task_processes(w, ["sleep", "600"]) == 2, timeout=10,
             what="2 task processes under w1")
    w.stop()
    db = w.state_dir / "worker" / "tasks.db"
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{db}{suffix}"):
            os.unlink(f"{db}{suffix}")
    db.write_bytes(b"this is not a database" + os.urandom(8192))
    w.start()
    wait_for(lambda: next((r["STATUS"] for r in m.node_rows() if r["HOSTNAME"] == "w1"), None)
             == "Ready", timeout=20, what="w1 Ready again")
    # Its agent runs again: the tasks are processes of the new swarmd.
    wait_for(lambda: task_processes(w, ["sleep", "600"]) == 2, timeout=30,
             what="2 task processes under the restarted w1")
    wait_for(lambda: running_on(m, "sleepy", "w1") == 2, timeout=30,
             what="2 tasks running on w1 again")
    assert "Error" not in w.ok("info").split("Swarm:")[1].splitlines()[0]
    aside = [p.name for p in db.parent.iterdir() if p.name.startswith("tasks.db.corrupt-")]
    assert aside, list(db.parent.iterdir())
    assert "task db" in w.log_path.read_text(errors="replace")
