"""Elastic Load Balancing v2 with boto3 and the aws CLI against the real data plane: load balancers, target groups,
listeners and rules through the Query API (every answer checked against botocore's model, XML included), and
traffic from curl through the listeners to real testapp containers published on host ports.

Load balancers are reached by their DNS names (`*.elb.localhost`): curl resolves `*.localhost` to the loopback
itself, and Gantry's shared socket on 127.0.0.1 picks the load balancer by the Host header.
"""

import json
import socket
import subprocess
import threading
import time
import urllib.parse

import botocore.exceptions
import pytest
import requests

from conftest import GANTRY_BIN, Gantry, free_port
from helpers import docker, unique, wait_for
from shape_check import make_client

IMAGE = "gantry-test/testapp:latest"
LABEL = "gantry-test.elbv2=1"


@pytest.fixture
def elb(boto_client):
    return boto_client("elbv2")


def error_code(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"]


class Backends:
    """testapp containers on published host ports; each answers `GET /hostname` with its own name."""

    def __init__(self):
        self.names = []

    def start(self, name=None):
        name = name or unique("backend")
        docker("run", "-d", "--rm", "--name", name, "--hostname", name, "--label", LABEL,
               "-p", "127.0.0.1::8080", IMAGE, "serve")
        self.names.append(name)
        port = int(docker("port", name, "8080/tcp").stdout.split(":")[-1])
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/health") == 200, 15, f"{name} to serve")
        return name, port

    def stop(self, name):
        docker("rm", "-f", name, check=False)

    def cleanup(self):
        for n in self.names:
            docker("rm", "-f", n, check=False)


def _get(url):
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


@pytest.fixture
def backends():
    b = Backends()
    yield b
    b.cleanup()


class Resources:
    """What one test created, deleted at the end (listeners with their load balancers)."""

    def __init__(self, elb):
        self.elb = elb
        self.lbs, self.tgs = [], []

    def load_balancer(self, **kw):
        lb = self.elb.create_load_balancer(Name=unique("lb"), **kw)["LoadBalancers"][0]
        self.lbs.append(lb["LoadBalancerArn"])
        return lb

    def target_group(self, **kw):
        args = dict(Name=unique("tg"), Protocol="HTTP", Port=80, TargetType="ip",
                    HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                    HealthyThresholdCount=2, UnhealthyThresholdCount=2, HealthCheckPath="/health")
        args.update(kw)
        tg = self.elb.create_target_group(**args)["TargetGroups"][0]
        self.tgs.append(tg["TargetGroupArn"])
        return tg

    def cleanup(self):
        for arn in self.lbs:
            try:
                self.elb.modify_load_balancer_attributes(
                    LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
                self.elb.delete_load_balancer(LoadBalancerArn=arn)
            except botocore.exceptions.ClientError:
                pass
        for arn in self.tgs:
            try:
                self.elb.delete_target_group(TargetGroupArn=arn)
            except botocore.exceptions.ClientError:
                pass


@pytest.fixture
def res(elb):
    r = Resources(elb)
    yield r
    r.cleanup()


def forward(tg_arn):
    return [{"Type": "forward", "TargetGroupArn": tg_arn}]


def curl(url, *args, timeout=10):
    """(status, body without its last newline) of `curl url`; status 0 when curl could not connect."""
    out = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout), *args, url],
                         capture_output=True, text=True, timeout=timeout + 5)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body.removesuffix("\n")


def wait_healthy(elb, tg_arn, count, timeout=30):
    def probe():
        d = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
        return len([t for t in d if t["TargetHealth"]["State"] == "healthy"]) == count
    wait_for(probe, timeout, f"{count} healthy targets in {tg_arn}")


def states(elb, tg_arn):
    d = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return {(t["Target"]["Id"], t["Target"]["Port"]): (t["TargetHealth"]["State"], t["TargetHealth"].get("Reason"))
            for t in d}


# --- the API -----------------------------------------------------------------------------------------------------


