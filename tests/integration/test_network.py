"""Overlay networks end to end, with nodes as hosts (TESTING.md): every
swarmd runs in a network namespace of its own, with its own address on a
bridge the test makes (netlab.py), so tasks on different nodes talk over
VXLAN between those addresses, as between real hosts.

The tasks are python3 running netprobe.py: servers that answer with their
hostname and address, and a client that, every half second, resolves
names, fetches URLs and tries connections from inside its own sandbox and
writes what it saw to a file of the test's. Every wait is a poll with a
deadline; everything made (processes, namespaces, mounts) is removed in
finalizers, also when a test fails.

Three nodes: m1 (manager, where the client runs), w2 and w3 (workers)."""
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import NODE_COLUMNS, SWARMCTL, SWARMD, Swarm, parse_table, wait_for
from netlab import make_lab

PROBE = str(Path(__file__).resolve().parent / "netprobe.py")
MESHPROBE = str(Path(__file__).resolve().parent / "meshprobe.py")
PYTHON = "/usr/bin/python3"


# ------------------------------------------------------------------ fixtures

class NetCluster:
    def __init__(self, lab, swarm, base):
        self.lab = lab
        self.swarm = swarm
        self.out = base / "out"
        self.out.mkdir()
        os.chmod(self.out, 0o777)
        self.nodes = []

    def form(self, role="worker"):
        """m1 inits; the other two join as `role` (named w2, w3 or m2, m3)."""
        names = ["m1", "w2", "w3"] if role == "worker" else ["m1", "m2", "m3"]
        for i, name in enumerate(names):
            n = self.swarm.node(name, ip=self.lab.ips[i], netns=self.lab.names[i])
            # The network namespace only: swarmd's mounts (its namespaces)
            # are the host's, as on a real host.
            n.netns_enter = "nsenter"
            self.nodes.append(n)
            n.start()
        m = self.nodes[0]
        m.ok("swarm", "init", "--advertise-addr", m.ip, "--dispatcher-heartbeat", "1s")
        token = m.ok("swarm", "join-token", "-q", role).strip()
        for n in self.nodes[1:]:
            n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, m.addr)
        wait_for(lambda: all(r["STATUS"] == "Ready" for r in m.node_rows())
                 and len(m.node_rows()) == 3, timeout=20, what="3 nodes Ready")
        return self

    @property
    def m(self):
        """The node swarmctl talks to (m1 unless use() said otherwise)."""
        return getattr(self, "_ctl", None) or self.nodes[0]

    def use(self, node):
        self._ctl = node

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def serve(self, name, port, *flags):
        """A service of netprobe servers."""
        self.m.ok("service", "create", "-d", "--name", name, *flags,
                  PYTHON, PROBE, "serve", str(port), str(self.out), name)

    def servers(self, label, key="addrs"):
        """{hostname: addrs (or another field of the announcement)} of the
        servers of `label` that started."""
        found = {}
        for p in self.out.glob(f"serve-{label}-*.json"):
            try:
                d = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            found[d["hostname"]] = d[key]
        return found

    def probe(self, name, jobs, *flags):
        """A client task on m1 running `jobs` (see netprobe.py)."""
        return self.probe_on("m1", name, jobs, *flags)

    def probe_on(self, node, name, jobs, *flags):
        """A client task on `node` running `jobs` (see netprobe.py)."""
        out = self.out / f"probe-{name}.json"
        self.m.ok("service", "create", "-d", "--name", name,
                  "--constraint", f"node.hostname=={node}", *flags,
                  PYTHON, PROBE, "probe", str(out), json.dumps(jobs))
        return out

    def get(self, name, port, n=1):
        """n HTTP GETs of http://NODE_IP:port/ from the client namespace
        (meshprobe.py get): the bodies, or "error: ..." each."""
        ip = self.node(name).ip
        r = subprocess.run(["ip", "netns", "exec", self.lab.names[3], PYTHON, MESHPROBE,
                            "get", ip, str(port), str(n)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def ps(self, service):
        """[(node, current state)] of the service's tasks desired running."""
        r = self.m.ok("service", "ps", "--filter", "desired-state=running",
                      "--format", "{{.Node}} {{.CurrentState}}", service)
        return [tuple(line.split(" ", 1)) for line in r.splitlines() if line.strip()]


def read_probe(path, since):
    """The probe's latest results if written after `since`, else None."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if d.get("time", 0) > since else None


def probe_until(path, pred, timeout, what):
    """Poll the probe's file until pred(results) holds (fresh results only)."""
    since = time.time()
    return wait_for(lambda: (lambda d: d if d is not None and pred(d) else None)(
        read_probe(path, since)), timeout=timeout, interval=0.3, what=what)


@pytest.fixture
def cluster(request, tmp_path):
    assert SWARMD.exists(), f"{SWARMD} not built"
    assert SWARMCTL.exists(), f"{SWARMCTL} not built"
    # Three nodes and a fourth namespace, the client "outside" the swarm
    # on the same bridge (test_stacks.py reaches published ports from it).
    lab = make_lab(request, 4, base="10.214")
    s = Swarm(tmp_path)
    c = NetCluster(lab, s, tmp_path)
    # The nodes are killed, and what they left mounted under tmp_path (they
    # run in the host's mount namespace here) unmounted, before the lab's
    # namespaces go (its finalizer was registered first, so it runs last).
    try:
        yield c.form(getattr(request, "param", "worker"))
    finally:
        s.cleanup()
    reports = s.sanitizer_reports()
    assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


def running_on(c, service, want):
    """The service's tasks all run, on the nodes listed in `want` (a sorted list)."""
    rows = c.ps(service)
    return (sorted(node for node, _ in rows) == want
            and all(state.startswith("Running") for _, state in rows))


# --------------------------------------------------------------------- tests

def test_tasks_own_ips_discovery_vip_dnsrr_alias_and_isolation(cluster):
    c = cluster
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.m.ok("network", "create", "-d", "overlay", "back")
    # Two replicas of one server on one node, same port: both run.
    c.serve("web", 8080, "--network", "front", "--replicas", "2",
            "--constraint", "node.hostname==w2")
    # One task on each worker, with an alias on front.
    c.serve("api", 8080, "--network", "name=front,alias=apialias", "--mode", "global",
            "--constraint", "node.role==worker")
    c.serve("rr", 8081, "--network", "front", "--endpoint-mode", "dnsrr", "--replicas", "2",
            "--constraint", "node.hostname==w3")
    c.serve("secret", 8082, "--network", "back", "--constraint", "node.hostname==w3")
    wait_for(lambda: running_on(c, "web", ["w2", "w2"]), timeout=30, what="web on w2 twice")
    wait_for(lambda: running_on(c, "api", ["w2", "w3"]), timeout=30, what="api on w2 and w3")
    web = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(c.servers("web")),
                   timeout=20, what="both web servers listening")
    api = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(c.servers("api")),
                   timeout=20, what="both api servers listening")
    rr = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(c.servers("rr")),
                  timeout=20, what="both rr servers listening")
    secret = wait_for(lambda: (lambda s: s if len(s) == 1 else None)(c.servers("secret")),
                      timeout=20, what="the secret server listening")
    web_ips = sorted(a[0] for a in web.values())
    api_ips = sorted(a[0] for a in api.values())
    rr_ips = sorted(a[0] for a in rr.values())
    secret_ip = next(iter(secret.values()))[0]
    # Each replica has an address of its own (one each: front only), and
    # one on its node's gateway bridge.
    gw = gw_net(c.lab.names[1])
    assert all(len([x for x in a if ipaddress.ip_address(x) not in gw]) == 1
               for a in web.values()), web
    assert len(set(web_ips)) == 2, web

    jobs = [["resolve", "web"], ["resolve", "tasks.web"], ["fetch", "http://web:8080/", 16],
            ["resolve", "api"], ["resolve", "tasks.api"], ["fetch", "http://api:8080/", 16],
            ["resolve", "apialias"], ["resolve", "rr"], ["resolve", "tasks.rr"],
            ["connect", secret_ip, 8082], ["connect", api_ips[0], 8080],
            ["resolve", "secret"]]
    out = c.probe("client", jobs, "--network", "front")
    web_bodies = sorted(f"{h} {a[0]}" for h, a in web.items())
    api_bodies = sorted(f"{h} {a[0]}" for h, a in api.items())

    def good(d):
        return (d["0"] != "error" and len(d["0"]) == 1 and d["0"][0] not in web_ips
                and d["1"] == web_ips and d["2"] == web_bodies
                and len(d["3"]) == 1 and d["3"][0] not in api_ips
                and d["4"] == api_ips and d["5"] == api_bodies
                and d["6"] == d["3"] and d["7"] == rr_ips and d["8"] == rr_ips
                and d["10"] == "ok")
    try:
        d = probe_until(out, good, 60, "the client to see every service by name")
    except AssertionError:
        raise AssertionError(f"client saw: {read_probe(out, 0)}\n"
                             f"web {web} api {api} rr {rr}") from None
    # The client has an address on front only; back is another network.
    assert d["9"].startswith("error"), d["9"]
    assert isinstance(d["11"], str) and d["11"].startswith("error"), d["11"]


