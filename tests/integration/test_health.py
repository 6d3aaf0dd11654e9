"""Health checks: a task is running only once healthy; one that turns
unhealthy is failed and replaced; a slow start inside the start period is not
failed."""
import time

from conftest import wait_for
from test_services import cluster, converged, running, tasks  # noqa: F401 (fixture)


def test_unhealthy_task_is_replaced(cluster, tmp_path):
    m, w1, w2 = cluster
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    m.ok("service", "create", "-d", "--name", "hc", "--constraint", "node.hostname==m1",
         "--health-cmd", f"test -f {flag}", "--health-interval", "200ms",
         "--health-retries", "2", "--restart-delay", "100ms", "sleep", "1000")
    wait_for(converged(m, "hc", 1), timeout=20, what="healthy and running")
    first = running(m, "hc")[0]["ID"]
    flag.unlink()
    wait_for(lambda: any(r["ID"] == first and r["CURRENT STATE"].startswith("Failed")
                         and "unhealthy" in r["ERROR"] for r in tasks(m, "hc")),
             timeout=20, what="the unhealthy task failed")
    # Its replacement starts but is not running until a check passes.
    wait_for(lambda: any(r["ID"] != first and r["DESIRED STATE"] == "Running"
                         for r in tasks(m, "hc")), timeout=20, what="a replacement")
    time.sleep(1)
    assert not any(r["ID"] != first and r["CURRENT STATE"].startswith("Running")
                   for r in tasks(m, "hc"))
    flag.write_text("ok")
    wait_for(lambda: any(r["ID"] != first for r in running(m, "hc")), timeout=20,
             what="the replacement healthy")


def test_slow_start_inside_start_period(cluster, tmp_path):
    m, w1, w2 = cluster
    flag = tmp_path / "ready"
    m.ok("service", "create", "-d", "--name", "slow", "--constraint", "node.hostname==m1",
         "--health-cmd", f"test -f {flag}", "--health-interval", "200ms",
         "--health-retries", "1", "--health-start-period", "30s",
         "sh", "-c", f"sleep 2; touch {flag}; sleep 1000")
    wait_for(converged(m, "slow", 1), timeout=20, what="running once ready")
    rows = tasks(m, "slow")
    assert len(rows) == 1 and not any(r["CURRENT STATE"].startswith("Failed") for r in rows)
