"""Networks, the manager side: `network create/ls/inspect/rm` with Docker's
outputs and refusals, `swarm init --default-addr-pool`, the ingress network,
services on networks (VIPs, task addresses, freed and reused), and no
address given twice across a leader change. These run on plain loopback:
nothing here needs network namespaces."""
import json
import time

import pytest

from conftest import parse_table, wait_for

SLEEP = "sleep"
NET_COLUMNS = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]


def networks(m, *args):
    return {r["NAME"]: r for r in parse_table(m.ok("network", "ls", *args), NET_COLUMNS)}


def inspect_net(m, ref):
    return json.loads(m.ok("network", "inspect", ref))[0]


def now_arg():
    return str(int(time.time()))


def test_init_creates_ingress_and_ls_shows_it(manager):
    m = manager
    out = m.ok("network", "ls")
    assert out.splitlines()[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    rows = networks(m)
    assert list(rows) == ["ingress"]
    assert rows["ingress"]["DRIVER"] == "overlay" and rows["ingress"]["SCOPE"] == "swarm"
    assert len(rows["ingress"]["NETWORK ID"]) == 12
    ing = inspect_net(m, "ingress")
    assert ing["Ingress"] is True and ing["Scope"] == "swarm" and ing["Driver"] == "overlay"
    assert ing["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert ing["Id"].startswith(rows["ingress"]["NETWORK ID"])


def test_create_ls_inspect_rm(manager):
    m = manager
    t0 = now_arg()
    nid = m.ok("network", "create", "-d", "overlay", "front").strip()
    assert len(nid) == 25
    bid = m.ok("network", "create", "--subnet", "10.50.0.0/16", "--gateway", "10.50.0.254",
               "--ip-range", "10.50.1.0/24", "--attachable", "--internal", "--label", "tier=db",
               "back").strip()
    rows = networks(m)
    assert list(rows) == ["back", "front", "ingress"]  # sorted by name
    assert nid.startswith(rows["front"]["NETWORK ID"])
    front = inspect_net(m, "front")
    # The next /24 of the default pool after ingress's.
    assert front["IPAM"]["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert front["Name"] == "front" and front["Id"] == nid and front["EnableIPv6"] is False
    assert front["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "4098"
    back = inspect_net(m, bid[:8])
    assert back["IPAM"]["Config"] == [{"Subnet": "10.50.0.0/16", "IPRange": "10.50.1.0/24",
                                       "Gateway": "10.50.0.254"}]
    assert back["Attachable"] is True and back["Internal"] is True
    assert back["Labels"] == {"tier": "db"}
    # Filters, -q, --format, inspect -f.
    assert list(networks(m, "-f", "label=tier=db")) == ["back"]
    assert list(networks(m, "-f", "name=ron")) == ["front"]
    assert set(networks(m, "-f", "driver=overlay")) == {"back", "front", "ingress"}
    assert sorted(m.ok("network", "ls", "-q").split()) == sorted(
        [nid, bid, inspect_net(m, "ingress")["Id"]])
    assert m.ok("network", "ls", "--format", "{{.Name}}:{{.Driver}}:{{.Scope}}",
                "-f", "name=front") == "front:overlay:swarm\n"
    assert m.ok("network", "inspect", "-f", "{{.Name}} {{.Ingress}}", "front", "ingress") == \
        "front false\ningress true\n"
    err = m.fails("network", "inspect", "nope")
    assert err == "Error: No such network: nope"
    # rm prints what it removed; events report create and remove.
    assert m.ok("network", "rm", "front", "back") == "front\nback\n"
    assert list(networks(m)) == ["ingress"]
    out = m.ok("events", "--since", t0, "--until", str(int(time.time()) + 1),
               "-f", "type=network", timeout=20)
    acts = [(l.split()[2], l.split()[3]) for l in out.splitlines() if "name=ingress" not in l]
    assert acts == [("create", nid), ("create", bid), ("remove", nid), ("remove", bid)], out
    assert "name=front" in out and "type=overlay" in out


@pytest.mark.parametrize("args,message", [
    (["--subnet", "10.0.9/24"], "invalid CIDR address: 10.0.9/24"),
    (["--subnet", "10.60.0.0/24", "--gateway", "10.61.0.1"], "no matching subnet for gateway 10.61.0.1"),
    (["--subnet", "10.60.0.0/24", "--ip-range", "10.61.0.0/25"], "no matching subnet for range 10.61.0.0/25"),
    (["--subnet", "10.0.0.0/16"], "invalid pool request: Pool overlaps with other one on this address space"),
    (["--subnet", "10.70.0.0/16"], "invalid pool request: Pool overlaps with other one on this address space"),
    (["-d", "bridge"], "plugin bridge not supported"),
    (["--gateway", "10.0.5.1"], "every ip-range or gateway must have a corresponding subnet"),
])
def test_create_refusals_write_nothing(manager, args, message):
    m = manager
    m.ok("network", "create", "--subnet", "10.70.1.0/24", "taken")
    before = m.ok("network", "ls", "-q")
    err = m.fails("network", "create", *args, "bad")
    assert err == f"Error response from daemon: {message}", err
    assert m.ok("network", "ls", "-q") == before


def test_duplicate_name_refused(manager):
    m = manager
    m.ok("network", "create", "dup")
    before = m.ok("network", "ls", "-q")
    assert m.fails("network", "create", "dup") == \
        "Error response from daemon: network with name dup already exists"
    assert m.ok("network", "ls", "-q") == before


def test_rm_refused_while_in_use_then_allowed(simmgr):
    m = simmgr
    m.ok("network", "create", "appnet")
    sid = m.ok("service", "create", "-d", "--name", "app", "--network", "appnet", SLEEP, "1000").strip()
    err = m.fails("network", "rm", "appnet")
    assert err == ("Error response from daemon: rpc error: code = FailedPrecondition desc = "
                   f"network appnet is in use by service {sid}")
    assert "appnet" in networks(m)
    # ingress while a service publishes an ingress port.
    m.ok("service", "create", "-d", "--name", "pub", "-p", "8080:80", SLEEP, "1000")
    pid = json.loads(m.ok("service", "inspect", "pub"))[0]["ID"]
    err = m.fails("network", "rm", "ingress")
    assert err == ("Error response from daemon: rpc error: code = FailedPrecondition desc = "
                   f"ingress network cannot be removed because service {pid} depends on it")
    m.ok("service", "rm", "app", "pub")
    # Its tasks go with the service; then the network may go.
    wait_for(lambda: m.ctl("network", "rm", "appnet").returncode == 0, timeout=20,
             what="appnet removable once the service and its tasks are gone")
    assert "appnet" not in networks(m)


def test_service_unknown_network_refused(manager):
    m = manager
    err = m.fails("service", "create", "-d", "--name", "lost", "--network", "nope", SLEEP, "1000")
    assert err == "Error response from daemon: network nope not found"
    assert "lost" not in m.ok("service", "ls")
    m.ok("service", "create", "-d", "--name", "web", SLEEP, "1000")
    err = m.fails("service", "update", "-d", "--network-add", "nope", "web")
    assert err == "Error response from daemon: network nope not found"
    spec = json.loads(m.ok("service", "inspect", "web"))[0]["Spec"]
    assert not spec["TaskTemplate"].get("Networks")
    # Explicitly on ingress, and dnsrr with an ingress port: Docker's refusals.
    err = m.fails("service", "create", "-d", "--network", "ingress", SLEEP, "1000")
    assert err == 'Error response from daemon: Service cannot be explicitly attached to the ingress network "ingress"'
    err = m.fails("service", "create", "-d", "--endpoint-mode", "dnsrr", "-p", "80", SLEEP, "1000")
    assert err == ("Error response from daemon: EndpointSpec: port published with ingress mode can't be "
                   "used with dnsrr mode")
    assert len(m.ok("service", "ls", "-q").split()) == 1


def test_init_default_addr_pool(swarm):
    m = swarm.node("m1").start()
    err = m.fails("swarm", "init", "--advertise-addr", m.ip, "--default-addr-pool", "10.20.0/16")
    assert err == ("Error response from daemon: invalid base pool 10.20.0/16: "
                   "invalid CIDR address: 10.20.0/16")
    err = m.fails("swarm", "init", "--advertise-addr", m.ip, "--default-addr-pool", "10.20.0.0/16",
                  "--default-addr-pool-mask-length", "30")
    assert err == "Error response from daemon: subnet size is out of range: 30"
    err = m.fails("swarm", "init", "--advertise-addr", m.ip, "--default-addr-pool", "10.20.0.0/16",
                  "--default-addr-pool-mask-length", "8")
    assert err == ('Error response from daemon: invalid CIDR: "10.20.0.0/16". '
                   'Subnet size is too small for pool: 8')
    # Nothing was made: the node is still outside any swarm.
    assert m.fails("network", "ls")
    m.ok("swarm", "init", "--advertise-addr", m.ip, "--default-addr-pool", "10.20.0.0/16",
         "--default-addr-pool", "172.28.0.0/16", "--default-addr-pool-mask-length", "26")
    assert inspect_net(m, "ingress")["IPAM"]["Config"][0]["Subnet"] == "10.20.0.0/26"
    m.ok("network", "create", "one")
    assert inspect_net(m, "one")["IPAM"]["Config"][0]["Subnet"] == "10.20.0.64/26"


# ---------------------------------------------------------------- allocation
# Allocation is the manager's: these nodes run the simulated executor
# (tasks "run" as state changes only), so nothing here depends on a node's
# data plane.

@pytest.fixture
def simmgr(swarm):
    n = swarm.node("m1").start("--executor", "sim")
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    wait_for(lambda: n.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="manager ready")
    return n

def service_json(m, name):
    return json.loads(m.ok("service", "inspect", name))[0]


def task_ids(m, svc, *filters):
    return m.ok("service", "ps", "-q", "--no-trunc", *filters, svc).split()


def task_attachments(m, ids):
    """task ID -> [(network ID, address), ...] for live and ended tasks alike."""
    if not ids:
        return {}
    out = json.loads(m.ok("inspect", "--type", "task", *ids))
    return {t["ID"]: [(a["Network"]["ID"], a["Addresses"][0]) for a in t.get("NetworksAttachments", [])]
            for t in out}


def live_addresses(m, svc, net_id):
    """Addresses on net_id of the service's tasks that are running."""
    rows = parse_table(m.ok("service", "ps", "--no-trunc", svc),
                       ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])
    ids = [r["ID"] for r in rows if r["CURRENT STATE"].startswith("Running")]
    att = task_attachments(m, ids)
    return [addr for tid in ids for (nid, addr) in att[tid] if nid == net_id]


def replicas_col(m, svc):
    rows = parse_table(m.ok("service", "ls"), ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"])
    return next((r["REPLICAS"] for r in rows if r["NAME"] == svc), None)


def test_service_vip_task_addresses_freed_and_reused(simmgr):
    m = simmgr
    nid = m.ok("network", "create", "front").strip()
    m.ok("service", "create", "-d", "--name", "web", "--network", "front", "--replicas", "3",
         "--hostname", "webhost", SLEEP, "1000")
    wait_for(lambda: replicas_col(m, "web") == "3/3", timeout=20, what="web 3/3")
    svc = service_json(m, "web")
    assert svc["Endpoint"]["VirtualIPs"] == [{"NetworkID": nid, "Addr": "10.0.1.2/24"}]
    assert svc["Spec"]["TaskTemplate"]["Networks"] == [{"Target": nid, "Aliases": []}]
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Hostname"] == "webhost"
    ids = task_ids(m, "web")
    att = task_attachments(m, ids)
    first = sorted(addr for tid in ids for (_, addr) in att[tid])
    assert first == ["10.0.1.3/24", "10.0.1.4/24", "10.0.1.5/24"], att
    one = json.loads(m.ok("inspect", ids[0]))[0]
    assert one["NetworksAttachments"][0]["Network"]["Spec"]["Name"] == "front"
    # Scale down: the ended tasks give their addresses back; scale up: reused.
    m.ok("service", "scale", "-d", "web=1")
    def stopped():
        rows = parse_table(m.ok("service", "ps", "-f", "desired-state=shutdown", "web"),
                           ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE"])
        return len(rows) == 2 and not any(r["CURRENT STATE"].startswith("Running") for r in rows)
    wait_for(stopped, timeout=20, what="two tasks stopped")
    assert len(live_addresses(m, "web", nid)) == 1
    m.ok("service", "scale", "-d", "web=3")
    wait_for(lambda: replicas_col(m, "web") == "3/3", timeout=20, what="web 3/3 again")
    again = sorted(live_addresses(m, "web", nid))
    assert again == first, again
    # Removing the endpoint mode's VIP: dnsrr gives it back.
    m.ok("service", "update", "-d", "--endpoint-mode", "dnsrr", "web")
    wait_for(lambda: not service_json(m, "web")["Endpoint"].get("VirtualIPs"), timeout=20,
             what="no VIP in dnsrr mode")


def test_network_add_rm_on_update(simmgr):
    m = simmgr
    a = m.ok("network", "create", "neta").strip()
    b = m.ok("network", "create", "netb").strip()
    m.ok("service", "create", "-d", "--name", "app", "--network", "name=neta,alias=db", SLEEP, "1000")
    wait_for(lambda: replicas_col(m, "app") == "1/1", timeout=20, what="app 1/1")
    spec = service_json(m, "app")["Spec"]["TaskTemplate"]
    assert spec["Networks"] == [{"Target": a, "Aliases": ["db"]}]
    m.ok("service", "update", "-d", "--network-add", "netb", "--network-rm", "neta", "app")
    def moved():
        s = service_json(m, "app")
        vips = {v["NetworkID"] for v in s["Endpoint"].get("VirtualIPs", [])}
        if vips != {b}:
            return False
        return [n for n, _ in sum(task_attachments(m, task_ids(m, "app", "-f", "desired-state=running")).values(), [])] == [b]
    wait_for(moved, timeout=20, what="app on netb only, VIP and task")
    # neta is free again.
    m.ok("network", "rm", "neta")


def test_exhausted_subnet_pending_then_allocated(simmgr):
    m = simmgr
    # A /29: .1 gateway, .7 broadcast: .2-.6 for VIPs and tasks.
    m.ok("network", "create", "--subnet", "10.80.0.0/29", "tiny")
    m.ok("service", "create", "-d", "--name", "other", "--network", "tiny", SLEEP, "1000")
    wait_for(lambda: replicas_col(m, "other") == "1/1", timeout=20, what="other 1/1")
    m.ok("service", "create", "-d", "--name", "web", "--network", "tiny", "--replicas", "3", SLEEP, "1000")
    rows = lambda: parse_table(m.ok("service", "ps", "--no-trunc", "web"),
                               ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])
    def one_waiting():
        r = rows()
        running = [x for x in r if x["CURRENT STATE"].startswith("Running")]
        pending = [x for x in r if x["CURRENT STATE"].startswith("Pending")]
        return len(running) == 2 and len(pending) == 1 and pending[0]
    pending = wait_for(one_waiting, timeout=20, what="two running, one pending")
    assert pending["ERROR"] == '"no available IP addresses on network tiny"'
    assert pending["NODE"] == ""
    # Another service goes: its VIP and its task's address come free.
    m.ok("service", "rm", "other")
    wait_for(lambda: replicas_col(m, "web") == "3/3", timeout=20, what="web 3/3 once addresses came free")
    addrs = live_addresses(m, "web", service_json(m, "web")["Endpoint"]["VirtualIPs"][0]["NetworkID"])
    assert len(set(addrs)) == 3 and all(a.startswith("10.80.0.") for a in addrs)


def test_ingress_port_attaches_ingress(simmgr):
    m = simmgr
    ing = inspect_net(m, "ingress")["Id"]
    m.ok("service", "create", "-d", "--name", "pub", "-p", "8080:80", SLEEP, "1000")
    wait_for(lambda: replicas_col(m, "pub") == "1/1", timeout=20, what="pub 1/1")
    vips = service_json(m, "pub")["Endpoint"]["VirtualIPs"]
    assert vips == [{"NetworkID": ing, "Addr": "10.0.0.2/24"}]
    # The node got its ingress address (the routing mesh's) in the pass that
    # gave the VIP; the task, created in the next, the one after.
    node = json.loads(m.ok("node", "inspect", "self"))[0]
    assert [(a["Network"]["ID"], a["Addresses"]) for a in node["Attachments"]] == [(ing, ["10.0.0.3/24"])]
    att = task_attachments(m, task_ids(m, "pub"))
    assert list(att.values()) == [[(ing, "10.0.0.4/24")]]


def test_inspect_any_object(manager):
    m = manager
    m.ok("network", "create", "front")
    m.ok("service", "create", "-d", "--name", "web", SLEEP, "1000")
    out = m.ok("inspect", "-f", "{{.Name}}", "front")
    assert out == "front\n"
    assert m.ok("inspect", "--type", "service", "-f", "{{.Spec.Name}}", "web") == "web\n"
    err = m.fails("inspect", "nothing-here")
    assert err == "Error: No such object: nothing-here"


def test_leader_kill_mid_scale_up_no_duplicate_address(swarm):
    from test_managers import all_reachable, leader_of
    nodes = [swarm.node(f"m{i + 1}").start("--executor", "sim") for i in range(3)]
    nodes[0].ok("swarm", "init", "--advertise-addr", nodes[0].ip)
    token = nodes[0].ok("swarm", "join-token", "-q", "manager").strip()
    for n in nodes[1:]:
        n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, nodes[0].addr)
    wait_for(lambda: all_reachable(nodes), timeout=15, what="all managers reachable")
    leader = wait_for(lambda: leader_of(nodes), timeout=15, what="a leader")
    nid = leader.ok("network", "create", "big").strip()
    leader.ok("service", "create", "-d", "--name", "web", "--network", "big", SLEEP, "1000")
    wait_for(lambda: replicas_col(leader, "web") == "1/1", timeout=20, what="web 1/1")
    leader.ok("service", "scale", "-d", "web=120")
    # Kill the leader while the scale-up is being allocated and placed.
    wait_for(lambda: len(task_ids(leader, "web")) > 1, timeout=20, interval=0.01,
             what="the scale-up started")
    leader.kill()
    rest = [n for n in nodes if n is not leader]
    new = wait_for(lambda: leader_of(rest), timeout=20, what="a new leader")

    def done():
        rows = parse_table(new.ok("service", "ps", "--no-trunc", "-f", "desired-state=running", "web"),
                           ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])
        return len(rows) == 120 and all(r["NODE"] for r in rows) and rows
    rows = wait_for(done, timeout=60, what="120 tasks placed after the leader change")
    ids = [r["ID"] for r in rows]
    att = task_attachments(new, ids)
    addrs = [addr for tid in ids for (n, addr) in att[tid] if n == nid]
    assert len(addrs) == 120, f"{len(addrs)} tasks attached"
    vip = service_json(new, "web")["Endpoint"]["VirtualIPs"][0]["Addr"]
    assert len(set(addrs)) == 120 and vip not in addrs, sorted(addrs)


def test_scheduler_keeps_networked_tasks_off_nodes_without_networking(swarm, tmp_path):
    """A worker running swarmd as an unprivileged user cannot give tasks
    network stacks: its description says why, and a task on a network stays
    pending with the scheduler's reason instead of going there."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path
    from conftest import SWARMD
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip, "--availability", "drain")
    # The worker's state lives where `nobody` may write (tmp_path is root's).
    base = Path(tempfile.mkdtemp(prefix="swarm-nobody-"))
    try:
        os_chown = __import__("os").chown
        os_chown(base, 65534, 65534)
        w = swarm.node("w1")
        w.state_dir = base / "state"
        w.socket = w.state_dir / "swarmd.sock"
        log = open(w.log_path, "ab")
        w.proc = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(SWARMD),
             "--state-dir", str(w.state_dir), "--listen-addr", w.addr, "--hostname", "w1"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(lambda: w.proc.poll() is not None or w.ctl("info").returncode == 0, timeout=10,
                 what="w1 control socket")
        assert w.proc.poll() is None, w.log_tail()
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, m.addr)
        wait_for(lambda: "networking needs swarmd to run as root" in
                 json.loads(m.ok("node", "inspect", "w1"))[0]["Description"].get("NetworkError", ""),
                 timeout=15, what="w1 says it cannot do networking")
        m.ok("network", "create", "front")
        m.ok("service", "create", "-d", "--name", "web", "--network", "front", SLEEP, "1000")
        rows = lambda: parse_table(m.ok("service", "ps", "--no-trunc", "web"),
                                   ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])
        wait_for(lambda: rows() and rows()[0]["ERROR"] ==
                 '"no suitable node (1 node not available for new tasks; networking not available on 1 node)"',
                 timeout=15, what="the pending reason")
        assert rows()[0]["NODE"] == "" and rows()[0]["CURRENT STATE"].startswith("Pending")
        # Its address was given all the same: only the placement waits.
        tid = rows()[0]["ID"]
        assert task_attachments(m, [tid])[tid][0][1] == "10.0.1.3/24"
    finally:
        for n in swarm.nodes:
            if n.alive():
                n.proc.kill()
                n.proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def test_global_task_waits_for_an_address_then_runs(simmgr):
    m = simmgr
    # .2-.6: the replicated service takes its VIP and 3 addresses, the
    # global one its VIP: nothing is left for its task.
    m.ok("network", "create", "--subnet", "10.81.0.0/29", "tiny")
    m.ok("service", "create", "-d", "--name", "other", "--network", "tiny", "--replicas", "3", SLEEP, "1000")
    wait_for(lambda: replicas_col(m, "other") == "3/3", timeout=20, what="other 3/3")
    m.ok("service", "create", "-d", "--name", "g", "--mode", "global", "--network", "tiny", SLEEP, "1000")
    rows = lambda: parse_table(m.ok("service", "ps", "--no-trunc", "g"),
                               ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"])
    wait_for(lambda: rows() and rows()[0]["ERROR"] == '"no available IP addresses on network tiny"',
             timeout=20, what="the global task waiting for an address")
    assert rows()[0]["CURRENT STATE"].startswith("Pending")
    m.ok("service", "scale", "-d", "other=1")
    wait_for(lambda: replicas_col(m, "g") == "1/1", timeout=20, what="g running once addresses came free")
    tid = task_ids(m, "g", "-f", "desired-state=running")[0]
    assert task_attachments(m, [tid])[tid][0][1].startswith("10.81.0.")


def test_service_rm_right_after_create_is_not_refused_as_out_of_sequence(simmgr):
    # The leader updates a service it just created (its VIPs, then its
    # tasks' allocation): a `service rm` racing that must still succeed.
    m = simmgr
    m.ok("network", "create", "racenet")
    for i in range(15):
        m.ok("service", "create", "-d", "--name", f"r{i}", "--network", "racenet", "--replicas", "3",
             SLEEP, "1000")
        r = m.ctl("service", "rm", f"r{i}")
        assert r.returncode == 0, r.stderr
    assert m.ok("service", "ls", "-q").split() == []
