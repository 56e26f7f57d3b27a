"""Remote agents (`gantry agent --server URL`): several agents on this host ("virtual instances") join a server of
their own (`--no-agent --agent-timeout 3`) with its join token, register with their attributes and resources, run
the tasks placed on them, re-adopt their containers after a `kill -9`, show `agentConnected=false` once silent for
the agent timeout, and a wrong join token ends an agent with a clear error."""

import json
import os
import subprocess
import time

import botocore.exceptions
import pytest

from conftest import GANTRY_BIN, Gantry, free_port
from helpers import Agent, container, docker, remove_containers_of, unique, wait_for
from shape_check import make_client

AGENT_TIMEOUT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("agents")
    s = Gantry(
        GANTRY_BIN, base / "data", base / "gantry.log", free_port(),
        extra_args=["--no-agent", "--agent-timeout", str(AGENT_TIMEOUT)],
    )
    s.base = base
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def join_token(server):
    """The join token the server generated and keeps in its data dir, readable by its owner only."""
    path = server.data_dir / "agent-token"
    assert path.exists(), server.log()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    return path.read_text().strip()


@pytest.fixture(scope="module")
def ecs(server):
    return make_client("ecs", server.endpoint)


@pytest.fixture(scope="module")
def agents(server, join_token, ecs):
    """Two virtual instances of this host in two zones, both registered and connected."""
    a = Agent(server, server.base, "agent-a", "--cpu", "1024", "--memory", "768",
              "--attribute", "ecs.availability-zone=zone-a", "--attribute", "gantry-test.flag",
              "--task-cleanup-wait", "5", token=join_token)
    b = Agent(server, server.base, "agent-b", "--cpu", "2048", "--memory", "1024",
              "--attribute", "ecs.availability-zone=zone-b", "--instance-id", "i-0b0b0b0b0b0b0b0b0",
              "--task-cleanup-wait", "5", token=join_token)
    all_agents = [a, b]
    try:
        for agent in all_agents:
            agent.start()
        for agent in all_agents:
            wait_for(lambda: agent.arn(), 30, f"{agent.name} to register; log:\n{agent.log()}")
            wait_for(lambda: connected(ecs, agent.arn()), 30, f"{agent.name} to be connected")
        yield {"a": a, "b": b}
    finally:
        for agent in all_agents:
            agent.stop()
        for agent in all_agents:
            remove_containers_of(agent.arn())


def describe_instance(ecs, arn):
    out = ecs.describe_container_instances(containerInstances=[arn])
    assert out["failures"] == [], out["failures"]
    return out["containerInstances"][0]


def connected(ecs, arn):
    return arn is not None and describe_instance(ecs, arn)["agentConnected"]


def describe_task(ecs, arn):
    out = ecs.describe_tasks(tasks=[arn])
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]


def wait_task(ecs, arn, status, timeout=60):
    seen = {}

    def probe():
        seen["task"] = describe_task(ecs, arn)
        return seen["task"]["lastStatus"] == status

    try:
        wait_for(probe, timeout, status)
    except pytest.fail.Exception:
        pytest.fail(f"the task is not {status} after {timeout}s: {seen.get('task')}")
    return seen["task"]


def task_containers(task_arn):
    ids = docker("ps", "-aq", "--filter", f"label=com.amazonaws.ecs.task-arn={task_arn}").stdout.split()
    return json.loads(docker("inspect", *ids).stdout) if ids else []


@pytest.fixture
def sleeper(ecs):
    family = unique("agents")
    ecs.register_task_definition(
        family=family, containerDefinitions=[container("web", memory=64, command=["sleep", "600000"])]
    )
    return family


def stop_quietly(ecs, arn):
    try:
        ecs.stop_task(task=arn, reason="test cleanup")
    except botocore.exceptions.ClientError:
        pass


def test_agents_register_with_their_attributes_and_resources(ecs, agents):
    arns = ecs.list_container_instances()["containerInstanceArns"]
    assert sorted(arns) == sorted([agents["a"].arn(), agents["b"].arn()])
    a = describe_instance(ecs, agents["a"].arn())
    b = describe_instance(ecs, agents["b"].arn())
    for ci in (a, b):
        assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True, ci
    attrs = lambda ci: {x["name"]: x.get("value") for x in ci["attributes"]}  # noqa: E731
    assert attrs(a)["ecs.availability-zone"] == "zone-a"
    assert "gantry-test.flag" in attrs(a) and attrs(a)["gantry-test.flag"] is None
    assert attrs(b)["ecs.availability-zone"] == "zone-b"
    assert "gantry-test.flag" not in attrs(b)
    res = lambda ci: {r["name"]: r.get("integerValue") for r in ci["registeredResources"]}  # noqa: E731
    assert (res(a)["CPU"], res(a)["MEMORY"]) == (1024, 768)
    assert (res(b)["CPU"], res(b)["MEMORY"]) == (2048, 1024)
    assert b["ec2InstanceId"] == "i-0b0b0b0b0b0b0b0b0"
    # The attribute is queryable as ECS's own.
    zone_b = ecs.list_container_instances(filter="attribute:ecs.availability-zone == zone-b")
    assert zone_b["containerInstanceArns"] == [agents["b"].arn()]


