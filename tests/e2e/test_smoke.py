"""Smoke test: the server answers the ECS API, signed through boto3 and the CLI, and refuses
unsigned requests the way AWS does."""

import requests


def test_list_clusters(ecs, aws):
    assert isinstance(ecs.list_clusters()["clusterArns"], list)
    assert isinstance(aws("ecs", "list-clusters")["clusterArns"], list)


def test_unsigned_request_is_refused(gantry):
    response = requests.post(
        gantry.endpoint + "/",
        headers={
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
            "Content-Type": "application/x-amz-json-1.1",
        },
        data="{}",
        timeout=10,
    )
    assert response.status_code in (400, 403), response.text
    assert "__type" in response.json(), response.text