def test_vip_and_dns_follow_scale_down_and_node_death(cluster):
    c = cluster
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.serve("web", 8080, "--network", "front", "--replicas", "3",
            "--constraint", "node.role==worker")
    c.serve("api", 8080, "--network", "front", "--mode", "global",
            "--constraint", "node.role==worker")
    wait_for(lambda: len(c.servers("web")) == 3 and len(c.servers("api")) == 2, timeout=40,
             what="3 web and 2 api servers")
    api = c.servers("api")
    out = c.probe("client", [["resolve", "tasks.web"], ["fetch", "http://web:8080/", 24],
                             ["resolve", "tasks.api"], ["fetch", "http://api:8080/", 16]],
                  "--network", "front")
    probe_until(out, lambda d: len(d["0"]) == 3 and len(d["1"]) == 3, 60,
                "the client to reach the 3 web tasks")

    # Scale down: the VIP stops sending to the removed tasks.
    c.m.ok("service", "scale", "web=1")
    wait_for(lambda: len(c.ps("web")) == 1, timeout=30, what="web at 1 task")
    d = probe_until(out, lambda d: len(d["0"]) == 1 and len(d["1"]) == 1
                    and not d["1"][0].startswith("error"), 30,
                    "tasks.web and the VIP down to one task")
    assert d["1"][0].split()[1] == d["0"][0], d

    # kill -9 w3: its tasks leave DNS and the VIP within seconds (the node
    # is Down after 3 missed 1 s heartbeats).
    w3_ip = c.node("w3").ip
    c.node("w3").kill()
    t0 = time.monotonic()
    d = probe_until(out, lambda d: len(d["2"]) == 1 and len(d["3"]) == 1
                    and not d["3"][0].startswith("error"), 30,
                    "w3's api task gone from DNS and the VIP")
    elapsed = time.monotonic() - t0
    survivor = d["3"][0].split()
    assert [survivor[1]] == d["2"], d
    assert survivor[1] in [a[0] for a in api.values()]
    print(f"w3 ({w3_ip}) killed: its task left DNS and the VIP after {elapsed:.1f} s",
          file=sys.stderr)


