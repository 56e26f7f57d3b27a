"""The server as a test suite uses it: configurable access keys, the admin reset, and state that survives kill -9."""

import time

import boto3
import botocore.exceptions
import pytest
import requests

from conftest import GANTRY_BIN, Gantry, free_port
from helpers import container, unique


@pytest.fixture
def second_server(tmp_path):
    """A server of its own, without the embedded agent, for tests that need other settings."""
    servers = []

    def start(extra_args=(), env=None):
        server = Gantry(GANTRY_BIN, tmp_path / "data", tmp_path / "gantry.log", free_port(), ["--no-agent", *extra_args], env)
        server.start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def client(server, key, secret):
    return boto3.client(
        "ecs", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret
    )


def test_access_keys_from_the_environment(second_server):
    server = second_server(env={"GANTRY_ACCESS_KEYS": "AKIDONE:secret1,AKIDTWO:secret2"})
    assert "clusterArns" in client(server, "AKIDONE", "secret1").list_clusters()
    assert "clusterArns" in client(server, "AKIDTWO", "secret2").list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(server, "test", "test").list_clusters()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_access_keys_from_a_config_file(second_server, tmp_path):
    config = tmp_path / "gantry.toml"
    config.write_text('account = "123456789012"\n[[access_keys]]\nid = "FILEKEY"\nsecret = "filesecret"\n')
    server = second_server(["--config", str(config)])
    arn = client(server, "FILEKEY", "filesecret").create_cluster(clusterName="c")["cluster"]["clusterArn"]
    assert arn == "arn:aws:ecs:us-east-1:123456789012:cluster/c"


def test_admin_reset_forgets_everything_quickly(gantry, ecs):
    name = unique("reset")
    ecs.create_cluster(clusterName=name)
    ecs.register_task_definition(family=name, containerDefinitions=[container()])
    started = time.monotonic()
    gantry.reset()
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert ecs.describe_clusters(clusters=[name])["failures"][0]["reason"] == "MISSING"
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.describe_task_definition(taskDefinition=name)


def test_admin_endpoint_is_off_by_default(tmp_path):
    server = Gantry(GANTRY_BIN, tmp_path / "data", tmp_path / "gantry.log", free_port(), ["--no-agent"], admin=False)
    server.start()
    try:
        client(server, "test", "test").create_cluster(clusterName="kept")
        assert requests.post(server.url("/_gantry/reset"), timeout=10).status_code == 404
        assert client(server, "test", "test").describe_clusters(clusters=["kept"])["clusters"][0]["status"] == "ACTIVE"
    finally:
        server.stop()


def test_state_survives_kill9(gantry, ecs):
    name = unique("durable")
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    family = unique("durable")
    for _ in range(3):
        ecs.register_task_definition(family=family, containerDefinitions=[container()])
    gantry.kill9()
    gantry.start()
    described = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert described["status"] == "ACTIVE" and described["tags"] == [{"key": "k", "value": "v"}]
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 3
    assert requests.get(gantry.url("/_gantry/health"), timeout=5).status_code == 200


def test_reset_keeps_the_host_and_removes_task_containers(gantry, ecs):
    import subprocess

    family = unique("reset")
    ecs.register_task_definition(family=family, containerDefinitions=[container(command=["sleep", "60000"], memory=16)])
    arn = ecs.run_task(taskDefinition=family)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    runtime_id = ecs.describe_tasks(tasks=[arn])["tasks"][0]["containers"][0]["runtimeId"]
    gantry.reset()
    # The host is registered again by the time the reset answers, as on a fresh server.
    instances = ecs.list_container_instances()["containerInstanceArns"]
    assert len(instances) == 1
    assert ecs.describe_clusters(clusters=["default"])["clusters"][0]["status"] == "ACTIVE"
    # The forgotten task's container goes away.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"id={runtime_id}"], capture_output=True, text=True)
        if not out.stdout.strip():
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"container {runtime_id} of a reset task is still there")
