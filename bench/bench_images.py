"""Image pulls on a node (issue 14): the image library (image/image.h)
through build/image/swarm-image against Debian's docker-registry on
loopback, with the one-layer busybox image of tests/integration/registry.py.

  image_pull_cold     a fresh store: manifest, config, layer (download,
                      sha256, gunzip + untar with the diff ID checked)
  image_pull_warm_tag cached image, by tag: one manifest GET to resolve it
  image_pull_warm_digest cached image by its pinned digest: no network
  image_snapshot      overlayfs snapshot create + remove
  skopeo_copy_cold    the peer: skopeo copy of the same image to an OCI
                      layout (download and verify, no unpack)
Medians of BENCH_IMAGE_RUNS (default 7) runs; each figure includes the
start of the command (a fresh process per pull). Needs root (overlayfs)."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import BUILD, ROOT, next_ip

sys.path.insert(0, str(ROOT / "tests" / "integration"))
import registry as R  # noqa: E402

TOOL = BUILD / "image" / "swarm-image"
RUNS = int(os.environ.get("BENCH_IMAGE_RUNS", "7"))


def timed(cmd):
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed: {r.stderr}")
    return dt, r.stdout


def main():
    if not R.available() or os.geteuid() != 0:
        print("# bench_images: needs docker-registry, busybox-static and root; skipped")
        return
    base = Path(tempfile.mkdtemp(prefix="swarm-bench-images-"))
    reg = R.Registry(base / "registry", next_ip()).start()
    try:
        im = R.push_busybox(reg, "busybox", "1")
        layer_bytes = reg.blob_path(im["layer"]).stat().st_size
        ins = ["--insecure-registry", reg.host]
        cold, warm_tag, warm_digest, snap, peer = [], [], [], [], []
        pinned = f"{im['ref']}@{im['digest']}"
        for i in range(RUNS):
            store = base / f"store{i}"
            cold.append(timed([TOOL, "--dir", store, *ins, "pull", im["ref"]])[0])
            warm_tag.append(timed([TOOL, "--dir", store, *ins, "pull", im["ref"]])[0])
            warm_digest.append(timed([TOOL, "--dir", store, *ins, "pull", pinned])[0])
            t0 = time.monotonic()
            timed([TOOL, "--dir", store, "snapshot", im["digest"], "t"])
            timed([TOOL, "--dir", store, "rm", "t"])
            snap.append(time.monotonic() - t0)
            shutil.rmtree(store)
            if shutil.which("skopeo"):
                out = base / f"oci{i}"
                peer.append(timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                   f"docker://{im['ref']}", f"oci:{out}"])[0])
                shutil.rmtree(out, ignore_errors=True)
        med = statistics.median
        print(f"image_layer_size: {layer_bytes} bytes")
        print(f"image_pull_cold: {med(cold) * 1000:.1f} ms")
        print(f"image_pull_warm_tag: {med(warm_tag) * 1000:.1f} ms")
        print(f"image_pull_warm_digest: {med(warm_digest) * 1000:.1f} ms")
        print(f"image_snapshot_create_remove: {med(snap) * 1000:.1f} ms")
        if peer:
            print(f"skopeo_copy_cold: {med(peer) * 1000:.1f} ms")
            print(f"image_pull_cold_vs_skopeo: {med(cold) / med(peer):.2f} x")
    finally:
        reg.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
