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
    tls_context, assert_serving, PREFACE,
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


# --------------------------------------------------- a client that obeys
# HTTP/2 flow control (so that what the server lets in is what it granted)

SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE = 3, 4
RST, GOAWAY_T, PING_T, SETTINGS_T, WINDOW_UPDATE_T = 3, 7, 6, 4, 8
ACK = 0x1


class FlowConn(H2Conn):
    """Sends DATA only within the windows the server granted; records what
    became of each stream (grpc-status, RST_STREAM)."""

    def __init__(self, sock):
        super().__init__(sock)
        self.conn_window = 65535
        self.initial = 65535
        self.windows = {}
        self.status = {}   # sid -> grpc-status
        self.message = {}  # sid -> grpc-message
        self.reset = {}    # sid -> RST_STREAM code
        self.answered = set()  # sids whose response HEADERS came
        self.sent = 0

    def open_stream(self, path, extra=()):
        sid = self.next_stream
        self.next_stream += 2
        block = hpack_encode(grpc_headers(path, extra=extra))
        self.windows[sid] = self.initial
        self.send(frame(HEADERS, END_HEADERS, sid, block))
        return sid

    def ended(self, sid):
        return sid in self.status or sid in self.reset

    def poll(self, timeout=0.0):
        """Handle every frame that arrives within `timeout`."""
        import select
        deadline = time.monotonic() + timeout
        while not self.eof:
            if len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
                wait = max(0.0, deadline - time.monotonic())
                if not self.sock.pending() and not select.select([self.sock], [], [], wait)[0]:
                    return
                self._fill(time.monotonic() + IO_TIMEOUT)
                continue
            f = self.read_frame(time.monotonic() + IO_TIMEOUT)
            if f is None:
                return
            self.handle(*f)

    def handle(self, ftype, flags, sid, payload):
        if ftype == SETTINGS_T and not flags & ACK:
            for i in range(0, len(payload), 6):
                ident, value = struct.unpack(">HI", payload[i:i + 6])
                if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                    for s in self.windows:
                        self.windows[s] += value - self.initial
                    self.initial = value
            self.send(frame(SETTINGS_T, ACK, 0))
        elif ftype == WINDOW_UPDATE_T:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
            elif sid in self.windows:
                self.windows[sid] += inc
        elif ftype == PING_T and not flags & ACK:
            self.send(frame(PING_T, ACK, 0, payload))
        elif ftype == GOAWAY_T:
            self.goaway = int.from_bytes(payload[4:8], "big")
        elif ftype == RST:
            self.reset[sid] = int.from_bytes(payload[:4], "big")
        elif ftype == HEADERS:
            self.answered.add(sid)
            for n, v in self.decoder.decode(payload):
                if n == "grpc-status":
                    self.status[sid] = int(v)
                elif n == "grpc-message":
                    self.message[sid] = v
        elif ftype == DATA and payload:
            inc = struct.pack(">I", len(payload))
            self.send(frame(WINDOW_UPDATE_T, 0, 0, inc) + frame(WINDOW_UPDATE_T, 0, sid, inc))

    def push(self, sid, data, end_stream):
        """Send as much of `data` as the windows allow; returns the rest."""
        data = memoryview(data)
        while data and not self.eof and not self.ended(sid):
            n = min(len(data), 16384, self.conn_window, self.windows.get(sid, 0))
            if n <= 0:
                break
            last = n == len(data)
            self.send(frame(DATA, END_STREAM if last and end_stream else 0, sid, data[:n]))
            self.conn_window -= n
            self.windows[sid] -= n
            self.sent += n
            data = data[n:]
        return data


def anon_flow(node, source_ip=None):
    ctx = tls_context(node, client_cert=False)
    raw = socket.socket()
    if source_ip:
        raw.bind((source_ip, 0))
    raw.settimeout(IO_TIMEOUT)
    raw.connect((node.ip, 2377))
    c = FlowConn(ctx.wrap_socket(raw, server_hostname="swarm-manager"))
    assert c.start()
    return c


def mtls_flow(node):
    c = FlowConn(tls_context(node).wrap_socket(tcp_connect(node), server_hostname="swarm-manager"))
    assert c.start()
    return c


def anon_root_ca(node):
    """One anonymous CA call on a fresh connection: the CA still answers."""
    c = anon_flow(node)
    try:
        sid = c.open_stream(CA_ROOT)
        c.push(sid, grpc_msg(), True)
        deadline = time.monotonic() + IO_TIMEOUT
        while not c.ended(sid) and not c.eof and time.monotonic() < deadline:
            c.poll(0.2)
        return c.status.get(sid)
    finally:
        c.close()


