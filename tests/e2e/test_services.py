"""ECS services with real containers on the embedded agent: steady state, replacement of stopped, killed and
unhealthy tasks, rolling deployments within minimumHealthyPercent / maximumPercent, the deployment circuit
breaker, the delete flow Terraform uses, draining the container instance, bad input, and `kill -9` of the server
in the middle of a rolling deployment.

The embedded agent's container instance is in the `default` cluster, so every test that needs containers runs
its services there under a unique service name (and task definition family); tests without containers use a
cluster of their own. Containers are small (16 MiB, 16 CPU units) and stop at once (testapp exits on SIGTERM).
"""

import json
import time

import botocore.exceptions
import pytest

from conftest import GANTRY_BIN, Gantry, free_port, remove_task_containers
from helpers import docker, unique, wait_for
from shape_check import make_client
from test_restart import agent_connected

CLUSTER = "default"  # where the embedded agent's container instance is
IMAGE = "gantry-test/testapp:latest"
UNHEALTHY_REASON = "Task failed container health checks."
HEALTH_CHECK = {
    "command": ["CMD", "/testapp", "health", "http://127.0.0.1:8080/health"],
    "interval": 5,
    "timeout": 2,
    "retries": 1,
    "startPeriod": 0,
}


def app(command=("sleep", "600000"), **extra):
    c = {"name": "app", "image": IMAGE, "memory": 16, "cpu": 16, "command": list(command), "stopTimeout": 2}
    c.update(extra)
    return c


def register(ecs, family, *containers):
    out = ecs.register_task_definition(family=family, containerDefinitions=list(containers or [app()]))
    return out["taskDefinition"]["taskDefinitionArn"]


def messages(service):
    return [e["message"] for e in service.get("events", [])]


def running_containers(label):
    """Ids of the running containers with `label` (key=value)."""
    return docker("ps", "-q", "--no-trunc", "--filter", f"label={label}").stdout.split()


def task_containers_running(task_arn):
    return running_containers(f"com.amazonaws.ecs.task-arn={task_arn}")


def inspect(ids):
    return json.loads(docker("inspect", *ids).stdout) if ids else []


def client_error(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kwargs)
    return e.value.response


class Services:
    """Services of one test on one server; `cleanup()` deletes them (force) and waits until their tasks are gone."""

    def __init__(self, ecs, cluster=CLUSTER):
        self.ecs = ecs
        self.cluster = cluster
        self.names = []

    def create(self, name, task_definition, desired, **kwargs):
        self.names.append(name)
        out = self.ecs.create_service(
            cluster=self.cluster, serviceName=name, taskDefinition=task_definition, desiredCount=desired, **kwargs
        )
        return out["service"]

    def update(self, name, **kwargs):
        return self.ecs.update_service(cluster=self.cluster, service=name, **kwargs)["service"]

    def describe(self, name):
        out = self.ecs.describe_services(cluster=self.cluster, services=[name])
        assert out["failures"] == [], out["failures"]
        return out["services"][0]

    def task_arns(self, name, status="RUNNING"):
        arns = []
        for page in self.ecs.get_paginator("list_tasks").paginate(
            cluster=self.cluster, serviceName=name, desiredStatus=status
        ):
            arns.extend(page["taskArns"])
        return arns

    def tasks(self, name, status="RUNNING"):
        arns = self.task_arns(name, status)
        out = []
        for i in range(0, len(arns), 100):
            out.extend(self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i:i + 100])["tasks"])
        return out

    def describe_tasks(self, arns):
        out = self.ecs.describe_tasks(cluster=self.cluster, tasks=list(arns))
        assert out["failures"] == [], out["failures"]
        return out["tasks"]

    def wait(self, name, predicate, timeout, what):
        seen = {}

        def probe():
            seen["service"] = self.describe(name)
            return predicate(seen["service"])

        try:
            wait_for(probe, timeout, what)
        except pytest.fail.Exception:
            s = seen.get("service", {})
            pytest.fail(
                f"{name}: timed out after {timeout}s waiting for {what}; running={s.get('runningCount')} "
                f"pending={s.get('pendingCount')} deployments={s.get('deployments')} events={messages(s)[:8]}"
            )
        return seen["service"]

    def wait_steady(self, name, desired, timeout=40, task_definition=None):
        """One deployment, COMPLETED, running the desired count, nothing pending."""

        def steady(s):
            d = s["deployments"]
            return (
                len(d) == 1
                and d[0]["rolloutState"] == "COMPLETED"
                and (task_definition is None or d[0]["taskDefinition"] == task_definition)
                and s["runningCount"] == desired
                and s["pendingCount"] == 0
            )

        return self.wait(name, steady, timeout, f"a steady state with {desired} running tasks")

    def cleanup(self):
        for name in self.names:
            try:
                self.ecs.delete_service(cluster=self.cluster, service=name, force=True)
            except botocore.exceptions.ClientError:
                pass
        for name in self.names:
            try:
                wait_for(lambda: self.describe(name)["status"] == "INACTIVE", 30, f"{name} to be INACTIVE")
            except (botocore.exceptions.ClientError, pytest.fail.Exception, AssertionError):
                pass


