"""Node certificates: --cert-expiry bounds, renewal at 50-80 % of the lifetime
with the wall clock moved forward (an LD_PRELOAD clock shim), the swarm past
the original expiry, `swarm ca` and `swarm ca --rotate` (root CA rotation on
3 managers and 2 workers while a service runs), a node that was down during
a rotation, and TLS Info in `node inspect --pretty`."""
import base64
import hashlib
import json
import os
import re
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import BUILD, wait_for
from test_managers import make_managers
from test_workers import join_worker, status_of

SHIM = BUILD / "tests" / "libclockshim.so"


def preload_clock_shim(monkeypatch, tmp_path):
    """Run the swarmd processes started next with the clock shim, their clock
    moved forward by the seconds written in the returned file (0 at first).
    Under a sanitizer build the shim comes before the sanitizer's runtime in
    the library list, which the runtime allows once told not to check it."""
    assert SHIM.exists(), f"{SHIM} not built"
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    monkeypatch.setenv("LD_PRELOAD", str(SHIM))
    monkeypatch.setenv("SWARM_CLOCK_OFFSET_FILE", str(offset))
    opts = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(filter(None, [opts, "verify_asan_link_order=0"])))
    return offset


MIN_EXPIRY = ("Error response from daemon: invalid certificate expiry: "
              "minimum certificate expiry time is 1h0m0s")
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----", re.S)


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def cert_times(node):
    """(expires, renewal) from `swarmctl info`, unix seconds."""
    info = node.ok("info")
    exp = re.search(r"^  Expires: (\S+)$", info, re.M)
    ren = re.search(r"^  Renewal: (\S+)$", info, re.M)
    assert exp and ren, info
    return parse_time(exp.group(1)), parse_time(ren.group(1))


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, text=True)


def root_of(node):
    return (node.state_dir / "certificates" / "swarm-root-ca.crt").read_text()


def verifies(node, root_pem, tmp_path):
    """Does the node's certificate (alone, no intermediates) chain to root_pem?"""
    ca = tmp_path / f"ca-{node.name}.pem"
    ca.write_text(root_pem)
    leaf = PEM_RE.search((node.state_dir / "certificates" / "swarm-node.crt").read_text()).group(0)
    r = openssl("verify", "-CAfile", str(ca), data=leaf + "\n")
    return r.returncode == 0


def pubkey_of(pem):
    r = openssl("x509", "-noout", "-pubkey", data=pem)
    assert r.returncode == 0, r.stderr
    body = "".join(l for l in r.stdout.splitlines() if "-----" not in l)
    return body


# ------------------------------------------------------------ expiry bounds

def test_cert_expiry_bounds_and_first_manager(swarm):
    m = swarm.node("m1").start()
    err = m.fails("swarm", "init", "--advertise-addr", m.ip, "--cert-expiry", "59m")
    assert err == MIN_EXPIRY, err
    assert "Swarm: inactive" in m.ok("info")
    err = m.fails("swarm", "init", "--advertise-addr", m.ip, "--cert-expiry", "100000h")
    assert "maximum certificate expiry time is 87600h0m0s" in err, err
    assert "Swarm: inactive" in m.ok("info")
    # The first manager's own certificate follows --cert-expiry.
    before = time.time()
    m.ok("swarm", "init", "--advertise-addr", m.ip, "--cert-expiry", "2h")
    expires, renewal = cert_times(m)
    assert before + 7200 - 5 <= expires <= time.time() + 7200 + 5, (before, expires)
    issued = expires - 7200
    assert issued + 0.5 * 7200 - 1 <= renewal <= issued + 0.8 * 7200 + 1
    # Updates are bounded the same way and change nothing when refused.
    assert m.fails("swarm", "update", "--cert-expiry", "30m") == MIN_EXPIRY
    assert "Expiry Duration: 2 hours" in m.ok("info")
    m.ok("swarm", "update", "--cert-expiry", "3h")
    assert "Expiry Duration: 3 hours" in m.ok("info")


# ------------------------------------------------------------------ swarm ca

