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


def test_rm_refused_while_in_use_then_allowed(manager):
    m = manager
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
    assert not spec["Task"].get("Networks")
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
