"""Registry storage robustness with the real binary and docker: a `kill -9` in the middle of a push leaves no corrupt
or half-visible blob and the push can be done again; concurrent pushes of one layer store one good copy; garbage
collection (`POST /_gantry/registry/gc`) removes what a deleted image alone used and keeps what another repository
still needs; an upload survives a restart of the server and finishes after it."""

import base64
import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import GANTRY_BIN, Gantry, free_port
from helpers import docker, unique, wait_for
from shape_check import make_client

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


class Server:
    """A dedicated server (GC knobs of its own, and `kill -9` without disturbing the session's server), with
    registry credentials and docker logged in to it."""

    def __init__(self, tmp_path, extra_args=()):
        self.gantry = Gantry(
            GANTRY_BIN,
            tmp_path / "data",
            tmp_path / "gantry.log",
            free_port(),
            ["--no-agent", "--registry-gc-interval", "0", *extra_args],
        )
        self.gantry.start()
        self.host = f"localhost:{self.gantry.port}"
        self.ecr = make_client("ecr", self.gantry.endpoint)
        data = self.ecr.get_authorization_token()["authorizationData"][0]
        self.auth = tuple(base64.b64decode(data["authorizationToken"]).decode().split(":", 1))
        subprocess.run(
            ["docker", "login", "--username", self.auth[0], "--password-stdin", self.host],
            input=self.auth[1],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def url(self, path):
        return self.gantry.url(path)

    def repo(self, prefix):
        name = unique(prefix)
        self.ecr.create_repository(repositoryName=name)
        return name

    def blob_dir(self):
        return Path(self.gantry.data_dir) / "registry" / "blobs" / "sha256"

    def blob_files(self):
        root = self.blob_dir()
        return sorted(p for p in root.glob("*/*") if p.is_file()) if root.exists() else []

    def has_blob(self, digest):
        hex_ = digest.split(":", 1)[1]
        return (self.blob_dir() / hex_[:2] / hex_).exists()

    def check_blobs_intact(self):
        """Every blob file's sha256 is its name: nothing corrupt or half-written became visible."""
        for path in self.blob_files():
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            assert h.hexdigest() == path.name, f"blob {path.name} holds other bytes"

    def manifest(self, repo, tag):
        r = requests.get(self.url(f"/v2/{repo}/manifests/{tag}"), headers={"Accept": MANIFEST_TYPES}, auth=self.auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self):
        subprocess.run(["docker", "logout", self.host], capture_output=True, timeout=60)
        self.gantry.stop()


@pytest.fixture
def server(tmp_path):
    servers = []

    def start(extra_args=()):
        s = Server(tmp_path, extra_args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def build_image(tag, tmp_path, layers_mb, base=None):
    """An image FROM scratch (or `base`) with one layer of random bytes per entry of `layers_mb`."""
    ctx = tmp_path / unique("ctx")
    ctx.mkdir()
    lines = [f"FROM {base or 'scratch'}"]
    for i, mb in enumerate(layers_mb):
        name = f"{unique('layer')}-{i}.bin"
        (ctx / name).write_bytes(os.urandom(int(mb * 1024 * 1024)))
        lines.append(f"COPY {name} /{name}")
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    out = subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return tag


def push(image, timeout=300):
    out = subprocess.run(["docker", "push", image], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_kill9_during_a_push_leaves_no_corrupt_blob_and_the_push_succeeds_after_restart(server, tmp_path):
    s = server()
    repo = s.repo("crash")
    image = f"{s.host}/{repo}:1"
    build_image(image, tmp_path, [40, 40, 40, 40])
    staging = Path(s.gantry.data_dir) / "registry" / "uploads"
    try:
        proc = subprocess.Popen(["docker", "push", image], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def uploading():
            # Some layer bytes have arrived: the push is in the middle.
            return staging.exists() and any(p.stat().st_size > 1 << 20 for p in staging.iterdir() if p.is_file())

        wait_for(uploading, 120, "a layer upload in progress")
        s.gantry.kill9()
        proc.kill()
        proc.wait(timeout=60)
        s.gantry.start()
        s.check_blobs_intact()
        # Docker takes up the push again, and finishes it.
        pushed = push(image)
        assert "digest: sha256:" in pushed.stdout
        s.check_blobs_intact()
        manifest = s.manifest(repo, "1")
        for d in [manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]:
            assert s.has_blob(d), d
        docker("rmi", image)
        pulled = subprocess.run(["docker", "pull", image], capture_output=True, text=True, timeout=300)
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    finally:
        docker("rmi", "-f", image, check=False)


def test_concurrent_pushes_of_one_layer_store_one_copy(server, tmp_path):
    s = server()
    repo = s.repo("same")
    layer = os.urandom(4 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    results = []

    def upload():
        r = requests.post(
            s.url(f"/v2/{repo}/blobs/uploads/?digest={digest}"),
            data=layer,
            headers={"Content-Type": "application/octet-stream"},
            auth=s.auth,
            timeout=120,
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 8
    r = requests.get(s.url(f"/v2/{repo}/blobs/{digest}"), auth=s.auth, timeout=60)
    assert r.status_code == 200 and r.content == layer

    # The same image pushed to several repositories at once.
    base = f"{s.host}/{unique('img')}"
    build_image(base, tmp_path, [8, 8])
    repos = [s.repo("multi") for _ in range(3)]
    images = [f"{s.host}/{r}:1" for r in repos]
    try:
        for image in images:
            docker("tag", base, image)
        errors = []

        def push_one(image):
            out = subprocess.run(["docker", "push", image], capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                errors.append(out.stdout + out.stderr)

        threads = [threading.Thread(target=push_one, args=(i,)) for i in images]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        manifests = [s.manifest(r, "1") for r in repos]
        assert all(m == manifests[0] for m in manifests)
        blobs = {manifests[0]["config"]["digest"], *(l["digest"] for l in manifests[0]["layers"])}
        # One file per digest: the raw layer and the image's blobs, nothing else.
        names = [p.name for p in s.blob_files()]
        assert sorted(names) == sorted(d.split(":", 1)[1] for d in blobs | {digest})
        s.check_blobs_intact()
        assert not any(p.is_file() for p in (Path(s.gantry.data_dir) / "registry" / "uploads").iterdir())
    finally:
        for image in images + [base]:
            docker("rmi", "-f", image, check=False)


def test_gc_after_batch_delete_image_keeps_the_layers_another_repository_uses(server, tmp_path):
    # No grace: a link that no manifest references is garbage at once (this test pushes nothing meanwhile).
    s = server(["--registry-gc-grace", "0"])
    gone_repo, kept_repo = s.repo("gone"), s.repo("kept")
    base = f"{s.host}/{unique('base')}:1"
    build_image(base, tmp_path, [2])
    gone = f"{s.host}/{gone_repo}:1"
    kept = f"{s.host}/{kept_repo}:1"
    build_image(gone, tmp_path, [3], base=base)
    build_image(kept, tmp_path, [3], base=base)
    try:
        push(gone)
        push(kept)
        g, k = s.manifest(gone_repo, "1"), s.manifest(kept_repo, "1")
        shared = g["layers"][0]["digest"]
        assert k["layers"][0]["digest"] == shared
        only_gone = {g["config"]["digest"], g["layers"][1]["digest"]}
        still_needed = {k["config"]["digest"], *(l["digest"] for l in k["layers"])}
        assert not only_gone & still_needed

        # Nothing is garbage yet.
        r = requests.post(s.url("/_gantry/registry/gc"), timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["blobsRemoved"] == 0

        out = s.ecr.batch_delete_image(repositoryName=gone_repo, imageIds=[{"imageTag": "1"}])
        assert out["failures"] == []
        r = requests.post(s.url("/_gantry/registry/gc"), timeout=60)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["blobsRemoved"] == 2, report
        assert report["linksRemoved"] == 3, report
        assert report["bytesFreed"] > 3 * 1024 * 1024, report
        for d in only_gone:
            assert not s.has_blob(d), d
        for d in still_needed:
            assert s.has_blob(d), d
        s.check_blobs_intact()

        # The other image still pulls, layer by layer from the registry.
        docker("rmi", kept, base)
        pulled = subprocess.run(["docker", "pull", kept], capture_output=True, text=True, timeout=300)
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    finally:
        for image in (gone, kept, base):
            docker("rmi", "-f", image, check=False)


def test_gc_endpoint_needs_the_admin_flag(tmp_path):
    g = Gantry(GANTRY_BIN, tmp_path / "data", tmp_path / "gantry.log", free_port(), ["--no-agent"], admin=False)
    g.start()
    try:
        r = requests.post(g.url("/_gantry/registry/gc"), timeout=10)
        assert r.status_code == 404
    finally:
        g.stop()


def test_an_upload_continues_after_a_restart(server):
    s = server()
    repo = s.repo("resume")
    data = os.urandom(3 * 1024 * 1024 + 17)
    half = len(data) // 2
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(s.url(f"/v2/{repo}/blobs/uploads/"), auth=s.auth, timeout=30)
    assert r.status_code == 202, r.text
    location = s.url(r.headers["Location"])
    r = requests.patch(
        location,
        data=data[:half],
        headers={"Content-Range": f"0-{half - 1}", "Content-Type": "application/octet-stream"},
        auth=s.auth,
        timeout=60,
    )
    assert r.status_code == 202, r.text

    s.gantry.kill9()
    s.gantry.start()

    r = requests.get(location, auth=s.auth, timeout=30)
    assert r.status_code == 204, r.text
    assert r.headers["Range"] == f"0-{half - 1}"
    r = requests.patch(
        location,
        data=data[half:],
        headers={"Content-Range": f"{half}-{len(data) - 1}", "Content-Type": "application/octet-stream"},
        auth=s.auth,
        timeout=60,
    )
    assert r.status_code == 202, r.text
    r = requests.put(f"{location}?digest={digest}", auth=s.auth, timeout=60)
    assert r.status_code == 201, r.text
    r = requests.get(s.url(f"/v2/{repo}/blobs/{digest}"), auth=s.auth, timeout=60)
    assert r.status_code == 200 and r.content == data
    s.check_blobs_intact()
