"""The node's gateway bridge (Docker's docker_gwbridge), nodes as hosts:
a task on an overlay network reaches the outside through its node
(masqueraded to the node's address), a task on internal networks only does
not, two tasks of one node cannot talk through the bridge, and a host-mode
published port of a task on an overlay network is answered by its node
only, until the service goes (and with it the rules and veths).

The lab, the cluster and the task programs are test_network.py's; the
fourth namespace of the lab, the client, plays the outside."""
import ipaddress
import json
import subprocess

import pytest

from conftest import SWARMD, wait_for
from test_network import MESHPROBE, PYTHON, _links, _nft_tables, cluster, gw_net, probe_until  # noqa: F401

# The outside: a TCP server in the client's namespace that answers "hi"
# and appends each connection's source address to a file.
_OUTSIDE = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    c, peer = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write(peer[0] + "\\n")
    c.sendall(b"hi")
    c.close()
"""


@pytest.fixture
def outside(cluster, tmp_path):
    """(address, port, file of the sources seen) of a server in the lab's
    client namespace, which no task can reach but through its node."""
    seen = tmp_path / "outside-seen"
    seen.write_text("")
    ns = cluster.lab.names[3]
    p = subprocess.Popen(["ip", "netns", "exec", ns, PYTHON, "-c", _OUTSIDE, "7777", str(seen)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Up when the client's own namespace can connect to it.
        wait_for(lambda: subprocess.run(
            ["ip", "netns", "exec", ns, PYTHON, MESHPROBE, "get", "127.0.0.1", "7777", "1"],
            capture_output=True, timeout=30).returncode == 0 and seen.read_text() != "",
            timeout=20, what="the outside server listening")
        seen.write_text("")
        yield cluster.lab.ips[3], 7777, seen
    finally:
        p.kill()
        p.wait()


def gw_veths(ns):
    return [name for name in _links(ns) if name.startswith("swgw") and name != "swgwbridge"]


def test_tasks_reach_the_outside_masqueraded_internal_ones_do_not(cluster, outside):
    c = cluster
    ip, port, seen = outside
    ns2 = c.lab.names[1]
    assert gw_net(ns2) is None and gw_veths(ns2) == []
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.m.ok("network", "create", "-d", "overlay", "--internal", "priv")
    # A task on an overlay network reaches the outside, which sees the
    # connection come from its node's address.
    out = c.probe_on("w2", "out", [["connect", ip, port]], "--network", "front")
    probe_until(out, lambda d: d["0"] == "ok", 60, "the task on front to reach the outside")
    sources = set(seen.read_text().split())
    assert sources == {c.node("w2").ip}, sources
    net = gw_net(ns2)
    assert net is not None, _links(ns2)
    assert "swarmd_gwbridge" in _nft_tables(f"/run/netns/{ns2}")
    d = json.loads(out.read_text())
    assert any(ipaddress.ip_address(a) in net for a in d["addrs"]), d
    # A task on an internal network only does not (the first one gone, so
    # that any connection seen now would be the internal task's).
    c.m.ok("service", "rm", "out")
    wait_for(lambda: gw_veths(ns2) == [], timeout=30, what="the first task's sandbox gone")
    seen.write_text("")
    out2 = c.probe_on("w2", "shut", [["connect", ip, port]], "--network", "priv")
    d = probe_until(out2, lambda d: True, 60, "the task on priv to try")
    d = probe_until(out2, lambda d: True, 60, "the task on priv to try again")
    assert d["0"].startswith("error"), d
    assert seen.read_text() == "", seen.read_text()
    # ...and has no address on the gateway bridge.
    assert not any(ipaddress.ip_address(a) in net for a in d["addrs"]), d


def test_two_tasks_of_a_node_do_not_meet_on_the_gateway_bridge(cluster):
    c = cluster
    ns2 = c.lab.names[1]
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.serve("web", 8080, "--network", "front", "--constraint", "node.hostname==w2")
    web = wait_for(lambda: (lambda s: s if len(s) == 1 else None)(c.servers("web")),
                   timeout=40, what="the web server listening")
    addrs = next(iter(web.values()))
    net = gw_net(ns2)
    assert net is not None
    gw_ip = next(a for a in addrs if ipaddress.ip_address(a) in net)
    front_ip = next(a for a in addrs if ipaddress.ip_address(a) not in net)
    # Over front it answers; through the gateway bridge it cannot be reached.
    out = c.probe_on("w2", "peer", [["connect", front_ip, 8080], ["connect", gw_ip, 8080]],
                     "--network", "front")
    d = probe_until(out, lambda d: d["0"] == "ok", 60, "the peer reaching web over front")
    assert d["1"].startswith("error"), d
    assert len(gw_veths(ns2)) == 2, _links(ns2)


def test_swarmd_refuses_a_bad_gwbridge_subnet():
    for bad, why in [("172.18.0.0", "want an IPv4 subnet such as 172.18.0.0/16"),
                     ("172.18.0.0/30", "the prefix must be 8 to 29"),
                     ("172.18.3.0/16", "not a network address (172.18.0.0/16 is)")]:
        r = subprocess.run([str(SWARMD), "--gwbridge-subnet", bad, "--state-dir", "/nonexistent/x"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, r
        assert r.stderr == f'swarmd: invalid --gwbridge-subnet "{bad}": {why}\n', r.stderr


def test_host_mode_port_of_a_task_on_an_overlay_network(cluster):
    c = cluster
    ns2 = c.lab.names[1]
    # w2's gateway bridge on a subnet of our choosing.
    w2 = c.node("w2")
    w2.stop()
    w2.start("--gwbridge-subnet", "192.168.77.0/24")
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.m.ok("service", "create", "-d", "--name", "hweb", "--network", "front",
           "--constraint", "node.hostname==w2", "-p", "mode=host,published=8080,target=80",
           PYTHON, MESHPROBE, "http", "80")
    tid = wait_for(lambda: (lambda r: r[0][0] if len(r) == 1 and r[0][1].startswith("Running")
                            else None)([line.split(" ", 1) for line in c.m.ok(
                                "service", "ps", "--no-trunc", "--filter", "desired-state=running",
                                "--format", "{{.ID}} {{.CurrentState}}", "hweb").splitlines()]),
                   timeout=40, what="hweb running")
    host = tid[:12]
    assert gw_net(ns2) == ipaddress.ip_network("192.168.77.0/24")
    # The node running the task answers on 8080 with the task's answer,
    # from outside and from the node itself; the others do not.
    wait_for(lambda: c.get("w2", 8080) == [host], timeout=30, what="w2:8080 answered by the task")
    r = subprocess.run(["ip", "netns", "exec", ns2, PYTHON, MESHPROBE, "get", c.node("w2").ip,
                        "8080", "1"], capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout) == [host], r.stdout + r.stderr
    for name in ("m1", "w3"):
        assert c.get(name, 8080)[0].startswith("error")
    assert gw_veths(ns2) != []
    # The service removed: nothing answers, the rules and veths are gone.
    c.m.ok("service", "rm", "hweb")
    wait_for(lambda: c.get("w2", 8080)[0].startswith("error"), timeout=30,
             what="w2:8080 closed after service rm")
    wait_for(lambda: gw_veths(ns2) == [] and gw_net(ns2) is None
             and _nft_tables(f"/run/netns/{ns2}") == [], timeout=30,
             what="no gateway bridge, veth or table left on w2")
