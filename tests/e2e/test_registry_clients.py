"""The registry with real clients other than docker: skopeo (docker://, oci: and docker-daemon: transports, a
multi-arch index with --all, Docker manifest lists, delete) and podman (push and pull). Images are built from the
local test image or written as OCI layouts here; nothing is pulled from the internet."""

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import requests

from helpers import unique

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
TEST_IMAGE = "gantry-test/testapp:latest"


def run(*args, timeout=300):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def skopeo():
    path = shutil.which("skopeo")
    if path is None:
        pytest.fail("skopeo is required by these tests: scripts/setup installs it")
    return path


@pytest.fixture
def host(gantry):
    # `localhost` (not 127.0.0.1): the name ECR's repositoryUri uses, and one the clients may speak HTTP to.
    return f"localhost:{gantry.port}"


@pytest.fixture
def creds(registry_auth):
    return f"{registry_auth[0]}:{registry_auth[1]}"


@pytest.fixture
def new_repo(boto_client):
    def create():
        name = f"clients/{unique('r')}"
        boto_client("ecr").create_repository(repositoryName=name)
        return name

    return create


def dest(creds):
    return ["--dest-tls-verify=false", "--dest-creds", creds]


def src(creds):
    return ["--src-tls-verify=false", "--src-creds", creds]