def test_vip_and_dns_only_for_healthy_tasks(cluster):
    """With a health check, a task enters DNS and the VIP once healthy."""
    c = cluster
    c.m.ok("network", "create", "-d", "overlay", "front")
    flag = f"{c.out}/healthy-$SWARM_TASK_SLOT"
    c.serve("hc", 8080, "--network", "front", "--replicas", "2",
            "--constraint", "node.role==worker", "--health-cmd", f"test -f {flag}",
            "--health-interval", "200ms", "--health-retries", "1",
            "--health-start-period", "120s")
    slots = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(c.servers("hc", "slot")),
                     timeout=30, what="both hc servers listening")
    addrs = c.servers("hc")
    by_slot = {slot: (h, addrs[h][0]) for h, slot in slots.items()}
    out = c.probe("client", [["resolve", "tasks.hc"], ["fetch", "http://hc:8080/", 12]],
                  "--network", "front")
    # Neither is healthy yet: no task in DNS, the VIP refuses.
    probe_until(out, lambda d: isinstance(d["0"], str) and all(
        b.startswith("error") for b in d["1"]), 60, "no healthy task: no backend")
    assert all(state.startswith("Starting") for _, state in c.ps("hc")), c.ps("hc")
    (c.out / "healthy-1").write_text("ok")
    host1, ip1 = by_slot["1"]
    probe_until(out, lambda d: d["0"] == [ip1] and d["1"] == [f"{host1} {ip1}"], 30,
                "slot 1 healthy: the only backend")
    (c.out / "healthy-2").write_text("ok")
    both = sorted(f"{h} {ip}" for h, ip in by_slot.values())
    probe_until(out, lambda d: len(d["0"]) == 2 and d["1"] == both, 30,
                "both healthy: both backends")


