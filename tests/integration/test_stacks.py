"""`swarmctl stack` end to end (issue 15), with nodes as hosts (netlab.py,
as test_network.py): three nodes m1 (manager), w2, w3 (workers).

The seed application is shaped like WordPress + MySQL with process images:
`db` is a python3 HTTP server (netprobe.py serve) placed on the manager,
`web` two replicas on the workers of a python3 HTTP server on port 80
(stackweb.py) that answers each request with what it fetched from
http://db:3306/ by name over the stack's default network; a client task
(netprobe.py probe) on the stack's network fetches http://web/; port 8080,
published by `web`, answers on every node's address (the routing mesh, m1
included, which runs no `web` task) from a namespace outside the swarm.
Every wait is a poll with a deadline."""
import json
import os

import pytest

from pathlib import Path

from conftest import wait_for
from test_network import PROBE, PYTHON, cluster, read_probe  # noqa: F401 (fixture)

WEB = str(Path(__file__).resolve().parent / "stackweb.py")

SEED = """
version: "3.8"
x-probe: &probe
  image: {python}
services:
  db:
    <<: *probe
    command: ["{probe}", "serve", "3306", "{out}", "db"]
    environment:
      MYSQL_DATABASE: ${{DB_NAME:-wordpress}}
    deploy:
      placement:
        constraints: [node.role == manager]
  web:
    <<: *probe
    command: ["{web}", "80", "http://db:3306/"]
    ports:
      - "8080:80"
    environment:
      - WORDPRESS_DB_HOST=db:3306
      - TAG=${{TAG:?TAG must be set}}
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
"""


def write(path, text):
    path.write_text(text)
    return str(path)


def services(m, stack):
    """{name: replicas} from `stack services`."""
    out = m.ok("stack", "services", "--format", "{{.Name}} {{.Replicas}}", stack)
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def find(obj, key):
    """The first value under `key` anywhere in a JSON object."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            r = find(v, key)
            if r is not None:
                return r
    return None


def env_of(m, name):
    return find(json.loads(m.ok("service", "inspect", name))[0]["Spec"], "Env") or []


def spec_version(m, name):
    return m.ok("service", "inspect", "--format", "{{.Version.Index}}", name).strip()


def state(m):
    """The cluster's services and networks, for "nothing changed"."""
    return (m.ok("service", "ls", "--format", "{{.Name}} {{.Image}}"),
            m.ok("network", "ls", "--format", "{{.Name}}"))


