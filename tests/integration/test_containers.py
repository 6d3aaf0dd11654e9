"""Containers (issue 14): the runtime rule, the runtimes a node offers, the
scheduler's runtime filter, and the container flags as `service inspect`
shows them."""
import json
import os
import socket
import subprocess
import urllib.request

import pytest

import registry

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
    assert spec_of(m, "prog")["TaskTemplate"]["Runtime"] == "process"
    assert spec_of(m, "img")["TaskTemplate"]["Runtime"] == "container"
    t = spec_of(m, "forced")["TaskTemplate"]
    assert t["Runtime"] == "container"
    c = t["ContainerSpec"]
    assert c["CapabilityAdd"] == ["NET_ADMIN"]
    assert c["Mounts"] == [{"Type": "tmpfs", "Target": "/t", "ReadOnly": False,
                           "TmpfsSizeBytes": 0}]
    assert c["ReadOnly"] is True and c["Init"] is True
    assert c["StopSignal"] == "SIGINT" and c["Command"] == ["/bin/sh", "-c"]
    pretty = m.ok("service", "inspect", "--pretty", "forced")
    assert "Runtime:\tcontainer" in pretty and "Capability Add:" in pretty, pretty
    # --image decides again; an explicit --runtime wins.
    m.ok("service", "update", "-d", "--image", "127.0.0.1:5000/busybox", "prog")
    assert spec_of(m, "prog")["TaskTemplate"]["Runtime"] == "container"
    m.ok("service", "update", "-d", "--runtime", "process", "--image", "sleep", "prog")
    assert spec_of(m, "prog")["TaskTemplate"]["Runtime"] == "process"
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


CGROUP_FS = "/sys/fs/cgroup"


def task_cgroups(ids):
    """The cgroups of these tasks in every hierarchy of the host (v1
    controllers, runc's named ones, the v2 tree)."""
    hier = [h for h in os.listdir(CGROUP_FS) if os.path.isdir(os.path.join(CGROUP_FS, h))]
    return [f"{h}/swarmd-{tid}" for h in hier for tid in ids
            if os.path.isdir(os.path.join(CGROUP_FS, h, f"swarmd-{tid}"))]


def node_task_ids(node):
    """Every task the node began to run (its task dir holds one dir each)."""
    d = node.state_dir.parent / (node.state_dir.name + "-tasks")
    return set(os.listdir(d)) if d.exists() else set()


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
    mem = f"/sys/fs/cgroup/memory/swarmd-{tid}"
    # The shim makes them, right after the spawn that RUNNING follows.
    wait_for(lambda: all(os.path.exists(f) for f in (
        f"{cg}/cpu.cfs_quota_us", f"{mem}/memory.limit_in_bytes",
        f"/sys/fs/cgroup/pids/swarmd-{tid}/pids.max")), timeout=10, what="the task's cgroups")
    assert open(f"{cg}/cpu.cfs_quota_us").read().strip() == "50000"
    assert open(f"{cg}/cpu.cfs_period_us").read().strip() == "100000"
    assert int(open(f"{mem}/memory.limit_in_bytes").read()) == 64 << 20
    assert open(f"/sys/fs/cgroup/pids/swarmd-{tid}/pids.max").read().strip() == "4096"
    # The shim joins the cgroups right after the spawn that RUNNING follows.
    wait_for(lambda: open(f"{cg}/cgroup.procs").read().split(), timeout=10,
             what="the task in its cgroup")
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


def test_rejected_process_task_leaves_no_cgroup(manager):
    """A task rejected before it runs (no such program) had nothing made for
    it in any cgroup hierarchy, while it stays on the node and after swarmd
    is killed (nothing removes them then)."""
    m = manager
    m.ok("service", "create", "-d", "--name", "nosuch", "--restart-condition", "none",
         "--limit-memory", "64m", "--limit-cpu", "0.5", "/nonexistent/program")
    row = wait_for(lambda: [r for r in tasks(m, "nosuch") if r["ERROR"]], timeout=20,
                   what="rejected")[0]
    assert "/nonexistent/program" in row["ERROR"], row
    assert row["CURRENT STATE"].startswith("Rejected"), row
    assert task_cgroups([row["ID"]]) == []
    m.kill()
    assert task_cgroups([row["ID"]]) == []