def new_leader(node, old):
    """The hostname `node` shows as Leader if it is not `old`, else None."""
    try:
        r = node.ctl("node", "ls", timeout=5)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    rows = parse_table(r.stdout, NODE_COLUMNS)
    leaders = [row["HOSTNAME"] for row in rows if row["MANAGER STATUS"] == "Leader"]
    return leaders[0] if len(leaders) == 1 and leaders[0] != old else None


@pytest.mark.parametrize("cluster", ["manager"], indirect=True)
def test_maps_follow_a_leader_change(cluster):
    """Three managers; web on m2 and m3, a client on m2. kill -9 the leader
    (m1): the nodes open their streams with the new leader, whose maps keep
    following the service (scaled down, then up again)."""
    c = cluster
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.serve("web", 8080, "--network", "front", "--replicas", "2",
            "--constraint", "node.hostname!=m1")
    wait_for(lambda: running_on(c, "web", ["m2", "m3"]), timeout=30, what="web on m2 and m3")
    out = c.probe_on("m2", "client", [["resolve", "tasks.web"], ["fetch", "http://web:8080/", 16]],
                     "--network", "front")
    probe_until(out, lambda d: len(d["0"]) == 2 and len(d["1"]) == 2, 60,
                "the client to reach both web tasks")
    c.node("m1").kill()
    m2 = c.node("m2")
    c.use(m2)
    wait_for(lambda: new_leader(m2, "m1"), timeout=30, what="a new leader")
    c.m.ok("service", "scale", "web=1")
    probe_until(out, lambda d: len(d["0"]) == 1 and len(d["1"]) == 1
                and not d["1"][0].startswith("error"), 30,
                "the new leader's maps: web down to one task")
    c.m.ok("service", "scale", "web=2")
    d = probe_until(out, lambda d: len(d["0"]) == 2 and len(d["1"]) == 2
                    and not any(b.startswith("error") for b in d["1"]), 30,
                    "the new leader's maps: web back to two tasks")
    assert sorted(b.split()[1] for b in d["1"]) == d["0"], d


def _links(ns):
    r = subprocess.run(["ip", "netns", "exec", ns, "ls", "/sys/class/net"],
                       capture_output=True, text=True, timeout=30)
    return sorted(r.stdout.split())


