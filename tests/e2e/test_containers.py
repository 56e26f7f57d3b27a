"""Tasks as real Docker containers: what a container definition becomes on Docker (checked with `docker inspect`
and by what the container does), the task lifecycle (essential exits, dependencies, health, stop timeouts,
timestamps, pull failures), placement failures and resource accounting, and the task APIs around them (StartTask,
ListTasks filters, the CLI waiters, draining).

Every task runs in cluster `default`, on the session server's embedded agent."""

import json
from pathlib import Path
import socket
import time
from datetime import datetime, timezone

import botocore.exceptions
import pytest
import requests

from helpers import container, docker, unique, wait_for

TESTAPP = "gantry-test/testapp:latest"
BUSYBOX = "gantry-test/busybox:latest"
DYNAMIC_PORTS = range(49153, 65536)
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------------------
# helpers




def task_containers(task_arn):
    """`docker inspect` of the containers of a task, by ECS container name."""
    ids = docker("ps", "-aq", "--filter", f"label=com.amazonaws.ecs.task-arn={task_arn}").stdout.split()
    if not ids:
        return {}
    # A container removed since `ps` is left out (inspect still prints the others).
    out = docker("inspect", *ids, check=False).stdout.strip()
    inspected = json.loads(out) if out else []
    return {c["Config"]["Labels"]["com.amazonaws.ecs.container-name"]: c for c in inspected}


def container_output(container_id):
    """What a container wrote, stdout and stderr together."""
    out = docker("logs", container_id)
    return out.stdout + out.stderr


def docker_time(stamp):
    """Seconds since the epoch of a Docker timestamp (`2024-05-01T12:00:00.123456789Z`); None for the zero time."""
    if stamp.startswith("0001-"):
        return None
    stamp = stamp.rstrip("Z")
    if "." in stamp:
        head, frac = stamp.split(".")
        stamp = f"{head}.{frac[:6]}"
    else:
        stamp += ".0"
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def free_host_port():
    """A TCP port outside the dynamic range that nothing listens on now."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port not in DYNAMIC_PORTS and port not in (22, 2375, 2376, 51678, 51679):
            return port
    pytest.skip("no free port outside the dynamic range")


def http_get(url, timeout=20):
    """GET `url`, retrying while the container is not listening yet; returns the response."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=2)
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def client_error(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    return e.value.response["Error"]


class Tasks:
    """Registers task definitions and runs tasks in `default`; stops whatever it started when the test ends."""

    def __init__(self, ecs):
        self.ecs = ecs
        self.arns = []

    def register(self, *containers, family=None, **extra):
        family = family or unique("ctr")
        td = self.ecs.register_task_definition(family=family, containerDefinitions=list(containers), **extra)
        return td["taskDefinition"]["taskDefinitionArn"]

    def run(self, task_definition, **kwargs):
        out = self.ecs.run_task(taskDefinition=task_definition, **kwargs)
        assert out["failures"] == [], out["failures"]
        self.arns += [t["taskArn"] for t in out["tasks"]]
        assert len(out["tasks"]) == kwargs.get("count", 1)
        return out["tasks"][0]

    def track(self, task_arn):
        self.arns.append(task_arn)

    def describe(self, task_arn):
        out = self.ecs.describe_tasks(tasks=[task_arn])
        assert out["failures"] == [], out["failures"]
        return out["tasks"][0]

    def wait(self, task_arn, predicate, timeout=30, what="the task"):
        found = {}

        def probe():
            found["task"] = self.describe(task_arn)
            return predicate(found["task"])

        try:
            wait_for(probe, timeout, what)
        except pytest.fail.Exception:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; the task is:\n{found.get('task')}")
        return found["task"]

    def running(self, task_arn, timeout=30):
        task = self.wait(task_arn, lambda t: t["lastStatus"] in ("RUNNING", "STOPPED"), timeout, "RUNNING")
        assert task["lastStatus"] == "RUNNING", task
        return task

    def stopped(self, task_arn, timeout=30):
        return self.wait(task_arn, lambda t: t["lastStatus"] == "STOPPED", timeout, "STOPPED")

    def stop(self, task_arn, reason=None):
        kwargs = {"reason": reason} if reason else {}
        return self.ecs.stop_task(task=task_arn, **kwargs)["task"]

    def cleanup(self):
        for arn in self.arns:
            try:
                if self.describe(arn)["desiredStatus"] != "STOPPED":
                    self.stop(arn)
            except botocore.exceptions.ClientError:
                pass
        # Wait, so that the next test sees the instance's resources free again.
        for arn in self.arns:
            try:
                self.stopped(arn, timeout=60)
            except (botocore.exceptions.ClientError, pytest.fail.Exception):
                pass


@pytest.fixture
def instance_arn(ecs):
    """The embedded agent's container instance, once it is registered and connected (the server answers its
    health check before the agent has registered, and creates `default` only then)."""

    def connected():
        try:
            arns = ecs.list_container_instances()["containerInstanceArns"]
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] == "ClusterNotFoundException":
                return None
            raise
        if not arns:
            return None
        ci = ecs.describe_container_instances(containerInstances=arns)["containerInstances"]
        return all(c["agentConnected"] for c in ci) and arns

    arns = wait_for(connected, 30, "the embedded agent to register")
    assert len(arns) == 1, arns
    return arns[0]


