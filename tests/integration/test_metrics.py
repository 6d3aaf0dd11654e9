"""Prometheus metrics (swarmd --metrics-addr): a 3-manager swarm scraped over
HTTP and parsed by Debian's python3-prometheus-client; the families and their
values follow the swarm (nodes, leader, tasks, RPCs), and after the leader is
killed the raft term rises and the leader metric moves. A bad
--metrics-addr is refused with a message."""
import socket
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import SWARMD, wait_for

SLEEP = "sleep"
METRICS_PORT = 9323  # Docker's customary metrics port


def scrape(node):
    """{(name, frozenset(labels)): value} and {family name: type}, or None
    when the node does not answer."""
    url = f"http://{node.ip}:{METRICS_PORT}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200
            ctype = r.headers["Content-Type"]
            body = r.read().decode()
    except OSError:
        return None
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    samples, types = {}, {}
    for fam in text_string_to_metric_families(body):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def start_managers(swarm, count=3):
    nodes = [swarm.node(f"m{i + 1}") for i in range(count)]
    for n in nodes:
        n.start("--metrics-addr", f"{n.ip}:{METRICS_PORT}")
    first = nodes[0]
    first.ok("swarm", "init", "--advertise-addr", first.ip)
    token = first.ok("swarm", "join-token", "-q", "manager").strip()
    for n in nodes[1:]:
        n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, first.addr)
    return nodes


def leaders(nodes):
    """The nodes whose swarm_manager_leader is 1, and every scrape."""
    scrapes = {n.name: scrape(n) for n in nodes}
    if any(s is None for s in scrapes.values()):
        return None, scrapes
    return [n for n in nodes if value(scrapes[n.name][0], "swarm_manager_leader") == 1], scrapes


def test_metrics_follow_the_swarm_and_a_leader_kill(swarm):
    nodes = start_managers(swarm)

    def three_ready():
        for n in nodes:
            got = scrape(n)
            if got is None or value(got[0], "swarm_manager_nodes", state="ready") != 3:
                return False
        return True
    wait_for(three_ready, timeout=20, interval=0.2, what="3 ready nodes on every manager")

    samples, types = scrape(nodes[0])
    # The families, with the types Prometheus will see (the parser strips
    # the _total of a counter's family name).
    assert types["swarm_raft_term"] == "gauge"
    assert types["swarm_manager_leader"] == "gauge"
    assert types["swarm_raft_proposals"] == "counter"
    assert types["swarm_raft_transaction_latency_seconds"] == "histogram"
    assert types["swarm_manager_tasks_total"] == "gauge"
    assert types["grpc_server_handled"] == "counter"
    assert types["grpc_server_handling_seconds"] == "histogram"
    assert types["swarm_dispatcher_heartbeats"] == "counter"
    assert types["swarm_orchestrator_pass_duration_seconds"] == "histogram"
    assert types["process_resident_memory_bytes"] == "gauge"
    assert value(samples, "swarm_manager_nodes", state="down") == 0
    assert value(samples, "swarm_manager_nodes_by_availability", availability="active") == 3
    assert value(samples, "swarm_manager_services_total") == 0
    assert value(samples, "process_resident_memory_bytes") > 1 << 20
    assert value(samples, "process_open_fds") > 3
    assert value(samples, "swarm_event_loop_lag_seconds") is not None

    def one_leader():
        found, got = leaders(nodes)
        return (found[0], got) if found and len(found) == 1 else None
    leader, scrapes = wait_for(one_leader, timeout=15, interval=0.2,
                               what="exactly one leader metric at 1")
    lsamples = scrapes[leader.name][0]
    term_before = value(lsamples, "swarm_raft_term")
    assert term_before >= 1
    assert value(lsamples, "swarm_raft_commit_index") >= 1
    assert value(lsamples, "swarm_raft_proposals_total", result="committed") >= 1
    assert value(lsamples, "swarm_raft_transaction_latency_seconds_count") >= 1
    for n in nodes:
        if n is not leader:
            assert value(scrapes[n.name][0], "swarm_manager_leader") == 0
            assert value(scrapes[n.name][0], "swarm_raft_applied_index") >= 1

    # RPCs are counted where a call finishes: one ListServices more.
    def list_services_ok(n):
        got = scrape(n)
        return value(got[0], "grpc_server_handled_total", grpc_type="unary",
                     grpc_service="swarm.Control", grpc_method="ListServices",
                     grpc_code="OK") or 0
    before = list_services_ok(leader)
    leader.ok("service", "ls")
    assert list_services_ok(leader) >= before + 1

    # A service of 2 replicas shows up as a service and 2 running tasks.
    leader.ok("service", "create", "-d", "--name", "web", "--replicas", "2", SLEEP, "1000")

    def two_running():
        got = scrape(leader)
        return got and value(got[0], "swarm_manager_tasks_total", state="running") == 2 and \
            value(got[0], "swarm_manager_services_total") == 1
    wait_for(two_running, timeout=30, interval=0.2, what="2 running tasks in the metrics")
    samples = scrape(leader)[0]
    assert value(samples, "swarm_scheduler_pass_duration_seconds_count") >= 1
    assert value(samples, "swarm_dispatcher_sessions") >= 1

    # Kill the leader: on the survivors the term rises and another leads.
    leader.kill()
    survivors = [n for n in nodes if n is not leader]

    def moved():
        found, got = leaders(survivors)
        if not found or len(found) != 1:
            return None
        terms = [value(got[n.name][0], "swarm_raft_term") for n in survivors]
        if min(terms) <= term_before:
            return None
        return found[0]
    new = wait_for(moved, timeout=30, interval=0.2, what="a new leader metric and a higher term")
    assert new is not leader


