"""The registry as docker uses it (OCI distribution on the API port), and an ECS task whose image comes from it.
The ECR API is tested in test_ecr.py; authentication, lifecycle and GC are not built yet (issue 3 goes on)."""

import requests

from helpers import container, docker, unique


def test_docker_push_pull_and_run_from_the_registry(gantry, ecs, boto_client):
    # As in ECR, docker pushes only into a repository created beforehand.
    repo = boto_client("ecr").create_repository(repositoryName=unique("web"))["repository"]["repositoryUri"]
    image = f"{repo}:1"
    docker("tag", "gantry-test/testapp:latest", image)
    try:
        pushed = docker("push", image)
        assert "digest: sha256:" in pushed.stdout, pushed.stdout + pushed.stderr
        name = repo.split("/", 1)[1]
        assert requests.get(gantry.url(f"/v2/{name}/tags/list"), timeout=10).json() == {"name": name, "tags": ["1"]}
        # Gone from the local store: the agent has to pull it from Gantry.
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


def test_unknown_manifest_gets_the_spec_error(gantry):
    response = requests.get(gantry.url("/v2/nothing-here/manifests/latest"), timeout=10)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
