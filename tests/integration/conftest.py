"""Integration-test harness: real swarmd processes, each on its own
127.0.0.N with its own state dir and control socket, driven by swarmctl.

Every wait is a poll with a deadline; every process a test starts is ended by
its pid when the test finishes."""
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("SWARM_BUILD_DIR", ROOT / "build"))
SWARMD = BUILD / "daemon" / "swarmd"
SWARMCTL = BUILD / "cli" / "swarmctl"

# Loopback addresses are handed out once per test session, so a test never
# reuses the address of one that just ended; the second octet comes from the
# pid so that two test runs on one machine do not meet, and an address whose
# port 2377 is taken anyway is skipped.
_ips = itertools.count(10)
_octet = 10 + os.getpid() % 90


def _port_free(ip):
    s = socket.socket()
    try:
        s.bind((ip, 2377))
        return True
    except OSError:
        return False
    finally:
        s.close()


def next_ip():
    while True:
        n = next(_ips)
        ip = f"127.{_octet}.{n // 250}.{n % 250 + 2}"
        if _port_free(ip):
            return ip


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def umount_under(base):
    """Unmount (lazily, deepest first) whatever is mounted under `base`: a
    swarmd that ran tasks on networks bind-mounts namespaces under its state
    dir (STATE/net/ns), and one killed with -9 leaves them for its next
    start to clean up; at the end of a test they go with the test's dir."""
    prefix = str(base).rstrip("/") + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    mounts = [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]
    for m in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, stdin=subprocess.DEVNULL)


class Node:
    def __init__(self, base, name, ip, netns=None):
        self.name = name
        # Network namespace to run swarmd in (`ip netns exec NETNS swarmd ...`);
        # the control socket lives in the shared filesystem, so swarmctl still
        # runs from the host. None: the host's namespace, as before.
        self.netns = netns
        # How swarmd enters it: "ip netns exec" (a mount namespace of its
        # own, which dies with it) or "nsenter" (the network namespace
        # alone: its mounts are the host's, as on a real host).
        self.netns_enter = "ip netns exec"
        # Run swarmd as this uid (its dir is given to it), None: as we are.
        self.run_as = None
        self.ip = ip
        self.addr = f"{ip}:2377"
        self.dir = base / name
        self.state_dir = self.dir / "state"
        self.socket = self.state_dir / "swarmd.sock"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.log_path = self.dir / "swarmd.log"

    # -- process --------------------------------------------------------
    def start(self, *extra, wait=True):
        log = open(self.log_path, "ab")
        # `ip netns exec` execs swarmd in place, so proc.pid is swarmd's pid.
        prefix = []
        if self.netns and self.netns_enter == "nsenter":
            prefix = ["nsenter", f"--net=/run/netns/{self.netns}"]
        elif self.netns:
            prefix = ["ip", "netns", "exec", self.netns]
        if self.run_as is not None:
            subprocess.run(["chown", "-R", f"{self.run_as}:{self.run_as}", str(self.dir)],
                           check=True)
            prefix += ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}",
                       "--clear-groups"]
        self.proc = subprocess.Popen(
            [*prefix, str(SWARMD), "--state-dir", str(self.state_dir),
             "--listen-addr", self.addr, "--hostname", self.name, "--log-level", "debug", *extra],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            wait_for(lambda: self.proc.poll() is not None or self.ctl("info").returncode == 0,
                     timeout=10, what=f"{self.name} control socket")
            assert self.proc.poll() is None, f"swarmd {self.name} exited: {self.log_tail()}"
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"swarmd {self.name} did not stop on {sig}")

    def kill(self):
        return self.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- swarmctl -------------------------------------------------------
    def ctl(self, *args, timeout=30, env=None):
        e = dict(os.environ)
        e.pop("SWARM_SOCKET", None)
        if env:
            e.update(env)
        return subprocess.run([str(SWARMCTL), "--socket", str(self.socket), *args],
                              capture_output=True, text=True, timeout=timeout, env=e,
                              stdin=subprocess.DEVNULL)

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        assert r.returncode == 0, (
            f"swarmctl {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}\n"
            f"--- {self.name} log ---\n{self.log_tail()}")
        return r.stdout

    def fails(self, *args, **kw):
        r = self.ctl(*args, **kw)
        assert r.returncode != 0, f"swarmctl {' '.join(args)} unexpectedly succeeded: {r.stdout}"
        return r.stderr.strip()

    def inspect(self, ref="self"):
        return json.loads(self.ok("node", "inspect", ref))[0]

    def node_rows(self):
        """node ls as a list of dicts keyed by column name."""
        return parse_table(self.ok("node", "ls"), NODE_COLUMNS)


NODE_COLUMNS = ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"]


def parse_table(text, cols):
    """A Docker-style table as a list of dicts, cut at the header's columns."""
    lines = text.splitlines()
    header = lines[0]
    starts = [header.index(c) for c in cols]
    rows = []
    for line in lines[1:]:
        row = {}
        for i, c in enumerate(cols):
            end = starts[i + 1] if i + 1 < len(cols) else None
            row[c] = line[starts[i]:end].strip()
        rows.append(row)
    return rows


class Swarm:
    def __init__(self, base):
        self.base = base
        self.nodes = []

    def node(self, name=None, ip=None, netns=None):
        name = name or f"node{len(self.nodes) + 1}"
        n = Node(self.base, name, ip or next_ip(), netns=netns)
        self.nodes.append(n)
        return n

    def cleanup(self):
        for n in self.nodes:
            if n.alive():
                n.proc.kill()
                n.proc.wait()
        umount_under(self.base)

    def sanitizer_reports(self):
        """Lines where a sanitizer build of swarmd reported a bug."""
        found = []
        for n in self.nodes:
            try:
                text = n.log_path.read_text(errors="replace")
            except OSError:
                continue
            found += [f"{n.name}: {line}" for line in text.splitlines()
                      if "ERROR: AddressSanitizer" in line or "runtime error:" in line
                      or "ERROR: LeakSanitizer" in line]
        return found


@pytest.fixture
def swarm(tmp_path):
    assert SWARMD.exists(), f"{SWARMD} not built"
    assert SWARMCTL.exists(), f"{SWARMCTL} not built"
    s = Swarm(tmp_path)
    yield s
    s.cleanup()
    reports = s.sanitizer_reports()
    assert not reports, "sanitizer reports:\n" + "\n".join(reports[:20])


@pytest.fixture
def manager(swarm):
    """One node, started and initialized as the swarm's only manager."""
    n = swarm.node("m1").start()
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    # Its own session marks it Ready: let that write land before the test.
    wait_for(lambda: n.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="manager ready")
    return n
