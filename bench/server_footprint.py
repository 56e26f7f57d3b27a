#!/usr/bin/env python3
"""Memory and start-up time of `gantry server`, side by side with moto's server.

Memory: VmRSS and VmHWM (peak RSS) from /proc/PID/status of the server process (Gantry with its embedded agent,
which lives in the same process; containers are not counted), read after --idle seconds (default 3) of idleness:
  - idle: a fresh server (Gantry: its agent registered and connected);
  - with 1,000 tasks: Gantry ran --tasks tasks (default 1000) that exit at once (testapp `exit 0`, memory 6),
    RunTask count 10 at a time with up to --window batches in flight, all STOPPED; moto got the same number of
    RunTask-ed tasks on a fake container instance (moto does not run anything);
  - after a restart of Gantry on that state (SIGTERM, start again on the same data dir).
Start-up: the time from spawning the process until the first answered (HTTP 200) signed ListClusters, the client
sending it in a loop over fresh connections as fast as it can; median over --starts starts (default 10), for Gantry
with an empty data dir, Gantry with the 1,000 stopped tasks, and moto.
Prints Markdown tables on stdout; progress on stderr.

    .venv/bin/python bench/server_footprint.py [--tasks 1000] [--starts 10]
"""

import argparse
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    TESTAPP, Gantry, Moto, check_prerequisites, client, log, machine_note, median, raw_http, rss_kib,
    signed_request, table,
)

FAMILY = "bench-exit"
EXIT_NOW = [{"name": "app", "image": TESTAPP, "memory": 6, "command": ["exit", "0"]}]
LOAD_TIMEOUT = 1800  # seconds the 1,000 tasks may take on a slow machine


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def settle_and_measure(server, idle):
    time.sleep(idle)
    return rss_kib(server.pid)


def load_gantry(ecs, total, window):
    """Runs `total` exit-at-once tasks, 10 per RunTask, at most `window` RunTasks in flight; waits for all STOPPED."""
    ecs.register_task_definition(family=FAMILY, containerDefinitions=EXIT_NOW)
    started, in_flight, reported = 0, [], 0
    deadline = time.monotonic() + LOAD_TIMEOUT
    while started < total or in_flight:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{total} tasks did not run within {LOAD_TIMEOUT}s")
        while started < total and len(in_flight) < window:
            count = min(10, total - started)
            response = ecs.run_task(cluster="default", taskDefinition=FAMILY, count=count)
            arns = [t["taskArn"] for t in response["tasks"]]
            if not arns:  # no room on the instance right now: wait for the batches in flight
                break
            started += len(arns)
            in_flight.append(arns)
        still = []
        for arns in in_flight:
            tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
            if any(t["lastStatus"] != "STOPPED" for t in tasks):
                still.append(arns)
        in_flight = still
        done = started - sum(len(arns) for arns in in_flight)
        if done >= reported + 100:
            reported = done - done % 100
            log(f"  {done} of {total} tasks stopped")
        time.sleep(0.1)


def count_stopped(ecs):
    n, token = 0, None
    for _ in range(1000):
        kwargs = {"nextToken": token} if token else {}
        page = ecs.list_tasks(cluster="default", desiredStatus="STOPPED", maxResults=100, **kwargs)
        n += len(page["taskArns"])
        token = page.get("nextToken")
        if not token:
            break
    return n


def load_moto(server, total):
    ecs, ec2 = client("ecs", server.endpoint), client("ec2", server.endpoint)
    ecs.create_cluster(clusterName="default")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="m5.large")["Instances"][0]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": "us-east-1", "accountId": "123456789012"})
    ecs.register_container_instance(cluster="default", instanceIdentityDocument=document)
    ecs.register_task_definition(family=FAMILY, containerDefinitions=EXIT_NOW)
    placed = 0
    while placed < total:
        got = len(ecs.run_task(cluster="default", taskDefinition=FAMILY, count=min(10, total - placed))["tasks"])
        if not got:
            raise RuntimeError(f"moto placed only {placed} tasks")
        placed += got
    return placed


