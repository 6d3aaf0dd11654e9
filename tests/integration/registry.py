"""Test registries and images (issue 14), shared by the image and container
tests and the benches.

    reg = Registry(tmp_path / "reg", ip)           # Debian's docker-registry
    reg.start()                                     # on ip:<free port>, plain HTTP
    ref = push_busybox(reg, "busybox", "1")        # one-layer busybox image
    reg.host                                        # "127.x.y.z:PORT"
    reg.stop(); reg.start()                         # same storage, same port

Registry(..., users={"alice": "secret"}) turns on htpasswd basic auth (the
registry's own `auth: htpasswd`); with token=True the registry asks for
bearer tokens instead (`auth: token`), issued by a small token server run
here (TokenServer: basic auth against the same users, ES256 JWTs with the
x5c header, signed by a self-signed certificate the registry trusts), the
flow Docker Hub uses. Images are built here from Debian's
busybox-static (/bin/busybox and applet symlinks, /etc/passwd and group)
as a gzip tar layer, an image config and a Docker v2 schema 2 manifest (or
an OCI index over it), and pushed over the registry API (blob uploads and
manifest PUTs), so no other tool is needed. Nothing here reaches a public
registry: every address is loopback."""
import base64
import crypt
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ash", "httpd", "ls", "cat", "echo", "sleep", "id", "hostname",
           "ps", "wget", "env", "mkdir", "rm", "touch", "true", "false", "test",
           "grep", "head", "tail", "kill", "mount", "df", "stat", "dd", "yes",
           "nc", "uname", "readlink", "sed", "awk", "wc", "date", "find", "cp"]

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def available():
    return os.path.exists(REGISTRY_BIN) and os.path.exists(BUSYBOX)


