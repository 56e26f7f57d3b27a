"""ECS services behind an Application Load Balancer, with real containers on dynamic host ports: the service's
tasks are registered as `instance` targets (their container instance's EC2 id and host port), count healthy only
when the target group says so, are drained before they stop, and steady traffic through the load balancer sees
no failed request through a rolling deployment, scaling out and in, a killed task and a draining instance.
"""

import threading
import time

import botocore.exceptions
import pytest
import requests

from conftest import GANTRY_BIN
from helpers import Agent, docker, remove_containers_of, unique, wait_for
from test_elbv2 import Resources, forward
from test_services import Services, messages, task_containers_running

CLUSTER = "default"
IMAGE = "gantry-test/testapp:latest"


def app(version="1"):
    return {"name": "app", "image": IMAGE, "memory": 16, "cpu": 16, "command": ["serve"], "stopTimeout": 2,
            "essential": True, "environment": [{"name": "V", "value": version}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}]}


@pytest.fixture
def elb(boto_client):
    return boto_client("elbv2")


@pytest.fixture
def res(elb):
    r = Resources(elb)
    yield r
    r.cleanup()


@pytest.fixture
def services(ecs):
    s = Services(ecs)
    yield s
    s.cleanup()


def alb_for_service(elb, res):
    tg = res.target_group(TargetType="instance", Port=8080)
    lb = res.load_balancer()
    port = _free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=forward(tg["TargetGroupArn"]))
    return tg["TargetGroupArn"], lb["DNSName"], port


def _free_port():
    from conftest import free_port
    return free_port()


def healthy_targets(elb, tg):
    d = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return sorted((t["Target"]["Id"], t["Target"]["Port"]) for t in d if t["TargetHealth"]["State"] == "healthy")


class Load:
    """Steady keep-alive traffic from a few threads through the load balancer, counting every answer."""

    def __init__(self, host, port, threads=4):
        self.url = f"http://127.0.0.1:{port}/hostname"
        self.host = host
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.bad = []
        self.phase = "start"
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        session = requests.Session()
        while not self.stop.is_set():
            try:
                r = session.get(self.url, headers={"Host": self.host}, timeout=10)
                with self.lock:
                    if 200 <= r.status_code < 300:
                        self.ok += 1
                    else:
                        self.bad.append((self.phase, r.status_code, r.text[:100]))
            except requests.RequestException as e:
                with self.lock:
                    self.bad.append((self.phase, "error", str(e)[:100]))
            time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def test_service_tasks_are_registered_with_their_dynamic_host_ports(ecs, elb, res, services):
    tg, host, port = alb_for_service(elb, res)
    family = unique("lb-web")
    ecs.register_task_definition(family=family, containerDefinitions=[app()])
    name = unique("lbsvc")
    created = services.create(name, family, 2, healthCheckGracePeriodSeconds=30,
                              loadBalancers=[{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}])
    assert created["loadBalancers"] == [{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}]
    s = services.wait_steady(name, 2, timeout=60)
    assert s["loadBalancers"][0]["targetGroupArn"] == tg
    tasks = services.tasks(name)
    instance = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[tasks[0]["containerInstanceArn"]])
    ec2 = instance["containerInstances"][0]["ec2InstanceId"]
    host_ports = sorted(t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks)
    assert healthy_targets(elb, tg) == [(ec2, p) for p in host_ports]
    seen = {requests.get(f"http://127.0.0.1:{port}/hostname", headers={"Host": host}, timeout=5).text.strip()
            for _ in range(10)}
    assert len(seen) == 2, seen
    registered = [m for m in messages(s) if m.startswith(f"(service {name}) registered ")]
    assert registered and all(m.endswith(f" targets in (target-group {tg})") for m in registered), messages(s)
    assert sum(int(m.split()[3]) for m in registered) == 2, registered


