"""Published ports (issue 13), the manager side: Docker's refusal of a
published port another service has, a port assigned from 30000-32767 for
`-p TARGET` (shown by `service ls` and `service inspect`, kept across
updates, freed with the service or `--publish-rm`), `--publish-add`, and
host-mode ports in `service ps`. These run on plain loopback."""
import json

from conftest import parse_table, wait_for

SLEEP = "sleep"


def ports_of(m, name):
    rows = parse_table(m.ok("service", "ls"), ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"])
    return {r["NAME"]: r["PORTS"] for r in rows}.get(name)


def endpoint_ports(m, name):
    svc = json.loads(m.ok("service", "inspect", name))[0]
    return [(p["PublishedPort"], p["TargetPort"], p.get("Protocol", "tcp"), p.get("PublishMode", "ingress"))
            for p in svc.get("Endpoint", {}).get("Ports", [])]


def test_port_conflicts_refused_with_dockers_message(manager):
    m = manager
    wid = m.ok("service", "create", "-d", "--name", "web", "-p", "8000:80", SLEEP, "1000").strip()
    before = m.ok("service", "ls", "--format", "{{.Name}} {{.Ports}}")
    err = m.fails("service", "create", "-d", "--name", "other", "-p", "8000:8080", SLEEP, "1000")
    assert err == ("Error response from daemon: port '8000' is already in use by service 'web' "
                   f"({wid}) as an ingress port")
    # The long syntax and host mode over an ingress port: refused the same.
    err = m.fails("service", "create", "-d", "--name", "other",
                  "-p", "mode=host,published=8000,target=81", SLEEP, "1000")
    assert f"port '8000' is already in use by service 'web' ({wid})" in err
    assert m.ok("service", "ls", "--format", "{{.Name}} {{.Ports}}") == before  # nothing written
    # Another protocol is another port.
    m.ok("service", "create", "-d", "--name", "dns", "-p", "8000:53/udp", SLEEP, "1000")
    assert ports_of(m, "dns") == "*:8000->53/udp"
    # An update adding a taken port is refused and changes nothing.
    m.ok("service", "create", "-d", "--name", "app", SLEEP, "1000")
    spec = m.ok("service", "inspect", "app")
    err = m.fails("service", "update", "-d", "--publish-add", "published=8000,target=9000", "app")
    assert err == ("Error response from daemon: port '8000' is already in use by service 'web' "
                   f"({wid}) as an ingress port")
    assert m.ok("service", "inspect", "app") == spec
    # Freed with the service: the port may be published again.
    m.ok("service", "rm", "web")
    m.ok("service", "update", "-d", "--publish-add", "published=8000,target=9000", "app")
    assert ports_of(m, "app") == "*:8000->9000/tcp"
    # Freed by --publish-rm.
    m.ok("service", "update", "-d", "--publish-rm", "9000", "app")
    assert ports_of(m, "app") == ""
    m.ok("service", "create", "-d", "--name", "web2", "-p", "8000:80", SLEEP, "1000")
    assert ports_of(m, "web2") == "*:8000->80/tcp"


def test_dynamic_port_from_30000_shown_and_kept(manager):
    m = manager
    m.ok("service", "create", "-d", "--name", "a", "-p", "80", SLEEP, "1000")
    got = ports_of(m, "a")
    assert got.startswith("*:") and got.endswith("->80/tcp"), got
    pa = int(got[2:].split("-")[0])
    assert 30000 <= pa <= 32767
    assert endpoint_ports(m, "a") == [(pa, 80, "tcp", "ingress")]
    pretty = m.ok("service", "inspect", "--pretty", "a")
    assert f"PublishedPort = {pa}" in pretty
    # The next service gets another one; asking for a's explicitly conflicts.
    m.ok("service", "create", "-d", "--name", "b", "-p", "published=0,target=80", SLEEP, "1000")
    pb = endpoint_ports(m, "b")[0][0]
    assert 30000 <= pb <= 32767 and pb != pa, (m.ok("service", "inspect", "a", "b"))
    err = m.fails("service", "create", "-d", "--name", "c", "-p", f"{pa}:80", SLEEP, "1000")
    assert f"port '{pa}' is already in use by service 'a'" in err
    # An update that keeps the port keeps its number (new port added).
    m.ok("service", "update", "-d", "--publish-add", "443", "a")
    ports = endpoint_ports(m, "a")
    assert (pa, 80, "tcp", "ingress") in ports and len(ports) == 2, m.ok("service", "inspect", "a", "b")
    assert all(30000 <= p[0] <= 32767 for p in ports)
    # Host mode with no published port gets one too, shown by service ps.
    m.ok("service", "create", "-d", "--name", "h", "-p", "mode=host,target=7000", SLEEP, "1000")
    ph = endpoint_ports(m, "h")
    assert len(ph) == 1 and 30000 <= ph[0][0] <= 32767 and ph[0][3] == "host"
    assert ports_of(m, "h") == ""  # service ls shows ingress ports only, as Docker

    def ps_ports():
        out = m.ok("service", "ps", "h")
        rows = parse_table(out, ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE",
                                 "ERROR", "PORTS"])
        return [r["PORTS"] for r in rows]
    wait_for(lambda: ps_ports() == [f"*:{ph[0][0]}->7000/tcp"], timeout=20,
             what="service ps shows the host-mode port")


