"""Images (issue 14): the node's image library against Debian's
docker-registry on loopback (tests/integration/registry.py), through
build/image/swarm-image (a thin command-line client of image/image.h), and
the manager's tag -> digest pinning through swarmctl."""
import base64
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

import registry as R
from conftest import BUILD, next_ip

TOOL = BUILD / "image" / "swarm-image"

pytestmark = pytest.mark.skipif(not R.available() or os.geteuid() != 0,
                                reason="needs docker-registry, busybox-static and root")


def tool(store, *args, insecure=None, auth=None, timeout=60):
    cmd = [str(TOOL), "--dir", str(store)]
    for h in insecure or []:
        cmd += ["--insecure-registry", h]
    if auth:
        cmd += ["--auth", auth]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)


def fields(out):
    d = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        d[k] = v
    return d


@pytest.fixture
def reg(tmp_path):
    r = R.Registry(tmp_path / "registry", next_ip()).start()
    yield r
    r.stop()


def mounts_under(path):
    return [l.split()[1] for l in open("/proc/self/mounts") if str(path) in l.split()[1]]


def test_pull_index_picks_platform_verifies_and_snapshots(reg, tmp_path):
    im = R.push_busybox(reg, "busybox", "1", index=True, cmd=["httpd", "-f"],
                        workdir="/var/www", exposed=["80/tcp"], stop_signal="SIGQUIT",
                        env=["PATH=/bin", "GREETING=hi"])
    store = tmp_path / "store"
    r = tool(store, "pull", im["ref"], insecure=[reg.host])
    assert r.returncode == 0, r.stderr
    f = fields(r.stdout)
    assert f["digest"] == f"{reg.host}/busybox@{im['digest']}"
    assert f["manifest"] == im["manifest"]          # the linux/amd64 entry
    assert f["config"] == im["config"]
    assert f["platform"] == "linux/amd64"
    assert f["cmd"] == "httpd -f"
    assert f["env"] == "PATH=/bin GREETING=hi"
    assert f["workdir"] == "/var/www" and f["stopsignal"] == "SIGQUIT"
    assert f["ports"] == "80/tcp"
    assert f["layers"] == im["diff_id"]
    r = tool(store, "snapshot", im["digest"], "task1")
    assert r.returncode == 0, r.stderr
    rootfs = Path(r.stdout.strip())
    try:
        assert (rootfs / "etc" / "image-version").read_text() == "1\n"
        assert os.path.islink(rootfs / "bin" / "sh")
        (rootfs / "etc" / "written").write_text("upper")
        assert (store / "snapshots" / "task1" / "upper" / "etc" / "written").exists()
        # the layer itself is untouched by the task's writes
        layer = store / "layers" / "sha256" / im["diff_id"].split(":")[1]
        assert not (layer / "etc" / "written").exists()
        assert mounts_under(rootfs)
    finally:
        assert tool(store, "rm", "task1").returncode == 0
    assert not mounts_under(rootfs)
    assert not (store / "snapshots" / "task1").exists()


def test_cached_pull_needs_no_registry(reg, tmp_path):
    im = R.push_busybox(reg, "busybox", "1")
    store = tmp_path / "store"
    assert tool(store, "pull", im["ref"], insecure=[reg.host]).returncode == 0
    reg.stop()
    pinned = f"{im['ref']}@{im['digest']}"
    r = tool(store, "pull", pinned, insecure=[reg.host])
    assert r.returncode == 0, r.stderr
    assert fields(r.stdout)["manifest"] == im["manifest"]
    # a tag alone must be resolved: with the registry down that is an error
    r = tool(store, "pull", im["ref"], insecure=[reg.host])
    assert r.returncode == 1
    assert "Couldn't connect to server" in r.stderr or "connect" in r.stderr.lower()


def test_concurrent_pulls_share_and_do_not_corrupt(reg, tmp_path):
    im = R.push_busybox(reg, "busybox", "1")
    store = tmp_path / "store"
    results = []

    def run():
        results.append(tool(store, "pull", im["ref"], im["ref"], insecure=[reg.host]))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("digest ") == 2
    assert len(list((store / "layers" / "sha256").iterdir())) == 1
    assert list((store / "tmp").iterdir()) == []
    r = tool(store, "snapshot", im["digest"], "t")
    assert r.returncode == 0, r.stderr
    assert (Path(r.stdout.strip()) / "bin" / "busybox").stat().st_size > 100000
    tool(store, "rm", "t")


