"""Trust boundary (issue 9): a certificate is worth what the store says its
node is now. A copy of a manager's certificate and key, taken before the
node was demoted and removed, must lose manager powers at demotion and
everything at removal, on every manager (including those that joined while
the node was a member and got it in their join-time seed list), on the
control API, the dispatcher, the CA and raft; its open connections are
closed; and each refusal leaves a WARN line with the peer's address."""
import contextlib
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import types

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT, wait_for
from test_managers import all_reachable, leader_of


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """Python stubs generated from proto/*.proto."""
    out = tmp_path_factory.mktemp("trust_stubs")
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto").glob("*.proto"))
    r = subprocess.run([sys.executable or "/usr/bin/python3", "-m", "grpc_tools.protoc",
                        "-I", "proto", f"--python_out={out}", f"--grpc_python_out={out}",
                        *protos], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"protoc failed: {r.stderr}"
    sys.path.insert(0, str(out))
    ns = types.SimpleNamespace()
    for name in ["objects", "control", "ca", "dispatcher"]:
        setattr(ns, name, __import__(f"{name}_pb2"))
        setattr(ns, name + "_grpc", __import__(f"{name}_pb2_grpc"))
    return ns


class Identity:
    """A certificate and key copied out of a node's state dir."""

    def __init__(self, node):
        certs = node.state_dir / "certificates"
        self.root = (certs / "swarm-root-ca.crt").read_bytes()
        self.cert = (certs / "swarm-node.crt").read_bytes()
        self.key = (certs / "swarm-node.key").read_bytes()
        c = x509.load_pem_x509_certificate(self.cert)
        self.node_id = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        self.ou = c.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        self.cluster_id = c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value

    def channel(self, node):
        creds = grpc.ssl_channel_credentials(root_certificates=self.root,
                                             private_key=self.key, certificate_chain=self.cert)
        return grpc.secure_channel(node.addr, creds,
                                   options=[("grpc.ssl_target_name_override", "swarm-manager")])

    def raft_connect(self, node):
        """A raw TLS connection offering ALPN swarm-raft, as a raft peer
        dials, with a preamble naming an address the peer made up."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(cadata=self.root.decode())
        key = node.dir / "copied.key"
        crt = node.dir / "copied.crt"
        key.write_bytes(self.key)
        crt.write_bytes(self.cert)
        ctx.load_cert_chain(str(crt), str(key))
        ctx.set_alpn_protocols(["swarm-raft"])
        raw = socket.create_connection((node.ip, 2377), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="swarm-manager")
        assert s.selected_alpn_protocol() == "swarm-raft"
        addr = b"127.9.9.9:2377"
        s.sendall(b"SWRT\x01\x00" + struct.pack("<H", len(addr)) + addr)
        return s


def closed_by_server(sock, timeout):
    """True if the server ends the connection within `timeout` seconds;
    False if it is still open then."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (socket.timeout, TimeoutError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


class Watch:
    """Connectivity of a grpc channel: did its connection ever drop after
    it was up?"""

    def __init__(self, channel):
        self.states = []
        self.dropped = threading.Event()
        self.lock = threading.Lock()
        channel.subscribe(self._cb, try_to_connect=False)

    def _cb(self, state):
        with self.lock:
            if self.states and self.states[-1] == grpc.ChannelConnectivity.READY and \
                    state != grpc.ChannelConnectivity.READY:
                self.dropped.set()
            self.states.append(state)


def code_of(fn, req, **kw):
    try:
        fn(req, timeout=10, **kw)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def csr_pem():
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])).sign(key, hashes.SHA256())
    return req.public_bytes(serialization.Encoding.PEM)


def renew(pb, ch):
    return pb.ca_grpc.CAStub(ch).IssueNodeCertificate(
        pb.ca.IssueNodeCertificateRequest(csr=csr_pem()), timeout=10)


def first_session_message(pb, ch):
    """The first message of a dispatcher session (the leader's, or a
    follower's redirect), or the error code."""
    call = pb.dispatcher_grpc.DispatcherStub(ch).Session(
        pb.dispatcher.SessionRequest(), timeout=10)
    try:
        msg = next(call)
        call.cancel()
        return msg
    except grpc.RpcError as e:
        return e.code()


def status_row(node, name):
    return next((r for r in node.node_rows() if r["HOSTNAME"] == name), None)


def log_has(node, text):
    return text in node.log_path.read_text(errors="replace")