def manifest_of(gantry, registry_auth, repo, reference):
    r = requests.get(gantry.url(f"/v2/{repo}/manifests/{reference}"), auth=registry_auth, timeout=30)
    assert r.status_code == 200, r.text
    return r


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_oci_layout(root, ref, archs, as_index):
    """Writes an OCI image layout at `root`: one small image per architecture, under `ref` either as an index of
    them (`as_index`) or, for a single architecture, as the image manifest itself. Returns (digest, bytes) of what
    `ref` names."""
    blobs = Path(root) / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data):
        d = sha256(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d

    def desc(media_type, data, **extra):
        return {"mediaType": media_type, "digest": put(data), "size": len(data), **extra}

    manifests = []
    for arch in archs:
        payload = f"hello from {arch}\n".encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mtime = len(payload), 0
            tar.addfile(info, io.BytesIO(payload))
        layer_tar = buf.getvalue()
        config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", config),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(layer_tar, mtime=0))],
        }).encode()
        manifests.append((manifest, {"architecture": arch, "os": "linux"}))
    if as_index:
        top = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            desc(OCI_MANIFEST, m, platform=p) for m, p in manifests]}).encode()
        top_type = OCI_INDEX
    else:
        (top, _), = manifests
        top_type = OCI_MANIFEST
    entry = desc(top_type, top, annotations={"org.opencontainers.image.ref.name": ref})
    (Path(root) / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (Path(root) / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return entry["digest"], top


def layout_manifest(root, ref):
    """The manifest bytes `ref` names in the OCI layout at `root`."""
    index = json.loads((Path(root) / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    return entry, (Path(root) / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes()


def test_skopeo_from_the_docker_daemon_and_back_to_an_oci_layout(gantry, registry_auth, skopeo, host, creds,
                                                                 new_repo, tmp_path):
    repo = new_repo()
    run(skopeo, "copy", *dest(creds), f"docker-daemon:{TEST_IMAGE}", f"docker://{host}/{repo}:1")

    pushed = manifest_of(gantry, registry_auth, repo, "1")
    assert pushed.headers["Content-Type"] == DOCKER_MANIFEST
    info = json.loads(run(skopeo, "inspect", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}:1"))
    assert info["Digest"] == pushed.headers["Docker-Content-Digest"]
    assert info["RepoTags"] == ["1"]
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    raw = run(skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}:1")
    assert raw.encode() == pushed.content
    tags = json.loads(run(skopeo, "list-tags", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}"))
    assert tags["Tags"] == ["1"]

    layout = tmp_path / "layout"
    run(skopeo, "copy", *src(creds), f"docker://{host}/{repo}:1", f"oci:{layout}:back")
    entry, manifest = layout_manifest(layout, "back")
    assert entry["mediaType"] == OCI_MANIFEST
    # Converted to OCI on the way out, same layers.
    assert [layer["digest"] for layer in json.loads(manifest)["layers"]] == info["Layers"]
    for layer in info["Layers"]:
        assert (layout / "blobs" / "sha256" / layer.split(":")[1]).exists()


def test_skopeo_pushes_an_oci_layout_byte_for_byte(gantry, registry_auth, skopeo, host, creds, new_repo, tmp_path):
    repo = new_repo()
    layout = tmp_path / "layout"
    digest, manifest = write_oci_layout(layout, "img", ["amd64"], as_index=False)
    run(skopeo, "copy", "--preserve-digests", *dest(creds), f"oci:{layout}:img", f"docker://{host}/{repo}:oci")
    pushed = manifest_of(gantry, registry_auth, repo, "oci")
    assert pushed.headers["Content-Type"] == OCI_MANIFEST
    assert pushed.headers["Docker-Content-Digest"] == digest
    assert pushed.content == manifest
    info = json.loads(run(skopeo, "inspect", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}:oci"))
    assert info["Digest"] == digest


def test_skopeo_copies_a_multi_arch_index_with_all(gantry, registry_auth, skopeo, host, creds, new_repo, tmp_path):
    repo = new_repo()
    layout = tmp_path / "multi"
    digest, index = write_oci_layout(layout, "multi", ["amd64", "arm64"], as_index=True)

    run(skopeo, "copy", "--all", "--preserve-digests", *dest(creds), f"oci:{layout}:multi",
        f"docker://{host}/{repo}:multi")
    pushed = manifest_of(gantry, registry_auth, repo, "multi")
    assert pushed.headers["Content-Type"] == OCI_INDEX
    assert pushed.headers["Docker-Content-Digest"] == digest
    assert pushed.content == index
    for child in json.loads(index)["manifests"]:
        assert manifest_of(gantry, registry_auth, repo, child["digest"]).headers["Content-Type"] == OCI_MANIFEST
    # One platform out of the index.
    info = json.loads(run(skopeo, "inspect", "--override-arch", "arm64", "--tls-verify=false", "--creds", creds,
                          f"docker://{host}/{repo}:multi"))
    assert info["Architecture"] == "arm64"

    # Back into a layout: the same index.
    back = tmp_path / "back"
    run(skopeo, "copy", "--all", "--preserve-digests", *src(creds), f"docker://{host}/{repo}:multi",
        f"oci:{back}:multi")
    entry, copied = layout_manifest(back, "multi")
    assert (entry["digest"], copied) == (digest, index)

    # The same images as Docker schema 2 under a Docker manifest list.
    run(skopeo, "copy", "--all", "--format", "v2s2", *dest(creds), f"oci:{layout}:multi",
        f"docker://{host}/{repo}:list")
    listed = manifest_of(gantry, registry_auth, repo, "list")
    assert listed.headers["Content-Type"] == DOCKER_LIST
    children = json.loads(listed.content)["manifests"]
    assert {c["platform"]["architecture"] for c in children} == {"amd64", "arm64"}
    for child in children:
        assert manifest_of(gantry, registry_auth, repo, child["digest"]).headers["Content-Type"] == DOCKER_MANIFEST

    # skopeo delete removes the manifest (by digest) and so its tag.
    run(skopeo, "delete", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}:list")
    r = requests.get(gantry.url(f"/v2/{repo}/manifests/list"), auth=registry_auth, timeout=30)
    assert r.status_code == 404


def test_podman_push_and_pull(gantry, registry_auth, skopeo, host, creds, new_repo):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    source, target = new_repo(), new_repo()
    run(skopeo, "copy", *dest(creds), f"docker-daemon:{TEST_IMAGE}", f"docker://{host}/{source}:1")
    digest = manifest_of(gantry, registry_auth, source, "1").headers["Docker-Content-Digest"]
    # Storage of its own, so that nothing is left in the host's podman store (podman wants a short runroot path).
    store = Path(tempfile.mkdtemp(prefix="gantry-podman-"))
    podman = ["podman", "--root", store / "root", "--runroot", store / "run", "--storage-driver", "vfs"]
    try:
        run(*podman, "pull", "--tls-verify=false", "--creds", creds, f"{host}/{source}:1")
        images = run(*podman, "images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}")
        assert f"{host}/{source}:1 {digest}" in images.splitlines()
        run(*podman, "push", "--tls-verify=false", "--creds", creds, f"{host}/{source}:1", f"{host}/{target}:copy")
        pushed = manifest_of(gantry, registry_auth, target, "copy")
        assert pushed.headers["Content-Type"] in (DOCKER_MANIFEST, OCI_MANIFEST)
        r = requests.get(gantry.url(f"/v2/{target}/tags/list"), auth=registry_auth, timeout=30)
        assert r.json()["tags"] == ["copy"]
        # And back by digest.
        run(*podman, "rmi", "-a", "-f")
        run(*podman, "pull", "--tls-verify=false", "--creds", creds,
            f"{host}/{target}@{pushed.headers['Docker-Content-Digest']}")
    finally:
        subprocess.run([*map(str, podman), "rmi", "-a", "-f"], capture_output=True, timeout=120)
        shutil.rmtree(store, ignore_errors=True)
