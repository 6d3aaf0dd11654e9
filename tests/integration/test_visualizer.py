"""The visualizer (swarmd --web-addr): the page in Debian's headless
chromium on a 3-manager swarm (every node and running task shown, six
cards within 2 s of `service scale web=6`, a killed leader's column shows
Down while the page, served by a follower, goes on and the leader mark
moves; a screenshot is kept), and its HTTP side: a non-loopback address
without a token is refused, the token is checked on every request, the
event stream delivers a change after a scale, live clients are bounded,
a worker says it needs a manager and serves once promoted."""
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from browser import CHROMIUM, Browser
from conftest import ROOT, SWARMD, wait_for

WEB_PORT = 8080
SSE_MAX = 16  # webd.h's WEBD_SSE_MAX
ARTIFACTS = Path(os.environ.get("SWARM_ARTIFACTS_DIR", ROOT / "tests" / "artifacts"))
TOKEN = "visualizer-test-token-0123456789"

# What the page shows, read from its DOM (what a user sees, not the JSON).
PAGE_JS = """JSON.stringify({
  conn: document.getElementById('conn').textContent,
  message: document.getElementById('message').textContent,
  services: [...document.querySelectorAll('#services .service')].map(s => s.textContent),
  nodes: [...document.querySelectorAll('#nodes section.node')].map(n => ({
    hostname: n.dataset.hostname,
    leader: n.querySelector('h2 .leader') !== null,
    role: n.querySelector('.role').textContent,
    status: n.querySelector('.node-status').textContent,
    availability: n.querySelector('.availability').textContent,
    resources: n.querySelector('.resources').textContent,
    cards: [...n.querySelectorAll('.card')].map(c => ({
      name: c.querySelector('.name').textContent,
      image: c.querySelector('.image').textContent,
      state: c.querySelector('.state').textContent,
      color: getComputedStyle(c).backgroundColor}))}))})"""


def page(browser):
    try:
        return json.loads(browser.eval(PAGE_JS))
    except Exception:
        return None  # still loading


def web(node):
    return f"{node.ip}:{WEB_PORT}"


def start_managers(swarm, count=3, extra=()):
    nodes = [swarm.node(f"m{i + 1}") for i in range(count)]
    for n in nodes:
        n.start("--web-addr", web(n), *extra)
    first = nodes[0]
    first.ok("swarm", "init", "--advertise-addr", first.ip)
    token = first.ok("swarm", "join-token", "-q", "manager").strip()
    for n in nodes[1:]:
        n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, first.addr)
    return nodes


def cards(state):
    return [c for n in state["nodes"] for c in n["cards"]]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install-deps.sh)")
def test_page_in_chromium_follows_scale_and_a_leader_kill(swarm):
    m1, m2, m3 = start_managers(swarm)
    m1.ok("service", "create", "-d", "--name", "web", "--replicas", "3", "sleep", "1000")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "visualizer.png"
    if shot.exists():
        shot.unlink()
    with Browser(width=1200, height=700) as b:
        # m2 follows m1: it serves from its own store.
        b.open(f"http://{web(m2)}/")

        def all_shown():
            st = page(b)
            if not st or st["conn"] != "live":
                return None
            ok = sorted(n["hostname"] for n in st["nodes"]) == ["m1", "m2", "m3"] and \
                all(n["status"] == "Ready" for n in st["nodes"]) and \
                sum(c["state"] == "Running" for c in cards(st)) == 3
            return st if ok else None
        st = wait_for(all_shown, timeout=30, interval=0.1,
                      what="3 Ready nodes and 3 running tasks on the page")
        by_host = {n["hostname"]: n for n in st["nodes"]}
        assert by_host["m1"]["leader"] and not by_host["m2"]["leader"] and not by_host["m3"]["leader"]
        for n in st["nodes"]:
            assert n["role"] == "Manager" and n["availability"] == "Active"
            assert "CPUs" in n["resources"] and "iB" in n["resources"]
        assert st["services"] == ["web3/3"]
        assert sorted(c["name"] for c in cards(st)) == ["web.1", "web.2", "web.3"]
        assert {c["image"] for c in cards(st)} == {"sleep"}
        assert len({c["color"] for c in cards(st)}) == 1  # one service, one color

        # Pushed, not polled: six cards within the 2 s the issue names,
        # counted from the commit (-d: scale returns without waiting for
        # the tasks to run).
        m1.ok("service", "scale", "-d", "web=6")
        st = wait_for(lambda: (s := page(b)) and len(cards(s)) == 6 and s,
                      timeout=2, interval=0.05, what="six cards within 2 s of the scale")
        assert sorted(c["name"] for c in cards(st)) == [f"web.{i}" for i in range(1, 7)]
        wait_for(lambda: (s := page(b)) and s["services"] == ["web6/6"], timeout=30,
                 interval=0.1, what="web 6/6 in the header")
        b.screenshot(shot)

        # kill -9 the leader: m2's page goes on, m1 shows Down, the leader
        # mark moves to m2 or m3.
        m1.kill()

        def m1_down():
            s = page(b)
            if not s:
                return None
            h = {n["hostname"]: n for n in s["nodes"]}
            ok = h["m1"]["status"] == "Down" and not h["m1"]["leader"] and \
                (h["m2"]["leader"] or h["m3"]["leader"])
            return s if ok else None
        st = wait_for(m1_down, timeout=45, interval=0.2,
                      what="m1 Down and a new leader mark on the page")
        assert st["conn"] == "live"
        b.screenshot(ARTIFACTS / "visualizer-leader-killed.png")
    assert shot.stat().st_size > 1000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------- HTTP

