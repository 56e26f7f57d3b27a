"""awsvpc tasks with real containers: Fargate-compatible task definitions, networkConfiguration and ECS's errors, each
task's own address in its subnet (its ENI in describe-tasks and describe-network-interfaces), the host reaching the
task at that address, the task's containers talking over localhost, and subnets that run out of addresses.

Tasks run on the session server's embedded agent (EC2 launch type)."""

import json
import subprocess
import time

import botocore.exceptions
import pytest
import requests

from helpers import container, docker, unique, wait_for
from test_containers import HOLD, Tasks, instance_arn, sh  # noqa: F401 (instance_arn is a fixture)

TESTAPP = "gantry-test/testapp:latest"


@pytest.fixture
def ec2(boto_client):
    return boto_client("ec2")


@pytest.fixture
def tasks(ecs, instance_arn):  # noqa: F811
    t = Tasks(ecs)
    yield t
    t.cleanup()


@pytest.fixture
def default_subnet(ec2):
    """The default VPC's subnet in us-east-1a."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]},
                                            {"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"]
    return subnets[0]


def client_error(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]


def awsvpc(subnets, groups=None):
    config = {"subnets": subnets}
    if groups is not None:
        config["securityGroups"] = groups
    return {"awsvpcConfiguration": config}


def details(task):
    [attachment] = task["attachments"]
    assert attachment["type"] == "ElasticNetworkInterface"
    return attachment, {d["name"]: d["value"] for d in attachment["details"]}


def reachable(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def group(ec2, name, vpc_id, ingress=()):
    """A security group of the VPC that lets `ingress` in (IpPermissions)."""
    g = ec2.create_security_group(GroupName=unique(name), Description=name, VpcId=vpc_id)["GroupId"]
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=list(ingress))
    return g


def tcp_from(port, group_id=None, cidr=None):
    p = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if group_id:
        p["UserIdGroupPairs"] = [{"GroupId": group_id}]
    if cidr:
        p["IpRanges"] = [{"CidrIp": cidr}]
    return p


def filter_rules(address):
    """The host's packet filter rules that name `address`."""
    out = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if address in line]


def fargate_definition(family, **extra):
    """A task definition as the AWS docs' Fargate examples write it."""
    td = {
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": "arn:aws:iam::000000000000:role/ecsTaskExecutionRole",
        "containerDefinitions": [{
            "name": "web",
            "image": TESTAPP,
            "essential": True,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/fargate", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}},
        }],
    }
    td.update(extra)
    return td


# ---------------------------------------------------------------------------------------------------------------
# task definitions


