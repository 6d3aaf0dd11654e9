"""`swarmctl events`: Docker's event stream of the swarm, replayed from the
managers' history with --since, filtered, formatted, and followed across a
leader change and a restart of the manager serving it without a gap or a
duplicate."""
import re
import subprocess
import threading
import time

from conftest import SWARMCTL, wait_for
from test_managers import leader_of, make_managers

SLEEP = "sleep"
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (\w+) (\w+) (\S+)(?: \((.*)\))?$")


class Follower:
    """`swarmctl events ARGS` running in the background; its lines as they come."""

    def __init__(self, node, *args):
        self.proc = subprocess.Popen([str(SWARMCTL), "--socket", str(node.socket), "events", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(timeout=5)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        return err


def parse(line):
    m = LINE.match(line)
    assert m, f"not an event line: {line!r}"
    attrs = dict(kv.split("=", 1) for kv in m.group(5).split(", ")) if m.group(5) else {}
    return {"type": m.group(2), "action": m.group(3), "id": m.group(4), "attrs": attrs}


def service_events(lines):
    return [(e["action"], e["id"], e["attrs"]) for e in map(parse, lines) if e["type"] == "service"]


def now_arg():
    return f"{time.time():.9f}"


def test_events_create_scale_remove_in_order(manager):
    m = manager
    # --since now: whenever swarmctl subscribes, nothing from here on is missed.
    f = Follower(m, "--since", now_arg())
    try:
        sid = m.ok("service", "create", "-d", "--name", "web", "--replicas", "1", SLEEP, "1000").strip()
        wait_for(lambda: any(" task create " in ln for ln in f.lines), timeout=15, what="task create")
        m.ok("service", "scale", "-d", "web=2")
        wait_for(lambda: any("name=web.2" in ln for ln in f.lines), timeout=15, what="web.2 created")
        m.ok("service", "rm", "web")
        wait_for(lambda: any(" service remove " in ln for ln in f.lines), timeout=15, what="service remove")
    finally:
        err = f.stop()
    assert err == ""
    svc = service_events(f.lines)
    assert svc[0] == ("create", sid, {"name": "web"})
    assert ("update", sid, {"name": "web", "replicas.new": "2", "replicas.old": "1"}) in svc
    assert svc[-1] == ("remove", sid, {"name": "web"})
    actions = [a for a, _, _ in svc]
    assert actions.index("create") < actions.index("update") < actions.index("remove")
    tasks = [parse(ln) for ln in f.lines if " task " in ln]
    creates = [t for t in tasks if t["action"] == "create"]
    assert sorted(t["attrs"]["name"] for t in creates) == ["web.1", "web.2"]
    assert all(t["attrs"]["service.id"] == sid for t in tasks)
    # A task's events come after its service's create and before its remove.
    order = [(parse(ln)["type"], parse(ln)["action"]) for ln in f.lines]
    assert order.index(("service", "create")) < order.index(("task", "create"))


def test_events_since_replays_filters_and_format(manager):
    m = manager
    t0 = now_arg()
    sid = m.ok("service", "create", "-d", "--name", "api", "--replicas", "1", SLEEP, "1000").strip()
    m.ok("service", "scale", "-d", "api=3")
    wait_for(lambda: len(m.ok("events", "--since", t0, "--until", now_arg(), "-f", "type=task",
                              "-f", "event=create").splitlines()) == 3, timeout=15,
             what="three task creates in the history")
    m.ok("service", "rm", "api")
    t1 = now_arg()
    # --since replays from the history; --until in the past ends the stream.
    out = m.ok("events", "--since", t0, "--until", t1, timeout=20)
    svc = service_events(out.splitlines())
    assert [a for a, _, _ in svc] == ["create", "update", "remove"]
    assert all(i == sid for _, i, _ in svc)
    # The same replay on every call (nothing is consumed).
    assert m.ok("events", "--since", t0, "--until", t1) == out
    # Filters: type and event AND, the same key ORs.
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "type=service", "-f", "event=create")
    assert [(e["type"], e["action"], e["id"]) for e in map(parse, out.splitlines())] == [
        ("service", "create", sid)]
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "type=service", "-f", "event=create",
               "-f", "event=remove")
    assert [parse(ln)["action"] for ln in out.splitlines()] == ["create", "remove"]
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "type=task", "-f", "event=create")
    assert len(out.splitlines()) == 3
    assert m.ok("events", "--since", t0, "--until", t1, "-f", "type=network") == ""
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "service=api")
    assert [parse(ln)["action"] for ln in out.splitlines()] == ["create", "update", "remove"]
    # --format with Docker's fields.
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "type=service", "--format",
               "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Scope}}")
    assert out.splitlines() == [f"service {a} {sid} api swarm" for a in ("create", "update", "remove")]
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "type=service", "--format",
               "{{.Type}} {{.Action}}")
    assert out.splitlines() == ["service create", "service update", "service remove"]
    out = m.ok("events", "--since", t0, "--until", t1, "-f", "type=service", "-f", "event=create",
               "--format", "{{.Time}} {{.TimeNano}}")
    secs, nanos = out.split()
    assert int(nanos) // 10**9 == int(secs) and float(t0) - 1 <= int(secs) <= float(t1) + 1
    # A --since after the changes (event times are whole milliseconds: the
    # next one) replays none of them.
    last = int(m.ok("events", "--since", t0, "--until", t1, "-f", "type=service", "--format",
                    "{{.TimeNano}}").split()[-1])
    after = f"{(last + 1_000_000) // 10**9}.{(last + 1_000_000) % 10**9:09d}"
    assert m.ok("events", "--since", after, "--until", now_arg(), "-f", "type=service") == ""
    before = f"{last // 10**9}.{last % 10**9:09d}"
    assert parse(m.ok("events", "--since", before, "--until", now_arg(), "-f",
                      "type=service").strip())["action"] == "remove"


