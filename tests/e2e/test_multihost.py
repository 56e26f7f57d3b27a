"""Three hosts made of network namespaces: a bridge in the root namespace carries the server's address, and each
host is a namespace with a veth into the bridge running one `gantry agent` in its own availability zone. All agents
share this machine's Docker engine; each labels its containers with its container instance ARN, which is how the
tests see where a task really runs. The tests place tasks (spread, binpack, distinctInstance, memberOf), kill and
partition hosts, drain one, run DAEMON services, roll deployments within their limits, trip the circuit breaker and
kill -9 the server during a deployment. Needs root and `ip netns`."""

import collections
import os
import random
import shutil
import subprocess
import time
import uuid

import botocore.exceptions
import pytest

import conftest
from conftest import GANTRY_BIN, Gantry, free_port
from helpers import Agent, container, docker, remove_containers_of, unique, wait_for
from shape_check import make_client

AGENT_TIMEOUT = 4
CLUSTER = "default"
ZONE = "attribute:ecs.availability-zone"
SPREAD_ZONES = [{"type": "spread", "field": ZONE}]
NOWHERE = [{"type": "memberOf", "expression": f"{ZONE} == nowhere"}]
LABEL_TASK = "com.amazonaws.ecs.task-arn"


def _why_not():
    if os.geteuid() != 0:
        return "the hosts are network namespaces: creating them needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (scripts/setup installs it)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"`ip netns` is unavailable: {probe.stderr.strip()}"
    return None


if _why_not():
    pytest.skip(_why_not(), allow_module_level=True)


def ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


class Host:
    """One network namespace with a veth into the bridge, and the agent that runs in it."""

    def __init__(self, index, tag, subnet):
        self.index = index
        self.zone = f"zone-{index}"
        self.ns = f"gantry-h{index}-{tag}"
        self.veth = f"gv{index}{tag}"  # the root namespace's end, on the bridge
        self.peer = f"gp{index}{tag}"  # the host's end
        self.address = f"{subnet}.{10 + index}"
        self.agent = None

    def arn(self):
        return self.agent.arn()

    def partition(self):
        ip("link", "set", self.veth, "down")

    def heal(self):
        ip("link", "set", self.veth, "up")


class Network:
    """A bridge with the server's address and three hosts on it, on a random 10.213.x.0/24."""

    def __init__(self):
        self.tag = uuid.uuid4().hex[:6]
        used = ip("-4", "-o", "addr").stdout
        third = random.choice([x for x in range(1, 255) if f"10.213.{x}." not in used])
        self.subnet = f"10.213.{third}"
        self.server_address = f"{self.subnet}.1"
        self.bridge = f"gbr{self.tag}"
        self.hosts = [Host(i, self.tag, self.subnet) for i in (1, 2, 3)]

    def create(self):
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.server_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for h in self.hosts:
            ip("netns", "add", h.ns)
            ip("-n", h.ns, "link", "set", "lo", "up")
            ip("link", "add", h.veth, "type", "veth", "peer", "name", h.peer)
            ip("link", "set", h.peer, "netns", h.ns)
            ip("link", "set", h.veth, "master", self.bridge)
            ip("link", "set", h.veth, "up")
            ip("-n", h.ns, "addr", "add", f"{h.address}/24", "dev", h.peer)
            ip("-n", h.ns, "link", "set", h.peer, "up")

    def destroy(self):
        for h in self.hosts:
            ip("netns", "del", h.ns, check=False)
            ip("link", "del", h.veth, check=False)
        ip("link", "del", self.bridge, check=False)


