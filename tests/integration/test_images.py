"""Images (issue 14): the node's image library against Debian's
docker-registry on loopback (tests/integration/registry.py), through
build/image/swarm-image (a thin command-line client of image/image.h), and
the manager's tag -> digest pinning through swarmctl."""
import json
import os
import subprocess
import threading
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
