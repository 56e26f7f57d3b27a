#!/usr/bin/env python3
"""DescribeTasks throughput of Gantry, side by side with moto's server.

Each server gets a cluster `default`, the task definition `bench-describe` (testapp serve, memory 32, containerPort
8080 with a dynamic host port) and 10 tasks from one RunTask (count 10). Gantry runs them as real containers on its
embedded agent (they are RUNNING during the measurement); moto places them on a registered fake container instance.
Every request is one DescribeTasks of the 10 task ARNs.

Two load generators, each with 16 concurrent clients for --duration seconds (default 10):
  - boto3: 16 threads, one boto3 client each (max_pool_connections 16); counts successful calls.
  - wrk:   16 connections on 2 threads, replaying one pre-signed request (SigV4 signatures stay valid 15 minutes);
           counts responses that are 2xx. Skipped when `wrk` is not installed (Debian package `wrk`).
The Python client saturates long before Gantry does, so the wrk row is the one that measures the server. On a
small machine wrk, the server and (for moto) Python share the cores. Prints a Markdown table on stdout.

    .venv/bin/python bench/describe_tasks_rps.py [--duration 10] [--clients 16] [--tasks 10]
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    TESTAPP, Gantry, Moto, check_prerequisites, client, log, machine_note, percentile, signed_request, table,
)

FAMILY = "bench-describe"
CONTAINERS = [{
    "name": "app", "image": TESTAPP, "memory": 32, "command": ["serve"],
    # No hostPort: a dynamic host port in bridge mode (moto refuses a second task with "hostPort": 0).
    "portMappings": [{"containerPort": 8080}],
}]


def setup_gantry(server, n):
    ecs = client("ecs", server.endpoint)
    server.wait_agent(ecs)
    ecs.register_task_definition(family=FAMILY, containerDefinitions=CONTAINERS)
    response = ecs.run_task(cluster="default", taskDefinition=FAMILY, count=n)
    arns = [t["taskArn"] for t in response["tasks"]]
    if len(arns) != n:
        raise RuntimeError(f"Gantry placed {len(arns)} of {n} tasks: {response.get('failures')}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
        if all(t["lastStatus"] == "RUNNING" for t in tasks):
            return arns
        if any(t["lastStatus"] == "STOPPED" for t in tasks):
            raise RuntimeError("a Gantry task stopped: " + str([t.get("stoppedReason") for t in tasks]))
        time.sleep(0.1)
    raise RuntimeError("Gantry's tasks did not reach RUNNING within 120 s")


def setup_moto(server, n):
    ecs, ec2 = client("ecs", server.endpoint), client("ec2", server.endpoint)
    ecs.create_cluster(clusterName="default")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="m5.large")["Instances"][0]
    document = json.dumps({
        "instanceId": instance["InstanceId"], "region": "us-east-1", "accountId": "123456789012",
        "instanceType": "m5.large", "imageId": ami,
    })
    ecs.register_container_instance(cluster="default", instanceIdentityDocument=document)
    ecs.register_task_definition(family=FAMILY, containerDefinitions=CONTAINERS)
    response = ecs.run_task(cluster="default", taskDefinition=FAMILY, count=n)
    arns = [t["taskArn"] for t in response["tasks"]]
    if len(arns) != n:
        raise RuntimeError(f"moto placed {len(arns)} of {n} tasks: {response.get('failures')}")
    return arns


def boto3_load(endpoint, arns, clients, duration):
    """(successful calls per second, p50 s, p99 s, errors) with `clients` threads for `duration` seconds."""
    per_thread = [client("ecs", endpoint, pool=16) for _ in range(clients)]
    for c in per_thread:  # warm each client's connection pool and check the answer once
        got = c.describe_tasks(cluster="default", tasks=arns)
        assert len(got["tasks"]) == len(arns) and not got["failures"], got["failures"]
    start = threading.Barrier(clients + 1)
    results = [None] * clients

    def worker(i):
        ecs, latencies, errors = per_thread[i], [], 0
        start.wait()
        end = time.perf_counter() + duration
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            try:
                ecs.describe_tasks(cluster="default", tasks=arns)
                latencies.append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001 - counted, not fatal
                errors += 1
        results[i] = (latencies, errors)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(duration + 60)
    elapsed = time.perf_counter() - t0
    latencies = [x for r in results if r for x in r[0]]
    errors = sum(r[1] for r in results if r)
    if not latencies:
        raise RuntimeError(f"no DescribeTasks call succeeded ({errors} errors)")
    return len(latencies) / elapsed, percentile(latencies, 50), percentile(latencies, 99), errors


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers = {{}}
{headers}
"""


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_duration(text):
    """wrk's '1.23ms' / '456.00us' / '1.02s' -> seconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk_load(endpoint, arns, clients, duration):
    """(2xx responses per second, p50 s, p99 s, non-2xx or socket errors) from wrk replaying one signed request."""
    body = {"cluster": "default", "tasks": arns}
    headers, data = signed_request(endpoint, "DescribeTasks", body)
    # Check the signed request once, as wrk will send it.
    check = requests.post(endpoint + "/", data=data, headers=headers, timeout=10)
    if check.status_code != 200 or len(check.json()["tasks"]) != len(arns):
        raise RuntimeError(f"the pre-signed request fails: HTTP {check.status_code} {check.text[:300]}")
    lines = [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items() if k.lower() != "host"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=lua_string(data.decode()), headers="\n".join(lines)))
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(clients), "-d", f"{duration}s", "--latency", "-s", script.name,
             endpoint + "/"],
            capture_output=True, text=True, timeout=duration + 60, check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    total, seconds = int(m.group(1)), parse_duration(m.group(2) + m.group(3))
    bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        bad += sum(int(x) for x in socket_errors.groups())
    p50 = parse_duration(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_duration(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return (total - min(bad, total)) / seconds, p50, p99, bad


def measure(server, setup, n, clients, duration, use_wrk):
    results = {}
    try:
        server.start()
        arns = setup(server, n)
        log(f"{server.name}: {len(arns)} tasks; boto3 load for {duration}s ...")
        results["boto3"] = boto3_load(server.endpoint, arns, clients, duration)
        if use_wrk:
            log(f"{server.name}: wrk load for {duration}s ...")
            results["wrk"] = wrk_load(server.endpoint, arns, clients, duration)
    finally:
        server.close()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement (default 10)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--tasks", type=int, default=10, help="task ARNs per DescribeTasks (default 10)")
    args = parser.parse_args()
    check_prerequisites(need_moto=True)
    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        log("wrk not found (apt-get install wrk): the wrk rows are skipped")

    gantry = measure(Gantry(), setup_gantry, args.tasks, args.clients, args.duration, use_wrk)
    moto = measure(Moto(), setup_moto, args.tasks, args.clients, args.duration, use_wrk)

    def cell(r):
        rps, p50, p99, errors = r
        return f"{rps:,.0f}", f"{p50 * 1000:.1f} / {p99 * 1000:.1f} ms", errors

    rows = []
    names = {"boto3": f"boto3, {args.clients} threads", "wrk": f"wrk, {args.clients} connections"}
    for gen in ["boto3", "wrk"] if use_wrk else ["boto3"]:
        g, m = cell(gantry[gen]), cell(moto[gen])
        rows.append([names[gen], g[0], m[0], f"{gantry[gen][0] / moto[gen][0]:.1f}x", g[1], m[1],
                     f"{g[2]} / {m[2]}"])
    print(f"### DescribeTasks of {args.tasks} tasks, {args.clients} concurrent clients, {args.duration} s "
          "(target: Gantry ≥ 20x moto)\n")
    print(table(["load generator", "Gantry req/s", "moto req/s", "Gantry / moto", "Gantry p50 / p99",
                 "moto p50 / p99", "errors Gantry / moto"], rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
