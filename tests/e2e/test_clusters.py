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
