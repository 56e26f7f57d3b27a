#!/usr/bin/env python3
"""RunTask-to-RUNNING latency of Gantry, bridge and awsvpc tasks, side by side with `docker run -d` of the same image.

Gantry: the time from the start of the boto3 RunTask call until describe-tasks first shows lastStatus RUNNING
(polled every --poll seconds). The task definition runs `testapp serve` with memory 32 and a dynamic host port
(containerPort 8080, hostPort 0), on the embedded agent of a fresh `gantry server`. The awsvpc one is the same
container in `networkMode: awsvpc` (its own address in the default subnet of us-east-1a, with a security group
that lets port 8080 in): an interface, a pause container and the group's packet filter rules more. Another awsvpc
task keeps running on that subnet meanwhile, so that its host network exists, as it does once a subnet has tasks.
Docker: the wall time of `docker run -d -p 0:8080 -m 32m gantry-test/testapp:latest serve` (it returns once the
container has started). And what awsvpc costs Docker itself, the ceiling of the awsvpc / bridge ratio: the wall
time of `docker run -d` of the pause image with an address on a bridge network of the bench's own, then of the
same `testapp serve` in its network namespace (`--network container:<pause>`).

The four are interleaved (a bridge task, an awsvpc task, a docker run, ...) so that load from elsewhere on the
machine hits all alike. Each Gantry task is stopped and each docker container removed before the next sample (not timed). A few
warm-up samples of each are dropped. Prints a Markdown table on stdout; progress on stderr.

    .venv/bin/python bench/run_task_latency.py [--n 50] [--warmup 3] [--poll 0.01]
"""

import argparse
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    SERVE_CONTAINER, TESTAPP, Gantry, check_prerequisites, client, docker, docker_run_serve_argv, log, machine_note, median,
    percentile, table,
)

FAMILY = "bench-latency"
VPC_FAMILY = "bench-latency-awsvpc"
TIMEOUT = 60  # seconds a single task may take to reach RUNNING (or STOPPED) before the benchmark fails


def gantry_sample(ecs, poll, family=FAMILY, **run):
    """Seconds from RunTask to the first describe-tasks that says RUNNING; returns (seconds, task ARN)."""
    t0 = time.perf_counter()
    response = ecs.run_task(cluster="default", taskDefinition=family, **run)
    if response.get("failures") or not response.get("tasks"):
        raise RuntimeError(f"RunTask failed: {response.get('failures')}")
    arn = response["tasks"][0]["taskArn"]
    while True:
        task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
        elapsed = time.perf_counter() - t0
        if task["lastStatus"] == "RUNNING":
            return elapsed, arn
        if task["lastStatus"] == "STOPPED" or elapsed > TIMEOUT:
            raise RuntimeError(f"task {arn} did not reach RUNNING: {task.get('stoppedReason')} {task['lastStatus']}")
        time.sleep(poll)


def gantry_stop(ecs, arn):
    ecs.stop_task(cluster="default", task=arn, reason="bench")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["lastStatus"] == "STOPPED":
            return
        time.sleep(0.02)
    raise RuntimeError(f"task {arn} did not stop within {TIMEOUT}s")


BENCH_NETWORK = ("gantry-bench-net", "10.213.0.0/24", "10.213.0.1", "10.213.0.9")


def docker_pair_sample(label):
    """Seconds of `docker run -d` of a pause container with its own address, then of the app in its namespace;
    returns (seconds, container ids)."""
    name, _, _, address = BENCH_NETWORK
    t0 = time.perf_counter()
    pause = subprocess.run(["docker", "run", "-d", "--label", label, "--network", name, "--ip", address,
                            "gantry/pause:1"], capture_output=True, text=True, timeout=TIMEOUT)
    if pause.returncode != 0:
        raise RuntimeError(f"docker run of the pause image failed: {pause.stderr}")
    pause_id = pause.stdout.strip()
    app = subprocess.run(["docker", "run", "-d", "--label", label, "--network", f"container:{pause_id}", "-m", "32m",
                          TESTAPP, "serve"], capture_output=True, text=True, timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    if app.returncode != 0:
        raise RuntimeError(f"docker run in the pause container's namespace failed: {app.stderr}")
    return elapsed, [app.stdout.strip(), pause_id]


def awsvpc_configuration(ec2):
    """The default subnet of us-east-1a and a group that lets port 8080 in."""
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]},
                                           {"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    group = ec2.create_security_group(GroupName="bench-web", Description="bench", VpcId=subnet["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [group]}}