class Cluster:
    """What the tests get: the server, its ECS client, the three hosts and any extra agents a test starts."""

    def __init__(self, server, network, token, base):
        self.server = server
        self.network = network
        self.hosts = network.hosts
        self.token = token
        self.base = base
        self.ecs = make_client("ecs", server.endpoint)
        self.extra = []  # agents a test added; stopped and deregistered after it

    def agent(self, host, name, zone, cluster=CLUSTER):
        agent = Agent(
            self.server, self.base, name,
            "--cluster", cluster, "--cpu", "1024", "--memory", "1024",
            "--attribute", f"ecs.availability-zone={zone}", "--task-cleanup-wait", "5",
            token=self.token, wrapper=["ip", "netns", "exec", host.ns],
        )
        agent.cluster = cluster
        return agent

    def by_arn(self, arn):
        return next(h for h in self.hosts if h.arn() == arn)

    def all_arns(self):
        return [a for a in [h.arn() for h in self.hosts] + [a.arn() for a in self.extra] if a]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("multihost")
    net = Network()
    token = uuid.uuid4().hex
    server = Gantry(
        GANTRY_BIN, base / "data", base / "gantry.log", free_port(),
        extra_args=["--no-agent", "--agent-timeout", str(AGENT_TIMEOUT), "--agent-token", token],
        host=net.server_address,
    )
    # The failure report hook of conftest shows this server's log while the module runs.
    previous, conftest._running = conftest._running, server
    c = None
    try:
        try:
            net.create()
        except RuntimeError as e:
            pytest.skip(f"cannot make network namespaces here: {e}")
        server.start()
        c = Cluster(server, net, token, base)
        for h in net.hosts:
            h.agent = c.agent(h, f"agent-h{h.index}", h.zone)
            h.agent.start()
        for h in net.hosts:
            wait_for(h.agent.arn, 30, f"{h.agent.name} to register; log:\n{h.agent.log()}")
            wait_for(lambda: connected(c.ecs, h.arn()), 30, f"{h.agent.name} to be connected")
        yield c
    finally:
        agents = ([h.agent for h in net.hosts] + (c.extra if c else []))
        for agent in agents:
            if agent is not None:
                agent.kill9()
        server.kill9()
        for agent in agents:
            if agent is not None:
                remove_containers_of(agent.arn())
        net.destroy()
        conftest._running = previous


@pytest.fixture(autouse=True)
def clean(cluster):
    """After each test: every host up, connected and ACTIVE, no service left and no task running anywhere."""
    yield
    restore(cluster)


def remove_extra_agents(c, cluster):
    for agent in [a for a in c.extra if a.cluster == cluster]:
        agent.stop()
        try:
            c.ecs.deregister_container_instance(cluster=cluster, containerInstance=agent.arn(), force=True)
        except botocore.exceptions.ClientError:
            pass
        remove_containers_of(agent.arn())
        c.extra.remove(agent)


def restore(c):
    ecs = c.ecs
    if c.server.proc.poll() is not None:  # a test that failed after killing it
        c.server.start()
    for cluster in {a.cluster for a in c.extra} - {CLUSTER}:
        remove_extra_agents(c, cluster)
    for h in c.hosts:
        h.heal()
        if h.agent.proc is None or h.agent.proc.poll() is not None:
            h.agent.start()
    for h in c.hosts:
        wait_for(lambda: connected(ecs, h.arn()), 60, f"{h.agent.name} to be connected again")
        if describe_instance(ecs, h.arn())["status"] != "ACTIVE":
            ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[h.arn()], status="ACTIVE")
    for arn in ecs.list_services(cluster=CLUSTER, maxResults=100)["serviceArns"]:
        if describe_service(ecs, arn).get("schedulingStrategy") == "DAEMON":
            # Deleting a DAEMON service leaves its tasks running (see test_deleting_a_daemon_service_stops_its_tasks):
            # a constraint no instance meets empties it first.
            ecs.update_service(cluster=CLUSTER, service=arn, placementConstraints=NOWHERE)
        ecs.delete_service(cluster=CLUSTER, service=arn, force=True)
    for arn in list_tasks(ecs):
        stop_quietly(ecs, arn)

    left = {}

    def quiet():
        for arn in list_tasks(ecs):
            stop_quietly(ecs, arn)  # also what a controller may have started since
        tasks = describe_tasks(ecs, list(dict.fromkeys(list_tasks(ecs) + list_tasks(ecs, "STOPPED"))))
        left["tasks"] = [(t["taskArn"].rsplit("/", 1)[1], t["containerInstanceArn"].rsplit("/", 1)[1],
                          t["lastStatus"], t["desiredStatus"]) for t in tasks if t["lastStatus"] != "STOPPED"]
        running = {arn.rsplit("/", 1)[1]: running_on(arn) for arn in c.all_arns()}
        left["containers"] = {arn: r for arn, r in running.items() if r}
        return not left["tasks"] and not left["containers"]

    try:
        wait_for(quiet, 60, "every task to stop after the test")
    except pytest.fail.Exception:
        pytest.fail(f"tasks or containers left 60 s after the test: {left}")
    remove_extra_agents(c, CLUSTER)