def test_many_images_at_once_wait_their_turn(reg, tmp_path):
    """Five different images in one process: two pull at a time, the others
    wait (the pool's threads are shared), and all arrive."""
    ims = [R.push_busybox(reg, f"img{i}", "1", version=f"v{i}") for i in range(5)]
    store = tmp_path / "store"
    r = tool(store, "pull", *[im["ref"] for im in ims], insecure=[reg.host])
    assert r.returncode == 0, r.stderr
    got = sorted(line.split("@")[1] for line in r.stdout.splitlines()
                 if line.startswith("digest "))
    assert got == sorted(im["digest"] for im in ims)
    assert len(list((store / "layers" / "sha256").iterdir())) == 5


def test_unknown_image_and_registry_down(reg, tmp_path):
    R.push_busybox(reg, "busybox", "1")
    store = tmp_path / "store"
    r = tool(store, "pull", f"{reg.host}/busybox:nope", insecure=[reg.host])
    assert r.returncode == 1
    assert f"No such image: {reg.host}/busybox:nope" in r.stderr
    r = tool(store, "pull", f"{reg.host}/nothere:1", insecure=[reg.host])
    assert f"No such image: {reg.host}/nothere:1" in r.stderr
    reg.stop()
    r = tool(store, "pull", f"{reg.host}/busybox:1", insecure=[reg.host])
    assert r.returncode == 1
    assert f'Get "http://{reg.host}/v2/busybox/manifests/1"' in r.stderr
    assert list((store / "images").iterdir()) == []


