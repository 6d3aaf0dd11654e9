"""What one client can do to a real swarmd (issue 10, "Limits"): every peer
is bounded (connections, streams, bytes, time, decode work), a bound reached
is a clear error or a closed connection, and the daemon goes on serving
everyone else with the same pid.

Reuses the hand-built HTTP/2 client of test_hostile_bytes so that every byte
sent is under the test's control."""
import os
import socket
import ssl
import struct
import time

import pytest

from conftest import wait_for
from test_hostile_bytes import (  # noqa: F401  (target is a fixture)
    END_STREAM, DATA, HEADERS, END_HEADERS, IO_TIMEOUT, LIST_NODES, H2Conn, certs, frame,
    grpc_msg, hpack_encode, grpc_headers, open_h2, own_node, tcp_connect, target,
    tls_context, assert_serving,
)

CA_ROOT = "/swarm.CA/GetRootCACertificate"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ------------------------------------------------------------------ raft


def raft_conn(node):
    """A TLS connection to the raft transport with the node's own manager
    certificate (a valid raft peer), after the transport's preamble."""
    ctx = tls_context(node, alpn=("swarm-raft",))
    s = ctx.wrap_socket(tcp_connect(node), server_hostname="swarm-manager")
    assert s.selected_alpn_protocol() == "swarm-raft", s.selected_alpn_protocol()
    addr = f"{node.ip}:2377".encode()
    s.sendall(b"SWRT" + bytes([1, 0]) + struct.pack("<H", len(addr)) + addr)
    return s


def closed_within(s, timeout=IO_TIMEOUT):
    """True once the peer closed the connection (EOF or reset)."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not s.recv(4096):
                return True
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return True
    return False


def le64(v):
    return struct.pack("<Q", v)


RAFT_GARBAGE = [
    # Append entries: a 48-byte header announcing 16 million entries. libraft
    # reads the entry records far past its 48-byte buffer (SIGSEGV).
    pytest.param(le64(1) + le64(48) + le64(1) * 4 + le64(1 << 24) + le64(0), id="entry-count"),
    # Request vote with an 8-byte header: raft reads 40.
    pytest.param(le64(3) + le64(8) + le64(1), id="short-header"),
    # Install snapshot whose configuration claims more servers than it holds.
    pytest.param(le64(5) + le64(56 + 16) + le64(1) * 4 + le64(16) +
                 b"\x01" + le64(1 << 40) + b"\x00" * 7 + le64(8) + le64(0), id="configuration"),
    pytest.param(le64(99) + le64(24) + b"\x00" * 24, id="unknown-type"),
    pytest.param(os.urandom(4096), id="random"),
]


@pytest.mark.parametrize("garbage", RAFT_GARBAGE)
def test_raft_garbage_after_handshake_closes_connection(target, garbage):
    s = raft_conn(target)
    try:
        s.sendall(garbage)
        assert closed_within(s), "swarmd kept a raft connection that sent garbage"
    finally:
        s.close()
    assert_serving(target, target.pid0)
    assert "malformed stream" in target.log_path.read_text(errors="replace")
