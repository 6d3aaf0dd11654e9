"""The routing mesh (issue 13), with nodes as hosts: three swarmd (m1, w2,
w3), each in a network namespace of its own on a bridge
(tests/integration/netlab.py), and a fourth namespace, the client, on the
same bridge (outside the swarm). A TCP sink task (netprobe.py tcpsink) runs
on w2, published with `-p 9000:9000`.

Figures (`name: value unit`, medians; the machine is shared and noisy, so
compare the ratios printed beside them):
  - throughput (MiB/s of 64 MiB sends) and connect+1-byte round trip
    (microseconds) from the client through the mesh of m1 (a node with no
    task: DNAT there, VXLAN to w2, the task) against the same client and
    sink program reached directly (the sink run in w2's own namespace,
    w2's address): the ratios, goal >= 0.80 for throughput;
  - new connections per second through the mesh (sequential connect +
    1-byte echo + close, from the round trip);
  - from a task Running (`service ps`) to it receiving connections through
    the mesh on every node: a new published service, each node's port
    polled every 10 ms from the client; the slowest node's time.
Needs root and network namespaces (says so and exits 0 otherwise)."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_network import Node, read_json, servers, wait_for  # noqa: E402
from benchlib import SWARMD, wait_binary  # noqa: E402
from netlab import NetLab, netns_unavailable  # noqa: E402

PROBE = str(ROOT / "tests" / "integration" / "netprobe.py")
PYTHON = "/usr/bin/python3"
MIB = 64
CONNECT_PROBE = """
import socket, sys, time
ip, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect((ip, port))
        s.sendall(b"e")
        if s.recv(1) == b"e":
            print(time.time())
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.01)
sys.exit(1)
"""


def client_bench(client_ns, ip, port, res):
    for _ in range(100):  # until it answers (bounded)
        r = subprocess.run(["ip", "netns", "exec", client_ns, PYTHON, PROBE, "tcpbench", ip,
                            str(port), str(MIB), "3", "300", str(res)],
                           capture_output=True, timeout=300)
        if r.returncode == 0 and read_json(res) is not None:
            return read_json(res)
        time.sleep(0.1)
    raise SystemExit(f"tcpbench to {ip}:{port} did not run")


def running_since(m, name):
    r = m.ctl("service", "ps", "--format", "{{.CurrentState}}", name)
    return r.returncode == 0 and r.stdout.startswith("Running")


def main():
    reason = netns_unavailable()
    if reason:
        print(f"# bench_mesh skipped: {reason}")
        return
    wait_binary(SWARMD)
    base = Path(tempfile.mkdtemp(prefix="swarm-bench-mesh-"))
    out = base / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    lab = NetLab(4, base="10.217").build()
    client = lab.names[3]
    nodes = []
    direct = None
    try:
        for i, name in enumerate(["m1", "w2", "w3"]):
            nodes.append(Node(base, name, lab.ips[i], lab.names[i]))
        m = nodes[0]
        m.ok("swarm", "init", "--advertise-addr", m.ip)
        token = m.ok("swarm", "join-token", "-q", "worker").strip()
        for n in nodes[1:]:
            n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, f"{m.ip}:2377")
        wait_for(lambda: m.ok("node", "ls").count("Ready") == 3, 30, "3 nodes Ready")

        m.ok("service", "create", "-d", "--name", "sink", "-p", "9000:9000",
             "--constraint", "node.hostname==w2", PYTHON, PROBE, "tcpsink", "9000", str(out), "sink")
        wait_for(lambda: servers(out, "sink"), 60, "the sink task")
        mesh = client_bench(client, lab.ips[0], 9000, out / "mesh.json")

        # Directly: the same sink program in w2's own namespace, w2's address.
        direct = subprocess.Popen(["ip", "netns", "exec", lab.names[1], PYTHON, PROBE, "tcpsink",
                                   "9100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        plain = client_bench(client, lab.ips[1], 9100, out / "direct.json")

        print(f"mesh_tcp_throughput: {mesh['mib_s']:.0f} MiB/s")
        print(f"direct_tcp_throughput: {plain['mib_s']:.0f} MiB/s")
        print(f"mesh_tcp_throughput_ratio: {mesh['mib_s'] / plain['mib_s']:.2f} x (goal >= 0.80)")
        print(f"mesh_connect_rtt: {mesh['connect_us']:.0f} us")
        print(f"direct_connect_rtt: {plain['connect_us']:.0f} us")
        print(f"mesh_connect_rtt_ratio: {mesh['connect_us'] / plain['connect_us']:.2f} x")
        print(f"mesh_new_connections: {1e6 / mesh['connect_us']:.0f} /s (sequential)")

        # A new service: from Running to connections through every node.
        results = {}

        def poll(i):
            r = subprocess.run(["ip", "netns", "exec", client, PYTHON, "-c", CONNECT_PROBE,
                                lab.ips[i], "9200", "60"], capture_output=True, text=True,
                               timeout=90)
            results[i] = float(r.stdout) if r.returncode == 0 else None

        threads = [threading.Thread(target=poll, args=(i,)) for i in range(3)]
        m.ok("service", "create", "-d", "--name", "late", "-p", "9200:9200",
             "--constraint", "node.hostname==w3", PYTHON, PROBE, "tcpsink", "9200")
        for t in threads:
            t.start()
        wait_for(lambda: running_since(m, "late"), 60, "late running")
        t_run = time.time()
        for t in threads:
            t.join()
        if any(v is None for v in results.values()):
            raise SystemExit(f"a node never forwarded 9200: {results}")
        per = [max(0.0, (results[i] - t_run) * 1000) for i in range(3)]
        print(f"mesh_ready_after_running_m1: {per[0]:.0f} ms")
        print(f"mesh_ready_after_running_w2: {per[1]:.0f} ms")
        print(f"mesh_ready_after_running_w3: {per[2]:.0f} ms (the task's node)")
        print(f"mesh_ready_after_running_all: {max(per):.0f} ms")
    finally:
        if direct is not None:
            direct.kill()
            direct.wait()
        for n in nodes:
            n.stop()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            if line.split()[4].startswith(str(base)):
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        lab.destroy()
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)


if __name__ == "__main__":
    main()
