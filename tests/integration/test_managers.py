"""Manager quorum: joining with tokens, raft over mutual TLS, failover,
forwarding to the leader, quorum loss and recovery, --force-new-cluster."""
import random
import re
import signal
import time

import pytest

from conftest import wait_for

NO_LEADER = ("The swarm does not have a leader. It's possible that too few managers are "
             "online. Make sure more than half of the managers are online.")


def leader_of(nodes):
    """The node that every live manager's `node ls` agrees is Leader, or None."""
    names = set()
    for n in nodes:
        if not n.alive():
            continue
        r = n.ctl("node", "ls", timeout=10)
        if r.returncode != 0:
            return None
        rows = [line for line in r.stdout.splitlines()[1:] if "Leader" in line]
        if len(rows) != 1:
            return None
        names.add(rows[0].split()[2] if rows[0].split()[1] == "*" else rows[0].split()[1])
    if len(names) != 1:
        return None
    name = names.pop()
    return next((n for n in nodes if n.name == name), None)


def make_managers(swarm, count):
    nodes = [swarm.node(f"m{i + 1}").start() for i in range(count)]
    first = nodes[0]
    first.ok("swarm", "init", "--advertise-addr", first.ip)
    token = first.ok("swarm", "join-token", "-q", "manager").strip()
    for n in nodes[1:]:
        out = n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, first.addr)
        assert out.strip() == "This node joined a swarm as a manager.", out
    wait_for(lambda: all_reachable(nodes), timeout=15, what="all managers reachable")
    return nodes


def all_reachable(nodes):
    for n in nodes:
        rows = n.node_rows()
        if sorted(r["MANAGER STATUS"] for r in rows) != sorted(
                ["Leader"] + ["Reachable"] * (len(nodes) - 1)):
            return False
    return True


def write_label(node, key, value="1", timeout=30):
    return node.ctl("node", "update", "--label-add", f"{key}={value}", "m1", timeout=timeout)


def test_three_managers_join_and_agree(swarm):
    nodes = make_managers(swarm, 3)
    ids = {n.inspect("self")["ID"] for n in nodes}
    assert len(ids) == 3
    for n in nodes:
        rows = n.node_rows()
        assert sorted(r["HOSTNAME"] for r in rows) == ["m1", "m2", "m3"]
        assert all(r["STATUS"] == "Ready" or r["STATUS"] == "Unknown" for r in rows)
        info = n.ok("info")
        assert "Managers: 3" in info and "Nodes: 3" in info, info
        for other in nodes:
            assert other.addr in info
    # A write through a follower is forwarded to the leader.
    leader = leader_of(nodes)
    follower = next(n for n in nodes if n is not leader)
    follower.ok("node", "update", "--label-add", "via=follower", "m2")
    wait_for(lambda: all(n.inspect("m2")["Spec"].get("Labels") == {"via": "follower"}
                         for n in nodes), timeout=5, what="label replicated")
    # Each manager's certificate says manager; the join token rotation is seen everywhere.
    old = nodes[0].ok("swarm", "join-token", "-q", "manager").strip()
    follower.ok("swarm", "join-token", "--rotate", "manager")
    wait_for(lambda: all(n.ok("swarm", "join-token", "-q", "manager").strip() != old
                         for n in nodes), timeout=5, what="rotated token everywhere")


@pytest.mark.parametrize("count", [3, 5])
def test_kill_leader_repeatedly(swarm, count):
    nodes = make_managers(swarm, count)
    for round_ in range(3 if count == 3 else 2):
        leader = wait_for(lambda: leader_of(nodes), timeout=10, what="a leader")
        leader.kill()
        survivors = [n for n in nodes if n.alive()]
        new = wait_for(lambda: leader_of(survivors), timeout=10, what="a new leader")
        assert new is not leader
        r = write_label(random.choice(survivors), f"round{round_}")
        assert r.returncode == 0, r.stderr
        leader.start()
        wait_for(lambda: all_reachable(nodes), timeout=20,
                 what="the restarted manager Reachable again")
    labels = nodes[0].inspect("m1")["Spec"]["Labels"]
    assert all(f"round{i}" in labels for i in range(2))


def test_quorum_loss_and_recovery(swarm):
    nodes = make_managers(swarm, 3)
    survivor = nodes[0]
    for n in nodes[1:]:
        n.kill()
    # Writes fail fast with Docker's message once the leader is gone.
    def fails_with_no_leader():
        r = write_label(survivor, "lost", timeout=30)
        return r.returncode != 0 and NO_LEADER in r.stderr
    wait_for(fails_with_no_leader, timeout=15, interval=0.2, what="the quorum-lost error")
    t0 = time.monotonic()
    r = write_label(survivor, "lost2")
    assert r.returncode != 0 and NO_LEADER in r.stderr
    assert time.monotonic() - t0 < 2.5, "a write without quorum must fail fast"
    # Reads of the last known state still answer.
    assert len(survivor.node_rows()) == 3
    # Bring the others back: the swarm recovers by itself.
    for n in nodes[1:]:
        n.start()
    wait_for(lambda: write_label(survivor, "back").returncode == 0, timeout=20, interval=0.3,
             what="writes after recovery")
    assert "back" in survivor.inspect("m1")["Spec"]["Labels"]


