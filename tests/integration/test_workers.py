"""Workers: joining with a worker token, dispatcher sessions and heartbeats,
Down detection, failover to another manager, role changes, and refusals."""
import subprocess
import sys
import time

import pytest

from conftest import ROOT, wait_for
from test_managers import leader_of, make_managers

NOT_MANAGER = "Worker nodes can't be used to view or modify cluster state"


def status_of(manager, hostname):
    for row in manager.node_rows():
        if row["HOSTNAME"] == hostname:
            return row
    return None


def join_worker(swarm, manager, name="w1"):
    w = swarm.node(name).start()
    token = manager.ok("swarm", "join-token", "-q", "worker").strip()
    out = w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, manager.addr)
    assert out.strip() == "This node joined a swarm as a worker.", out
    wait_for(lambda: (status_of(manager, name) or {}).get("STATUS") == "Ready", timeout=10,
             what=f"{name} Ready")
    return w


def test_worker_join_ready_down_and_back(manager, swarm):
    w = join_worker(swarm, manager)
    row = status_of(manager, "w1")
    assert row["MANAGER STATUS"] == "" and row["AVAILABILITY"] == "Active"
    node_id = row["ID"]
    info = w.ok("info")
    assert "Is Manager: false" in info and manager.addr in info, info
    assert NOT_MANAGER in w.fails("node", "ls")
    # Its description came with the session.
    node = manager.inspect("w1")
    assert node["Description"]["Hostname"] == "w1"
    assert node["Status"]["Addr"] == w.ip
    # kill -9: Down after the missed heartbeats (1 s period, 3 missed).
    w.kill()
    t0 = time.monotonic()
    wait_for(lambda: status_of(manager, "w1")["STATUS"] == "Down", timeout=15, interval=0.1,
             what="w1 Down")
    assert time.monotonic() - t0 < 10
    # Restart: Ready again, same node ID, same address kept while down.
    assert manager.inspect("w1")["Status"]["Addr"] == w.ip
    w.start()
    wait_for(lambda: status_of(manager, "w1")["STATUS"] == "Ready", timeout=10, what="w1 Ready")
    assert status_of(manager, "w1")["ID"] == node_id


def test_worker_fails_over_to_another_manager(swarm):
    managers = make_managers(swarm, 3)
    w = join_worker(swarm, managers[0])
    leader = wait_for(lambda: leader_of(managers), timeout=10, what="leader")
    leader.kill()
    survivors = [m for m in managers if m.alive()]
    wait_for(lambda: leader_of(survivors), timeout=10, what="new leader")
    # The worker's session moves to the new leader: it is Ready there and
    # stays Ready past the grace period in which silent nodes go Down.
    wait_for(lambda: (status_of(survivors[0], "w1") or {}).get("STATUS") == "Ready", timeout=10,
             what="w1 Ready after failover")
    time.sleep(4)  # longer than 3 heartbeat periods: a dead session would show Down by now
    assert status_of(survivors[0], "w1")["STATUS"] == "Ready"
    assert w.alive()


def test_removed_node_cannot_reconnect(manager, swarm):
    w = join_worker(swarm, manager)
    err = manager.fails("node", "rm", "w1")
    assert "not down" in err
    manager.ok("node", "rm", "--force", "w1")
    assert status_of(manager, "w1") is None
    # The worker learns it was removed and leaves: it does not come back.
    wait_for(lambda: "Swarm: inactive" in w.ok("info"), timeout=10, what="w1 left")
    time.sleep(2)
    assert status_of(manager, "w1") is None
    log = w.log_path.read_text(errors="replace")
    assert "removed from the swarm" in log, w.log_tail()


def test_promote_and_demote_a_worker(manager, swarm):
    w = join_worker(swarm, manager)
    out = manager.ok("node", "promote", "w1")
    assert out.strip() == "Node w1 promoted to a manager in the swarm."
    wait_for(lambda: status_of(manager, "w1")["MANAGER STATUS"] == "Reachable", timeout=15,
             what="w1 a reachable manager")
    # The promoted node now answers manager commands itself.
    wait_for(lambda: w.ctl("node", "ls").returncode == 0 and len(w.node_rows()) == 2,
             timeout=10, what="w1 serving the control API")
    assert "Is Manager: true" in w.ok("info")
    assert manager.ok("node", "promote", "w1").strip() == f"Node {manager.inspect('w1')['ID']} is already a manager."
    out = manager.ok("node", "demote", "w1")
    assert out.strip() == "Manager w1 demoted in the swarm."
    wait_for(lambda: status_of(manager, "w1")["MANAGER STATUS"] == "", timeout=15,
             what="w1 a worker again")
    wait_for(lambda: w.ctl("node", "ls").returncode != 0, timeout=10,
             what="w1 refusing manager commands")
    wait_for(lambda: not (w.state_dir / "raft").exists(), timeout=10,
             what="the raft log erased on the demoted node")
    assert status_of(manager, "w1")["STATUS"] == "Ready"


def test_join_as_manager_token_then_demote(swarm):
    managers = make_managers(swarm, 3)
    managers[0].ok("node", "demote", "m3")
    wait_for(lambda: status_of(managers[0], "m3")["MANAGER STATUS"] == "", timeout=15,
             what="m3 demoted")
    info = managers[0].ok("info")
    assert "Managers: 2" in info
    managers[0].ok("node", "promote", "m3")
    wait_for(lambda: status_of(managers[0], "m3")["MANAGER STATUS"] == "Reachable", timeout=15,
             what="m3 promoted back")




@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    out = tmp_path_factory.mktemp("stubs")
    subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--python_out={out}", f"--grpc_python_out={out}",
                    *[str(p) for p in (ROOT / "proto").glob("*.proto")]], check=True)
    return out


def test_worker_certificate_refused_by_control_api(manager, swarm, stubs):
    w = join_worker(swarm, manager)
    sys.path.insert(0, str(stubs))
    import grpc
    import control_pb2
    import control_pb2_grpc
    certs = w.state_dir / "certificates"
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs / "swarm-root-ca.crt").read_bytes(),
        private_key=(certs / "swarm-node.key").read_bytes(),
        certificate_chain=(certs / "swarm-node.crt").read_bytes())
    with grpc.secure_channel(manager.addr, creds,
                             options=[("grpc.ssl_target_name_override", "swarm-manager")]) as ch:
        stub = control_pb2_grpc.ControlStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.ListNodes(control_pb2.ListNodesRequest(), timeout=10)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The worker's certificate says so.
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in",
                          str(certs / "swarm-node.crt")], capture_output=True, text=True).stdout
    assert "OU = swarm-worker" in out, out


def test_worker_restart_keeps_identity_and_leaves(manager, swarm):
    w = join_worker(swarm, manager)
    node_id = status_of(manager, "w1")["ID"]
    w.stop()
    w.start()
    wait_for(lambda: status_of(manager, "w1")["STATUS"] == "Ready", timeout=10, what="Ready")
    assert status_of(manager, "w1")["ID"] == node_id
    assert w.ok("swarm", "leave").strip() == "Node left the swarm."
    assert "Swarm: inactive" in w.ok("info")
    wait_for(lambda: status_of(manager, "w1")["STATUS"] == "Down", timeout=10, what="Down")
