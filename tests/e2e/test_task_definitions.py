"""Task definitions: register (revisions, every container field), describe, list, families, deregister, delete."""

import botocore.exceptions
import pytest

from helpers import container, unique

FULL_CONTAINER = {
    "name": "web",
    "image": "gantry-test/testapp:latest",
    "cpu": 128,
    "memory": 128,
    "memoryReservation": 64,
    "links": ["db:database"],
    "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
    "essential": True,
    "entryPoint": ["/testapp"],
    "command": ["serve"],
    "environment": [{"name": "A", "value": "1"}],
    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": False}],
    "volumesFrom": [{"sourceContainer": "db", "readOnly": True}],
    "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
    "startTimeout": 30,
    "stopTimeout": 5,
    "hostname": "web",
    "user": "0",
    "workingDirectory": "/",
    "privileged": False,
    "readonlyRootFilesystem": False,
    "dockerLabels": {"app": "web"},
    "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/g", "awslogs-stream-prefix": "p"}},
    "healthCheck": {"command": ["CMD", "/testapp", "health", "/health"], "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 1},
}
DB_CONTAINER = {
    "name": "db",
    "image": "gantry-test/testapp:latest",
    "memory": 64,
    "essential": False,
    "healthCheck": {"command": ["CMD-SHELL", "true"]},
}


def test_register_revisions_and_describe(ecs):
    family = unique("td")
    first = ecs.register_task_definition(
        family=family,
        containerDefinitions=[FULL_CONTAINER, DB_CONTAINER],
        volumes=[{"name": "data", "host": {"sourcePath": "/tmp"}}],
        tags=[{"key": "k", "value": "v"}],
    )
    td = first["taskDefinition"]
    assert td["revision"] == 1
    assert td["status"] == "ACTIVE"
    assert td["networkMode"] == "bridge"
    web = [c for c in td["containerDefinitions"] if c["name"] == "web"][0]
    for key, value in FULL_CONTAINER.items():
        assert web[key] == value, key
    second = ecs.register_task_definition(family=family, containerDefinitions=[container()])["taskDefinition"]
    assert second["revision"] == 2

    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == 2
    by_rev = ecs.describe_task_definition(taskDefinition=f"{family}:1", include=["TAGS"])
    assert by_rev["taskDefinition"]["revision"] == 1
    assert by_rev["tags"] == [{"key": "k", "value": "v"}]
    by_arn = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert by_arn["revision"] == 1


def test_list_filters_sorts_and_paginates(ecs, aws):
    family = unique("list")
    arns = [ecs.register_task_definition(family=family, containerDefinitions=[container()])["taskDefinition"]["taskDefinitionArn"] for _ in range(3)]
    out = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert out == arns
    assert ecs.list_task_definitions(familyPrefix=family, sort="DESC")["taskDefinitionArns"] == arns[::-1]
    page = ecs.list_task_definitions(familyPrefix=family, maxResults=2)
    assert page["taskDefinitionArns"] == arns[:2]
    rest = ecs.list_task_definitions(familyPrefix=family, maxResults=2, nextToken=page["nextToken"])
    assert rest["taskDefinitionArns"] == arns[2:]
    assert "nextToken" not in rest
    # The CLI paginates on its own.
    assert aws("ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "1")["taskDefinitionArns"] == arns

    assert family in ecs.list_task_definition_families(familyPrefix=family[:6])["families"]


def test_deregister_and_delete(ecs):
    family = unique("dereg")
    arn = ecs.register_task_definition(family=family, containerDefinitions=[container()])["taskDefinition"]["taskDefinitionArn"]
    # Deleting an ACTIVE revision is refused in failures.
    out = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert out["taskDefinitions"] == [] and len(out["failures"]) == 1
    td = ecs.deregister_task_definition(taskDefinition=arn)["taskDefinition"]
    assert td["status"] == "INACTIVE" and "deregisteredAt" in td
    assert arn in ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert arn not in ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert family in ecs.list_task_definition_families(familyPrefix=family, status="INACTIVE")["families"]
    assert family not in ecs.list_task_definition_families(familyPrefix=family)["families"]
    out = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert out["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    # Revisions are never reused.
    assert ecs.register_task_definition(family=family, containerDefinitions=[container()])["taskDefinition"]["revision"] == 2


@pytest.mark.parametrize(
    "containers,code",
    [
        ([{"name": "web", "image": "x"}], "ClientException"),  # neither memory nor memoryReservation
        ([container(), container()], "ClientException"),  # duplicate names
        ([container(essential=False)], "ClientException"),  # no essential container
        ([container(image="")], "ClientException"),
        ([container(portMappings=[{"containerPort": 70000}])], "ClientException"),
        ([container(dependsOn=[{"containerName": "ghost", "condition": "START"}])], "ClientException"),
        ([container(healthCheck={"command": ["true"]})], "ClientException"),
        ([container(logConfiguration={"logDriver": "splunk"})], "UnsupportedFeatureException"),
        ([container(secrets=[{"name": "a", "valueFrom": "b"}])], "UnsupportedFeatureException"),
    ],
)
def test_register_refuses_invalid_definitions(ecs, containers, code):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.register_task_definition(family=unique("bad"), containerDefinitions=containers)
    assert e.value.response["Error"]["Code"] == code


def test_describe_unknown(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.describe_task_definition(taskDefinition=unique("nope"))
    assert e.value.response["Error"]["Code"] == "ClientException"


def test_tags_on_task_definitions(ecs):
    arn = ecs.register_task_definition(family=unique("tags"), containerDefinitions=[container()])["taskDefinition"]["taskDefinitionArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
