"""Bounds on what users and nodes set (daemon/manager/specvalid.h): swarmctl
and a raw gRPC client nobody here wrote are refused the same things with the
same message, nothing is written, and the manager keeps answering; a node
cannot join with a hostname that would drive a terminal; swarmctl escapes
what users and nodes chose; a large scale-up proceeds in bounded batches
while the swarm keeps answering."""
import json
import subprocess

import grpc
import pytest

from conftest import NODE_COLUMNS, SWARMD, parse_table, wait_for
from test_grpc_interop import pb, rpc_error, unix_channel  # noqa: F401 (pb is a fixture)

MAX_REPLICAS = 100000


def service_names(m):
    return [line.split()[1] for line in m.ok("service", "ls").splitlines()[1:]]


def spec(pb, name="web", image="sleep", replicas=1, **container):
    return pb.objects.ServiceSpec(
        annotations=pb.objects.Annotations(name=name),
        task=pb.objects.TaskSpec(container=pb.objects.ContainerSpec(
            image=image, args=["1000"], **container)),
        replicated=pb.objects.ReplicatedService(replicas=replicas))


def grpc_create_refused(pb, m, s):
    """CreateService over the control socket: INVALID_ARGUMENT; its message."""
    with unix_channel(m) as ch:
        err = rpc_error(pb.control_grpc.ControlStub(ch).CreateService,
                        pb.control.CreateServiceRequest(spec=s))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    return err.details()


def cli_refused(m, *args):
    """The CLI's refusal, without its "Error: " prefix."""
    msg = m.fails(*args)
    assert msg.startswith("Error: "), msg
    return msg[len("Error: "):]


@pytest.mark.parametrize("replicas", ["18446744073709551615", "1000000"])
def test_replicas_over_the_maximum(manager, pb, replicas):
    want = f"invalid replicas {replicas}: the maximum is {MAX_REPLICAS} replicas per service"
    assert cli_refused(manager, "service", "create", "--name", "web", "--replicas", replicas,
                       "sleep", "1000") == want
    assert grpc_create_refused(pb, manager, spec(pb, replicas=int(replicas))) == want
    assert service_names(manager) == []
    # scale and update go through the same rules
    manager.ok("service", "create", "-d", "--name", "web", "sleep", "1000")
    assert cli_refused(manager, "service", "scale", "-d", f"web={replicas}") == want
    assert cli_refused(manager, "service", "update", "-d", "--replicas", replicas, "web") == want
    with unix_channel(manager) as ch:
        stub = pb.control_grpc.ControlStub(ch)
        svc = stub.GetService(pb.control.GetServiceRequest(service_id="web"), timeout=10).service
        s = svc.spec
        s.replicated.replicas = int(replicas)
        err = rpc_error(stub.UpdateService, pb.control.UpdateServiceRequest(
            service_id=svc.id, service_version=svc.meta.version, spec=s))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert err.details() == want
    out = json.loads(manager.ok("service", "inspect", "web"))[0]
    assert out["Spec"]["Mode"]["Replicated"]["Replicas"] == 1
    assert manager.node_rows()[0]["STATUS"] == "Ready"


def test_negative_durations(manager, pb):
    # swarmctl refuses them as flags, as Docker does ...
    for flag in ("--health-interval", "--update-delay", "--restart-delay", "--update-monitor"):
        msg = manager.fails("service", "create", f"{flag}=-1s", "sleep", "1000")
        assert "duration cannot be negative" in msg, msg
    # ... and the API refuses what a raw client sends, with swarmkit's words.
    s = spec(pb, healthcheck=pb.objects.HealthConfig(test=["CMD", "true"], interval_ms=-1))
    assert grpc_create_refused(pb, manager, s) == \
        "ContainerSpec: Interval in HealthConfig cannot be less than 1ms"
    s = spec(pb, healthcheck=pb.objects.HealthConfig(timeout_ms=-5))
    assert grpc_create_refused(pb, manager, s) == \
        "ContainerSpec: Timeout in HealthConfig cannot be less than 1ms"
    s = spec(pb)
    s.update.delay_ms = -1
    assert grpc_create_refused(pb, manager, s) == "TaskSpec: update-delay cannot be negative"
    s = spec(pb)
    s.update.monitor_ms = 10**15
    assert grpc_create_refused(pb, manager, s) == \
        "TaskSpec: update-monitor cannot be longer than 8760h0m0s"
    # A maximum the CLI can express: the same message from both.
    want = "TaskSpec: restart-delay cannot be longer than 8760h0m0s"
    assert cli_refused(manager, "service", "create", "--restart-delay", "8761h",
                       "sleep", "1000") == want
    s = spec(pb)
    s.task.restart.delay_ms = 8761 * 3600 * 1000
    assert grpc_create_refused(pb, manager, s) == want
    assert service_names(manager) == []


def test_nul_and_long_strings(manager, pb):
    # A NUL would be cut away by decoding ("web\0evil" read as "web"): the
    # request is refused before it is decoded.
    assert grpc_create_refused(pb, manager, spec(pb, name="web\0evil")) == \
        "invalid CreateServiceRequest: field spec.annotations.name holds a NUL byte"
    assert grpc_create_refused(pb, manager, spec(pb, env=["A=1\0B=2"])) == \
        "invalid CreateServiceRequest: field spec.task.container.env holds a NUL byte"
    # A 1 MiB image name over gRPC; the CLI's argv cannot carry 1 MiB, but
    # anything over the bound gets the same words.
    want = "ContainerSpec: image reference is longer than 4096 bytes"
    assert grpc_create_refused(pb, manager, spec(pb, image="x" * (1 << 20))) == want
    assert cli_refused(manager, "service", "create", "x" * 5000) == want
    want = "name must be valid as a DNS name component"
    assert cli_refused(manager, "service", "create", "--name", "web\x1b[31m", "sleep") == want
    assert grpc_create_refused(pb, manager, spec(pb, name="web\x1b[31m")) == want
    assert service_names(manager) == []
    assert manager.node_rows()[0]["STATUS"] == "Ready"