@pytest.fixture
def services(ecs):
    wait_for(lambda: agent_connected(ecs), 30, "the embedded agent to register")
    s = Services(ecs)
    yield s
    s.cleanup()


def rollout_sampler(services, name, family, desired, maximum, minimum_running):
    """Samples the service every ~200 ms until its rollout is COMPLETED and checks ECS's limits each time:
    running+pending of all deployments <= maximum (the API's counts, and the containers Docker really runs),
    and at least `minimum_running` tasks RUNNING (and not asked to stop). Returns the samples."""
    samples = []
    deadline = time.monotonic() + 60
    while True:
        s = services.describe(name)
        total = sum(d["runningCount"] + d["pendingCount"] for d in s["deployments"])
        tasks = services.tasks(name)
        running = [t for t in tasks if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"]
        in_docker = running_containers(f"com.amazonaws.ecs.task-definition-family={family}")
        states = [(d["status"], d["rolloutState"], d["runningCount"], d["pendingCount"]) for d in s["deployments"]]
        samples.append(states)
        assert total <= maximum, f"{total} tasks hold resources, more than {maximum}: {states}"
        assert len(in_docker) <= maximum, f"{len(in_docker)} containers run, more than {maximum}: {states}"
        assert len(running) >= minimum_running, f"only {len(running)} tasks RUNNING: {states}"
        if len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED" and \
                s["runningCount"] == desired and s["pendingCount"] == 0:
            return samples
        if time.monotonic() > deadline:
            pytest.fail(f"the rollout did not complete within 60 s: {states} {messages(s)[:8]}")
        time.sleep(0.2)


# --- 1. steady state ---------------------------------------------------------------------------------------------


def test_create_service_runs_its_tasks_in_docker(ecs, aws, services):
    family = unique("svc-web")
    td = register(ecs, family)
    name = unique("web")
    created = services.create(name, family, 2)
    assert created["status"] == "ACTIVE" and created["desiredCount"] == 2
    assert created["taskDefinition"] == td
    assert [d["status"] for d in created["deployments"]] == ["PRIMARY"]
    deployment = created["deployments"][0]["id"]

    services.wait(name, lambda s: s["runningCount"] == 2, 30, "2 running tasks")
    # The CLI's waiter (deployments == 1 and runningCount == desiredCount) returns on its first poll.
    aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", name, timeout=60)
    s = services.wait_steady(name, 2)
    assert (s["runningCount"], s["pendingCount"], s["desiredCount"]) == (2, 0, 2)
    events = messages(s)
    assert any(m.startswith(f"(service {name}) has started 2 tasks: (task ") for m in events), events
    assert events[0] == f"(service {name}) has reached a steady state.", events

    listed = aws("ecs", "list-tasks", "--cluster", CLUSTER, "--service-name", name)["taskArns"]
    assert len(listed) == 2
    for t in services.describe_tasks(listed):
        assert (t["lastStatus"], t["desiredStatus"]) == ("RUNNING", "RUNNING")
        assert t["group"] == f"service:{name}" and t["startedBy"] == deployment
        assert t["taskDefinitionArn"] == td
    for arn in listed:
        ids = task_containers_running(arn)
        assert len(ids) == 1, (arn, ids)
        labels = inspect(ids)[0]["Config"]["Labels"]
        assert labels["com.amazonaws.ecs.container-name"] == "app"
        assert labels["com.amazonaws.ecs.cluster"] == CLUSTER
        assert labels["com.amazonaws.ecs.task-definition-family"] == family
    assert name in " ".join(ecs.list_services(cluster=CLUSTER)["serviceArns"])


# --- 2. replacement ----------------------------------------------------------------------------------------------


def test_stopped_and_killed_tasks_are_replaced(ecs, services):
    family = unique("svc-repl")
    register(ecs, family)
    name = unique("repl")
    services.create(name, family, 2)
    services.wait_steady(name, 2)
    first, second = services.task_arns(name)

    ecs.stop_task(cluster=CLUSTER, task=first, reason="by hand")
    [victim] = task_containers_running(second)
    docker("kill", victim)

    def replaced(s):
        arns = set(services.task_arns(name))
        return s["runningCount"] == 2 and s["pendingCount"] == 0 and len(arns) == 2 and not arns & {first, second}

    services.wait(name, replaced, 40, "both tasks to be replaced")
    stopped = {t["taskArn"]: t for t in services.describe_tasks([first, second])}
    assert stopped[first]["lastStatus"] == "STOPPED" and stopped[first]["stopCode"] == "UserInitiated"
    assert stopped[second]["lastStatus"] == "STOPPED"
    assert stopped[second]["stopCode"] == "EssentialContainerExited", stopped[second]
    assert stopped[second]["containers"][0]["exitCode"] == 137
    # The replacements run in Docker; the old containers do not.
    for arn in services.task_arns(name):
        assert len(task_containers_running(arn)) == 1
    assert task_containers_running(first) == [] and task_containers_running(second) == []
    s = services.wait_steady(name, 2)
    # The first two and the two replacements.
    started = [int(m.split()[4]) for m in messages(s) if m.startswith(f"(service {name}) has started ")]
    assert sum(started) == 4, messages(s)


# --- 3. rolling deployments --------------------------------------------------------------------------------------


def test_rolling_update_respects_minimum_healthy_and_maximum_percent(ecs, aws, services):
    family = unique("svc-roll")
    td1 = register(ecs, family)
    td2 = register(ecs, family, app(environment=[{"name": "V", "value": "2"}]))
    name = unique("roll")
    services.create(
        name, td1, 4, deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100}
    )
    services.wait_steady(name, 4)

    updated = services.update(name, taskDefinition=td2)
    assert [(d["status"], d["taskDefinition"], d["rolloutState"]) for d in updated["deployments"]] == [
        ("PRIMARY", td2, "IN_PROGRESS"),
        ("ACTIVE", td1, "COMPLETED"),
    ]
    primary = updated["deployments"][0]["id"]
    samples = rollout_sampler(services, name, family, desired=4, maximum=4, minimum_running=2)
    # The rollout was seen under way, with both deployments.
    assert any(len(x) == 2 and x[0][:2] == ("PRIMARY", "IN_PROGRESS") for x in samples), samples
    s = services.describe(name)
    assert s["deployments"][0]["id"] == primary and s["deployments"][0]["taskDefinition"] == td2
    assert s["taskDefinition"] == td2
    tasks = services.tasks(name)
    assert len(tasks) == 4 and {t["taskDefinitionArn"] for t in tasks} == {td2}
    assert {t["startedBy"] for t in tasks} == {primary}
    assert f"(service {name}) (deployment {primary}) deployment completed." in messages(s)

    # --force-new-deployment replaces every task with the same task definition.
    forced = aws("ecs", "update-service", "--cluster", CLUSTER, "--service", name, "--force-new-deployment")
    d = forced["service"]["deployments"]
    assert [(x["status"], x["taskDefinition"]) for x in d] == [("PRIMARY", td2), ("ACTIVE", td2)]
    assert d[0]["id"] != primary and d[1]["id"] == primary
    rollout_sampler(services, name, family, desired=4, maximum=4, minimum_running=2)
    tasks = services.tasks(name)
    assert len(tasks) == 4 and {t["startedBy"] for t in tasks} == {d[0]["id"]}
    assert not {t["taskArn"] for t in tasks} & {t["taskArn"] for t in services.tasks(name, "STOPPED")}

    # The service deployment API: all three, newest first, each SUCCESSFUL.
    listed = aws("ecs", "list-service-deployments", "--cluster", CLUSTER, "--service", name)["serviceDeployments"]
    assert [x["status"] for x in listed] == ["SUCCESSFUL"] * 3, listed
    assert [x["targetServiceRevisionArn"] for x in listed] == [td2, td2, td1]