# ---- queries ----------------------------------------------------------------------------------------------------


def connected(ecs, arn):
    return arn is not None and describe_instance(ecs, arn)["agentConnected"]


def describe_instance(ecs, arn):
    out = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    assert out["failures"] == [], out["failures"]
    return out["containerInstances"][0]


def list_tasks(ecs, desired="RUNNING", **filters):
    arns, token = [], None
    while True:
        page = ecs.list_tasks(cluster=CLUSTER, desiredStatus=desired, maxResults=100,
                              **filters, **({"nextToken": token} if token else {}))
        arns += page["taskArns"]
        token = page.get("nextToken")
        if not token:
            return arns


def describe_tasks(ecs, arns):
    out = []
    for i in range(0, len(arns), 100):
        answer = ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])
        assert answer["failures"] == [], answer["failures"]
        out += answer["tasks"]
    return out


def service_tasks(ecs, service):
    """Every task of the service the server still lists, whatever its status."""
    arns = list_tasks(ecs, serviceName=service) + list_tasks(ecs, "STOPPED", serviceName=service)
    return describe_tasks(ecs, list(dict.fromkeys(arns)))  # a task stopped between the two calls is in both


def running_service_tasks(ecs, service):
    """The service's tasks that are RUNNING and meant to keep running."""
    return [t for t in describe_tasks(ecs, list_tasks(ecs, serviceName=service)) if t["lastStatus"] == "RUNNING"]


def running_on(instance_arn, *filters):
    """{task ARN: container id} of the running containers Docker has for the instance."""
    out = docker("ps", "--filter", f"label=gantry.instance={instance_arn}",
                 *[f for label in filters for f in ("--filter", f"label={label}")],
                 "--format", '{{.ID}} {{.Label "%s"}}' % LABEL_TASK).stdout
    pairs = [line.split() for line in out.splitlines() if line.strip()]
    return {task: cid for cid, task in pairs}


def containers_of(c, task_arns):
    """[(instance ARN, task ARN)] for every running container of these tasks on any of the cluster's instances."""
    wanted = set(task_arns)
    out = []
    for arn in c.all_arns():
        ps = docker("ps", "--filter", f"label=gantry.instance={arn}",
                    "--format", '{{.Label "%s"}}' % LABEL_TASK).stdout.split()
        out += [(arn, t) for t in ps if t in wanted]
    return out


def describe_service(ecs, name):
    [s] = ecs.describe_services(cluster=CLUSTER, services=[name])["services"]
    return s


def steady(ecs, name, desired):
    s = describe_service(ecs, name)
    [d] = s["deployments"] if len(s["deployments"]) == 1 else [None]
    return (d is not None and d["rolloutState"] == "COMPLETED" and s["runningCount"] == desired
            and s["pendingCount"] == 0 and len(running_service_tasks(ecs, name)) == desired)


def wait_steady(ecs, name, desired, timeout=60):
    try:
        wait_for(lambda: steady(ecs, name, desired), timeout, f"service {name} to be steady with {desired}")
    except pytest.fail.Exception:
        s = describe_service(ecs, name)
        pytest.fail(f"service {name} not steady with {desired} after {timeout}s: deployments={s['deployments']} "
                    f"events={[e['message'] for e in s['events'][:8]]}")


def wait_running(ecs, arns, timeout=60):
    seen = {}

    def probe():
        seen["tasks"] = describe_tasks(ecs, arns)
        return all(t["lastStatus"] == "RUNNING" for t in seen["tasks"])

    try:
        wait_for(probe, timeout, "tasks to run")
    except pytest.fail.Exception:
        pytest.fail(f"not all RUNNING after {timeout}s: {[(t['taskArn'], t['lastStatus']) for t in seen['tasks']]}")
    return seen["tasks"]