def first_answer(server, timeout=30):
    """Seconds from spawning `server` until a signed ListClusters is first answered with HTTP 200."""
    headers, body = signed_request(server.endpoint, "ListClusters", {})
    headers["Connection"] = "close"
    payload = raw_http(headers, body)
    t0 = time.perf_counter()
    server.start(wait=False)
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.sendall(payload)
                answer = b""
                while b"\r\n" not in answer:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                if answer.split(b" ", 2)[1:2] == [b"200"]:
                    return time.perf_counter() - t0
        except OSError:
            pass
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
    raise RuntimeError(f"{server.name} did not answer within {timeout}s:\n{server.log_tail()}")


def start_times(make, starts):
    times = []
    for _ in range(starts):
        server = make()
        try:
            times.append(first_answer(server))
        finally:
            server.close()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="stopped tasks in the loaded state (default 1000)")
    parser.add_argument("--window", type=int, default=3, help="RunTask calls (of 10) in flight (default 3)")
    parser.add_argument("--starts", type=int, default=10, help="starts to time (default 10)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading RSS (default 3)")
    args = parser.parse_args()
    check_prerequisites(need_moto=True)

    rss = {}
    loaded = Gantry()
    try:
        log("gantry: idle ...")
        loaded.start()
        ecs = client("ecs", loaded.endpoint)
        loaded.wait_agent(ecs)
        rss["gantry", "idle"] = settle_and_measure(loaded, args.idle)
        log(f"gantry: running {args.tasks} tasks that exit at once ...")
        t0 = time.monotonic()
        load_gantry(ecs, args.tasks, args.window)
        load_seconds = time.monotonic() - t0
        stopped = count_stopped(ecs)
        rss["gantry", "loaded"] = settle_and_measure(loaded, args.idle)
        log(f"gantry: {stopped} stopped tasks in {load_seconds:.0f}s; restarting ...")
        loaded.stop()
        loaded.start()
        loaded.wait_agent(ecs)
        rss["gantry", "restarted"] = settle_and_measure(loaded, args.idle)
        restarted_count = count_stopped(ecs)
        loaded.stop()

        log(f"gantry: {args.starts} starts with {restarted_count} stopped tasks ...")
        loaded_starts = []
        for _ in range(args.starts):
            try:
                loaded_starts.append(first_answer(loaded))
            finally:
                loaded.stop()
    finally:
        loaded.close()

    log(f"gantry: {args.starts} starts with an empty data dir ...")
    empty_starts = start_times(Gantry, args.starts)

    log("moto: idle, then loaded ...")
    moto = Moto()
    try:
        moto.start()
        rss["moto", "idle"] = settle_and_measure(moto, args.idle)
        moto_tasks = load_moto(moto, args.tasks)
        rss["moto", "loaded"] = settle_and_measure(moto, args.idle)
    finally:
        moto.close()
    log(f"moto: {args.starts} starts ...")
    moto_starts = start_times(Moto, args.starts)

    def mem(key):
        if key not in rss:
            return "—", "—"
        return mib(rss[key][0]), mib(rss[key][1])

    rows = []
    for state, label in [
        ("idle", f"idle ({args.idle:g} s after start)"),
        ("loaded", f"{stopped:,} stopped tasks (moto: {moto_tasks:,} tasks)"),
        ("restarted", f"restarted with {restarted_count:,} stopped tasks"),
    ]:
        rows.append([label, *mem(("gantry", state)), *mem(("moto", state))])
    print(f"### Memory (target: Gantry idle under 12 MiB)\n")
    print(table(["state", "Gantry VmRSS", "Gantry VmHWM", "moto VmRSS", "moto VmHWM"], rows))
    print(f"\nRunning the {stopped:,} tasks (RunTask count 10, {args.window} in flight) took {load_seconds:.0f} s.")

    def ms(v):
        return f"{v * 1000:.1f} ms"

    rows = [
        ["Gantry, empty data dir", ms(median(empty_starts)), ms(min(empty_starts)), ms(max(empty_starts))],
        [f"Gantry, {restarted_count:,} stopped tasks", ms(median(loaded_starts)), ms(min(loaded_starts)),
         ms(max(loaded_starts))],
        ["moto_server", ms(median(moto_starts)), ms(min(moto_starts)), ms(max(moto_starts))],
    ]
    print(f"\n### Spawn to first answered ListClusters, {args.starts} starts (target: Gantry under 25 ms)\n")
    print(table(["server", "median", "min", "max"], rows))
    print(f"\n{machine_note()}")


if __name__ == "__main__":
    main()