@pytest.fixture
def cluster(swarm):
    """m1 inits; the victim v joins as a manager; m2 and m3 join while v is a
    member (v is in their join-time seed lists); m3 joins through m2, a
    follower, which forwards the join to the leader."""
    nodes = [swarm.node(name).start() for name in ["m1", "v", "m2", "m3"]]
    m1, v, m2, m3 = nodes
    m1.ok("swarm", "init", "--advertise-addr", m1.ip)
    token = m1.ok("swarm", "join-token", "-q", "manager").strip()
    for n in nodes[1:]:
        via = m2 if n is m3 else m1
        n.ok("swarm", "join", "--token", token, "--advertise-addr", n.ip, via.addr)
    wait_for(lambda: all_reachable(nodes), timeout=20, what="all managers reachable")
    return types.SimpleNamespace(v=v, managers=[m1, m2, m3], all=nodes)


@pytest.fixture
def closing():
    """Channels and calls a test opens, closed whatever happens (a channel
    left open keeps the interpreter from exiting)."""
    stack = contextlib.ExitStack()
    yield stack
    stack.close()


def test_copied_manager_cert_refused_after_demote_and_remove(cluster, pb, closing):
    v, managers = cluster.v, cluster.managers
    vname = v.name
    copy = Identity(v)
    assert copy.ou == "swarm-manager"
    leader = leader_of(cluster.all)
    assert leader is not None and leader is not v, "the victim must not lead"

    # While it is a manager, the copy is one everywhere, and a raft peer.
    chans = {m.name: closing.enter_context(copy.channel(m)) for m in managers}
    rafts = {}
    for m in managers:
        ch = chans[m.name]
        nodes = pb.control_grpc.ControlStub(ch).ListNodes(pb.control.ListNodesRequest(),
                                                          timeout=10).nodes
        assert len(nodes) == 4
        rafts[m.name] = copy.raft_connect(m)
        closing.callback(rafts[m.name].close)
        assert not closed_by_server(rafts[m.name], 1.0), f"{m.name} refused a current raft member"
    watches = {m.name: Watch(chans[m.name]) for m in managers}

    # Demote: manager powers go at once, even though the copy never renews.
    leader.ok("node", "demote", vname)
    # (A new connection: the leader is closing the copy's old ones.)
    code = code_of(pb.control_grpc.ControlStub(
        closing.enter_context(copy.channel(leader))).GetCluster, pb.control.GetClusterRequest())
    assert code == grpc.StatusCode.PERMISSION_DENIED, code
    for m in managers:
        fresh = closing.enter_context(copy.channel(m))
        wait_for(lambda: code_of(pb.control_grpc.ControlStub(fresh).GetCluster,
                                 pb.control.GetClusterRequest())
                 == grpc.StatusCode.PERMISSION_DENIED,
                 timeout=10, what=f"{m.name} refusing the demoted manager's certificate")
        # Its connections that were granted the manager role were closed.
        assert watches[m.name].dropped.wait(10), \
            f"{m.name} kept the demoted manager's connection open: {watches[m.name].states}"
    wait_for(lambda: status_row(leader, vname)["MANAGER STATUS"] == "", timeout=15,
             what="the victim out of raft")
    # Its raft connections, open since before the demotion, were closed.
    for m in managers:
        assert closed_by_server(rafts[m.name], 10), \
            f"{m.name} kept the demoted member's raft connection open"
        wait_for(lambda: log_has(m, f'closing the raft connection of node "{copy.node_id}"'),
                 timeout=5, what=f"{m.name} closing the raft connection")

    # Still a worker: the dispatcher takes its session and the CA renews it,
    # as a worker, on every manager (followers forward the renewal).
    for m in managers:
        with copy.channel(m) as ch:
            first = first_session_message(pb, ch)
            assert not isinstance(first, grpc.StatusCode), (m.name, first)
            resp = renew(pb, ch)
            assert resp.role == pb.objects.NODE_ROLE_WORKER, (m.name, resp.role)
            assert resp.node_id == copy.node_id
            # A raft peer no more.
            s = copy.raft_connect(m)
            assert closed_by_server(s, 5), f"{m.name} accepted a demoted raft peer"
            s.close()

    # Connections granted the worker role are closed when the node is removed.
    wchans = {m.name: closing.enter_context(copy.channel(m)) for m in managers}
    for m in managers:
        pb.ca_grpc.CAStub(wchans[m.name]).GetRootCACertificate(
            pb.ca.GetRootCACertificateRequest(), timeout=10)
    wwatches = {m.name: Watch(wchans[m.name]) for m in managers}
    # The session the copy holds on the leader.
    session = pb.dispatcher_grpc.DispatcherStub(wchans[leader.name]).Session(
        pb.dispatcher.SessionRequest(), timeout=120)
    closing.callback(session.cancel)
    next(session)

    # The real node goes away; once it is Down it can be removed.
    v.kill()
    wait_for(lambda: status_row(leader, vname)["STATUS"] == "Down", timeout=20,
             what="the victim Down")
    leader.ok("node", "rm", vname)
    for m in managers:
        assert wwatches[m.name].dropped.wait(10), \
            f"{m.name} kept the removed node's connection open: {wwatches[m.name].states}"
    with pytest.raises(grpc.RpcError) as ei:
        for _ in session:
            pass
    assert ei.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED,
                               grpc.StatusCode.CANCELLED), ei.value

    # Removed: nothing at all, on every manager.
    for m in managers:
        with copy.channel(m) as ch:
            for fn, req in [
                (pb.control_grpc.ControlStub(ch).GetCluster, pb.control.GetClusterRequest()),
                (pb.control_grpc.ControlStub(ch).ListNodes, pb.control.ListNodesRequest()),
                (pb.ca_grpc.CAStub(ch).GetRootCACertificate,
                 pb.ca.GetRootCACertificateRequest()),
                (pb.ca_grpc.CAStub(ch).IssueNodeCertificate,
                 pb.ca.IssueNodeCertificateRequest(csr=csr_pem())),
            ]:
                code = code_of(fn, req)
                assert code == grpc.StatusCode.PERMISSION_DENIED, (m.name, fn, code)
            assert first_session_message(pb, ch) == grpc.StatusCode.PERMISSION_DENIED, m.name
        s = copy.raft_connect(m)
        assert closed_by_server(s, 5), f"{m.name} accepted a removed raft peer"
        s.close()

    # The revoked list in the cluster object names it.
    with grpc.insecure_channel("unix://" + str(leader.socket)) as ch:
        c = pb.control_grpc.ControlStub(ch).GetCluster(pb.control.GetClusterRequest(),
                                                      timeout=10).cluster
    assert copy.node_id in [r.node_id for r in c.revoked_certificates]

    # The swarm kept its leader and works.
    assert leader_of(managers) is leader
    leader.ok("node", "update", "--label-add", "after=1", leader.name)

    # Every manager logged the refusals at WARN, with the peer's address.
    for m in managers:
        wait_for(lambda: log_has(m, f"refusing certificate of node {copy.node_id} from 127."),
                 timeout=5, what=f"{m.name} audit line for the certificate")
        assert log_has(m, "WARN  raft: transport: refusing raft peer from 127."), m.name