@pytest.fixture
def tasks(ecs, instance_arn):
    t = Tasks(ecs)
    yield t
    t.cleanup()


def remaining(ecs, instance_arn):
    ci = ecs.describe_container_instances(containerInstances=[instance_arn])["containerInstances"][0]
    return {r["name"]: r for r in ci["remainingResources"]}, ci


def registered(ecs, instance_arn):
    ci = ecs.describe_container_instances(containerInstances=[instance_arn])["containerInstances"][0]
    return {r["name"]: r for r in ci["registeredResources"]}


def sh(script, name="sh", **extra):
    """A testapp container that runs a busybox shell script."""
    return container(name, entryPoint=["/bin/sh", "-c"], command=[script], **extra)


# Appended to a script, keeps the container (and so the task) running, to be inspected: the agent removes the
# containers of a task once it is STOPPED. The testapp exits at once on SIGTERM.
HOLD = "; exec /testapp sleep 600000"


# ---------------------------------------------------------------------------------------------------------------
# what a container definition becomes


def test_image_command_entrypoint_environment(tasks):
    td = tasks.register(
        container(
            "main",
            entryPoint=["/bin/sh", "-c"],
            command=['echo "greeting=$GREETING name=$NAME"' + HOLD],
            environment=[{"name": "GREETING", "value": "hello"}, {"name": "NAME", "value": "td"}],
        )
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    main = task_containers(task["taskArn"])["main"]
    assert main["Config"]["Image"] == TESTAPP
    assert main["Config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert main["Config"]["Cmd"] == ['echo "greeting=$GREETING name=$NAME"' + HOLD]
    assert "GREETING=hello" in main["Config"]["Env"]
    wait_for(lambda: "greeting=hello name=td" in container_output(main["Id"]), 10, "the container's output")

    # No entryPoint and no command: the image's own (ENTRYPOINT /testapp, CMD serve) apply.
    td = tasks.register(container("web"))
    task = tasks.running(tasks.run(td)["taskArn"])
    web = task_containers(task["taskArn"])["web"]
    assert web["Config"]["Entrypoint"] == ["/testapp"]
    assert web["Config"]["Cmd"] == ["serve"]
    assert web["State"]["Running"]


def test_run_task_overrides(tasks):
    td = tasks.register(
        container(
            "main",
            entryPoint=["/bin/sh", "-c"],
            command=["echo from-the-definition" + HOLD],
            environment=[{"name": "KEEP", "value": "kept"}, {"name": "CHANGE", "value": "old"}],
            cpu=128,
            memory=64,
        )
    )
    task = tasks.run(
        td,
        overrides={
            "containerOverrides": [
                {
                    "name": "main",
                    "command": ['echo "from-the-override CHANGE=$CHANGE ADDED=$ADDED KEEP=$KEEP"' + HOLD],
                    "environment": [{"name": "CHANGE", "value": "new"}, {"name": "ADDED", "value": "yes"}],
                    "cpu": 256,
                    "memory": 96,
                }
            ],
            "cpu": "512",
            "memory": "256",
        },
    )
    assert task["cpu"] == "512" and task["memory"] == "256"
    assert task["overrides"]["containerOverrides"][0]["cpu"] == 256
    task = tasks.running(task["taskArn"])
    main = task_containers(task["taskArn"])["main"]
    assert main["Config"]["Cmd"][0].startswith('echo "from-the-override')
    env = main["Config"]["Env"]
    assert {"KEEP=kept", "CHANGE=new", "ADDED=yes"} <= set(env), env
    assert "CHANGE=old" not in env
    assert main["HostConfig"]["CpuShares"] == 256
    assert main["HostConfig"]["Memory"] == 96 * MIB
    wait_for(lambda: "from-the-override CHANGE=new ADDED=yes KEEP=kept" in container_output(main["Id"]), 10,
             "the container's output")
    assert "from-the-definition" not in container_output(main["Id"])


def test_bridge_dynamic_host_ports(tasks):
    # hostPort absent and hostPort 0 both mean a dynamic port; each container has its own network namespace.
    td = tasks.register(
        container("absent", portMappings=[{"containerPort": 8080}]),
        container("zero", portMappings=[{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]),
        networkMode="bridge",
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    ports = {}
    for c in task["containers"]:
        bindings = c["networkBindings"]
        assert len(bindings) == 1, c
        b = bindings[0]
        assert b["containerPort"] == 8080 and b["protocol"] == "tcp", b
        assert b["hostPort"] in DYNAMIC_PORTS, b
        ports[c["name"]] = b["hostPort"]
    assert ports["absent"] != ports["zero"]
    inspected = task_containers(task["taskArn"])
    for name, port in ports.items():
        assert inspected[name]["HostConfig"]["NetworkMode"] == "bridge"
        docker_binding = inspected[name]["NetworkSettings"]["Ports"]["8080/tcp"]
        assert str(port) in [b["HostPort"] for b in docker_binding], docker_binding
        response = http_get(f"http://127.0.0.1:{port}/hostname")
        assert response.status_code == 200
        # The testapp answers with its hostname: the container's short id.
        assert inspected[name]["Id"].startswith(response.text.strip()), (name, response.text)


def test_bridge_fixed_host_port_and_ports_conflict(tasks, ecs, instance_arn):
    port = free_host_port()
    td = tasks.register(container("web", portMappings=[{"containerPort": 8080, "hostPort": port}]))
    task = tasks.running(tasks.run(td)["taskArn"])
    assert task["containers"][0]["networkBindings"][0]["hostPort"] == port
    assert http_get(f"http://127.0.0.1:{port}/").text.startswith("hello from")

    # The port is taken while the task runs: a second task fits nowhere.
    out = ecs.run_task(taskDefinition=td)
    assert out["tasks"] == []
    assert out["failures"] == [{"arn": instance_arn, "reason": "RESOURCE:PORTS"}], out["failures"]

    # ... and fits again once the first one stopped.
    tasks.stop(task["taskArn"])
    tasks.stopped(task["taskArn"])
    second = tasks.running(tasks.run(td)["taskArn"])
    assert http_get(f"http://127.0.0.1:{port}/").status_code == 200
    tasks.stop(second["taskArn"])


def test_host_network_mode(tasks):
    port = free_host_port()
    td = tasks.register(
        container("web", command=["serve", "--port", str(port)], portMappings=[{"containerPort": port}]),
        networkMode="host",
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    binding = task["containers"][0]["networkBindings"][0]
    assert (binding["containerPort"], binding["hostPort"]) == (port, port), binding
    web = task_containers(task["taskArn"])["web"]
    assert web["HostConfig"]["NetworkMode"] == "host"
    response = http_get(f"http://127.0.0.1:{port}/hostname")
    assert response.status_code == 200
    # On the host's network the container has the host's name.
    assert response.text.strip() == socket.gethostname()


@pytest.mark.parametrize("pid_mode", ["task", "host", None])
def test_pid_mode(tasks, pid_mode):
    """`task`: the task's containers see each other's processes (they join a pause container's PID namespace);
    `host`: they see the host's; by default each sees only its own."""
    ps = sh("sleep 1; ps -o args > /tmp/ps; echo listed; cat /tmp/ps" + HOLD, name="ps")
    extra = {"pidMode": pid_mode} if pid_mode else {}
    td = tasks.register(container("web", command=["serve"]), ps, **extra)
    task = tasks.running(tasks.run(td)["taskArn"])
    ids = {c["name"]: c["runtimeId"] for c in task["containers"]}
    wait_for(lambda: "listed" in container_output(ids["ps"]), 20, "the process list")
    listed = container_output(ids["ps"])
    assert ("testapp serve" in listed) == (pid_mode in ("task", "host")), listed
    assert ("dockerd" in listed) == (pid_mode == "host"), listed
    containers = task_containers(task["taskArn"])
    if pid_mode == "task":
        assert containers["web"]["HostConfig"]["PidMode"].startswith("container:")
        assert containers["web"]["HostConfig"]["NetworkMode"] == "bridge"


def test_task_memory_is_one_limit_over_the_task_s_containers(tasks):
    """Task-level memory 96 MiB: each container alone is under it, but a container that takes more is killed by
    the kernel (exit 137) and the task stops with ECS's reasons; the limit is the task's cgroup, its containers'
    cgroup parent."""
    hog = sh("sleep 1; dd if=/dev/zero of=/dev/null bs=160M count=1", name="hog")
    web = container("web", command=["serve"])
    for c in (hog, web):
        del c["memory"]
    td = tasks.register(web, hog, cpu="256", memory="96")
    arn = tasks.run(td)["taskArn"]
    task_id = arn.rsplit("/", 1)[1]
    stopped = tasks.stopped(arn, timeout=60)
    hog_state = next(c for c in stopped["containers"] if c["name"] == "hog")
    assert hog_state["exitCode"] == 137, hog_state
    assert hog_state["reason"] == "OutOfMemoryError: Container killed due to memory usage", hog_state
    assert stopped["stopCode"] == "EssentialContainerExited", stopped
    assert stopped["stoppedReason"] == "Essential container in task exited"
    containers = task_containers(arn)
    assert containers["web"]["HostConfig"]["CgroupParent"] == f"/ecs/{task_id}"
    assert containers["web"]["HostConfig"]["Memory"] == 0, "the limit is the task's, not the container's"
    # The task's cgroup goes with it.
    assert not any(Path(root, "ecs", task_id).exists() for root in (
        "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"))


def test_cpu_and_memory_limits(tasks):
    td = tasks.register(
        container("hard", cpu=256, memory=96, memoryReservation=48),
        {"name": "soft", "image": TESTAPP, "cpu": 0, "memoryReservation": 32},
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    inspected = task_containers(task["taskArn"])
    hard, soft = inspected["hard"]["HostConfig"], inspected["soft"]["HostConfig"]
    assert (hard["CpuShares"], hard["Memory"], hard["MemoryReservation"]) == (256, 96 * MIB, 48 * MIB)
    # cpu 0 gets Docker's smallest share (as the ECS agent does); memoryReservation alone sets no hard limit.
    assert (soft["CpuShares"], soft["Memory"], soft["MemoryReservation"]) == (2, 0, 32 * MIB)
    by_name = {c["name"]: c for c in task["containers"]}
    assert (by_name["hard"]["cpu"], by_name["hard"]["memory"], by_name["hard"]["memoryReservation"]) == (
        "256",
        "96",
        "48",
    )


def test_working_directory_user_and_ulimits(tasks):
    td = tasks.register(
        sh(
            'echo "pwd=$(pwd) uid=$(id -u) gid=$(id -g) nofile=$(ulimit -n)"' + HOLD,
            name="main",
            workingDirectory="/tmp",
            user="1234:5678",
            ulimits=[{"name": "nofile", "softLimit": 1000, "hardLimit": 2000}],
        )
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    main = task_containers(task["taskArn"])["main"]
    assert main["Config"]["WorkingDir"] == "/tmp"
    assert main["Config"]["User"] == "1234:5678"
    assert main["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 1000, "Hard": 2000}]
    wait_for(lambda: "pwd=/tmp uid=1234 gid=5678 nofile=1000" in container_output(main["Id"]), 10,
             f"the container's output; it is {container_output(main['Id'])!r}")


def test_docker_labels_and_ecs_labels(tasks, ecs):
    family = unique("labels")
    td = tasks.register(
        container("web", dockerLabels={"team": "blue", "com.example.tier": "front"}),
        family=family,
    )
    revision = int(td.rsplit(":", 1)[1])
    task = tasks.running(tasks.run(td)["taskArn"])
    labels = task_containers(task["taskArn"])["web"]["Config"]["Labels"]
    assert labels["team"] == "blue"
    assert labels["com.example.tier"] == "front"
    assert labels["com.amazonaws.ecs.cluster"] == "default"
    assert labels["com.amazonaws.ecs.task-arn"] == task["taskArn"]
    assert labels["com.amazonaws.ecs.container-name"] == "web"
    assert labels["com.amazonaws.ecs.task-definition-family"] == family
    assert labels["com.amazonaws.ecs.task-definition-version"] == str(revision)
    # The container's id is reported as its runtimeId.
    assert task_containers(task["taskArn"])["web"]["Id"] == task["containers"][0]["runtimeId"]


def test_links(tasks):
    td = tasks.register(
        container("backend"),
        sh(
            "for i in $(seq 1 50); do wget -qO- http://api:8080/hostname && break; sleep 0.2; done" + HOLD,
            name="client",
            links=["backend:api"],
        ),
        networkMode="bridge",
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    inspected = task_containers(task["taskArn"])
    # The client got the backend's answer (its hostname: the backend container's short id) through the alias.
    wait_for(lambda: container_output(inspected["client"]["Id"]).strip(), 15, "the client's output")
    output = container_output(inspected["client"]["Id"]).strip()
    assert inspected["backend"]["Id"].startswith(output), output
    assert any(link.endswith("/api") for link in inspected["client"]["HostConfig"]["Links"])


def test_host_volume(tasks, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    host_dir.chmod(0o777)
    td = tasks.register(
        sh("echo written-in-the-container > /data/out.txt" + HOLD, name="writer",
           mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}]),
        volumes=[{"name": "data", "host": {"sourcePath": str(host_dir)}}],
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    out = host_dir / "out.txt"
    wait_for(lambda: out.exists() and out.read_text().strip(), 10, "the file on the host")
    assert out.read_text().strip() == "written-in-the-container"
    mounts = task_containers(task["taskArn"])["writer"]["Mounts"]
    assert [(m["Type"], m["Source"], m["Destination"]) for m in mounts] == [("bind", str(host_dir), "/data")]


def test_docker_volume_shared_by_two_containers(tasks):
    td = tasks.register(
        sh("echo shared-$$ > /vol/data", name="writer", essential=False,
           mountPoints=[{"sourceVolume": "scratch", "containerPath": "/vol"}]),
        sh("cat /vol/data" + HOLD, name="reader",
           mountPoints=[{"sourceVolume": "scratch", "containerPath": "/vol", "readOnly": True}],
           dependsOn=[{"containerName": "writer", "condition": "SUCCESS"}]),
        volumes=[{"name": "scratch"}],
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    inspected = task_containers(task["taskArn"])
    assert inspected["writer"]["State"]["ExitCode"] == 0
    wait_for(lambda: container_output(inspected["reader"]["Id"]), 10, "the reader's output")
    assert container_output(inspected["reader"]["Id"]).startswith("shared-")
    writer_mount = inspected["writer"]["Mounts"][0]
    reader_mount = inspected["reader"]["Mounts"][0]
    assert writer_mount["Type"] == reader_mount["Type"] == "volume"
    assert writer_mount["Name"] == reader_mount["Name"]
    assert writer_mount["RW"] and not reader_mount["RW"]


def test_readonly_root_filesystem(tasks):
    td = tasks.register(
        sh("touch /probe; echo touched=$?" + HOLD, name="ro", readonlyRootFilesystem=True),
        sh("touch /probe; echo touched=$?" + HOLD, name="rw"),
    )
    task = tasks.running(tasks.run(td)["taskArn"])
    inspected = task_containers(task["taskArn"])
    assert inspected["ro"]["HostConfig"]["ReadonlyRootfs"] is True
    assert inspected["rw"]["HostConfig"]["ReadonlyRootfs"] is False
    for name in ("ro", "rw"):
        wait_for(lambda: "touched=" in container_output(inspected[name]["Id"]), 10, f"{name}'s output")
    assert "Read-only file system" in container_output(inspected["ro"]["Id"])
    assert "touched=1" in container_output(inspected["ro"]["Id"])
    assert "touched=0" in container_output(inspected["rw"]["Id"])


def docker_runs_privileged():
    """Whether this Docker host can run a privileged container at all (some sandboxes cannot)."""
    return docker("run", "--rm", "--privileged", BUSYBOX, "true", check=False).returncode == 0


def test_privileged(tasks):
    script = "grep CapEff /proc/self/status" + HOLD
    td = tasks.register(sh(script, name="privileged", privileged=True), sh(script, name="plain"))
    if not docker_runs_privileged():
        # Docker refuses every privileged container here: the task fails to start with Docker's own error, which
        # shows that the flag reached Docker (the same definition without `privileged` runs, see below).
        task = tasks.stopped(tasks.run(td)["taskArn"])
        assert task["stopCode"] == "TaskFailedToStart", task
        by_name = {c["name"]: c for c in task["containers"]}
        assert by_name["privileged"]["reason"].startswith("CannotStartContainerError:"), by_name
        td = tasks.register(sh(script, name="plain"))
        tasks.running(tasks.run(td)["taskArn"])
        return
    task = tasks.running(tasks.run(td)["taskArn"])
    inspected = task_containers(task["taskArn"])
    for c in inspected.values():
        wait_for(lambda: "CapEff" in container_output(c["Id"]), 10, "the output")
    assert inspected["privileged"]["HostConfig"]["Privileged"] is True
    assert inspected["plain"]["HostConfig"]["Privileged"] is False
    caps = {name: int(container_output(c["Id"]).split()[-1], 16) for name, c in inspected.items()}
    # A privileged container has every capability; a plain one Docker's short default list.
    assert bin(caps["privileged"]).count("1") > 30, caps
    assert bin(caps["plain"]).count("1") < 20, caps


# ---------------------------------------------------------------------------------------------------------------
# lifecycle


def test_essential_container_exit_stops_the_task(tasks):
    td = tasks.register(
        container("web"),
        container("job", command=["exit", "3", "--after-ms", "500"]),
    )
    task = tasks.stopped(tasks.run(td)["taskArn"])
    assert task["desiredStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    by_name = {c["name"]: c for c in task["containers"]}
    assert by_name["job"]["exitCode"] == 3
    assert by_name["job"]["lastStatus"] == "STOPPED"
    # The other container was stopped with the task (the testapp exits 0 on SIGTERM).
    assert by_name["web"]["lastStatus"] == "STOPPED"
    assert by_name["web"]["exitCode"] is not None


def test_non_essential_container_exit_does_not_stop_the_task(tasks):
    td = tasks.register(
        container("web"),
        container("side", essential=False, command=["exit", "5"]),
    )
    arn = tasks.run(td)["taskArn"]

    def side_exited(t):
        side = next(c for c in t["containers"] if c["name"] == "side")
        return side.get("exitCode") is not None or t["lastStatus"] == "STOPPED"

    task = tasks.wait(arn, side_exited, what="the non-essential container's exit")
    by_name = {c["name"]: c for c in task["containers"]}
    assert by_name["side"]["exitCode"] == 5 and by_name["side"]["lastStatus"] == "STOPPED", task
    # A few watch cycles later, the task still runs.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        task = tasks.describe(arn)
        assert (task["lastStatus"], task["desiredStatus"]) == ("RUNNING", "RUNNING"), task
        time.sleep(0.5)
    assert {c["name"]: c["lastStatus"] for c in task["containers"]}["web"] == "RUNNING"


HEALTH_CHECK = {
    "command": ["CMD", "/testapp", "health", "http://127.0.0.1:8080/health"],
    "interval": 5,
    "timeout": 2,
    "retries": 1,
    "startPeriod": 0,
}


def test_depends_on_start_complete_success_healthy(tasks):
    td = tasks.register(
        container("first"),
        container("job", essential=False, command=["exit", "0", "--after-ms", "1000"],
                  dependsOn=[{"containerName": "first", "condition": "START"}]),
        container("db", essential=False, healthCheck=HEALTH_CHECK),
        container("after-complete", essential=False,
                  dependsOn=[{"containerName": "job", "condition": "COMPLETE"}]),
        container("app", dependsOn=[
            {"containerName": "job", "condition": "SUCCESS"},
            {"containerName": "db", "condition": "HEALTHY"},
        ]),
    )
    task = tasks.running(tasks.run(td)["taskArn"], timeout=45)
    c = task_containers(task["taskArn"])
    started = {name: docker_time(i["State"]["StartedAt"]) for name, i in c.items()}
    assert all(started.values()), started
    job_finished = docker_time(c["job"]["State"]["FinishedAt"])
    assert c["job"]["State"]["ExitCode"] == 0
    assert started["job"] >= started["first"]
    assert started["after-complete"] >= job_finished
    assert started["app"] >= job_finished
    # `app` started only after a successful health check of `db`.
    passed = [docker_time(h["End"]) for h in c["db"]["State"]["Health"]["Log"] if h["ExitCode"] == 0]
    assert passed and started["app"] >= min(passed), (started, c["db"]["State"]["Health"])


def test_depends_on_success_with_a_failing_dependency_fails_the_task(tasks):
    td = tasks.register(
        container("web"),
        container("migrate", essential=False, command=["exit", "1"]),
        container("app", dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]),
    )
    task = tasks.stopped(tasks.run(td)["taskArn"])
    by_name = {c["name"]: c for c in task["containers"]}
    assert by_name["migrate"]["exitCode"] == 1
    assert task["stopCode"] == "TaskFailedToStart", task
    assert "app" in task["stoppedReason"] and "migrate" in task["stoppedReason"], task["stoppedReason"]
    # `app` never started.
    app = task_containers(task["taskArn"]).get("app")
    assert app is None or docker_time(app["State"]["StartedAt"]) is None, app["State"]
    assert by_name["app"].get("exitCode") is None


def test_health_check_healthy_then_unhealthy(tasks):
    td = tasks.register(container("web", healthCheck=HEALTH_CHECK, portMappings=[{"containerPort": 8080}]))
    arn = tasks.run(td)["taskArn"]
    task = tasks.wait(
        arn,
        lambda t: t["lastStatus"] == "STOPPED"
        or (t.get("healthStatus") == "HEALTHY" and t["containers"][0].get("healthStatus") == "HEALTHY"),
        timeout=30,
        what="HEALTHY",
    )
    assert task["lastStatus"] == "RUNNING"
    inspected = task_containers(arn)["web"]
    assert inspected["Config"]["Healthcheck"]["Test"] == HEALTH_CHECK["command"]
    assert inspected["Config"]["Healthcheck"]["Interval"] == 5 * 10**9

    port = task["containers"][0]["networkBindings"][0]["hostPort"]
    assert http_get(f"http://127.0.0.1:{port}/unhealthy").status_code == 200
    task = tasks.wait(
        arn,
        lambda t: t["lastStatus"] == "STOPPED"
        or (t.get("healthStatus") == "UNHEALTHY" and t["containers"][0].get("healthStatus") == "UNHEALTHY"),
        timeout=30,
        what="UNHEALTHY",
    )
    # A standalone task with an unhealthy container keeps running (only services replace it).
    assert task["lastStatus"] == "RUNNING"


def test_stop_timeout_kills_a_container_that_ignores_sigterm(tasks):
    td = tasks.register(container("stubborn", command=["ignore-term", "120000"], stopTimeout=3))
    task = tasks.running(tasks.run(td)["taskArn"])
    assert task_containers(task["taskArn"])["stubborn"]["Config"]["StopTimeout"] == 3
    # Let the process install its SIGTERM handler.
    wait_for(lambda: "ignoring SIGTERM" in container_output(task["containers"][0]["runtimeId"]), 10, "the app")
    began = time.time()
    stopping = tasks.stop(task["taskArn"], reason="enough")
    assert stopping["desiredStatus"] == "STOPPED"
    task = tasks.stopped(task["taskArn"])
    took = time.time() - began
    # SIGTERM is ignored; SIGKILL comes stopTimeout (3 s) later.
    assert 2.5 <= took <= 10, took
    assert 2.5 <= (task["executionStoppedAt"] - task["stoppingAt"]).total_seconds() <= 6, task
    assert task["containers"][0]["exitCode"] == 137
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "enough"


def test_a_container_that_honours_sigterm_stops_at_once(tasks):
    td = tasks.register(container("web", stopTimeout=30))
    task = tasks.running(tasks.run(td)["taskArn"])
    began = time.time()
    tasks.stop(task["taskArn"])
    task = tasks.stopped(task["taskArn"])
    assert time.time() - began < 10
    assert task["containers"][0]["exitCode"] != 137, task


def test_containers_of_a_stopped_task_stay_for_inspection(tasks):
    td = tasks.register(container("job", command=["exit", "3"]))
    task = tasks.stopped(tasks.run(td)["taskArn"])
    assert task["containers"][0]["exitCode"] == 3
    # `docker logs` and `docker inspect` of a crashed container are how one finds out why it crashed.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        job = task_containers(task["taskArn"]).get("job")
        assert job is not None, "the container was removed"
        assert job["State"]["ExitCode"] == 3
        assert "exiting with 3" in container_output(job["Id"])
        time.sleep(0.5)


def _ordered(task, *names):
    stamps = [(n, task.get(n)) for n in names]
    missing = [n for n, s in stamps if s is None]
    assert not missing, f"missing timestamps {missing}: {task}"
    for (a, ta), (b, tb) in zip(stamps, stamps[1:]):
        assert ta <= tb, f"{a} {ta} is after {b} {tb}"


def test_lifecycle_timestamps_of_a_stopped_task(tasks):
    td = tasks.register(container("web"))
    task = tasks.running(tasks.run(td)["taskArn"])
    _ordered(task, "createdAt", "pullStartedAt", "pullStoppedAt", "startedAt")
    for absent in ("stoppingAt", "stoppedAt", "executionStoppedAt", "stopCode"):
        assert absent not in task, task
    tasks.stop(task["taskArn"])
    task = tasks.stopped(task["taskArn"])
    _ordered(task, "createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt", "executionStoppedAt",
             "stoppedAt")


def test_lifecycle_timestamps_of_a_task_whose_essential_container_exited(tasks):
    # `job` exits; the task stops `slow`, which ignores SIGTERM and is killed 3 s later.
    td = tasks.register(
        container("job", command=["exit", "0", "--after-ms", "500"]),
        container("slow", essential=False, command=["ignore-term", "120000"], stopTimeout=3),
    )
    task = tasks.stopped(tasks.run(td)["taskArn"])
    assert task["stopCode"] == "EssentialContainerExited"
    by_name = {c["name"]: c for c in task["containers"]}
    assert (by_name["job"]["exitCode"], by_name["slow"]["exitCode"]) == (0, 137), by_name
    _ordered(task, "createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt", "executionStoppedAt",
             "stoppedAt")
    # The task began stopping when `job` exited, and finished after `slow` was killed.
    stopping = (task["executionStoppedAt"] - task["stoppingAt"]).total_seconds()
    assert 2.5 <= stopping <= 8, task


def test_image_that_cannot_be_pulled(tasks):
    # Not in the local store, and its registry does not answer.
    image = f"127.0.0.1:9/gantry-missing/{unique('img')}:latest"
    td = tasks.register(container("web", image=image))
    task = tasks.stopped(tasks.run(td)["taskArn"], timeout=60)
    assert task["stopCode"] == "TaskFailedToStart", task
    assert task["stoppedReason"].startswith("CannotPullContainerError:"), task["stoppedReason"]
    assert task["containers"][0]["reason"].startswith("CannotPullContainerError:"), task["containers"][0]
    assert task_containers(task["taskArn"]) == {}
    _ordered(task, "createdAt", "pullStartedAt", "pullStoppedAt", "stoppedAt")


# ---------------------------------------------------------------------------------------------------------------
# placement and resources


def test_placement_failures_for_memory_and_cpu(tasks, ecs, instance_arn):
    resources = registered(ecs, instance_arn)
    memory = resources["MEMORY"]["integerValue"]
    cpu = resources["CPU"]["integerValue"]
    td = tasks.register(container("big", memory=memory + 1))
    out = ecs.run_task(taskDefinition=td)
    assert out["tasks"] == []
    assert out["failures"] == [{"arn": instance_arn, "reason": "RESOURCE:MEMORY"}], out

    td = tasks.register(container("busy", cpu=cpu + 1024, memory=64))
    out = ecs.run_task(taskDefinition=td)
    assert out["tasks"] == []
    assert out["failures"] == [{"arn": instance_arn, "reason": "RESOURCE:CPU"}], out


def test_remaining_resources_follow_running_tasks(tasks, ecs, instance_arn):
    port = free_host_port()
    before, _ = remaining(ecs, instance_arn)
    td = tasks.register(container("web", cpu=300, memory=200, portMappings=[{"containerPort": 8080, "hostPort": port}]))
    task = tasks.running(tasks.run(td)["taskArn"])
    during, ci = remaining(ecs, instance_arn)
    assert during["CPU"]["integerValue"] == before["CPU"]["integerValue"] - 300
    assert during["MEMORY"]["integerValue"] == before["MEMORY"]["integerValue"] - 200
    assert str(port) in during["PORTS"]["stringSetValue"]
    assert ci["runningTasksCount"] >= 1
    tasks.stop(task["taskArn"])
    tasks.stopped(task["taskArn"])
    after, _ = remaining(ecs, instance_arn)
    assert after["CPU"]["integerValue"] == before["CPU"]["integerValue"]
    assert after["MEMORY"]["integerValue"] == before["MEMORY"]["integerValue"]
    assert str(port) not in after["PORTS"]["stringSetValue"]


def test_delete_cluster_with_a_running_task(tasks, ecs):
    td = tasks.register(container("web"))
    task = tasks.running(tasks.run(td)["taskArn"])
    error = client_error(ecs.delete_cluster, cluster="default")
    assert error["Code"] == "ClusterContainsTasksException", error
    assert ecs.describe_clusters(clusters=["default"])["clusters"][0]["status"] == "ACTIVE"
    # The task was not touched.
    assert tasks.describe(task["taskArn"])["lastStatus"] == "RUNNING"


def test_start_task_on_the_instance_and_list_tasks_filters(tasks, ecs, instance_arn):
    family = unique("list")
    td = tasks.register(container("web"), family=family)
    started_by = unique("me")
    out = ecs.start_task(taskDefinition=td, containerInstances=[instance_arn], startedBy=started_by)
    assert out["failures"] == []
    started = out["tasks"][0]
    tasks.track(started["taskArn"])
    assert started["containerInstanceArn"] == instance_arn
    assert started["startedBy"] == started_by
    other = tasks.run(td)
    tasks.running(started["taskArn"])
    tasks.running(other["taskArn"])

    assert set(ecs.list_tasks(family=family)["taskArns"]) == {started["taskArn"], other["taskArn"]}
    assert ecs.list_tasks(startedBy=started_by)["taskArns"] == [started["taskArn"]]
    by_instance = ecs.list_tasks(containerInstance=instance_arn)["taskArns"]
    assert {started["taskArn"], other["taskArn"]} <= set(by_instance)
    # The instance's id works as well as its ARN.
    assert set(by_instance) == set(ecs.list_tasks(containerInstance=instance_arn.rsplit("/", 1)[1])["taskArns"])
    assert ecs.list_tasks(family=family, desiredStatus="STOPPED")["taskArns"] == []

    tasks.stop(started["taskArn"])
    assert ecs.list_tasks(family=family, desiredStatus="STOPPED")["taskArns"] == [started["taskArn"]]
    assert ecs.list_tasks(family=family)["taskArns"] == [other["taskArn"]]
    tasks.stopped(started["taskArn"])
    assert ecs.list_tasks(family=family, desiredStatus="STOPPED")["taskArns"] == [started["taskArn"]]


def test_cli_waiters(tasks, aws, aws_run):
    td = tasks.register(container("web"))
    out = aws("ecs", "run-task", "--task-definition", td)
    arn = out["tasks"][0]["taskArn"]
    tasks.track(arn)
    aws("ecs", "wait", "tasks-running", "--tasks", arn, timeout=60)
    assert tasks.describe(arn)["lastStatus"] == "RUNNING"
    aws("ecs", "stop-task", "--task", arn)
    aws("ecs", "wait", "tasks-stopped", "--tasks", arn, timeout=60)
    assert tasks.describe(arn)["lastStatus"] == "STOPPED"

    # tasks-running gives up on a task that stops instead (one that never runs: its image cannot be pulled).
    td = tasks.register(container("job", image=f"127.0.0.1:9/gantry-missing/{unique('img')}:latest"))
    arn = aws("ecs", "run-task", "--task-definition", td)["tasks"][0]["taskArn"]
    tasks.track(arn)
    result = aws_run("ecs", "wait", "tasks-running", "--tasks", arn, timeout=60)
    assert result.returncode != 0
    assert "Waiter TasksRunning failed" in result.stderr, result.stderr


def test_draining_instance_gets_no_new_tasks(tasks, ecs, instance_arn):
    td = tasks.register(container("web"))
    running = tasks.running(tasks.run(td)["taskArn"])
    out = ecs.update_container_instances_state(containerInstances=[instance_arn], status="DRAINING")
    assert out["failures"] == []
    assert out["containerInstances"][0]["status"] == "DRAINING"
    try:
        # ECS places nothing on a DRAINING instance; with no ACTIVE instance left in the cluster it refuses the
        # call as it does for a cluster without instances.
        error = client_error(ecs.run_task, taskDefinition=td)
        assert error["Code"] == "InvalidParameterException", error
        assert error["Message"] == "No Container Instances were found in your cluster."
        # A standalone task keeps running on a draining instance.
        assert tasks.describe(running["taskArn"])["lastStatus"] == "RUNNING"
    finally:
        out = ecs.update_container_instances_state(containerInstances=[instance_arn], status="ACTIVE")
        assert out["containerInstances"][0]["status"] == "ACTIVE"
    tasks.running(tasks.run(td)["taskArn"])
