"""OCI Distribution Spec v1.1 conformance, endpoint by endpoint (end-1 .. end-14, end-12a/b referrers), over raw
HTTP against the running binary. Each test names the endpoints it covers; statuses, headers and error codes are the
ones the spec requires (the legacy Docker code TAG_INVALID is allowed where the spec's table has none)."""

import hashlib
import http.client
import json
import os

import pytest
import requests

from helpers import unique

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# The spec's error codes (code-1 .. code-14), and the legacy Docker code it says clients may meet.
SPEC_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED",
    "UNSUPPORTED", "TOOMANYREQUESTS",
}
LEGACY_CODES = {"TAG_INVALID"}
MAX_MANIFEST = 4 * 1024 * 1024
TIMEOUT = 60


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def descriptor(media_type, data, **extra):
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


class Registry:
    """The registry's `/v2/` API with the session's credentials on every request."""

    def __init__(self, gantry, auth):
        self.gantry = gantry
        self.http = requests.Session()
        self.http.auth = auth
        # A fresh connection per request: an error answered before the request body is read drops the connection
        # (see test_early_errors_do_not_break_the_connection), which would make unrelated requests flaky here.
        self.http.headers["Connection"] = "close"

    def url(self, path):
        return path if path.startswith("http") else self.gantry.url(path)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return self.http.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def start_upload(self, repo):
        r = self.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        assert r.status_code == 202, r.text
        return r.headers["Location"]

    def push_blob(self, repo, data):
        """end-4a then end-6: returns the blob's digest."""
        location = self.start_upload(repo)
        d = digest(data)
        r = self.put(location, params={"digest": d}, data=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return d

    def push_manifest(self, repo, reference, body, media_type):
        r = self.put(f"/v2/{repo}/manifests/{reference}", data=body, headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
        return r


@pytest.fixture(scope="module")
def reg(gantry, registry_auth):
    return Registry(gantry, registry_auth)


@pytest.fixture
def new_repo(boto_client):
    """new_repo(prefix) -> the name of a repository created with the ECR API (pushes need one, as in ECR)."""

    def create(prefix="conf"):
        name = f"{prefix}/{unique('r')}"
        boto_client("ecr").create_repository(repositoryName=name)
        return name

    return create


@pytest.fixture
def repo(new_repo):
    return new_repo()


def assert_error(r, status, *codes):
    """A spec error: the status, a JSON body `{"errors": [{"code", "message", ...}]}` whose first code is one of
    `codes`, and every code from the spec's table."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    if r.request.method == "HEAD":
        return
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    errors = r.json()["errors"]
    assert errors and all(set(e) >= {"code"} for e in errors), r.text
    assert all(e["code"] in SPEC_CODES | LEGACY_CODES for e in errors), r.text
    assert errors[0]["code"] in codes, r.text


def assert_location_pulls(reg, r, body):
    """A 201's Location is a pullable URL of what was pushed."""
    got = reg.get(r.headers["Location"])
    assert got.status_code == 200, got.text
    assert got.content == body


# ---- content of every kind ----


def oci_image(reg, repo, salt="x", subject=None, artifact_type=None, annotations=None, config_type=OCI_CONFIG):
    config = canonical({"architecture": "amd64", "os": "linux", "salt": salt, "rootfs": {"type": "layers"}})
    layer = f"layer {salt}".encode()
    reg.push_blob(repo, config)
    reg.push_blob(repo, layer)
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, config),
        "layers": [descriptor(OCI_LAYER, layer)],
    }
    if artifact_type:
        m["artifactType"] = artifact_type
    if subject:
        m["subject"] = subject
    if annotations:
        m["annotations"] = annotations
    return canonical(m)


def docker_image(reg, repo, salt="x"):
    config = canonical({"architecture": "arm64", "os": "linux", "salt": salt})
    layer = f"docker layer {salt}".encode()
    reg.push_blob(repo, config)
    reg.push_blob(repo, layer)
    # Docker's own layout (indentation, key order): it has to come back byte for byte.
    m = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER, layer)],
    }
    return json.dumps(m, indent=3).encode() + b"\n"


def artifact(reg, repo, subject, artifact_type, payload=b"signature", annotations=None):
    """An OCI artifact: an image manifest with `artifactType`, the empty config and a subject."""
    reg.push_blob(repo, b"{}")
    reg.push_blob(repo, payload)
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": subject,
    }
    if annotations:
        m["annotations"] = annotations
    return canonical(m)