def test_force_new_cluster_from_one_survivor(swarm):
    nodes = make_managers(swarm, 3)
    nodes[0].ok("node", "update", "--label-add", "kept=yes", "m1")
    survivor = nodes[0]
    for n in nodes[1:]:
        n.kill()
    wait_for(lambda: write_label(survivor, "x").returncode != 0, timeout=15, what="quorum lost")
    survivor.ok("swarm", "init", "--force-new-cluster", "--advertise-addr", survivor.ip)
    wait_for(lambda: write_label(survivor, "after").returncode == 0, timeout=10,
             what="writes on the new one-manager cluster")
    labels = survivor.inspect("m1")["Spec"]["Labels"]
    assert labels.get("kept") == "yes" and "after" in labels
    # The nodes are kept; the lost managers are shown unreachable.
    rows = {r["HOSTNAME"]: r for r in survivor.node_rows()}
    assert set(rows) == {"m1", "m2", "m3"}
    assert rows["m1"]["MANAGER STATUS"] == "Leader"
    wait_for(lambda: all(r["MANAGER STATUS"] == "Unreachable" and r["STATUS"] == "Down"
                         for r in survivor.node_rows() if r["HOSTNAME"] != "m1"),
             timeout=10, what="the lost managers shown Unreachable and Down")
    assert "Managers: 3" in survivor.ok("info")
    # As in Docker, they are cleaned up with demote, then rm.
    survivor.ok("node", "demote", "m2")
    wait_for(lambda: {r["HOSTNAME"]: r for r in survivor.node_rows()}["m2"]["MANAGER STATUS"] == "",
             timeout=10, what="m2 demoted")
    survivor.ok("node", "rm", "m2")
    assert "m2" not in {r["HOSTNAME"] for r in survivor.node_rows()}
    # It survives its own restart as a one-manager swarm.
    survivor.stop()
    survivor.start()
    wait_for(lambda: write_label(survivor, "restarted").returncode == 0, timeout=10,
             what="writes after restart")


def test_restart_all_managers_keeps_state(swarm):
    nodes = make_managers(swarm, 3)
    for i in range(5):
        assert write_label(nodes[i % 3], f"k{i}", str(i)).returncode == 0
    for n in nodes:
        n.stop()
    for n in nodes:
        n.start()
    wait_for(lambda: leader_of(nodes), timeout=15, what="a leader after full restart")
    for n in nodes:
        labels = n.inspect("m1")["Spec"]["Labels"]
        assert labels == {f"k{i}": str(i) for i in range(5)}, (n.name, labels)


def test_acknowledged_writes_survive_leader_kills(swarm):
    nodes = make_managers(swarm, 3)
    acked = []
    kills = 0
    deadline = time.monotonic() + 60
    i = 0
    while kills < 3 and time.monotonic() < deadline:
        target = random.choice([n for n in nodes if n.alive()])
        r = write_label(target, f"w{i}", str(i), timeout=20)
        if r.returncode == 0:
            acked.append(f"w{i}")
        i += 1
        if i % 8 == 0:
            leader = leader_of(nodes)
            if leader is not None:
                leader.kill()
                kills += 1
                wait_for(lambda: leader_of([n for n in nodes if n.alive()]), timeout=10,
                         what="new leader")
                leader.start()
    assert kills == 3 and len(acked) >= 10
    wait_for(lambda: all_reachable(nodes), timeout=20, what="all back")
    for n in nodes:
        labels = wait_for(lambda: (lambda l: l if all(k in l for k in acked) else None)(
            n.inspect("m1")["Spec"].get("Labels") or {}), timeout=10,
            what=f"acknowledged writes on {n.name}")
        assert all(k in labels for k in acked)


def test_join_refusals_leave_nothing(swarm):
    m1 = swarm.node("m1").start()
    m1.ok("swarm", "init", "--advertise-addr", m1.ip)
    worker_token = m1.ok("swarm", "join-token", "-q", "worker").strip()
    other = swarm.node("other").start()
    other.ok("swarm", "init", "--advertise-addr", other.ip)
    other_token = other.ok("swarm", "join-token", "-q", "manager").strip()

    n = swarm.node("joiner").start()

    def assert_clean():
        assert "Swarm: inactive" in n.ok("info")
        assert sorted(p.name for p in n.state_dir.iterdir()
                      if p.name not in ("swarmd.sock", "swarmd.lock")) == []

    err = n.fails("swarm", "join", "--token", "SWMTKN-1-bogus", m1.addr)
    assert "invalid join token" in err
    assert_clean()
    # Right shape, wrong secret.
    forged = worker_token[:-25] + "0" * 25
    err = n.fails("swarm", "join", "--token", forged, "--advertise-addr", n.ip, m1.addr)
    assert "valid join token" in err, err
    assert_clean()
    # A token of another swarm: the root CA does not match its digest.
    err = n.fails("swarm", "join", "--token", other_token, "--advertise-addr", n.ip, m1.addr)
    assert "fingerprint" in err, err
    assert_clean()
    # A rotated token is refused at once.
    m1.ok("swarm", "join-token", "--rotate", "worker")
    err = n.fails("swarm", "join", "--token", worker_token, "--advertise-addr", n.ip, m1.addr)
    assert "valid join token" in err, err
    assert_clean()
    # Nobody listening there.
    err = n.fails("swarm", "join", "--token", worker_token, "--advertise-addr", n.ip,
                  "127.0.0.1:1")
    assert "connect" in err.lower(), err
    assert_clean()
    assert len(m1.node_rows()) == 1


def test_leave_manager_and_demote_last_refused(swarm):
    nodes = make_managers(swarm, 3)
    err = nodes[0].fails("node", "rm", "m3")
    assert "demoted" in err
    err = nodes[2].fails("swarm", "leave")
    assert "--force" in err