def test_bad_metrics_addr_is_refused(swarm):
    node = swarm.node("m1")
    for bad, msg in [("nonsense", 'invalid --metrics-addr "nonsense": must be IP:PORT'),
                     ("127.0.0.1", 'invalid --metrics-addr "127.0.0.1": must be IP:PORT'),
                     ("127.0.0.1:0", "port must be a number from 1 to 65535"),
                     ("host.example:9323", "must be an IPv4 address")]:
        r = subprocess.run([str(SWARMD), "--state-dir", str(node.state_dir), "--metrics-addr",
                            bad], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (bad, r.stderr)
        assert msg in r.stderr, (bad, r.stderr)
        assert not node.state_dir.exists(), "a refused flag must change nothing"
    # An address that cannot be bound: refused before the node starts.
    s = socket.socket()
    s.bind((node.ip, METRICS_PORT))
    s.listen()
    try:
        r = subprocess.run([str(SWARMD), "--state-dir", str(node.state_dir), "--metrics-addr",
                            f"{node.ip}:{METRICS_PORT}"], capture_output=True, text=True,
                           timeout=10)
    finally:
        s.close()
    assert r.returncode == 1, r.stderr
    assert f"cannot listen on metrics address {node.ip}:{METRICS_PORT}: Address already in use" \
        in r.stderr
    assert not node.state_dir.exists()


def test_metrics_endpoint_serves_only_metrics_and_stops_cleanly(swarm):
    node = swarm.node("m1").start("--metrics-addr", f"{swarm.nodes[0].ip}:{METRICS_PORT}")
    # Before any swarm: the process' figures, no swarm counts.
    samples, _ = wait_for(lambda: scrape(node), timeout=10, what="a first scrape")
    assert value(samples, "process_open_fds") > 3
    assert value(samples, "swarm_manager_leader") is None
    node.ok("swarm", "init", "--advertise-addr", node.ip)
    wait_for(lambda: value(scrape(node)[0], "swarm_manager_leader") == 1, timeout=10,
             what="the only manager's leader metric")
    # Any other path is 404, any other method 405.
    for path, method, code in [("/", "GET", 404), ("/metrics/x", "GET", 404),
                               ("/metrics", "POST", 405)]:
        req = urllib.request.Request(f"http://{node.ip}:{METRICS_PORT}{path}", method=method,
                                     data=b"" if method == "POST" else None)
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError(f"{method} {path} answered 200")
        except urllib.error.HTTPError as e:
            assert e.code == code, (method, path, e.code)
    # SIGTERM: a clean exit, the port given back (SO_REUSEADDR, as swarmd
    # binds: only a listener still there would refuse it, not TIME_WAIT).
    assert node.stop() == 0, node.log_tail()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((node.ip, METRICS_PORT))
    finally:
        s.close()
