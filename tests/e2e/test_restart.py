"""Crash safety of tasks: `kill -9` of the server (and with it the embedded agent) while tasks run, then a start.
Running containers are re-adopted (never restarted or duplicated), exits that happened while the server was down
are reported, log lines written meanwhile arrive once, and nothing the API acknowledged is lost."""

import json
import subprocess
import threading
import time

import botocore.exceptions
import pytest

from helpers import container, docker, unique, wait_for
from shape_check import make_client




def containers_with(label):
    ids = docker("ps", "-aq", "--filter", f"label={label}").stdout.split()
    return json.loads(docker("inspect", *ids).stdout) if ids else []


def task_containers(task_arn):
    return containers_with(f"com.amazonaws.ecs.task-arn={task_arn}")


def describe(ecs, arn):
    out = ecs.describe_tasks(tasks=[arn])
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]


def wait_status(ecs, arn, status, timeout=30):
    found = {}

    def probe():
        found["task"] = describe(ecs, arn)
        return found["task"]["lastStatus"] == status

    try:
        wait_for(probe, timeout, status)
    except pytest.fail.Exception:
        pytest.fail(f"the task is not {status} after {timeout}s: {found.get('task')}")
    return found["task"]


def register(ecs, *containers, family=None):
    family = family or unique("restart")
    return ecs.register_task_definition(family=family, containerDefinitions=list(containers))["taskDefinition"]


def run(ecs, td_arn, **kwargs):
    out = ecs.run_task(taskDefinition=td_arn, **kwargs)
    assert out["failures"] == [], out["failures"]
    return out["tasks"]


def agent_connected(ecs):
    """The embedded agent's container instance ARN once it is registered and connected, else None (the server
    answers its health check before the agent has registered, and creates `default` only then)."""
    try:
        arns = ecs.list_container_instances()["containerInstanceArns"]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "ClusterNotFoundException":
            return None
        raise
    if len(arns) != 1:
        return None
    ci = ecs.describe_container_instances(containerInstances=arns)["containerInstances"][0]
    return ci["agentConnected"] and arns[0]


def crash(gantry, down_for=0.0):
    """kill -9 the server, leave it down `down_for` seconds, start it again (start waits until it is healthy)."""
    gantry.kill9()
    if down_for:
        time.sleep(down_for)
    gantry.start()


@pytest.fixture
def started(gantry, ecs):
    """Task ARNs to stop when the test ends; the server is started again if a test left it down."""
    wait_for(lambda: agent_connected(ecs), 30, "the embedded agent to register")
    arns = []
    yield arns
    if gantry.proc is None or gantry.proc.poll() is not None:
        gantry.start()
    for arn in arns:
        try:
            ecs.stop_task(task=arn)
        except botocore.exceptions.ClientError:
            pass
    for arn in arns:
        try:
            wait_status(ecs, arn, "STOPPED", timeout=60)
        except (botocore.exceptions.ClientError, pytest.fail.Exception):
            pass


def test_a_running_container_is_adopted_not_restarted(gantry, ecs, started):
    td = register(ecs, container("web", command=["sleep", "600000"]), container("side", command=["serve"]))
    arn = run(ecs, td["taskDefinitionArn"])[0]["taskArn"]
    started.append(arn)
    before = wait_status(ecs, arn, "RUNNING")
    inspected = {c["Config"]["Labels"]["com.amazonaws.ecs.container-name"]: c for c in task_containers(arn)}
    assert set(inspected) == {"web", "side"}

    crash(gantry)

    # The agent takes the containers back; it neither starts new ones nor restarts these.
    after = describe(ecs, arn)
    assert (after["lastStatus"], after["desiredStatus"]) == ("RUNNING", "RUNNING"), after
    assert after["startedAt"] == before["startedAt"]
    # The agent registers again and takes its tasks back.
    wait_for(lambda: agent_connected(ecs), 30, "the agent to connect again")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        now = {c["Config"]["Labels"]["com.amazonaws.ecs.container-name"]: c for c in task_containers(arn)}
        assert len(task_containers(arn)) == 2, now
        for name, c in now.items():
            assert c["Id"] == inspected[name]["Id"], name
            assert c["State"]["StartedAt"] == inspected[name]["State"]["StartedAt"], name
            assert c["State"]["Running"] and c["RestartCount"] == 0, name
        time.sleep(0.5)
    after = describe(ecs, arn)
    assert after["lastStatus"] == "RUNNING"
    assert {c["name"]: c["runtimeId"] for c in after["containers"]} == {n: c["Id"] for n, c in inspected.items()}

    # The adopted task is still under the agent's control: stopping it stops those containers.
    ecs.stop_task(task=arn)
    stopped = wait_status(ecs, arn, "STOPPED")
    assert stopped["stopCode"] == "UserInitiated"
    assert all(c.get("exitCode") is not None for c in stopped["containers"]), stopped


