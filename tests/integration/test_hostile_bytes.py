"""Hostile bytes against a real swarmd, on the unix control socket and on the
TLS cluster port: a broken preface, garbage frames, a wrong content-type, a
truncated message, an oversized message, HTTP/1.1 on the TLS port and a TLS
client that walks away mid-handshake. Each gets an error (gRPC status, HTTP
error status) or a closed connection within a bounded time, and the daemon
goes on serving with the same pid.

The HTTP/2 client here is hand-built (frames, a tiny HPACK encoder using
literals without indexing and no Huffman, and a small HPACK decoder for the
answers) so that we control every byte sent."""
import itertools
import os
import socket
import ssl
import struct
import time

import pytest

from conftest import Node, wait_for


# Other sessions of the harness (other people's runs on this machine) hand
# out 127.0.x.y in the same order; the nodes here take addresses from a range
# of their own, varied by pid, and skip any whose port 2377 is taken.
_own_ips = itertools.count(2)


def own_ip():
    for _ in range(1000):
        n = next(_own_ips)
        ip = f"127.{100 + os.getpid() % 100}.{n // 250}.{n % 250 + 2}"
        probe = socket.socket()
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((ip, 2377))
            return ip
        except OSError:
            continue
        finally:
            probe.close()
    raise AssertionError("no free loopback address")


def own_node(swarm, name):
    n = Node(swarm.base, name, own_ip())
    swarm.nodes.append(n)
    return n

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
IO_TIMEOUT = 10.0  # every exchange here ends within this

# ------------------------------------------------------------------ HPACK

STATIC_TABLE = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]
assert len(STATIC_TABLE) == 61

# RFC 7541 Appendix B: the code is canonical, so the lengths (symbols 0..256,
# 256 = EOS) define it.
_HUFF_LENGTHS = bytes.fromhex(
    "0d171c1c1c1c1c1c1c181e1c1c1e1c1c1c1c1c1c1c1c1e1c1c1c1c1c1c1c1c1c"
    "060a0a0c0d06080b0a0a080b080606060505050606060606060607080f060c0a"
    "0d06070707070707070707070707070707070707070707070807080d130d0e06"
    "0f05060506050606060507070606060506070605050607070707070f0b0e0d1c"
    "1416141416161617161717171717181718181617181717171715161716171718"
    "1615141616171715171616181516171715151615171617171416161617161617"
    "1a1a1413161716191a1a1a1b1b1a181913151a1b1b1a1b1815151a1a1c1b1b1b"
    "14181415161515171616191918181a171a1b1a1a1b1b1b1b1b1c1b1b1b1b1b1a"
    "1e")


def _huffman_table():
    order = sorted(range(257), key=lambda s: (_HUFF_LENGTHS[s], s))
    table, code, prev = {}, 0, _HUFF_LENGTHS[order[0]]
    for i, sym in enumerate(order):
        if i:
            code = (code + 1) << (_HUFF_LENGTHS[sym] - prev)
        prev = _HUFF_LENGTHS[sym]
        table[(prev, code)] = sym
    return table


HUFFMAN = _huffman_table()
assert HUFFMAN[(5, 0x3)] == ord("a") and HUFFMAN[(30, 0x3fffffff)] == 256


def huffman_decode(data):
    out, code, n = bytearray(), 0, 0
    for byte in data:
        for i in range(7, -1, -1):
            code, n = (code << 1) | ((byte >> i) & 1), n + 1
            sym = HUFFMAN.get((n, code))
            if sym is not None:
                if sym == 256:
                    raise ValueError("EOS in huffman string")
                out.append(sym)
                code, n = 0, 0
            elif n > 30:
                raise ValueError("bad huffman code")
    if n > 7 or code != (1 << n) - 1:
        raise ValueError("bad huffman padding")
    return bytes(out)