def _free_port(ip):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A registry token server (the docker/distribution token spec):
    GET /token?service=S&scope=repository:NAME:pull,push with basic auth
    -> {"token": JWT}. Anonymous requests get a token with no access."""

    def __init__(self, base, ip, users, service="test-registry", issuer="test-issuer"):
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        self.users, self.service, self.issuer = users, service, issuer
        self.requests = []
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(1)
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = Path(base) / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.ip = ip
        self.port = _free_port(ip)
        self.httpd = None

    @property
    def realm(self):
        return f"http://{self.ip}:{self.port}/token"

    def sign(self, sub, access):
        import time as _t
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.der).decode()]}
        now = int(_t.time())
        claims = {"iss": self.issuer, "sub": sub, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = (_b64url(json.dumps(header).encode()) + "." +
                   _b64url(json.dumps(claims).encode())).encode()
        r, s = decode_dss_signature(self.key.sign(signing, ec.ECDSA(hashes.SHA256())))
        return signing.decode() + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def start(self):
        import http.server
        import threading
        import urllib.parse
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                user = None
                h = self.headers.get("Authorization", "")
                if h.startswith("Basic "):
                    u, _, p = base64.b64decode(h[6:]).decode().partition(":")
                    if srv.users.get(u) != p:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                srv.requests.append({"user": user, "query": q})
                access = []
                for scope in q.get("scope", []):
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    if kind == "repository" and user is not None:
                        access.append({"type": kind, "name": name,
                                       "actions": actions.split(",")})
                body = json.dumps({"token": srv.sign(user or "", access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer((self.ip, self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def client_token(self, repo, actions="pull,push"):
        """A token for the pushing client (the test itself)."""
        u = next(iter(self.users))
        return self.sign(u, [{"type": "repository", "name": repo, "actions": actions.split(",")}])


class Registry:
    def __init__(self, base, ip, users=None, token=False):
        self.base = Path(base)
        self.ip = ip
        self.port = _free_port(ip)
        self.users = users or {}
        self.proc = None
        self.base.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenServer(self.base, ip, self.users).start() if token else None
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "storage").mkdir(exist_ok=True)

    @property
    def host(self):
        return f"{self.ip}:{self.port}"

    def _config(self):
        lines = [
            "version: 0.1",
            "log:", "  level: warn",
            "storage:", "  filesystem:", f"    rootdirectory: {self.base / 'storage'}",
            "  delete:", "    enabled: true",
            "http:", f"  addr: {self.host}",
        ]
        if self.tokens:
            lines += ["auth:", "  token:", f"    realm: {self.tokens.realm}",
                      f"    service: {self.tokens.service}",
                      f"    issuer: {self.tokens.issuer}",
                      f"    rootcertbundle: {self.tokens.cert_path}"]
        elif self.users:
            htpasswd = self.base / "htpasswd"
            htpasswd.write_text("".join(
                f"{u}:{crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
                for u, p in self.users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: test-realm",
                      f"    path: {htpasswd}"]
        path = self.base / "config.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout=20):
        cfg = self._config()
        log = open(self.base / "registry.log", "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " +
                                   (self.base / "registry.log").read_text()[-2000:])
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self  # 401 with auth on: it is up
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not listen on {self.host}")

    def close(self):
        """stop(), and the token server if there is one."""
        self.stop()
        if self.tokens:
            self.tokens.stop()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    # --- the registry API, as a pushing client ---

    def _auth_header(self, repo=None):
        if self.tokens:
            return {"Authorization": "Bearer " + self.tokens.client_token(repo or "busybox")}
        if not self.users:
            return {}
        u, p = next(iter(self.users.items()))
        return {"Authorization": "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()}

    def _req(self, method, url, data=None, headers=None):
        repo = url.split("/v2/", 1)[1].split("/blobs/")[0].split("/manifests/")[0] \
            if "/v2/" in url else None
        h = dict(self._auth_header(repo))
        h.update(headers or {})
        if not url.startswith("http"):
            url = f"http://{self.host}{url}"
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        return urllib.request.urlopen(req, timeout=30)

    def push_blob(self, repo, data):
        digest = sha256(data)
        try:
            self._req("HEAD", f"/v2/{repo}/blobs/{digest}")
            return digest
        except urllib.error.HTTPError:
            pass
        r = self._req("POST", f"/v2/{repo}/blobs/uploads/")
        loc = r.headers["Location"]
        if not loc.startswith("http"):
            loc = f"http://{self.host}{loc}"
        sep = "&" if "?" in loc else "?"
        self._req("PUT", f"{loc}{sep}digest={digest}", data=data,
                  headers={"Content-Type": "application/octet-stream"})
        return digest

    def push_manifest(self, repo, ref, body, media_type):
        r = self._req("PUT", f"/v2/{repo}/manifests/{ref}", data=body,
                      headers={"Content-Type": media_type})
        return r.headers.get("Docker-Content-Digest") or sha256(body)

    def manifest_digest(self, repo, ref):
        r = self._req("GET", f"/v2/{repo}/manifests/{ref}",
                      headers={"Accept": f"{MT_MANIFEST}, {MT_OCI_INDEX}"})
        return r.headers["Docker-Content-Digest"]

    def blob_path(self, digest):
        """Where the registry keeps a blob on disk (to corrupt it on purpose)."""
        hexd = digest.split(":", 1)[1]
        return (self.base / "storage" / "docker" / "registry" / "v2" / "blobs" /
                "sha256" / hexd[:2] / hexd / "data")

    def retag(self, repo, src_ref, dst_tag):
        """Point dst_tag at what src_ref names (moving the tag)."""
        r = self._req("GET", f"/v2/{repo}/manifests/{src_ref}",
                      headers={"Accept": f"{MT_MANIFEST}, {MT_OCI_INDEX}"})
        body = r.read()
        return self.push_manifest(repo, dst_tag, body, r.headers["Content-Type"])


def busybox_layer(version="1", extra_files=None):
    """A gzip tar of a busybox rootfs; returns (gzip bytes, diff ID)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            tar.addfile(ti)

        def add_file(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            tar.addfile(ti, io.BytesIO(data))

        for d in ["bin", "etc", "tmp", "var", "var/www", "root", "home", "proc",
                  "sys", "dev"]:
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        add_file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
        for a in APPLETS:
            ti = tarfile.TarInfo("bin/" + a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            ti.mode = 0o777
            tar.addfile(ti)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                 b"nobody:x:65534:65534:nobody:/home:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("etc/image-version", f"{version}\n".encode())
        add_file("var/www/index.html", f"busybox {version}\n".encode())
        for name, data in (extra_files or {}).items():
            add_file(name, data)
    raw_bytes = raw.getvalue()
    gz = gzip.compress(raw_bytes, mtime=0)
    return gz, sha256(raw_bytes)


def image_config(diff_ids, arch="amd64", cmd=None, entrypoint=None, env=None,
                 workdir="", user="", healthcheck=None, exposed=None, stop_signal=""):
    cfg = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
           "Cmd": cmd if cmd is not None else ["sh"]}
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    if workdir:
        cfg["WorkingDir"] = workdir
    if user:
        cfg["User"] = user
    if stop_signal:
        cfg["StopSignal"] = stop_signal
    if healthcheck:
        cfg["Healthcheck"] = healthcheck
    if exposed:
        cfg["ExposedPorts"] = {p: {} for p in exposed}
    return json.dumps({"architecture": arch, "os": "linux", "config": cfg,
                       "rootfs": {"type": "layers", "diff_ids": diff_ids},
                       "history": [{"created_by": "tests/integration/registry.py"}]},
                      sort_keys=True).encode()


def push_busybox(reg, repo="busybox", tag="1", version=None, index=False, **config):
    """Build and push the busybox image as repo:tag; returns
    {"ref": "HOST:PORT/repo:tag", "digest": pinned digest, "manifest": the
    linux/amd64 manifest's digest, "config": ..., "layer": ...}.
    version changes a file, so the same tag pushed again moves.
    index=True pushes an OCI index (linux/amd64 + a linux/arm64 entry with
    another config) and pins its digest, as multi-arch images do."""
    layer, diff_id = busybox_layer(version or tag)
    layer_digest = reg.push_blob(repo, layer)
    cfg = image_config([diff_id], **config)
    cfg_digest = reg.push_blob(repo, cfg)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "size": len(cfg), "digest": cfg_digest},
        "layers": [{"mediaType": MT_LAYER, "size": len(layer), "digest": layer_digest}],
    }, sort_keys=True).encode()
    if not index:
        digest = reg.push_manifest(repo, tag, manifest, MT_MANIFEST)
        return {"ref": f"{reg.host}/{repo}:{tag}", "digest": digest, "manifest": digest,
                "config": cfg_digest, "layer": layer_digest, "diff_id": diff_id}
    man_digest = reg.push_manifest(repo, sha256(manifest), manifest, MT_MANIFEST)
    cfg_arm = image_config([diff_id], arch="arm64")
    cfg_arm_digest = reg.push_blob(repo, cfg_arm)
    man_arm = json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "size": len(cfg_arm), "digest": cfg_arm_digest},
        "layers": [{"mediaType": MT_LAYER, "size": len(layer), "digest": layer_digest}],
    }, sort_keys=True).encode()
    arm_digest = reg.push_manifest(repo, sha256(man_arm), man_arm, MT_MANIFEST)
    idx = json.dumps({
        "schemaVersion": 2, "mediaType": MT_OCI_INDEX,
        "manifests": [
            {"mediaType": MT_MANIFEST, "size": len(man_arm), "digest": arm_digest,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": MT_MANIFEST, "size": len(manifest), "digest": man_digest,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]}, sort_keys=True).encode()
    digest = reg.push_manifest(repo, tag, idx, MT_OCI_INDEX)
    return {"ref": f"{reg.host}/{repo}:{tag}", "digest": digest, "manifest": man_digest,
            "config": cfg_digest, "layer": layer_digest, "diff_id": diff_id}


def registry_auth(username, password, server):
    """ContainerSpec.registry_auth as Docker encodes it (base64url JSON)."""
    js = json.dumps({"username": username, "password": password,
                     "serveraddress": server}).encode()
    return base64.urlsafe_b64encode(js).decode()