# ------------------------------------------------------------ running images

needs_containers = pytest.mark.skipif(
    not HAVE_RUNC or not registry.available(),
    reason="needs root, runc, docker-registry and busybox-static")


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A registry on loopback holding busybox:1 (one layer from Debian's
    busybox-static, its /etc/passwd and group)."""
    r = registry.Registry(tmp_path_factory.mktemp("registry"), "127.0.0.1")
    r.start()
    r.image = registry.push_busybox(r, "busybox", "1")
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def stop_nodes_gently(swarm):
    """swarmd stopped with SIGTERM at the end (its containers stopped and
    removed) before the swarm fixture's SIGKILL; no cgroup of any task a
    node ran is left then."""
    yield
    ids = set()
    for n in swarm.nodes:
        ids |= node_task_ids(n)
        if n.alive():
            n.stop(timeout=60)
    wait_for(lambda: task_cgroups(ids) == [], timeout=10, what="no task cgroup left")


def ctr_manager(swarm, reg, name="m1"):
    n = swarm.node(name).start("--insecure-registry", reg.host)
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    wait_for(lambda: n.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="manager ready")
    return n


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
    except OSError:
        return None


def logs(m, svc):
    return m.ok("service", "logs", "--no-task-ids", svc)


def leftovers(node, ids):
    """What a node's containers could leave behind: runc state, overlay
    mounts, cgroups, snapshots."""
    state = str(node.state_dir)
    left = []
    runc_root = node.state_dir / "runc"
    if runc_root.exists():
        left += [f"runc:{d}" for d in os.listdir(runc_root)]
    with open("/proc/mounts") as f:
        left += [f"mount:{line.split()[1]}" for line in f if state in line.split()[1]]
    left += [f"cgroup:{cg}" for cg in task_cgroups(ids)]
    snaps = node.state_dir / "images" / "snapshots"
    if snaps.exists():
        left += [f"snapshot:{d}" for d in os.listdir(snaps)]
    return left


@needs_containers
def test_three_replicas_of_busybox_httpd(swarm, reg):
    m = ctr_manager(swarm, reg)
    ports = {1: free_port(), 2: free_port(), 3: free_port()}
    script = ("echo pid=$$ host=$(hostname) varlib=$(ls /var/lib 2>&1 | tr '\\n' ,) "
              f"state=$(ls {m.state_dir} >/dev/null 2>&1 && echo visible || echo hidden); "
              f"case $SWARM_TASK_SLOT in 1) p={ports[1]};; 2) p={ports[2]};; 3) p={ports[3]};; esac; "
              "echo hello > /www/index.html; exec httpd -f -h /www -p 127.0.0.1:$p")
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "3",
         "--mount", "type=tmpfs,target=/www", reg.image["ref"], "sh", "-c", script)
    wait_for(lambda: len(running_rows(m, "web")) == 3, timeout=60, what="3 replicas running")
    for slot in (1, 2, 3):
        assert wait_for(lambda: http_get(ports[slot]), timeout=20,
                        what=f"httpd of slot {slot}") == b"hello\n"
    out = logs(m, "web")
    ids = {r["ID"] for r in running_rows(m, "web")}
    lines = [line for line in out.splitlines() if "pid=" in line]
    assert len(lines) >= 3, out
    for line in lines:
        assert "pid=1 " in line, line                    # pid 1 in its own pid namespace
        host = line.split("host=")[1].split()[0]
        assert len(host) == 12, line
        assert "varlib=ls: /var/lib: No such file or directory" in line, line
        assert "state=hidden" in line, line
    hosts = {line.split("host=")[1].split()[0] for line in lines}
    assert all(i[:12] in hosts for i in ids), (ids, out)  # each task's hostname
    assert json.loads(m.ok("service", "inspect", "web"))[0]["Spec"]["TaskTemplate"]["Runtime"] == \
        "container"
    m.ok("service", "rm", "web")
    wait_for(lambda: leftovers(m, ids) == [], timeout=30, what="containers gone")


@needs_containers
def test_limits_oom_and_cpu(swarm, reg):
    m = ctr_manager(swarm, reg)
    m.ok("service", "create", "-d", "--name", "cpu", "--limit-cpu", "0.5", reg.image["ref"],
         "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; exec sleep 1000")
    wait_for(lambda: running_rows(m, "cpu"), timeout=60, what="cpu running")
    tid = running_rows(m, "cpu")[0]["ID"]
    assert open(f"/sys/fs/cgroup/cpu/swarmd-{tid}/cpu.cfs_quota_us").read().strip() == "50000"
    wait_for(lambda: "50000" in logs(m, "cpu"), timeout=10, what="the quota seen inside")
    m.ok("service", "create", "-d", "--name", "hog", "--limit-memory", "16m",
         "--restart-condition", "none", reg.image["ref"],
         "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    row = wait_for(lambda: [r for r in tasks(m, "hog") if r["CURRENT STATE"].startswith("Failed")],
                   timeout=60, what="hog OOM-killed")[0]
    assert "non-zero exit (137)" in row["ERROR"] and "OOM killed" in row["ERROR"], row


@needs_containers
def test_mounts_bind_volume_tmpfs(swarm, reg, tmp_path):
    m = ctr_manager(swarm, reg)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("from the host\n")
    script = ("cat /ro/f; (echo x > /ro/g) 2>&1 | head -c 200; echo; "
              "echo run >> /vol/runs; echo runs=$(wc -l < /vol/runs); "
              "mount | grep ' /scratch ' | head -c 40; echo; exec sleep 1000")
    m.ok("service", "create", "-d", "--name", "mnt",
         "--mount", f"type=bind,source={src},target=/ro,readonly",
         "--mount", "type=volume,source=keep1,target=/vol",
         "--mount", "type=tmpfs,target=/scratch", reg.image["ref"], "sh", "-c", script)
    wait_for(lambda: "runs=1" in logs(m, "mnt"), timeout=60, what="first run")
    out = logs(m, "mnt")
    assert "from the host" in out and "Read-only file system" in out, out
    assert "tmpfs on /scratch" in out, out
    assert not (src / "g").exists()
    # A new task on the same node sees the volume's data.
    m.ok("service", "update", "-d", "--force", "mnt")
    wait_for(lambda: "runs=2" in logs(m, "mnt"), timeout=60, what="second run sees the volume")
    assert (m.state_dir / "volumes" / "keep1" / "_data" / "runs").read_text() == "run\nrun\n"
    m.ok("service", "rm", "mnt")
    wait_for(lambda: not any(x.startswith("runc:") for x in leftovers(m, [])), timeout=30,
             what="container gone")
    assert (m.state_dir / "volumes" / "keep1" / "_data" / "runs").exists()  # kept
    # volume ls / rm on the node; a volume in use is not removed.
    assert m.ok("volume", "ls").split("\n")[:2] == ["DRIVER    VOLUME NAME", "local     keep1"]
    m.ok("service", "create", "-d", "--name", "user", "--mount",
         "type=volume,source=busy1,target=/v", reg.image["ref"], "sleep", "1000")
    wait_for(lambda: running_rows(m, "user"), timeout=60, what="user running")
    tid = running_rows(m, "user")[0]["ID"]
    assert m.ok("volume", "ls", "-q").split() == ["busy1", "keep1"]
    err = m.fails("volume", "rm", "busy1")
    assert f"remove busy1: volume is in use - [{tid}]" in err, err
    assert (m.state_dir / "volumes" / "busy1").exists()
    err = m.fails("volume", "rm", "nope1")
    assert "get nope1: no such volume" in err, err
    assert m.ok("volume", "rm", "keep1") == "keep1\n"
    assert not (m.state_dir / "volumes" / "keep1").exists()
    m.ok("service", "rm", "user")
    wait_for(lambda: m.ctl("volume", "rm", "busy1").returncode == 0, timeout=30,
             what="busy1 removable once its task ended")
    # A bind source that does not exist: rejected with Docker's message.
    m.ok("service", "create", "-d", "--name", "nosrc", "--restart-condition", "none",
         "--mount", f"type=bind,source={tmp_path}/nope,target=/x", reg.image["ref"], "true")
    row = wait_for(lambda: [r for r in tasks(m, "nosrc") if r["ERROR"]], timeout=60,
                   what="nosrc rejected")[0]
    assert "bind source path does not exist" in row["ERROR"], row


@needs_containers
def test_health_check_inside_replaces_unhealthy(swarm, reg):
    m = ctr_manager(swarm, reg)
    # /ok exists only inside the container: a check run on the host fails.
    m.ok("service", "create", "-d", "--name", "hc", "--health-cmd", "test -f /ok",
         "--health-interval", "300ms", "--health-retries", "2", reg.image["ref"],
         "sh", "-c", "touch /ok; sleep 3; rm /ok; exec sleep 1000")
    wait_for(lambda: running_rows(m, "hc"), timeout=60, what="healthy: running")
    row = wait_for(lambda: [r for r in tasks(m, "hc") if "unhealthy" in r["ERROR"]],
                   timeout=60, what="unhealthy task failed")[0]
    assert row["CURRENT STATE"].startswith("Failed"), row
    wait_for(lambda: len(tasks(m, "hc")) >= 2, timeout=30, what="a replacement")


@needs_containers
def test_bad_images_and_unreachable_registry(swarm, reg, tmp_path):
    m = ctr_manager(swarm, reg)
    # The manager resolves the tag first: refused with Docker's message.
    err = m.fails("service", "create", "-d", "--name", "nosuch", f"{reg.host}/nosuch:1")
    assert f"No such image: {reg.host}/nosuch:1" in err, err
    assert "nosuch" not in m.ok("service", "ls")
    m.ok("service", "create", "-d", "--name", "baduser", "--restart-condition", "none",
         "-u", "nobody42", reg.image["ref"], "true")
    row = wait_for(lambda: [r for r in tasks(m, "baduser") if r["ERROR"]], timeout=60,
                   what="baduser rejected")[0]
    assert "unable to find user nobody42: no matching entries in passwd file" in row["ERROR"]
    # A registry that is down: the error in service ps, then running once back.
    down = registry.Registry(tmp_path / "down", "127.0.0.1")
    down.start()
    img = registry.push_busybox(down, "later", "1")
    down.stop()
    m.stop()
    m.start("--insecure-registry", reg.host, "--insecure-registry", down.host)
    wait_for(lambda: m.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="ready again")
    m.ok("service", "create", "-d", "--name", "later", img["ref"], "sleep", "1000")
    row = wait_for(lambda: [r for r in tasks(m, "later") if "pulling" in r["ERROR"]],
                   timeout=60, what="pull error shown")[0]
    assert row["CURRENT STATE"].startswith("Preparing"), row
    down.start()
    try:
        wait_for(lambda: running_rows(m, "later"), timeout=60, what="running once back")
    finally:
        down.stop()


def runc_inits(node):
    """Each container's init pid, from `runc state` (runc's API)."""
    root = node.state_dir / "runc"
    pids = {}
    for cid in (os.listdir(root) if root.exists() else []):
        r = subprocess.run(["runc", "--root", str(root), "state", cid], capture_output=True,
                           text=True)
        if r.returncode == 0:
            pids[cid] = json.loads(r.stdout)["pid"]
        else:
            assert "container does not exist" in r.stderr, r.stderr  # going or coming
    return pids


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


@needs_containers
def test_kill9_restart_leaves_nothing(swarm, reg):
    """Not adopted: kill -9 of swarmd takes its containers down (runc runs
    under swarmd's shim); the restart removes what they left (runc state,
    overlay mounts, snapshots, cgroups) and runs the tasks again."""
    m = ctr_manager(swarm, reg)
    m.ok("service", "create", "-d", "--name", "k", "--replicas", "2", "--limit-memory", "64m",
         reg.image["ref"], "sleep", "1000")
    wait_for(lambda: len(running_rows(m, "k")) == 2, timeout=60, what="running")
    ids = {r["ID"] for r in running_rows(m, "k")}
    before = wait_for(lambda: (lambda p: p if set(p) == ids else None)(runc_inits(m)),
                      timeout=10, what="both containers in runc's state")
    assert all(alive(p) for p in before.values()), before
    m.kill()
    wait_for(lambda: not any(alive(p) for p in before.values()), timeout=10,
             what="containers gone with swarmd")
    # ... and their mounts and cgroups with them (the shim released them).
    wait_for(lambda: [x for x in leftovers(m, ids) if x.startswith(("mount:", "cgroup:"))] == [],
             timeout=10, what="mounts and cgroups released with swarmd")
    # Cgroups a previous run left of a task of this node (its dir in the
    # task dir) go at the restart; another swarmd's stay.
    mine, other = "yy" + sorted(ids)[0][2:], "zz" + sorted(ids)[0][2:]
    tdir = m.state_dir.parent / (m.state_dir.name + "-tasks")
    (tdir / mine).mkdir()
    made = [os.path.join(CGROUP_FS, h, f"swarmd-{tid}") for h in ("memory", "pids")
            for tid in (mine, other)]
    for d in made:
        os.mkdir(d)
    try:
        m.start("--insecure-registry", reg.host)
        wait_for(lambda: task_cgroups([mine]) == [], timeout=20, what="own leftovers removed")
        assert sorted(task_cgroups([other])) == [f"memory/swarmd-{other}", f"pids/swarmd-{other}"]
    finally:
        for d in made:
            if os.path.isdir(d):
                os.rmdir(d)
    wait_for(lambda: len(running_rows(m, "k")) == 2, timeout=60, what="running again")
    now = {r["ID"] for r in running_rows(m, "k")}
    after = wait_for(lambda: (lambda p: p if set(p) == now else None)(runc_inits(m)),
                     timeout=10, what="the running tasks' containers in runc's state")
    assert not set(after.values()) & set(before.values())
    # Nothing but what the running tasks hold.
    running = set(after)
    assert all(any(i in x for i in running) for x in leftovers(m, ids | running)), \
        leftovers(m, ids | running)
    m.ok("service", "rm", "k")
    wait_for(lambda: leftovers(m, ids | running) == [], timeout=30, what="all gone")


@needs_containers
def test_both_runtimes_side_by_side(swarm, reg, monkeypatch):
    m = ctr_manager(swarm, reg)
    w = start_process_only(swarm, "w1", monkeypatch)
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
    wait_for(lambda: m.inspect("w1").get("Status", {}).get("State") == "ready", timeout=10,
             what="w1 ready")
    m.ok("service", "create", "-d", "--name", "ctr", "--replicas", "3", reg.image["ref"],
         "sleep", "1000")
    m.ok("service", "create", "-d", "--name", "proc", "--replicas", "4", "sleep", "1000")
    wait_for(lambda: len(running_rows(m, "ctr")) == 3, timeout=60, what="ctr running")
    wait_for(lambda: len(running_rows(m, "proc")) == 4, timeout=60, what="proc running")
    assert {r["NODE"] for r in running_rows(m, "ctr")} == {"m1"}
    assert {r["NODE"] for r in running_rows(m, "proc")} == {"m1", "w1"}


@needs_containers
def test_kill9_while_starting_leaves_no_cgroup(swarm, reg):
    """swarmd killed while its tasks are being started (containers and
    processes, a pull, a snapshot, runc under way): what the shims could not
    remove goes at the next start at the latest, so once the services are
    removed no cgroup of any of their tasks is left in any hierarchy. (That
    none is left even before the restart is what the shims aim at, not what
    is promised on a loaded machine: README, Limits.)"""
    m = ctr_manager(swarm, reg)
    tdir = m.state_dir.parent / (m.state_dir.name + "-tasks")
    m.ok("service", "create", "-d", "--name", "c", "--replicas", "4", "--limit-memory", "64m",
         reg.image["ref"], "sleep", "1000")
    m.ok("service", "create", "-d", "--name", "p", "--replicas", "4", "--limit-memory", "64m",
         "sleep", "1000")
    # Killed as soon as the first container's runtime config is written
    # (what comes next is runc); the others are wherever they are.
    wait_for(lambda: list(tdir.glob("*/bundle/config.json")), timeout=60, interval=0.002,
             what="a container about to start")
    m.kill()
    ids = node_task_ids(m)
    assert len(ids) >= 2, ids
    m.start("--insecure-registry", reg.host)
    wait_for(lambda: m.ctl("service", "ls", "-q").returncode == 0, timeout=30,
             what="a leader after the restart")
    m.ok("service", "rm", "c", "p")
    wait_for(lambda: task_cgroups(ids | node_task_ids(m)) == [], timeout=60,
             what="no cgroup left of the tasks")
