#!/usr/bin/python3
"""Unary RPC round trips against one idle manager, one connection.

Python client (grpcio + stubs generated from proto/*.proto): sequential calls
for BENCH_SECONDS (default 3) and 16 in flight with futures, over the unix
socket (Swarm.Version, Control.GetCluster) and over mTLS with the node's own
certificate (Control.GetCluster). The Python client costs far more CPU per
call than the server does, so these figures bound the client, not swarmd.

Then, if build/bench/bench_rpc exists, the same with the project's C client
(api/), 1, 16 and 64 calls in flight: the honest figure for the server."""
import os
import subprocess
import threading
import time

import grpc

from benchlib import BUILD, Daemon, fig, gen_stubs, percentile

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
INFLIGHT = 16


def sequential(fn, req):
    lat = []
    end = time.perf_counter() + SECONDS
    t_start = time.perf_counter()
    while True:
        t = time.perf_counter()
        if t >= end:
            break
        fn(req, timeout=10)
        lat.append(time.perf_counter() - t)
    return len(lat) / (time.perf_counter() - t_start), lat


def concurrent(fn, req, inflight=INFLIGHT):
    lat = []
    lock = threading.Lock()
    done_all = threading.Event()
    state = {"running": 0, "errors": 0}
    end = time.perf_counter() + SECONDS

    def launch():
        t0 = time.perf_counter()
        fut = fn.future(req, timeout=10)
        fut.add_done_callback(lambda f, t0=t0: finished(f, t0))

    def finished(f, t0):
        now = time.perf_counter()
        again = False
        with lock:
            if f.exception() is None:
                lat.append(now - t0)
            else:
                state["errors"] += 1
            if now < end and state["errors"] < 100:
                again = True
            else:
                state["running"] -= 1
                if state["running"] == 0:
                    done_all.set()
        if again:
            launch()

    t_start = time.perf_counter()
    with lock:
        state["running"] = inflight
    for _ in range(inflight):
        launch()
    if not done_all.wait(SECONDS + 30):
        raise SystemExit("concurrent calls did not finish")
    wall = time.perf_counter() - t_start
    if state["errors"]:
        print(f"# {state['errors']} calls failed")
    return len(lat) / wall, lat


def report(name, rps, lat):
    fig(f"{name}_rps", rps, "calls/s", "{:.0f}")
    fig(f"{name}_p50", percentile(lat, 0.50) * 1000, "ms")
    fig(f"{name}_p99", percentile(lat, 0.99) * 1000, "ms")


def py_client(d):
    import control_pb2
    import control_pb2_grpc
    import swarm_pb2
    import swarm_pb2_grpc
    print("client: python grpcio " + grpc.__version__ + " (bounds the figures below)")
    cases = []
    unix = grpc.insecure_channel("unix://" + str(d.socket))
    cases.append(("py_unix_version", swarm_pb2_grpc.SwarmStub(unix).Version,
                  swarm_pb2.VersionRequest()))
    cases.append(("py_unix_getcluster", control_pb2_grpc.ControlStub(unix).GetCluster,
                  control_pb2.GetClusterRequest()))
    creds = grpc.ssl_channel_credentials(
        root_certificates=d.cert("swarm-root-ca.crt").read_bytes(),
        private_key=d.cert("swarm-node.key").read_bytes(),
        certificate_chain=d.cert("swarm-node.crt").read_bytes())
    tls = grpc.secure_channel(d.addr, creds,
                              options=[("grpc.ssl_target_name_override", "swarm-manager")])
    cases.append(("py_mtls_getcluster", control_pb2_grpc.ControlStub(tls).GetCluster,
                  control_pb2.GetClusterRequest()))
    for name, fn, req in cases:
        for _ in range(50):  # warm up: connect, handshake
            fn(req, timeout=10)
        report(name + "_seq", *sequential(fn, req))
        report(f"{name}_inflight{INFLIGHT}", *concurrent(fn, req))
    unix.close()
    tls.close()


def c_client(d):
    exe = BUILD / "bench" / "bench_rpc"
    if not exe.exists():
        print("# build/bench/bench_rpc not built; C client skipped")
        return
    print("client: C (api/ client, one HTTP/2 connection)")
    tls_args = ["--tls", d.addr, "--ca", str(d.cert("swarm-root-ca.crt")),
                "--cert", str(d.cert("swarm-node.crt")), "--key", str(d.cert("swarm-node.key"))]
    for label, args, method in [("c_unix_version", ["--unix", str(d.socket)], "version"),
                                ("c_unix_getcluster", ["--unix", str(d.socket)], "cluster"),
                                ("c_mtls_getcluster", tls_args, "cluster")]:
        for inflight in (1, 16, 64):
            r = subprocess.run([str(exe), *args, "--method", method, "--inflight", str(inflight),
                                "--seconds", str(SECONDS), "--name", f"{label}_inflight{inflight}"],
                               capture_output=True, text=True, timeout=SECONDS + 60)
            print(r.stdout, end="", flush=True)
            if r.returncode != 0:
                print(f"# bench_rpc failed ({r.returncode}): {r.stderr.strip()}")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    gen_stubs()
    with Daemon(name="rpc") as d:
        d.start()
        d.init()
        print(f"seconds_per_case: {SECONDS}")
        c0 = cpu_s(d.proc.pid)
        t0 = time.perf_counter()
        py_client(d)
        fig("swarmd_cpu_during_python_client", 100 * (cpu_s(d.proc.pid) - c0) /
            (time.perf_counter() - t0), "%", "{:.0f}")
        c0 = cpu_s(d.proc.pid)
        t0 = time.perf_counter()
        c_client(d)
        fig("swarmd_cpu_during_c_client", 100 * (cpu_s(d.proc.pid) - c0) /
            (time.perf_counter() - t0), "%", "{:.0f}")


if __name__ == "__main__":
    main()