def test_cluster_and_node_specs(manager, pb):
    want = "task history retention limit must be at most 1000"
    assert cli_refused(manager, "swarm", "update", "--task-history-limit", "5000") == want
    with unix_channel(manager) as ch:
        stub = pb.control_grpc.ControlStub(ch)
        c = stub.ListClusters(pb.control.ListClustersRequest(), timeout=10).clusters[0]
        c.spec.orchestration.task_history_retention_limit = 5000
        err = rpc_error(stub.UpdateCluster, pb.control.UpdateClusterRequest(
            cluster_id=c.id, cluster_version=c.meta.version, spec=c.spec))
        assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, want)
        n = stub.GetNode(pb.control.GetNodeRequest(node_id=manager.inspect()["ID"]),
                         timeout=10).node
        n.spec.annotations.labels.add(key="zone\n\x1b[2J", value="a")
        err = rpc_error(stub.UpdateNode, pb.control.UpdateNodeRequest(
            node_id=n.id, node_version=n.meta.version, spec=n.spec))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert err.details() == ('invalid label key "zone\\n\\x1b[2J": printable characters, '
                                 '256 bytes at most')
    assert "Task History Retention Limit: 5\n" in manager.ok("info")
    assert manager.inspect()["Spec"].get("Labels", {}) == {}


BAD_HOSTNAME = b"evil\x1b[2J\nroot"


def test_join_with_escapes_in_hostname_is_refused(swarm, manager):
    # swarmd refuses such a --hostname at start ...
    r = subprocess.run([str(SWARMD), "--state-dir", str(swarm.base / "x"), "--hostname",
                        BAD_HOSTNAME.decode()], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r
    assert r.stderr == ('swarmd: --hostname: invalid hostname "evil\\x1b[2J\\nroot": printable '
                        'ASCII without spaces, 1 to 253 characters\n'), r.stderr
    # ... and a manager refuses a node whose system hostname is one (a UTS
    # namespace of its own, so this machine's hostname is untouched).
    w = swarm.node("w1")
    set_host = ("import os, socket, sys; socket.sethostname(%r); os.execv(sys.argv[1], sys.argv[1:])"
                % BAD_HOSTNAME)
    log = open(w.log_path, "ab")
    w.proc = subprocess.Popen(
        ["unshare", "--uts", "/usr/bin/python3", "-c", set_host, str(SWARMD), "--state-dir",
         str(w.state_dir), "--listen-addr", w.addr, "--log-level", "debug"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    wait_for(lambda: w.proc.poll() is not None or w.ctl("info").returncode == 0, timeout=10,
             what="w1 control socket")
    assert w.alive(), w.log_tail()
    token = manager.ok("swarm", "join-token", "-q", "worker").strip()
    msg = w.fails("swarm", "join", "--token", token, "--advertise-addr", w.ip, manager.addr)
    assert 'invalid hostname "evil\\x1b[2J\\nroot"' in msg, msg
    assert "\x1b" not in msg and "\n" not in msg, msg
    assert [r["HOSTNAME"] for r in manager.node_rows()] == ["m1"]
    assert "Swarm: inactive" in w.ok("info")


def test_cli_escapes_what_users_chose(manager):
    manager.ok("service", "create", "-d", "--name", "web", "-l", "color=red\x1b[31m",
               "-e", "TITLE=\x1b]0;pwned\x07", "sleep", "1000")
    out = manager.ok("service", "inspect", "--pretty", "web")
    assert "\x1b" not in out and "\x07" not in out, out
    assert " color=red\\x1b[31m\n" in out, out
    assert "TITLE=\\x1b]0;pwned\\x07 " in out, out
    # JSON keeps the value, escaped the JSON way.
    raw = manager.ok("service", "inspect", "web")
    assert "\x1b" not in raw
    assert json.loads(raw)[0]["Spec"]["Labels"]["color"] == "red\x1b[31m"


# The documented maximum (SPEC_MAX_REPLICAS) on ONE simulated node: 20
# passes of ORCH_MAX_CREATE tasks, each going on from where the last one
# stopped (no pass reads every task), the dispatcher sending the node only
# what changed. bench/bench_bigscale.py times it.
SCALE = 100000


def test_large_scale_up_keeps_the_swarm_answering(swarm):
    """100,000 replicas (the maximum) on one simulated node: created 5,000
    per raft entry, while `node ls` keeps answering and the node never goes
    Down, until every one runs."""
    m = swarm.node("m1").start("--executor", "sim")
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    wait_for(lambda: m.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="manager ready")
    m.ok("service", "create", "-d", "--name", "big", "--replicas", str(SCALE),
         "sleep", "1000")
    seen = set()

    def converged():
        # Each poll must be answered within its own deadline (ctl timeout).
        rows = parse_table(m.ok("node", "ls", timeout=15), NODE_COLUMNS)
        assert [r["STATUS"] for r in rows] == ["Ready"], rows
        running = m.ok("service", "ls", timeout=15).splitlines()[1].split()[3]
        seen.add(running)
        return running == f"{SCALE}/{SCALE}"

    wait_for(converged, timeout=600, interval=0.5, what=f"{SCALE} replicas running")
    # It really went in steps, not one giant entry.
    assert len(seen) > 3, seen
    assert "missed its heartbeats" not in m.log_path.read_text(errors="replace")
    assert m.alive()
