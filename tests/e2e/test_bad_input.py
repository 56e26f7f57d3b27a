"""Bad input gets the AWS error shape and status, and the server keeps serving."""

import json

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests

TARGET = "AmazonEC2ContainerServiceV20141113."


def signed_post(gantry, operation, body, secret="test", target=None, content_type="application/x-amz-json-1.1"):
    """A request signed with SigV4 the way botocore signs it, with any body."""
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=gantry.endpoint + "/",
        data=body,
        headers={"X-Amz-Target": target or TARGET + operation, "Content-Type": content_type},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", secret), "ecs", "us-east-1").add_auth(request)
    return requests.post(request.url, data=body, headers=dict(request.headers), timeout=30)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["__type"] == code, body
    assert body["message"]
    assert response.headers["x-amzn-ErrorType"] == code
    assert response.headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    "operation,body,status,code",
    [
        ("ListClusters", b"{not json", 400, "SerializationException"),
        ("ListClusters", b"[1, 2]", 400, "SerializationException"),
        ("NoSuchOperation", b"{}", 400, "UnknownOperationException"),
        ("RunTask", b"{}", 400, "InvalidParameterException"),
        ("RunTask", json.dumps({"taskDefinition": 7}).encode(), 400, "SerializationException"),
        ("RunTask", json.dumps({"taskDefinition": "x", "count": 11}).encode(), 400, "InvalidParameterException"),
        ("ListClusters", json.dumps({"maxResults": 0}).encode(), 400, "InvalidParameterException"),
        ("ListClusters", json.dumps({"nextToken": "garbage!"}).encode(), 400, "InvalidParameterException"),
        ("DescribeTasks", json.dumps({"cluster": "nope-cluster", "tasks": ["a"]}).encode(), 400, "ClusterNotFoundException"),
        ("StopTask", json.dumps({"cluster": "bad-input", "task": "0123456789abcdef0123456789abcdef"}).encode(), 400, "InvalidParameterException"),
        ("CreateCluster", json.dumps({"clusterName": "bad name!"}).encode(), 400, "InvalidParameterException"),
        ("DescribeTasks", json.dumps({"tasks": []}).encode(), 400, "InvalidParameterException"),
    ],
)
def test_bad_requests(gantry, ecs, operation, body, status, code):
    ecs.create_cluster(clusterName="bad-input")
    assert_error(signed_post(gantry, operation, body), status, code)
    # Still serving.
    assert signed_post(gantry, "ListClusters", b"{}").status_code == 200


def test_bad_signature(gantry):
    assert_error(signed_post(gantry, "ListClusters", b"{}", secret="wrong"), 403, "InvalidSignatureException")


def test_unknown_access_key(gantry):
    request = botocore.awsrequest.AWSRequest(method="POST", url=gantry.endpoint + "/", data=b"{}", headers={"X-Amz-Target": TARGET + "ListClusters"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("nobody", "x"), "ecs", "us-east-1").add_auth(request)
    response = requests.post(request.url, data=b"{}", headers=dict(request.headers), timeout=30)
    assert_error(response, 403, "UnrecognizedClientException")


def test_tampered_body_is_refused(gantry):
    request = botocore.awsrequest.AWSRequest(method="POST", url=gantry.endpoint + "/", data=b"{}", headers={"X-Amz-Target": TARGET + "ListClusters"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "ecs", "us-east-1").add_auth(request)
    response = requests.post(request.url, data=b'{"maxResults": 1}', headers=dict(request.headers), timeout=30)
    assert_error(response, 403, "InvalidSignatureException")


def test_oversized_body(gantry):
    body = b'{"x": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    response = requests.post(gantry.endpoint + "/", data=body, headers={"X-Amz-Target": TARGET + "ListClusters"}, timeout=60)
    assert_error(response, 413, "RequestEntityTooLargeException")
    assert signed_post(gantry, "ListClusters", b"{}").status_code == 200


def test_unsupported_parameter_is_named(gantry):
    body = json.dumps({"clusterName": "x", "serviceConnectDefaults": {"namespace": "n"}}).encode()
    response = signed_post(gantry, "CreateCluster", body)
    assert_error(response, 400, "UnsupportedFeatureException")
    assert "serviceConnectDefaults" in response.json()["message"]


def test_many_bad_requests_in_parallel_leave_the_server_healthy(gantry):
    import concurrent.futures

    bodies = [b"{", b"[]", b"null", b'{"clusters": 5}', b"\xff\xfe", b'{"clusters": ["a"], "include": "TAGS"}']
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda b: signed_post(gantry, "DescribeClusters", b).status_code, bodies * 20))
    assert all(400 <= s < 500 for s in results), results
    assert requests.get(gantry.url("/_gantry/health"), timeout=5).status_code == 200