def get(addr, path, headers=None, timeout=5):
    c = http.client.HTTPConnection(addr, timeout=timeout)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


class Stream:
    """A raw Server-Sent Events client: frames as (event, data)."""

    def __init__(self, addr, headers=None):
        host, port = addr.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.head = head.decode()
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.text = ""

    def _until(self, sep, timeout=10):
        deadline = time.monotonic() + timeout
        while sep not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        out, self.buf = self.buf.split(sep, 1)
        return out

    def frame(self, timeout=10):
        """The next frame with an event (keepalive comments skipped)."""
        while True:
            while "\n\n" not in self.text:
                if self.chunked:
                    size = int(self._until(b"\r\n", timeout), 16)
                    while len(self.buf) < size + 2:
                        self.buf += self.sock.recv(65536)
                    self.text += self.buf[:size].decode()
                    self.buf = self.buf[size + 2:]
                else:
                    self.text += self._until(b"\n\n", timeout).decode() + "\n\n"
            raw, self.text = self.text.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in raw.split("\n") if ": " in line)
            if "event" in fields:
                return fields["event"], fields.get("data", "")

    def close(self):
        self.sock.close()


def test_non_loopback_address_needs_a_token(swarm, tmp_path):
    node = swarm.node("m1")
    base = [str(SWARMD), "--state-dir", str(node.state_dir), "--listen-addr", node.addr]
    r = subprocess.run(base + ["--web-addr", "0.0.0.0:18080"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert "--web-addr 0.0.0.0:18080 is not a loopback address" in r.stderr
    assert "--web-token TOKEN" in r.stderr
    assert "--web-addr 127.0.0.1:PORT" in r.stderr  # how to keep it on loopback
    r = subprocess.run(base + ["--web-addr", "0.0.0.0:18080", "--web-token", "short"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "16 to 256 characters" in r.stderr
    r = subprocess.run(base + ["--web-token", TOKEN], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "--web-token needs --web-addr" in r.stderr
    r = subprocess.run(base + ["--web-addr", "nonsense"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0 and 'invalid --web-addr "nonsense": must be IP:PORT' in r.stderr
    missing = tmp_path / "no-such-token"
    r = subprocess.run(base + ["--web-addr", f"{node.ip}:18080", "--web-token-file", str(missing)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "--web-token-file" in r.stderr
    # Nothing was started or written.
    assert not (node.state_dir / "swarmd.sock").exists()


def test_token_is_checked_on_every_request(swarm, tmp_path):
    token_file = tmp_path / "web-token"
    token_file.write_text(TOKEN + "\n")
    m = swarm.node("m1")
    m.start("--web-addr", web(m), "--web-token-file", str(token_file))
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    addr = web(m)
    for path in ["/", "/api/state", "/api/events", "/nothing"]:
        status, _, body = get(addr, path)
        assert status == 401, path
        assert b"?token=TOKEN" in body
    assert get(addr, "/?token=wrong-token-0123456789")[0] == 401
    assert get(addr, "/", {"Cookie": "swarmd_web_token=wrong-token-0123456789"})[0] == 401
    assert get(addr, "/api/state", {"Authorization": "Bearer " + TOKEN[:-1]})[0] == 401
    # The token in the query: a redirect out of the address bar, and a cookie.
    status, headers, _ = get(addr, f"/?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"swarmd_web_token={TOKEN};") and "HttpOnly" in cookie
    status, headers, body = get(addr, "/", {"Cookie": f"swarmd_web_token={TOKEN}"})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    # One page, nothing fetched from elsewhere (and the browser told so).
    assert b"http://" not in body and b"https://" not in body and b" src=" not in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, _, body = get(addr, "/api/state", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    st = json.loads(body)
    assert st["manager"] and [n["hostname"] for n in st["nodes"]] == ["m1"]
    s = Stream(addr, {"Cookie": f"swarmd_web_token={TOKEN}"})
    assert s.status == 200 and "text/event-stream" in s.head
    assert s.frame()[0] == "state"
    s.close()
    # Read-only.
    c = http.client.HTTPConnection(addr, timeout=5)
    c.request("POST", "/api/state", body=b"{}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert c.getresponse().status == 405
    c.close()


def test_event_stream_delivers_a_scale(swarm):
    m = swarm.node("m1")
    m.start("--web-addr", web(m))
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    m.ok("service", "create", "-d", "--name", "web", "--replicas", "1", "sleep", "1000")
    s = Stream(web(m))
    assert s.status == 200
    event, data = s.frame()
    assert event == "state"
    first = json.loads(data)
    assert first["manager"] and [sv["name"] for sv in first["services"]] == ["web"]
    m.ok("service", "scale", "web=4")

    def desired_four():
        ev, d = s.frame(timeout=10)
        sv = json.loads(d)["services"]
        return ev == "state" and sv and sv[0]["desired"] == 4
    wait_for(desired_four, timeout=10, interval=0, what="a state frame with web desired 4")

    def four_running():
        ev, d = s.frame(timeout=10)
        st = json.loads(d)
        return st["services"][0]["running"] == 4 and len(st["tasks"]) == 4
    wait_for(four_running, timeout=30, interval=0, what="a state frame with 4 running tasks")
    s.close()


def test_live_clients_are_bounded(swarm):
    m = swarm.node("m1")
    m.start("--web-addr", web(m))
    m.ok("swarm", "init", "--advertise-addr", m.ip)
    streams = [Stream(web(m)) for _ in range(SSE_MAX)]
    for s in streams:
        assert s.status == 200 and s.frame()[0] == "state"
    status, _, body = get(web(m), "/api/events")
    assert status == 503 and b"too many live clients (at most 16)" in body
    # The page and the snapshot still load.
    assert get(web(m), "/")[0] == 200
    assert get(web(m), "/api/state")[0] == 200
    # One leaves: a new one gets in (the server notices the close on its
    # next write to that stream: a state change or a keepalive).
    streams.pop().close()
    m.ok("service", "create", "-d", "--name", "poke", "sleep", "1000")

    def admitted():
        s = Stream(web(m))
        if s.status == 200:
            return s
        s.close()
        return None
    late = wait_for(admitted, timeout=15, interval=0.2, what="a stream admitted after one left")
    assert late.frame()[0] == "state"
    # SIGTERM with every stream open (most of them suspended, waiting for
    # a change): a clean exit that ends them all.
    assert m.stop() == 0
    for s in streams + [late]:
        with pytest.raises(EOFError):
            while True:
                s.frame(timeout=5)
        s.close()


def test_worker_needs_a_manager_and_serves_once_promoted(swarm):
    m1 = swarm.node("m1").start()
    w1 = swarm.node("w1")
    w1.start("--web-addr", web(w1))
    state = json.loads(get(web(w1), "/api/state")[2])
    assert not state["manager"] and "swarm init" in state["message"]
    m1.ok("swarm", "init", "--advertise-addr", m1.ip)
    token = m1.ok("swarm", "join-token", "-q", "worker").strip()
    w1.ok("swarm", "join", "--token", token, "--advertise-addr", w1.ip, m1.addr)
    state = json.loads(get(web(w1), "/api/state")[2])
    assert not state["manager"]
    assert state["message"].startswith("This node is not a swarm manager. Worker nodes can't")
    m1.ok("node", "promote", "w1")

    def serves():
        st = json.loads(get(web(w1), "/api/state")[2])
        return st["manager"] and sorted(n["hostname"] for n in st["nodes"]) == ["m1", "w1"]
    wait_for(serves, timeout=30, interval=0.2, what="the promoted node serving the swarm")
