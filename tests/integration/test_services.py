"""Services: replicated and global services reconciled onto real nodes with
the process executor; scheduling, drain/pause, failures, restart policies,
and refusals that change nothing."""
import json
import time

import pytest

from conftest import parse_table, wait_for
from test_managers import leader_of, make_managers
from test_workers import join_worker, status_of

SLEEP = "sleep"  # the program every long-running test task runs


def services(m):
    return {r["NAME"]: r for r in parse_table(m.ok("service", "ls"),
                                        ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"])}


def tasks(m, svc, *extra):
    return parse_table(m.ok("service", "ps", "--no-trunc", *extra, svc),
                 ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])


def running(m, svc):
    """Rows of tasks meant to run and running."""
    return [r for r in tasks(m, svc) if r["DESIRED STATE"] == "Running"
            and r["CURRENT STATE"].startswith("Running")]


def converged(m, svc, n):
    return lambda: services(m).get(svc, {}).get("REPLICAS") == f"{n}/{n}"


@pytest.fixture
def cluster(swarm):
    """One manager and two workers, all running tasks."""
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    w1 = join_worker(swarm, m, "w1")
    w2 = join_worker(swarm, m, "w2")
    return m, w1, w2


def test_create_scale_rm_replicated(cluster):
    m, w1, w2 = cluster
    out = m.ok("service", "create", "-d", "--name", "web", "--replicas", "3", SLEEP, "1000")
    assert len(out.strip()) == 25, out
    wait_for(converged(m, "web", 3), timeout=20, what="web 3/3")
    rows = running(m, "web")
    assert sorted(r["NAME"] for r in rows) == ["web.1", "web.2", "web.3"]
    # Spread: one per node.
    assert sorted(r["NODE"] for r in rows) == ["m1", "w1", "w2"]
    svc = services(m)["web"]
    assert svc["MODE"] == "replicated" and svc["IMAGE"] == SLEEP
    assert m.ok("service", "scale", "web=6", "-d").strip().startswith("web scaled to 6")
    wait_for(converged(m, "web", 6), timeout=20, what="web 6/6")
    nodes = [r["NODE"] for r in running(m, "web")]
    assert sorted(nodes.count(n) for n in ("m1", "w1", "w2")) == [2, 2, 2]
    m.ok("service", "scale", "web=2", "-d")
    wait_for(lambda: len(running(m, "web")) == 2 and converged(m, "web", 2)(), timeout=20,
             what="web 2/2")
    # The tasks really run: each node's process tree holds the programs.
    node_tasks = json.loads(m.ok("service", "inspect", "web"))[0]
    assert node_tasks["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert m.ok("service", "rm", "web").strip() == "web"
    wait_for(lambda: "web" not in services(m), timeout=10, what="web gone")
    wait_for(lambda: m.ok("node", "ps", "w1").count(SLEEP) == 0, timeout=20,
             what="w1's tasks gone")


def test_global_follows_nodes(cluster, swarm):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "agent", "--mode", "global", SLEEP, "1000")
    wait_for(lambda: len(running(m, "agent")) == 3, timeout=20, what="3 global tasks")
    assert sorted(r["NODE"] for r in running(m, "agent")) == ["m1", "w1", "w2"]
    join_worker(swarm, m, "w3")
    wait_for(lambda: len(running(m, "agent")) == 4, timeout=20, what="a task on the new node")
    m.ok("node", "update", "--availability", "drain", "w1")
    wait_for(lambda: sorted(r["NODE"] for r in running(m, "agent")) == ["m1", "w2", "w3"],
             timeout=20, what="drained node's task stopped")
    assert m.fails("service", "scale", "agent=3")


def test_constraints_and_pending_reasons(cluster, swarm):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "mgr", "--replicas", "2",
         "--constraint", "node.role==manager", SLEEP, "1000")
    m.ok("service", "create", "-d", "--name", "onw1", "--replicas", "2",
         "--constraint", "node.hostname==w1", SLEEP, "1000")
    m.ok("service", "create", "-d", "--name", "zoned", "--constraint", "node.labels.zone==a",
         SLEEP, "1000")
    wait_for(converged(m, "mgr", 2), timeout=20, what="mgr")
    wait_for(converged(m, "onw1", 2), timeout=20, what="onw1")
    assert {r["NODE"] for r in running(m, "mgr")} == {"m1"}
    assert {r["NODE"] for r in running(m, "onw1")} == {"w1"}
    # No node has the label: pending with Docker's reason.
    wait_for(lambda: "scheduling constraints not satisfied on 3 nodes" in
             (tasks(m, "zoned")[0]["ERROR"]), timeout=10, what="pending reason")
    assert tasks(m, "zoned")[0]["CURRENT STATE"].startswith("Pending")
    m.ok("node", "update", "--label-add", "zone=a", "w2")
    wait_for(converged(m, "zoned", 1), timeout=20, what="zoned placed once a node fits")
    assert running(m, "zoned")[0]["NODE"] == "w2"
    # The label goes away: the task is stopped and waits for a node again.
    m.ok("node", "update", "--label-rm", "zone", "w2")
    wait_for(lambda: running(m, "zoned") == [], timeout=20, what="zoned stopped")


