"""The ECR API (boto3 and the aws CLI) over Gantry's registry, with docker login and push against it."""

import base64
import hashlib
import os
import subprocess
import time

import pytest
import requests
from botocore.exceptions import ClientError

from helpers import docker, unique

TESTAPP = "gantry-test/testapp:latest"
OTHER = "gantry-test/busybox:latest"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def ecr(boto_client):
    return boto_client("ecr")


@pytest.fixture
def docker_config(tmp_path, gantry, registry_auth):
    """A docker CLI config of the test's own, logged in to the registry, so that the user's stays untouched."""
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    user, token = registry_auth
    docker_env(env, "login", "--username", user, "--password-stdin", f"localhost:{gantry.port}", stdin=token)
    return env


def docker_env(env, *args, stdin=None, check=True):
    return subprocess.run(
        ["docker", *args], input=stdin, env=env, capture_output=True, text=True, timeout=120, check=check
    )


def test_create_describe_and_delete_repositories(ecr, gantry):
    name = unique("api")
    repo = ecr.create_repository(
        repositoryName=name,
        tags=[{"Key": "team", "Value": "core"}],
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
    )["repository"]
    assert repo["repositoryUri"] == f"localhost:{gantry.port}/{name}"
    assert repo["repositoryArn"] == f"arn:aws:ecr:us-east-1:000000000000:repository/{name}"
    assert repo["registryId"] == "000000000000"
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName=name)
    assert error_code(e) == "RepositoryAlreadyExistsException"

    [described] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert described["repositoryUri"] == repo["repositoryUri"]
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "team", "Value": "core"}]
    ecr.tag_resource(resourceArn=repo["repositoryArn"], tags=[{"Key": "env", "Value": "dev"}])
    ecr.untag_resource(resourceArn=repo["repositoryArn"], tagKeys=["team"])
    assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "env", "Value": "dev"}]
    changed = ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
    assert changed["imageTagMutability"] == "MUTABLE"

    # Pagination walks every repository once.
    others = [unique("page") for _ in range(3)]
    for other in others:
        ecr.create_repository(repositoryName=other)
    seen = [r["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 2}) for r in page["repositories"]]
    assert len(seen) == len(set(seen))
    assert {name, *others} <= set(seen)

    assert ecr.delete_repository(repositoryName=name)["repository"]["repositoryName"] == name
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(repositoryNames=[name])
    assert error_code(e) == "RepositoryNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName=name)
    assert error_code(e) == "RepositoryNotFoundException"


def test_bad_input_is_refused(ecr, aws_run):
    # (Lengths are checked by botocore itself; the pattern is the server's.)
    for bad in ["UPPER", "-x", "a//b", "../etc", "ab/", "web:1"]:
        with pytest.raises(ClientError) as e:
            ecr.create_repository(repositoryName=bad)
        assert error_code(e) == "InvalidParameterException", bad
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName=unique("bad"), tags=[{"Key": "aws:x", "Value": "y"}])
    assert error_code(e) == "InvalidTagParameterException"
    with pytest.raises(ClientError) as e:
        ecr.list_images(repositoryName=unique("missing"))
    assert error_code(e) == "RepositoryNotFoundException"
    name = unique("bad")
    ecr.create_repository(repositoryName=name)
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=name, imageManifest="not json", imageTag="x")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "nope"}])
    assert error_code(e) == "ImageNotFoundException"
    failures = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "nope"}, {"imageDigest": "sha256:zz"}])["failures"]
    assert [f["failureCode"] for f in failures] == ["ImageNotFound", "InvalidImageDigest"]
    result = aws_run("ecr", "create-repository", "--repository-name", "Not_Valid!")
    assert result.returncode != 0 and "InvalidParameterException" in result.stderr


def test_cli_login_push_describe_delete(aws, aws_run, gantry, docker_config, ecr):
    name = unique("cli")
    repo = aws("ecr", "create-repository", "--repository-name", name)["repository"]
    host = f"localhost:{gantry.port}"
    assert repo["repositoryUri"] == f"{host}/{name}"

    auth = ecr.get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(auth["authorizationToken"]).decode().startswith("AWS:")
    assert auth["proxyEndpoint"] == f"http://{host}"
    assert 11.9 * 3600 < auth["expiresAt"].timestamp() - time.time() <= 12 * 3600 + 5
    password = aws_run("ecr", "get-login-password")
    assert password.returncode == 0, password.stderr
    login = docker_env(docker_config, "login", "--username", "AWS", "--password-stdin", host, stdin=password.stdout)
    assert "Login Succeeded" in login.stdout, login.stdout + login.stderr

    image = f"{repo['repositoryUri']}:1"
    docker("tag", TESTAPP, image)
    try:
        pushed = docker_env(docker_config, "push", image)
        assert "digest: sha256:" in pushed.stdout, pushed.stdout + pushed.stderr
        digest = pushed.stdout.split("digest: ")[1].split()[0]
        [detail] = aws("ecr", "describe-images", "--repository-name", name)["imageDetails"]
        assert detail["imageTags"] == ["1"]
        assert detail["imageDigest"] == digest
        assert detail["imageSizeInBytes"] > 100_000
        assert detail["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert detail["imagePushedAt"]
        ids = ecr.list_images(repositoryName=name, filter={"tagStatus": "TAGGED"})["imageIds"]
        assert ids == [{"imageDigest": digest, "imageTag": "1"}]

        # The manifest comes back byte-exact: its digest is the pushed one.
        [got] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "1"}])["images"]
        assert "sha256:" + hashlib.sha256(got["imageManifest"].encode()).hexdigest() == digest
        # PutImage under another tag, then delete it by tag: the image stays with tag 1.
        ecr.put_image(repositoryName=name, imageManifest=got["imageManifest"], imageTag="2")
        assert sorted(ecr.describe_images(repositoryName=name)["imageDetails"][0]["imageTags"]) == ["1", "2"]
        deleted = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "2"}])
        assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "2"}] and deleted["failures"] == []

        not_empty = aws_run("ecr", "delete-repository", "--repository-name", name)
        assert not_empty.returncode != 0 and "RepositoryNotEmptyException" in not_empty.stderr
        deleted = aws("ecr", "batch-delete-image", "--repository-name", name, "--image-ids", f"imageDigest={digest}")
        assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "1"}]
        assert ecr.describe_images(repositoryName=name)["imageDetails"] == []
        aws("ecr", "delete-repository", "--repository-name", name)
    finally:
        docker("rmi", "-f", image, check=False)