def test_swarm_ca_shows_root_and_refuses_bad_input(manager, tmp_path):
    out = manager.ok("swarm", "ca")
    assert out.strip() == root_of(manager).strip()
    assert manager.fails("swarm", "ca", "--cert-expiry", "2h") == (
        "Error: `--cert-expiry` flag requires the `--rotate` flag to update the CA")
    cert = tmp_path / "ca.crt"
    cert.write_text(root_of(manager))
    assert "requires that a --ca-key flag" in manager.fails(
        "swarm", "ca", "--rotate", "--ca-cert", str(cert))
    garbage = tmp_path / "garbage"
    garbage.write_text("not a pem\n")
    assert "file contents must be in PEM format" in manager.fails(
        "swarm", "ca", "--rotate", "--ca-cert", str(garbage), "--ca-key", str(garbage))
    assert "no such file or directory" in manager.fails(
        "swarm", "ca", "--rotate", "--ca-cert", str(tmp_path / "absent"), "--ca-key",
        str(garbage)).lower()
    # A key that is not the certificate's: refused by the daemon, nothing changes.
    other = tmp_path / "other"
    other.mkdir()
    key = other / "ca.key"
    crt = other / "ca.crt"
    assert openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "30",
                   "-subj", "/CN=other-ca").returncode == 0
    key2 = other / "ca2.key"
    assert openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-out", str(key2)).returncode == 0
    err = manager.fails("swarm", "ca", "--rotate", "--ca-cert", str(crt), "--ca-key", str(key2))
    assert "the CA key does not match the CA certificate" in err, err
    assert manager.ok("swarm", "ca").strip() == root_of(manager).strip()


def test_rotation_to_a_given_root(manager, swarm, tmp_path):
    w = join_worker(swarm, manager)
    key = tmp_path / "ca.key"
    crt = tmp_path / "ca.crt"
    assert openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "3650",
                   "-subj", "/CN=my-own-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign").returncode == 0
    out = manager.ok("swarm", "ca", "--rotate", "--ca-cert", str(crt), "--ca-key", str(key),
                     timeout=90)
    new_root = crt.read_text().strip()
    assert out.strip().endswith(new_root), out
    for n in (manager, w):
        wait_for(lambda n=n: root_of(n).strip() == new_root, timeout=20, what=f"{n.name} root")
        assert verifies(n, new_root, tmp_path)
    assert manager.ok("swarm", "ca").strip() == new_root


# ------------------------------------------------------- node inspect TLS info

def test_node_inspect_pretty_shows_tls_info(manager, swarm):
    w = join_worker(swarm, manager)
    for ref in ("m1", "w1"):
        node = manager.inspect(ref)
        tls = wait_for(lambda ref=ref: manager.inspect(ref)["Description"].get("TLSInfo"),
                       timeout=10, what=f"{ref} TLS info")
        assert tls["TrustRoot"].strip() == root_of(manager).strip()
        pretty = manager.ok("node", "inspect", "--pretty", ref)
        assert "TLS Info:\n TrustRoot:\n" + tls["TrustRoot"] + "\n Issuer Subject:\t" in pretty
        assert f" Issuer Subject:\t{tls['CertIssuerSubject']}\n" in pretty
        assert f" Issuer Public Key:\t{tls['CertIssuerPublicKey']}\n" in pretty
        # The issuer is the root: its subject (DER) and key.
        der = base64.b64decode(tls["CertIssuerPublicKey"])
        assert base64.b64encode(der).decode() == pubkey_of(root_of(manager))
        assert node["ID"]


# ------------------------------------------------------------ root rotation