# ---- end-1 ----


def test_end_1_base_answers_200(reg):
    for path in ["/v2/", "/v2"]:
        r = reg.get(path)
        assert r.status_code == 200, r.text
        assert r.headers.get("Docker-Distribution-API-Version") == "registry/2.0"


def test_end_1_unauthenticated_requests_get_401_with_a_challenge(gantry, repo):
    for auth in [None, ("AWS", "not-a-token"), ("AWS", "")]:
        for path in ["/v2/", f"/v2/{repo}/tags/list", f"/v2/{repo}/manifests/latest"]:
            r = requests.get(gantry.url(path), auth=auth, timeout=TIMEOUT)
            assert_error(r, 401, "UNAUTHORIZED")
            assert r.headers.get("WWW-Authenticate", "").split(" ")[0] in ("Basic", "Bearer"), r.headers


# ---- end-2, end-4a, end-6, end-10 ----


def test_end_4a_and_end_6_post_then_put(reg, repo):
    data = os.urandom(3000)
    d = digest(data)
    r = reg.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    # The location holds the session id (a UUID) that Docker-Upload-UUID repeats.
    assert r.headers["Docker-Upload-UUID"] in location
    r = reg.put(location, params={"digest": d}, data=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Location"].endswith(f"/v2/{repo}/blobs/{d}")
    assert_location_pulls(reg, r, data)
    # The finished session is gone.
    assert_error(reg.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(reg.put(location, params={"digest": d}, data=b""), 404, "BLOB_UPLOAD_UNKNOWN")


def test_end_2_get_and_head_a_blob(reg, repo):
    data = os.urandom(2048)
    d = reg.push_blob(repo, data)
    r = reg.get(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Content-Length"] == str(len(data))
    r = reg.head(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Content-Length"] == str(len(data))


def test_end_2_blob_ranges(reg, repo):
    data = bytes(range(256)) * 8
    size = len(data)
    d = reg.push_blob(repo, data)
    path = f"/v2/{repo}/blobs/{d}"
    for rng, start, end in [("bytes=100-199", 100, 199), ("bytes=2000-", 2000, size - 1),
                            ("bytes=-48", size - 48, size - 1), ("bytes=2000-9999", 2000, size - 1)]:
        r = reg.get(path, headers={"Range": rng})
        assert r.status_code == 206, (rng, r.status_code)
        assert r.content == data[start:end + 1], rng
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/{size}", rng
        assert r.headers["Content-Length"] == str(end - start + 1), rng
    for rng in ["bytes=5000-6000", "bytes=500-100", f"bytes={size}-"]:
        r = reg.get(path, headers={"Range": rng})
        assert r.status_code == 416, (rng, r.status_code)
        assert r.headers.get("Content-Range") == f"bytes */{size}", rng


def test_end_2_unknown_and_malformed_blobs(reg, repo, new_repo):
    missing = digest(b"never pushed")
    assert_error(reg.get(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    assert reg.head(f"/v2/{repo}/blobs/{missing}").status_code == 404
    # A blob is visible only in the repositories it was pushed to (or mounted into).
    d = reg.push_blob(repo, b"only here")
    assert_error(reg.get(f"/v2/{new_repo()}/blobs/{d}"), 404, "BLOB_UNKNOWN")
    for bad in ["sha256:abc", "sha256:" + "A" * 64, "md5:" + "a" * 32, "sha256:" + "0" * 63 + "g", "latest"]:
        assert_error(reg.get(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")


def test_end_10_delete_a_blob(reg, repo):
    d = reg.push_blob(repo, b"to delete")
    r = reg.delete(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 202, r.text
    assert_error(reg.get(f"/v2/{repo}/blobs/{d}"), 404, "BLOB_UNKNOWN")
    assert_error(reg.delete(f"/v2/{repo}/blobs/{d}"), 404, "BLOB_UNKNOWN")
    assert_error(reg.delete(f"/v2/{repo}/blobs/sha256:nope"), 400, "DIGEST_INVALID")


# ---- end-4b ----


def test_end_4b_single_post(reg, repo):
    data = b"monolithic " * 100
    d = digest(data)
    r = reg.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, data=data,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code in (201, 202), r.text
    if r.status_code == 201:
        assert r.headers["Docker-Content-Digest"] == d
        assert_location_pulls(reg, r, data)


def test_end_4b_and_end_6_bad_digests(reg, repo):
    data = b"some bytes"
    wrong = digest(b"other bytes")
    r = reg.post(f"/v2/{repo}/blobs/uploads/", params={"digest": wrong}, data=data)
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(reg.get(f"/v2/{repo}/blobs/{wrong}"), 404, "BLOB_UNKNOWN")
    for bad in ["sha256:xyz", "sha512:" + "a" * 128, "nodigest"]:
        assert_error(reg.post(f"/v2/{repo}/blobs/uploads/", params={"digest": bad}, data=data), 400, "DIGEST_INVALID")
    # end-6: a digest that does not match, a malformed one, none at all.
    for params in [{"digest": wrong}, {"digest": "sha256:../../etc/passwd"}, {}]:
        location = reg.start_upload(repo)
        r = reg.put(location, params=params, data=data)
        assert_error(r, 400, "DIGEST_INVALID")
    assert_error(reg.get(f"/v2/{repo}/blobs/{wrong}"), 404, "BLOB_UNKNOWN")


# ---- end-5, end-13, end-6 (chunked) ----


def test_end_5_chunked_upload_with_status_and_416(reg, repo):
    data = os.urandom(3 * 1024)
    d = digest(data)
    location = reg.start_upload(repo)
    chunks = [(0, 1023), (1024, 2047)]
    for start, end in chunks:
        r = reg.patch(location, data=data[start:end + 1], headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}"})
        assert r.status_code == 202, r.text
        assert r.headers["Range"] == f"0-{end}"
        assert r.headers["Docker-Upload-UUID"]
        location = r.headers["Location"]
    # Out of order: skips ahead, then goes back.
    for start, end in [(3000, 3071), (0, 1023), (1000, 2100)]:
        r = reg.patch(location, data=os.urandom(end - start + 1), headers={"Content-Range": f"{start}-{end}"})
        assert r.status_code == 416, (start, r.status_code, r.text)
        assert r.headers.get("Range") == "0-2047"
    # end-13: where the upload stands.
    r = reg.get(location)
    assert r.status_code == 204, r.text
    assert r.headers["Range"] == "0-2047"
    assert r.headers["Docker-Upload-UUID"]
    location = r.headers["Location"]
    # The final chunk in the closing PUT; out of order there is 416 too.
    r = reg.put(location, params={"digest": d}, data=data[2049:], headers={"Content-Range": f"2049-{len(data) - 1}"})
    assert r.status_code == 416, r.text
    r = reg.put(location, params={"digest": d}, data=data[2048:],
                headers={"Content-Range": f"2048-{len(data) - 1}", "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert_location_pulls(reg, r, data)


def test_end_5_streamed_patch_without_content_range(reg, repo):
    """docker's way: PATCH bodies without Content-Range append, then an empty PUT closes."""
    data = os.urandom(5000)
    location = reg.start_upload(repo)
    r = reg.patch(location, data=iter([data[:2500], data[2500:]]))
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    r = reg.put(r.headers["Location"], params={"digest": digest(data)})
    assert r.status_code == 201, r.text
    assert_location_pulls(reg, r, data)


def test_end_5_bad_chunks(reg, repo):
    location = reg.start_upload(repo)
    # Content-Length disagreeing with Content-Range.
    r = reg.patch(location, data=b"12345", headers={"Content-Range": "0-9"})
    assert_error(r, 400, "SIZE_INVALID", "BLOB_UPLOAD_INVALID")
    # A Content-Range that is not `<start>-<end>`.
    location = reg.start_upload(repo)
    for bad in ["bytes=a-b", "9-0", "-5"]:
        r = reg.patch(location, data=b"12345", headers={"Content-Range": bad})
        assert_error(r, 400, "BLOB_UPLOAD_INVALID", "SIZE_INVALID")


def test_end_5_13_14_unknown_uploads(reg, repo):
    for uid in ["3f1c7c2e-0000-4000-8000-000000000000", "not-a-uuid"]:
        path = f"/v2/{repo}/blobs/uploads/{uid}"
        assert_error(reg.get(path), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(reg.patch(path, data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(reg.put(path, params={"digest": digest(b"x")}, data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(reg.delete(path), 404, "BLOB_UPLOAD_UNKNOWN")


def test_uploads_belong_to_their_repository(reg, repo, new_repo):
    location = reg.start_upload(repo)
    uid = location.rstrip("/").split("/")[-1].split("?")[0]
    other = new_repo()
    assert_error(reg.get(f"/v2/{other}/blobs/uploads/{uid}"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert reg.get(location).status_code == 204


# ---- end-14 ----


def test_end_14_cancel_an_upload(reg, repo):
    location = reg.start_upload(repo)
    reg.patch(location, data=b"partial", headers={"Content-Range": "0-6"})
    r = reg.delete(location)
    assert r.status_code == 204, r.text
    assert_error(reg.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(reg.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


# ---- end-11 ----


def test_end_11_mount_from_another_repository(reg, repo, new_repo):
    data = b"shared layer" * 10
    d = reg.push_blob(repo, data)
    target = new_repo()
    r = reg.post(f"/v2/{target}/blobs/uploads/", params={"mount": d, "from": repo})
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/v2/{target}/blobs/{d}")
    assert r.headers["Docker-Content-Digest"] == d
    assert_location_pulls(reg, r, data)
    # Not mountable (unknown blob, or not in `from`): an upload session instead.
    for params in [{"mount": digest(b"unknown"), "from": repo}, {"mount": d, "from": new_repo()}]:
        r = reg.post(f"/v2/{new_repo()}/blobs/uploads/", params=params)
        assert r.status_code == 202, r.text
        assert reg.get(r.headers["Location"]).status_code == 204
    assert_error(reg.post(f"/v2/{target}/blobs/uploads/", params={"mount": "sha256:bad", "from": repo}),
                 400, "DIGEST_INVALID")


# ---- end-7, end-3: manifests of every kind ----


def test_end_7_and_end_3_every_kind_of_manifest(reg, repo):
    oci = oci_image(reg, repo, "oci")
    docker = docker_image(reg, repo, "docker")
    reg.push_manifest(repo, "oci", oci, OCI_MANIFEST)
    reg.push_manifest(repo, "docker", docker, DOCKER_MANIFEST)
    platform = {"architecture": "amd64", "os": "linux"}
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, oci, platform=platform),
        descriptor(DOCKER_MANIFEST, docker, platform={"architecture": "arm64", "os": "linux"}),
    ], "annotations": {"org.opencontainers.image.ref.name": "multi"}})
    docker_list = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        descriptor(DOCKER_MANIFEST, docker, platform={"architecture": "arm64", "os": "linux"})]}, indent=2).encode()
    subject = descriptor(OCI_MANIFEST, oci)
    sig = artifact(reg, repo, subject, "application/vnd.example.signature.v1")
    cases = [
        ("oci", oci, OCI_MANIFEST),
        ("docker", docker, DOCKER_MANIFEST),
        ("index", index, OCI_INDEX),
        ("list", docker_list, DOCKER_LIST),
        ("artifact", sig, OCI_MANIFEST),
    ]
    for tag, body, media_type in cases:
        d = digest(body)
        r = reg.put(f"/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": media_type})
        assert r.status_code == 201, (tag, r.text)
        assert r.headers["Docker-Content-Digest"] == d
        assert r.headers["Location"].endswith(f"/v2/{repo}/manifests/{d}")
        assert_location_pulls(reg, r, body)
        if tag == "artifact":
            assert r.headers["OCI-Subject"] == subject["digest"]
        else:
            assert "OCI-Subject" not in r.headers
        for reference in [tag, d]:
            path = f"/v2/{repo}/manifests/{reference}"
            got = reg.get(path, headers={"Accept": media_type})
            assert got.status_code == 200, got.text
            assert got.content == body, tag
            assert got.headers["Content-Type"] == media_type
            assert got.headers["Docker-Content-Digest"] == d
            assert got.headers["Content-Length"] == str(len(body))
            head = reg.head(path)
            assert head.status_code == 200
            assert head.content == b""
            assert head.headers["Docker-Content-Digest"] == d
            assert head.headers["Content-Length"] == str(len(body))
            assert head.headers["Content-Type"] == media_type


def test_end_7_push_by_digest_and_move_a_tag(reg, repo):
    one = oci_image(reg, repo, "one")
    two = oci_image(reg, repo, "two")
    r = reg.push_manifest(repo, digest(one), one, OCI_MANIFEST)
    assert r.headers["Docker-Content-Digest"] == digest(one)
    assert reg.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    reg.push_manifest(repo, "t", one, OCI_MANIFEST)
    reg.push_manifest(repo, "t", two, OCI_MANIFEST)
    assert reg.get(f"/v2/{repo}/manifests/t").content == two
    assert reg.get(f"/v2/{repo}/manifests/{digest(one)}").content == one
    # The same push again is fine.
    reg.push_manifest(repo, "t", two, OCI_MANIFEST)
    # Parameters on Content-Type are ignored, and none are sent back.
    reg.push_manifest(repo, "p", one, OCI_MANIFEST + "; charset=utf-8")
    assert reg.get(f"/v2/{repo}/manifests/p").headers["Content-Type"] == OCI_MANIFEST


def test_end_7_subject_may_come_after_its_referrer(reg, repo):
    image = oci_image(reg, repo, "later")
    subject = descriptor(OCI_MANIFEST, image)
    sig = artifact(reg, repo, subject, "application/vnd.example.signature.v1")
    r = reg.push_manifest(repo, digest(sig), sig, OCI_MANIFEST)
    assert r.headers["OCI-Subject"] == subject["digest"]
    reg.push_manifest(repo, "later", image, OCI_MANIFEST)


def test_end_7_refused_manifests(reg, repo, new_repo):
    image = oci_image(reg, repo, "refused")
    m = json.loads(image)
    path = f"/v2/{repo}/manifests/bad"

    def put(body, media_type=OCI_MANIFEST, reference="bad"):
        return reg.put(f"/v2/{repo}/manifests/{reference}", data=body, headers={"Content-Type": media_type})

    # The digest in the URL is not the body's.
    assert_error(put(image, reference=digest(b"other")), 400, "DIGEST_INVALID")
    assert_error(put(image, reference="sha256:short"), 400, "DIGEST_INVALID")
    # References to blobs or manifests the repository does not hold.
    missing = dict(m, layers=[descriptor(OCI_LAYER, b"never pushed")])
    r = put(canonical(missing))
    assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert r.json()["errors"][0].get("detail", {}).get("digest") == digest(b"never pushed")
    missing_config = dict(m, config=descriptor(OCI_CONFIG, b"{\"never\":1}"))
    assert_error(put(canonical(missing_config)), 400, "MANIFEST_BLOB_UNKNOWN")
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": [descriptor(OCI_MANIFEST, b"{\"not\":\"pushed\"}")]})
    assert_error(put(index, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")
    # Not a manifest.
    for body in [b"{not json", b"[]", b"{\"schemaVersion\": 1}", canonical(dict(m, layers={})),
                 canonical(dict(m, layers=[{"mediaType": OCI_LAYER, "digest": "sha256:../../x", "size": 1}])),
                 canonical({k: v for k, v in m.items() if k != "config"})]:
        assert_error(put(body), 400, "MANIFEST_INVALID")
    # Content-Type and mediaType disagree.
    assert_error(put(image, OCI_INDEX), 400, "MANIFEST_INVALID")
    # Into a repository that was not created.
    r = reg.put(f"/v2/conf/{unique('absent')}/manifests/v1", data=image, headers={"Content-Type": OCI_MANIFEST})
    assert_error(r, 404, "NAME_UNKNOWN")
    # Nothing was stored under the tag.
    assert_error(reg.get(path), 404, "MANIFEST_UNKNOWN")


def test_end_7_manifest_size_limit(reg, repo):
    image = json.loads(oci_image(reg, repo, "big"))

    def padded(size):
        m = dict(image, annotations={"pad": ""})
        base = len(canonical(m))
        m["annotations"]["pad"] = "x" * (size - base)
        body = canonical(m)
        assert len(body) == size
        return body

    # At least 4 MiB is accepted.
    at_limit = padded(MAX_MANIFEST)
    r = reg.push_manifest(repo, "at-limit", at_limit, OCI_MANIFEST)
    assert reg.get(r.headers["Location"]).content == at_limit
    # Above: 413, announced with Content-Length or streamed without one. The spec has no code of its own for it.
    over = padded(MAX_MANIFEST + 1)
    for data in [over, iter([over[:MAX_MANIFEST // 2], over[MAX_MANIFEST // 2:]])]:
        try:
            r = reg.put(f"/v2/{repo}/manifests/over", data=data, headers={"Content-Type": OCI_MANIFEST})
        except requests.ConnectionError as e:
            pytest.fail(f"the server dropped the connection instead of answering 413: {e}")
        assert_error(r, 413, "MANIFEST_INVALID", "SIZE_INVALID")
    assert_error(reg.get(f"/v2/{repo}/manifests/over"), 404, "MANIFEST_UNKNOWN")


def test_end_3_unknown_manifests(reg, repo):
    for reference in ["nope", digest(b"nothing")]:
        assert_error(reg.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
        assert reg.head(f"/v2/{repo}/manifests/{reference}").status_code == 404
    # A repository that does not exist.
    r = reg.get(f"/v2/conf/{unique('absent')}/manifests/latest")
    assert_error(r, 404, "NAME_UNKNOWN", "MANIFEST_UNKNOWN")
    assert_error(reg.get(f"/v2/{repo}/manifests/sha256:zz"), 400, "DIGEST_INVALID")


def test_manifest_endpoints_refuse_other_methods(reg, repo):
    assert_error(reg.post(f"/v2/{repo}/manifests/v1"), 405, "UNSUPPORTED")
    assert_error(reg.patch(f"/v2/{repo}/tags/list"), 405, "UNSUPPORTED")
    assert_error(reg.put(f"/v2/{repo}/blobs/{digest(b'x')}", data=b"x"), 405, "UNSUPPORTED")


# ---- end-8a/b ----


def test_end_8_tags_list_and_pagination(reg, repo):
    image = oci_image(reg, repo, "tags")
    tags = ["v1", "v10", "v2", "latest", "A-upper", "_under", "1.0.0"]
    for t in tags:
        reg.push_manifest(repo, t, image, OCI_MANIFEST)
    r = reg.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"name": repo, "tags": sorted(tags)}
    # n: pages of n, linked with rel="next" until the end.
    seen, url, pages = [], f"/v2/{repo}/tags/list?n=3", 0
    while url:
        r = reg.get(url)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        url = r.links.get("next", {}).get("url")
        if url:
            assert len(page) == 3
            assert 'rel="next"' in r.headers["Link"]
    assert seen == sorted(tags) and pages == 3
    # last: the tags after it; n=0: an empty list and no Link.
    r = reg.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "latest"})
    assert r.json()["tags"] == [t for t in sorted(tags) if t > "latest"][:2]
    r = reg.get(f"/v2/{repo}/tags/list", params={"last": "v10"})
    assert r.json()["tags"] == ["v2"]
    r = reg.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert r.status_code == 200 and r.json()["tags"] == [] and "Link" not in r.headers
    r = reg.get(f"/v2/{repo}/tags/list", params={"n": 100})
    assert r.json()["tags"] == sorted(tags) and "Link" not in r.headers


def test_end_8_empty_and_unknown_repositories(reg, repo):
    r = reg.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo, "tags": []}
    assert_error(reg.get(f"/v2/conf/{unique('absent')}/tags/list"), 404, "NAME_UNKNOWN")


# ---- end-9 ----


def test_end_9_delete_tags_and_manifests(reg, repo):
    image = oci_image(reg, repo, "del")
    d = digest(image)
    for t in ["a", "b", "c"]:
        reg.push_manifest(repo, t, image, OCI_MANIFEST)
    r = reg.delete(f"/v2/{repo}/manifests/a")
    assert r.status_code == 202, r.text
    assert_error(reg.get(f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")
    assert reg.get(f"/v2/{repo}/manifests/{d}").status_code == 200
    r = reg.delete(f"/v2/{repo}/manifests/{d}")
    assert r.status_code == 202, r.text
    for reference in [d, "b", "c"]:
        assert_error(reg.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert reg.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    for reference in [d, "a"]:
        assert_error(reg.delete(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert_error(reg.delete(f"/v2/{repo}/manifests/sha256:bad"), 400, "DIGEST_INVALID")


# ---- end-12a/b ----


def test_end_12_referrers(reg, repo, new_repo):
    image = oci_image(reg, repo, "subject")
    reg.push_manifest(repo, "subject", image, OCI_MANIFEST)
    subject = descriptor(OCI_MANIFEST, image)
    sbom_type, sig_type = "application/vnd.example.sbom.v1", "application/vnd.example.signature.v1"
    sbom = artifact(reg, repo, subject, sbom_type, b"sbom", {"org.example.sbom.format": "json"})
    sig = artifact(reg, repo, subject, sig_type, b"sig")
    # Without artifactType, an image manifest is listed under its config's media type.
    plain = oci_image(reg, repo, "plain", subject=subject, config_type="application/vnd.example.config.v1+json")
    # An index with a subject: its artifactType when it has one, none otherwise; its annotations.
    index = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "subject": subject,
                       "manifests": [descriptor(OCI_MANIFEST, image)],
                       "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}})
    unrelated = artifact(reg, repo, descriptor(OCI_MANIFEST, b"{}"), sig_type, b"elsewhere")
    for body, media_type in [(sbom, OCI_MANIFEST), (sig, OCI_MANIFEST), (plain, OCI_MANIFEST), (index, OCI_INDEX),
                             (unrelated, OCI_MANIFEST)]:
        r = reg.push_manifest(repo, digest(body), body, media_type)
        assert r.headers["OCI-Subject"] == json.loads(body)["subject"]["digest"]

    r = reg.get(f"/v2/{repo}/referrers/{subject['digest']}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in r.headers
    listed = r.json()
    assert listed["schemaVersion"] == 2 and listed["mediaType"] == OCI_INDEX
    want = {
        digest(sbom): descriptor(OCI_MANIFEST, sbom, artifactType=sbom_type,
                                 annotations={"org.example.sbom.format": "json"}),
        digest(sig): descriptor(OCI_MANIFEST, sig, artifactType=sig_type),
        digest(plain): descriptor(OCI_MANIFEST, plain, artifactType="application/vnd.example.config.v1+json"),
        digest(index): descriptor(OCI_INDEX, index,
                                  annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}),
    }
    assert {m["digest"]: m for m in listed["manifests"]} == want

    # end-12b: filtered by artifactType.
    r = reg.get(f"/v2/{repo}/referrers/{subject['digest']}", params={"artifactType": sig_type})
    assert r.status_code == 200
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert r.json()["manifests"] == [want[digest(sig)]]
    r = reg.get(f"/v2/{repo}/referrers/{subject['digest']}", params={"artifactType": "application/none"})
    assert r.json()["manifests"] == [] and r.headers["OCI-Filters-Applied"] == "artifactType"

    # A deleted referrer leaves the list.
    assert reg.delete(f"/v2/{repo}/manifests/{digest(sig)}").status_code == 202
    r = reg.get(f"/v2/{repo}/referrers/{subject['digest']}")
    assert digest(sig) not in {m["digest"] for m in r.json()["manifests"]}

    # Unknown subjects: an empty index, never a 404. Another repository does not see these referrers.
    for path in [f"/v2/{repo}/referrers/{digest(b'no such subject')}", f"/v2/{new_repo()}/referrers/{subject['digest']}"]:
        r = reg.get(path)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == OCI_INDEX
        assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    # Malformed digests: 400.
    for bad in ["sha256:abc", "latest", "sha256:" + "Z" * 64]:
        assert_error(reg.get(f"/v2/{repo}/referrers/{bad}"), 400, "DIGEST_INVALID")
    assert_error(reg.get(f"/v2/conf/{unique('absent')}/referrers/{subject['digest']}"), 404, "NAME_UNKNOWN")


# ---- names, tags, path traversal ----


def raw_request(gantry, auth, method, path, body=b""):
    """A request with the path sent exactly as given (requests would normalise `..` and `//`)."""
    import base64

    conn = http.client.HTTPConnection("127.0.0.1", gantry.port, timeout=TIMEOUT)
    try:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        conn.request(method, path, body=body, headers={"Authorization": f"Basic {token}"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_invalid_repository_names(reg):
    for name in ["Upper", "-lead", "trail-", "a..b", "a___b", "a_.b", "a/", "x" * 256, "a:b", "%2e%2e",
                 "a%2Fb", "caf%C3%A9"]:
        r = reg.get(f"/v2/{name}/tags/list")
        assert_error(r, 400, "NAME_INVALID")
        r = reg.post(f"/v2/{name}/blobs/uploads/")
        assert_error(r, 400, "NAME_INVALID")


def test_invalid_tags(reg, repo):
    image = oci_image(reg, repo, "badtag")
    for tag in [".dot", "-dash", "a" * 129, "t%2Fx", "%C3%A9"]:
        r = reg.put(f"/v2/{repo}/manifests/{tag}", data=image, headers={"Content-Type": OCI_MANIFEST})
        assert_error(r, 400, "TAG_INVALID", "MANIFEST_INVALID")
    # The longest tag the spec allows is fine.
    reg.push_manifest(repo, "a" * 128, image, OCI_MANIFEST)


def test_path_traversal_writes_nothing_outside_the_data_dir(gantry, registry_auth, repo):
    def files():
        return {p for p in gantry.data_dir.parent.rglob("*") if not str(p).startswith(str(gantry.data_dir) + "/")}

    before = files()
    d = digest(b"payload")
    attempts = [
        ("POST", "/v2/../../etc/blobs/uploads/"),
        ("POST", f"/v2/{repo}/../../x/blobs/uploads/?digest={d}"),
        ("POST", f"/v2/%2e%2e/%2e%2e/blobs/uploads/?digest={d}"),
        ("POST", f"/v2/{repo}/blobs/uploads/?digest=sha256:..%2F..%2F..%2Fescape"),
        ("POST", f"/v2/{repo}/blobs/uploads/?mount=sha256:..%2F..%2Fescape&from={repo}"),
        ("POST", f"/v2/{repo}/blobs/uploads/?mount={d}&from=../../{repo}"),
        ("PATCH", f"/v2/{repo}/blobs/uploads/..%2F..%2F..%2Fescape"),
        ("PUT", f"/v2/{repo}/blobs/uploads/..%2F..%2Fescape?digest={d}"),
        ("GET", f"/v2/{repo}/blobs/sha256:..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
        ("PUT", f"/v2/{repo}/manifests/..%2F..%2Fescape"),
        ("PUT", f"/v2/{repo}/manifests/sha256:..%2F..%2Fescape"),
        ("GET", f"/v2/{repo}/referrers/sha256:..%2F..%2Fescape"),
        ("GET", "/v2/./x/tags/list"),
        ("GET", "/v2/a//b/tags/list"),
    ]
    for method, path in attempts:
        status, body = raw_request(gantry, registry_auth, method, path, b"payload")
        assert 400 <= status < 500, (method, path, status, body)
        if body:
            assert json.loads(body)["errors"][0]["code"] in SPEC_CODES | LEGACY_CODES, (method, path, body)
    assert files() == before
    assert not any("escape" in p.name for p in gantry.data_dir.rglob("*"))


def early_error_then_reuse(gantry, auth, method, path, body_size):
    """Sends a request with a large body the server answers with an error, then (if the answer did not say
    `Connection: close`) a second request on the same connection. Returns (first status, headers, second status)."""
    import base64
    import socket

    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    with socket.create_connection(("127.0.0.1", gantry.port), timeout=10) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\nContent-Length: {body_size}\r\n\r\n"
        s.sendall(head.encode())
        try:
            s.sendall(b"x" * body_size)
        except OSError:
            pass  # the server may stop reading once it has answered
        f = s.makefile("rb")
        status = int(f.readline().split()[1])
        headers = {}
        while (line := f.readline().strip()):
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        f.read(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            return status, headers, None
        try:
            s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode())
            line = f.readline()
        except OSError:
            line = b""
        return status, headers, int(line.split()[1]) if line else None


@pytest.mark.parametrize("case", [
    "manifest-invalid-tag",
    "manifest-too-large",
    "upload-bad-digest",
    "unauthenticated-put",
])
def test_early_errors_do_not_break_the_connection(gantry, registry_auth, repo, case):
    """HTTP/1.1 keep-alive: an error answered before the body is read must say `Connection: close`, or the server
    must read the body and keep serving the connection; a silent drop makes a client's next request fail."""
    method, path, size, status = {
        "manifest-invalid-tag": ("PUT", f"/v2/{repo}/manifests/-bad", 2 * 1024 * 1024, 400),
        "manifest-too-large": ("PUT", f"/v2/{repo}/manifests/big", MAX_MANIFEST + 1, 413),
        "upload-bad-digest": ("POST", f"/v2/{repo}/blobs/uploads/?digest=sha256:bad", 2 * 1024 * 1024, 400),
        "unauthenticated-put": ("PUT", f"/v2/{repo}/manifests/v1", 2 * 1024 * 1024, 401),
    }[case]
    auth = ("AWS", "wrong") if case == "unauthenticated-put" else registry_auth
    first, headers, second = early_error_then_reuse(gantry, auth, method, path, size)
    assert first == status, headers
    if headers.get("connection", "").lower() != "close":
        assert second is not None, f"the connection was dropped after {first} without Connection: close"