def test_an_awsvpc_task_keeps_its_address_and_pause_container_across_a_kill9(gantry, ecs, started):
    ec2 = make_client("ec2", gantry.endpoint)
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    # A group that lets the host in, so that the test can reach the task before and after the crash.
    open_group = ec2.create_security_group(GroupName=unique("open"), Description="open", VpcId=subnet["VpcId"])[
        "GroupId"]
    ec2.authorize_security_group_ingress(GroupId=open_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    td = ecs.register_task_definition(family=unique("restart-vpc"), networkMode="awsvpc", containerDefinitions=[
        container("web", command=["serve"], portMappings=[{"containerPort": 8080}])])["taskDefinition"]
    arn = run(ecs, td["taskDefinitionArn"], networkConfiguration={
        "awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [open_group]}})[0]["taskArn"]
    started.append(arn)
    before = wait_status(ecs, arn, "RUNNING")
    ids = sorted(c["Id"] for c in task_containers(arn))
    assert len(ids) == 2  # the task's container and its pause container
    interfaces = ec2.describe_network_interfaces()["NetworkInterfaces"]
    eni = next(d["value"] for d in before["attachments"][0]["details"] if d["name"] == "networkInterfaceId")
    assert eni in [i["NetworkInterfaceId"] for i in interfaces]

    crash(gantry)

    wait_for(lambda: agent_connected(ecs), 30, "the agent to connect again")
    time.sleep(2)
    after = describe(ecs, arn)
    assert after["lastStatus"] == "RUNNING" and after["attachments"] == before["attachments"]
    assert sorted(c["Id"] for c in task_containers(arn)) == ids, "nothing made twice"
    assert all(c["State"]["Running"] and c["RestartCount"] == 0 for c in task_containers(arn))
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == interfaces
    address = next(d["value"] for d in after["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    import requests
    assert requests.get(f"http://{address}:8080/hostname", timeout=5).status_code == 200
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    assert f"GI-{address}" in rules, "the task's security group rules survive the crash"

    ecs.stop_task(task=arn)
    wait_status(ecs, arn, "STOPPED")
    wait_for(lambda: eni not in [i["NetworkInterfaceId"] for i in ec2.describe_network_interfaces()[
        "NetworkInterfaces"]], 30, "the ENI to go")
    network = f"gantry-{subnet['SubnetId']}"
    wait_for(lambda: network not in docker("network", "ls", "--format", "{{.Name}}").stdout.split(), 30,
             "the subnet's host network to go")
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    assert address not in rules, "no packet filter rule of the task is left"
    wait_for(lambda: _deleted(ec2, open_group), 30, "the group to be deleted")


def _deleted(ec2, group_id):
    try:
        ec2.delete_security_group(GroupId=group_id)
        return True
    except botocore.exceptions.ClientError:
        return False


def test_an_exit_while_the_server_is_down_is_reported_after_the_start(gantry, ecs, started):
    td = register(ecs, container("job", command=["exit", "3", "--after-ms", "3000"]))
    arn = run(ecs, td["taskDefinitionArn"])[0]["taskArn"]
    started.append(arn)
    wait_status(ecs, arn, "RUNNING")
    crash(gantry, down_for=5)  # the container exits 3 s after its start, with nobody watching
    task = wait_status(ecs, arn, "STOPPED")
    assert task["containers"][0]["exitCode"] == 3, task
    assert task["stopCode"] == "EssentialContainerExited", task
    assert task["desiredStatus"] == "STOPPED"
    for name in ("startedAt", "stoppingAt", "executionStoppedAt", "stoppedAt"):
        assert name in task, task


def test_log_lines_written_while_the_server_is_down_arrive_once(gantry, ecs, logs, started):
    group = f"/ecs/{unique('restart')}"
    count = 60
    td = register(
        ecs,
        container(
            "web",
            command=["log", str(count), "--interval-ms", "200"],
            logConfiguration={
                "logDriver": "awslogs",
                "options": {"awslogs-group": group, "awslogs-stream-prefix": "app", "awslogs-create-group": "true"},
            },
        ),
    )
    arn = run(ecs, td["taskDefinitionArn"])[0]["taskArn"]
    started.append(arn)
    stream = f"app/web/{arn.rsplit('/', 1)[1]}"

    def lines():
        try:
            page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        return page["events"]

    wait_for(lambda: len(lines()) >= 5, 30, "the first lines")
    killed_ms = time.time() * 1000
    crash(gantry, down_for=3)
    started_ms = time.time() * 1000
    wanted = [f"line {i}" for i in range(1, count + 1)]
    events = wait_for(lambda: len(e := lines()) >= count and e, 30, f"{count} lines")
    assert [e["message"] for e in events] == wanted
    # Some of them were written while the server was down.
    assert any(killed_ms < e["timestamp"] < started_ms for e in events)


def test_clusters_and_task_definitions_survive(gantry, ecs):
    clusters = [unique("keep") for _ in range(3)]
    for name in clusters:
        ecs.create_cluster(clusterName=name, tags=[{"key": "name", "value": name}])
    family = unique("keep")
    arns = [register(ecs, container("web", memory=32 + i), family=family)["taskDefinitionArn"] for i in range(3)]
    ecs.deregister_task_definition(taskDefinition=arns[0])
    instance = wait_for(lambda: agent_connected(ecs), 30, "the embedded agent to register")

    crash(gantry)

    described = ecs.describe_clusters(clusters=clusters, include=["TAGS"])
    assert described["failures"] == []
    assert [(c["clusterName"], c["status"], c["tags"]) for c in described["clusters"]] == [
        (name, "ACTIVE", [{"key": "name", "value": name}]) for name in clusters
    ]
    listed = ecs.list_clusters()["clusterArns"]
    assert all(f"arn:aws:ecs:us-east-1:000000000000:cluster/{n}" in listed for n in clusters)
    for i, arn in enumerate(arns):
        td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        assert td["revision"] == i + 1
        assert td["status"] == ("INACTIVE" if i == 0 else "ACTIVE")
        assert td["containerDefinitions"][0]["memory"] == 32 + i
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == arns[1:]
    # The host is the same container instance as before.
    assert wait_for(lambda: agent_connected(ecs), 30, "the agent to connect again") == instance


def test_kill9_during_a_burst_of_run_task(gantry, ecs, started):
    family = unique("burst")
    td = register(ecs, container("web", command=["sleep", "600000"], memory=16), family=family)
    instance = ecs.list_container_instances()["containerInstanceArns"][0]
    returned, refused, errors, stop = [], [], [], threading.Event()
    lock = threading.Lock()

    def caller():
        client = make_client("ecs", gantry.endpoint)
        while not stop.is_set():
            try:
                out = client.run_task(taskDefinition=td["taskDefinitionArn"], count=2)
            except Exception as e:  # the server died under the call
                with lock:
                    errors.append(e)
                return
            with lock:
                returned.extend(t["taskArn"] for t in out["tasks"])
                refused.extend(out["failures"])

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(returned) >= 8, 30, "some RunTask calls to succeed", interval=0.01)
        gantry.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    acknowledged = list(returned)
    gantry.start()
    assert refused == []

    known = set()
    for status in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(family=family, desiredStatus=status):
            known.update(page["taskArns"])
    started.extend(known)
    # Every task the API acknowledged exists.
    assert set(acknowledged) <= known, set(acknowledged) - known
    for i in range(0, len(acknowledged), 100):
        out = ecs.describe_tasks(tasks=acknowledged[i:i + 100])
        assert out["failures"] == [], out["failures"]

    # Each known task comes up, with one container.
    def all_running():
        arns = sorted(known)
        tasks = [t for i in range(0, len(arns), 100) for t in ecs.describe_tasks(tasks=arns[i:i + 100])["tasks"]]
        return all(t["lastStatus"] == "RUNNING" for t in tasks)

    wait_for(all_running, 60, "every task of the burst to run")
    mine = containers_with(f"com.amazonaws.ecs.task-definition-family={family}")
    per_task = {}
    for c in mine:
        per_task.setdefault(c["Config"]["Labels"]["com.amazonaws.ecs.task-arn"], []).append(c["Id"])
    assert set(per_task) == known, set(per_task) ^ known
    assert all(len(ids) == 1 for ids in per_task.values()), per_task

    # No container of this server's agent runs for a task the server does not know.
    running = [c for c in containers_with(f"gantry.instance={instance}") if c["State"]["Running"]]
    task_arns = sorted({c["Config"]["Labels"]["com.amazonaws.ecs.task-arn"] for c in running})
    for i in range(0, len(task_arns), 100):
        out = ecs.describe_tasks(tasks=task_arns[i:i + 100])
        assert out["failures"] == [], out["failures"]