# ------------------------------------------------- the mesh, nodes as hosts
#
# Three nodes, each swarmd in a network namespace of its own with its own
# address on a bridge the test makes (netlab.py), and a fourth namespace,
# the client ("outside"), on the same bridge: what it reaches, it reaches
# over the nodes' addresses only.

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from conftest import SWARMCTL, SWARMD, Swarm  # noqa: E402
from netlab import make_lab  # noqa: E402

MESHPROBE = str(Path(__file__).resolve().parent / "meshprobe.py")
PYTHON = "/usr/bin/python3"


class Mesh:
    def __init__(self, lab, swarm):
        self.lab = lab
        self.swarm = swarm
        self.nodes = []
        self.client = lab.names[3]

    def form(self):
        for i, name in enumerate(["m1", "w2", "w3"]):
            n = self.swarm.node(name, ip=self.lab.ips[i], netns=self.lab.names[i])
            n.netns_enter = "nsenter"
            self.nodes.append(n)
            n.start()
        m = self.nodes[0]
        m.ok("swarm", "init", "--advertise-addr", m.ip, "--dispatcher-heartbeat", "1s")
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        for n in self.nodes[1:]:
            n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, m.addr)
        wait_for(lambda: len(m.node_rows()) == 3 and all(r["STATUS"] == "Ready" for r in m.node_rows()),
                 timeout=20, what="3 nodes Ready")
        return self

    @property
    def m(self):
        return self.nodes[0]

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def ip(self, name):
        return self.lab.ips[["m1", "w2", "w3"].index(name)]

    def client_run(self, *args, timeout=60):
        r = subprocess.run(["ip", "netns", "exec", self.client, PYTHON, MESHPROBE, *args],
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def get(self, name, port, n=1):
        return self.client_run("get", self.ip(name), str(port), str(n))

    def udp(self, name, port, n=1):
        return self.client_run("udp", self.ip(name), str(port), str(n))

    def tasks(self, service):
        """{hostname of the task (its ID's first 12 chars): node} of the running tasks."""
        out = self.m.ok("service", "ps", "--no-trunc", "--filter", "desired-state=running",
                        "--format", "{{.ID}} {{.Node}} {{.CurrentState}}", service)
        rows = [line.split(" ", 2) for line in out.splitlines() if line.strip()]
        return {r[0][:12]: r[1] for r in rows if r[2].startswith("Running")}


@pytest.fixture
def mesh(request, tmp_path):
    assert SWARMD.exists() and SWARMCTL.exists()
    lab = make_lab(request, 4, base="10.215")
    s = Swarm(tmp_path)
    request.addfinalizer(s.cleanup)
    return Mesh(lab, s).form()


def answers(c, name, port, want):
    """Every one of 4 GETs through `name` answered by a task in `want`."""
    got = c.get(name, port, 4)
    return all(b in want for b in got)


def test_tutorial_every_node_answers_and_spreads(mesh):
    c = mesh
    c.m.ok("service", "create", "-d", "--name", "web", "--replicas", "2", "-p", "8000:8080",
           "--constraint", "node.hostname!=m1", PYTHON, MESHPROBE, "http", "8080")
    wait_for(lambda: len(c.tasks("web")) == 2, timeout=40, what="2 web tasks running")
    hosts = c.tasks("web")
    assert sorted(hosts.values()) == ["w2", "w3"]
    # Every node answers on 8000, m1 (no task) included.
    for name in ("m1", "w2", "w3"):
        wait_for(lambda: answers(c, name, 8000, hosts), timeout=20,
                 what=f"port 8000 of {name} answering from a web task")
    # Spread: over 50 requests through m1, both tasks answer.
    got = c.get("m1", 8000, 50)
    assert set(got) == set(hosts), got
    # The ports: service ls shows it.
    assert ports_of(c.m, "web") == "*:8000->8080/tcp"

    # kill -9 the node running one task: the survivors' ports keep answering
    # from the survivor (the map follows the task's node going Down).
    victim = next(h for h, n in hosts.items() if n == "w3")
    c.node("w3").kill()

    def live_only(name):
        live = c.tasks("web")
        got = c.get(name, 8000, 6)
        return victim not in live and all(b in live for b in got)
    for name in ("m1", "w2"):
        wait_for(lambda: live_only(name), timeout=40,
                 what=f"{name}:8000 answered by the live tasks only")
    got = c.get("m1", 8000, 20)
    assert all(not b.startswith("error") and b != victim for b in got), got


def test_udp_through_ingress_and_publish_add_rm(mesh):
    c = mesh
    c.m.ok("service", "create", "-d", "--name", "echo", "-p", "5353:5000/udp",
           "--constraint", "node.hostname==w3", PYTHON, MESHPROBE, "udpecho", "5000")
    wait_for(lambda: len(c.tasks("echo")) == 1, timeout=40, what="echo running")
    host = next(iter(c.tasks("echo")))
    for name in ("m1", "w2", "w3"):
        wait_for(lambda: c.udp(name, 5353) == [f"{host}:ping0"], timeout=20,
                 what=f"UDP 5353 of {name} echoed by the task")

    # --publish-add opens a port on every node, --publish-rm closes it.
    c.m.ok("service", "create", "-d", "--name", "web", "--constraint", "node.hostname==w2",
           PYTHON, MESHPROBE, "http", "8080")
    wait_for(lambda: len(c.tasks("web")) == 1, timeout=40, what="web running")
    assert c.get("m1", 9000) [0].startswith("error")
    c.m.ok("service", "update", "-d", "--publish-add", "9000:8080", "web")
    for name in ("m1", "w2", "w3"):
        wait_for(lambda: (lambda h: h and c.get(name, 9000) == list(h))(c.tasks("web")),
                 timeout=40, what=f"9000 open on {name} after --publish-add")
    c.m.ok("service", "update", "-d", "--publish-rm", "8080", "web")
    for name in ("m1", "w2", "w3"):
        wait_for(lambda: c.get(name, 9000)[0].startswith("error"), timeout=40,
                 what=f"9000 closed on {name} after --publish-rm")
    # The UDP service still works: other services' rules are untouched.
    assert c.udp("m1", 5353) == [f"{host}:ping0"]


def _nft_tables_of(ns):
    r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(x["table"]["name"] for x in json.loads(r.stdout or '{"nftables": []}')["nftables"]
                  if "table" in x)


def _links_of(ns):
    r = subprocess.run(["ip", "netns", "exec", ns, "ls", "/sys/class/net"],
                       capture_output=True, text=True, timeout=30)
    return sorted(r.stdout.split())


def test_kill9_restart_and_service_rm_leave_no_rules(mesh):
    c = mesh
    ns1 = c.lab.names[0]
    assert _nft_tables_of(ns1) == []
    c.m.ok("service", "create", "-d", "--name", "web", "-p", "8000:8080",
           "--constraint", "node.hostname==w2", PYTHON, MESHPROBE, "http", "8080")
    wait_for(lambda: answers(c, "m1", 8000, c.tasks("web") or {"-"}), timeout=40,
             what="m1:8000 answering")
    assert _nft_tables_of(ns1) == ["swarmd_ingress"]
    assert "swingress" in _links_of(ns1)
    # kill -9 m1's swarmd (it has no task): its table and link stay behind...
    m1 = c.node("m1")
    m1.kill()
    assert _nft_tables_of(ns1) == ["swarmd_ingress"], "nothing left: the test proves nothing"
    # ...and its restart removes them, then makes them again (the service
    # still publishes 8000).
    m1.start()
    wait_for(lambda: answers(c, "m1", 8000, c.tasks("web") or {"-"}), timeout=60,
             what="m1:8000 answering after the restart")
    assert _nft_tables_of(ns1) == ["swarmd_ingress"]
    # The service removed: every node's rules and link go.
    c.m.ok("service", "rm", "web")
    for i in range(3):
        wait_for(lambda: _nft_tables_of(c.lab.names[i]) == [] and
                 "swingress" not in _links_of(c.lab.names[i]), timeout=30,
                 what=f"node {i + 1}: no table, no swingress after service rm")


def test_host_mode_only_nodes_with_a_task_answer(mesh):
    c = mesh
    c.m.ok("service", "create", "-d", "--name", "hweb", "--replicas", "2",
           "--constraint", "node.hostname!=m1", "-p", "mode=host,published=8001,target=8081",
           PYTHON, MESHPROBE, "http", "8081")
    wait_for(lambda: len(c.tasks("hweb")) == 2, timeout=40, what="2 hweb tasks running")
    nodes = sorted(c.tasks("hweb").values())
    assert nodes == ["w2", "w3"]
    # service ps shows each task's port.
    out = c.m.ok("service", "ps", "--filter", "desired-state=running", "--format", "{{.Ports}}", "hweb")
    assert out.split() == ["*:8001->8081/tcp"] * 2, out
    # The tasks run in their nodes' stacks (answering with the host's
    # name): each node with a task answers on 8001, m1 does not.
    for name in ("w2", "w3"):
        wait_for(lambda: not c.get(name, 8001)[0].startswith("error"), timeout=20,
                 what=f"{name}:8001 answered by its task")
    assert c.get("m1", 8001)[0].startswith("error")
    # The service removed: the port closes.
    c.m.ok("service", "rm", "hweb")
    for name in ("w2", "w3"):
        wait_for(lambda: c.get(name, 8001)[0].startswith("error"), timeout=30,
                 what=f"{name}:8001 closed after service rm")