def stop_quietly(ecs, arn):
    try:
        ecs.stop_task(cluster=CLUSTER, task=arn, reason="test cleanup")
    except botocore.exceptions.ClientError:
        pass


def register(ecs, family, command=("sleep", "600000"), memory=32, **extra):
    out = ecs.register_task_definition(
        family=family, containerDefinitions=[container("app", memory=memory, cpu=64, command=list(command), **extra)]
    )
    return out["taskDefinition"]["taskDefinitionArn"]


def create_service(ecs, name, task_definition, desired, **kw):
    ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=task_definition, desiredCount=desired, **kw)


def run_task(ecs, family, count, **kw):
    out = ecs.run_task(cluster=CLUSTER, taskDefinition=family, count=count, **kw)
    return out["tasks"], out["failures"]


def per_instance(tasks):
    return collections.Counter(t["containerInstanceArn"] for t in tasks)


def check_docker_matches(c, tasks):
    """Each task runs as exactly one container, on the instance the server placed it on, and on no other."""
    where = collections.defaultdict(list)
    for instance, task in containers_of(c, [t["taskArn"] for t in tasks]):
        where[task].append(instance)
    for t in tasks:
        assert where[t["taskArn"]] == [t["containerInstanceArn"]], (t["taskArn"], where[t["taskArn"]])


@pytest.fixture
def sleeper(cluster):
    family = unique("mh")
    register(cluster.ecs, family)
    return family


# ---- tests ------------------------------------------------------------------------------------------------------


def test_spread_across_the_three_zones(cluster, sleeper):
    ecs = cluster.ecs
    tasks, failures = run_task(ecs, sleeper, 6, placementStrategy=SPREAD_ZONES)
    assert failures == []
    tasks = wait_running(ecs, [t["taskArn"] for t in tasks])
    assert collections.Counter(t["availabilityZone"] for t in tasks) == {"zone-1": 2, "zone-2": 2, "zone-3": 2}
    for t in tasks:
        assert cluster.by_arn(t["containerInstanceArn"]).zone == t["availabilityZone"]
    check_docker_matches(cluster, tasks)

    service = unique("spread")
    create_service(ecs, service, sleeper, 3, placementStrategy=SPREAD_ZONES)
    wait_steady(ecs, service, 3)
    running = running_service_tasks(ecs, service)
    assert sorted(t["availabilityZone"] for t in running) == ["zone-1", "zone-2", "zone-3"]
    check_docker_matches(cluster, running)
    for h in cluster.hosts:
        assert len(set(running_on(h.arn())) & {t["taskArn"] for t in running}) == 1, h.zone


def test_binpack_on_memory_fills_one_instance_before_the_next(cluster):
    ecs = cluster.ecs
    family = unique("binpack")
    register(ecs, family, memory=256)  # four fit in an instance's 1024 MiB
    binpack = [{"type": "binpack", "field": "memory"}]
    placed = []
    for count, expected in [(6, [0, 2, 4]), (1, [0, 3, 4]), (3, [2, 4, 4])]:
        tasks, failures = run_task(ecs, family, count, placementStrategy=binpack)
        assert failures == []
        placed += tasks
        counts = per_instance(placed)
        assert sorted(counts.get(h.arn(), 0) for h in cluster.hosts) == expected, counts
    full = [arn for arn, n in per_instance(placed).items() if n == 4]
    for arn in full:
        memory = {r["name"]: r.get("integerValue") for r in describe_instance(ecs, arn)["remainingResources"]}
        assert memory["MEMORY"] == 0
    # Two instances are full: the next task goes to the third, and when all are, placement fails on memory.
    tasks, failures = run_task(ecs, family, 3, placementStrategy=binpack)
    assert len(tasks) == 2 and len(failures) == 1, (tasks, failures)
    assert failures[0]["reason"] == "RESOURCE:MEMORY"
    placed += tasks
    assert sorted(per_instance(placed).values()) == [4, 4, 4]
    check_docker_matches(cluster, wait_running(ecs, [t["taskArn"] for t in placed]))