def test_seed_app_redeploy_prune_and_rm(cluster, tmp_path):
    c = cluster
    m = c.m
    d = tmp_path / "wp"
    d.mkdir()
    write(d / ".env", "TAG=from-dotenv\nDB_NAME=fromdotenv\n")
    f = write(d / "docker-compose.yml", SEED.format(python=PYTHON, probe=PROBE, web=WEB, out=c.out))
    out = m.ok("stack", "deploy", "-c", f, "wp")
    assert out.splitlines() == ["Creating network wp_default", "Creating service wp_db",
                                "Creating service wp_web"], out
    # web reaches db by name over the stack's network; a client on that
    # network reaches both web replicas by the name web.
    db = wait_for(lambda: c.servers("db") or None, timeout=60, what="db listening")
    db_body = next(f"{h} {a[0]}" for h, a in db.items())
    wait_for(lambda: services(m, "wp") == {"wp_db": "1/1", "wp_web": "2/2"}, timeout=60,
             what="stack services at 1/1 and 2/2")
    out = c.probe("client", [["fetch", "http://web/", 16]], "--network", "wp_default")

    def both_webs(d):
        bodies = d["0"]
        return (isinstance(bodies, list) and len(bodies) == 2
                and all(b.endswith(" <- " + db_body) for b in bodies))
    try:
        res = wait_for(lambda: (lambda r: r if r is not None and both_webs(r) else None)(
            read_probe(out, 0)), timeout=60, interval=0.3,
            what="the client reaching both webs, each reaching db by name")
    except AssertionError:
        raise AssertionError(f"client saw {read_probe(out, 0)}, db {db_body}") from None
    assert len({b.split(" ")[0] for b in res["0"]}) == 2, res
    m.ok("service", "rm", "client")
    wait_for(lambda: services(m, "wp") == {"wp_db": "1/1", "wp_web": "2/2"}, timeout=60,
             what="stack services at 1/1 and 2/2")
    web_nodes = [n for n, _ in c.ps("wp_web")]
    assert len(web_nodes) == 2 and set(web_nodes) <= {"w2", "w3"}, web_nodes
    # ports: "8080:80": every node's address answers on 8080 through the
    # routing mesh, m1 (no web task) included, each answer from a web task.
    webs = {b.split(" ")[0] for b in res["0"]}

    def mesh_answers(name):
        got = c.get(name, 8080, 4)
        return all(b.split(" ")[0] in webs and b.endswith(" <- " + db_body) for b in got)
    for name in ("m1", "w2", "w3"):
        try:
            wait_for(lambda: mesh_answers(name), timeout=30, interval=0.3,
                     what=f"port 8080 of {name} answering from a web task")
        except AssertionError:
            raise AssertionError(f"{name}:8080 gave {c.get(name, 8080, 4)}, webs {webs}") from None
    assert [r.split() for r in m.ok("stack", "services", "--format", "{{.Name}} {{.Ports}}",
                                    "wp").splitlines()] == [["wp_db"], ["wp_web", "*:8080->80/tcp"]]
    assert [n for n, _ in c.ps("wp_db")] == ["m1"]
    ls = m.ok("stack", "ls").splitlines()
    assert ls[0].split() == ["NAME", "SERVICES", "ORCHESTRATOR"] and ls[1].split() == ["wp", "2", "Swarm"]
    assert m.ok("stack", "ls", "--format", "{{.Name}}:{{.Services}}").split() == ["wp:2"]
    ps = m.ok("stack", "ps", "--format", "{{.Name}}", "wp").split()
    assert sorted(ps)[:1] == ["wp_db.1"] and len(ps) >= 3
    # interpolation: the environment wins over .env, .env fills the rest
    assert "TAG=from-dotenv" in env_of(m, "wp_web")
    assert "MYSQL_DATABASE=fromdotenv" in env_of(m, "wp_db")
    assert json.loads(m.ok("service", "inspect", "wp_db"))[0]["Spec"]["Labels"] == {
        "com.docker.stack.namespace": "wp"}

    # The same file again: nothing changes.
    v_db, v_web = spec_version(m, "wp_db"), spec_version(m, "wp_web")
    assert m.ok("stack", "deploy", "-c", f, "wp").strip() == ""
    assert (spec_version(m, "wp_db"), spec_version(m, "wp_web")) == (v_db, v_web)
    # One changed service (from the environment): only it is updated.
    out = m.ok("stack", "deploy", "-c", f, "wp", env={"TAG": "v2"})
    assert out.startswith("Updating service wp_web (id: ") and len(out.splitlines()) == 1, out
    assert spec_version(m, "wp_db") == v_db
    assert "TAG=v2" in env_of(m, "wp_web")

    # A second stack, then --prune drops a service no longer in the file.
    other = write(d / "other.yml", "services:\n  idle:\n    image: /bin/sleep\n    command: ['1000']\n")
    assert m.ok("stack", "deploy", "-c", other, "other").splitlines() == [
        "Creating network other_default", "Creating service other_idle"]
    only_db = write(d / "db.yml", SEED.format(python=PYTHON, probe=PROBE, web=WEB, out=c.out)
                    .split("  web:")[0])
    out = m.ok("stack", "deploy", "--prune", "-c", only_db, "wp", env={"TAG": "v2"})
    assert out.splitlines() == ["Removing service wp_web"], out
    assert set(services(m, "wp")) == {"wp_db"}

    # stack rm: the stack's services then its networks; the other stack stays.
    out = m.ok("stack", "rm", "wp")
    assert out.splitlines() == ["Removing service wp_db", "Removing network wp_default"], out
    names, nets = state(m)
    assert "wp_" not in names and "wp_default" not in nets
    assert "other_idle" in names and "other_default" in nets
    assert "wp" not in m.ok("stack", "ls")
    assert "Nothing found in stack: wp" in m.ctl("stack", "services", "wp").stderr