def test_forwarded_identity_cannot_be_forged(cluster, pb):
    """Only a current manager may name another caller; the leader then
    authorizes the caller it names against its own store."""
    v, managers = cluster.v, cluster.managers
    leader = leader_of(cluster.all)
    vname = v.name
    victim = Identity(v)
    good = Identity(next(m for m in managers if m is not leader))
    leader.ok("node", "demote", vname)
    wait_for(lambda: status_row(leader, vname)["MANAGER STATUS"] == "", timeout=15,
             what="the victim out of raft")

    # A worker (the demoted copy) claiming to forward for the control socket.
    with victim.channel(leader) as ch:
        for origin in ["local;;;unix", f"manager;{good.node_id};{good.cluster_id};127.0.0.1:1"]:
            code = code_of(pb.control_grpc.ControlStub(ch).ListNodes, pb.control.ListNodesRequest(),
                           metadata=[("swarm-forwarded-for", origin)])
            assert code == grpc.StatusCode.PERMISSION_DENIED, (origin, code)
    # A current manager forwarding for the demoted node: refused as manager.
    with good.channel(leader) as ch:
        ctl = pb.control_grpc.ControlStub(ch)
        code = code_of(ctl.ListNodes, pb.control.ListNodesRequest(), metadata=[
            ("swarm-forwarded-for", f"manager;{victim.node_id};{victim.cluster_id};127.0.0.1:1")])
        assert code == grpc.StatusCode.PERMISSION_DENIED, code
        code = code_of(ctl.ListNodes, pb.control.ListNodesRequest(),
                       metadata=[("swarm-forwarded-for", "garbage")])
        assert code == grpc.StatusCode.INVALID_ARGUMENT, code
        # For itself, or for its control socket: fine.
        assert code_of(ctl.ListNodes, pb.control.ListNodesRequest(),
                       metadata=[("swarm-forwarded-for", "local;;;unix")]) == grpc.StatusCode.OK
    assert log_has(leader, "forwarded calls are accepted from managers only")


