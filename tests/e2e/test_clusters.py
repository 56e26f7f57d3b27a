"""Clusters: create, describe (settings, tags, counts), list with pagination, update settings, delete."""

import botocore.exceptions
import pytest

from helpers import unique


def test_create_describe_list_delete(ecs):
    name = unique("c")
    created = ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "team", "value": "web"}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )["cluster"]
    assert created["clusterName"] == name
    assert created["status"] == "ACTIVE"
    assert created["clusterArn"] == f"arn:aws:ecs:us-east-1:000000000000:cluster/{name}"

    # Creating it again is idempotent, as in ECS.
    assert ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"] == created["clusterArn"]

    described = ecs.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS"])["clusters"][0]
    assert described["tags"] == [{"key": "team", "value": "web"}]
    assert {"name": "containerInsights", "value": "enabled"} in described["settings"]
    for count in ("registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount", "activeServicesCount"):
        assert described[count] == 0

    # Without include, tags are not returned.
    assert "tags" not in ecs.describe_clusters(clusters=[name])["clusters"][0] or not ecs.describe_clusters(
        clusters=[name]
    )["clusters"][0]["tags"]

    assert created["clusterArn"] in ecs.list_clusters()["clusterArns"]

    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert created["clusterArn"] not in ecs.list_clusters()["clusterArns"]
    # A deleted cluster is still described, as INACTIVE.
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "INACTIVE"


def test_describe_reports_missing_clusters(ecs):
    out = ecs.describe_clusters(clusters=["no-such-cluster"])
    assert out["clusters"] == []
    assert out["failures"] == [
        {"arn": "arn:aws:ecs:us-east-1:000000000000:cluster/no-such-cluster", "reason": "MISSING"}
    ]


def test_update_settings(ecs, aws):
    name = unique("c")
    ecs.create_cluster(clusterName=name)
    out = aws("ecs", "update-cluster-settings", "--cluster", name, "--settings", "name=containerInsights,value=enabled")
    assert {"name": "containerInsights", "value": "enabled"} in out["cluster"]["settings"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "maybe"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_cluster_settings(cluster=unique("missing"), settings=[{"name": "containerInsights", "value": "enabled"}])
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"


def test_list_clusters_paginates(ecs):
    names = [unique("page") for _ in range(5)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    seen = []
    token = None
    while True:
        kwargs = {"maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        page = ecs.list_clusters(**kwargs)
        assert len(page["clusterArns"]) <= 2
        seen += page["clusterArns"]
        token = page.get("nextToken")
        if not token:
            break
    for n in names:
        assert f"arn:aws:ecs:us-east-1:000000000000:cluster/{n}" in seen
    # The paginator of the SDK walks the same pages.
    all_arns = [a for p in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}) for a in p["clusterArns"]]
    assert sorted(all_arns) == sorted(seen)


def test_delete_unknown_cluster(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_cluster(cluster=unique("missing"))
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_fargate_capacity_providers(ecs, aws):
    """The Fargate capacity providers are there for every account; a cluster is associated with them (as
    Terraform's aws_ecs_cluster_capacity_providers does) and keeps a default strategy. Tasks on them are refused
    clearly until the FARGATE launch type is there."""
    described = ecs.describe_capacity_providers()["capacityProviders"]
    assert [(p["name"], p["status"]) for p in described] == [("FARGATE", "ACTIVE"), ("FARGATE_SPOT", "ACTIVE")]
    out = ecs.describe_capacity_providers(capacityProviders=["FARGATE", "my-asg"])
    assert [p["name"] for p in out["capacityProviders"]] == ["FARGATE"]
    assert out["failures"][0]["reason"] == "MISSING"

    name = unique("c")
    ecs.create_cluster(clusterName=name)
    strategy = [{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 4}]
    cluster = aws("ecs", "put-cluster-capacity-providers", "--cluster", name,
                  "--capacity-providers", "FARGATE", "FARGATE_SPOT",
                  "--default-capacity-provider-strategy",
                  "capacityProvider=FARGATE,base=1,weight=1", "capacityProvider=FARGATE_SPOT,weight=4")["cluster"]
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert cluster["defaultCapacityProviderStrategy"] == strategy
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["defaultCapacityProviderStrategy"] == strategy

    def refused(code, call, **kwargs):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(**kwargs)
        assert e.value.response["Error"]["Code"] == code, e.value.response
        return e.value.response["Error"]["Message"]

    put = ecs.put_cluster_capacity_providers
    assert "does not exist" in refused("InvalidParameterException", put, cluster=name,
                                       capacityProviders=["FARGATE", "my-asg"], defaultCapacityProviderStrategy=[])
    assert "not associated" in refused("InvalidParameterException", put, cluster=name, capacityProviders=["FARGATE"],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}])
    assert "base value" in refused("InvalidParameterException", put, cluster=name,
                                   capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                   defaultCapacityProviderStrategy=[
                                       {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                       {"capacityProvider": "FARGATE_SPOT", "base": 2, "weight": 1}])
    refused("ClusterNotFoundException", put, cluster=unique("missing"), capacityProviders=[],
            defaultCapacityProviderStrategy=[])
    # Nothing of the refused calls was kept.
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["defaultCapacityProviderStrategy"] == strategy

    # CreateCluster takes them too.
    other = ecs.create_cluster(clusterName=unique("c"), capacityProviders=["FARGATE"],
                               defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])["cluster"]
    assert other["capacityProviders"] == ["FARGATE"]

    # A task with no launch type gets the cluster's default strategy: Fargate, not there yet.
    family = unique("cp")
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "app", "image": "gantry-test/testapp:latest", "memory": 32}])
    assert "FARGATE" in refused("UnsupportedFeatureException", ecs.run_task, cluster=name, taskDefinition=family)
    refused("UnsupportedFeatureException", ecs.run_task, cluster=name, taskDefinition=family,
            capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    refused("InvalidParameterException", ecs.run_task, cluster=name, taskDefinition=family, launchType="EC2",
            capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    refused("UnsupportedFeatureException", ecs.create_service, cluster=name, serviceName=unique("s"),
            taskDefinition=family, desiredCount=1)
    for c in (name, other["clusterName"]):
        ecs.delete_cluster(cluster=c)
