#!/usr/bin/python3
"""The visualizer's event delivery latency: on a one-node manager started
with --web-addr (simulated executor), the time from starting `swarmctl
service scale web=N` to (a) the first Server-Sent Events frame showing N
desired on a raw stream (one client's receive time), and (b) the header of the page, open in headless
chromium (when installed), showing "/N" (a MutationObserver in the page
stamps the moment). For reference, the time `swarmctl service scale -d`
itself takes (it returns once the change is committed). Medians (and p90)
over BENCH_VIZ_RUNS (20) scales, alternating N between 2 and 3."""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchlib import Daemon, SWARMCTL, fig, median, percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from browser import CHROMIUM, Browser  # noqa: E402

RUNS = int(os.environ.get("BENCH_VIZ_RUNS", "20"))
PORT = 8080

WATCH_JS = """window.benchSeen = new Promise((resolve) => {
  const want = '/%d';
  const obs = new MutationObserver(() => {
    for (const e of document.querySelectorAll('#services .replicas'))
      if (e.textContent.endsWith(want)) { obs.disconnect(); resolve(Date.now()); }
  });
  obs.observe(document.getElementById('services'),
              {childList: true, subtree: true, characterData: true});
}); true"""


class StreamWatcher(threading.Thread):
    """Reads the event stream; records when web's desired first reaches N."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection(addr, timeout=60)
        self.conn.request("GET", "/api/events")
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.lock = threading.Lock()
        self.want = None
        self.seen = None
        self.event = threading.Event()

    def expect(self, n):
        with self.lock:
            self.want, self.seen = n, None
            self.event.clear()

    def run(self):
        while True:
            line = self.resp.readline()  # chunked encoding undone
            if not line:
                return
            if not line.startswith(b"data: "):
                continue
            now = time.time()
            st = json.loads(line[6:])
            desired = {s["name"]: s["desired"] for s in st["services"]}
            with self.lock:
                if self.want is not None and self.seen is None and desired.get("web") == self.want:
                    self.seen = now
                    self.event.set()


def main():
    with Daemon(name="viz") as d:
        d.start("--executor", "sim", "--web-addr", f"{d.ip}:{PORT}")
        d.init()
        d.ok("service", "create", "-d", "--name", "web", "--replicas", "1", "sleep", "1000")
        addr = f"{d.ip}:{PORT}"
        stream = StreamWatcher(addr)
        stream.start()
        browser = Browser() if CHROMIUM else None
        if browser:
            browser.open(f"http://{addr}/")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and \
                    not browser.eval("!!(window.vizState && window.vizState.services.length)"):
                time.sleep(0.05)
        cmd, sse, page = [], [], []
        try:
            for i in range(RUNS):
                n = 2 + i % 2
                stream.expect(n)
                if browser:
                    browser.eval(WATCH_JS % n)
                t0 = time.time()
                r = subprocess.run([str(SWARMCTL), "--socket", str(d.socket), "service", "scale",
                                    "-d", f"web={n}"], capture_output=True, text=True, timeout=30)
                t1 = time.time()
                if r.returncode != 0:
                    raise SystemExit(f"scale failed: {r.stderr}")
                if not stream.event.wait(10):
                    raise SystemExit("the stream never showed the scale")
                cmd.append(t1 - t0)
                sse.append(stream.seen - t0)
                if browser:
                    seen = browser.call("Runtime.evaluate",
                                        {"expression": "window.benchSeen", "awaitPromise": True,
                                         "returnByValue": True}, session=True)
                    page.append(seen["result"]["value"] / 1000.0 - t0)
                time.sleep(0.2)
        finally:
            if browser:
                browser.close()
    fig("viz_scale_command_median", median(cmd) * 1000, "ms", "{:.1f}")
    fig("viz_scale_to_sse_frame_median", median(sse) * 1000, "ms", "{:.1f}")
    fig("viz_scale_to_sse_frame_p90", percentile(sse, 0.9) * 1000, "ms", "{:.1f}")
    if page:
        fig("viz_scale_to_page_median", median(page) * 1000, "ms", "{:.1f}")
        fig("viz_scale_to_page_p90", percentile(page, 0.9) * 1000, "ms", "{:.1f}")
    else:
        print("viz_scale_to_page: skipped (chromium is not installed)")
    fig("viz_runs", RUNS, "scales", "{:d}")


if __name__ == "__main__":
    main()
