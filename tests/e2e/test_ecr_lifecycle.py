"""ECR lifecycle policies and repository policies (boto3 and the aws CLI), and the lifecycle job that really
expires images on a server of its own with a short interval."""

import base64
import hashlib
import json
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import GANTRY_BIN, Gantry, free_port
from helpers import unique, wait_for
from shape_check import make_client

TARGET = "AmazonEC2ContainerRegistry_V20150921."


def rule(priority, tag_status, count_type, number, **extra):
    selection = {"tagStatus": tag_status, "countType": count_type, "countNumber": number, **extra}
    if count_type == "sinceImagePushed":
        selection["countUnit"] = "days"
    return {"rulePriority": priority, "description": f"rule {priority}", "selection": selection, "action": {"type": "expire"}}


def policy(*rules):
    return json.dumps({"rules": list(rules)})


KEEP_ONE_UNTAGGED = policy(rule(1, "untagged", "imageCountMoreThan", 1))


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def ecr(boto_client):
    return boto_client("ecr")


def signed_post(endpoint, operation, body):
    """An ECR request signed with SigV4 as botocore signs it, to see the raw error body."""
    data = json.dumps(body).encode()
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=data,
        headers={"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1"},
    )
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    return requests.post(request.url, data=data, headers=dict(request.headers), timeout=30)