def test_load_balancer_lifecycle_attributes_and_tags(elb, res, aws):
    lb = res.load_balancer(Subnets=["subnet-a1", "subnet-b2"], SecurityGroups=["sg-1"], Tags=[{"Key": "team", "Value": "web"}])
    arn, name = lb["LoadBalancerArn"], lb["LoadBalancerName"]
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/" + name + "/")
    assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing" and lb["IpAddressType"] == "ipv4"
    assert lb["State"]["Code"] == "provisioning"
    assert lb["DNSName"].startswith(name + "-") and lb["DNSName"].endswith(".us-east-1.elb.localhost")
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == ["subnet-a1", "subnet-b2"]
    assert lb["SecurityGroups"] == ["sg-1"]
    # The CLI's waiter sees it active at once.
    aws("elbv2", "wait", "load-balancer-available", "--load-balancer-arns", arn, timeout=60)
    assert elb.describe_load_balancers(Names=[name])["LoadBalancers"][0]["State"]["Code"] == "active"
    # The same call again returns the same load balancer; another type under that name is refused.
    assert res.elb.create_load_balancer(Name=name)["LoadBalancers"][0]["LoadBalancerArn"] == arn
    assert error_code(elb.create_load_balancer, Name=name, Type="network") == "DuplicateLoadBalancerName"

    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60" and attrs["routing.http2.enabled"] == "true"
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "5"}, {"Key": "deletion_protection.enabled", "Value": "true"}])
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "5"
    assert error_code(elb.modify_load_balancer_attributes, LoadBalancerArn=arn,
                      Attributes=[{"Key": "no.such.key", "Value": "1"}]) == "ValidationError"
    assert error_code(elb.modify_load_balancer_attributes, LoadBalancerArn=arn,
                      Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "0"}]) == "InvalidConfigurationRequest"
    assert error_code(elb.delete_load_balancer, LoadBalancerArn=arn) == "OperationNotPermitted"

    elb.add_tags(ResourceArns=[arn], Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "api"}])
    elb.remove_tags(ResourceArns=[arn], TagKeys=["env"])
    [d] = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    assert d["Tags"] == [{"Key": "team", "Value": "api"}]
    assert error_code(elb.add_tags, ResourceArns=[arn], Tags=[{"Key": "a"}, {"Key": "a"}]) == "DuplicateTagKeys"

    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)
    assert error_code(elb.describe_load_balancers, LoadBalancerArns=[arn]) == "LoadBalancerNotFound"
    # Deleting it again succeeds, as on AWS.
    elb.delete_load_balancer(LoadBalancerArn=arn)
    limits = {x["Name"]: x["Max"] for x in elb.describe_account_limits()["Limits"]}
    assert "target-groups" in limits
    policies = elb.describe_ssl_policies(Names=["ELBSecurityPolicy-TLS13-1-2-2021-06"])["SslPolicies"]
    assert "TLSv1.3" in policies[0]["SslProtocols"]


