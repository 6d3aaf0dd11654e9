"""The one-manager swarm, seen through swarmctl: init, node ls/inspect/update,
join tokens, info, restart, leave, and refusals that change nothing."""
import os
import re
import signal
import socket
import stat

from conftest import wait_for

NO_MANAGER = ('This node is not a swarm manager. Use "swarmctl swarm init" or '
              '"swarmctl swarm join" to connect this node to swarm and try again.')
TOKEN_RE = r"SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}"


def test_starts_inactive(swarm):
    n = swarm.node().start()
    assert "Swarm: inactive" in n.ok("info")
    err = n.fails("node", "ls")
    assert NO_MANAGER in err
    # The control socket is private to root.
    assert stat.S_IMODE(os.stat(n.socket).st_mode) == 0o600


def test_init_output_and_node_ls(swarm):
    n = swarm.node("alpha").start()
    out = n.ok("swarm", "init", "--advertise-addr", n.ip)
    m = re.fullmatch(
        r"Swarm initialized: current node \(([0-9a-z]{25})\) is now a manager\.\n\n"
        r"To add a worker to this swarm, run the following command:\n\n"
        rf"    swarmctl swarm join --token ({TOKEN_RE}) {re.escape(n.addr)}\n\n"
        r"To add a manager to this swarm, run 'swarmctl swarm join-token manager' and "
        r"follow the instructions\.\n\n?", out)
    assert m, out
    node_id, token = m.group(1), m.group(2)

    lines = n.ok("node", "ls").splitlines()
    assert re.match(r"ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION$",
                    lines[0]), lines[0]
    assert len(lines) == 2
    assert re.match(rf"{node_id} \*\s+alpha\s+Ready\s+Active\s+Leader\s+\S+$", lines[1]), lines[1]
    assert n.ok("node", "ls", "-q").split() == [node_id]

    # The printed worker token is the one join-token prints.
    assert n.ok("swarm", "join-token", "-q", "worker").strip() == token


def test_info_swarm_section(manager):
    out = manager.ok("info")
    node = manager.inspect()
    for line in ["Swarm: active", f"NodeID: {node['ID']}", "Is Manager: true",
                 "Managers: 1", "Nodes: 1", "Task History Retention Limit: 5",
                 "Heartbeat Tick: 1", "Election Tick: 10", f"Node Address: {manager.ip}",
                 manager.addr]:
        assert line in out, f"{line!r} missing from info:\n{out}"
    assert re.search(r"ClusterID: [0-9a-z]{25}", out)
    assert re.search(rf"Leader: {re.escape(manager.addr)}", out), out
    assert re.search(r"Role: manager", out), out


def test_node_inspect(manager):
    node = manager.inspect("self")
    assert node["Description"]["Hostname"] == "m1"
    assert node["Spec"]["Availability"] == "active"
    assert node["Status"]["State"] == "ready"
    assert node["ManagerStatus"]["Leader"] is True
    assert node["ManagerStatus"]["Addr"] == manager.addr
    # Any unique prefix and the hostname resolve to the same node.
    assert manager.inspect(node["ID"][:5])["ID"] == node["ID"]
    assert manager.inspect("m1")["ID"] == node["ID"]
    pretty = manager.ok("node", "inspect", "--pretty", "self")
    assert re.search(rf"ID:\s+{node['ID']}", pretty)
    assert re.search(r"Hostname:\s+m1", pretty)
    assert re.search(r"Leader:\s+Yes", pretty)


def test_node_update_availability_and_labels(manager):
    manager.ok("node", "update", "--availability", "drain", "m1")
    assert manager.node_rows()[0]["AVAILABILITY"] == "Drain"
    manager.ok("node", "update", "--availability", "pause", "m1")
    assert manager.node_rows()[0]["AVAILABILITY"] == "Pause"
    manager.ok("node", "update", "--label-add", "zone=a", "--label-add", "ssd=true", "m1")
    labels = manager.inspect()["Spec"]["Labels"]
    assert labels == {"zone": "a", "ssd": "true"}, labels
    manager.ok("node", "update", "--label-rm", "ssd", "--availability", "active", "m1")
    node = manager.inspect()
    assert node["Spec"]["Labels"] == {"zone": "a"}
    assert node["Spec"]["Availability"] == "active"


def test_bad_input_changes_nothing(manager):
    before = manager.inspect()
    err = manager.fails("node", "update", "--availability", "sideways", "m1")
    assert "sideways" in err
    err = manager.fails("node", "update", "--label-rm", "nope", "m1")
    assert "nope" in err
    err = manager.fails("node", "inspect", "doesnotexist")
    assert "doesnotexist" in err
    err = manager.fails("node", "update", "--availability", "drain", "doesnotexist")
    assert "doesnotexist" in err
    err = manager.fails("node", "frobnicate")
    assert err
    err = manager.fails("node", "ls", "--bogus-flag")
    assert "bogus-flag" in err
    err = manager.fails("node", "demote", "m1")
    assert "last manager" in err
    after = manager.inspect()
    # Nothing the user controls changed (the node's status may move on its own).
    assert after["Spec"] == before["Spec"], (before, after)
    # A second init is refused with Docker's message.
    err = manager.fails("swarm", "init", "--advertise-addr", manager.ip)
    assert "already part of a swarm" in err