def test_a_fargate_task_definition_registers_unchanged(ecs):
    td = ecs.register_task_definition(**fargate_definition(unique("fg")))["taskDefinition"]
    assert td["networkMode"] == "awsvpc"
    assert "FARGATE" in td["compatibilities"] and "EC2" in td["compatibilities"]
    assert td["requiresCompatibilities"] == ["FARGATE"]
    td = ecs.register_task_definition(**fargate_definition(
        unique("fg"), runtimePlatform={"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        ephemeralStorage={"sizeInGiB": 30}, pidMode="task"))["taskDefinition"]
    assert td["runtimePlatform"] == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    assert td["ephemeralStorage"] == {"sizeInGiB": 30}
    # Eligible for Fargate without asking for it; a bridge definition is not.
    plain = fargate_definition(unique("fg"))
    del plain["requiresCompatibilities"]
    assert "FARGATE" in ecs.register_task_definition(**plain)["taskDefinition"]["compatibilities"]
    bridge = ecs.register_task_definition(family=unique("br"), containerDefinitions=[container()])
    assert "FARGATE" not in bridge["taskDefinition"]["compatibilities"]


@pytest.mark.parametrize("change, message", [
    ({"memory": "4096"}, "No Fargate configuration exists for given values: 256 CPU, 4096 memory"),
    ({"cpu": None}, "Fargate requires that 'cpu' be defined at the task level"),
    ({"networkMode": "bridge"}, "Fargate only supports network mode 'awsvpc'"),
    ({"executionRoleArn": None}, "execution role ARN to support log driver awslogs"),
    ({"ephemeralStorage": {"sizeInGiB": 10}}, "between 21 and 200 GiB"),
])
def test_fargate_task_definitions_ecs_refuses(ecs, change, message):
    td = fargate_definition(unique("fg"))
    for k, v in change.items():
        if v is None:
            td.pop(k)
        else:
            td[k] = v
    error = client_error(ecs.register_task_definition, **td)
    assert error["Code"] == "ClientException" and message in error["Message"], error


def test_awsvpc_host_ports_must_match_container_ports(ecs):
    error = client_error(ecs.register_task_definition, family=unique("vpc"), networkMode="awsvpc",
                         containerDefinitions=[container(portMappings=[{"containerPort": 80, "hostPort": 81}])])
    assert "host ports and container ports in port mappings must match" in error["Message"]


def test_unsupported_platforms_are_refused_clearly(ecs):
    error = client_error(ecs.register_task_definition, **fargate_definition(
        unique("fg"), runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2019_FULL"}))
    assert error["Code"] == "UnsupportedFeatureException" and "Linux" in error["Message"]


# ---------------------------------------------------------------------------------------------------------------
# networkConfiguration


def test_network_configuration_errors(ecs, ec2, tasks, default_subnet):
    vpc_td = tasks.register(container(), networkMode="awsvpc")
    bridge_td = tasks.register(container())
    subnet = default_subnet["SubnetId"]
    cases = [
        (dict(taskDefinition=vpc_td), "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
        (dict(taskDefinition=bridge_td, networkConfiguration=awsvpc([subnet])),
         "Network Configuration is not valid for the given networkMode of this task definition."),
        (dict(taskDefinition=vpc_td, networkConfiguration=awsvpc(["subnet-0000000000000000f"])),
         "The subnet ID 'subnet-0000000000000000f' does not exist"),
        (dict(taskDefinition=vpc_td, networkConfiguration=awsvpc([subnet], ["sg-0000000000000000f"])),
         "The security group 'sg-0000000000000000f' does not exist"),
        (dict(taskDefinition=vpc_td, networkConfiguration=awsvpc([])), "subnets can not be empty."),
        (dict(taskDefinition=vpc_td, networkConfiguration={"awsvpcConfiguration": {
            "subnets": [subnet], "assignPublicIp": "ENABLED"}}), "Assign public IP is not supported"),
    ]
    for kwargs, message in cases:
        error = client_error(ecs.run_task, **kwargs)
        assert error["Code"] == "InvalidParameterException" and message in error["Message"], (kwargs, error)
    # A group of another VPC.
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    try:
        group = ec2.create_security_group(GroupName=unique("g"), Description="d", VpcId=other)["GroupId"]
        error = client_error(ecs.run_task, taskDefinition=vpc_td, networkConfiguration=awsvpc([subnet], [group]))
        assert "belong to different networks" in error["Message"], error
        ec2.delete_security_group(GroupId=group)
    finally:
        ec2.delete_vpc(VpcId=other)


# ---------------------------------------------------------------------------------------------------------------
# a task's own address


def test_an_awsvpc_task_has_its_own_address_and_eni(ecs, ec2, tasks, default_subnet, aws):
    subnet = default_subnet["SubnetId"]
    before = default_subnet["AvailableIpAddressCount"]
    # The second container reaches the first over localhost: they share the task's namespace.
    probe = sh("until wget -q -O- http://127.0.0.1:8080/hostname > /tmp/seen; do sleep 0.2; done; cat /tmp/seen" + HOLD,
               name="probe", essential=False)
    td = tasks.register(container(portMappings=[{"containerPort": 8080}]), probe, networkMode="awsvpc")
    out = aws("ecs", "run-task", "--task-definition", td, "--network-configuration",
              json.dumps(awsvpc([subnet])))
    assert out["failures"] == []
    arn = out["tasks"][0]["taskArn"]
    tasks.track(arn)
    attachment, d = details(out["tasks"][0])
    assert attachment["status"] == "PRECREATED"
    task = tasks.running(arn)
    attachment, d = details(task)
    assert attachment["status"] == "ATTACHED"
    address = d["privateIPv4Address"]
    assert d["subnetId"] == subnet and d["networkInterfaceId"].startswith("eni-")
    assert d["macAddress"].startswith("0e:") and d["privateDnsName"] == f"ip-{address.replace('.', '-')}.ec2.internal"
    assert address.startswith("172.31.") and task["availabilityZone"] == "us-east-1a"
    for c in task["containers"]:
        assert c["networkInterfaces"] == [{"attachmentId": attachment["id"], "privateIpv4Address": address}]

    # The ENI, with the VPC's default security group (none was given).
    [eni] = ec2.describe_network_interfaces(NetworkInterfaceIds=[d["networkInterfaceId"]])["NetworkInterfaces"]
    [default_group] = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [default_subnet["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"]
    assert eni["PrivateIpAddress"] == address and eni["SubnetId"] == subnet
    assert [g["GroupId"] for g in eni["Groups"]] == [default_group["GroupId"]]
    now = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"]
    assert now == before - 1

    # No host port is published; the default group lets in only its own members, so the host is not let in.
    assert all(c["networkBindings"] == [] for c in task["containers"])
    assert not reachable(f"http://{address}:8080/hostname")
    # The probe container saw the web container over localhost.
    probe_id = next(c["runtimeId"] for c in task["containers"] if c["name"] == "probe")
    wait_for(lambda: docker("logs", probe_id).stdout.strip(), 20, "the probe's output")

    tasks.stop(arn)
    stopped = tasks.stopped(arn)
    attachment, _ = details(stopped)
    assert attachment["status"] == "DELETED"
    assert ec2.describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": [d["networkInterfaceId"]]}])["NetworkInterfaces"] == []
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == before
    # Nothing of the task runs any more, its pause container included.
    running = docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-arn={arn}").stdout.split()
    assert running == []


def test_a_subnet_without_free_addresses_fails_placement(ecs, ec2, tasks, default_subnet):
    # A /28 has 11 addresses for tasks: AWS keeps the first four and the last.
    small = ec2.create_subnet(VpcId=default_subnet["VpcId"], CidrBlock="172.31.255.0/28",
                              AvailabilityZone="us-east-1b")["Subnet"]
    try:
        td = tasks.register(container(image="gantry-test/busybox:latest", command=["sleep", "600"], memory=8),
                            networkMode="awsvpc")
        config = awsvpc([small["SubnetId"]])
        tasks.run(td, count=10, networkConfiguration=config)
        tasks.run(td, networkConfiguration=config)
        assert ec2.describe_subnets(SubnetIds=[small["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 0
        out = ecs.run_task(taskDefinition=td, networkConfiguration=config)
        assert out["tasks"] == []
        [failure] = out["failures"]
        assert failure["reason"] == "RESOURCE:ENI"
        assert "There are not enough free addresses in subnet" in failure["detail"]
        # A subnet with addresses left beside it takes the task.
        out = ecs.run_task(taskDefinition=td, networkConfiguration=awsvpc([small["SubnetId"], default_subnet["SubnetId"]]))
        assert out["failures"] == []
        tasks.track(out["tasks"][0]["taskArn"])
        assert details(out["tasks"][0])[1]["subnetId"] == default_subnet["SubnetId"]
    finally:
        tasks.cleanup()
        wait_for(lambda: ec2.describe_subnets(SubnetIds=[small["SubnetId"]])["Subnets"][0][
            "AvailableIpAddressCount"] == 11, 30, "the addresses to come back")
        ec2.delete_subnet(SubnetId=small["SubnetId"])


# ---------------------------------------------------------------------------------------------------------------
# a service behind an ALB `ip` target group


def test_a_fargate_definition_as_a_service_of_three_behind_an_ip_target_group(ecs, ec2, boto_client, instance_arn):  # noqa: F811
    from test_elbv2 import Resources, forward
    from test_services import Services
    from conftest import free_port

    elb = boto_client("elbv2")
    res, services = Resources(elb), Services(ecs)
    try:
        subnets = [s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]]
        family = unique("fgsvc")
        td = fargate_definition(family)
        td["containerDefinitions"][0].update(stopTimeout=2)
        ecs.register_task_definition(**td)
        tg = res.target_group(TargetType="ip", Port=8080)["TargetGroupArn"]
        lb = res.load_balancer()
        port = free_port()
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                            DefaultActions=forward(tg))
        # An `ip` group takes awsvpc tasks only.
        bridge = ecs.register_task_definition(family=unique("br"), containerDefinitions=[
            container(portMappings=[{"containerPort": 8080}])])["taskDefinition"]["taskDefinitionArn"]
        error = client_error(ecs.create_service, serviceName=unique("bad"), taskDefinition=bridge, desiredCount=1,
                             loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}])
        assert "incompatible with the bridge network mode" in error["Message"]

        name = unique("fgsvc")
        created = services.create(name, family, 3, networkConfiguration=awsvpc(subnets),
                                  loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}])
        assert created["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == subnets
        services.wait_steady(name, 3, timeout=90)
        running = services.tasks(name)
        addresses = sorted(details(t)[1]["privateIPv4Address"] for t in running)
        assert len(set(addresses)) == 3
        # EC2 launch type: the interfaces are in the subnet of the instance's zone, as on ECS.
        [zone] = {t["availabilityZone"] for t in running}
        assert {details(t)[1]["subnetId"] for t in running} == {
            s["SubnetId"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"] if s["AvailabilityZone"] == zone}
        wait_for(lambda: sorted(
            t["Target"]["Id"] for t in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            if t["TargetHealth"]["State"] == "healthy") == addresses, 60, "three healthy ip targets")
        assert {t["Target"]["Port"] for t in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]} == {8080}
        # Traffic through the load balancer reaches all three tasks.
        seen = set()
        for _ in range(60):
            r = requests.get(f"http://127.0.0.1:{port}/hostname", headers={"Host": lb["DNSName"]}, timeout=5)
            assert r.status_code == 200
            seen.add(r.text.strip())
        assert len(seen) == 3, seen
        services.ecs.update_service(cluster="default", service=name, desiredCount=0)
        wait_for(lambda: services.tasks(name) == [], 60, "the service's tasks to stop")
    finally:
        services.cleanup()
        res.cleanup()


# ---------------------------------------------------------------------------------------------------------------
# security groups, enforced


def test_security_groups_let_in_only_what_they_allow(ecs, ec2, boto_client, tasks, default_subnet):
    from test_elbv2 import Resources, forward
    from conftest import free_port

    elb = boto_client("elbv2")
    res = Resources(elb)
    vpc = default_subnet["VpcId"]
    made = []
    try:
        alb_group = group(ec2, "alb", vpc)
        web_group = group(ec2, "web", vpc, [tcp_from(8080, group_id=alb_group)])
        client_group = group(ec2, "client", vpc)
        made += [web_group, client_group, alb_group]
        subnet = default_subnet["SubnetId"]

        web_td = tasks.register(container(command=["serve"], portMappings=[{"containerPort": 8080}]),
                                networkMode="awsvpc")
        web = tasks.run(web_td, networkConfiguration=awsvpc([subnet], [web_group]))["taskArn"]
        _, d = details(tasks.running(web))
        address = d["privateIPv4Address"]
        assert filter_rules(address), "the task's rules are in the host's packet filter"

        # The load balancer's group is let in: health checks pass and requests go through.
        tg = res.target_group(TargetType="ip", Port=8080)["TargetGroupArn"]
        lb = res.load_balancer(SecurityGroups=[alb_group])
        assert lb["SecurityGroups"] == [alb_group]
        port = free_port()
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                            DefaultActions=forward(tg))
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": address, "Port": 8080}])
        wait_for(lambda: elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0][
            "TargetHealth"]["State"] == "healthy", 30, "the task to be a healthy target")
        r = requests.get(f"http://127.0.0.1:{port}/hostname", headers={"Host": lb["DNSName"]}, timeout=5)
        assert r.status_code == 200
        # The host itself is in no group the task lets in.
        assert not reachable(f"http://{address}:8080/hostname")

        # Another task, in another group (and another subnet), tries every 0.2 s and says how it went.
        other_subnet = next(s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"] if s["SubnetId"] != subnet)
        # (`timeout`, not wget's own -T, which crashes Debian's static busybox.)
        script = (f"while true; do if timeout 1 wget -q -O /dev/null http://{address}:8080/hostname; "
                  "then echo ok; else echo no; fi; sleep 0.2; done")
        client_td = tasks.register(sh(script, name="client"), networkMode="awsvpc")
        client = tasks.run(client_td, networkConfiguration=awsvpc([other_subnet], [client_group]))["taskArn"]
        client_id = tasks.running(client)["containers"][0]["runtimeId"]

        def answers():
            return docker("logs", client_id).stdout.split()

        def after(count, word, what):
            """The index of the first `word` answered after the first `count` answers."""
            def probe():
                rest = answers()[count:]
                return word in rest and count + rest.index(word) + 1
            return wait_for(probe, 15, what) - 1

        after(0, "no", "the client to be refused")
        assert "ok" not in answers()

        # Authorize: the client's group is let in, within a second or so.
        ec2.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[tcp_from(8080, group_id=client_group)])
        authorized = time.monotonic()
        seen = len(answers())
        after(seen, "ok", "the client to be let in after authorize-security-group-ingress")
        print(f"let in {time.monotonic() - authorized:.2f} s after the authorize")

        # Revoke: refused again (every try is a new connection).
        ec2.revoke_security_group_ingress(GroupId=web_group, IpPermissions=[tcp_from(8080, group_id=client_group)])
        revoked = time.monotonic()
        seen = len(answers())
        first = after(seen, "no", "the client to be refused after revoke-security-group-ingress")
        # (Each refused try takes its one-second timeout.)
        print(f"refused {time.monotonic() - revoked:.2f} s after the revoke")
        time.sleep(2.5)
        assert "ok" not in answers()[first:]

        # A CIDR rule lets the host in (its address on the subnet's network is in the VPC's block).
        ec2.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[tcp_from(8080, cidr="172.31.0.0/16")])
        wait_for(lambda: reachable(f"http://{address}:8080/hostname"), 10, "the host to be let in by a CIDR rule")

        # Nothing of the tasks is left in the packet filter once they stop.
        client_address = details(tasks.describe(client))[1]["privateIPv4Address"]
        tasks.stop(web)
        tasks.stop(client)
        tasks.stopped(web)
        tasks.stopped(client)
        assert filter_rules(address) == [] and filter_rules(client_address) == []
    finally:
        tasks.cleanup()
        res.cleanup()
        for g in made:
            wait_for(lambda: _deleted(ec2, g), 30, f"the group {g} to be deleted")


def _deleted(ec2, group_id):
    try:
        ec2.delete_security_group(GroupId=group_id)
        return True
    except botocore.exceptions.ClientError as e:
        # Still referenced by an interface or by another group's rule a moment longer.
        return e.response["Error"]["Code"] == "InvalidGroup.NotFound"
