#!/usr/bin/env python3
"""RunTask-to-RUNNING latency of Gantry, side by side with `docker run -d` of the same image.

Gantry: the time from the start of the boto3 RunTask call until describe-tasks first shows lastStatus RUNNING
(polled every --poll seconds). The task definition runs `testapp serve` with memory 32 and a dynamic host port
(containerPort 8080, hostPort 0), on the embedded agent of a fresh `gantry server`.
Docker: the wall time of `docker run -d -p 0:8080 -m 32m gantry-test/testapp:latest serve` (it returns once the
container has started).

The two are interleaved (one Gantry task, one docker run, ...) so that load from elsewhere on the machine hits both
alike. Each Gantry task is stopped and each docker container removed before the next sample (not timed). A few
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
    SERVE_CONTAINER, Gantry, check_prerequisites, client, docker, docker_run_serve_argv, log, machine_note, median,
    percentile, table,
)

FAMILY = "bench-latency"
TIMEOUT = 60  # seconds a single task may take to reach RUNNING (or STOPPED) before the benchmark fails


def gantry_sample(ecs, poll):
    """Seconds from RunTask to the first describe-tasks that says RUNNING; returns (seconds, task ARN)."""
    t0 = time.perf_counter()
    response = ecs.run_task(cluster="default", taskDefinition=FAMILY)
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
    samples = {"gantry": [], "docker": []}
    try:
        gantry.start()
        ecs = client("ecs", gantry.endpoint)
        gantry.wait_agent(ecs)
        ecs.register_task_definition(family=FAMILY, containerDefinitions=[SERVE_CONTAINER])
        for i in range(args.warmup + args.n):
            g, arn = gantry_sample(ecs, args.poll)
            gantry_stop(ecs, arn)
            d, cid = docker_sample(label)
            docker("rm", "-f", "-v", cid, check=False)
            if i >= args.warmup:
                samples["gantry"].append(g)
                samples["docker"].append(d)
            step = f"{i + 1 - args.warmup}/{args.n}" if i >= args.warmup else "warm-up"
            log(f"[{step}] gantry {g * 1000:.0f} ms  docker {d * 1000:.0f} ms")
    finally:
        gantry.close()
        ids = docker("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)

    def ms(v):
        return f"{v * 1000:.0f} ms"

    g, d = samples["gantry"], samples["docker"]
    rows = [
        ["Gantry RunTask → RUNNING", len(g), ms(median(g)), ms(percentile(g, 99)), ms(min(g)), ms(max(g))],
        ["`docker run -d`", len(d), ms(median(d)), ms(percentile(d, 99)), ms(min(d)), ms(max(d))],
        ["ratio Gantry / docker", "", f"{median(g) / median(d):.2f}x", f"{percentile(g, 99) / percentile(d, 99):.2f}x",
         "", ""],
    ]
    print(f"### RunTask latency (poll every {args.poll * 1000:.0f} ms; target: Gantry ≤ 1.3x docker run)\n")
    print(table(["", "n", "median", "p99", "min", "max"], rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