def test_push_needs_a_repository_and_force_deletes(ecr, gantry, docker_config, registry_auth):
    name = unique("noexist")
    image = f"localhost:{gantry.port}/{name}:1"
    docker("tag", OTHER, image)
    try:
        # As ECR, the registry refuses the first write into a repository nobody created (docker shows
        # "name unknown" after its retries, which take it close to a minute: the raw request is checked instead).
        refused = requests.post(gantry.url(f"/v2/{name}/blobs/uploads/"), auth=registry_auth, timeout=10)
        assert refused.status_code == 404
        assert refused.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        ecr.create_repository(repositoryName=name)
        pushed = docker_env(docker_config, "push", image)
        assert "digest: sha256:" in pushed.stdout, pushed.stdout + pushed.stderr
        with pytest.raises(ClientError) as e:
            ecr.delete_repository(repositoryName=name)
        assert error_code(e) == "RepositoryNotEmptyException"
        ecr.delete_repository(repositoryName=name, force=True)
        with pytest.raises(ClientError) as e:
            ecr.list_images(repositoryName=name)
        assert error_code(e) == "RepositoryNotFoundException"
    finally:
        docker("rmi", "-f", image, check=False)


def test_immutable_tags_over_the_api_and_docker_push(ecr, gantry, docker_config):
    name = unique("immutable")
    uri = ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    image = f"{uri}:1"
    try:
        docker("tag", TESTAPP, image)
        docker_env(docker_config, "push", image)
        # The same image again is fine; another image under the same tag is not.
        docker_env(docker_config, "push", image)
        docker("tag", OTHER, image)
        refused = docker_env(docker_config, "push", image, check=False)
        assert refused.returncode != 0
        assert "tag invalid" in (refused.stdout + refused.stderr).lower(), refused.stdout + refused.stderr

        [first] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "1"}])["images"]
        with pytest.raises(ClientError) as e:
            ecr.put_image(repositoryName=name, imageManifest=first["imageManifest"], imageTag="1")
        assert error_code(e) == "ImageAlreadyExistsException"
        # Another manifest under tag 1 through the API: the other image's, pushed under tag 2 first.
        docker("tag", OTHER, f"{uri}:2")
        docker_env(docker_config, "push", f"{uri}:2")
        [second] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "2"}])["images"]
        with pytest.raises(ClientError) as e:
            ecr.put_image(repositoryName=name, imageManifest=second["imageManifest"], imageTag="1")
        assert error_code(e) == "ImageTagAlreadyExistsException"

        # Once mutable, the tag moves.
        ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
        ecr.put_image(repositoryName=name, imageManifest=second["imageManifest"], imageTag="1")
        [moved] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "1"}])["images"]
        assert moved["imageId"]["imageDigest"] == second["imageId"]["imageDigest"]
        assert ecr.describe_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageDetails"][0]["imageDigest"] == first["imageId"]["imageDigest"]
    finally:
        docker("rmi", "-f", image, f"{uri}:2", check=False)


def test_a_pull_is_recorded_as_last_recorded_pull_time(ecr, gantry, docker_config, registry_auth):
    name = unique("pulled")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    image = f"{uri}:1"
    try:
        docker("tag", OTHER, image)
        docker_env(docker_config, "push", image)
        [detail] = ecr.describe_images(repositoryName=name)["imageDetails"]
        assert "lastRecordedPullTime" not in detail
        # A HEAD (docker's check whether its cached copy is current) is not a pull; a GET of the manifest is.
        accept = {"Accept": detail["imageManifestMediaType"]}
        url = gantry.url(f"/v2/{name}/manifests/1")
        assert requests.head(url, headers=accept, auth=registry_auth, timeout=10).status_code == 200
        assert "lastRecordedPullTime" not in ecr.describe_images(repositoryName=name)["imageDetails"][0]
        before = time.time()
        assert requests.get(url, headers=accept, auth=registry_auth, timeout=10).status_code == 200
        [detail] = ecr.describe_images(repositoryName=name)["imageDetails"]
        assert before - 2 <= detail["lastRecordedPullTime"].timestamp() <= time.time() + 2
    finally:
        docker("rmi", "-f", image, check=False)