def test_a_task_runs_on_the_agent_it_was_started_on(ecs, agents, sleeper):
    b = agents["b"].arn()
    out = ecs.start_task(taskDefinition=sleeper, containerInstances=[b])
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]
    try:
        task = wait_task(ecs, arn, "RUNNING")
        assert task["containerInstanceArn"] == b
        [c] = task_containers(arn)
        assert c["Config"]["Labels"]["gantry.instance"] == b
        assert c["State"]["Running"]
        assert task["containers"][0]["runtimeId"] == c["Id"]
        ecs.stop_task(task=arn)
        stopped = wait_task(ecs, arn, "STOPPED")
        assert stopped["stopCode"] == "UserInitiated"
    finally:
        stop_quietly(ecs, arn)


def test_placement_by_zone_attribute(ecs, agents, sleeper):
    out = ecs.run_task(
        taskDefinition=sleeper,
        count=2,
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-a"}],
    )
    assert out["failures"] == [], out["failures"]
    arns = [t["taskArn"] for t in out["tasks"]]
    try:
        for arn in arns:
            task = wait_task(ecs, arn, "RUNNING")
            assert task["containerInstanceArn"] == agents["a"].arn()
            assert task_containers(arn)[0]["Config"]["Labels"]["gantry.instance"] == agents["a"].arn()
    finally:
        for arn in arns:
            stop_quietly(ecs, arn)
        for arn in arns:
            wait_task(ecs, arn, "STOPPED")


def test_kill9_and_restart_keeps_the_instance_and_adopts_its_containers(ecs, agents, sleeper):
    agent = agents["a"]
    instance = agent.arn()
    out = ecs.start_task(taskDefinition=sleeper, containerInstances=[instance])
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]
    try:
        before = wait_task(ecs, arn, "RUNNING")
        [c_before] = task_containers(arn)

        agent.kill9()
        agent.start()
        wait_for(lambda: "registered" in agent.log().split("===== starting agent")[-1], 30,
                 f"{agent.name} to register again")
        assert agent.arn() == instance
        wait_for(lambda: connected(ecs, instance), 30, f"{agent.name} to be connected again")
        assert sorted(ecs.list_container_instances()["containerInstanceArns"]) == sorted(
            [agents["a"].arn(), agents["b"].arn()]
        )
        # Adopted, not restarted: the same container, started once, and the task untouched.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            [c_after] = task_containers(arn)
            assert c_after["Id"] == c_before["Id"]
            assert c_after["State"]["StartedAt"] == c_before["State"]["StartedAt"]
            assert c_after["State"]["Running"] and c_after["RestartCount"] == 0
            time.sleep(0.5)
        after = describe_task(ecs, arn)
        assert (after["lastStatus"], after["startedAt"]) == ("RUNNING", before["startedAt"])
        # Still under the restarted agent's control.
        ecs.stop_task(task=arn)
        wait_task(ecs, arn, "STOPPED")
        assert not any(c["State"]["Running"] for c in task_containers(arn))
    finally:
        stop_quietly(ecs, arn)


def test_a_silent_agent_is_disconnected_after_the_timeout(ecs, agents):
    agent = agents["b"]
    instance = agent.arn()
    assert connected(ecs, instance)
    agent.kill9()
    killed = time.monotonic()
    wait_for(lambda: not connected(ecs, instance), AGENT_TIMEOUT + 10, "agentConnected=false")
    assert time.monotonic() - killed >= AGENT_TIMEOUT - 1.5
    ci = describe_instance(ecs, instance)
    assert ci["status"] == "ACTIVE" and ci["agentConnected"] is False
    agent.start()
    wait_for(lambda: connected(ecs, instance), 30, "agentConnected=true again")
    assert agent.arn() == instance
    # A long poll keeps it connected past the timeout.
    time.sleep(AGENT_TIMEOUT + 1)
    assert connected(ecs, instance)


def test_a_wrong_join_token_ends_the_agent_with_a_clear_error(server, agents, tmp_path):
    agent = Agent(server, tmp_path, "intruder", token="not-the-token")
    result = subprocess.run(agent.command(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "join token" in result.stderr, result.stderr
    assert agent.arn() is None


@pytest.mark.parametrize(
    "args",
    [
        ["--cpu", "0"],
        ["--memory", "-5"],
        ["--attribute", "=novalue"],
        ["--attribute", "bad name=x"],
        ["--instance-id", "i 1"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags_exit_with_2(server, join_token, tmp_path, args):
    cmd = [str(GANTRY_BIN), "agent", "--server", server.endpoint, "--token", join_token,
           "--data-dir", str(tmp_path / "x"), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result
    assert result.stderr.strip(), "a message says what is wrong"


def test_missing_server_or_token_exit_with_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
    for cmd, needle in [
        (["agent", "--token", "x"], "--server"),
        (["agent", "--server", "http://127.0.0.1:1"], "--token"),
        (["agent", "--server", "https://127.0.0.1:1", "--token", "x"], "https"),
    ]:
        result = subprocess.run([str(GANTRY_BIN), *cmd, "--data-dir", str(tmp_path / "x")], env=env,
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result
        assert needle in result.stderr, result.stderr