def source_ips(n):
    """Loopback addresses of this test's own to connect from (the per-address
    caps must not hit the harness's other clients, which come from 127.0.0.1)."""
    base = 200 + os.getpid() % 50
    return [f"127.{base}.{i // 250}.{i % 250 + 1}" for i in range(n)]


# ------------------------------------------------------------- API limits


def test_large_anonymous_message_refused(target):
    c = anon_flow(target)
    try:
        sid = c.open_stream("/swarm.CA/IssueNodeCertificate")
        rest = c.push(sid, grpc_msg(b"\x0a" + b"\x00" * (100 << 10)), True)
        deadline = time.monotonic() + IO_TIMEOUT
        while not c.ended(sid) and time.monotonic() < deadline:
            c.poll(0.2)
            rest = c.push(sid, rest, True)
        assert c.status.get(sid) == 8, (c.status, c.message, c.reset)  # RESOURCE_EXHAUSTED
        assert "exceeds the limit" in c.message.get(sid, "").replace("%20", " ")
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_slow_loris_anonymous_request(target):
    """First byte, then nothing: the stream ends with DEADLINE_EXCEEDED."""
    c = anon_flow(target)
    try:
        sid = c.open_stream(CA_ROOT)
        c.push(sid, b"\x00\x00\x00\x00\x10", False)  # a prefix announcing 16 bytes
        deadline = time.monotonic() + 30
        while not c.ended(sid) and not c.eof and time.monotonic() < deadline:
            c.poll(0.5)
        assert c.status.get(sid) == 4, (c.status, c.message, c.reset, c.eof)
        assert "not received in full" in c.message.get(sid, "").replace("%20", " ")
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_never_ending_anonymous_streams_keep_rss_bounded(target):
    """256 streams on one connection without certificate, each pushing a
    message announced at 4 MiB (the limit for certificate holders) and never
    ending it. Before the limits, the server buffered all of it."""
    pid = target.proc.pid
    before = rss_kib(pid)
    c = anon_flow(target)
    try:
        sids = [c.open_stream(CA_ROOT) for _ in range(256)]
        rest = {sid: struct.pack(">BI", 0, 4 << 20) + bytes((4 << 20) - 1) for sid in sids}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not c.eof and c.sent < (512 << 20):
            c.poll(0.01)
            for sid in sids:
                rest[sid] = c.push(sid, rest[sid], False)
        # Meanwhile the others are served.
        assert anon_root_ca(target) == 0
        assert_serving(target, target.pid0)
        grown = rss_kib(pid) - before
        assert grown < 64 << 10, f"RSS grew by {grown} KiB"
        # Streams over the limit were refused, the others told why.
        c.poll(1)
        assert len(c.reset) + len(c.status) >= 256 - 4, (len(c.reset), len(c.status))
        assert 8 in c.status.values(), c.status  # RESOURCE_EXHAUSTED
    finally:
        c.close()


def test_idle_anonymous_connections_capped_and_closed(target, swarm):
    """A thousand TLS connections without certificate from one address:
    beyond the per-address cap they are closed at once; the descriptors stay
    free for swarmctl and for a join; the rest go after the idle timeout."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    pid = target.proc.pid
    fds_before = open_fds(pid)
    src = source_ips(1)[0]
    ctx = tls_context(target, client_cert=False)
    conns = []
    try:
        for _ in range(1000):
            raw = socket.socket()
            raw.bind((src, 0))
            raw.settimeout(IO_TIMEOUT)
            raw.connect((target.ip, 2377))
            try:
                conns.append(ctx.wrap_socket(raw, server_hostname="swarm-manager"))
            except (ssl.SSLError, OSError):
                raw.close()
        # The server keeps at most the per-address cap of them.
        wait_for(lambda: open_fds(pid) < fds_before + 100, timeout=20,
                 what="connections over the cap closed")
        alive = [s for s in conns if not closed_within(s, 0.01)]
        assert 0 < len(alive) <= 32, len(alive)
        # The control socket and a join still work.
        assert_serving(target, target.pid0)
        w = own_node(swarm, "w1").start()
        token = target.ok("swarm", "join-token", "-q", "worker").strip()
        out = w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, target.addr)
        assert "joined a swarm as a worker" in out, out
        # The idle ones are closed after the idle timeout (30 s).
        wait_for(lambda: all(closed_within(s, 0.01) for s in alive), timeout=60, interval=1,
                 what="idle anonymous connections closed")
    finally:
        for s in conns:
            s.close()
    assert target.alive() and target.proc.pid == target.pid0
    assert len(target.node_rows()) == 2


def test_anonymous_total_cap_makes_room_for_newcomers(target, swarm):
    """Idle connections without certificate from many addresses, each under
    its address's cap, beyond the total of 512: the ones idle longest are
    closed to make room, so a join still gets in."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    pid = target.proc.pid
    fds_before = open_fds(pid)
    ctx = tls_context(target, client_cert=False)
    conns = []
    try:
        for i, src in enumerate(source_ips(20) * 28):  # 560 connections, 28 an address
            raw = socket.socket()
            raw.bind((src, 0))
            raw.settimeout(IO_TIMEOUT)
            raw.connect((target.ip, 2377))
            conns.append(ctx.wrap_socket(raw, server_hostname="swarm-manager"))
        wait_for(lambda: open_fds(pid) <= fds_before + 512 + 20, timeout=20,
                 what="at most 512 anonymous connections kept")
        # The first ones (idle longest) went; the last ones are still there.
        assert closed_within(conns[0], 1), "the oldest idle connection was kept"
        assert not closed_within(conns[-1], 0.2), "the newest connection was closed"
        w = own_node(swarm, "w1").start()
        token = target.ok("swarm", "join-token", "-q", "worker").strip()
        out = w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, target.addr)
        assert "joined a swarm as a worker" in out, out
    finally:
        for s in conns:
            s.close()
    assert target.alive() and target.proc.pid == target.pid0