BAD = {
    "syntax": ("services:\n  a:\n    image: x\n   bad: [\n", "docker-compose.yml:4: yaml:"),
    "type": ("services:\n  a:\n    image: /bin/sleep\n    deploy:\n      replicas: \"two\"\n",
             "docker-compose.yml:5: services.a.deploy.replicas must be a integer"),
    "toplevel": ("services:\n  a: {image: /bin/sleep}\nvolumez: {}\n",
                 "docker-compose.yml:3: (root) Additional property volumez is not allowed"),
    "network": ("services:\n  a:\n    image: /bin/sleep\n    networks: [back]\n",
                "docker-compose.yml:4: services.a.networks refers to undefined network back"),
    "var": ("services:\n  a:\n    image: /bin/sleep\n  b:\n    image: ${MISSING_VAR:?set it}\n",
            "docker-compose.yml:5: required variable MISSING_VAR is missing a value: set it"),
    "external": ("services:\n  a:\n    image: /bin/sleep\n    networks: [n]\n"
                 "networks:\n  n: {external: true}\n",
                 "network \"n\" is declared as external, but could not be found"),
    "secrets": ("services:\n  a:\n    image: /bin/sleep\n    secrets: [pw]\n",
                "services.a.secrets is not supported yet"),
}


def test_bad_files_change_nothing(cluster, tmp_path):
    m = cluster.m
    before = state(m)
    for name, (text, msg) in BAD.items():
        d = tmp_path / name
        d.mkdir()
        f = write(d / "docker-compose.yml", text)
        r = m.fails("stack", "deploy", "-c", f, "bad")
        assert msg in r, (name, r)
        assert state(m) == before, name
    # Ignored keys are reported, not refused.
    f = write(tmp_path / "ign.yml", "services:\n  a:\n    image: /bin/sleep\n    command: ['100']\n"
              "    build: .\n    depends_on: [b]\n  b:\n    image: /bin/sleep\n    command: ['100']\n")
    r = m.ctl("stack", "deploy", "-c", f, "ign")
    assert r.returncode == 0 and "Ignoring unsupported options: build, depends_on" in r.stderr, r
    m.ok("stack", "rm", "ign")


def test_failure_midway_says_what_was_and_was_not_created(cluster, tmp_path):
    """The second network overlaps the first one's subnet: swarmd refuses it
    after the first was created; the user is told exactly that."""
    m = cluster.m
    f = write(tmp_path / "half.yml",
              "services:\n  s:\n    image: /bin/sleep\n    command: ['100']\n    networks: [a, b]\n"
              "networks:\n  a:\n    ipam: {config: [{subnet: 10.77.0.0/24}]}\n"
              "  b:\n    ipam: {config: [{subnet: 10.77.0.0/24}]}\n")
    r = m.ctl("stack", "deploy", "-c", f, "half")
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["Creating network half_a", "Creating network half_b"], r.stdout
    assert "Deploy of stack half stopped: done: network half_a\n" in r.stderr, r.stderr
    assert "Not done: network half_b, service half_s\n" in r.stderr, r.stderr
    _, nets = state(m)
    assert "half_a" in nets.split() and "half_b" not in nets.split()
    assert m.ok("stack", "rm", "half").splitlines() == ["Removing network half_a"]
    assert "half_a" not in state(m)[1].split()
