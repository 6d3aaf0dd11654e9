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
    before = m.ok("service", "ls")
    err = m.fails("service", "create", "-d", "--name", "other", "-p", "8000:8080", SLEEP, "1000")
    assert err == ("Error response from daemon: port '8000' is already in use by service 'web' "
                   f"({wid}) as an ingress port")
    # The long syntax and host mode over an ingress port: refused the same.
    err = m.fails("service", "create", "-d", "--name", "other",
                  "-p", "mode=host,published=8000,target=81", SLEEP, "1000")
    assert f"port '8000' is already in use by service 'web' ({wid})" in err
    assert m.ok("service", "ls") == before  # nothing written
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
    assert 30000 <= pb <= 32767 and pb != pa
    err = m.fails("service", "create", "-d", "--name", "c", "-p", f"{pa}:80", SLEEP, "1000")
    assert f"port '{pa}' is already in use by service 'a'" in err
    # An update that keeps the port keeps its number (new port added).
    m.ok("service", "update", "-d", "--publish-add", "443", "a")
    ports = endpoint_ports(m, "a")
    assert (pa, 80, "tcp", "ingress") in ports and len(ports) == 2
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