def test_corrupted_blob_is_refused(reg, tmp_path):
    im = R.push_busybox(reg, "busybox", "1")
    blob = reg.blob_path(im["layer"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    store = tmp_path / "store"
    r = tool(store, "pull", im["ref"], insecure=[reg.host])
    assert r.returncode == 1
    assert f"filesystem layer verification failed for digest {im['layer']}" in r.stderr
    assert list((store / "layers" / "sha256").iterdir()) == []
    assert not (store / "blobs" / "sha256" / im["layer"].split(":")[1]).exists()
    assert list((store / "images").iterdir()) == []
    assert list((store / "tmp").iterdir()) == []


def test_plain_http_needs_insecure_registry(reg, tmp_path):
    im = R.push_busybox(reg, "busybox", "1")
    r = tool(tmp_path / "store", "pull", im["ref"])
    assert r.returncode == 1
    assert f'Get "https://{reg.host}/v2/busybox/manifests/1"' in r.stderr
    r = tool(tmp_path / "store", "pull", im["ref"], insecure=[reg.ip])  # host alone matches
    assert r.returncode == 0, r.stderr


def test_basic_auth(tmp_path):
    reg = R.Registry(tmp_path / "registry", next_ip(), users={"alice": "s3cret"}).start()
    try:
        im = R.push_busybox(reg, "busybox", "1")
        store = tmp_path / "store"
        r = tool(store, "pull", im["ref"], insecure=[reg.host])
        assert r.returncode == 1
        assert (f"pull access denied for {reg.host}/busybox, repository does not exist "
                "or may require 'docker login'") in r.stderr
        bad = R.registry_auth("alice", "wrong", reg.host)
        r = tool(store, "pull", im["ref"], insecure=[reg.host], auth=bad)
        assert "unauthorized: incorrect username or password" in r.stderr
        good = R.registry_auth("alice", "s3cret", reg.host)
        r = tool(store, "pull", im["ref"], insecure=[reg.host], auth=good)
        assert r.returncode == 0, r.stderr
        assert fields(r.stdout)["manifest"] == im["manifest"]
    finally:
        reg.stop()


def test_prune_keeps_images_in_use(reg, tmp_path):
    a = R.push_busybox(reg, "busybox", "1")
    b = R.push_busybox(reg, "other", "2", version="two")
    store = tmp_path / "store"
    assert tool(store, "pull", a["ref"], b["ref"], insecure=[reg.host]).returncode == 0
    assert tool(store, "snapshot", a["digest"], "ta").returncode == 0
    try:
        r = tool(store, "prune", "3600")      # both used within the hour: nothing
        assert r.returncode == 0 and "deleted" not in r.stdout
        r = tool(store, "prune")
        assert r.returncode == 0, r.stderr
        assert f"deleted: {reg.host}/other@{b['digest']}" in r.stdout
        assert "busybox@" not in r.stdout
        assert (store / "layers" / "sha256" / a["diff_id"].split(":")[1]).exists()
        assert not (store / "layers" / "sha256" / b["diff_id"].split(":")[1]).exists()
    finally:
        assert tool(store, "rm", "ta").returncode == 0
    r = tool(store, "prune")
    assert f"deleted: {reg.host}/busybox@{a['digest']}" in r.stdout
    assert list((store / "blobs" / "sha256").iterdir()) == []
    assert list((store / "layers" / "sha256").iterdir()) == []


def test_cleanup_leftovers_after_a_crash(reg, tmp_path):
    im = R.push_busybox(reg, "busybox", "1")
    store = tmp_path / "store"
    assert tool(store, "pull", im["ref"], insecure=[reg.host]).returncode == 0
    for t in ("keep", "gone1", "gone2"):
        assert tool(store, "snapshot", im["digest"], t).returncode == 0
    (store / "tmp" / "blob-half").write_text("partial download")
    r = tool(store, "cleanup", "keep")
    assert r.returncode == 0 and "removed 2" in r.stdout
    assert sorted(p.name for p in (store / "snapshots").iterdir()) == ["keep"]
    assert len(mounts_under(store)) == 1
    assert list((store / "tmp").iterdir()) == []
    assert tool(store, "cleanup").returncode == 0
    assert mounts_under(store) == []


# ---------------------------------------------------------------------------
# The manager pins tags to digests (service create/update), swarmctl login.

from conftest import wait_for  # noqa: E402


def start_manager(swarm, *insecure):
    n = swarm.node("m1").start(*[a for h in insecure for a in ("--insecure-registry", h)])
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    wait_for(lambda: n.inspect().get("Status", {}).get("State") == "ready", timeout=10,
             what="manager ready")
    return n


def spec_image(node, svc):
    spec = json.loads(node.ok("service", "inspect", svc))[0]["Spec"]
    return spec["TaskTemplate"]["ContainerSpec"]["Image"]


def test_create_pins_digest_and_update_repins(swarm, reg):
    m = start_manager(swarm, reg.host)
    v1 = R.push_busybox(reg, "busybox", "1")
    r = m.ctl("service", "create", "-d", "--name", "web", v1["ref"], "httpd", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    pinned = f"{v1['ref']}@{v1['digest']}"
    assert spec_image(m, "web") == pinned
    # ls and ps show the tag, as Docker does; ps --no-trunc the pin
    assert f"{v1['ref']}  " in m.ok("service", "ls") + "  "
    assert v1["digest"] not in m.ok("service", "ls")
    # moving the tag changes nothing stored
    v2 = R.push_busybox(reg, "busybox", "1", version="moved")
    assert v2["digest"] != v1["digest"]
    m.ok("service", "update", "-d", "--replicas", "2", "web")
    assert spec_image(m, "web") == pinned
    # --force follows the moved tag
    m.ok("service", "update", "-d", "--force", "web")
    assert spec_image(m, "web") == f"{v1['ref']}@{v2['digest']}"
    # --image resolves again
    v3 = R.push_busybox(reg, "busybox", "3")
    m.ok("service", "update", "-d", "--image", v3["ref"], "web")
    assert spec_image(m, "web") == f"{v3['ref']}@{v3['digest']}"
    # an image pinned by the user stays as given
    given = f"{reg.host}/busybox@{v1['digest']}"
    m.ok("service", "update", "-d", "--image", given, "web")
    assert spec_image(m, "web") == given
    # process services are not container images: never resolved
    m.ok("service", "create", "-d", "--name", "proc", "sleep", "1000")
    assert spec_image(m, "proc") == "sleep"


def test_resolve_image_flag(swarm, reg):
    m = start_manager(swarm, reg.host)
    v1 = R.push_busybox(reg, "busybox", "1")
    err = m.fails("service", "create", "-d", "--resolve-image", "sometimes", v1["ref"])
    assert err == "Error: Invalid option sometimes for flag --resolve-image"
    assert m.ok("service", "ls", "-q").strip() == ""
    # never: stored as given, even an image the registry does not have
    m.ok("service", "create", "-d", "--name", "raw", "--resolve-image", "never", v1["ref"])
    assert spec_image(m, "raw") == v1["ref"]
    m.ok("service", "create", "-d", "--name", "web", "--resolve-image", "changed", v1["ref"])
    pinned = f"{v1['ref']}@{v1['digest']}"
    assert spec_image(m, "web") == pinned
    v2 = R.push_busybox(reg, "busybox", "1", version="moved")
    # changed: --force alone does not follow the tag; always (default) does
    m.ok("service", "update", "-d", "--force", "--resolve-image", "changed", "web")
    assert spec_image(m, "web") == pinned
    m.ok("service", "update", "-d", "--force", "web")
    assert spec_image(m, "web") == f"{v1['ref']}@{v2['digest']}"
    # never on update: --image stored as given
    m.ok("service", "update", "-d", "--resolve-image", "never", "--image", v1["ref"], "web")
    assert spec_image(m, "web") == v1["ref"]
    err = m.fails("service", "update", "-d", "--resolve-image", "x", "web")
    assert err == "Error: Invalid option x for flag --resolve-image"


def test_unknown_image_is_refused_and_nothing_written(swarm, reg):
    m = start_manager(swarm, reg.host)
    R.push_busybox(reg, "busybox", "1")
    err = m.fails("service", "create", "-d", "--name", "nope", f"{reg.host}/busybox:nope")
    assert err == f"Error response from daemon: No such image: {reg.host}/busybox:nope"
    err = m.fails("service", "create", "-d", "--name", "nope", f"{reg.host}/nothere:1")
    assert f"No such image: {reg.host}/nothere:1" in err
    assert m.ok("service", "ls", "-q").strip() == ""
    m.ok("service", "create", "-d", "--name", "web", f"{reg.host}/busybox:1")
    before = spec_image(m, "web")
    err = m.fails("service", "update", "-d", "--image", f"{reg.host}/busybox:nope", "web")
    assert f"No such image: {reg.host}/busybox:nope" in err
    assert spec_image(m, "web") == before


DIGEST_WARNING = ("image {0} could not be accessed on a registry to record\n"
                  "its digest. Each node will access {0} independently,\n"
                  "possibly leading to different nodes running different\n"
                  "versions of the image.\n")


def test_registry_down_warns_and_proceeds_unpinned(swarm, reg):
    m = start_manager(swarm, reg.host)
    ref = f"{reg.host}/busybox:1"
    reg.stop()
    r = m.ctl("service", "create", "-d", "--name", "web", ref)
    assert r.returncode == 0, r.stderr
    assert r.stderr == DIGEST_WARNING.format(ref)
    assert spec_image(m, "web") == ref


def test_plain_http_registry_needs_insecure_registry(swarm, reg):
    m = start_manager(swarm)               # no --insecure-registry
    v1 = R.push_busybox(reg, "busybox", "1")
    r = m.ctl("service", "create", "-d", "--name", "web", v1["ref"])
    assert r.returncode == 0
    assert r.stderr == DIGEST_WARNING.format(v1["ref"])
    assert spec_image(m, "web") == v1["ref"]
    assert "Insecure Registries" not in m.ok("info")


def test_info_lists_insecure_registries(swarm, reg):
    m = start_manager(swarm, reg.host, "10.0.0.1:5000")
    out = m.ok("info")
    assert f" Insecure Registries:\n  {reg.host}\n  10.0.0.1:5000\n" in out


def join_worker(swarm, manager, name, *extra):
    w = swarm.node(name).start(*extra)
    token = manager.ok("swarm", "join-token", "-q", "worker").strip()
    w.ok("swarm", "join", "--token", token, "--advertise-addr", w.ip, manager.addr)
    return w


def tree_contains(path, needle):
    for root, _, files in os.walk(path):
        for f in files:
            try:
                if needle in (Path(root) / f).read_bytes():
                    return True
            except OSError:
                pass
    return False


def test_login_and_with_registry_auth(swarm, tmp_path):
    reg = R.Registry(tmp_path / "registry", next_ip(), users={"alice": "s3cret"}).start()
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    try:
        m = start_manager(swarm, reg.host)
        v1 = R.push_busybox(reg, "busybox", "1")
        cfg = home / ".swarmctl" / "config.json"
        # wrong password: refused by the registry, nothing stored
        r = m.ctl("login", "-u", "alice", "--password-stdin", reg.host, env=env)
        assert r.returncode == 1
        r = subprocess.run([str(BUILD / "cli" / "swarmctl"), "--socket", str(m.socket), "login",
                            "-u", "alice", "--password-stdin", reg.host],
                           input="wrong\n", capture_output=True, text=True, env={**os.environ, **env})
        assert r.returncode == 1
        assert "Error response from daemon: unauthorized: incorrect username or password" in r.stderr
        assert not cfg.exists()
        err = m.fails("login", "-u", "alice", "-p", "x", "--password-stdin", reg.host, env=env)
        assert "--password and --password-stdin are mutually exclusive" in err
        r = subprocess.run([str(BUILD / "cli" / "swarmctl"), "--socket", str(m.socket), "login",
                            "-u", "alice", "--password-stdin", reg.host],
                           input="s3cret\n", capture_output=True, text=True, env={**os.environ, **env})
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Login Succeeded\n"
        assert oct(cfg.stat().st_mode & 0o777) == "0o600"
        auths = json.loads(cfg.read_text())["auths"]
        assert auths[reg.host]["auth"] == base64.b64encode(b"alice:s3cret").decode()

        # without the credentials the manager cannot pin: Docker's warning
        r = m.ctl("service", "create", "-d", "--name", "noauth", v1["ref"], env=env)
        assert r.returncode == 0 and r.stderr == DIGEST_WARNING.format(v1["ref"])

        w1 = join_worker(swarm, m, "w1", "--insecure-registry", reg.host)
        w2 = join_worker(swarm, m, "w2", "--insecure-registry", reg.host)
        wait_for(lambda: sum(1 for line in m.ok("node", "ls").splitlines() if " Ready " in line) == 3,
                 timeout=15, what="3 nodes ready")
        r = m.ctl("service", "create", "-d", "--name", "web", "--with-registry-auth",
                  "--constraint", "node.hostname==w1", v1["ref"], env=env)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        assert spec_image(m, "web") == f"{v1['ref']}@{v1['digest']}"
        encoded = R.registry_auth("alice", "s3cret", reg.host)
        # the control API never returns it
        for args in (("service", "inspect", "web"), ("service", "ls"), ("service", "ps", "web"),
                     ("service", "ps", "--no-trunc", "web")):
            out = m.ok(*args)
            assert "s3cret" not in out and encoded[:40] not in out, args
        # it reaches the node that runs the task, and no other
        # The assignment (with the credentials) goes to w1 only.
        wait_for(lambda: " w1 " in m.ok("service", "ps", "web"), timeout=15, what="web on w1")
        # swarmctl's own encoding of them (compact JSON, standard base64)
        sent = base64.b64encode(json.dumps(
            {"username": "alice", "password": "s3cret", "serveraddress": reg.host},
            separators=(",", ":")).encode())
        # w1 keeps its assigned tasks in its task db: the credentials are there
        wait_for(lambda: tree_contains(w1.state_dir, sent), timeout=15,
                 what="credentials on w1")
        # and its puller used them: the private image is in w1's store
        wait_for(lambda: (w1.state_dir / "images" / "images" /
                          (v1["digest"].split(":")[1] + ".json")).exists(),
                 timeout=30, what="the image pulled on w1 with the credentials")
        assert not tree_contains(w2.state_dir, sent)
        assert not (w2.state_dir / "images").exists()
        assert not tree_contains(w2.state_dir, encoded.encode())
        # an update without --with-registry-auth keeps them (Docker's daemon)
        r = m.ctl("service", "update", "-d", "--force", "web", env=env)
        assert r.returncode == 0 and r.stderr == "", r.stderr  # resolved with them
        assert spec_image(m, "web") == f"{v1['ref']}@{v1['digest']}"

        out = m.ok("logout", reg.host, env=env)
        assert out == f"Removing login credentials for {reg.host}\n"
        assert reg.host not in json.loads(cfg.read_text())["auths"]
        assert m.ok("logout", reg.host, env=env) == f"Not logged in to {reg.host}\n"
    finally:
        reg.stop()


from test_grpc_interop import pb, unix_channel  # noqa: E402,F401  (the stubs fixture)


def test_control_api_never_returns_registry_auth(swarm, reg, pb):
    m = start_manager(swarm, reg.host)
    v1 = R.push_busybox(reg, "busybox", "1")
    secret = R.registry_auth("alice", "s3cret", reg.host)
    spec = pb.objects.ServiceSpec()
    spec.annotations.name = "web"
    spec.task.container.image = v1["ref"]
    spec.task.container.registry_auth = secret
    spec.replicated.replicas = 1
    with unix_channel(m) as ch:
        ctl = pb.control_grpc.ControlStub(ch)
        created = ctl.CreateService(pb.control.CreateServiceRequest(spec=spec), timeout=30)
        assert created.service.spec.task.container.image == f"{v1['ref']}@{v1['digest']}"
        assert created.service.spec.task.container.registry_auth == ""
        sid = created.service.id
        got = ctl.GetService(pb.control.GetServiceRequest(service_id=sid), timeout=10)
        assert got.service.spec.task.container.registry_auth == ""
        listed = ctl.ListServices(pb.control.ListServicesRequest(), timeout=10)
        assert [s.spec.task.container.registry_auth for s in listed.services] == [""]
        wait_for(lambda: ctl.ListTasks(pb.control.ListTasksRequest(), timeout=10).tasks,
                 timeout=10, what="a task")
        tasks = ctl.ListTasks(pb.control.ListTasksRequest(), timeout=10).tasks
        assert all(t.spec.task.container.registry_auth == "" if hasattr(t.spec, "task")
                   else t.spec.container.registry_auth == "" for t in tasks)
        t0 = ctl.GetTask(pb.control.GetTaskRequest(task_id=tasks[0].id), timeout=10)
        assert t0.task.spec.container.registry_auth == ""
        upd = ctl.UpdateService(pb.control.UpdateServiceRequest(
            service_id=sid, service_version=got.service.meta.version,
            spec=got.service.spec), timeout=30)
        assert upd.service.spec.task.container.registry_auth == ""
        assert upd.service.previous_spec.task.container.registry_auth == ""
    # but the store keeps them, for the nodes: they are in the manager's raft log
    assert tree_contains(m.state_dir, secret.encode())


def test_auto_prune_removes_images_unused_for_a_while(reg, tmp_path):
    a = R.push_busybox(reg, "busybox", "1")
    b = R.push_busybox(reg, "other", "2", version="two")
    store = tmp_path / "store"
    assert tool(store, "pull", a["ref"], b["ref"], insecure=[reg.host]).returncode == 0
    assert tool(store, "snapshot", a["digest"], "inuse").returncode == 0
    try:
        # with the default (a day) nothing goes
        assert tool(store, "serve", "2").returncode == 0
        assert len(list((store / "images").iterdir())) == 2
        # unused for 1 s: the store's own timer prunes it; the one in use stays
        time.sleep(1.1)
        assert tool(store, "--prune-after", "1", "serve", "3").returncode == 0
        left = [p.name for p in (store / "images").iterdir()]
        assert left == [a["digest"].split(":")[1] + ".json"]
        assert not (store / "layers" / "sha256" / b["diff_id"].split(":")[1]).exists()
        assert (store / "layers" / "sha256" / a["diff_id"].split(":")[1]).exists()
    finally:
        assert tool(store, "rm", "inuse").returncode == 0


def test_bearer_token_flow(tmp_path, swarm):
    """The registry answers 401 with `WWW-Authenticate: Bearer realm,service,
    scope`; the puller gets a token from the realm (with the credentials)
    and retries with it, as with Docker Hub."""
    reg = R.Registry(tmp_path / "registry", next_ip(), users={"bob": "pw"}, token=True).start()
    try:
        im = R.push_busybox(reg, "busybox", "1")
        store = tmp_path / "store"
        r = tool(store, "pull", im["ref"], insecure=[reg.host])     # anonymous: no access
        assert r.returncode == 1
        assert f"pull access denied for {reg.host}/busybox" in r.stderr
        good = R.registry_auth("bob", "pw", reg.host)
        r = tool(store, "pull", im["ref"], insecure=[reg.host], auth=good)
        assert r.returncode == 0, r.stderr
        assert fields(r.stdout)["manifest"] == im["manifest"]
        asked = [q for q in reg.tokens.requests if q["user"] == "bob"]
        assert asked and asked[-1]["query"]["service"] == ["test-registry"]
        assert asked[-1]["query"]["scope"] == ["repository:busybox:pull"]
        bad = R.registry_auth("bob", "nope", reg.host)
        r = tool(tmp_path / "store2", "pull", im["ref"], insecure=[reg.host], auth=bad)
        assert "unauthorized: incorrect username or password" in r.stderr
        # the manager pins with the token flow too, and login checks it
        m = start_manager(swarm, reg.host)
        home = tmp_path / "home"
        home.mkdir()
        env = {"HOME": str(home)}
        assert m.ok("login", "-u", "bob", "-p", "pw", reg.host, env=env) == "Login Succeeded\n"
        r = m.ctl("service", "create", "-d", "--name", "web", "--with-registry-auth",
                  im["ref"], env=env)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert spec_image(m, "web") == f"{im['ref']}@{im['digest']}"
    finally:
        reg.close()


def test_image_prune_through_swarmctl(swarm, reg):
    """`swarmctl image prune` prunes the store of the node it talks to."""
    n = swarm.node("n1").start("--insecure-registry", reg.host)
    store = n.state_dir / "images"
    a = R.push_busybox(reg, "busybox", "1")
    b = R.push_busybox(reg, "other", "2", version="two")
    assert tool(store, "pull", a["ref"], b["ref"], insecure=[reg.host]).returncode == 0
    assert tool(store, "snapshot", a["digest"], "inuse").returncode == 0
    try:
        # declined: nothing goes
        r = subprocess.run([str(BUILD / "cli" / "swarmctl"), "--socket", str(n.socket),
                            "image", "prune"], input="n\n", capture_output=True, text=True)
        assert r.returncode == 0
        assert r.stdout.endswith("Are you sure you want to continue? [y/N] "
                                 "Total reclaimed space: 0B\n")
        assert len(list((store / "images").iterdir())) == 2
        assert "invalid filter 'label'" in n.fails("image", "prune", "-f", "--filter", "label=x")
        # both used within the hour
        assert n.ok("image", "prune", "-a", "-f", "--filter", "until=1h") == \
            "Total reclaimed space: 0B\n"
        out = n.ok("image", "prune", "-f")
        assert out.startswith("Deleted Images:\n"
                              f"untagged: {reg.host}/other@{b['digest']}\n"
                              f"deleted: {b['digest']}\n\nTotal reclaimed space: ")
        assert out.rstrip().endswith("MB")
        assert "busybox" not in out
        assert [p.name for p in (store / "images").iterdir()] == \
            [a["digest"].split(":")[1] + ".json"]
    finally:
        assert tool(store, "rm", "inuse").returncode == 0
    assert "Deleted Images:" in n.ok("image", "prune", "-f")
    assert list((store / "layers" / "sha256").iterdir()) == []


def test_swarmd_image_prune_after(swarm, reg):
    bad = subprocess.run([str(BUILD / "daemon" / "swarmd"), "--image-prune-after", "soon"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2
    assert 'invalid --image-prune-after "soon"' in bad.stderr
    n = swarm.node("n1").start("--insecure-registry", reg.host, "--image-prune-after", "1s")
    store = n.state_dir / "images"
    assert not store.exists()          # a node outside a swarm leaves no trace
    n.ok("swarm", "init", "--advertise-addr", n.ip)
    wait_for(lambda: "Swarm: active" in n.ok("info"), timeout=10, what="active")
    assert not store.exists()          # nor one that never pulled
    a = R.push_busybox(reg, "busybox", "1")
    assert tool(store, "pull", a["ref"], insecure=[reg.host]).returncode == 0
    assert len(list((store / "images").iterdir())) == 1
    wait_for(lambda: list((store / "images").iterdir()) == [] and
             list((store / "layers" / "sha256").iterdir()) == [], timeout=10,
             what="the unused image pruned by swarmd")
