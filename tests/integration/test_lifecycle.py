"""A manager's lifecycle with work in flight: shutdown, leave and demotion
while proposals are pending (close after drain), reads without a leader.

The close tests are meant for the sanitizer build (BUILD_DIR=build-asan
SANITIZE=1 tests/run.sh): the `swarm` fixture fails a test whose swarmd logs
hold an AddressSanitizer report, which is how a module freed under a pending
proposal shows. They also assert what a user sees: the process ends cleanly
(exit 0) and the surviving managers carry on."""
import signal

from conftest import NODE_COLUMNS, parse_table, wait_for
from test_managers import NO_LEADER, leader_of, make_managers
from test_services import cluster, services, tasks  # noqa: F401 (fixture)

SLEEP = "sleep"


def freeze_followers(nodes, leader):
    """SIGSTOP every manager but the leader: its proposals stay uncommitted."""
    frozen = [n for n in nodes if n is not leader]
    for n in frozen:
        n.proc.send_signal(signal.SIGSTOP)
    return frozen


def thaw(nodes):
    for n in nodes:
        if n.alive():
            n.proc.send_signal(signal.SIGCONT)


def scale_with_proposals_in_flight(nodes):
    """A service scaled up right before the followers freeze: the leader's
    orchestrator and scheduler propose tasks that cannot commit."""
    leader = wait_for(lambda: leader_of(nodes), timeout=15, what="a leader")
    leader.ok("service", "create", "-d", "--name", "web", "--replicas", "1", SLEEP, "1000")
    leader.ok("service", "scale", "-d", "web=30")
    return leader, freeze_followers(nodes, leader)


def carry_on(frozen):
    """The managers that were frozen elect a leader and serve."""
    thaw(frozen)
    survivor = wait_for(lambda: leader_of(frozen), timeout=30, what="a new leader")
    survivor.ok("service", "ls")
    return survivor


def test_shutdown_with_proposals_in_flight(swarm):
    nodes = make_managers(swarm, 3)
    leader, frozen = scale_with_proposals_in_flight(nodes)
    try:
        assert leader.stop(signal.SIGTERM, timeout=20) == 0, leader.log_tail()
    finally:
        thaw(frozen)
    carry_on(frozen)


def test_leave_with_proposals_in_flight(swarm):
    nodes = make_managers(swarm, 3)
    leader, frozen = scale_with_proposals_in_flight(nodes)
    try:
        out = leader.ok("swarm", "leave", "--force", timeout=20)
    finally:
        thaw(frozen)
    assert out.strip() == "Node left the swarm.", out
    assert leader.alive(), leader.log_tail()
    assert "Swarm: inactive" in leader.ok("info")
    # The process is whole: it can be ended cleanly.
    assert leader.stop(signal.SIGTERM, timeout=20) == 0, leader.log_tail()
    carry_on(frozen)


def test_demote_leader_with_work_in_flight(swarm):
    """Demotion closes the manager through the same path as shutdown and
    leave. A demoted leader has stepped down before it closes (its removal
    had to commit), so raft has already failed its proposals; what is tested
    is that closing under a stream of writes leaves a whole worker."""
    nodes = make_managers(swarm, 3)
    leader = wait_for(lambda: leader_of(nodes), timeout=15, what="a leader")
    leader.ok("service", "create", "-d", "--name", "web", "--replicas", "1", SLEEP, "1000")
    leader.ok("service", "scale", "-d", "web=30")
    leader.ok("node", "demote", leader.name)
    others = [n for n in nodes if n is not leader]
    wait_for(lambda: "Is Manager: false" in leader.ok("info"), timeout=30,
             what=f"{leader.name} a worker")
    new_leader = wait_for(lambda: leader_of(others), timeout=30, what="a new leader")
    wait_for(lambda: next(r for r in new_leader.node_rows()
                          if r["HOSTNAME"] == leader.name)["MANAGER STATUS"] == "",
             timeout=30, what="demotion recorded")
    assert leader.alive(), leader.log_tail()
    assert leader.stop(signal.SIGTERM, timeout=20) == 0, leader.log_tail()


# ------------------------------------------------ desired state of replaced tasks


PS_COLUMNS = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"]


def node_ps(m, node):
    return parse_table(m.ok("node", "ps", "--no-trunc", node), PS_COLUMNS)


