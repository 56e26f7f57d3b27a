"""The registry as docker uses it (OCI distribution on the API port, behind ECR's login), and an ECS task whose
image comes from it. The ECR API is tested in test_ecr.py, the spec endpoint by endpoint in test_oci_conformance.py."""

import os
import subprocess

import requests

from helpers import container, docker, unique


def test_docker_push_pull_and_run_from_the_registry(gantry, ecs, boto_client, docker_login, registry_auth):
    # As in ECR, docker pushes only into a repository created beforehand.
    repo = boto_client("ecr").create_repository(repositoryName=unique("web"))["repository"]["repositoryUri"]
    image = f"{repo}:1"
    docker("tag", "gantry-test/testapp:latest", image)
    try:
        pushed = docker("push", image)
        assert "digest: sha256:" in pushed.stdout, pushed.stdout + pushed.stderr
        name = repo.split("/", 1)[1]
        listed = requests.get(gantry.url(f"/v2/{name}/tags/list"), auth=registry_auth, timeout=10)
        assert listed.json() == {"name": name, "tags": ["1"]}
        # Gone from the local store: the agent has to pull it from Gantry, with the credentials the server hands
        # it (the engine never reads the docker CLI's login).
        docker("rmi", image)
        family = unique("fromreg")
        ecs.register_task_definition(family=family, containerDefinitions=[container(image=image, command=["sleep", "60000"])])
        arn = ecs.run_task(taskDefinition=family)["tasks"][0]["taskArn"]
        ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
        assert task["pullStartedAt"] <= task["pullStoppedAt"]
        ecs.stop_task(task=arn)
        assert docker("image", "inspect", image, check=False).returncode == 0
    finally:
        docker("rmi", "-f", image, check=False)


def test_unknown_manifest_gets_the_spec_error(gantry, registry_auth):
    response = requests.get(gantry.url("/v2/nothing-here/manifests/latest"), auth=registry_auth, timeout=10)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_the_registry_needs_a_login_from_get_authorization_token(gantry, registry_auth, boto_client):
    name = boto_client("ecr").create_repository(repositoryName=unique("locked"))["repository"]["repositoryName"]
    url = gantry.url(f"/v2/{name}/tags/list")
    for auth in [None, ("AWS", "not-a-token"), ("admin", registry_auth[1]), ("AWS", registry_auth[1] + "x")]:
        response = requests.get(url, auth=auth, timeout=10)
        assert response.status_code == 401, auth
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
        challenge = response.headers["WWW-Authenticate"]
        # It names the host the client used.
        host = gantry.endpoint.split("//", 1)[1]
        assert challenge == f'Bearer realm="http://{host}/v2/token",service="{host}"'
    assert requests.get(url, auth=registry_auth, timeout=10).status_code == 200

    # The bearer flow clients negotiate after the challenge.
    assert requests.get(gantry.url("/v2/token"), timeout=10).status_code == 401
    granted = requests.get(
        gantry.url("/v2/token"), params={"service": f"localhost:{gantry.port}", "scope": f"repository:{name}:pull"},
        auth=registry_auth, timeout=10,
    )
    assert granted.status_code == 200
    bearer = granted.json()["token"]
    response = requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
    assert response.status_code == 200 and response.json() == {"name": name, "tags": []}


def test_docker_login_is_refused_with_a_wrong_password(gantry, tmp_path):
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    result = subprocess.run(
        ["docker", "login", "--username", "AWS", "--password-stdin", f"localhost:{gantry.port}"],
        input="wrong", env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "unauthorized" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
