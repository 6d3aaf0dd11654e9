"""The cost of overlay networks (issue 12), with nodes as hosts: two swarmd
(a manager and a worker), each in a network namespace of its own joined by
a bridge (tests/integration/netlab.py), tasks run by the process executor.

Figures (`name: value unit`, medians; machines are shared and noisy, so
compare the ratios printed beside them):
  - task start to running, without and with a network: `service create`
    of one replica on the worker until `service ps` shows it Running
    (BENCH_NET_RUNS runs each, default 5);
  - task-to-task TCP across the two nodes over the overlay (VXLAN between
    the namespaces' addresses, the VIP not involved: the server task's own
    address) against the same Python client and server in two namespaces
    joined by a plain veth: throughput (MiB/s of 64 MiB sends) and
    connect+1-byte round trip (microseconds), and their ratios;
  - DNS lookup latency from inside a task (getaddrinfo of a service name,
    answered by the node's embedded DNS server).
Needs root and network namespaces (says so and exits 0 otherwise)."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from benchlib import SWARMCTL, SWARMD, wait_binary  # noqa: E402
from netlab import NetLab, netns_unavailable  # noqa: E402

PROBE = str(ROOT / "tests" / "integration" / "netprobe.py")
PYTHON = "/usr/bin/python3"
RUNS = int(os.environ.get("BENCH_NET_RUNS", "5"))
MIB = 64


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = pred()
        if r:
            return r
        time.sleep(0.01)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


class Node:
    def __init__(self, base, name, ip, ns):
        self.name, self.ip, self.ns = name, ip, ns
        self.state = base / name / "state"
        self.state.mkdir(parents=True)
        self.sock = self.state / "swarmd.sock"
        self.log = open(base / name / "swarmd.log", "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{ns}", str(SWARMD), "--state-dir", str(self.state),
             "--listen-addr", f"{ip}:2377", "--hostname", name],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.ctl("info").returncode == 0, 15, f"{name} up")

    def ctl(self, *args):
        return subprocess.run([str(SWARMCTL), "--socket", str(self.sock), *args],
                              capture_output=True, text=True, timeout=60)

    def ok(self, *args):
        r = self.ctl(*args)
        if r.returncode != 0:
            raise SystemExit(f"swarmctl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def stop(self):
        """SIGTERM (swarmd removes what it made), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def running(m, name):
    r = m.ctl("service", "ps", "--format", "{{.CurrentState}}", name)
    return r.returncode == 0 and r.stdout.startswith("Running")


def start_times(m, net_flags, label):
    times = []
    for i in range(RUNS):
        name = f"start-{label}-{i}"
        t0 = time.monotonic()
        m.ok("service", "create", "-d", "--name", name, "--constraint", "node.hostname==w2",
             *net_flags, "/bin/sleep", "1000")
        wait_for(lambda: running(m, name), 60, f"{name} running")
        times.append((time.monotonic() - t0) * 1000)
        m.ok("service", "rm", name)
    return statistics.median(times)


def servers(out, label):
    found = []
    for p in out.glob(f"serve-{label}-*.json"):
        try:
            found.append(json.loads(p.read_text()))
        except ValueError:
            pass
    return found


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def veth_pair(tag):
    """Two namespaces joined by one veth (10.215.0.1 and .2): the baseline."""
    a, b = f"swb-{tag}-a", f"swb-{tag}-b"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-n", a, "link", "add", "v0", "type", "veth", "peer", "name", "v0",
                    "netns", b], check=True)
    for ns, ip in ((a, "10.215.0.1"), (b, "10.215.0.2")):
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "v0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "v0", "up"], check=True)
    return a, b


def main():
    reason = netns_unavailable()
    if reason:
        print(f"# bench_network skipped: {reason}")
        return
    wait_binary(SWARMD)
    base = Path(tempfile.mkdtemp(prefix="swarm-bench-net-"))
    out = base / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    lab = NetLab(2, base="10.216").build()
    nodes = []
    pair = None
    try:
        m = Node(base, "m1", lab.ips[0], lab.names[0])
        nodes.append(m)
        w = Node(base, "w2", lab.ips[1], lab.names[1])
        nodes.append(w)
        m.ok("swarm", "init", "--advertise-addr", m.ip)
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{m.ip}:2377")
        wait_for(lambda: m.ok("node", "ls").count("Ready") == 2, 20, "2 nodes Ready")
        m.ok("network", "create", "-d", "overlay", "benchnet")

        plain = start_times(m, [], "plain")
        netted = start_times(m, ["--network", "benchnet"], "net")
        print(f"task_start_no_network: {plain:.0f} ms")
        print(f"task_start_with_network: {netted:.0f} ms")
        print(f"task_start_network_ratio: {netted / plain:.2f} x")

        # Overlay: a sink task on w2, the client task on m1.
        m.ok("service", "create", "-d", "--name", "sink", "--network", "benchnet",
             "--constraint", "node.hostname==w2", PYTHON, PROBE, "tcpsink", "9000", str(out),
             "sink")
        sink = wait_for(lambda: servers(out, "sink"), 60, "the sink task")[0]
        res = out / "overlay.json"
        m.ok("service", "create", "-d", "--name", "tcpclient", "--network", "benchnet",
             "--constraint", "node.hostname==m1", PYTHON, PROBE, "tcpbench",
             sink["addrs"][0], "9000", str(MIB), "3", "200", str(res), "stay")
        overlay = wait_for(lambda: read_json(res), 300, "the overlay measurement")
        m.ok("service", "create", "-d", "--name", "dnsclient", "--network", "benchnet",
             "--constraint", "node.hostname==m1", PYTHON, PROBE, "dnsbench", "sink", "500",
             str(out / "dns.json"), "stay")
        dns = wait_for(lambda: read_json(out / "dns.json"), 120, "the DNS measurement")

        # The baseline: the same client and server over a plain veth.
        pair = veth_pair(lab.prefix.split("-")[1])
        srv = subprocess.Popen(["ip", "netns", "exec", pair[1], PYTHON, PROBE, "tcpsink", "9000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            vres = str(out / "veth.json")
            for _ in range(100):  # until the server listens (bounded)
                r = subprocess.run(["ip", "netns", "exec", pair[0], PYTHON, PROBE, "tcpbench",
                                    "10.215.0.2", "9000", str(MIB), "3", "200", vres],
                                   capture_output=True, timeout=120)
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            veth = read_json(vres)
        finally:
            srv.kill()
            srv.wait()
        if veth is None:
            raise SystemExit("the veth baseline did not run")
        print(f"tcp_throughput_overlay: {overlay['mib_s']:.0f} MiB/s")
        print(f"tcp_throughput_veth: {veth['mib_s']:.0f} MiB/s")
        print(f"tcp_throughput_overlay_ratio: {overlay['mib_s'] / veth['mib_s']:.2f} x")
        print(f"tcp_connect_rtt_overlay: {overlay['connect_us']:.0f} us")
        print(f"tcp_connect_rtt_veth: {veth['connect_us']:.0f} us")
        print(f"tcp_connect_rtt_overlay_ratio: {overlay['connect_us'] / veth['connect_us']:.2f} x")
        print(f"dns_lookup_in_task: {dns['lookup_us']:.0f} us")
        print(f"dns_lookup_in_task_p90: {dns['lookup_p90_us']:.0f} us")
    finally:
        for n in nodes:
            n.stop()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            if line.split()[4].startswith(str(base)):
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        if pair is not None:
            for ns in pair:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        lab.destroy()
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)


if __name__ == "__main__":
    main()