def test_unknown_field_flood_leader_keeps_leadership(swarm):
    """40 requests of 4 MiB, each 1.4 million unknown protobuf fields, sent to
    the leader as fast as it takes them: each is refused with
    INVALID_ARGUMENT before protobuf-c builds its fields, the leader stays
    leader, and other calls are answered meanwhile."""
    import threading
    m1 = own_node(swarm, "m1").start()
    m1.ok("swarm", "init", "--advertise-addr", m1.ip)
    token = m1.ok("swarm", "join-token", "-q", "manager").strip()
    others = []
    for name in ("m2", "m3"):
        m = own_node(swarm, name).start()
        m.ok("swarm", "join", "--token", token, "--advertise-addr", m.ip, m1.addr)
        others.append(m)

    def leader_is_m1():
        rows = m1.node_rows()
        return (len(rows) == 3 and all(r["MANAGER STATUS"] in ("Leader", "Reachable")
                                       for r in rows)
                and [r["HOSTNAME"] for r in rows if r["MANAGER STATUS"] == "Leader"] == ["m1"])
    wait_for(leader_is_m1, timeout=30, what="three managers, m1 leading")
    wait_for(lambda: all(p.exists() for p in certs(m1)), timeout=10, what="certificates")

    body = grpc_msg(b"\xa0\x06\x01" * 1_390_000)  # field 100 = 1, 1.39 M times
    assert len(body) <= (4 << 20) + 5
    c = mtls_flow(m1)
    sids = [c.open_stream(LIST_NODES) for _ in range(40)]
    rest = {sid: body for sid in sids}
    failure = []

    def flood():
        try:
            deadline = time.monotonic() + 120
            while (not all(c.ended(s) for s in sids) and not c.eof
                   and time.monotonic() < deadline):
                for sid in sids:
                    if rest[sid]:
                        rest[sid] = c.push(sid, rest[sid], True)
                c.poll(0.01)
        except Exception as e:  # reported by the main thread
            failure.append(e)

    t = threading.Thread(target=flood)
    t.start()
    try:
        # Other calls are answered while the flood goes on.
        answered = 0
        while t.is_alive() and answered < 5:
            for m in (m1, *others):
                assert m.ctl("node", "ls", timeout=30).returncode == 0
            answered += 1
        assert answered > 0
    finally:
        t.join(timeout=150)
        c.close()
    assert not t.is_alive() and not failure, failure
    assert [c.status.get(s) for s in sids] == [3] * 40, (c.status, c.reset, c.eof)
    assert "unknown fields" in c.message[sids[0]].replace("%20", " ")
    assert m1.alive()
    assert leader_is_m1(), m1.node_rows()