def test_reservations_wait_for_a_node(cluster, swarm):
    m, w1, w2 = cluster
    mem = int(m.inspect("self")["Description"]["Resources"]["MemoryBytes"])
    per_task = mem // 2 + 1  # one such task fits on a node, two do not
    m.ok("service", "create", "-d", "--name", "big", "--replicas", "4",
         "--reserve-memory", str(per_task), SLEEP, "1000")
    wait_for(lambda: len(running(m, "big")) == 3, timeout=20, what="3 of 4 placed")
    pending = [r for r in tasks(m, "big") if r["CURRENT STATE"].startswith("Pending")]
    assert len(pending) == 1 and "insufficient resources on 3 nodes" in pending[0]["ERROR"]
    join_worker(swarm, m, "w3")
    wait_for(converged(m, "big", 4), timeout=20, what="the 4th placed on the new node")


def test_worker_killed_drain_pause_and_force(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "6", SLEEP, "1000")
    wait_for(converged(m, "web", 6), timeout=20, what="web 6/6")
    w2.kill()
    wait_for(lambda: len(running(m, "web")) == 6 and
             all(r["NODE"] != "w2" for r in running(m, "web")), timeout=20,
             what="w2's tasks running elsewhere")
    m.ok("node", "update", "--availability", "drain", "w1")
    wait_for(lambda: {r["NODE"] for r in running(m, "web")} == {"m1"}, timeout=20,
             what="drained w1's tasks moved")
    m.ok("node", "update", "--availability", "active", "w1")
    m.ok("node", "update", "--availability", "pause", "m1")
    m.ok("service", "scale", "-d", "web=8")
    wait_for(converged(m, "web", 8), timeout=20, what="web 8/8")
    new_nodes = [r["NODE"] for r in running(m, "web")]
    assert new_nodes.count("w1") == 2 and new_nodes.count("m1") == 6, new_nodes
    m.ok("node", "update", "--availability", "active", "m1")
    # Nodes that come back get nothing until a forced update rebalances.
    w2.start()
    wait_for(lambda: status_of(m, "w2")["STATUS"] == "Ready", timeout=10, what="w2 back")
    time.sleep(2)
    assert all(r["NODE"] != "w2" for r in running(m, "web"))
    m.ok("service", "update", "-d", "--force", "--update-parallelism", "0", "web")
    wait_for(lambda: converged(m, "web", 8)() and
             sorted({r["NODE"] for r in running(m, "web")}) == ["m1", "w1", "w2"],
             timeout=30, what="rebalanced after --force")


def test_restart_policies(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "flaky", "--restart-condition", "on-failure",
         "--restart-max-attempts", "2", "--restart-delay", "100ms", "sh", "-c", "exit 1")
    wait_for(lambda: len(tasks(m, "flaky")) == 3 and all(
        r["CURRENT STATE"].startswith("Failed") for r in tasks(m, "flaky")),
        timeout=30, what="1 try + 2 restarts, all failed")
    time.sleep(1.5)
    assert len(tasks(m, "flaky")) == 3
    assert "non-zero exit (1)" in tasks(m, "flaky")[0]["ERROR"]
    m.ok("service", "create", "-d", "--name", "once", "--restart-condition", "none",
         "sh", "-c", "exit 1")
    wait_for(lambda: tasks(m, "once") and tasks(m, "once")[0]["CURRENT STATE"].startswith("Failed"),
             timeout=20, what="once failed")
    time.sleep(1.5)
    assert len(tasks(m, "once")) == 1
    m.ok("service", "create", "-d", "--name", "again", "--restart-condition", "any",
         "--restart-delay", "100ms", "true")
    wait_for(lambda: sum(r["CURRENT STATE"].startswith("Complete") for r in tasks(m, "again")) >= 3,
             timeout=30, what="any: restarted after exit 0")
    # History is capped at 5 per slot.
    time.sleep(2)
    assert len(tasks(m, "again")) <= 5


def test_bad_input_changes_nothing(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", SLEEP, "1000")
    wait_for(converged(m, "web", 1), timeout=20, what="web 1/1")
    before = m.ok("service", "ls")
    for args, needle in [
        (["--bogus", SLEEP], "bogus"),
        (["--name", "x", "--constraint", "node.color==red", SLEEP], "node.color"),
        (["--name", "x", "--mode", "global", "--replicas", "2", SLEEP], "replicated mode"),
        (["--name", "x", "--replicas", "-1", SLEEP], ""),
        (["--name", "web", SLEEP], "web"),
        (["--name", "x", "--restart-delay", "soon", SLEEP], "soon"),
    ]:
        err = m.fails("service", "create", "-d", *args)
        assert needle in err, (args, err)
    assert "nope" in m.fails("service", "scale", "nope=2")
    assert "nope" in m.fails("service", "rm", "nope")
    assert "nope" in m.fails("service", "ps", "nope")
    assert m.ok("service", "ls") == before


def test_leader_killed_while_scaling(swarm):
    managers = make_managers(swarm, 3)
    m = managers[0]
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "3", SLEEP, "1000")
    wait_for(converged(m, "web", 3), timeout=20, what="web 3/3")
    leader = leader_of(managers)
    other = next(n for n in managers if n is not leader)
    other.ok("service", "scale", "-d", "web=12")
    leader.kill()
    survivors = [n for n in managers if n.alive()]
    wait_for(lambda: leader_of(survivors), timeout=10, what="new leader")
    wait_for(lambda: len(running(survivors[0], "web")) == 12, timeout=30,
             what="12 running after failover")
    slots = [r["NAME"] for r in running(survivors[0], "web")]
    assert sorted(slots) == sorted(f"web.{i}" for i in range(1, 13)), slots