def hpack_int(value, prefix_bits, first=0):
    """Encode an integer with an N-bit prefix; `first` holds the high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_encode(headers):
    """Every header a literal without indexing, new name, no Huffman."""
    out = bytearray()
    for name, value in headers:
        name, value = name.encode(), value.encode()
        out += b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value
    return bytes(out)


class HpackDecoder:
    def __init__(self):
        self.dynamic = []  # newest first
        self.max_size = 4096

    def _size(self):
        return sum(32 + len(n) + len(v) for n, v in self.dynamic)

    def _evict(self):
        while self.dynamic and self._size() > self.max_size:
            self.dynamic.pop()

    def _entry(self, idx):
        if idx == 0:
            raise ValueError("index 0")
        if idx <= len(STATIC_TABLE):
            return STATIC_TABLE[idx - 1]
        return self.dynamic[idx - len(STATIC_TABLE) - 1]

    @staticmethod
    def _int(data, pos, prefix_bits):
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            b = data[pos]
            pos += 1
            value += (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, pos

    def _str(self, data, pos):
        huff = data[pos] & 0x80
        length, pos = self._int(data, pos, 7)
        raw = data[pos:pos + length]
        if len(raw) != length:
            raise ValueError("truncated string")
        return (huffman_decode(raw) if huff else raw).decode("latin-1"), pos + length

    def decode(self, data):
        headers, pos = [], 0
        while pos < len(data):
            b = data[pos]
            if b & 0x80:
                idx, pos = self._int(data, pos, 7)
                headers.append(self._entry(idx))
                continue
            if b & 0xE0 == 0x20:
                self.max_size, pos = self._int(data, pos, 5)
                self._evict()
                continue
            bits = 6 if b & 0x40 else 4
            idx, pos = self._int(data, pos, bits)
            if idx:
                name = self._entry(idx)[0]
            else:
                name, pos = self._str(data, pos)
            value, pos = self._str(data, pos)
            headers.append((name, value))
            if bits == 6:
                self.dynamic.insert(0, (name, value))
                self._evict()
        return headers


# ----------------------------------------------------------------- HTTP/2


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def grpc_headers(path, content_type="application/grpc", authority="swarm-manager",
                 scheme="http", extra=()):
    return [(":method", "POST"), (":scheme", scheme), (":path", path),
            (":authority", authority), ("content-type", content_type), ("te", "trailers"),
            *extra]


class Outcome:
    """What became of one stream (and of the connection)."""

    def __init__(self):
        self.header_blocks = []
        self.data = b""
        self.ended = False        # END_STREAM seen from the server
        self.rst = None           # RST_STREAM error code
        self.goaway = None        # GOAWAY error code
        self.closed = False       # EOF / reset on the connection

    def header(self, name):
        for block in self.header_blocks:
            for n, v in block:
                if n == name:
                    return v
        return None

    @property
    def http_status(self):
        s = self.header(":status")
        return int(s) if s is not None else None

    @property
    def grpc_status(self):
        s = self.header("grpc-status")
        return int(s) if s is not None else None

    def is_error(self):
        """An error the client can see: a non-zero grpc-status, an HTTP error
        status, or the connection closed (GOAWAY or EOF)."""
        return ((self.grpc_status not in (None, 0))
                or (self.http_status is not None and self.http_status != 200)
                or self.closed or self.goaway is not None)

    def __repr__(self):
        return (f"Outcome(headers={self.header_blocks}, data={len(self.data)}B, "
                f"ended={self.ended}, rst={self.rst}, goaway={self.goaway}, "
                f"closed={self.closed})")


class H2Conn:
    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(IO_TIMEOUT)
        self.buf = b""
        self.decoder = HpackDecoder()
        self.eof = False
        self.goaway = None
        self.next_stream = 1

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.eof = True
            return False

    def start(self):
        """Preface and an empty SETTINGS."""
        return self.send(PREFACE + frame(SETTINGS, 0, 0))

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from swarmd within the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise TimeoutError("no answer from swarmd within the deadline")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_frame(self, deadline):
        """(type, flags, stream, payload), or None at EOF."""
        while not self.eof and len(self.buf) < 9:
            self._fill(deadline)
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[:3], "big")
        while not self.eof and len(self.buf) < 9 + length:
            self._fill(deadline)
        if len(self.buf) < 9 + length:
            return None
        hdr, payload = self.buf[:9], self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        return hdr[3], hdr[4], int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF, payload

    def request(self, path, body=None, end_stream=True, content_type="application/grpc",
                scheme="http", extra=()):
        """Open a stream with HEADERS (and one DATA frame if body is given)."""
        sid = self.next_stream
        self.next_stream += 2
        block = hpack_encode(grpc_headers(path, content_type, scheme=scheme, extra=extra))
        flags = END_HEADERS | (END_STREAM if body is None and end_stream else 0)
        out = frame(HEADERS, flags, sid, block)
        if body is not None:
            out += frame(DATA, END_STREAM if end_stream else 0, sid, body)
        self.send(out)
        return sid

    def outcome(self, sid, timeout=IO_TIMEOUT):
        """Read until stream `sid` ends (END_STREAM or RST_STREAM) or the
        connection closes; fail if neither happens within `timeout`."""
        out = Outcome()
        deadline = time.monotonic() + timeout
        block, block_sid, block_end = b"", None, False
        while True:
            f = self.read_frame(deadline)
            if f is None:
                out.closed = True
                out.goaway = self.goaway
                return out
            ftype, flags, stream, payload = f
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                self.send(frame(PING, ACK, 0, payload))
            elif ftype == GOAWAY:
                self.goaway = int.from_bytes(payload[4:8], "big")
                out.goaway = self.goaway
            elif ftype in (HEADERS, PUSH_PROMISE):
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if ftype == HEADERS and flags & PRIORITY_FLAG:
                    payload = payload[5:]
                block, block_sid = payload, stream
                block_end = bool(flags & END_STREAM)
                if flags & END_HEADERS:
                    headers = self.decoder.decode(block)
                    if stream == sid:
                        out.header_blocks.append(headers)
                        if block_end:
                            out.ended = True
                            return out
            elif ftype == CONTINUATION:
                block += payload
                if flags & END_HEADERS:
                    headers = self.decoder.decode(block)
                    if block_sid == sid:
                        out.header_blocks.append(headers)
                        if block_end:
                            out.ended = True
                            return out
            elif ftype == DATA:
                if flags & PADDED:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if payload:
                    # Give the flow-control window back.
                    inc = struct.pack(">I", len(payload))
                    self.send(frame(WINDOW_UPDATE, 0, 0, inc) +
                              frame(WINDOW_UPDATE, 0, stream, inc))
                if stream == sid:
                    out.data += payload
                    if flags & END_STREAM:
                        out.ended = True
                        return out
            elif ftype == RST_STREAM and stream == sid:
                out.rst = int.from_bytes(payload[:4], "big")
                return out

    def drain_until_closed(self, timeout=IO_TIMEOUT):
        """Read until EOF; return the GOAWAY code if one came. Fails on a
        connection still open after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(deadline)
            if f is None:
                return self.goaway
            if f[0] == GOAWAY and f[2] == 0 and len(f[3]) >= 8:
                self.goaway = int.from_bytes(f[3][4:8], "big")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def grpc_msg(payload=b"", announced=None):
    n = len(payload) if announced is None else announced
    return b"\x00" + struct.pack(">I", n) + payload