def test_raft_connections_bounded(target):
    """Raft connections leave the RPC server's count; the transport bounds
    them itself (64 inbound at once) and raft goes on."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    conns = []
    try:
        for _ in range(80):
            conns.append(raft_conn(target))
        closed = set()

        def enough_closed():
            closed.update(i for i, s in enumerate(conns) if i not in closed and closed_within(s, 0.01))
            return len(closed) >= 80 - 64
        wait_for(enough_closed, timeout=10, interval=0.2, what="raft connections over 64 closed")
        assert "too many raft connections" in target.log_path.read_text(errors="replace")
    finally:
        for s in conns:
            s.close()
    assert_serving(target, target.pid0)


# ------------------------------------------------ responses nobody takes

LIST_SERVICES = "/swarm.Control/ListServices"
RESP_BUDGET = 32 << 20      # API_PEER_RESP_BUDGET
ENHANCE_YOUR_CALM = 0xb


def stalled_flow(node, window):
    """A connection with the node's own certificate whose SETTINGS grant
    `window` bytes to each stream (and as much to the connection)."""
    c = FlowConn(tls_context(node).wrap_socket(tcp_connect(node), server_hostname="swarm-manager"))
    settings = struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, window)
    out = PREFACE + frame(SETTINGS_T, 0, 0, settings)
    if window > 65535:
        out += frame(WINDOW_UPDATE_T, 0, 0, struct.pack(">I", window - 65535))
    assert c.send(out)
    return c


@pytest.fixture
def no_quarantine(monkeypatch):
    """Under a sanitizer build ASan keeps freed memory in its quarantine
    (256 MB), which counts in RSS: the bound is about what swarmd holds."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(filter(None, [opts, "quarantine_size_mb=0"])))


def test_responses_nobody_takes_keep_rss_bounded(no_quarantine, target):
    """A certificate holder asks for many pages of about 1 MiB each and takes
    none of them: one connection grants windows of 2 GiB and never reads its
    socket, two grant no window at all. Before the response budget the
    server queued all of it (~300 MiB); now each connection holds at most
    its budget, the streams holding the most being reset
    (ENHANCE_YOUR_CALM), and everyone else is served meanwhile."""
    env = "PAD=" + "x" * 60000
    for i in range(20):
        target.ok("service", "create", "-d", "--name", f"big{i}", "--replicas", "0",
                  "--env", env, "sleep", "1000")
    pid = target.proc.pid
    before = rss_kib(pid)
    unread = stalled_flow(target, 0x7FFFFFFF)
    zero = [stalled_flow(target, 0) for _ in range(2)]
    try:
        for c in (unread, *zero):
            sids = [c.open_stream(LIST_SERVICES) for _ in range(100)]
            for sid in sids:
                c.push(sid, grpc_msg(), True)
        # Zero windows: nothing can be sent, so what is over the budget is
        # reset (reading the socket grants no window).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(len(c.reset) >= 60 or c.eof for c in zero):
            for c in zero:
                c.poll(0.1)
        for c in zero:
            assert not c.eof, "a connection within its budget was closed"
            assert len(c.reset) >= 60, (len(c.reset), len(c.status))
            assert set(c.reset.values()) == {ENHANCE_YOUR_CALM}, c.reset
        # Others are served meanwhile.
        assert_serving(target, target.pid0)
        rows = target.ok("service", "ls").splitlines()
        assert len(rows) == 21, rows
        grown = rss_kib(pid) - before
        print(f"RSS {before} KiB -> {before + grown} KiB (+{grown} KiB)")
        # Three connections at their budget, and room for the allocator.
        assert grown < 5 * (RESP_BUDGET >> 10), f"RSS grew by {grown} KiB"
        # The unread connection's streams over the budget were reset too.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not unread.eof and len(unread.reset) < 60:
            unread.poll(0.1)
        assert len(unread.reset) >= 60, (len(unread.reset), len(unread.status), unread.eof)
        assert set(unread.reset.values()) == {ENHANCE_YOUR_CALM}, unread.reset
        # The zero-window streams within the budget are still there: the
        # window opens, and they are answered. Every handler has answered
        # first (its HEADERS came, or its stream was reset): one that answers
        # while the window opens finds the budget taken by the data on its
        # way out and is reset, rightly (seen once under ASan).
        for c in zero:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not c.eof and \
                    not all(s in c.answered or s in c.reset for s in c.windows):
                c.poll(0.1)
            assert all(s in c.answered or s in c.reset for s in c.windows), \
                (len(c.answered), len(c.reset), len(c.windows))
        for c in zero:
            waiting = [s for s in c.windows if not c.ended(s)]
            assert waiting, "every stream was reset"
            c.send(frame(SETTINGS_T, 0, 0, struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 4 << 20))
                   + frame(WINDOW_UPDATE_T, 0, 0, struct.pack(">I", 64 << 20)))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not c.eof and not all(c.ended(s) for s in waiting):
                c.poll(0.1)
            assert [c.status.get(s) for s in waiting] == [0] * len(waiting), (c.status, c.reset)
    finally:
        for c in (unread, *zero):
            c.close()
    assert target.alive() and target.proc.pid == target.pid0