def test_events_bad_input_refused(swarm, manager):
    m = manager
    # No swarmd behind the socket: said at once, not retried.
    down = swarm.node("down")
    r = down.ctl("events", timeout=10)
    assert r.returncode == 1
    assert r.stderr.startswith("Cannot connect to swarmd at unix://"), r.stderr
    err = m.fails("events", "-f", "foo=bar", "--until", now_arg())
    assert err == "Error response from daemon: invalid filter 'foo'"
    err = m.fails("events", "-f", "type=bogus", "--until", now_arg())
    assert err == "Error response from daemon: invalid filter 'type=bogus'"
    err = m.fails("events", "-f", "typeservice")
    assert err == "Error: bad format of filter (expected name=value)"
    err = m.fails("events", "--since", "yesterday-ish")
    assert err == ('Error: invalid value for "since": could not parse "yesterday-ish" as a time '
                   'or a duration')
    err = m.fails("events", "--until", "soon")
    assert 'invalid value for "until"' in err
    err = m.fails("events", "--since", "2030-01-02T00:00:00Z", "--until", "2030-01-01T00:00:00Z")
    assert "cannot be after `until`" in err
    err = m.fails("events", "--format", "{{.Nope", "--until", now_arg())
    assert err.startswith("template: :1:")


def test_events_resume_after_restart_of_the_serving_manager(manager):
    m = manager
    t0 = now_arg()
    f = Follower(m, "--since", t0)
    try:
        m.ok("service", "create", "-d", "--name", "one", "--replicas", "1", SLEEP, "1000")
        wait_for(lambda: any(" service create " in ln for ln in f.lines), timeout=15, what="first create")
        m.stop()
        m.start()
        wait_for(lambda: m.ctl("service", "ls").returncode == 0, timeout=30, what="manager back")
        m.ok("service", "create", "-d", "--name", "two", "--replicas", "1", SLEEP, "1000")
        wait_for(lambda: sum(" service create " in ln for ln in f.lines) == 2, timeout=30,
                 what="second create after the restart")

        def same_as_history():
            replay = m.ok("events", "--since", t0, "--until", now_arg()).splitlines()
            return f.lines == replay or (len(f.lines), len(replay))
        wait_for(same_as_history, timeout=30, what="follower equal to the history")
    finally:
        f.stop()
    assert len(set(f.lines)) == len(f.lines)


def test_events_follow_on_a_follower_across_a_leader_kill(swarm):
    nodes = make_managers(swarm, 3)
    leader = wait_for(lambda: leader_of(nodes), timeout=15, what="leader")
    follower = next(n for n in nodes if n is not leader)
    other = next(n for n in nodes if n is not leader and n is not follower)
    t0 = now_arg()
    f = Follower(follower, "--since", t0)
    try:
        ids = [follower.ok("service", "create", "-d", "--name", f"s{i}", "--replicas", "1", SLEEP,
                           "1000").strip() for i in range(2)]
        wait_for(lambda: sum(" service create " in ln for ln in f.lines) == 2, timeout=15,
                 what="creates before the kill")
        leader.kill()
        wait_for(lambda: leader_of([follower, other]), timeout=30, what="a new leader")
        ids += [follower.ok("service", "create", "-d", "--name", f"s{i}", "--replicas", "1", SLEEP,
                            "1000").strip() for i in range(2, 4)]
        other.ok("service", "scale", "-d", "s0=2")
        follower.ok("service", "rm", "s1")
        live = [follower, other]

        def complete():
            replay = other.ok("events", "--since", t0, "--until", now_arg()).splitlines()
            if f.lines != replay:
                return False
            svc = service_events(f.lines)
            return ("remove", ids[1], {"name": "s1"}) in svc and svc
        svc = wait_for(complete, timeout=30, what="the follower's stream equal to the history")
        assert f.proc.poll() is None, "the stream ended at the leader kill"
    finally:
        f.stop()
    assert [(a, i) for a, i, _ in svc] == [
        ("create", ids[0]), ("create", ids[1]), ("create", ids[2]), ("create", ids[3]),
        ("update", ids[0]), ("remove", ids[1])]
    assert len(set(f.lines)) == len(f.lines)
    # Every manager tells the same history.
    assert all(n.ok("events", "--since", t0, "--until", now_arg(), "-f", "type=service")
               .splitlines() == [ln for ln in f.lines if " service " in ln] for n in live)