def self_signed(tmp_path, cn):
    """A key and certificate of a CA nobody trusts, claiming manager OU."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evilcluster"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "swarm-manager"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + __import__("datetime").timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_refused_joins_and_certificates_are_audited(swarm, pb, tmp_path):
    """Bad join tokens (also forwarded by a follower) and certificates of
    another CA leave WARN lines with the peer's address, rate-limited."""
    m1, m2 = swarm.node("m1").start(), swarm.node("m2").start()
    m1.ok("swarm", "init", "--advertise-addr", m1.ip)
    token = m1.ok("swarm", "join-token", "-q", "manager").strip()
    m2.ok("swarm", "join", "--token", token, "--advertise-addr", m2.ip, m1.addr)
    wait_for(lambda: all_reachable([m1, m2]), timeout=20, what="both managers reachable")
    leader = leader_of([m1, m2])
    follower = m2 if leader is m1 else m1
    follower_id = Identity(follower).node_id
    root = (m1.state_dir / "certificates" / "swarm-root-ca.crt").read_bytes()
    anon = grpc.ssl_channel_credentials(root_certificates=root)

    def bad_join(node):
        with grpc.secure_channel(node.addr, anon, options=[
                ("grpc.ssl_target_name_override", "swarm-manager")]) as ch:
            return code_of(pb.ca_grpc.CAStub(ch).IssueNodeCertificate,
                           pb.ca.IssueNodeCertificateRequest(csr=csr_pem(),
                                                             token="SWMTKN-1-bogus"))

    # Through the follower: the leader refuses and names the client and the
    # manager that forwarded it.
    assert bad_join(follower) == grpc.StatusCode.INVALID_ARGUMENT
    wait_for(lambda: log_has(leader, f" via manager {follower_id}: invalid join token"),
             timeout=5, what="audit line for a forwarded bad token")
    assert "WARN  ca: refusing join from 127." in leader.log_path.read_text()

    # A flood is rate-limited: some lines are dropped, then counted.
    for _ in range(30):
        assert bad_join(leader) == grpc.StatusCode.INVALID_ARGUMENT
    lines = [ln for ln in leader.log_path.read_text().splitlines()
             if "invalid join token" in ln]
    assert len(lines) < 31, len(lines)
    wait_for(lambda: bad_join(leader) and log_has(leader, "similar messages suppressed"),
             timeout=10, interval=0.2, what="the count of suppressed lines")

    # A client certificate of another CA: refused in the handshake, audited.
    cert, key = self_signed(tmp_path, follower_id)
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key,
                                         certificate_chain=cert)
    with grpc.secure_channel(leader.addr, creds, options=[
            ("grpc.ssl_target_name_override", "swarm-manager")]) as ch:
        code = code_of(pb.control_grpc.ControlStub(ch).ListNodes, pb.control.ListNodesRequest())
        assert code == grpc.StatusCode.UNAVAILABLE, code
    wait_for(lambda: log_has(leader, "WARN  api: refusing TLS connection from 127."),
             timeout=5, what="audit line for a foreign certificate")


def root_ca_of(node, pb):
    """The root CA certificate and key, read from the manager's store (the
    test stands in for someone who got hold of them)."""
    import sqlite3
    db = sqlite3.connect(f"file:{node.state_dir / 'store.db'}?mode=ro", uri=True)
    try:
        (blob,) = db.execute("SELECT data FROM clusters").fetchone()
    finally:
        db.close()
    c = pb.objects.Cluster()
    c.ParseFromString(blob)
    return (x509.load_pem_x509_certificate(c.root_ca.ca_cert_pem),
            serialization.load_pem_private_key(c.root_ca.ca_key_pem, None))


def issue(root_cert, root_key, cn, ou, org, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(root_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(root_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_expired_and_other_cluster_certificates_refused(manager, pb):
    """Certificates signed by the swarm's own root: one expired, one naming
    another cluster (O). Both are refused and audited; the node's own is
    served."""
    import datetime
    root_cert, root_key = root_ca_of(manager, pb)
    me = Identity(manager)
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    root = (manager.state_dir / "certificates" / "swarm-root-ca.crt").read_bytes()

    def call(cert, key):
        creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key,
                                             certificate_chain=cert)
        with grpc.secure_channel(manager.addr, creds, options=[
                ("grpc.ssl_target_name_override", "swarm-manager")]) as ch:
            return code_of(pb.control_grpc.ControlStub(ch).ListNodes,
                           pb.control.ListNodesRequest())

    expired = issue(root_cert, root_key, me.node_id, "swarm-manager", me.cluster_id,
                    now - 3 * day, now - day)
    assert call(*expired) == grpc.StatusCode.UNAVAILABLE
    wait_for(lambda: log_has(manager, "WARN  api: refusing TLS connection from 127.")
             and log_has(manager, "certificate has expired"),
             timeout=5, what="audit line for an expired certificate")

    other = issue(root_cert, root_key, me.node_id, "swarm-manager", "othercluster",
                  now - day, now + day)
    assert call(*other) == grpc.StatusCode.PERMISSION_DENIED
    wait_for(lambda: log_has(manager, 'certificate of another cluster ("othercluster")'),
             timeout=5, what="audit line for another cluster's certificate")

    # The same root, our cluster, a current node: fine.
    good = issue(root_cert, root_key, me.node_id, "swarm-manager", me.cluster_id,
                 now - day, now + day)
    assert call(*good) == grpc.StatusCode.OK