def test_an_update_while_the_previous_deployment_is_in_progress_keeps_the_minimum_running(ecs, services):
    """The update comes while the first deployment is still IN_PROGRESS and its tasks ran only a moment (not yet
    proven healthy): they are not stopped for free, so at least minimumHealthyPercent of them keep running."""
    family = unique("svc-young")
    td1 = register(ecs, family)
    td2 = register(ecs, family, app(environment=[{"name": "V", "value": "2"}]))
    name = unique("young")
    config = {"minimumHealthyPercent": 50, "maximumPercent": 150}
    services.create(name, td1, 6, deploymentConfiguration=config)
    wait_for(lambda: len([t for t in services.tasks(name) if t["lastStatus"] == "RUNNING"]) == 6, 30, "6 running")
    first = services.describe(name)["deployments"]
    assert [(d["status"], d["rolloutState"]) for d in first] == [("PRIMARY", "IN_PROGRESS")], first

    services.update(name, taskDefinition=td2)
    samples = rollout_sampler(services, name, family, desired=6, maximum=9, minimum_running=3)
    assert any(len(x) == 2 for x in samples), samples
    assert {t["taskDefinitionArn"] for t in services.tasks(name)} == {td2}


# --- 4. circuit breaker ------------------------------------------------------------------------------------------