LIST_NODES = "/swarm.Control/ListNodes"

# ------------------------------------------------------------- transports


def certs(node):
    d = node.state_dir / "certificates"
    return d / "swarm-root-ca.crt", d / "swarm-node.crt", d / "swarm-node.key"


def tls_context(node, alpn=("h2",), client_cert=True):
    ca, crt, key = certs(node)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(ca))
    if client_cert:
        ctx.load_cert_chain(str(crt), str(key))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def tcp_connect(node):
    return socket.create_connection((node.ip, 2377), timeout=IO_TIMEOUT)


def open_raw(node, transport):
    """A connected socket ready for HTTP/2 bytes: the unix control socket, or
    the cluster port after a TLS handshake with the node's own certificate."""
    if transport == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(IO_TIMEOUT)
        s.connect(str(node.socket))
        return s
    s = tls_context(node).wrap_socket(tcp_connect(node), server_hostname="swarm-manager")
    assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
    assert s.version() == "TLSv1.3", s.version()
    return s


def open_h2(node, transport):
    c = H2Conn(open_raw(node, transport))
    assert c.start(), "swarmd closed the connection on the preface"
    return c


def assert_serving(node, pid):
    """The same daemon still answers: swarmctl on the socket, and a fresh
    hand-built gRPC call on both doors."""
    assert node.alive(), f"swarmd died:\n{node.log_tail()}"
    assert node.proc.pid == pid
    rows = node.node_rows()
    assert len(rows) == 1 and rows[0]["MANAGER STATUS"] == "Leader", rows
    for transport in ("unix", "tls"):
        c = open_h2(node, transport)
        try:
            res = c.outcome(c.request(LIST_NODES, grpc_msg()))
        finally:
            c.close()
        assert res.http_status == 200 and res.grpc_status == 0 and res.data, (transport, res)


@pytest.fixture(params=["unix", "tls"])
def transport(request):
    return request.param