def test_distinct_instance_and_member_of(cluster, sleeper):
    ecs = cluster.ecs
    tasks, failures = run_task(ecs, sleeper, 4, placementConstraints=[{"type": "distinctInstance"}])
    assert len(tasks) == 3, tasks
    assert len(set(t["containerInstanceArn"] for t in tasks)) == 3
    assert [f["reason"] for f in failures] == ["DistinctInstance placement constraint unsatisfied."]
    check_docker_matches(cluster, wait_running(ecs, [t["taskArn"] for t in tasks]))

    not_zone_3 = [{"type": "memberOf", "expression": f"{ZONE} in [zone-1, zone-2]"}]
    # Spreading over the zones would use zone-3 if the constraint let it.
    tasks, failures = run_task(ecs, sleeper, 6, placementStrategy=SPREAD_ZONES, placementConstraints=not_zone_3)
    assert failures == []
    assert collections.Counter(t["availabilityZone"] for t in tasks) == {"zone-1": 3, "zone-2": 3}
    service = unique("member")
    create_service(ecs, service, sleeper, 4, placementStrategy=SPREAD_ZONES, placementConstraints=not_zone_3)
    wait_steady(ecs, service, 4)
    running = running_service_tasks(ecs, service)
    assert collections.Counter(t["availabilityZone"] for t in running) == {"zone-1": 2, "zone-2": 2}
    check_docker_matches(cluster, wait_running(ecs, [t["taskArn"] for t in tasks]) + running)
    assert not set(running_on(cluster.hosts[2].arn())) & {t["taskArn"] for t in tasks + running}


def test_a_dead_host_s_service_tasks_are_replaced_on_the_others(cluster, sleeper):
    ecs = cluster.ecs
    service = unique("dead")
    create_service(ecs, service, sleeper, 3, placementStrategy=SPREAD_ZONES)
    wait_steady(ecs, service, 3)
    victim = cluster.hosts[2]
    [lost] = [t for t in running_service_tasks(ecs, service) if t["containerInstanceArn"] == victim.arn()]

    victim.agent.kill9()
    ids = docker("ps", "-q", "--filter", f"label=gantry.instance={victim.arn()}").stdout.split()
    assert ids
    docker("kill", *ids)

    def replaced():
        running = running_service_tasks(ecs, service)
        return len(running) == 3 and all(t["containerInstanceArn"] != victim.arn() for t in running)

    wait_for(replaced, AGENT_TIMEOUT + 30, "the service to run 3 tasks on the two live hosts")
    running = running_service_tasks(ecs, service)
    check_docker_matches(cluster, running)
    assert describe_instance(ecs, victim.arn())["agentConnected"] is False
    [old] = describe_tasks(ecs, [lost["taskArn"]])
    assert old["desiredStatus"] == "STOPPED"


def test_partition_and_heal(cluster, sleeper):
    ecs = cluster.ecs
    service = unique("split")
    desired = 3
    create_service(ecs, service, sleeper, desired, placementStrategy=SPREAD_ZONES)
    wait_steady(ecs, service, desired)
    victim = cluster.hosts[1]
    [cut_off] = [t for t in running_service_tasks(ecs, service) if t["containerInstanceArn"] == victim.arn()]
    container_id = running_on(victim.arn())[cut_off["taskArn"]]

    victim.partition()
    try:
        wait_for(lambda: not connected(ecs, victim.arn()), AGENT_TIMEOUT + 10, "agentConnected=false")

        def replaced():
            running = running_service_tasks(ecs, service)
            return len(running) == desired and all(t["containerInstanceArn"] != victim.arn() for t in running)

        wait_for(replaced, 40, "the service's task to be replaced on the other hosts")
        [old] = describe_tasks(ecs, [cut_off["taskArn"]])
        assert old["desiredStatus"] == "STOPPED", old
        # Nobody could tell the cut-off agent: its container still runs.
        assert running_on(victim.arn()).get(cut_off["taskArn"]) == container_id
    finally:
        victim.heal()
    healed = time.monotonic()
    wait_for(lambda: connected(ecs, victim.arn()), 60, "the healed agent to reconnect")
    reconnected = time.monotonic()

    settle = 10  # seconds after reconnecting for the agent to stop what it was asked to
    samples = []
    while time.monotonic() < reconnected + settle + 5:
        arns = [t["taskArn"] for t in service_tasks(ecs, service)]
        samples.append((time.monotonic() - reconnected, len(containers_of(cluster, arns))))
        time.sleep(0.2)
    too_many = [(round(at, 1), n) for at, n in samples if n > desired and at > settle]
    assert not too_many, f"more than {desired} containers after the settle window: {too_many}"

    [old] = describe_tasks(ecs, [cut_off["taskArn"]])
    assert old["lastStatus"] == "STOPPED", old
    assert cut_off["taskArn"] not in running_on(victim.arn())
    running = running_service_tasks(ecs, service)
    assert len(running) == desired
    assert sorted(t for _, t in containers_of(cluster, [t["taskArn"] for t in service_tasks(ecs, service)])) == sorted(
        t["taskArn"] for t in running)
    check_docker_matches(cluster, running)
    over = [at for at, n in samples if n > desired]  # seconds after reconnecting
    print(f"reconnected {reconnected - healed:.1f}s after healing; {len(over)} of {len(samples)} samples over "
          f"{desired}, the last {max(over, default=0):.1f}s after")


