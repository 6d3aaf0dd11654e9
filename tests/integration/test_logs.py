"""swarmctl service logs: lines of every task of a service from whatever node
runs it, Docker's prefixes, --tail, a task as argument, --follow with a
scale-up and Ctrl-C, a dead node reported and skipped, and the same through a
follower manager."""
import re
import signal
import subprocess
import threading

import pytest

from conftest import SWARMCTL, wait_for
from test_managers import leader_of, make_managers
from test_services import converged, running
from test_workers import join_worker

HELLO = ["sh", "-c", "echo hello from $SWARM_TASK_SLOT; echo second $SWARM_TASK_SLOT; sleep 1000"]
LINE = re.compile(r"^(web\.(\d+)\.([0-9a-z]{12})@(\S+))( +)\| (.*)$")


@pytest.fixture
def cluster(swarm):
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    w1 = join_worker(swarm, m, "w1")
    w2 = join_worker(swarm, m, "w2")
    return m, w1, w2


def web(m, replicas=3):
    m.ok("service", "create", "-d", "--name", "web", "--replicas", str(replicas), *HELLO)
    wait_for(converged(m, "web", replicas), timeout=20, what=f"web {replicas}/{replicas}")
    # Running says nothing of how far the tasks got: wait for both lines of each.
    wait_for(lambda: sum("second " in l for l in m.ok("service", "logs", "web").splitlines())
             >= replicas, timeout=30, what="hello and second lines")


def hello_lines(out):
    return [l for l in out.splitlines() if "hello from" in l]


def parse(out):
    rows = []
    for line in out.splitlines():
        mt = LINE.match(line)
        assert mt, f"bad line: {line!r}"
        rows.append({"slot": mt.group(2), "id": mt.group(3), "node": mt.group(4),
                     "bar": len(mt.group(1)) + len(mt.group(5)), "msg": mt.group(6)})
    return rows


def test_logs_service_tail_task(cluster):
    m, w1, w2 = cluster
    web(m)
    r = m.ctl("service", "logs", "web", timeout=15)
    assert r.returncode == 0, r.stderr
    rows = parse(r.stdout)
    hello = sorted((x["slot"], x["node"], x["msg"]) for x in rows if "hello" in x["msg"])
    assert [h[0] for h in hello] == ["1", "2", "3"]
    assert [h[2] for h in hello] == ["hello from 1", "hello from 2", "hello from 3"]
    assert sorted(h[1] for h in hello) == ["m1", "w1", "w2"]
    assert len({x["bar"] for x in rows}) == 1, r.stdout  # the '|' align
    # Prefixes name the real task and node.
    ps = {t["NAME"]: t for t in running(m, "web")}
    for x in rows:
        t = ps[f"web.{x['slot']}"]
        assert t["ID"].startswith(x["id"]) and t["NODE"] == x["node"]
    assert len(rows) == 6

    rows = parse(m.ok("service", "logs", "--tail", "1", "web"))
    assert sorted(x["msg"] for x in rows) == ["second 1", "second 2", "second 3"]

    task_id = ps["web.2"]["ID"]
    out = m.ok("service", "logs", task_id)
    assert [x["msg"] for x in parse(out)] == ["hello from 2", "second 2"]

    out = m.ok("service", "logs", "-t", "--no-task-ids", "web")
    assert re.search(r"^web\.1@\S+ +\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello from 1$",
                     out, re.M), out

    err = m.fails("service", "logs", "nosuch")
    assert err == "Error: No such service or task: nosuch"


def test_logs_follow_scale_and_sigint(cluster):
    m, w1, w2 = cluster
    web(m)
    p = subprocess.Popen([str(SWARMCTL), "--socket", str(m.socket), "service", "logs", "-f",
                          "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        reader = threading.Thread(target=lambda: [lines.append(l) for l in p.stdout], daemon=True)
        reader.start()
        wait_for(lambda: len(hello_lines("".join(lines))) >= 3, timeout=30, what="first lines")
        assert p.poll() is None  # still following
        m.ok("service", "scale", "web=4", "-d")
        wait_for(lambda: "hello from 4" in "".join(lines), timeout=30, what="new task's line")
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
        reader.join(timeout=30)
        assert p.stderr.read() == ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_logs_follow_ends_when_manager_leaves(cluster):
    """A manager that stops serving ends the streams it relays at once, with
    UNAVAILABLE, instead of leaving them to a check of a manager since freed
    (the log broker is closed with its manager)."""
    m, w1, w2 = cluster
    web(m)
    p = subprocess.Popen([str(SWARMCTL), "--socket", str(m.socket), "service", "logs", "-f",
                          "web"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        reader = threading.Thread(target=lambda: [lines.append(l) for l in p.stdout], daemon=True)
        reader.start()
        wait_for(lambda: len(hello_lines("".join(lines))) >= 3, timeout=30, what="first lines")
        assert p.poll() is None  # still following
        m.ok("swarm", "leave", "--force")
        assert p.wait(timeout=30) != 0
        reader.join(timeout=30)
        assert "the leader changed while streaming logs" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = m.ctl("service", "logs", "web")
    assert r.returncode != 0 and "not a swarm manager" in r.stderr, r.stderr


def test_logs_dead_worker_reported(cluster):
    m, w1, w2 = cluster
    web(m)
    w2.kill()
    # A silent node is given up after a few seconds (not a TCP timeout):
    # the command ends well within this deadline, however loaded the host.
    r = m.ctl("service", "logs", "web", timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^error from node w2: ", r.stderr, re.M), r.stderr
    got = sorted(x["node"] for x in parse(r.stdout) if "hello" in x["msg"])
    assert got == ["m1", "w1"]


def test_logs_through_follower(swarm):
    nodes = make_managers(swarm, 3)
    lead = wait_for(lambda: leader_of(nodes), timeout=10, what="leader")
    follower = next(n for n in nodes if n is not lead)
    web(lead)
    out = follower.ok("service", "logs", "web")
    assert sorted(x["msg"] for x in parse(out) if "hello" in x["msg"]) == [
        "hello from 1", "hello from 2", "hello from 3"]
    assert sorted(x["node"] for x in parse(out) if "hello" in x["msg"]) == ["m1", "m2", "m3"]
    # Following through the follower, ended with Ctrl-C.
    p = subprocess.Popen([str(SWARMCTL), "--socket", str(follower.socket), "service", "logs",
                          "-f", "--tail", "1", "web"], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        reader = threading.Thread(target=lambda: [lines.append(l) for l in p.stdout], daemon=True)
        reader.start()
        # The last line of each of the 3 tasks, then nothing new: they print no more.
        wait_for(lambda: len(lines) >= 3, timeout=30, what="the last line of each task")
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
        reader.join(timeout=30)
        assert sorted(x["msg"] for x in parse("".join(lines))) == ["second 1", "second 2",
                                                                    "second 3"]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
