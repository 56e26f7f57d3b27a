"""The response shape check must catch bad responses, or the whole suite could pass on nothing.
No server needed: responses are made up, and a stub answers the HTTP request of a real client."""

import json

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import create_parser

from shape_check import ShapeError, make_client, response_problems

ECS = botocore.session.get_session().get_service_model("ecs")
HEADERS = {"x-amzn-RequestId": "f0e1d2c3-0000-4000-8000-000000000000", "Content-Type": "application/x-amz-json-1.1"}
ARN = "arn:aws:ecs:us-east-1:000000000000:cluster/default"


def problems(operation, body, status=200, headers=HEADERS):
    """Parses `body` with botocore as a client would, then checks it."""
    op = ECS.operation_model(operation)
    raw = json.dumps(body).encode()
    parsed = create_parser("json").parse(
        {"status_code": status, "headers": headers, "body": raw}, op.output_shape if status < 300 else None
    )
    return response_problems(op, status, headers, raw, parsed)


def test_good_responses_pass():
    assert problems("ListClusters", {"clusterArns": [ARN], "nextToken": "abc"}) == []
    assert problems("ListClusters", {"clusterArns": []}) == []
    task = {
        "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef",
        "createdAt": 1700000000.123,
        "containers": [{"name": "web", "networkBindings": [{"hostPort": 49153, "containerPort": 8080}]}],
        "tags": [{"key": "k", "value": "v"}],
    }
    assert problems("DescribeTasks", {"tasks": [task], "failures": [{"arn": ARN, "reason": "MISSING"}]}) == []


def test_error_response_passes_when_well_formed():
    body = {"__type": "ClusterNotFoundException", "message": "Cluster not found."}
    assert problems("DescribeClusters", body, status=400) == []


@pytest.mark.parametrize(
    "operation, body, expected",
    [
        ("ListClusters", {"clusterArns": [], "bogus": 1}, "'bogus' is unknown"),
        ("ListClusters", {"clusterArns": "not-a-list"}, "expected a list"),
        ("ListClusters", {"clusterArns": [7]}, "expected string"),
        ("ListClusters", {"clusterArns": [], "nextToken": None}, "null"),
        ("DescribeClusters", {"clusters": [{"clusterName": "a", "runningTasksCount": "1"}]}, "expected integer"),
        ("DescribeClusters", {"clusters": [{"clusterName": "a", "surprise": True}]}, "'surprise' is unknown"),
        ("DescribeTasks", {"tasks": [{"createdAt": "2024-01-01T00:00:00Z"}]}, "expected timestamp"),
        (
            "DescribeTasks",
            {"tasks": [{"containers": [{"networkBindings": [{"hostPort": 1, "extra": 2}]}]}]},
            "'extra' is unknown",
        ),
    ],
)
def test_bad_responses_are_caught(operation, body, expected):
    found = problems(operation, body)
    assert any(expected in p for p in found), found


def test_bad_errors_are_caught():
    assert any("no __type" in p for p in problems("ListClusters", {"message": "x"}, status=400))
    unknown = problems("ListClusters", {"__type": "NoSuchThing", "message": "x"}, status=400)
    assert any("not an error of ecs" in p for p in unknown)
    assert any("no message" in p for p in problems("ListClusters", {"__type": "ClientException"}, status=400))
    assert any("x-amzn-RequestId" in p for p in problems("ListClusters", {"clusterArns": []}, headers={}))


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **_):
        yield self.body


def stubbed_client(status, body):
    """A real client from make_client() whose HTTP request is answered by a stub."""
    client = make_client("ecs", "http://127.0.0.1:9")

    def answer(request, **_):
        return AWSResponse(request.url, status, HEADERS, _Raw(json.dumps(body).encode()))

    client.meta.events.register("before-send", answer)
    return client


def test_clients_from_make_client_raise_on_bad_responses():
    assert stubbed_client(200, {"clusterArns": [ARN]}).list_clusters()["clusterArns"] == [ARN]
    with pytest.raises(ShapeError, match="'bogus' is unknown"):
        stubbed_client(200, {"clusterArns": [], "bogus": 1}).list_clusters()
    # Errors are checked too, before botocore raises the ClientError.
    with pytest.raises(ShapeError, match="no __type"):
        stubbed_client(400, {"message": "no type"}).list_clusters()


# --- the Query protocol (ELBv2) ---------------------------------------------------------------------------------

ELB = botocore.session.get_session().get_service_model("elbv2")
NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
XML_HEADERS = {"x-amzn-RequestId": "f0e1d2c3-0000-4000-8000-000000000000", "Content-Type": "text/xml"}


def xml_problems(operation, body, status=200):
    op = ELB.operation_model(operation)
    raw = body.encode()
    parsed = create_parser("query").parse(
        {"status_code": status, "headers": XML_HEADERS, "body": raw}, op.output_shape if status < 300 else None
    )
    return response_problems(op, status, XML_HEADERS, raw, parsed)


def answer(op, result):
    return (f'<{op}Response xmlns="{NS}"><{op}Result>{result}</{op}Result>'
            f"<ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></{op}Response>")