def test_rotation_three_managers_two_workers(swarm, tmp_path):
    managers = make_managers(swarm, 3)
    m1 = managers[0]
    workers = [join_worker(swarm, m1, f"w{i}") for i in (1, 2)]
    nodes = managers + workers
    old_root = m1.ok("swarm", "ca").strip()
    old_worker = m1.ok("swarm", "join-token", "-q", "worker").strip()
    old_manager = m1.ok("swarm", "join-token", "-q", "manager").strip()
    m1.ok("service", "create", "-d", "--name", "web", "--replicas", "5", "sleep", "1000")
    wait_for(lambda: m1.ok("service", "ls").split("\n")[1].split()[3] == "5/5", timeout=20,
             what="web 5/5")
    before = set(m1.ok("service", "ps", "-q", "-f", "desired-state=running", "web").split())
    assert len(before) == 5

    # The service keeps running throughout: poll while the rotation runs.
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            r = m1.ctl("service", "ls", timeout=10)
            if r.returncode == 0 and len(r.stdout.splitlines()) > 1:
                seen.append(r.stdout.splitlines()[1].split()[3])
            time.sleep(0.1)

    t = threading.Thread(target=watch)
    t.start()
    try:
        out = m1.ok("swarm", "ca", "--rotate", timeout=120)
    finally:
        stop.set()
        t.join()
    assert seen and all(s == "5/5" for s in seen), seen
    lines = out.splitlines()
    assert re.fullmatch(r"desired root digest: sha256:[0-9a-f]{64}", lines[0]), out
    assert "  rotated TLS certificates:  [" in out and "  rotated CA certificates:   [" in out
    # Without a terminal a line is printed when it changes: the last of each
    # kind says 5/5, and the new root follows the last change (which of the
    # two lines changed last depends on when the nodes reported).
    begin = lines.index("-----BEGIN CERTIFICATE-----")
    tls = [l for l in lines[:begin] if l.startswith("  rotated TLS certificates:  [")]
    cas = [l for l in lines[:begin] if l.startswith("  rotated CA certificates:   [")]
    assert tls[-1].endswith("=>] 5/5 nodes") and cas[-1].endswith("=>] 5/5 nodes"), out
    assert lines[begin - 1] in (tls[-1], cas[-1]), out
    new_root = PEM_RE.search(out).group(0)
    assert new_root != old_root and out.rstrip().endswith(new_root)
    # Docker's digest: of the desired root's PEM text.
    assert lines[0].split("sha256:")[1] == hashlib.sha256(
        m1.ok("swarm", "ca").encode()).hexdigest()

    # Every node: a certificate from the new root (which alone verifies it,
    # the old root alone does not), and the new root as its trust root.
    for n in nodes:
        wait_for(lambda n=n: root_of(n).strip() == new_root, timeout=20, what=f"{n.name} root")
        assert verifies(n, new_root, tmp_path), n.name
        assert not verifies(n, old_root, tmp_path), n.name
        tls = m1.inspect(n.name)["Description"]["TLSInfo"]
        assert tls["TrustRoot"].strip() == new_root
        assert tls["CertIssuerPublicKey"] == pubkey_of(new_root)
    # Same tasks, still running: nothing was restarted.
    after = set(m1.ok("service", "ps", "-q", "-f", "desired-state=running", "web").split())
    assert after == before
    assert all(r["STATUS"] == "Ready" for r in m1.node_rows())
    # New connections, Raft included, use the new certificates: a manager
    # restarted now rejoins the others (which never restarted), and writes
    # through it are forwarded to the leader.
    m3 = managers[2]
    m3.stop()
    m3.start()
    def managers_ok():
        return all(sorted(r["MANAGER STATUS"] for r in m.node_rows() if r["MANAGER STATUS"])
                   == ["Leader", "Reachable", "Reachable"] for m in managers)
    wait_for(managers_ok, timeout=20, what="m3 back in raft")
    m3.ok("node", "update", "--label-add", "after-rotation=1", "w1")
    assert m1.inspect("w1")["Spec"]["Labels"] == {"after-rotation": "1"}

    # New tokens with the new root's digest; the old ones are refused.
    new_worker = m1.ok("swarm", "join-token", "-q", "worker").strip()
    new_manager = m1.ok("swarm", "join-token", "-q", "manager").strip()
    assert new_worker != old_worker and new_manager != old_manager
    assert new_worker.split("-")[2] != old_worker.split("-")[2]
    late = swarm.node("late").start()
    err = late.fails("swarm", "join", "--token", old_worker, "--advertise-addr", late.ip, m1.addr)
    assert "remote CA does not match fingerprint" in err, err
    assert "Swarm: inactive" in late.ok("info")
    late.ok("swarm", "join", "--token", new_worker, "--advertise-addr", late.ip, m1.addr)
    wait_for(lambda: (status_of(m1, "late") or {}).get("STATUS") == "Ready", timeout=10,
             what="late Ready")
    assert verifies(late, new_root, tmp_path)


