"""Containers (issue 14): the runtime rule, the runtimes a node offers, the
scheduler's runtime filter, and the container flags as `service inspect`
shows them."""
import json
import os

import pytest

from conftest import parse_table, wait_for
from test_workers import join_worker

NO_CONTAINERS = "SWARMD_NO_CONTAINER_RUNTIME"
HAVE_RUNC = os.geteuid() == 0 and any(
    os.access(os.path.join(d, "runc"), os.X_OK)
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/usr/bin"])


def tasks(m, svc):
    return parse_table(m.ok("service", "ps", "--no-trunc", svc),
                       ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])


def spec_of(m, svc):
    return json.loads(m.ok("service", "inspect", svc))[0]["Spec"]


def start_process_only(swarm, name, monkeypatch):
    """A node started with the container runtime turned off."""
    monkeypatch.setenv(NO_CONTAINERS, "1")
    try:
        return swarm.node(name).start()
    finally:
        monkeypatch.delenv(NO_CONTAINERS)


def test_runtime_rule_and_inspect(manager):
    m = manager
    m.ok("service", "create", "-d", "--name", "prog", "sleep", "1000")
    m.ok("service", "create", "-d", "--name", "img", "--replicas", "0", "busybox:1")
    m.ok("service", "create", "-d", "--name", "forced", "--replicas", "0", "--runtime",
         "container", "--cap-add", "NET_ADMIN", "--mount", "type=tmpfs,target=/t",
         "--read-only", "--init", "--stop-signal", "SIGINT", "--entrypoint", "/bin/sh -c",
         "nginx")
    assert spec_of(m, "prog")["Task"]["Runtime"] == "process"
    assert spec_of(m, "img")["Task"]["Runtime"] == "container"
    t = spec_of(m, "forced")["Task"]
    assert t["Runtime"] == "container"
    c = t["Container"]
    assert c["CapabilityAdd"] == ["NET_ADMIN"]
    assert c["Mounts"] == [{"Type": "tmpfs", "Target": "/t", "ReadOnly": False,
                           "TmpfsSizeBytes": 0}]
    assert c["ReadOnly"] is True and c["Init"] is True
    assert c["StopSignal"] == "SIGINT" and c["Command"] == ["/bin/sh", "-c"]
    pretty = m.ok("service", "inspect", "--pretty", "forced")
    assert "Runtime:\tcontainer" in pretty and "Capability Add:" in pretty, pretty
    # --image decides again; an explicit --runtime wins.
    m.ok("service", "update", "-d", "--image", "127.0.0.1:5000/busybox", "prog")
    assert spec_of(m, "prog")["Task"]["Runtime"] == "container"
    m.ok("service", "update", "-d", "--runtime", "process", "--image", "sleep", "prog")
    assert spec_of(m, "prog")["Task"]["Runtime"] == "process"
    # Container-only fields on a program of the host: refused, nothing written.
    err = m.fails("service", "create", "--name", "bad", "--mount", "type=tmpfs,target=/t",
                  "sleep", "1")
    assert "--mount needs the container runtime" in err, err
    err = m.fails("service", "create", "--name", "bad", "--mount", "type=bind,target=/t",
                  "busybox:1")
    assert "invalid bind mount source, must be an absolute path:" in err, err
    err = m.fails("service", "create", "--name", "bad", "--mount", "type=bind,src=/x",
                  "busybox:1")
    assert 'invalid argument "type=bind,src=/x" for "--mount" flag: target is required' in err
    assert "bad" not in m.ok("service", "ls")


def test_node_runtimes_and_scheduler_filter(manager, swarm, monkeypatch):
    m = manager
    want = ["process", "container"] if HAVE_RUNC else ["process"]
    assert m.inspect()["Description"]["Runtimes"] == want
    assert "Runtimes:\t\t" + " ".join(want) in m.ok("node", "inspect", "--pretty", "self")
    # A worker without the container runtime, and the manager drained for
    # the second half.
    w = start_process_only(swarm, "w1", monkeypatch)
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
    wait_for(lambda: m.inspect("w1").get("Description", {}).get("Runtimes") == ["process"],
             timeout=10, what="w1's runtimes")
    m.ok("node", "update", "--availability", "drain", "m1")
    m.ok("service", "create", "-d", "--name", "ctr", "busybox:1")
    wait_for(lambda: "runtime not offered on 1 node" in (tasks(m, "ctr") or [{}])[0].get("ERROR", ""),
             timeout=10, what="pending reason")
    row = tasks(m, "ctr")[0]
    assert row["CURRENT STATE"].startswith("Pending") and row["NODE"] == "", row
    assert ("no suitable node (1 node not available for new tasks; runtime not offered on "
            "1 node)") in row["ERROR"]


def task_ids(m, svc):
    return [r["ID"] for r in tasks(m, svc)]


def running_rows(m, svc):
    return [r for r in tasks(m, svc) if r["CURRENT STATE"].startswith("Running")]


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"), reason="no cgroup v1 memory")
def test_process_limits_on_cgroup_v1(manager):
    """The process executor's --limit-memory/--limit-cpu and pids limit on a
    cgroup v1 host: enforced, visible in the cgroup, cleaned up with the
    task; going over the memory limit is an OOM kill, reported."""
    m = manager
    m.ok("service", "create", "-d", "--name", "cpu", "--limit-cpu", "0.5", "--limit-memory",
         "64m", "sleep", "1000")
    wait_for(lambda: running_rows(m, "cpu"), timeout=20, what="cpu running")
    tid = running_rows(m, "cpu")[0]["ID"]
    cg = f"/sys/fs/cgroup/cpu/swarmd-{tid}"
    assert open(f"{cg}/cpu.cfs_quota_us").read().strip() == "50000"
    assert open(f"{cg}/cpu.cfs_period_us").read().strip() == "100000"
    mem = f"/sys/fs/cgroup/memory/swarmd-{tid}"
    assert int(open(f"{mem}/memory.limit_in_bytes").read()) == 64 << 20
    assert open(f"/sys/fs/cgroup/pids/swarmd-{tid}/pids.max").read().strip() == "4096"
    procs = open(f"{cg}/cgroup.procs").read().split()
    assert procs, "the task is not in its cgroup"
    m.ok("service", "rm", "cpu")
    wait_for(lambda: not os.path.exists(cg) and not os.path.exists(mem), timeout=20,
             what="cgroups removed with the task")
    # Over the limit: OOM-killed and reported as Docker does (exit 137).
    m.ok("service", "create", "-d", "--name", "hog", "--limit-memory", "32m",
         "--restart-condition", "none", "python3", "-c",
         "a = [bytearray(1 << 20) for _ in range(256)]")
    row = wait_for(lambda: [r for r in tasks(m, "hog") if r["CURRENT STATE"].startswith("Failed")],
                   timeout=30, what="hog failed")[0]
    assert "OOM killed" in row["ERROR"] and "137" in row["ERROR"], row
    assert not os.path.exists(f"/sys/fs/cgroup/memory/swarmd-{row['ID']}")