def test_bad_load_balancer_settings_get_ecs_errors(ecs, elb, res):
    tg, _, _ = alb_for_service(elb, res)
    lonely = res.target_group(TargetType="instance", Port=8080)["TargetGroupArn"]
    ip = res.target_group(TargetType="ip", Port=8080)["TargetGroupArn"]
    family = unique("lb-bad")
    ecs.register_task_definition(family=family, containerDefinitions=[app()])

    def refused(lbs):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.create_service(cluster=CLUSTER, serviceName=unique("bad"), taskDefinition=family, desiredCount=1,
                               loadBalancers=lbs)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        return e.value.response["Error"]["Message"]

    assert "does not exist in the task definition" in refused([{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}])
    assert "did not have a container port 9999" in refused([{"targetGroupArn": tg, "containerName": "app", "containerPort": 9999}])
    assert "does not have an associated load balancer" in refused([{"targetGroupArn": lonely, "containerName": "app", "containerPort": 8080}])
    assert "target type ip, which is incompatible with the bridge network mode" in refused(
        [{"targetGroupArn": ip, "containerName": "app", "containerPort": 8080}])
    missing = tg.rsplit("/", 2)[0] + "/gone/0123456789abcdef"
    assert "does not exist" in refused([{"targetGroupArn": missing, "containerName": "app", "containerPort": 8080}])


def test_traffic_through_deployments_scaling_a_killed_task_and_a_draining_instance(gantry, ecs, elb, res, services, tmp_path):
    tg, host, port = alb_for_service(elb, res)
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "10"}])
    family = unique("lb-roll")
    td1 = ecs.register_task_definition(family=family, containerDefinitions=[app("1")])["taskDefinition"]["taskDefinitionArn"]
    td2 = ecs.register_task_definition(family=family, containerDefinitions=[app("2")])["taskDefinition"]["taskDefinitionArn"]
    name = unique("lbroll")
    lbs = [{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}]
    services.create(name, td1, 4, loadBalancers=lbs, healthCheckGracePeriodSeconds=30,
                    deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
    services.wait_steady(name, 4, timeout=90)
    wait_for(lambda: len(healthy_targets(elb, tg)) == 4, 30, "4 healthy targets")

    # A second container instance on this host, so that the first can be drained.
    token = (gantry.data_dir / "agent-token").read_text().strip()
    second = Agent(gantry, tmp_path, "second", "--cluster", CLUSTER, token=token)
    second.start()
    try:
        with Load(host, port) as load:
            time.sleep(2)
            # A rolling deployment.
            load.phase = "deployment"
            services.update(name, taskDefinition=td2)
            services.wait_steady(name, 4, timeout=120, task_definition=td2)
            wait_for(lambda: len(healthy_targets(elb, tg)) == 4, 30, "4 healthy targets after the deployment")
            # Scale out and in.
            load.phase = "scaling"
            services.update(name, desiredCount=8)
            services.wait_steady(name, 8, timeout=120)
            services.update(name, desiredCount=2)
            services.wait_steady(name, 2, timeout=120)
            wait_for(lambda: len(healthy_targets(elb, tg)) == 2, 60, "2 targets after the scale-in")
            services.update(name, desiredCount=4)
            services.wait_steady(name, 4, timeout=120)
            wait_for(lambda: len(healthy_targets(elb, tg)) == 4, 30, "4 healthy targets again")
            # A task killed by hand.
            load.phase = "kill"
            victim = services.tasks(name)[0]["taskArn"]
            [cid] = task_containers_running(victim)
            docker("kill", cid)
            wait_for(lambda: victim not in services.task_arns(name), 60, "the killed task to be replaced")
            services.wait_steady(name, 4, timeout=120)
            # The first instance set to DRAINING: its tasks move to the second.
            load.phase = "instance draining"
            first = services.tasks(name)[0]["containerInstanceArn"]
            ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[first], status="DRAINING")
            try:
                wait_for(lambda: all(t["containerInstanceArn"] != first for t in services.tasks(name)), 120,
                         "the tasks to leave the draining instance")
                services.wait_steady(name, 4, timeout=120)
                wait_for(lambda: len(healthy_targets(elb, tg)) == 4, 30, "4 healthy targets on the second instance")
                time.sleep(2)
            finally:
                ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[first], status="ACTIVE")
        print(f"requests through the load balancer: {load.ok} answered 2xx, {len(load.bad)} failed")
        assert load.ok > 500, load.ok
        assert load.bad == [], load.bad[:10]
    finally:
        services.update(name, desiredCount=0)
        services.wait(name, lambda s: s["runningCount"] == 0, 60, "the service to scale to zero")
        second.stop()
        # The other tests place on the embedded agent's instance alone.
        if second.arn():
            ecs.deregister_container_instance(cluster=CLUSTER, containerInstance=second.arn(), force=True)
        remove_containers_of(second.arn())
