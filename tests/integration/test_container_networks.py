"""Containers on an overlay network (issue 14 with issues 12 and 13), with
nodes as hosts (netlab.py, as in test_network.py): busybox httpd replicas
on two nodes, a busybox client container on a third that fetches
http://web/ by service name (DNS on 127.0.0.11, the service's VIP) over
VXLAN; inside the container eth0 holds the task's address and
/etc/resolv.conf names 127.0.0.11.

The registry runs in a fourth namespace of the lab (on its address there),
so the nodes' namespaces reach it as a host on their network; the image is
pushed to it first on loopback, and the same storage is then served there."""
import json
import os
import subprocess
import sys

import pytest

import registry
from conftest import SWARMCTL, SWARMD, Swarm, parse_table, wait_for
from netlab import make_lab
from test_containers import HAVE_RUNC

pytestmark = pytest.mark.skipif(not HAVE_RUNC or not registry.available(),
                                reason="needs root, runc, docker-registry and busybox-static")

_GET = """
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
"""


def serve_in_netns(reg, ns, ip):
    """reg's storage served by a new docker-registry in namespace ns on ip."""
    reg.stop()
    reg.ip, reg.port = ip, 5000
    log = open(reg.base / "registry.log", "ab")
    reg.proc = subprocess.Popen(["ip", "netns", "exec", ns, registry.REGISTRY_BIN, "serve",
                                 str(reg._config())], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    log.close()
    wait_for(lambda: subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _GET,
                                     f"http://{reg.host}/v2/"],
                                    capture_output=True).returncode == 0,
             timeout=20, what="registry in its namespace")
    return reg


@pytest.fixture
def lab_swarm(request, tmp_path):
    assert SWARMD.exists() and SWARMCTL.exists()
    lab = make_lab(request, 4, base="10.215")
    reg = registry.Registry(tmp_path / "registry", "127.0.0.1").start()
    s = Swarm(tmp_path)
    try:
        registry.push_busybox(reg, "busybox", "1")
        serve_in_netns(reg, lab.names[3], lab.ips[3])
        nodes = []
        for i, name in enumerate(["m1", "w2", "w3"]):
            n = s.node(name, ip=lab.ips[i], netns=lab.names[i])
            n.netns_enter = "nsenter"
            nodes.append(n)
            n.start("--insecure-registry", reg.host)
        m = nodes[0]
        m.ok("swarm", "init", "--advertise-addr", m.ip, "--dispatcher-heartbeat", "1s")
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        for n in nodes[1:]:
            n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, m.addr)
        wait_for(lambda: len(m.node_rows()) == 3
                 and all(r["STATUS"] == "Ready" for r in m.node_rows()),
                 timeout=20, what="3 nodes Ready")
        yield m, nodes, f"{reg.host}/busybox:1"
        # Stopped gently: their containers stopped and removed.
        for n in nodes:
            if n.alive():
                n.stop(timeout=60)
    finally:
        s.cleanup()
        reg.stop()


def rows(m, svc):
    return parse_table(m.ok("service", "ps", "--no-trunc", "--filter", "desired-state=running",
                            svc),
                       ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])


def running(m, svc, n):
    r = rows(m, svc)
    return r if len(r) == n and all(x["CURRENT STATE"].startswith("Running") for x in r) \
        else None


def test_httpd_replicas_and_a_client_by_name_over_the_overlay(lab_swarm):
    m, nodes, image = lab_swarm
    m.ok("network", "create", "-d", "overlay", "appnet")
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "2", "--network", "appnet",
         "--constraint", "node.hostname!=m1", "--mount", "type=tmpfs,target=/www",
         image, "sh", "-c",
         "echo hello-from-$(hostname) > /www/index.html; exec httpd -f -p 80 -h /www")
    web = wait_for(lambda: running(m, "web", 2), timeout=90, what="2 web replicas running")
    assert sorted(r["NODE"] for r in web) == ["w2", "w3"], web
    m.ok("service", "create", "-d", "--name", "client", "--network", "appnet",
         "--constraint", "node.hostname==m1", image, "sh", "-c",
         "for i in $(seq 1 60); do out=$(wget -qO- http://web/) && break; sleep 1; done; "
         "echo \"got=$out\"; echo \"eth0=$(ip -4 -o addr show dev eth0 | awk '{print $4}')\"; "
         "echo \"resolv=$(grep nameserver /etc/resolv.conf | tr '\\n' ,)\"; exec sleep 1000")
    client = wait_for(lambda: running(m, "client", 1), timeout=90, what="client running")
    assert client[0]["NODE"] == "m1", client
    out = wait_for(lambda: (lambda o: o if "resolv=" in o else None)(
        m.ok("service", "logs", "--no-task-ids", "client")), timeout=90, what="client output")
    got = out.split("got=")[1].split("\n")[0]
    web_hosts = {r["ID"][:12] for r in web}
    assert got.startswith("hello-from-") and got[len("hello-from-"):] in web_hosts, out
    task = json.loads(m.ok("inspect", "--type", "task", client[0]["ID"]))[0]
    addrs = [a["Addresses"][0] for a in task["NetworksAttachments"]
             if a["Network"]["Spec"]["Name"] == "appnet"]
    assert len(addrs) == 1, task["NetworksAttachments"]
    eth0 = out.split("eth0=")[1].split("\n")[0]
    assert eth0 == addrs[0], (eth0, addrs, out)
    resolv = out.split("resolv=")[1].split("\n")[0]
    assert resolv == "nameserver 127.0.0.11,", out