def test_circuit_breaker_rolls_back_to_the_last_completed_deployment(ecs, services):
    family = unique("svc-cb")
    good = register(ecs, family)
    bad = register(ecs, family, app(command=["exit", "3"]))
    name = unique("cb")
    services.create(
        name, good, 2,
        deploymentConfiguration={
            "minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
    )
    services.wait_steady(name, 2)
    good_tasks = set(services.task_arns(name))
    first = services.describe(name)["deployments"][0]["id"]
    failing = services.update(name, taskDefinition=bad)["deployments"][0]
    assert failing["taskDefinition"] == bad

    # The failed deployment is gone from describe-services once the rollback completed; the service deployment
    # API keeps it.
    s = services.wait_steady(name, 2, timeout=90, task_definition=good)
    assert s["taskDefinition"] == good
    rollback = s["deployments"][0]
    assert rollback["id"] not in (first, failing["id"])
    arns = {x["serviceDeploymentArn"].rsplit("/", 1)[1]: x["serviceDeploymentArn"] for x in
            ecs.list_service_deployments(cluster=CLUSTER, service=name)["serviceDeployments"]}
    described = {
        "ecs-svc/" + x["serviceDeploymentArn"].rsplit("/", 1)[1]: x
        for x in ecs.describe_service_deployments(serviceDeploymentArns=list(arns.values()))["serviceDeployments"]
    }
    assert set(described) == {first, failing["id"], rollback["id"]}
    failed = described[failing["id"]]
    assert failed["status"] == "ROLLBACK_SUCCESSFUL", failed
    assert failed["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert failed["deploymentCircuitBreaker"]["failureCount"] >= failed["deploymentCircuitBreaker"]["threshold"] == 3
    assert described[rollback["id"]]["status"] == "SUCCESSFUL"
    assert described[rollback["id"]]["targetServiceRevision"]["arn"] == good
    events = messages(s)
    assert f"(service {name}) (deployment {failing['id']}) deployment failed: tasks failed to start." in events, events
    assert f"(service {name}) rolling back to deployment with task definition {good}." in events, events
    assert events[0] == f"(service {name}) has reached a steady state."
    # What runs now is the good definition; the bad one's tasks exited with 3.
    tasks = services.tasks(name)
    assert {t["taskDefinitionArn"] for t in tasks} == {good} and len(tasks) == 2
    for arn in (t["taskArn"] for t in tasks):
        assert len(task_containers_running(arn)) == 1
    stopped_bad = [t for t in services.tasks(name, "STOPPED") if t["taskDefinitionArn"] == bad]
    assert len(stopped_bad) >= 3
    assert all(t["containers"][0].get("exitCode") == 3 for t in stopped_bad), stopped_bad
    assert good_tasks  # the first deployment ran


def test_circuit_breaker_without_rollback_fails_and_stays(ecs, services):
    family = unique("svc-cbf")
    good = register(ecs, family)
    bad = register(ecs, family, app(command=["exit", "3"]))
    name = unique("cbf")
    services.create(
        name, good, 1,
        deploymentConfiguration={
            "minimumHealthyPercent": 100, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": True, "rollback": False},
        },
    )
    services.wait_steady(name, 1)
    [old_task] = services.task_arns(name)
    failing = services.update(name, taskDefinition=bad)["deployments"][0]["id"]

    s = services.wait(
        name, lambda s: s["deployments"][0]["rolloutState"] == "FAILED", 60, "the deployment to fail"
    )
    assert s["deployments"][0]["id"] == failing
    assert f"(service {name}) (deployment {failing}) deployment failed: tasks failed to start." in messages(s)
    bad_count = len([t for t in services.tasks(name, "STOPPED") if t["taskDefinitionArn"] == bad])
    assert bad_count >= 3
    # It stays FAILED and starts nothing more; the old task keeps running.
    time.sleep(4)
    s = services.describe(name)
    assert [(d["id"], d["status"], d["rolloutState"]) for d in s["deployments"]][0] == (failing, "PRIMARY", "FAILED")
    assert s["taskDefinition"] == bad
    assert services.task_arns(name) == [old_task]
    assert len(task_containers_running(old_task)) == 1
    assert len([t for t in services.tasks(name, "STOPPED") if t["taskDefinitionArn"] == bad]) == bad_count
    [brief] = [x for x in ecs.list_service_deployments(cluster=CLUSTER, service=name)["serviceDeployments"]
               if x["targetServiceRevisionArn"] == bad]
    assert brief["status"] == "STOPPED", brief


# --- 5. health checks --------------------------------------------------------------------------------------------


def test_an_unhealthy_task_is_stopped_and_replaced(ecs, services):
    import requests

    family = unique("svc-health")
    register(ecs, family, app(command=["serve"], healthCheck=HEALTH_CHECK, portMappings=[{"containerPort": 8080}]))
    name = unique("health")
    services.create(name, family, 2, healthCheckGracePeriodSeconds=1)
    services.wait_steady(name, 2)  # COMPLETED needs HEALTHY tasks
    tasks = services.tasks(name)
    assert {t.get("healthStatus") for t in tasks} == {"HEALTHY"}
    sick, well = tasks
    port = sick["containers"][0]["networkBindings"][0]["hostPort"]
    assert requests.get(f"http://127.0.0.1:{port}/unhealthy", timeout=10).status_code == 200

    def replaced(s):
        arns = set(services.task_arns(name))
        return sick["taskArn"] not in arns and len(arns) == 2 and s["runningCount"] == 2

    services.wait(name, replaced, 40, "the unhealthy task to be replaced")
    [stopped] = services.describe_tasks([sick["taskArn"]])
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == UNHEALTHY_REASON and stopped["stopCode"] == "ServiceSchedulerInitiated"
    s = services.wait_steady(name, 2)
    # Only the unhealthy one went.
    assert well["taskArn"] in services.task_arns(name)
    assert any(
        m == f"(service {name}) has stopped 1 running tasks: (task {sick['taskArn'].rsplit('/', 1)[1]})."
        for m in messages(s)
    ), messages(s)
    wait_for(lambda: task_containers_running(sick["taskArn"]) == [], 20, "the unhealthy container to stop")


# --- 6. delete -----------------------------------------------------------------------------------------------------


def test_scale_to_zero_then_delete_as_terraform_does(ecs, aws, services):
    family = unique("svc-del")
    td = register(ecs, family)
    name = unique("del")
    services.create(name, td, 1)
    services.wait_steady(name, 1)
    [task] = services.task_arns(name)

    aws("ecs", "update-service", "--cluster", CLUSTER, "--service", name, "--desired-count", "0")
    services.wait(name, lambda s: s["runningCount"] == 0 and s["pendingCount"] == 0, 30, "no tasks")
    wait_for(lambda: task_containers_running(task) == [], 20, "the container to stop")
    deleted = aws("ecs", "delete-service", "--cluster", CLUSTER, "--service", name)["service"]
    assert deleted["status"] == "DRAINING" and deleted["desiredCount"] == 0
    s = services.wait(name, lambda s: s["status"] == "INACTIVE", 20, "INACTIVE")
    assert s["serviceName"] == name
    assert s["serviceArn"] not in ecs.list_services(cluster=CLUSTER)["serviceArns"]

    listed = aws("ecs", "list-service-deployments", "--cluster", CLUSTER, "--service", name)["serviceDeployments"]
    assert [(x["status"], x["targetServiceRevisionArn"]) for x in listed] == [("SUCCESSFUL", td)]
    [d] = aws("ecs", "describe-service-deployments", "--service-deployment-arns",
              listed[0]["serviceDeploymentArn"])["serviceDeployments"]
    assert d["status"] == "SUCCESSFUL" and d["targetServiceRevision"]["arn"] == td
    assert d["serviceArn"] == s["serviceArn"] and "finishedAt" in d
    assert d["deploymentCircuitBreaker"]["status"] == "DISABLED"

    # An INACTIVE service's name may be used again; an update of the deleted one finds nothing.
    err = client_error(ecs.update_service, cluster=CLUSTER, service=name, desiredCount=1)
    assert err["Error"]["Code"] == "ServiceNotFoundException", err
    again = services.create(name, td, 0)
    assert again["status"] == "ACTIVE" and again["serviceArn"] == s["serviceArn"]


def test_delete_with_force_stops_the_running_tasks(ecs, aws, services):
    family = unique("svc-force")
    # Ignores SIGTERM: the tasks take stopTimeout (2 s) to stop, long enough to see the service DRAINING.
    register(ecs, family, app(command=["ignore-term", "600000"]))
    name = unique("force")
    services.create(name, family, 2)
    services.wait_steady(name, 2)
    arns = services.task_arns(name)

    refused = client_error(ecs.delete_service, cluster=CLUSTER, service=name)
    assert refused["Error"]["Code"] == "InvalidParameterException", refused
    deleted = aws("ecs", "delete-service", "--cluster", CLUSTER, "--service", name, "--force")["service"]
    assert deleted["status"] == "DRAINING"
    assert services.describe(name)["status"] == "DRAINING"
    s = services.wait(name, lambda s: s["status"] == "INACTIVE", 30, "INACTIVE")
    assert (s["runningCount"], s["pendingCount"], s["desiredCount"]) == (0, 0, 0)
    for t in services.describe_tasks(arns):
        assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated", t
        assert task_containers_running(t["taskArn"]) == []


# --- 7. kill -9 during a rolling deployment ------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, which it may kill."""
    if not GANTRY_BIN.exists():
        pytest.fail(f"{GANTRY_BIN} not found")
    server = Gantry(GANTRY_BIN, tmp_path / "data", tmp_path / "gantry.log", free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        remove_task_containers(server.data_dir)


def test_kill9_during_a_rolling_deployment(own_server):
    ecs = make_client("ecs", own_server.endpoint)
    instance = wait_for(lambda: agent_connected(ecs), 30, "the embedded agent to register")
    services = Services(ecs)
    family = unique("svc-crash")
    td1 = register(ecs, family)
    td2 = register(ecs, family, app(environment=[{"name": "V", "value": "2"}]))
    name = unique("crash")
    try:
        services.create(name, td1, 3, deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 134})
        services.wait_steady(name, 3)
        primary = services.update(name, taskDefinition=td2)["deployments"][0]["id"]

        # Kill once the new deployment has a task and the old one still has some.
        services_snapshot = []

        def mid_rollout():
            d = services.describe(name)["deployments"]
            services_snapshot[:] = services.tasks(name)
            running_new = [t for t in services_snapshot if t["startedBy"] == primary and t["lastStatus"] == "RUNNING"]
            return len(d) == 2 and running_new and d[1]["runningCount"] >= 1

        wait_for(mid_rollout, 30, "the rollout to be under way", interval=0.05)
        own_server.kill9()
        # What ran when the server died: these containers are adopted, not replaced.
        running_before = {
            c["Config"]["Labels"]["com.amazonaws.ecs.task-arn"]
            for c in inspect(running_containers(f"com.amazonaws.ecs.task-definition-family={family}"))
        }
        new_before = {t["taskArn"] for t in services_snapshot if t["startedBy"] == primary} & running_before
        own_server.start()

        s = services.wait_steady(name, 3, timeout=60, task_definition=td2)
        assert s["deployments"][0]["id"] == primary
        # A little later: still exactly three tasks, one container each, nothing else of the family runs.
        time.sleep(3)
        s = services.describe(name)
        assert (s["runningCount"], s["pendingCount"], len(s["deployments"])) == (3, 0, 1)
        tasks = services.tasks(name)
        assert len(tasks) == 3 and {t["startedBy"] for t in tasks} == {primary}
        per_task = {}
        for c in inspect(running_containers(f"com.amazonaws.ecs.task-definition-family={family}")):
            per_task.setdefault(c["Config"]["Labels"]["com.amazonaws.ecs.task-arn"], []).append(c["Id"])
        assert set(per_task) == {t["taskArn"] for t in tasks}, per_task
        assert all(len(ids) == 1 for ids in per_task.values()), per_task
        assert all(c["Config"]["Labels"]["gantry.instance"] == instance
                   for c in inspect([i for ids in per_task.values() for i in ids]))
        listed = ecs.list_service_deployments(cluster=CLUSTER, service=name)["serviceDeployments"]
        assert [x["status"] for x in listed] == ["SUCCESSFUL", "SUCCESSFUL"], listed
        # The new deployment's tasks that ran before the crash still run; every stopped task was stopped by the
        # rollout, none as lost (the agent of this host came back).
        assert new_before and new_before <= {t["taskArn"] for t in tasks}, (new_before, tasks)
        for t in services.tasks(name, "STOPPED"):
            assert t["stopCode"] == "ServiceSchedulerInitiated", t
            assert t["stoppedReason"].startswith("Scaling activity initiated by"), t
    finally:
        if own_server.proc is None or own_server.proc.poll() is not None:
            own_server.start()
        services.cleanup()


# --- 8. bad input --------------------------------------------------------------------------------------------------


def test_bad_service_requests_get_aws_errors(ecs, aws_run):
    cluster = unique("svc-bad")
    ecs.create_cluster(clusterName=cluster)
    family = unique("svc-bad")
    td = register(ecs, family)
    name = unique("bad")
    services = Services(ecs, cluster)

    def error(call, **kwargs):
        return client_error(call, **kwargs)["Error"]

    try:
        e = error(ecs.create_service, cluster=unique("missing"), serviceName=name, taskDefinition=td, desiredCount=1)
        assert e["Code"] == "ClusterNotFoundException", e
        e = error(ecs.create_service, cluster=cluster, serviceName=name, taskDefinition=unique("nope"), desiredCount=1)
        assert e["Code"] == "ClientException", e
        e = error(ecs.create_service, cluster=cluster, serviceName=name, taskDefinition=f"{family}:99", desiredCount=1)
        assert e["Code"] == "ClientException", e
        e = error(ecs.create_service, cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=-1)
        assert e["Code"] == "InvalidParameterException", e
        for config in ({"maximumPercent": 50}, {"minimumHealthyPercent": 101}, {"minimumHealthyPercent": -1}):
            e = error(ecs.create_service, cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=1,
                      deploymentConfiguration=config)
            assert e["Code"] == "InvalidParameterException", (config, e)
        e = error(ecs.create_service, cluster=cluster, serviceName="not a name", taskDefinition=td, desiredCount=1)
        assert e["Code"] == "InvalidParameterException", e
        # None of these created anything.
        assert ecs.list_services(cluster=cluster)["serviceArns"] == []

        # The cluster has no container instance: the service exists, its tasks cannot be placed.
        created = services.create(name, td, 1)
        e = error(ecs.create_service, cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=1)
        assert e == {"Code": "InvalidParameterException", "Message": "Creation of service was not idempotent."}, e
        e = error(ecs.update_service, cluster=cluster, service=unique("ghost"), desiredCount=1)
        assert e["Code"] == "ServiceNotFoundException", e
        e = error(ecs.update_service, cluster=unique("missing"), service=name, desiredCount=1)
        assert e["Code"] == "ClusterNotFoundException", e
        e = error(ecs.update_service, cluster=cluster, service=name, desiredCount=-5)
        assert e["Code"] == "InvalidParameterException", e
        e = error(ecs.update_service, cluster=cluster, service=name,
                  deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 20})
        assert e["Code"] == "InvalidParameterException", e
        e = error(ecs.update_service, cluster=cluster, service=name, taskDefinition=unique("nope"))
        assert e["Code"] == "ClientException", e
        e = error(ecs.delete_service, cluster=cluster, service=unique("ghost"))
        assert e["Code"] == "ServiceNotFoundException", e
        # The refused updates changed nothing.
        s = services.describe(name)
        assert s["desiredCount"] == 1 and len(s["deployments"]) == 1
        assert s["deploymentConfiguration"]["maximumPercent"] == 200
        assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 100
        assert s["serviceArn"] == created["serviceArn"]
        s = services.wait(name, lambda s: any("was unable to place a task" in m for m in messages(s)), 15,
                          "the placement failure event")
        assert s["runningCount"] == 0
        out = ecs.describe_services(cluster=cluster, services=[unique("ghost")])
        assert out["services"] == [] and out["failures"][0]["reason"] == "MISSING"

        # Through the CLI (v1: exit code 255 for a service error) with the AWS error code.
        r = aws_run("ecs", "create-service", "--cluster", cluster, "--service-name", name,
                    "--task-definition", td, "--desired-count", "1")
        assert r.returncode == 255 and "(InvalidParameterException)" in r.stderr, r.stderr
        r = aws_run("ecs", "update-service", "--cluster", cluster, "--service", unique("ghost"),
                    "--desired-count", "1")
        assert r.returncode == 255 and "(ServiceNotFoundException)" in r.stderr, r.stderr
        # The server keeps serving.
        assert cluster in " ".join(ecs.list_clusters()["clusterArns"])
        assert ecs.list_services(cluster=cluster)["serviceArns"] == [created["serviceArn"]]
    finally:
        services.cleanup()


# --- 9. draining the container instance ----------------------------------------------------------------------------


def test_draining_the_instance_stops_service_tasks_within_the_minimum(ecs, services):
    [instance] = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    family = unique("svc-drain")
    td = register(ecs, family)
    name = unique("drain")
    services.create(name, td, 2, deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})
    services.wait_steady(name, 2)
    before = set(services.task_arns(name))
    standalone = ecs.run_task(cluster=CLUSTER, taskDefinition=td)["tasks"][0]["taskArn"]
    try:
        ecs.get_waiter("tasks_running").wait(cluster=CLUSTER, tasks=[standalone],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        out = ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[instance], status="DRAINING")
        assert out["failures"] == [] and out["containerInstances"][0]["status"] == "DRAINING"

        # One of the two goes (the minimum, 50 %, keeps the other); no replacement can be placed.
        s = services.wait(name, lambda s: s["runningCount"] == 1 and s["pendingCount"] == 0, 30, "one task")
        time.sleep(3)
        s = services.describe(name)
        assert (s["runningCount"], s["pendingCount"]) == (1, 0), s
        remaining = services.task_arns(name)
        assert len(remaining) == 1 and set(remaining) < before
        [gone] = before - set(remaining)
        [t] = services.describe_tasks([gone])
        assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated", t
        assert len(task_containers_running(remaining[0])) == 1
        assert any("was unable to place a task" in m for m in messages(s)), messages(s)
        # The standalone task keeps running; RunTask places nothing on a draining instance.
        [t] = services.describe_tasks([standalone])
        assert (t["lastStatus"], t["desiredStatus"]) == ("RUNNING", "RUNNING")
        assert len(task_containers_running(standalone)) == 1
        try:
            out = ecs.run_task(cluster=CLUSTER, taskDefinition=td)
            assert out["tasks"] == [] and out["failures"], out
        except botocore.exceptions.ClientError as e:
            # No ACTIVE instance: refused as for a cluster without instances.
            assert e.response["Error"] == {
                "Code": "InvalidParameterException", "Message": "No Container Instances were found in your cluster."
            }, e.response
    finally:
        ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[instance], status="ACTIVE")
        ecs.stop_task(cluster=CLUSTER, task=standalone)

    # ACTIVE again: the service places its second task.
    services.wait(name, lambda s: s["runningCount"] == 2 and s["pendingCount"] == 0, 30, "two tasks again")
    assert set(remaining) < set(services.task_arns(name))
