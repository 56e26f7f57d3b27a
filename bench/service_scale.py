#!/usr/bin/env python3
"""A 100-task service on real Docker, side by side with `docker run -d` of 100 containers of the same image.

Gantry: CreateService with desiredCount N on a fresh `gantry server` and its embedded agent (the task definition
runs `testapp serve`, memory 32, a dynamic host port for containerPort 8080), then describe-services every 100 ms:
the time until runningCount reaches N, and until the deployment's rolloutState is COMPLETED (ECS's "steady state":
every task RUNNING and healthy; a task without health checks counts healthy after 3 s RUNNING).
Docker: the wall time of N `docker run -d -p 0:8080 -m 32m gantry-test/testapp:latest serve`, one after the other
as a script would, and with --parallel at a time.

Each side's containers are removed before the other runs. Prints a Markdown table on stdout; progress on stderr.

    .venv/bin/python bench/service_scale.py [--tasks 100] [--parallel 8]
"""

import argparse
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    SERVE_CONTAINER, Gantry, check_prerequisites, client, docker, docker_run_serve_argv, log, machine_note, table,
)

FAMILY = "bench-service"
TIMEOUT = 600  # seconds the service may take to reach its steady state before the benchmark fails


def gantry_service(ecs, n):
    """Seconds from CreateService to runningCount == n, and to the rollout COMPLETED."""
    t0 = time.perf_counter()
    ecs.create_service(cluster="default", serviceName="web", taskDefinition=FAMILY, desiredCount=n)
    running_at = None
    while True:
        service = ecs.describe_services(cluster="default", services=["web"])["services"][0]
        elapsed = time.perf_counter() - t0
        if running_at is None and service["runningCount"] >= n:
            running_at = elapsed
            log(f"gantry: {n} running after {elapsed:.1f} s")
        primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
        if running_at is not None and primary.get("rolloutState") == "COMPLETED":
            return running_at, elapsed
        if elapsed > TIMEOUT:
            raise RuntimeError(f"no steady state after {TIMEOUT}s: {service['runningCount']} running")
        time.sleep(0.1)


def gantry_cleanup(ecs, gantry):
    ecs.delete_service(cluster="default", service="web", force=True)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if not ecs.list_tasks(cluster="default", desiredStatus="RUNNING")["taskArns"]:
            break
        time.sleep(0.5)
    gantry.remove_containers()


def docker_runs(n, parallel, label):
    """Seconds of wall time to `docker run -d` n containers, `parallel` at a time."""
    argv = docker_run_serve_argv(label)

    def one(_):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
        if out.returncode != 0:
            raise RuntimeError(f"docker run failed: {out.stderr}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - t0


def docker_cleanup(label):
    ids = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
    for i in range(0, len(ids), 100):
        docker("rm", "-f", "-v", *ids[i:i + 100], check=False, timeout=300)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks / containers (default 100)")
    parser.add_argument("--parallel", type=int, default=8, help="concurrent docker runs in the second row (default 8)")
    args = parser.parse_args()
    check_prerequisites()
    n = args.tasks

    label = f"gantry.bench={uuid.uuid4().hex}"
    try:
        log(f"docker: {n} x docker run -d, one at a time")
        sequential = docker_runs(n, 1, label)
        docker_cleanup(label)
        log(f"docker: {n} x docker run -d, {args.parallel} at a time")
        parallel = docker_runs(n, args.parallel, label)
    finally:
        docker_cleanup(label)

    gantry = Gantry()
    try:
        gantry.start()
        ecs = client("ecs", gantry.endpoint)
        gantry.wait_agent(ecs)
        ecs.register_task_definition(family=FAMILY, containerDefinitions=[SERVE_CONTAINER])
        log(f"gantry: service of {n} tasks")
        running, steady = gantry_service(ecs, n)
        gantry_cleanup(ecs, gantry)
    finally:
        gantry.close()

    rows = [
        [f"Gantry service, desiredCount {n}: CreateService → runningCount {n}", f"{running:.1f} s",
         f"{running / sequential:.2f}x"],
        ["same, → rollout COMPLETED (steady state)", f"{steady:.1f} s", f"{steady / sequential:.2f}x"],
        [f"`docker run -d` x {n}, one at a time", f"{sequential:.1f} s", "1.00x"],
        [f"`docker run -d` x {n}, {args.parallel} at a time", f"{parallel:.1f} s", f"{parallel / sequential:.2f}x"],
    ]
    print(f"### {n}-task service on real Docker\n")
    print(table(["", "wall time", "vs docker run one at a time"], rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