def test_target_groups_listeners_rules_and_their_errors(elb, res):
    lb = res.load_balancer()
    tg = res.target_group(Matcher={"HttpCode": "200-299"})
    assert tg["HealthCheckPort"] == "traffic-port" and tg["Matcher"]["HttpCode"] == "200-299"
    assert tg["LoadBalancerArns"] == []
    assert error_code(elb.create_target_group, Name=unique("tg"), Protocol="HTTP", Port=80,
                      Matcher={"HttpCode": "600"}) == "ValidationError"
    assert error_code(elb.create_target_group, Name=unique("tg"), Protocol="HTTP", Port=80,
                      HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=6) == "InvalidConfigurationRequest"
    modified = elb.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/ready")["TargetGroups"][0]
    assert modified["HealthCheckPath"] == "/ready"
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "300" and attrs["load_balancing.algorithm.type"] == "round_robin"
    assert error_code(elb.modify_target_group_attributes, TargetGroupArn=tg["TargetGroupArn"],
                      Attributes=[{"Key": "stickiness.type", "Value": "source_ip"}]) == "InvalidConfigurationRequest"

    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                   DefaultActions=forward(tg["TargetGroupArn"]))["Listeners"][0]
    assert listener["Port"] == port and listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    assert elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    assert error_code(elb.create_listener, LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                      DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]) == "DuplicateListener"
    missing_tg = tg["TargetGroupArn"].rsplit("/", 2)[0] + "/nope/0123456789abcdef"
    assert error_code(elb.create_listener, LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
                      DefaultActions=forward(missing_tg)) == "TargetGroupNotFound"
    assert error_code(elb.delete_target_group, TargetGroupArn=tg["TargetGroupArn"]) == "ResourceInUse"

    larn = listener["ListenerArn"]
    rule = elb.create_rule(ListenerArn=larn, Priority=10, Actions=forward(tg["TargetGroupArn"]),
                           Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}])["Rules"][0]
    assert rule["Priority"] == "10" and rule["IsDefault"] is False
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    assert error_code(elb.create_rule, ListenerArn=larn, Priority=10, Actions=forward(tg["TargetGroupArn"]),
                      Conditions=[{"Field": "path-pattern", "Values": ["/b"]}]) == "PriorityInUse"
    assert error_code(elb.create_rule, ListenerArn=larn, Priority=11, Actions=forward(tg["TargetGroupArn"]),
                      Conditions=[{"Field": "nonsense", "Values": ["/b"]}]) == "ValidationError"
    other = elb.create_rule(ListenerArn=larn, Priority=20, Actions=forward(tg["TargetGroupArn"]),
                            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}}])["Rules"][0]
    rules = elb.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "default"]
    elb.set_rule_priorities(RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": 30}])
    assert [r["Priority"] for r in elb.describe_rules(ListenerArn=larn)["Rules"]] == ["20", "30", "default"]
    assert error_code(elb.set_rule_priorities, RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": 20}]) == "PriorityInUse"
    default = rules[-1]
    assert error_code(elb.delete_rule, RuleArn=default["RuleArn"]) == "OperationNotPermitted"
    elb.modify_rule(RuleArn=other["RuleArn"], Conditions=[{"Field": "path-pattern", "Values": ["/other"]}])
    elb.delete_rule(RuleArn=other["RuleArn"])
    assert error_code(elb.describe_rules, RuleArns=[other["RuleArn"]]) == "RuleNotFound"

    # A port that cannot be opened on the load balancer's address is the call's error.
    blocker = res.load_balancer()
    held = free_port()
    import socket
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", held))
        s.listen()
        assert error_code(elb.create_listener, LoadBalancerArn=blocker["LoadBalancerArn"], Protocol="HTTP", Port=held,
                          DefaultActions=forward(tg["TargetGroupArn"])) == "InvalidConfigurationRequest"
    assert elb.describe_listeners(LoadBalancerArn=blocker["LoadBalancerArn"])["Listeners"] == []


def test_malformed_query_requests_get_aws_errors(gantry, elb):
    """Raw signed requests with bad parameters: the Query error shape, and the server still answers."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    def send(params):
        body = urllib.parse.urlencode(params)
        req = botocore.awsrequest.AWSRequest(method="POST", url=gantry.endpoint + "/", data=body,
                                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "elasticloadbalancing", "us-east-1").add_auth(req)
        return requests.post(req.url, data=body, headers=dict(req.headers), timeout=10)

    for params, code in [
        ({"Action": "CreateTargetGroup", "Version": "2015-12-01", "Name": "x", "Protocol": "HTTP", "Port": "abc"}, "ValidationError"),
        ({"Action": "CreateLoadBalancer", "Version": "2015-12-01"}, "ValidationError"),
        ({"Action": "NoSuchAction", "Version": "2015-12-01"}, "InvalidAction"),
        ({"Action": "DescribeLoadBalancers", "Version": "2015-12-01", "LoadBalancerArns.member.1": "not-an-arn"}, "ValidationError"),
    ]:
        r = send(params)
        assert r.status_code == 400, (params, r.status_code, r.text)
        assert f"<Code>{code}</Code>" in r.text and "<Type>Sender</Type>" in r.text, (params, r.text)
    assert elb.describe_load_balancers()["LoadBalancers"] is not None


# --- traffic -----------------------------------------------------------------------------------------------------


def test_two_albs_on_port_80_with_rules_redirects_and_fixed_responses(elb, res, backends):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg_a, tg_b = res.target_group(), res.target_group()
    elb.register_targets(TargetGroupArn=tg_a["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    elb.register_targets(TargetGroupArn=tg_b["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pb}])
    first, second = res.load_balancer(), res.load_balancer()
    l1 = elb.create_listener(LoadBalancerArn=first["LoadBalancerArn"], Protocol="HTTP", Port=80,
                             DefaultActions=forward(tg_a["TargetGroupArn"]))["Listeners"][0]
    elb.create_listener(LoadBalancerArn=second["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=forward(tg_b["TargetGroupArn"]))
    arn = l1["ListenerArn"]
    elb.create_rule(ListenerArn=arn, Priority=5, Actions=forward(tg_b["TargetGroupArn"]),
                    Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}])
    elb.create_rule(ListenerArn=arn, Priority=6, Actions=forward(tg_b["TargetGroupArn"]),
                    Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Pick", "Values": ["b*"]}}])
    elb.create_rule(ListenerArn=arn, Priority=7, Conditions=[{"Field": "path-pattern", "Values": ["/old/*"]}],
                    Actions=[{"Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"}}])
    elb.create_rule(ListenerArn=arn, Priority=8, Conditions=[{"Field": "path-pattern", "Values": ["/teapot"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "418", "ContentType": "application/json", "MessageBody": '{"short":"stout"}'}}])
    wait_healthy(elb, tg_a["TargetGroupArn"], 1)
    wait_healthy(elb, tg_b["TargetGroupArn"], 1)

    one, two = f"http://{first['DNSName']}", f"http://{second['DNSName']}"
    assert curl(one + "/hostname") == (200, a)
    assert curl(two + "/hostname") == (200, b)
    assert curl(one + "/api/x")[0] == 404 and "not found" in curl(one + "/api/x")[1]  # testapp b answers 404
    assert curl(one + "/hostname", "-H", "X-Pick: bee") == (200, b)
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", one + "/old/page?q=1"],
                         capture_output=True, text=True, timeout=15).stdout
    assert out.startswith("HTTP/1.1 301") and f"location: http://{first['DNSName']}/new/old/page?q=1" in out.lower(), out
    assert curl(one + "/teapot") == (418, '{"short":"stout"}')
    # The target sees ALB's headers; the client's own X-Forwarded-For is appended to.
    code, seen = curl(one + "/headers", "-H", "X-Forwarded-For: 203.0.113.9")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in seen.splitlines())}
    assert code == 200
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1", headers
    assert headers["x-forwarded-proto"] == "http" and headers["x-forwarded-port"] == "80"
    assert headers["x-amzn-trace-id"].startswith("Root=1-"), headers
    assert headers["host"] == first["DNSName"]


def test_weighted_forward_and_stickiness(elb, res, backends):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg_a, tg_b = res.target_group(), res.target_group()
    elb.register_targets(TargetGroupArn=tg_a["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    elb.register_targets(TargetGroupArn=tg_b["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pb}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tg_a["TargetGroupArn"], "Weight": 80},
            {"TargetGroupArn": tg_b["TargetGroupArn"], "Weight": 20}]}}])
    wait_healthy(elb, tg_a["TargetGroupArn"], 1)
    wait_healthy(elb, tg_b["TargetGroupArn"], 1)
    url = f"http://{lb['DNSName']}:{port}/hostname"
    session = requests.Session()
    seen = {a: 0, b: 0}
    host = lb["DNSName"]
    for _ in range(1000):
        r = session.get(f"http://127.0.0.1:{port}/hostname", headers={"Host": host}, timeout=5)
        assert r.status_code == 200
        seen[r.text.strip()] += 1
    assert 740 <= seen[a] <= 860, seen
    assert curl(url)[0] == 200


def test_health_checks_take_a_failing_target_out_and_back_and_fail_open(elb, res, backends):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg = res.target_group()
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}, {"Id": "127.0.0.1", "Port": pb}])
    assert {s for s, _ in states(elb, tg["TargetGroupArn"]).values()} == {"unused"}
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 2)
    url = f"http://{lb['DNSName']}:{port}"
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {a, b}

    requests.get(f"http://127.0.0.1:{pb}/unhealthy", timeout=5)
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", pb)] == ("unhealthy", "Target.ResponseCodeMismatch"),
             30, "b to be unhealthy")
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {a}
    # Both unhealthy: ALB fails open and sends to both.
    requests.get(f"http://127.0.0.1:{pa}/unhealthy", timeout=5)
    wait_for(lambda: all(s == "unhealthy" for s, _ in states(elb, tg["TargetGroupArn"]).values()), 30, "both unhealthy")
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {a, b}
    requests.get(f"http://127.0.0.1:{pb}/healthy", timeout=5)
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", pb)][0] == "healthy", 30, "b to be healthy again")
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {b}

    # A target that stops answering: 502 only if it was the one picked; the checks take it out.
    backends.stop(b)
    requests.get(f"http://127.0.0.1:{pa}/healthy", timeout=5)
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", pb)][0] == "unhealthy", 30, "b to fail")
    wait_for(lambda: states(elb, tg["TargetGroupArn"])[("127.0.0.1", pa)][0] == "healthy", 30, "a to be healthy")
    assert {curl(url + "/hostname")[1] for _ in range(6)} == {a}


def test_no_target_is_503_and_a_dead_target_is_502(elb, res):
    tg = res.target_group(HealthCheckEnabled=False)
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=forward(tg["TargetGroupArn"]))
    url = f"http://{lb['DNSName']}:{port}/"
    wait_for(lambda: curl(url)[0] == 503, 10, "503 without targets")
    assert "503 Service Temporarily Unavailable" in curl(url)[1]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": free_port()}])
    assert states(elb, tg["TargetGroupArn"])
    wait_for(lambda: curl(url)[0] == 502, 10, "502 from a target that refuses")
    assert "502 Bad Gateway" in curl(url)[1]


def test_deregistration_drains_in_flight_requests(elb, res, backends):
    (a, pa), (b, pb) = backends.start(), backends.start()
    tg = res.target_group()
    elb.modify_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"], Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "20"}])
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    lb = res.load_balancer()
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=forward(tg["TargetGroupArn"]))
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    url = f"http://{lb['DNSName']}:{port}"
    slow = {}
    t = threading.Thread(target=lambda: slow.update(r=curl(url + "/sleep/5000", timeout=30)))
    t.start()
    time.sleep(0.5)
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pb}])
    wait_healthy(elb, tg["TargetGroupArn"], 2)
    started = time.monotonic()
    elb.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    assert states(elb, tg["TargetGroupArn"])[("127.0.0.1", pa)] == ("draining", "Target.DeregistrationInProgress")
    # New requests go to the other target while the slow one completes.
    wait_for(lambda: {curl(url + "/hostname")[1] for _ in range(4)} == {b}, 5, "new requests to go to b")
    t.join()
    assert slow["r"] == (200, "slept 5000 ms")
    # Its last request done, the target leaves well before the 20 s delay.
    wait_for(lambda: ("127.0.0.1", pa) not in states(elb, tg["TargetGroupArn"]), 10, "a to be deregistered")
    assert time.monotonic() - started < 15


def test_kill9_of_the_server_keeps_listeners_and_targets(tmp_path, backends):
    server = Gantry(GANTRY_BIN, tmp_path / "data", tmp_path / "gantry.log", free_port(),
                    extra_args=["--no-agent", "--lb-addresses", "127.0.2.0/24"])
    server.start()
    try:
        elb = make_client("elbv2", server.endpoint)
        (a, pa) = backends.start()
        tg = elb.create_target_group(Name="kill9", Protocol="HTTP", Port=80, TargetType="ip", HealthCheckPath="/health",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2)["TargetGroups"][0]
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
        lb = elb.create_load_balancer(Name="kill9")["LoadBalancers"][0]
        port = free_port()
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=forward(tg["TargetGroupArn"]))
        # An HTTPS listener with a requested certificate: after the restart the same CA still signs what it serves.
        cert = make_client("acm", server.endpoint).request_certificate(DomainName="kill9.example.test")["CertificateArn"]
        tls_port = free_port()
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=tls_port,
                            Certificates=[{"CertificateArn": cert}], DefaultActions=forward(tg["TargetGroupArn"]))
        address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
        https = ["--cacert", str(tmp_path / "data" / "acm" / "ca.pem"), "--resolve",
                 f"kill9.example.test:{tls_port}:{address}"]
        tls_url = f"https://kill9.example.test:{tls_port}/hostname"
        wait_healthy(elb, tg["TargetGroupArn"], 1)
        url = f"http://{lb['DNSName']}:{port}/hostname"
        assert curl(url) == (200, a)
        wait_for(lambda: curl(tls_url, *https) == (200, a), 10, "the HTTPS listener")
        # Traffic flows while the server dies.
        codes = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                codes.append(curl(url, timeout=3)[0])
        t = threading.Thread(target=load)
        t.start()
        time.sleep(1)
        server.kill9()
        server.start()
        wait_for(lambda: curl(url) == (200, a), 30, "the listener to serve again after the restart")
        wait_for(lambda: curl(tls_url, *https) == (200, a), 10, "the HTTPS listener after the restart")
        stop.set()
        t.join()
        assert 200 in codes
        [d] = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        assert d["Target"] == {"Id": "127.0.0.1", "Port": pa}
    finally:
        server.stop()


def test_metrics_count_requests_answers_and_healthy_hosts(gantry, elb, res, backends):
    (a, pa) = backends.start()
    tg = res.target_group()
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": pa}])
    lb = res.load_balancer()
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                   DefaultActions=forward(tg["TargetGroupArn"]))["Listeners"][0]
    elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/gone"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}])
    wait_healthy(elb, tg["TargetGroupArn"], 1)
    url = f"http://{lb['DNSName']}:{port}"
    for _ in range(20):
        assert curl(url + "/hostname")[0] == 200
    for _ in range(3):
        assert curl(url + "/nothing-here")[0] == 404  # the target's 404
    assert curl(url + "/gone")[0] == 503  # the load balancer's own answer

    text = requests.get(gantry.url("/metrics"), timeout=10).text
    lb_dim = lb["LoadBalancerArn"].split(":loadbalancer/")[1]
    tg_dim = tg["TargetGroupArn"].split(":")[-1]

    def value(metric, label, dim):
        for line in text.splitlines():
            if line.startswith(f'{metric}{{{label}="{dim}"}} '):
                return float(line.split()[-1])
        raise AssertionError(f"{metric} for {dim} not in /metrics")

    assert value("gantry_elb_load_balancer_request_count_total", "load_balancer", lb_dim) == 24
    assert value("gantry_elb_load_balancer_httpcode_target_2xx_count_total", "load_balancer", lb_dim) == 20
    assert value("gantry_elb_load_balancer_httpcode_target_4xx_count_total", "load_balancer", lb_dim) == 3
    assert value("gantry_elb_load_balancer_httpcode_elb_5xx_count_total", "load_balancer", lb_dim) == 1
    assert value("gantry_elb_target_group_request_count_total", "target_group", tg_dim) == 23
    assert value("gantry_elb_target_group_target_response_time_seconds_total", "target_group", tg_dim) > 0
    assert value("gantry_elb_target_group_healthy_host_count", "target_group", tg_dim) == 1
    assert value("gantry_elb_target_group_unhealthy_host_count", "target_group", tg_dim) == 0
    assert 'gantry_api_requests_total{operation="elasticloadbalancing.CreateLoadBalancer",outcome="ok"}' in text
    assert 'gantry_api_request_duration_seconds_count{operation="elasticloadbalancing.CreateListener"}' in text

    # ActiveConnectionCount: open keep-alive connections, on the shared port (by DNS name) and on the load balancer's
    # own address, each counted while it stays open.
    [d] = elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"]
    own = d["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    opened = []
    for ip, host in [("127.0.0.1", lb["DNSName"]), ("127.0.0.1", lb["DNSName"]), (own, "anything")]:
        s = socket.create_connection((ip, port), timeout=10)
        s.sendall(f"GET /hostname HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        opened.append(s)

    def active():
        nonlocal text
        text = requests.get(gantry.url("/metrics"), timeout=10).text
        return value("gantry_elb_load_balancer_active_connection_count", "load_balancer", lb_dim)
    wait_for(lambda: active() == 3, 10, "three connections counted")
    for s in opened:
        s.close()
    wait_for(lambda: active() == 0, 10, "closed connections no longer counted")
