"""What the networking tests run inside their tasks (as a process image:
`/usr/bin/python3 netprobe.py ...`). Standard library only.

  serve PORT OUTDIR LABEL
      An HTTP server on 0.0.0.0:PORT that answers every GET with
      "HOSTNAME ADDR" (the task's hostname and the address the connection
      came in on). At start it writes OUTDIR/serve-LABEL-HOSTNAME.json with
      its hostname and its IPv4 addresses (other than loopback), so the test
      knows each task's address without asking anyone.

  probe OUT JOBS_JSON
      Forever, every half second: run each job and write the results, as
      one JSON object keyed by the job's index, to OUT (atomically, by
      rename), so the test can poll for a state with a deadline. Jobs:
        ["resolve", NAME]          sorted IPv4 addresses of NAME, or "error: ..."
        ["fetch", URL, N]          N GETs of URL (new connection each): the
                                   sorted set of bodies, or "error: ..." entries
        ["connect", IP, PORT]      "ok" or "error: ..." (TCP, 1 s timeout)

  Measuring (bench/bench_network.py):
  tcpsink PORT [OUTDIR LABEL]
      A TCP server: each connection's first byte says what it wants: "e"
      echo one byte back (connect latency), "s" read to EOF then answer
      the byte count (throughput). Announces itself as serve does.
  tcpbench HOST PORT MIB RUNS CONNECTS OUT [stay]
      MIB MiB sent RUNS times (median MiB/s) and CONNECTS connect+echo
      round trips (median and p90 microseconds), as JSON in OUT.
  dnsbench NAME COUNT OUT [stay]
      COUNT lookups of NAME through the resolver (median and p90
      microseconds), as JSON in OUT.
  With `stay` (run as a task) they then sleep until stopped, so that the
  task is not restarted and measured again.
"""
import json
import os
import socket
import sys
import time
import urllib.request


def addresses():
    """This sandbox's IPv4 addresses (not loopback), from /proc/net/fib_trie
    (no tool needed): the LOCAL entries."""
    found = set()
    try:
        with open("/proc/net/fib_trie") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for i, line in enumerate(lines):
        if "/32 host LOCAL" in line and i > 0:
            ip = lines[i - 1].split()[-1]
            if not ip.startswith("127."):
                found.add(ip)
    return sorted(found)


def serve(port, outdir, label):
    import http.server

    host = socket.gethostname()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{host} {self.connection.getsockname()[0]}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    announce(outdir, label, port)
    srv.serve_forever()


def run_job(job):
    kind = job[0]
    if kind == "resolve":
        try:
            infos = socket.getaddrinfo(job[1], None, socket.AF_INET, socket.SOCK_STREAM)
            return sorted({i[4][0] for i in infos})
        except OSError as e:
            return f"error: {e}"
    if kind == "fetch":
        bodies = set()
        for _ in range(job[2]):
            try:
                with urllib.request.urlopen(job[1], timeout=2) as r:
                    bodies.add(r.read().decode())
            except Exception as e:  # noqa: BLE001 - every failure is a result
                bodies.add(f"error: {e}")
        return sorted(bodies)
    if kind == "connect":
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((job[1], int(job[2])))
            return "ok"
        except OSError as e:
            return f"error: {e}"
        finally:
            s.close()
    return f"error: unknown job {kind}"


def announce(outdir, label, port):
    host = socket.gethostname()
    tmp = os.path.join(outdir, f".serve-{label}-{host}.tmp")
    with open(tmp, "w") as f:
        json.dump({"hostname": host, "addrs": addresses(), "port": port,
                   "slot": os.environ.get("SWARM_TASK_SLOT", "")}, f)
    os.rename(tmp, os.path.join(outdir, f"serve-{label}-{host}.json"))


def tcpsink(port, outdir=None, label=None):
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            c = self.request
            what = c.recv(1)
            if what == b"e":
                c.sendall(b"e")
                return
            n = 0
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                n += len(b)
            c.sendall(str(n).encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("0.0.0.0", port), Handler)
    if outdir is not None:
        announce(outdir, label, port)
    srv.serve_forever()


def write_json(out, d):
    with open(out + ".tmp", "w") as f:
        json.dump(d, f)
    os.rename(out + ".tmp", out)


def quantiles(xs):
    import statistics
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.9))]


def tcpbench(host, port, mib, runs, connects, out):
    chunk = b"x" * (1 << 20)
    rates = []
    for _ in range(runs):
        s = socket.create_connection((host, port), timeout=30)
        t0 = time.perf_counter()
        s.sendall(b"s")
        for _ in range(mib):
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        got = int(s.recv(64).decode())
        dt = time.perf_counter() - t0
        s.close()
        if got != mib << 20:
            sys.exit(f"sink counted {got} bytes, sent {mib << 20}")
        rates.append(mib / dt)
    lat = []
    for _ in range(connects):
        t0 = time.perf_counter()
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(b"e")
        s.recv(1)
        lat.append((time.perf_counter() - t0) * 1e6)
        s.close()
    med, p90 = quantiles(lat)
    import statistics
    write_json(out, {"mib_s": statistics.median(rates), "connect_us": med, "connect_p90_us": p90})


def dnsbench(name, count, out):
    lat = []
    for _ in range(count):
        t0 = time.perf_counter()
        socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        lat.append((time.perf_counter() - t0) * 1e6)
    med, p90 = quantiles(lat)
    write_json(out, {"lookup_us": med, "lookup_p90_us": p90})


def probe(out, jobs):
    tmp = out + ".tmp"
    while True:
        results = {"hostname": socket.gethostname(), "addrs": addresses(), "time": time.time()}
        for i, job in enumerate(jobs):
            results[str(i)] = run_job(job)
        with open(tmp, "w") as f:
            json.dump(results, f)
        os.rename(tmp, out)
        time.sleep(0.5)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "tcpsink":
        tcpsink(int(sys.argv[2]), *sys.argv[3:5])
    elif sys.argv[1] == "tcpbench":
        tcpbench(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                 int(sys.argv[6]), sys.argv[7])
        if sys.argv[8:] == ["stay"]:
            time.sleep(3600)
    elif sys.argv[1] == "dnsbench":
        dnsbench(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        if sys.argv[5:] == ["stay"]:
            time.sleep(3600)
    elif sys.argv[1] == "probe":
        probe(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