def test_join_tokens_and_rotation(manager):
    w1 = manager.ok("swarm", "join-token", "-q", "worker").strip()
    m1 = manager.ok("swarm", "join-token", "-q", "manager").strip()
    assert re.fullmatch(TOKEN_RE, w1) and re.fullmatch(TOKEN_RE, m1) and w1 != m1
    # Both tokens name the same root CA.
    assert w1.split("-")[2] == m1.split("-")[2]
    out = manager.ok("swarm", "join-token", "manager")
    assert "To add a manager to this swarm, run the following command:" in out
    assert f"swarmctl swarm join --token {m1} {manager.addr}" in out
    out = manager.ok("swarm", "join-token", "--rotate", "worker")
    assert "Successfully rotated worker join token." in out
    w2 = manager.ok("swarm", "join-token", "-q", "worker").strip()
    assert w2 != w1 and w2.split("-")[2] == w1.split("-")[2]
    assert manager.ok("swarm", "join-token", "-q", "manager").strip() == m1


def test_swarm_update(manager):
    manager.ok("swarm", "update", "--task-history-limit", "7")
    assert "Task History Retention Limit: 7" in manager.ok("info")
    err = manager.fails("swarm", "update", "--cert-expiry", "1m")
    assert "1h" in err
    assert "Task History Retention Limit: 7" in manager.ok("info")


def test_restart_keeps_the_swarm(manager):
    before_ls = manager.ok("node", "ls")
    tokens = (manager.ok("swarm", "join-token", "-q", "worker"),
              manager.ok("swarm", "join-token", "-q", "manager"))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        rc = manager.stop(sig)
        if sig == signal.SIGTERM:
            assert rc == 0, manager.log_tail()
        manager.start()
        wait_for(lambda: manager.node_rows()[0]["MANAGER STATUS"] == "Leader",
                 timeout=5, what="leader after restart")
        assert manager.ok("node", "ls") == before_ls
        assert (manager.ok("swarm", "join-token", "-q", "worker"),
                manager.ok("swarm", "join-token", "-q", "manager")) == tokens
    # Writes work after the restart.
    manager.ok("node", "update", "--label-add", "after=restart", "m1")
    assert manager.inspect()["Spec"]["Labels"] == {"after": "restart"}


def test_state_dir_files_are_private(manager):
    certs = manager.state_dir / "certificates"
    for f in ("swarm-node.key", "swarm-node.crt", "swarm-root-ca.crt"):
        assert stat.S_IMODE(os.stat(certs / f).st_mode) == 0o600
    assert (manager.state_dir / "raft").is_dir()
    assert (manager.state_dir / "store.db").exists()


def test_failed_init_leaves_nothing(swarm):
    n = swarm.node().start()
    err = n.fails("swarm", "init", "--advertise-addr", "not-an-ip")
    assert "not-an-ip" in err
    # Port taken: init fails cleanly and the node stays inactive.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((n.ip, 2377))
    blocker.listen()
    try:
        err = n.fails("swarm", "init", "--advertise-addr", n.ip)
        assert "2377" in err, err
    finally:
        blocker.close()
    assert "Swarm: inactive" in n.ok("info")
    assert sorted(p.name for p in n.state_dir.iterdir()
                  if p.name not in ("swarmd.sock", "swarmd.lock")) == []
    # And a later init succeeds.
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    assert n.node_rows()[0]["STATUS"] == "Ready"


def test_leave(manager):
    err = manager.fails("swarm", "leave")
    assert "--force" in err
    assert manager.ok("swarm", "leave", "--force").strip() == "Node left the swarm."
    assert "Swarm: inactive" in manager.ok("info")
    assert NO_MANAGER in manager.fails("node", "ls")
    assert not (manager.state_dir / "certificates").exists()
    manager.ok("swarm", "init", "--advertise-addr", manager.ip)
    assert len(manager.node_rows()) == 1


def test_second_daemon_on_same_state_dir_refused(manager):
    import subprocess
    from conftest import SWARMD
    r = subprocess.run([str(SWARMD), "--state-dir", str(manager.state_dir)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "already using" in r.stderr
    assert manager.alive()


def test_cli_errors(swarm, tmp_path):
    n = swarm.node()
    r = n.ctl("node", "ls")  # daemon not started
    assert r.returncode != 0
    assert r.stderr.strip().startswith("Cannot connect to swarmd at unix://"), r.stderr
    assert "Is swarmd running?" in r.stderr
    # $SWARM_SOCKET is honoured when --socket is absent.
    import subprocess
    from conftest import SWARMCTL
    n.start()
    r = subprocess.run([str(SWARMCTL), "info"], capture_output=True, text=True,
                       env={**os.environ, "SWARM_SOCKET": str(n.socket)}, timeout=10)
    assert r.returncode == 0 and "Swarm: inactive" in r.stdout, r.stderr


def test_version(manager):
    out = manager.ok("version")
    assert "Client:" in out and "Server:" in out


def test_sigint_shuts_down_cleanly(manager):
    assert manager.stop(signal.SIGINT) == 0
