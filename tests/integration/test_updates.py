"""Rolling updates and rollback with Docker's timing: a batch of
--update-parallelism starts once the previous batch's new tasks run, plus
--update-delay; --update-monitor is the window in which a new task's failure
counts (and the update completes once the last batch's window passed), not a
wait between batches. Failure actions, start-first, a leader change
mid-update."""
import json
import time

from conftest import wait_for
from test_grpc_interop import pb, unix_channel  # noqa: F401 (fixture)
from test_managers import leader_of, make_managers
from test_services import cluster, converged, running, tasks  # noqa: F401 (fixture)

SLEEP = "sleep"


def update_state(m, svc):
    st = json.loads(m.ok("service", "inspect", svc))[0].get("UpdateStatus", {})
    return st.get("State", ""), st.get("Message", "")


def test_rolling_update_in_batches(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "5", SLEEP, "1000")
    wait_for(converged(m, "web", 5), timeout=20, what="web 5/5")
    before = {r["ID"] for r in running(m, "web")}
    t0 = time.monotonic()
    m.ok("service", "update", "-d", "--env-add", "V=2", "--update-parallelism", "2",
         "--update-monitor", "1s", "--update-delay", "300ms", "web")
    seen = {}   # new task ID -> first time seen running
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = running(m, "web")
        now = time.monotonic() - t0
        for r in rows:
            if r["ID"] not in before and r["ID"] not in seen:
                seen[r["ID"]] = now
        if len(seen) == 5 and update_state(m, "web")[0] == "completed":
            break
        time.sleep(0.05)
    assert len(seen) == 5, seen
    times = sorted(seen.values())
    # Three batches (2, 2, 1), in order: each starts once the previous one
    # runs, plus the delay (0.3 s).
    assert times[2] - times[1] >= 0.2, times
    assert times[4] - times[3] >= 0.2, times
    assert update_state(m, "web") == ("completed", "update completed")
    # History rows show the old tasks shut down.
    shut = [r for r in tasks(m, "web") if r["DESIRED STATE"] == "Shutdown"]
    assert {r["ID"] for r in shut} >= before


def new_task_starts(pb, m, svc):
    """When each task of the service's current spec started running (ms)."""
    with unix_channel(m) as ch:
        ctl = pb.control_grpc.ControlStub(ch)
        service = ctl.GetService(pb.control.GetServiceRequest(service_id=svc), timeout=10).service
        tasks = ctl.ListTasks(pb.control.ListTasksRequest(filters=[f"service={svc}"]),
                              timeout=10).tasks
    return sorted(t.started_at for t in tasks
                  if t.spec_version == service.spec_version and t.started_at > 0)


def test_batches_are_not_spaced_by_the_monitor(cluster, pb):
    """update --force of 6 tasks, parallelism 1, no delay, monitor 5 s: the
    batches follow each other as soon as the previous one runs (Docker), not
    5 s apart; the update completes once the last batch's 5 s passed."""
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "6", SLEEP, "1000")
    wait_for(converged(m, "web", 6), timeout=20, what="web 6/6")
    before = {r["ID"] for r in running(m, "web")}
    m.ok("service", "update", "-d", "--force", "--update-parallelism", "1",
         "--update-delay", "0s", "--update-monitor", "5s", "web")
    wait_for(lambda: len(new_task_starts(pb, m, "web")) == 6, timeout=60,
             what="six new tasks running")
    starts = new_task_starts(pb, m, "web")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Recorded start times, compared with the monitor period: a batch that
    # waited for the previous one's monitor would start >= 5000 ms later.
    assert max(gaps) < 2500, gaps
    assert not {r["ID"] for r in running(m, "web")} & before
    wait_for(lambda: update_state(m, "web")[0] == "completed", timeout=30, what="completed")
    assert update_state(m, "web") == ("completed", "update completed")


def test_failed_update_pauses_then_rollback(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "3", SLEEP, "1000")
    wait_for(converged(m, "web", 3), timeout=20, what="web 3/3")
    # Without -d the command follows the update and fails when it pauses.
    r = m.ctl("service", "update", "--image", "/bin/false", "--update-monitor", "1s",
              "--restart-condition", "none", "web", timeout=90)
    assert r.returncode != 0, r.stdout
    wait_for(lambda: update_state(m, "web")[0] == "paused", timeout=30, what="paused")
    assert "failure" in update_state(m, "web")[1]
    # Paused: nothing of the new spec runs; what runs is old. (As in Docker,
    # a later batch may have started in the moment /bin/false counted as
    # running, before its failure was reported, so how many old tasks are
    # left depends on timing, and such a task may still show Running for a
    # moment after the pause.)
    def only_old():
        rows = running(m, "web")
        return len(rows) <= 2 and all(r["IMAGE"] == SLEEP for r in rows)
    wait_for(only_old, timeout=15, what="only old tasks running while paused")
    # Paused means no new task of the failed spec is started afterwards.
    time.sleep(1.5)
    assert only_old(), running(m, "web")
    m.ok("service", "rollback", "-d", "web")
    wait_for(lambda: update_state(m, "web")[0] == "rollback-completed" and
             converged(m, "web", 3)(), timeout=40, what="rolled back")
    assert all(r["IMAGE"] == SLEEP for r in running(m, "web"))


def test_failure_action_rollback(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "2", SLEEP, "1000")
    wait_for(converged(m, "web", 2), timeout=20, what="web 2/2")
    m.ok("service", "update", "-d", "--image", "/bin/false", "--update-monitor", "1s",
         "--restart-condition", "none", "--update-failure-action", "rollback", "web")
    wait_for(lambda: update_state(m, "web")[0] == "rollback-completed", timeout=40,
             what="automatic rollback")
    wait_for(converged(m, "web", 2), timeout=20, what="back to 2/2")
    assert all(r["IMAGE"] == SLEEP for r in running(m, "web"))
    assert "rolled back" in update_state(m, "web")[1] or "rollback" in update_state(m, "web")[1]


def test_start_first_never_drops_below_replicas(cluster):
    m, w1, w2 = cluster
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "3", SLEEP, "1000")
    wait_for(converged(m, "web", 3), timeout=20, what="web 3/3")
    m.ok("service", "update", "-d", "--env-add", "V=2", "--update-order", "start-first",
         "--update-monitor", "500ms", "web")
    low = 3
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        n = sum(1 for r in tasks(m, "web") if r["CURRENT STATE"].startswith("Running"))
        low = min(low, n)
        if update_state(m, "web")[0] == "completed":
            break
        time.sleep(0.02)
    assert update_state(m, "web")[0] == "completed"
    assert low >= 3, f"running tasks dropped to {low}"


def test_leader_killed_mid_update_completes(swarm):
    managers = make_managers(swarm, 3)
    m = managers[0]
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "4", SLEEP, "1000")
    wait_for(converged(m, "web", 4), timeout=20, what="web 4/4")
    m.ok("service", "update", "-d", "--env-add", "V=2", "--update-parallelism", "1",
         "--update-monitor", "1s", "web")
    time.sleep(1.5)  # the first batch is under way
    leader = leader_of(managers)
    leader.kill()
    survivors = [n for n in managers if n.alive()]
    wait_for(lambda: leader_of(survivors), timeout=10, what="new leader")
    s = survivors[0]
    wait_for(lambda: update_state(s, "web")[0] == "completed", timeout=60,
             what="the update completed by the new leader")
    wait_for(converged(s, "web", 4), timeout=20, what="4/4")