def gw_net(ns):
    """The gateway bridge's subnet in the lab namespace `ns`, None if none."""
    r = subprocess.run(["ip", "-j", "-n", ns, "-4", "addr", "show", "dev", "swgwbridge"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None
    for link in json.loads(r.stdout or "[]"):
        for a in link.get("addr_info", []):
            return ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
    return None


def _nft_tables(netns_path):
    """The nftables tables in the network namespace at netns_path (a name
    under /run/netns or a bind-mounted namespace file)."""
    r = subprocess.run(["nsenter", f"--net={netns_path}", "nft", "-j", "list", "ruleset"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"nft -j list ruleset: {r.stderr.strip()}"
    return [x["table"]["name"] for x in json.loads(r.stdout or '{"nftables": []}')["nftables"]
            if "table" in x]


def _our_mounts(state_dir):
    ns_dir = f"{state_dir}/net/ns/"
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(ns_dir)]


def test_kill9_then_restart_leaves_nothing(cluster):
    c = cluster
    w3 = c.node("w3")
    ns3 = c.lab.names[2]
    before = _links(ns3)
    assert before == ["eth0", "lo"], before
    c.m.ok("network", "create", "-d", "overlay", "front")
    c.m.ok("network", "create", "-d", "overlay", "other")
    c.serve("web", 8080, "--network", "front", "--network", "other", "--replicas", "2",
            "--constraint", "node.hostname==w3")
    wait_for(lambda: len(c.servers("web")) == 2, timeout=40, what="2 web servers on w3")
    # The sandboxes and networks exist while the tasks run, each sandbox
    # with its VIP rules.
    mounts = _our_mounts(w3.state_dir)
    assert len(mounts) >= 4, mounts
    sandboxes = [p for p in mounts if Path(p).name.startswith("t-")]
    assert sandboxes and all("swarmd" in _nft_tables(p) for p in sandboxes), sandboxes
    # The gateway bridge, its veths and its table too.
    links = _links(ns3)
    assert "swgwbridge" in links and len([x for x in links if x.startswith("swgw")]) == 3, links
    assert _nft_tables(f"/run/netns/{ns3}") == ["swarmd_gwbridge"]
    w3.kill()
    # What the dead swarmd made is still there (held by its mounts).
    assert _our_mounts(w3.state_dir), "nothing to clean up: the test proves nothing"
    c.m.ok("node", "update", "--availability", "drain", "w3")
    w3.start()
    wait_for(lambda: not _our_mounts(w3.state_dir), timeout=20,
             what="the previous run's namespaces removed")
    wait_for(lambda: _links(ns3) == before, timeout=20, what="no interface left in w3's namespace")
    assert _nft_tables(f"/run/netns/{ns3}") == [], _nft_tables(f"/run/netns/{ns3}")
    ns_dir = w3.state_dir / "net" / "ns"
    left = list(ns_dir.glob("*")) if ns_dir.exists() else []
    assert left == [], left


@pytest.fixture
def nobody_swarm():
    """A Swarm whose dir `nobody` can reach (pytest's tmp dirs are root's
    alone), removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="swarm-nobody-"))
    os.chmod(base, 0o755)
    s = Swarm(base)
    try:
        yield s
    finally:
        s.cleanup()
        reports = s.sanitizer_reports()
        shutil.rmtree(base, ignore_errors=True)
    assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


def test_node_without_network_capability_says_why_and_runs_plain_tasks(swarm, nobody_swarm):
    """A swarmd that cannot do networking (here: not root) says why in its
    description, and still runs tasks without networks."""
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    w = nobody_swarm.node("w1")
    if os.geteuid() == 0:
        w.run_as = 65534  # nobody
    w.start()
    token = m.ok("swarm", "join-token", "-q", "worker").strip()
    w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
    desc = wait_for(lambda: (lambda d: d if d.get("NetworkError") else None)(
        m.inspect("w1").get("Description", {})), timeout=20, what="w1's NetworkError")
    assert "networking needs swarmd to run as root" in desc["NetworkError"], desc
    # The manager, root here, can: no error in its description.
    if os.geteuid() == 0:
        assert not m.inspect("m1").get("Description", {}).get("NetworkError"), m.inspect("m1")
    m.ok("service", "create", "-d", "--name", "plain", "--constraint", "node.hostname==w1",
         "/bin/sleep", "1000")
    wait_for(lambda: running_on(ClusterView(m), "plain", ["w1"]), timeout=20,
             what="the plain task running on w1")
    # A task on a network is not placed there, and says why.
    m.ok("network", "create", "-d", "overlay", "front")
    m.ok("service", "create", "-d", "--name", "netted", "--network", "front",
         "--constraint", "node.hostname==w1", "/bin/sleep", "1000")
    why = wait_for(lambda: (lambda out: out if "Pending" in out and "networking" in out else None)(
        m.ok("service", "ps", "--no-trunc", "--format", "{{.CurrentState}} {{.Error}}", "netted")),
        timeout=20, what="netted pending with the reason")
    print(f"netted: {why.strip()}", file=sys.stderr)


class ClusterView:
    """ps() of NetCluster for a plain swarm."""

    def __init__(self, m):
        self.m = m

    ps = NetCluster.ps
