"""Local state against damage: a manager's store.db lost, emptied, garbage or
foreign while its Raft log is intact; node-state.pb missing; a garbage
worker/tasks.db; file modes in the state dir and the state dir's own mode and
owner."""
import os
import shutil
import stat
import time

import pytest

from conftest import wait_for
from test_managers import all_reachable, leader_of, make_managers


def service_rows(node):
    return sorted(l.split()[1:3] for l in node.ok("service", "ls").splitlines()[1:])


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
    if how in ("garbage", "foreign"):
        kept = [p.name for p in follower.state_dir.iterdir() if p.name.startswith(f"store.db.{'corrupt' if how == 'garbage' else 'foreign'}-")]
        assert kept, "the unusable store was not kept aside"