def test_rolling_deployment_stays_within_its_limits(cluster, sleeper):
    ecs = cluster.ecs
    service = unique("roll")
    create_service(ecs, service, sleeper, 3,
                   deploymentConfiguration={"minimumHealthyPercent": 66, "maximumPercent": 100})
    wait_steady(ecs, service, 3)
    v2 = register(ecs, sleeper, environment=[{"name": "V", "value": "2"}])
    ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=v2)

    samples = []
    deadline = time.monotonic() + 90
    while True:
        tasks = service_tasks(ecs, service)
        live = [t for t in tasks if t["lastStatus"] != "STOPPED"]  # counting those still stopping
        healthy = [t for t in live if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"]
        s = describe_service(ecs, service)
        counted = sum(d["runningCount"] + d["pendingCount"] for d in s["deployments"])
        in_docker = len(containers_of(cluster, [t["taskArn"] for t in tasks]))
        revisions = {t["taskDefinitionArn"] for t in live}
        samples.append((len(healthy), len(live), counted, in_docker, len(revisions)))
        assert len(healthy) >= 2, samples[-5:]
        assert max(len(live), counted, in_docker) <= 3, samples[-5:]
        primary = next(d for d in s["deployments"] if d["status"] == "PRIMARY")
        if primary["rolloutState"] == "COMPLETED" and len(s["deployments"]) == 1:
            break
        assert time.monotonic() < deadline, f"no COMPLETED rollout: {s['deployments']}"
        time.sleep(0.2)
    assert any(sample[-1] == 2 for sample in samples), "the samples saw both revisions run side by side"
    print(f"{len(samples)} samples (healthy, live, counted, in docker, revisions): {sorted(set(samples))}")
    wait_steady(ecs, service, 3)
    running = running_service_tasks(ecs, service)
    assert {t["taskDefinitionArn"] for t in running} == {v2}
    check_docker_matches(cluster, running)


def test_circuit_breaker_rolls_back(cluster, sleeper):
    ecs = cluster.ecs
    service = unique("breaker")
    create_service(ecs, service, sleeper, 3, deploymentConfiguration={
        "minimumHealthyPercent": 100, "maximumPercent": 200,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    wait_steady(ecs, service, 3)
    good = describe_service(ecs, service)["taskDefinition"]
    bad = register(ecs, sleeper, command=("exit", "3"))
    ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=bad)

    def rolled_back():
        s = describe_service(ecs, service)
        return (s["taskDefinition"] == good and steady(ecs, service, 3)
                and s["deployments"][0]["taskDefinition"] == good)

    wait_for(rolled_back, 90, "the service to roll back to the good revision and be steady")
    deployments = ecs.list_service_deployments(cluster=CLUSTER, service=service)["serviceDeployments"]
    assert "ROLLBACK_SUCCESSFUL" in [d["status"] for d in deployments], deployments
    running = running_service_tasks(ecs, service)
    assert {t["taskDefinitionArn"] for t in running} == {good}
    check_docker_matches(cluster, running)
    # Stays steady: the failed revision launches nothing more.
    time.sleep(3)
    assert steady(ecs, service, 3)
    assert not [t for t in describe_tasks(ecs, list_tasks(ecs, serviceName=service)) if t["taskDefinitionArn"] == bad]


def test_draining_an_instance(cluster, sleeper):
    ecs = cluster.ecs
    service = unique("drain")
    create_service(ecs, service, sleeper, 3, placementStrategy=SPREAD_ZONES)
    wait_steady(ecs, service, 3)
    victim = cluster.hosts[0]
    out = ecs.start_task(cluster=CLUSTER, taskDefinition=sleeper, containerInstances=[victim.arn()])
    assert out["failures"] == []
    [standalone] = wait_running(ecs, [out["tasks"][0]["taskArn"]])
    standalone_container = running_on(victim.arn())[standalone["taskArn"]]

    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[victim.arn()], status="DRAINING")
    assert describe_instance(ecs, victim.arn())["status"] == "DRAINING"

    def moved():
        running = running_service_tasks(ecs, service)
        return (len(running) == 3 and all(t["containerInstanceArn"] != victim.arn() for t in running)
                and set(running_on(victim.arn())) == {standalone["taskArn"]})

    wait_for(moved, 60, "the service's task to leave the draining instance")
    wait_steady(ecs, service, 3)
    check_docker_matches(cluster, running_service_tasks(ecs, service))
    [still] = describe_tasks(ecs, [standalone["taskArn"]])
    assert (still["lastStatus"], still["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert running_on(victim.arn())[standalone["taskArn"]] == standalone_container

    # Nothing new goes there: a spread over the zones skips zone-1, StartTask onto it fails.
    tasks, failures = run_task(ecs, sleeper, 4, placementStrategy=SPREAD_ZONES)
    assert failures == [] and len(tasks) == 4
    assert all(t["containerInstanceArn"] != victim.arn() for t in tasks)
    out = ecs.start_task(cluster=CLUSTER, taskDefinition=sleeper, containerInstances=[victim.arn()])
    assert out["tasks"] == [] and len(out["failures"]) == 1, out
    zone_1 = [{"type": "memberOf", "expression": f"{ZONE} == zone-1"}]
    tasks, failures = run_task(ecs, sleeper, 1, placementConstraints=zone_1)
    assert tasks == [] and len(failures) == 1

    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[victim.arn()], status="ACTIVE")
    assert describe_instance(ecs, victim.arn())["status"] == "ACTIVE"
    tasks, failures = run_task(ecs, sleeper, 1, placementConstraints=zone_1)
    assert failures == [] and tasks[0]["containerInstanceArn"] == victim.arn()
    check_docker_matches(cluster, wait_running(ecs, [tasks[0]["taskArn"]]))


def test_daemon_service_runs_one_task_per_instance(cluster, sleeper):
    ecs = cluster.ecs
    daemon = unique("daemon")
    ecs.create_service(cluster=CLUSTER, serviceName=daemon, taskDefinition=sleeper, schedulingStrategy="DAEMON")
    not_zone_3 = unique("daemon-z12")
    ecs.create_service(cluster=CLUSTER, serviceName=not_zone_3, taskDefinition=sleeper, schedulingStrategy="DAEMON",
                       placementConstraints=[{"type": "memberOf", "expression": f"{ZONE} != zone-3"}])

    def one_each(service, instances):
        running = running_service_tasks(ecs, service)
        return sorted(t["containerInstanceArn"] for t in running) == sorted(instances) and steady(
            ecs, service, len(instances))

    three = [h.arn() for h in cluster.hosts]
    wait_for(lambda: one_each(daemon, three), 60, "one daemon task on each of the three instances")
    wait_for(lambda: one_each(not_zone_3, three[:2]), 60, "one task of the constrained daemon in zone-1 and zone-2")

    # A fourth instance (a second agent in the first host's namespace, in zone-2) gets one of each.
    fourth = cluster.agent(cluster.hosts[0], "agent-h1b", "zone-2")
    cluster.extra.append(fourth)
    fourth.start()
    wait_for(fourth.arn, 30, f"the fourth agent to register; log:\n{fourth.log()}")
    four = three + [fourth.arn()]
    wait_for(lambda: one_each(daemon, four), 60, "a daemon task on the fourth instance")
    wait_for(lambda: one_each(not_zone_3, three[:2] + [fourth.arn()]), 60, "the constrained daemon on the fourth")
    for service in (daemon, not_zone_3):
        check_docker_matches(cluster, running_service_tasks(ecs, service))
    assert not set(running_on(cluster.hosts[2].arn())) & {t["taskArn"] for t in running_service_tasks(ecs, not_zone_3)}


def test_a_daemon_service_s_desired_count_is_its_instance_count(cluster, sleeper):
    ecs = cluster.ecs
    daemon = unique("daemon")
    ecs.create_service(cluster=CLUSTER, serviceName=daemon, taskDefinition=sleeper, schedulingStrategy="DAEMON")
    wait_for(lambda: len(running_service_tasks(ecs, daemon)) == 3, 30, "three daemon tasks")
    wait_for(lambda: describe_service(ecs, daemon)["desiredCount"] == 3, 5, "desiredCount 3")


def test_deleting_a_daemon_service_stops_its_tasks(cluster, sleeper):
    # In a cluster of its own (one more agent in the third host), which goes away with its agent afterwards.
    ecs = cluster.ecs
    other = unique("mh-daemon")
    agent = cluster.agent(cluster.hosts[2], "agent-h3-daemon", "zone-3", cluster=other)
    cluster.extra.append(agent)
    agent.start()
    wait_for(agent.arn, 30, f"the agent to register; log:\n{agent.log()}")
    daemon = unique("daemon")
    ecs.create_service(cluster=other, serviceName=daemon, taskDefinition=sleeper, schedulingStrategy="DAEMON")

    def tasks(desired="RUNNING"):
        arns = ecs.list_tasks(cluster=other, serviceName=daemon, desiredStatus=desired)["taskArns"]
        return ecs.describe_tasks(cluster=other, tasks=arns)["tasks"] if arns else []

    wait_for(lambda: [t["lastStatus"] for t in tasks()] == ["RUNNING"], 30, "the daemon task to run")
    ecs.delete_service(cluster=other, service=daemon, force=True)
    wait_for(lambda: not tasks() and all(t["lastStatus"] == "STOPPED" for t in tasks("STOPPED")), 15,
             "the daemon's task to stop")
    assert not running_on(agent.arn())
    wait_for(lambda: ecs.describe_services(cluster=other, services=[daemon])["services"][0]["status"] == "INACTIVE",
             10, "the service to be INACTIVE")


def test_server_kill9_during_a_deployment(cluster, sleeper):
    ecs = cluster.ecs
    service = unique("crash")
    create_service(ecs, service, sleeper, 3,
                   deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 134})
    wait_steady(ecs, service, 3)
    pids = {h.agent.proc.pid for h in cluster.hosts}
    v2 = register(ecs, sleeper, environment=[{"name": "V", "value": "2"}])
    ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=v2)

    def midway():
        s = describe_service(ecs, service)
        primary = next(d for d in s["deployments"] if d["status"] == "PRIMARY")
        return primary["rolloutState"] == "IN_PROGRESS" and primary["runningCount"] >= 1 and len(
            s["deployments"]) == 2

    wait_for(midway, 60, "the deployment to be under way")
    cluster.server.kill9()
    time.sleep(1)
    cluster.server.start()

    wait_steady(ecs, service, 3, timeout=90)
    s = describe_service(ecs, service)
    assert s["taskDefinition"] == v2 and s["deployments"][0]["rolloutState"] == "COMPLETED"
    running = running_service_tasks(ecs, service)
    assert {t["taskDefinitionArn"] for t in running} == {v2}
    check_docker_matches(cluster, running)
    # No duplicates: exactly the three tasks' containers run, and the agents never restarted.
    assert len(list_tasks(ecs, serviceName=service)) == 3
    everything = [t["taskArn"] for t in service_tasks(ecs, service)]
    assert sorted(t for _, t in containers_of(cluster, everything)) == sorted(t["taskArn"] for t in running)
    assert {h.agent.proc.pid for h in cluster.hosts} == pids
    assert all(h.agent.proc.poll() is None for h in cluster.hosts)
    for h in cluster.hosts:
        assert connected(ecs, h.arn())