def docker_sample(label):
    """Seconds of `docker run -d ...` wall time; returns (seconds, container id)."""
    argv = docker_run_serve_argv(label)
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"docker run failed: {out.stderr}")
    return elapsed, out.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="samples of each (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed samples of each first (default 3)")
    parser.add_argument("--poll", type=float, default=0.01, help="describe-tasks poll interval, s (default 0.01)")
    args = parser.parse_args()
    check_prerequisites()

    label = f"gantry.bench={uuid.uuid4().hex}"
    gantry = Gantry()
    samples = {"gantry": [], "awsvpc": [], "docker": [], "pair": []}
    try:
        gantry.start()
        ecs = client("ecs", gantry.endpoint)
        gantry.wait_agent(ecs)
        ecs.register_task_definition(family=FAMILY, containerDefinitions=[SERVE_CONTAINER])
        vpc_container = dict(SERVE_CONTAINER, portMappings=[{"containerPort": 8080}])
        ecs.register_task_definition(family=VPC_FAMILY, networkMode="awsvpc", containerDefinitions=[vpc_container])
        network = awsvpc_configuration(client("ec2", gantry.endpoint))
        # (The first awsvpc task also makes the pause image the docker pair runs.)
        keeper = gantry_sample(ecs, args.poll, VPC_FAMILY, networkConfiguration=network)[1]
        name, subnet, gateway, _ = BENCH_NETWORK
        docker("network", "create", "--subnet", subnet, "--gateway", gateway, name)
        for i in range(args.warmup + args.n):
            g, arn = gantry_sample(ecs, args.poll)
            gantry_stop(ecs, arn)
            v, arn = gantry_sample(ecs, args.poll, VPC_FAMILY, networkConfiguration=network)
            gantry_stop(ecs, arn)
            d, cid = docker_sample(label)
            docker("rm", "-f", "-v", cid, check=False)
            p, ids = docker_pair_sample(label)
            docker("rm", "-f", "-v", *ids, check=False)
            if i >= args.warmup:
                samples["gantry"].append(g)
                samples["awsvpc"].append(v)
                samples["docker"].append(d)
                samples["pair"].append(p)
            step = f"{i + 1 - args.warmup}/{args.n}" if i >= args.warmup else "warm-up"
            log(f"[{step}] gantry {g * 1000:.0f} ms  awsvpc {v * 1000:.0f} ms  docker {d * 1000:.0f} ms  "
                f"docker pause+app {p * 1000:.0f} ms")
        gantry_stop(ecs, keeper)
    finally:
        gantry.close()
        ids = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        docker("network", "rm", BENCH_NETWORK[0], check=False)

    def ms(v):
        return f"{v * 1000:.0f} ms"

    g, v, d, p = samples["gantry"], samples["awsvpc"], samples["docker"], samples["pair"]

    def ratio(a, b):
        return ["", f"{median(a) / median(b):.2f}x", f"{percentile(a, 99) / percentile(b, 99):.2f}x", "", ""]

    rows = [
        ["Gantry RunTask → RUNNING, bridge", len(g), ms(median(g)), ms(percentile(g, 99)), ms(min(g)), ms(max(g))],
        ["Gantry RunTask → RUNNING, awsvpc", len(v), ms(median(v)), ms(percentile(v, 99)), ms(min(v)), ms(max(v))],
        ["`docker run -d`", len(d), ms(median(d)), ms(percentile(d, 99)), ms(min(d)), ms(max(d))],
        ["`docker run -d` pause, then app in its namespace", len(p), ms(median(p)), ms(percentile(p, 99)), ms(min(p)),
         ms(max(p))],
        ["ratio bridge / docker", *ratio(g, d)],
        ["ratio awsvpc / bridge", *ratio(v, g)],
        ["ceiling: ratio docker pause+app / docker", *ratio(p, d)],
    ]
    print(f"### RunTask latency (poll every {args.poll * 1000:.0f} ms; targets: bridge ≤ 1.3x docker run, "
          "awsvpc ≤ 1.5x bridge)\n")
    print(table(["", "n", "median", "p99", "min", "max"], rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