def push_image(ecr, endpoint, auth, name, seed, tag=None):
    """Uploads a config and a layer blob over the registry API, then puts a manifest of them with ECR PutImage.
    Each seed makes a distinct image. Returns the image digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = b"a layer shared by the images"
    for blob in (config, layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = requests.post(
            f"{endpoint}/v2/{name}/blobs/uploads/?digest={digest}",
            data=blob,
            auth=auth,
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}],
    })
    args = {"repositoryName": name, "imageManifest": manifest}
    if tag:
        args["imageTag"] = tag
    return ecr.put_image(**args)["image"]["imageId"]["imageDigest"]


def test_put_get_delete_lifecycle_policy(ecr, aws, aws_run):
    name = unique("lc")
    ecr.create_repository(repositoryName=name)
    with pytest.raises(ClientError) as e:
        ecr.get_lifecycle_policy(repositoryName=name)
    assert error_code(e) == "LifecyclePolicyNotFoundException"

    put = ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=KEEP_ONE_UNTAGGED)
    assert put["repositoryName"] == name and put["registryId"] == "000000000000"
    assert json.loads(put["lifecyclePolicyText"]) == json.loads(KEEP_ONE_UNTAGGED)
    got = ecr.get_lifecycle_policy(repositoryName=name)
    assert json.loads(got["lifecyclePolicyText"]) == json.loads(KEEP_ONE_UNTAGGED)

    # The CLI, with the policy from a string as the user guide shows it.
    other = policy(
        rule(1, "tagged", "imageCountMoreThan", 3, tagPrefixList=["prod"]),
        rule(2, "tagged", "sinceImagePushed", 14, tagPatternList=["dev-*"]),
        rule(3, "any", "imageCountMoreThan", 50),
    )
    aws("ecr", "put-lifecycle-policy", "--repository-name", name, "--lifecycle-policy-text", other)
    got = aws("ecr", "get-lifecycle-policy", "--repository-name", name)
    assert json.loads(got["lifecyclePolicyText"]) == json.loads(other)
    deleted = aws("ecr", "delete-lifecycle-policy", "--repository-name", name)
    assert json.loads(deleted["lifecyclePolicyText"]) == json.loads(other)
    result = aws_run("ecr", "get-lifecycle-policy", "--repository-name", name)
    assert result.returncode != 0 and "LifecyclePolicyNotFoundException" in result.stderr
    with pytest.raises(ClientError) as e:
        ecr.delete_lifecycle_policy(repositoryName=name)
    assert error_code(e) == "LifecyclePolicyNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.put_lifecycle_policy(repositoryName=unique("missing"), lifecyclePolicyText=KEEP_ONE_UNTAGGED)
    assert error_code(e) == "RepositoryNotFoundException"


@pytest.mark.parametrize(
    "text,reason",
    [
        ("{" + " " * 120, "not valid JSON"),
        (policy(rule(1, "any", "imageCountMoreThan", 1), rule(2, "untagged", "imageCountMoreThan", 1)), "highest rulePriority"),
        (policy(rule(1, "untagged", "imageCountMoreThan", 1), rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["a"])), "rulePriority 1"),
        (policy(rule(1, "tagged", "imageCountMoreThan", 1)), "tagPrefixList"),
        (policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["a"], tagPatternList=["b*"])), "not both"),
        (policy(rule(1, "untagged", "imageCountMoreThan", 1, tagPrefixList=["a"])), "only allowed with tagStatus 'tagged'"),
        (policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPatternList=["a*b*c*d*e*f"])), "wildcards"),
        (policy(rule(1, "any", "imageCountMoreThan", 0)), "countNumber"),
        (policy(rule(1, "any", "imageCountMoreThan", 1, countUnit="days")), "countUnit"),
        (policy({**rule(1, "any", "imageCountMoreThan", 1), "action": {"type": "delete"}}), "expire"),
    ],
)
def test_bad_policies_are_refused(ecr, gantry, text, reason):
    name = unique("lcbad")
    ecr.create_repository(repositoryName=name)
    response = signed_post(gantry.endpoint, "PutLifecyclePolicy", {"repositoryName": name, "lifecyclePolicyText": text})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["__type"] == "InvalidParameterException", body
    assert reason in body["message"], body["message"]
    assert response.headers["x-amzn-ErrorType"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.start_lifecycle_policy_preview(repositoryName=name, lifecyclePolicyText=text)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.get_lifecycle_policy(repositoryName=name)
    assert error_code(e) == "LifecyclePolicyNotFoundException"


def test_preview(ecr, aws, gantry, registry_auth):
    name = unique("lcpreview")
    ecr.create_repository(repositoryName=name)
    with pytest.raises(ClientError) as e:
        ecr.get_lifecycle_policy_preview(repositoryName=name)
    assert error_code(e) == "LifecyclePolicyPreviewNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.start_lifecycle_policy_preview(repositoryName=name)
    assert error_code(e) == "LifecyclePolicyNotFoundException"

    untagged = []
    for seed in ("a", "b", "c"):
        untagged.append(push_image(ecr, gantry.endpoint, registry_auth, name, f"{name}-{seed}"))
        time.sleep(1.1)  # push times are in seconds: keep them apart so that "newest" is clear
    tagged = push_image(ecr, gantry.endpoint, registry_auth, name, f"{name}-t", tag="v1")
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=KEEP_ONE_UNTAGGED)

    started = ecr.start_lifecycle_policy_preview(repositoryName=name)
    assert started["status"] == "COMPLETE"
    preview = ecr.get_lifecycle_policy_preview(repositoryName=name)
    assert preview["status"] == "COMPLETE"
    assert preview["summary"]["expiringImageTotalCount"] == 2
    results = preview["previewResults"]
    assert [r["imageDigest"] for r in results] == untagged[:2]  # oldest first
    for r in results:
        assert r["action"] == {"type": "EXPIRE"}
        assert r["appliedRulePriority"] == 1
        assert r["imagePushedAt"].year >= 2024

    # The CLI, with a policy of its own that expires the tagged image too; the stored policy is unchanged.
    everything = policy(rule(1, "any", "imageCountMoreThan", 1))
    started = aws("ecr", "start-lifecycle-policy-preview", "--repository-name", name, "--lifecycle-policy-text", everything)
    assert started["status"] == "COMPLETE"
    preview = aws("ecr", "get-lifecycle-policy-preview", "--repository-name", name)
    assert preview["summary"]["expiringImageTotalCount"] == 3
    assert {r["imageDigest"] for r in preview["previewResults"]} == set(untagged)
    assert tagged not in {r["imageDigest"] for r in preview["previewResults"]}
    tagged_only = ecr.get_lifecycle_policy_preview(repositoryName=name, filter={"tagStatus": "TAGGED"})
    assert tagged_only["previewResults"] == []
    one = ecr.get_lifecycle_policy_preview(repositoryName=name, imageIds=[{"imageDigest": untagged[0]}])
    assert [r["imageDigest"] for r in one["previewResults"]] == [untagged[0]]
    paged = [r["imageDigest"] for page in ecr.get_paginator("get_lifecycle_policy_preview").paginate(
        repositoryName=name, PaginationConfig={"PageSize": 2}) for r in page["previewResults"]]
    assert sorted(paged) == sorted(untagged)
    assert json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]) == json.loads(KEEP_ONE_UNTAGGED)
    # A preview expires nothing.
    assert len(ecr.describe_images(repositoryName=name)["imageDetails"]) == 4


def test_repository_policy(ecr, aws, aws_run):
    name = unique("rp")
    ecr.create_repository(repositoryName=name)
    with pytest.raises(ClientError) as e:
        ecr.get_repository_policy(repositoryName=name)
    assert error_code(e) == "RepositoryPolicyNotFoundException"
    text = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                       "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}],
    })
    set_ = ecr.set_repository_policy(repositoryName=name, policyText=text, force=True)
    assert set_["repositoryName"] == name and json.loads(set_["policyText"]) == json.loads(text)
    assert json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"]) == json.loads(text)
    got = aws("ecr", "get-repository-policy", "--repository-name", name)
    assert json.loads(got["policyText"]) == json.loads(text)
    deleted = aws("ecr", "delete-repository-policy", "--repository-name", name)
    assert json.loads(deleted["policyText"]) == json.loads(text)
    result = aws_run("ecr", "delete-repository-policy", "--repository-name", name)
    assert result.returncode != 0 and "RepositoryPolicyNotFoundException" in result.stderr
    with pytest.raises(ClientError) as e:
        ecr.set_repository_policy(repositoryName=name, policyText="not json")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.set_repository_policy(repositoryName=unique("missing"), policyText=text)
    assert error_code(e) == "RepositoryNotFoundException"


@pytest.fixture
def lifecycle_server(tmp_path):
    """A server of its own whose lifecycle job runs every second."""
    server = Gantry(GANTRY_BIN, tmp_path / "data", tmp_path / "gantry.log", free_port(),
                    ["--no-agent", "--registry-lifecycle-interval", "1"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_lifecycle_job_expires_images(lifecycle_server):
    endpoint = lifecycle_server.endpoint
    ecr = make_client("ecr", endpoint)
    data = ecr.get_authorization_token()["authorizationData"][0]
    auth = tuple(base64.b64decode(data["authorizationToken"]).decode().split(":", 1))
    name = unique("lcjob")
    ecr.create_repository(repositoryName=name)
    untagged = []
    for seed in ("a", "b", "c"):
        untagged.append(push_image(ecr, endpoint, auth, name, f"{name}-{seed}"))
        time.sleep(1.1)
    dev = [push_image(ecr, endpoint, auth, name, f"{name}-d{i}", tag=f"dev-{i}") for i in range(2)]
    time.sleep(1.1)
    prod = push_image(ecr, endpoint, auth, name, f"{name}-p", tag="prod-1")  # the newest image
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=policy(
        rule(1, "tagged", "imageCountMoreThan", 10, tagPrefixList=["prod"]),
        rule(2, "untagged", "imageCountMoreThan", 1),
        rule(3, "tagged", "sinceImagePushed", 30, tagPatternList=["dev-*"]),
    ))

    def survivors():
        ids = ecr.list_images(repositoryName=name)["imageIds"]
        digests = {i["imageDigest"] for i in ids}
        return ids if digests == {untagged[-1], prod, *dev} else None

    ids = wait_for(survivors, 20, "the lifecycle job to expire the two older untagged images")
    assert sorted(i.get("imageTag", "") for i in ids) == ["", "dev-0", "dev-1", "prod-1"]
    got = ecr.get_lifecycle_policy(repositoryName=name)
    assert got["lastEvaluatedAt"].year >= 2024
    # Their manifests are gone from the registry API as well.
    r = requests.get(f"{endpoint}/v2/{name}/manifests/{untagged[0]}", auth=auth, timeout=10,
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 404

    # A new policy keeps only the newest image of all, the prod one (rule 1 selects it; rule 2 counts it): the rest
    # goes.
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=policy(
        rule(1, "tagged", "imageCountMoreThan", 10, tagPrefixList=["prod"]),
        rule(2, "any", "imageCountMoreThan", 1),
    ))
    wait_for(lambda: {i["imageDigest"] for i in ecr.list_images(repositoryName=name)["imageIds"]} == {prod}
             or None, 20, "the lifecycle job to keep only the prod image")
