"""Service and deployment state changes as EventBridge-shaped events, read through the admin endpoint
`GET /_gantry/events` (the server runs with `--enable-admin`): a service that reaches its steady state tells
SERVICE_DEPLOYMENT_IN_PROGRESS, SERVICE_DEPLOYMENT_COMPLETED and SERVICE_STEADY_STATE in that order, and one whose
task fits no instance tells SERVICE_TASK_PLACEMENT_FAILURE once.
"""

import re
import time

import requests

from helpers import unique, wait_for
from test_services import CLUSTER, app, register, services  # noqa: F401 (the `services` fixture)

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def bus(gantry, since=None):
    response = requests.get(gantry.url("/_gantry/events"), params={"since": since} if since else None, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def of(events, service_arn):
    return [e for e in events if e["resources"] == [service_arn]]


def names(events):
    return [e["detail"]["eventName"] for e in events]


def check_envelope(e, service_arn, detail_type):
    assert e["version"] == "0"
    assert UUID.match(e["id"]), e
    assert e["detail-type"] == detail_type, e
    assert e["source"] == "aws.ecs"
    assert e["account"] == service_arn.split(":")[4]
    assert e["region"] == "us-east-1"
    assert ISO_SECONDS.match(e["time"]), e
    assert e["resources"] == [service_arn]


def test_a_service_rollout_tells_its_deployment_and_steady_state(gantry, ecs, aws, services):
    family = unique("ev-web")
    register(ecs, family)
    name = unique("ev")
    created = services.create(name, family, 2)
    arn, deployment = created["serviceArn"], created["deployments"][0]["id"]
    aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", name, timeout=90)
    # The waiter returns once the counts match; the rollout completes a few seconds later.
    wait_for(lambda: "SERVICE_STEADY_STATE" in names(of(bus(gantry), arn)), 30, "the steady state event")

    events = of(bus(gantry), arn)
    assert names(events) == [
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_COMPLETED",
        "SERVICE_STEADY_STATE",
    ], events
    started, completed, steady = events
    for e in (started, completed):
        check_envelope(e, arn, "ECS Deployment State Change")
        assert set(e["detail"]) == {"eventType", "eventName", "deploymentId", "updatedAt", "reason"}, e
        assert e["detail"]["eventType"] == "INFO"
        assert e["detail"]["deploymentId"] == deployment
        assert ISO_MILLIS.match(e["detail"]["updatedAt"]), e
    assert started["detail"]["reason"] == f"ECS deployment {deployment} in progress."
    assert completed["detail"]["reason"] == f"ECS deployment {deployment} completed."
    check_envelope(steady, arn, "ECS Service Action")
    assert steady["detail"]["eventType"] == "INFO"
    assert steady["detail"]["clusterArn"] == created["clusterArn"]
    assert ISO_MILLIS.match(steady["detail"]["createdAt"]), steady
    assert started["time"] <= completed["time"] <= steady["time"]

    # `since` gives what came after an event, in order.
    assert of(bus(gantry, since=started["id"]), arn) == [completed, steady]
    assert of(bus(gantry, since=steady["id"]), arn) == []


def test_an_unplaceable_service_tells_a_placement_failure(gantry, ecs, services):
    family = unique("ev-huge")
    # Far more memory than this host has.
    register(ecs, family, app(memory=1024 * 1024))
    name = unique("ev-huge")
    created = services.create(name, family, 1)
    arn = created["serviceArn"]
    wait_for(lambda: "SERVICE_TASK_PLACEMENT_FAILURE" in names(of(bus(gantry), arn)), 20, "the placement failure")
    time.sleep(3)  # several passes of the controller: said once, not at every pass
    failures = [e for e in of(bus(gantry), arn) if e["detail"]["eventName"] == "SERVICE_TASK_PLACEMENT_FAILURE"]
    assert len(failures) == 1, failures
    e = failures[0]
    check_envelope(e, arn, "ECS Service Action")
    assert e["detail"]["eventType"] == "ERROR"
    assert e["detail"]["clusterArn"] == created["clusterArn"]
    assert e["detail"]["reasons"] == ["RESOURCE:MEMORY"], e
    assert ISO_MILLIS.match(e["detail"]["createdAt"]), e
    assert services.describe(name)["runningCount"] == 0