@pytest.fixture
def target(swarm):
    """One node, initialized as the swarm's only manager (like conftest's
    `manager`, on an address of this module's own)."""
    manager = own_node(swarm, "m1").start()
    manager.ok("swarm", "init", "--advertise-addr", manager.ip)
    wait_for(lambda: all(p.exists() for p in certs(manager)), timeout=10, what="certificates")
    manager.pid0 = manager.proc.pid
    # The hand-built client works at all before anything hostile is sent.
    assert_serving(manager, manager.pid0)
    return manager


def ok_after(node, conn, what):
    """When the connection survived a stream error, it must still carry a
    good call (the design promises stream errors do not kill connections)."""
    if conn.eof or conn.goaway is not None:
        return
    res = conn.outcome(conn.request(LIST_NODES, grpc_msg()))
    assert res.http_status == 200 and res.grpc_status == 0, (what, res, node.log_tail())


# ------------------------------------------------------------------ tests


def test_garbage_instead_of_preface(target, transport):
    s = open_raw(target, transport)
    c = H2Conn(s)
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(256))
        c.drain_until_closed()
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_short_garbage_then_close(target, transport):
    # Fewer bytes than a preface, then half-close: the server must notice the
    # end of the stream and close, not wait forever for the rest.
    s = open_raw(target, transport)
    c = H2Conn(s)
    try:
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX")
        s.shutdown(socket.SHUT_WR)  # over TLS: a TCP FIN without close_notify
        c.drain_until_closed()
    finally:
        c.close()
    assert_serving(target, target.pid0)


