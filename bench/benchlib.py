"""Shared helpers for the benchmarks: start a swarmd of our own on its own
127.0.X.Y with its own state dir, poll with deadlines, stop it by pid."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("SWARM_BUILD_DIR", ROOT / "build"))
SWARMD = BUILD / "daemon" / "swarmd"
SWARMCTL = BUILD / "cli" / "swarmctl"
PYTHON = "/usr/bin/python3"

# Addresses away from the ones the integration tests hand out (127.0.0.x,
# 127.0.1.x), spread by pid so two benchmark runs do not collide.
_next = [0]


def next_ip():
    _next[0] += 1
    return f"127.0.{200 + os.getpid() % 50}.{(_next[0] % 250) + 2}"


def wait_for(pred, timeout=10.0, interval=0.005, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = pred()
        if r:
            return r
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def wait_binary(path, timeout=60):
    """Other people may be rebuilding build/: a missing binary is retried."""
    wait_for(lambda: path.exists() and os.access(path, os.X_OK), timeout=timeout,
             interval=0.2, what=f"{path}")


class Daemon:
    def __init__(self, base=None, name="bench"):
        self.own_base = base is None
        self.base = Path(base or tempfile.mkdtemp(prefix="swarm-bench-"))
        self.name = name
        self.ip = next_ip()
        self.addr = f"{self.ip}:2377"
        self.state_dir = self.base / name / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.state_dir / "swarmd.sock"
        self.log_path = self.base / name / "swarmd.log"
        self.proc = None

    def start(self, *extra, wait=True):
        wait_binary(SWARMD)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(SWARMD), "--state-dir", str(self.state_dir), "--listen-addr", self.addr,
             "--hostname", self.name, *extra],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            wait_for(lambda: self.proc.poll() is not None or self.ctl("info").returncode == 0,
                     timeout=10, what="control socket")
            if self.proc.poll() is not None:
                raise SystemExit(f"swarmd exited: {self.log_tail()}")
        return self

    def ctl(self, *args, timeout=30):
        wait_binary(SWARMCTL)
        env = dict(os.environ)
        env.pop("SWARM_SOCKET", None)
        return subprocess.run([str(SWARMCTL), "--socket", str(self.socket), *args],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)

    def ok(self, *args):
        r = self.ctl(*args)
        if r.returncode != 0:
            raise SystemExit(f"swarmctl {' '.join(args)} failed: {r.stderr}\n{self.log_tail()}")
        return r.stdout

    def init(self):
        return self.ok("swarm", "init", "--advertise-addr", self.ip)

    def cert(self, name):
        return self.state_dir / "certificates" / name

    def log_tail(self, n=20):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def gen_stubs():
    """Python gRPC stubs from proto/*.proto in a temp dir, added to sys.path."""
    out = tempfile.mkdtemp(prefix="swarm-stubs-")
    protos = sorted(p.name for p in (ROOT / "proto").glob("*.proto"))
    subprocess.run([PYTHON, "-m", "grpc_tools.protoc", "-I", "proto", f"--python_out={out}",
                    f"--grpc_python_out={out}", *protos], cwd=ROOT, check=True)
    sys.path.insert(0, out)
    return out


def fig(name, value, unit, fmt="{:.3f}"):
    print(f"{name}: {fmt.format(value)} {unit}", flush=True)


def median(xs):
    return statistics.median(xs)


def percentile(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]
