"""Nodes as hosts: network namespaces joined by a bridge that lives in a
namespace of its own, with private addresses that exist only inside them
(TESTING.md, "Nodes as hosts"). Used by the partition tests (raft across a
cut link) and the networking tests (overlay networks between nodes).

Everything a lab creates is named with its random prefix and removed by
destroy(), also when a test fails; no address of a lab exists outside its
namespaces, so no traffic can leave them."""
import os
import secrets
import shutil
import subprocess
import sys

import pytest

_PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect((sys.argv[1], 9))
except ConnectionRefusedError:
    sys.exit(0)
except OSError:
    sys.exit(1)
sys.exit(0)
"""


def _run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _netns_unavailable():
    """A reason to skip, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    try:
        r = _run("ip", "netns", "list", check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns` unavailable: {e}"
    if r.returncode != 0:
        return f"`ip netns` unavailable: {r.stderr.strip()}"
    return None


class NetLab:
    """N namespaces on one bridge in a namespace of its own; namespace i
    has address ips[i] on its eth0 (a /24 of `base`.X that exists only
    here)."""

    def __init__(self, count, base="10.213"):
        tag = secrets.token_hex(3)
        self.prefix = f"swt-{tag}"
        self.bridge_ns = f"{self.prefix}-br"
        self.names = [f"{self.prefix}-{i + 1}" for i in range(count)]
        self.subnet = secrets.randbelow(250) + 1
        self.ips = [f"{base}.{self.subnet}.{i + 1}" for i in range(count)]
        self.created = []

    def _add_ns(self, name):
        _run("ip", "netns", "add", name)
        self.created.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def build(self):
        self._add_ns(self.bridge_ns)
        _run("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
        for i, (ns, ip) in enumerate(zip(self.names, self.ips)):
            self._add_ns(ns)
            port = self.port(i)
            # Both ends are created directly inside their namespaces: nothing
            # ever appears in the host's namespace.
            _run("ip", "-n", self.bridge_ns, "link", "add", port, "type", "veth",
                 "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", self.bridge_ns, "link", "set", port, "master", "br0")
            _run("ip", "-n", self.bridge_ns, "link", "set", port, "up")
            _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
        return self

    @staticmethod
    def port(i):
        return f"p{i + 1}"

    def cut(self, i):
        """Partition namespace i from the others: its bridge port goes down."""
        _run("ip", "-n", self.bridge_ns, "link", "set", self.port(i), "down")

    def heal(self, i):
        _run("ip", "-n", self.bridge_ns, "link", "set", self.port(i), "up")

    def reaches(self, src, dst_ip):
        """Whether namespace `src` reaches dst_ip: a TCP connect to a closed
        port there is refused (an answer) rather than timed out. No ping
        needed."""
        r = _run("ip", "netns", "exec", self.names[src], sys.executable, "-c", _PROBE, dst_ip,
                 check=False)
        return r.returncode == 0

    def destroy(self):
        errors = []
        # Node namespaces first (their veths die with them), the bridge last.
        for name in reversed(self.created):
            r = _run("ip", "netns", "del", name, check=False)
            if r.returncode != 0:
                errors.append(f"{name}: {r.stderr.strip()}")
        self.created = []
        left = [n for n in _run("ip", "netns", "list", check=False).stdout.split()
                if n.startswith(self.prefix)]
        return errors + [f"left behind: {left}"] if left else errors




def netns_unavailable():
    """A reason to skip, or None."""
    return _netns_unavailable()


def make_lab(request, count, base="10.213"):
    """A built NetLab of `count` namespaces, destroyed by a finalizer of
    `request`; skips the test when namespaces cannot be made here."""
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    lab = NetLab(count, base)
    request.addfinalizer(lambda: lab.destroy())
    try:
        lab.build()
    except RuntimeError as e:
        # Root without CAP_NET_ADMIN/CAP_SYS_ADMIN (a restricted container).
        if not lab.created:
            pytest.skip(f"cannot create network namespaces: {e}")
        raise
    return lab