@pytest.mark.parametrize("garbage", [
    pytest.param(os.urandom(4096), id="random"),
    pytest.param(frame(DATA, 0, 0, b"x" * 16), id="data-on-stream-0"),
    pytest.param(frame(SETTINGS, 0, 1, b"\x00" * 6), id="settings-on-stream-1"),
    pytest.param(frame(HEADERS, END_HEADERS, 2, b"\xff\xff\xff\xff"), id="even-stream-bad-hpack"),
    pytest.param(frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff\xff"), id="bad-hpack"),
    pytest.param(b"\xff\xff\xff" + bytes([0x0, 0x0]) + b"\x00\x00\x00\x01" + b"x" * 100,
                 id="huge-length"),
    pytest.param(frame(WINDOW_UPDATE, 0, 0, b"\x7f\xff\xff\xff") * 2, id="window-overflow"),
    pytest.param(frame(CONTINUATION, END_HEADERS, 1, b"\x82"), id="stray-continuation"),
])
def test_garbage_frames_after_preface(target, transport, garbage):
    c = open_h2(target, transport)
    try:
        c.send(garbage)
        goaway = c.drain_until_closed()
        # A GOAWAY with an error code is the polite way; a bare close is allowed.
        assert goaway is None or goaway != 0, goaway
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_wrong_content_type(target, transport):
    c = open_h2(target, transport)
    try:
        sid = c.request(LIST_NODES, grpc_msg(), content_type="text/plain")
        res = c.outcome(sid)
        assert res.is_error(), res
        assert not res.closed, f"a bad content-type should not cost the connection: {res}"
        assert res.http_status == 415 or res.grpc_status not in (None, 0), res
        ok_after(target, c, "after text/plain")
    finally:
        c.close()
    assert_serving(target, target.pid0)


@pytest.mark.parametrize("path,extra,code", [
    pytest.param("/swarm.Control/NoSuchMethod", (), 12, id="unknown-method"),
    pytest.param(LIST_NODES, (("grpc-timeout", "soon"),), None, id="bad-timeout"),
    pytest.param(LIST_NODES, (("grpc-encoding", "gzip"),), 12, id="gzip"),
])
def test_bad_call_headers(target, transport, path, extra, code):
    c = open_h2(target, transport)
    try:
        res = c.outcome(c.request(path, grpc_msg(), extra=extra))
        assert res.is_error() and not res.closed, res
        if code is not None:
            assert res.grpc_status == code, res
        ok_after(target, c, f"after {path} {extra}")
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_truncated_message(target, transport):
    c = open_h2(target, transport)
    try:
        sid = c.request(LIST_NODES, grpc_msg(b"\x0a\x08id=nope", announced=100))
        res = c.outcome(sid)
        assert res.is_error(), res
        assert res.grpc_status not in (None, 0) or res.closed, res
        ok_after(target, c, "after a truncated message")
    finally:
        c.close()
    assert_serving(target, target.pid0)


@pytest.mark.parametrize("end_stream", [False, True], ids=["open", "end-stream"])
def test_oversized_message(target, transport, end_stream):
    c = open_h2(target, transport)
    try:
        # 64 MiB announced; only a little follows. The server must refuse on
        # the prefix, not wait for (or buffer) 64 MiB.
        sid = c.request(LIST_NODES, grpc_msg(b"\x00" * 1024, announced=64 << 20),
                        end_stream=end_stream)
        res = c.outcome(sid)
        assert res.is_error(), res
        if not res.closed:
            assert res.grpc_status == 8, f"expected RESOURCE_EXHAUSTED: {res}"
        ok_after(target, c, "after an oversized message")
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_rst_stream_on_unopened_stream(target, transport):
    """grpc-core clients reset a stream whose HEADERS they never sent when a
    call's deadline passes first (grpc-python 1.51, 1 us timeout). That must
    not end the connection and fail the client's other calls."""
    c = open_h2(target, transport)
    try:
        res = c.outcome(c.request(LIST_NODES, grpc_msg()))
        assert res.grpc_status == 0, res
        skipped = c.next_stream
        c.next_stream += 2
        c.send(frame(RST_STREAM, 0, skipped, struct.pack(">I", 8)))  # CANCEL
        res = c.outcome(c.request(LIST_NODES, grpc_msg()))
        assert res.http_status == 200 and res.grpc_status == 0 and res.data, res
        assert c.goaway is None and not c.eof, res
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_many_streams_then_vanish(target, transport):
    """Half-sent calls on many streams, then the client disappears."""
    c = open_h2(target, transport)
    for _ in range(50):
        c.request(LIST_NODES, grpc_msg(b"\x0a", announced=2), end_stream=False)
    c.close()
    assert_serving(target, target.pid0)


def test_tls_port_plain_http1(target):
    s = tcp_connect(target)
    c = H2Conn(s)
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: " + target.ip.encode() + b"\r\nConnection: close\r\n\r\n")
        deadline = time.monotonic() + IO_TIMEOUT
        got = b""
        while not c.eof:
            c._fill(deadline)
        got = c.buf
        # Whatever comes back (a TLS alert at most) is not an HTTP answer.
        assert not got.startswith(b"HTTP/"), got[:100]
    finally:
        c.close()
    assert_serving(target, target.pid0)


def test_tls_alpn_http1_only(target):
    """A TLS client that only offers http/1.1: refused in the handshake
    (no_application_protocol), or the h2 preface check fails."""
    ctx = tls_context(target, alpn=("http/1.1",))
    raw = tcp_connect(target)
    try:
        try:
            s = ctx.wrap_socket(raw, server_hostname="swarm-manager")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            s = None
        if s is not None:
            assert s.selected_alpn_protocol() in (None, "h2"), s.selected_alpn_protocol()
            c = H2Conn(s)
            c.send(b"GET / HTTP/1.1\r\nHost: swarm-manager\r\n\r\n")
            c.drain_until_closed()
    finally:
        raw.close()
    assert_serving(target, target.pid0)


def client_hello(node):
    """The bytes of a real TLS ClientHello to node, made without a socket."""
    ctx = tls_context(node)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="swarm-manager")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[0] == 0x16, hello[:5]  # handshake record
    return hello


@pytest.mark.parametrize("how", ["half-hello", "full-hello", "hello-then-junk"])
def test_tls_client_vanishes_mid_handshake(target, how):
    hello = client_hello(target)
    s = tcp_connect(target)
    try:
        if how == "half-hello":
            s.sendall(hello[:len(hello) // 2])
        elif how == "full-hello":
            s.sendall(hello)
            s.settimeout(IO_TIMEOUT)
            assert s.recv(5)[:1] == b"\x16", "no ServerHello"
        else:
            s.sendall(hello)
            s.sendall(b"\x16\x03\x03\x00\x10" + os.urandom(16))
        # While this connection hangs mid-handshake, others are served.
        assert_serving(target, target.pid0)
    finally:
        s.close()
    assert_serving(target, target.pid0)


def test_stalled_handshakes_do_not_block(target):
    """Many TLS connections that never finish the handshake."""
    hello = client_hello(target)
    socks = []
    try:
        for i in range(40):
            s = tcp_connect(target)
            if i % 2:
                s.sendall(hello[:10])
            socks.append(s)
        assert_serving(target, target.pid0)
    finally:
        for s in socks:
            s.close()
    assert_serving(target, target.pid0)