def test_node_down_during_rotation_is_told_to_rejoin(manager, swarm, tmp_path):
    w1 = join_worker(swarm, manager, "w1")
    w2 = join_worker(swarm, manager, "w2")
    w2.stop()
    wait_for(lambda: status_of(manager, "w2")["STATUS"] == "Down", timeout=15, what="w2 Down")
    out = manager.ok("swarm", "ca", "--rotate", timeout=90)
    assert "2/2 nodes" in out, out   # the down node does not hold the rotation up
    new_root = PEM_RE.search(out).group(0)
    assert verifies(w1, new_root, tmp_path) and not verifies(w2, new_root, tmp_path)
    # w2 comes back with a certificate from the dropped root: refused, and
    # told what to do.
    w2.start()
    info = wait_for(lambda: "no longer trusted" in w2.ok("info") and w2.ok("info"), timeout=30,
                    what="w2 told to rejoin")
    assert "its root CA was rotated while this node was away" in info, info
    assert "swarmctl swarm leave --force" in info and "join it again" in info
    assert status_of(manager, "w2")["STATUS"] == "Down"
    # Doing what it says works.
    w2.ok("swarm", "leave", "--force")
    token = manager.ok("swarm", "join-token", "-q", "worker").strip()
    w2.ok("swarm", "join", "--token", token, "--advertise-addr", w2.ip, manager.addr)
    wait_for(lambda: any(r["HOSTNAME"] == "w2" and r["STATUS"] == "Ready"
                         for r in manager.node_rows()), timeout=15, what="w2 rejoined")
    assert "no longer trusted" not in w2.ok("info")


# -------------------------------------------------- renewal, clock moved forward

def test_renewal_with_the_clock_moved_forward(swarm, tmp_path, monkeypatch):
    """Every node renews between 50 % and 80 % of its certificate's life,
    and the swarm keeps working past the original expiry (OpenSSL checks
    validity with the shifted clock too)."""
    offset = preload_clock_shim(monkeypatch, tmp_path)
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip, "--cert-expiry", "1h")
    w = join_worker(swarm, m, "w1")
    w2 = join_worker(swarm, m, "w2")
    nodes = (m, w, w2)
    first = {}
    for n in nodes:
        expires, renewal = wait_for(lambda n=n: cert_times(n), timeout=10, what="cert times")
        issued = expires - 3600
        assert abs(issued - time.time()) < 30, (n.name, issued)
        assert issued + 1800 <= renewal <= issued + 2880, (n.name, renewal - issued)
        first[n.name] = (expires, renewal)
    original = PEM_RE.search((w.state_dir / "certificates" / "swarm-node.crt").read_text()).group(0)
    m.ok("service", "create", "-d", "--name", "web", "--mode", "global", "sleep", "1000")
    wait_for(lambda: m.ok("service", "ls").split("\n")[1].split()[3] == "3/3", timeout=20,
             what="web on every node")

    # 25 minutes on: before 50 %, nothing is renewed.
    offset.write_text(str(25 * 60))
    time.sleep(1.5)  # the shim rereads the offset every 100 ms; nodes check at least every 10 s
    for n in nodes:
        assert cert_times(n) == first[n.name]

    # Past the latest renewal point (80 % = 48 minutes): every node renewed.
    offset.write_text(str(50 * 60))
    for n in nodes:
        wait_for(lambda n=n: cert_times(n)[0] > first[n.name][0] + 25 * 60, timeout=30,
                 what=f"{n.name} renewed")
        expires, renewal = cert_times(n)
        issued = expires - 3600
        assert issued + 1800 <= renewal <= issued + 2880
        assert first[n.name][1] <= time.time() + 50 * 60

    # Past the original expiry: old certificates would be refused now, the
    # renewed ones are not. A worker restarted now must connect afresh to a
    # manager serving the certificate it renewed without a restart ...
    offset.write_text(str(70 * 60))
    time.sleep(0.3)

    def sessions(node):
        return len(re.findall(r"agent: session \S+ with \S+ open", node.log_path.read_text()))
    # w2 restarted: a fresh client, to m1 serving the certificate it renewed
    # without a restart (server side).
    w2.stop()
    opened = sessions(w2)
    w2.start()
    wait_for(lambda: sessions(w2) > opened, timeout=30, what="w2's new session with m1")
    # m1 restarted: w1, never restarted, connects afresh with the
    # certificate it renewed live (client side).
    opened = sessions(w)
    m.stop()
    m.start()
    wait_for(lambda: sessions(w) > opened, timeout=30, what="w1's new session with m1")
    wait_for(lambda: all(r["STATUS"] == "Ready" for r in m.node_rows()), timeout=30,
             what="every node Ready")
    m.ok("service", "create", "-d", "--name", "after", "--mode", "global", "sleep", "999")
    wait_for(lambda: "after global 3/3" in " ".join(m.ok("service", "ls").split()),
             timeout=30, what="a new service on every node")
    assert all(r["STATUS"] == "Ready" for r in m.node_rows())
    # OpenSSL (here the CLI, under the same shim) sees the moved clock: the
    # worker's original certificate has expired, its renewed one has not.
    assert openssl("x509", "-noout", "-checkend", "0", data=original).returncode == 1
    current = PEM_RE.search((w.state_dir / "certificates" / "swarm-node.crt").read_text()).group(0)
    assert openssl("x509", "-noout", "-checkend", "0", data=current).returncode == 0