def test_failed_tasks_get_desired_shutdown(cluster):
    """A task that fails again and again: each one that failed is desired
    Shutdown (also the last, once the restart policy gives up), so the
    running filter and node ps show nothing meant to run but what runs."""
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "flaky", "--restart-delay", "100ms",
         "--restart-max-attempts", "2", "--constraint", "node.hostname==w1",
         "sh", "-c", "echo failing; exit 1")

    def settled():
        rows = tasks(m, "flaky")
        return (len(rows) == 3 and all(r["CURRENT STATE"].startswith("Failed") and
                                       r["DESIRED STATE"] == "Shutdown" for r in rows))
    wait_for(settled, timeout=30, what="1 try + 2 restarts, all failed and desired Shutdown")
    failed = tasks(m, "flaky")
    assert tasks(m, "flaky", "-f", "desired-state=running") == [], tasks(m, "flaky")
    shut = tasks(m, "flaky", "-f", "desired-state=shutdown")
    assert {r["ID"] for r in shut} == {r["ID"] for r in failed}
    on_w1 = [r for r in node_ps(m, "w1") if "flaky." in r["NAME"]]
    assert len(on_w1) == 3 and all(r["DESIRED STATE"] == "Shutdown" for r in on_w1), on_w1
    assert services(m)["flaky"]["REPLICAS"] == "0/1"
    # Retired tasks stay on their node as history: their logs are still there.
    wait_for(lambda: m.ok("service", "logs", "--raw", "flaky").splitlines().count("failing") == 3,
             timeout=10, what="the three attempts' logs")


def test_global_task_of_dead_node_desired_shutdown(cluster):
    """kill -9 a worker running a global service's task: once it is Down its
    task is desired Shutdown, and REPLICAS counts the live nodes only (2/2,
    never 2/3)."""
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "agent", "--mode", "global", SLEEP, "1000")
    wait_for(lambda: services(m).get("agent", {}).get("REPLICAS") == "3/3", timeout=20,
             what="agent 3/3")
    w2.kill()
    wait_for(lambda: next(r for r in m.node_rows() if r["HOSTNAME"] == "w2")["STATUS"] == "Down",
             timeout=20, what="w2 Down")
    wait_for(lambda: services(m)["agent"]["REPLICAS"] == "2/2", timeout=10,
             what="agent 2/2")
    on_w2 = node_ps(m, "w2")
    assert on_w2 and all(r["DESIRED STATE"] == "Shutdown" for r in on_w2), on_w2
    wanted = tasks(m, "agent", "-f", "desired-state=running")
    assert sorted(r["NODE"] for r in wanted) == ["m1", "w1"], wanted


# ------------------------------------------------------- reads without a leader

STALE_WARNING = "WARNING: no leader is known"


def assert_stale_view(survivor, dead_names):
    """Every answer is marked stale, shows the dead as Unknown (never Ready)
    and no Leader; their MANAGER STATUS turns Unreachable once the peer
    probes (every 0.5 s) miss them."""
    def sample():
        r = survivor.ctl("node", "ls")
        assert r.returncode == 0, r.stderr
        assert STALE_WARNING in r.stderr, r.stderr
        rows = {row["HOSTNAME"]: row for row in parse_table(r.stdout, NODE_COLUMNS)}
        assert rows[survivor.name]["STATUS"] == "Ready", rows
        for name in dead_names:
            assert rows[name]["STATUS"] == "Unknown", rows
        assert not any(row["MANAGER STATUS"] == "Leader" for row in rows.values()), rows
        return all(rows[name]["MANAGER STATUS"] == "Unreachable" for name in dead_names)
    wait_for(sample, timeout=10, interval=0.2, what="dead managers Unreachable")
    r = survivor.ctl("node", "inspect", dead_names[0])
    assert r.returncode == 0 and STALE_WARNING in r.stderr, r.stderr
    assert '"State": "unknown"' in r.stdout, r.stdout


def test_reads_without_a_leader_are_marked_stale(swarm):
    """Quorum lost (2 of 3 managers killed): node ls on the survivor still
    answers, from its last known state, but says so on stderr, shows the
    nodes it cannot hear from as Unknown / Unreachable (never Ready), and no
    Leader. The same after the survivor restarts without a leader."""
    nodes = make_managers(swarm, 3)
    survivor, dead = nodes[0], nodes[1:]
    survivor.ok("service", "create", "-d", "--name", "web", "--replicas", "3", SLEEP, "1000")
    wait_for(lambda: services(survivor).get("web", {}).get("REPLICAS") == "3/3", timeout=20,
             what="web 3/3")
    # With a leader: no warning.
    for args in (("node", "ls"), ("service", "ls"), ("service", "ps", "web")):
        r = survivor.ctl(*args)
        assert r.returncode == 0 and STALE_WARNING not in r.stderr, (args, r.stderr)
    for n in dead:
        n.kill()
    wait_for(lambda: STALE_WARNING in survivor.ctl("node", "ls").stderr, timeout=20,
             what="the survivor without a leader")
    assert_stale_view(survivor, [n.name for n in dead])
    for args in (("service", "ls"), ("service", "ps", "web"), ("node", "ps", "m2")):
        r = survivor.ctl(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stderr.count(STALE_WARNING) == 1, (args, r.stderr)
    # Writes still fail fast with Docker's message.
    assert NO_LEADER in survivor.fails("service", "scale", "web=4")
    survivor.stop()
    survivor.start()
    assert_stale_view(survivor, [n.name for n in dead])