def test_good_query_answers_pass():
    lb = ("<member><LoadBalancerName>a</LoadBalancerName><CreatedTime>2026-01-02T03:04:05.678Z</CreatedTime>"
          "<State><Code>active</Code></State><AvailabilityZones><member><ZoneName>us-east-1a</ZoneName>"
          "</member></AvailabilityZones></member>")
    assert xml_problems("DescribeLoadBalancers", answer("DescribeLoadBalancers", f"<LoadBalancers>{lb}</LoadBalancers>")) == []
    assert xml_problems("DeleteLoadBalancer", answer("DeleteLoadBalancer", "")) == []
    error = (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code>'
             "<Message>gone</Message></Error><RequestId>x</RequestId></ErrorResponse>")
    assert xml_problems("DescribeLoadBalancers", error, status=400) == []


def test_bad_query_answers_are_caught():
    assert any("unknown" in p for p in xml_problems(
        "DescribeLoadBalancers", answer("DescribeLoadBalancers", "<LoadBalancers><member><Bogus>1</Bogus></member></LoadBalancers>")))
    assert any("timestamp" in p for p in xml_problems(
        "DescribeLoadBalancers", answer("DescribeLoadBalancers", "<LoadBalancers><member><CreatedTime>1700000000</CreatedTime></member></LoadBalancers>")))
    assert any("boolean" in p for p in xml_problems(
        "DescribeTargetGroups", answer("DescribeTargetGroups", "<TargetGroups><member><HealthCheckEnabled>1</HealthCheckEnabled></member></TargetGroups>")))
    assert any("list item" in p for p in xml_problems(
        "DescribeLoadBalancers", answer("DescribeLoadBalancers", "<LoadBalancers><item/></LoadBalancers>")))
    no_ns = answer("DeleteLoadBalancer", "").replace(f' xmlns="{NS}"', "")
    assert any("namespace" in p for p in xml_problems("DeleteLoadBalancer", no_ns))
    assert any("not an error" in p for p in xml_problems("DescribeLoadBalancers", (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>NoSuchThing</Code><Message>m</Message>'
        "</Error><RequestId>x</RequestId></ErrorResponse>"), status=400))
    op = ELB.operation_model("DescribeLoadBalancers")
    assert any("not XML" in p for p in response_problems(op, 200, XML_HEADERS, b"{}", {}))
    assert any("RequestId" in p for p in response_problems(op, 200, {}, answer("DescribeLoadBalancers", "").encode(), {}))


# --- the EC2 protocol -------------------------------------------------------------------------------------------

EC2 = botocore.session.get_session().get_service_model("ec2")
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def ec2_problems(operation, body, status=200):
    op = EC2.operation_model(operation)
    raw = body.encode()
    parsed = create_parser("ec2").parse(
        {"status_code": status, "headers": XML_HEADERS, "body": raw}, op.output_shape if status < 300 else None
    )
    return response_problems(op, status, XML_HEADERS, raw, parsed)


def ec2_answer(op, members, request_id="<requestId>x</requestId>"):
    return f'<{op}Response xmlns="{EC2_NS}">{request_id}{members}</{op}Response>'


def test_good_ec2_answers_pass():
    vpcs = "<vpcSet><item><vpcId>vpc-1</vpcId><isDefault>true</isDefault><tagSet/></item></vpcSet>"
    assert ec2_problems("DescribeVpcs", ec2_answer("DescribeVpcs", vpcs)) == []
    assert ec2_problems("DeleteVpc", ec2_answer("DeleteVpc", "")) == []
    error = "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>m</Message></Error></Errors>" \
            "<RequestID>x</RequestID></Response>"
    assert ec2_problems("DescribeVpcs", error, status=400) == []


def test_bad_ec2_answers_are_caught():
    assert any("unknown" in p for p in ec2_problems(
        "DescribeVpcs", ec2_answer("DescribeVpcs", "<vpcSet><item><VpcId>vpc-1</VpcId></item></vpcSet>")))
    assert any("list item" in p for p in ec2_problems(
        "DescribeVpcs", ec2_answer("DescribeVpcs", "<vpcSet><member><vpcId>v</vpcId></member></vpcSet>")))
    assert any("boolean" in p for p in ec2_problems(
        "DescribeVpcs", ec2_answer("DescribeVpcs", "<vpcSet><item><isDefault>1</isDefault></item></vpcSet>")))
    assert any("requestId" in p for p in ec2_problems("DeleteVpc", ec2_answer("DeleteVpc", "", request_id="")))
    assert any("no output" in p for p in ec2_problems("DeleteVpc", ec2_answer("DeleteVpc", "<return>true</return>")))
    assert any("Errors" in p for p in ec2_problems("DescribeVpcs", (
        f'<ErrorResponse xmlns="{EC2_NS}"><Error><Type>Sender</Type><Code>X</Code><Message>m</Message></Error>'
        "<RequestId>x</RequestId></ErrorResponse>"), status=400))
    assert any("Message" in p for p in ec2_problems("DescribeVpcs", (
        "<Response><Errors><Error><Code>X</Code></Error></Errors><RequestID>x</RequestID></Response>"), status=400))