def test_rotate_quiet_and_detached(manager):
    first = manager.ok("swarm", "ca").strip()
    # -q: nothing printed, the rotation is over when it returns.
    assert manager.ok("swarm", "ca", "--rotate", "-q", timeout=60) == ""
    second = manager.ok("swarm", "ca").strip()
    assert second != first
    # -d: returns at once with the root still in force, the rotation goes on.
    out = manager.ok("swarm", "ca", "--rotate", "-d")
    assert PEM_RE.fullmatch(out.strip()), out
    third = wait_for(lambda: manager.ok("swarm", "ca").strip() not in (first, second) and
                     manager.ok("swarm", "ca").strip(), timeout=30, what="detached rotation")
    assert root_of(manager).strip() == third
    # --cert-expiry with --rotate applies to the certificates issued from now on.
    manager.ok("swarm", "ca", "--rotate", "--cert-expiry", "5h", "-q", timeout=60)
    assert "Expiry Duration: 5 hours" in manager.ok("info")
    wait_for(lambda: abs(cert_times(manager)[0] - time.time() - 5 * 3600) < 60, timeout=20,
             what="a 5 h certificate")


def test_renewal_retries_while_no_manager_answers(swarm, tmp_path, monkeypatch):
    offset = preload_clock_shim(monkeypatch, tmp_path)
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip, "--cert-expiry", "1h")
    w = join_worker(swarm, m, "w1")
    expires, _ = cert_times(w)
    m.stop()
    offset.write_text(str(50 * 60))  # past 80 %: due, but nobody answers
    wait_for(lambda: "certificate renewal failed (retrying)" in w.log_path.read_text(),
             timeout=30, what="a failed renewal attempt")
    wait_for(lambda: w.log_path.read_text().count("certificate renewal failed (retrying)") >= 2,
             timeout=30, what="a second attempt")
    assert cert_times(w)[0] == expires
    m.start()
    wait_for(lambda: cert_times(w)[0] > expires + 25 * 60, timeout=90, what="w1 renewed")
    wait_for(lambda: cert_times(m)[0] > expires + 25 * 60, timeout=30, what="m1 renewed")
    wait_for(lambda: status_of(m, "w1")["STATUS"] == "Ready", timeout=20, what="w1 Ready")


def test_node_with_a_hiccup_during_rotation_is_not_stranded(manager, swarm, tmp_path):
    import signal as sig
    w1 = join_worker(swarm, manager, "w1")
    old_root = manager.ok("swarm", "ca").strip()
    w1.proc.send_signal(sig.SIGSTOP)
    try:
        wait_for(lambda: status_of(manager, "w1")["STATUS"] == "Down", timeout=15,
                 what="w1 Down")
        manager.ok("swarm", "ca", "--rotate", "-d")
        time.sleep(1)
    finally:
        w1.proc.send_signal(sig.SIGCONT)
    # Back within the grace: it gets a certificate from the new root before
    # the old root is dropped, and stays in the swarm.
    wait_for(lambda: status_of(manager, "w1")["STATUS"] == "Ready", timeout=20, what="w1 Ready")
    new_root = wait_for(lambda: manager.ok("swarm", "ca").strip() != old_root and
                        manager.ok("swarm", "ca").strip(), timeout=30, what="rotation over")
    wait_for(lambda: root_of(w1).strip() == new_root, timeout=20, what="w1 trusts the new root")
    assert verifies(w1, new_root, tmp_path)
    assert "no longer trusted" not in w1.ok("info")
