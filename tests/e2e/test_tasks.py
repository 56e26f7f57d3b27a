"""Tasks through the API: count, tags, idempotency, describe failures, and the container instance of this host."""

import os

import botocore.exceptions
import pytest

from helpers import container, unique


@pytest.fixture
def family(ecs):
    name = unique("tasks")
    ecs.register_task_definition(
        family=name,
        containerDefinitions=[container(command=["sleep", "60000"], memory=16)],
        tags=[{"key": "from", "value": "taskdef"}],
    )
    return name


def stop_all(ecs, tasks):
    for t in tasks:
        ecs.stop_task(task=t["taskArn"])


def test_run_count_tags_and_describe(ecs, family):
    out = ecs.run_task(
        taskDefinition=family,
        count=3,
        startedBy="tests",
        group="group:one",
        tags=[{"key": "k", "value": "v"}],
        propagateTags="TASK_DEFINITION",
        enableECSManagedTags=True,
    )
    tasks = out["tasks"]
    try:
        assert out["failures"] == []
        assert len(tasks) == 3
        arns = [t["taskArn"] for t in tasks]
        assert len(set(arns)) == 3
        for t in tasks:
            assert t["lastStatus"] == "PENDING" and t["desiredStatus"] == "RUNNING"
            assert t["startedBy"] == "tests" and t["group"] == "group:one"
            assert t["launchType"] == "EC2"
            assert t["containerInstanceArn"].startswith("arn:aws:ecs:us-east-1:000000000000:container-instance/default/")
        ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        described = ecs.describe_tasks(tasks=arns, include=["TAGS"])["tasks"]
        assert {t["lastStatus"] for t in described} == {"RUNNING"}
        assert sorted((x["key"], x["value"]) for x in described[0]["tags"]) == [("aws:ecs:clusterName", "default"), ("from", "taskdef"), ("k", "v")]
        # Tags only with include=TAGS.
        assert not ecs.describe_tasks(tasks=arns[:1])["tasks"][0].get("tags")
        listed = ecs.list_tasks(family=family, startedBy="tests")["taskArns"]
        assert sorted(listed) == sorted(arns)
        # Tag resource on a task.
        ecs.tag_resource(resourceArn=arns[0], tags=[{"key": "extra", "value": "1"}])
        assert {"key": "extra", "value": "1"} in ecs.list_tags_for_resource(resourceArn=arns[0])["tags"]
    finally:
        stop_all(ecs, tasks)


def test_client_token_makes_run_task_idempotent(ecs, family):
    token = unique("token")
    first = ecs.run_task(taskDefinition=family, clientToken=token)["tasks"]
    try:
        # A retried call with the same token returns the same task instead of starting another.
        again = ecs.run_task(taskDefinition=family, clientToken=token)["tasks"]
        assert [t["taskArn"] for t in again] == [t["taskArn"] for t in first]
        assert len(ecs.list_tasks(family=family)["taskArns"]) == 1
    finally:
        stop_all(ecs, first)


def test_describe_reports_missing_tasks(ecs):
    missing = "0123456789abcdef0123456789abcdef"
    out = ecs.describe_tasks(tasks=[missing])
    assert out["tasks"] == []
    assert out["failures"] == [{"arn": f"arn:aws:ecs:us-east-1:000000000000:task/default/{missing}", "reason": "MISSING"}]


def test_stop_task_with_reason(ecs, family):
    task = ecs.run_task(taskDefinition=family)["tasks"][0]
    stopped = ecs.stop_task(task=task["taskArn"], reason="because")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == "because" and stopped["stopCode"] == "UserInitiated"
    ecs.get_waiter("tasks_stopped").wait(tasks=[task["taskArn"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    final = ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]
    assert final["lastStatus"] == "STOPPED" and final["stoppedReason"] == "because"
    assert final["stoppingAt"] <= final["stoppedAt"]


def test_unknown_task_definition_and_bad_overrides(ecs, family):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition=unique("nope"))
    assert e.value.response["Error"]["Code"] == "ClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition=family, overrides={"containerOverrides": [{"name": "ghost", "command": ["x"]}]})
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition=family, launchType="FARGATE")
    assert e.value.response["Error"]["Code"] == "UnsupportedFeatureException"


def test_this_host_is_a_container_instance(ecs):
    arns = ecs.list_container_instances()["containerInstanceArns"]
    assert len(arns) == 1
    ci = ecs.describe_container_instances(containerInstances=arns)["containerInstances"][0]
    assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True
    registered = {r["name"]: r for r in ci["registeredResources"]}
    assert registered["CPU"]["integerValue"] == os.cpu_count() * 1024
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    host_mib = int(meminfo["MemTotal"].split()[0]) // 1024
    assert abs(registered["MEMORY"]["integerValue"] - host_mib) <= host_mib * 0.1
    names = {a["name"] for a in ci["attributes"]}
    assert {"ecs.os-type", "ecs.cpu-architecture"} <= names
    cluster = ecs.describe_clusters(clusters=["default"])["clusters"][0]
    assert cluster["registeredContainerInstancesCount"] == 1
