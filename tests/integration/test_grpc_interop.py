"""The control API is real gRPC: a client nobody here wrote (Debian's grpcio,
with stubs generated from proto/*.proto at test time) drives swarmd over the
unix control socket and over mutual TLS on the cluster port."""
import itertools
import os
import socket
import subprocess
import sys
import types

import grpc
import pytest

from conftest import Node, ROOT, wait_for


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


PROTOS = ["objects", "control", "ca", "swarm"]  # the ones these tests use


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Python stubs generated from proto/*.proto into a temporary dir."""
    out = tmp_path_factory.mktemp("grpc_stubs")
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto").glob("*.proto"))
    r = subprocess.run([sys.executable or "/usr/bin/python3",
                        "-m", "grpc_tools.protoc", "-I", "proto",
                        f"--python_out={out}", f"--grpc_python_out={out}", *protos],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"protoc failed: {r.stderr}"
    sys.path.insert(0, str(out))
    ns = types.SimpleNamespace()
    for path in sorted(out.glob("*_pb2.py")):
        name = path.name[:-len("_pb2.py")]
        setattr(ns, name, __import__(f"{name}_pb2"))
        setattr(ns, name + "_grpc", __import__(f"{name}_pb2_grpc"))
    for name in PROTOS:
        assert hasattr(ns, name), f"no stubs for {name}.proto"
    return ns


def unix_channel(node):
    return grpc.insecure_channel("unix://" + str(node.socket))


def read(node, name):
    return (node.state_dir / "certificates" / name).read_bytes()


def tls_channel(node, cert=None, key=None):
    """A channel to node's cluster port, trusting the swarm's root CA, with
    the given client certificate (or none)."""
    creds = grpc.ssl_channel_credentials(root_certificates=read(node, "swarm-root-ca.crt"),
                                         private_key=key, certificate_chain=cert)
    return grpc.secure_channel(node.addr, creds,
                               options=[("grpc.ssl_target_name_override", "swarm-manager")])


def node_tls_channel(node):
    return tls_channel(node, cert=read(node, "swarm-node.crt"), key=read(node, "swarm-node.key"))


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, timeout=kw.pop("timeout", 10), **kw)
    return ei.value


def init_over_grpc(pb, node):
    with unix_channel(node) as ch:
        resp = pb.swarm_grpc.SwarmStub(ch).InitSwarm(
            pb.swarm.InitRequest(listen_addr=node.addr, advertise_addr=node.ip), timeout=30)
    assert len(resp.node_id) == 25, resp
    assert resp.worker_join_token.startswith("SWMTKN-1-"), resp
    assert resp.join_addr == node.addr, resp
    return resp


@pytest.fixture
def grpc_manager(swarm, pb):
    """A node initialized through the generated client, not swarmctl."""
    n = own_node(swarm, "m1").start()
    n.init_resp = init_over_grpc(pb, n)
    wait_for(lambda: (n.state_dir / "certificates" / "swarm-node.crt").exists(),
             timeout=10, what="node certificate")
    # The node's own session marks it Ready (a write of its own): wait for
    # it, so versions read below stay current.
    wait_for(lambda: n.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="node ready")
    return n


def test_info_inactive_over_unix(swarm, pb):
    n = own_node(swarm, "n1").start()
    with unix_channel(n) as ch:
        info = pb.swarm_grpc.SwarmStub(ch).Info(pb.swarm.InfoRequest(), timeout=10)
    assert info.state == pb.swarm.LOCAL_NODE_STATE_INACTIVE
    assert info.node_id == ""
    assert not info.is_manager


def update_node_rmw(pb, ctl, node_id, change, before_write=None, attempts=10):
    """Read-modify-write of a node's spec, retried on ABORTED (version
    conflict); returns the updated node and how many rounds were aborted."""
    for aborted in range(attempts):
        node = ctl.GetNode(pb.control.GetNodeRequest(node_id=node_id), timeout=10).node
        spec = pb.objects.NodeSpec()
        spec.CopyFrom(node.spec)
        change(spec)
        if before_write is not None:
            before_write()
        try:
            return ctl.UpdateNode(pb.control.UpdateNodeRequest(
                node_id=node_id, node_version=node.meta.version, spec=spec),
                timeout=10).node, aborted
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ABORTED:
                raise
    raise AssertionError(f"UpdateNode aborted {attempts} times in a row")


def test_control_over_unix(grpc_manager, pb):
    n = grpc_manager
    with unix_channel(n) as ch:
        ctl = pb.control_grpc.ControlStub(ch)
        nodes = ctl.ListNodes(pb.control.ListNodesRequest(), timeout=10).nodes
        assert len(nodes) == 1
        me = nodes[0]
        assert me.id == n.init_resp.node_id
        assert me.role == pb.objects.NODE_ROLE_MANAGER
        assert me.HasField("manager_status")
        assert me.manager_status.leader is True
        assert me.manager_status.addr == n.addr
        assert me.description.hostname == "m1"

        # By hostname and by unique ID prefix.
        assert ctl.GetNode(pb.control.GetNodeRequest(node_id="m1"), timeout=10).node.id == me.id
        assert ctl.GetNode(pb.control.GetNodeRequest(node_id=me.id[:6]), timeout=10).node.id == me.id

        # Swarmctl sees the same node.
        assert n.inspect()["ID"] == me.id

        # Update as a real client must: read, change, write with the version
        # read, and start over on ABORTED (the node's own status may change
        # between the read and the write). A concurrent writer is made to
        # win the first round, so the retry path is always taken.
        raced = []

        def interfere():
            if not raced:
                raced.append(True)
                n.ok("node", "update", "--label-add", "rack=r1", "m1")

        upd, aborted = update_node_rmw(pb, ctl, me.id, lambda spec: spec.annotations.labels.add(
            key="zone", value="a"), before_write=interfere)
        assert aborted >= 1
        assert {lb.key: lb.value for lb in upd.spec.annotations.labels} == {
            "zone": "a", "rack": "r1"}
        assert upd.meta.version > me.meta.version
        assert n.inspect()["Spec"]["Labels"] == {"zone": "a", "rack": "r1"}

        # Update with the stale version: ABORTED, nothing changes.
        stale = pb.objects.NodeSpec()
        stale.CopyFrom(me.spec)
        stale.annotations.labels.add(key="zone", value="b")
        stale.availability = pb.objects.NODE_AVAILABILITY_DRAIN
        err = rpc_error(ctl.UpdateNode, pb.control.UpdateNodeRequest(
            node_id=me.id, node_version=me.meta.version, spec=stale))
        assert err.code() == grpc.StatusCode.ABORTED, (err.code(), err.details())
        after = ctl.GetNode(pb.control.GetNodeRequest(node_id=me.id), timeout=10).node
        assert {lb.key: lb.value for lb in after.spec.annotations.labels} == {
            "zone": "a", "rack": "r1"}
        assert after.spec.availability == pb.objects.NODE_AVAILABILITY_ACTIVE
        ins = n.inspect()
        assert ins["Spec"]["Labels"] == {"zone": "a", "rack": "r1"}
        assert ins["Spec"]["Availability"] == "active"

        # Unknown node: NOT_FOUND naming it.
        err = rpc_error(ctl.GetNode, pb.control.GetNodeRequest(node_id="no-such-node"))
        assert err.code() == grpc.StatusCode.NOT_FOUND, (err.code(), err.details())
        assert "no-such-node" in (err.details() or ""), err.details()

        # The cluster: the root CA key never leaves the manager.
        cluster = ctl.GetCluster(pb.control.GetClusterRequest(), timeout=10).cluster
        assert len(cluster.id) == 25
        assert cluster.root_ca.ca_cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert cluster.root_ca.ca_cert_pem == read(n, "swarm-root-ca.crt")
        assert cluster.root_ca.ca_key_pem == b""
        assert cluster.root_ca.join_tokens.worker == n.init_resp.worker_join_token
        by_id = ctl.GetCluster(pb.control.GetClusterRequest(cluster_id=cluster.id), timeout=10)
        assert by_id.cluster.id == cluster.id and by_id.cluster.root_ca.ca_key_pem == b""
        for c in ctl.ListClusters(pb.control.ListClustersRequest(), timeout=10).clusters:
            assert c.root_ca.ca_key_pem == b""

        sw = pb.swarm_grpc.SwarmStub(ch)
        ver = sw.Version(pb.swarm.VersionRequest(), timeout=10)
        assert ver.version and ver.api_version, ver
        assert ver.os == "linux", ver
        info = sw.Info(pb.swarm.InfoRequest(), timeout=10)
        assert info.state == pb.swarm.LOCAL_NODE_STATE_ACTIVE
        assert info.node_id == me.id and info.is_manager and info.cluster_id == cluster.id


def test_control_over_mtls_with_node_cert(grpc_manager, pb):
    n = grpc_manager
    with node_tls_channel(n) as ch:
        nodes = pb.control_grpc.ControlStub(ch).ListNodes(
            pb.control.ListNodesRequest(), timeout=10).nodes
        assert [x.description.hostname for x in nodes] == ["m1"]
        cluster = pb.control_grpc.ControlStub(ch).GetCluster(
            pb.control.GetClusterRequest(), timeout=10).cluster
        assert cluster.root_ca.ca_key_pem == b""

        # Node-local methods are for the control socket only, even for a manager.
        err = rpc_error(pb.swarm_grpc.SwarmStub(ch).Info, pb.swarm.InfoRequest())
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (err.code(), err.details())
        err = rpc_error(pb.swarm_grpc.SwarmStub(ch).LeaveSwarm, pb.swarm.LeaveRequest(force=True))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (err.code(), err.details())
    assert "Swarm: active" in n.ok("info")


def test_tls_without_client_cert(grpc_manager, pb):
    n = grpc_manager
    with tls_channel(n) as ch:
        ca = pb.ca_grpc.CAStub(ch).GetRootCACertificate(
            pb.ca.GetRootCACertificateRequest(), timeout=10)
        assert ca.certificate == read(n, "swarm-root-ca.crt")
        err = rpc_error(pb.control_grpc.ControlStub(ch).ListNodes, pb.control.ListNodesRequest())
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (err.code(), err.details())
        err = rpc_error(pb.swarm_grpc.SwarmStub(ch).Info, pb.swarm.InfoRequest())
        assert err.code() in (grpc.StatusCode.UNAUTHENTICATED,
                              grpc.StatusCode.PERMISSION_DENIED), (err.code(), err.details())
        # An anonymous CSR without a valid token is refused.
        err = rpc_error(pb.ca_grpc.CAStub(ch).IssueNodeCertificate,
                        pb.ca.IssueNodeCertificateRequest(csr=b"not a csr", token="SWMTKN-1-bogus"))
        assert err.code() != grpc.StatusCode.OK
    n.ok("node", "ls")


def test_foreign_ca_client_cert_refused(grpc_manager, pb, tmp_path):
    n = grpc_manager
    key, crt = tmp_path / "evil.key", tmp_path / "evil.crt"
    node_id = n.init_resp.node_id
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(key), "-out", str(crt), "-days", "1",
                        "-subj", f"/O=evilcluster/OU=swarm-manager/CN={node_id}",
                        "-addext", "subjectAltName=DNS:swarm-manager"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pid = n.proc.pid
    with tls_channel(n, cert=crt.read_bytes(), key=key.read_bytes()) as ch:
        err = rpc_error(pb.control_grpc.ControlStub(ch).ListNodes, pb.control.ListNodesRequest())
        assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
    assert n.alive() and n.proc.pid == pid, n.log_tail()
    # Still serving, on both doors.
    with node_tls_channel(n) as ch:
        assert len(pb.control_grpc.ControlStub(ch).ListNodes(
            pb.control.ListNodesRequest(), timeout=10).nodes) == 1
    assert len(n.node_rows()) == 1


def tiny_deadline_calls(ctl, pb, tries=200):
    """Calls with a 1 us timeout. gRPC rounds deadlines up to whole
    milliseconds, so a fast answer may still beat it: each call must end OK or
    DEADLINE_EXCEEDED (nothing else), and at least one must be the latter."""
    codes = []
    for _ in range(tries):
        try:
            ctl.ListNodes(pb.control.ListNodesRequest(), timeout=0.000001)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.code(), e.details())
            codes.append(e.code())
            if len([c for c in codes if c != grpc.StatusCode.OK]) >= 3:
                break
    assert grpc.StatusCode.DEADLINE_EXCEEDED in codes, f"{tries} calls, none hit the deadline"


def test_deadline_exceeded(grpc_manager, pb):
    n = grpc_manager
    pid = n.proc.pid
    with unix_channel(n) as ch:
        ctl = pb.control_grpc.ControlStub(ch)
        tiny_deadline_calls(ctl, pb)
        # The same channel and the daemon go on.
        assert len(ctl.ListNodes(pb.control.ListNodesRequest(), timeout=10).nodes) == 1
    with node_tls_channel(n) as ch:
        ctl = pb.control_grpc.ControlStub(ch)
        # Make sure the connection is up, so the deadline travels on the wire.
        ctl.GetCluster(pb.control.GetClusterRequest(), timeout=10)
        tiny_deadline_calls(ctl, pb)
        assert len(ctl.ListNodes(pb.control.ListNodesRequest(), timeout=10).nodes) == 1
    assert n.alive() and n.proc.pid == pid, n.log_tail()
    n.ok("node", "ls")
