"""CloudWatch Logs fed by tasks: containers whose logConfiguration is `awslogs` have their stdout and stderr stored
as log events in stream `prefix/container-name/task-id`, readable with GetLogEvents (forward tokens),
FilterLogEvents (filter patterns) and the aws CLI while the container still writes; retention values."""

import time
from collections import Counter

import botocore.exceptions
import pytest

from helpers import container, unique, wait_for



def awslogs(group, prefix="app", create_group=True):
    options = {"awslogs-group": group, "awslogs-region": "us-east-1"}
    if prefix is not None:
        options["awslogs-stream-prefix"] = prefix
    if create_group:
        options["awslogs-create-group"] = "true"
    return {"logDriver": "awslogs", "options": options}


class Tasks:
    """Runs tasks in `default` and stops them when the test ends."""

    def __init__(self, ecs):
        self.ecs = ecs
        self.arns = []

    def run(self, *containers):
        td = self.ecs.register_task_definition(family=unique("logs"), containerDefinitions=list(containers))
        out = self.ecs.run_task(taskDefinition=td["taskDefinition"]["taskDefinitionArn"])
        assert out["failures"] == [], out["failures"]
        arn = out["tasks"][0]["taskArn"]
        self.arns.append(arn)
        return arn

    def describe(self, arn):
        return self.ecs.describe_tasks(tasks=[arn])["tasks"][0]

    def wait_status(self, arn, status, timeout=30):
        return wait_for(lambda: (t := self.describe(arn))["lastStatus"] == status and t, timeout, status)

    def cleanup(self):
        for arn in self.arns:
            try:
                if self.describe(arn)["desiredStatus"] != "STOPPED":
                    self.ecs.stop_task(task=arn)
            except botocore.exceptions.ClientError:
                pass
        for arn in self.arns:
            try:
                self.wait_status(arn, "STOPPED", timeout=60)
            except (botocore.exceptions.ClientError, pytest.fail.Exception):
                pass


def agent_connected(ecs):
    """The embedded agent's container instance ARN once it is registered and connected, else None (the server
    answers its health check before the agent has registered, and creates `default` only then)."""
    try:
        arns = ecs.list_container_instances()["containerInstanceArns"]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "ClusterNotFoundException":
            return None
        raise
    if len(arns) != 1:
        return None
    ci = ecs.describe_container_instances(containerInstances=arns)["containerInstances"][0]
    return ci["agentConnected"] and arns[0]


@pytest.fixture
def tasks(ecs):
    wait_for(lambda: agent_connected(ecs), 30, "the embedded agent to register")
    t = Tasks(ecs)
    yield t
    t.cleanup()


def task_id(arn):
    return arn.rsplit("/", 1)[1]


def all_events(logs, group, stream):
    """Every event of a stream, from the head, following forward tokens until the token repeats."""
    events, token, pages = [], None, 0
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": 7}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        pages += 1
        assert len(page["events"]) <= 7
        events += page["events"]
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            return events, pages
        token = page["nextForwardToken"]
        assert pages < 1000


def messages(logs, group, stream):
    try:
        return [e["message"] for e in all_events(logs, group, stream)[0]]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise


def test_stdout_and_stderr_are_stored_in_the_task_stream(tasks, logs):
    group = f"/ecs/{unique('logs')}"
    arn = tasks.run(
        container(
            "web",
            entryPoint=["/bin/sh", "-c"],
            command=["echo to-stdout; sleep 0.1; /testapp stderr to-stderr; sleep 0.1; echo done"],
            logConfiguration=awslogs(group, prefix="svc"),
        )
    )
    stream = f"svc/web/{task_id(arn)}"
    found = wait_for(lambda: (m := messages(logs, group, stream)) and len(m) >= 3 and m, 30, "the log lines")
    # Docker stamps each stream's lines as it reads them, so only the order within a stream is certain.
    assert sorted(found) == ["done", "to-stderr", "to-stdout"], found
    assert found.index("to-stdout") < found.index("done"), found

    # The group was created by the driver (awslogs-create-group), the stream by the task.
    groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]

    events, _ = all_events(logs, group, stream)
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    now_ms = time.time() * 1000
    for e in events:
        assert now_ms - 120_000 < e["timestamp"] <= e["ingestionTime"] <= now_ms + 1000, e
    assert tasks.wait_status(arn, "STOPPED")["containers"][0]["exitCode"] == 0


def test_an_existing_group_without_awslogs_create_group(tasks, logs):
    group = f"/ecs/{unique('pre')}"
    logs.create_log_group(logGroupName=group)
    arn = tasks.run(
        container("web", command=["echo", "hello", "group"], logConfiguration=awslogs(group, create_group=False))
    )
    stream = f"app/web/{task_id(arn)}"
    assert wait_for(lambda: messages(logs, group, stream), 30, "the log line") == ["hello group"]


def test_without_a_prefix_the_stream_is_named_after_the_container_id(tasks, logs):
    group = f"/ecs/{unique('noprefix')}"
    arn = tasks.run(container("web", command=["echo", "hello"], logConfiguration=awslogs(group, prefix=None)))
    task = tasks.wait_status(arn, "STOPPED")
    container_id = task["containers"][0]["runtimeId"]

    def streams():
        try:
            return [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise

    assert wait_for(streams, 30, "the stream") == [container_id]
    assert messages(logs, group, container_id) == ["hello"]


def test_interleaved_stdout_and_stderr_lose_no_line(tasks, logs):
    # Two writers at once, one on stdout and one on stderr: Docker's log copiers stamp each line when they read
    # it, then append it to the container's log, so a line stamped earlier is sometimes stored after a later one.
    group = f"/ecs/{unique('mixed')}"
    rounds, lines = 20, 1000
    script = (
        f"for r in $(seq 1 {rounds}); do /testapp log {lines} & /testapp log {lines} >&2 & wait; done; echo finished"
    )
    arn = tasks.run(container("web", entryPoint=["/bin/sh", "-c"], command=[script], logConfiguration=awslogs(group)))
    try:
        check_every_line_arrived(tasks, logs, arn, group, rounds, lines)
    finally:
        # 40,000 events: gone with the group, rather than left for later tests (and admin resets) to carry.
        logs.delete_log_group(logGroupName=group)


def check_every_line_arrived(tasks, logs, arn, group, rounds, lines):
    tasks.wait_status(arn, "STOPPED")
    wanted = Counter({f"line {i}": 2 * rounds for i in range(1, lines + 1)})
    wanted["finished"] = 1

    def stored():
        events, token = [], None
        while True:
            kwargs = {"logGroupName": group, "logStreamName": f"app/web/{task_id(arn)}", "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            events += page["events"]
            if page["nextForwardToken"] == token:
                return Counter(e["message"] for e in events)
            token = page["nextForwardToken"]

    # The last batches may still be on their way when the task is reported STOPPED.
    deadline = time.monotonic() + 30
    got = stored()
    while got != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        got = stored()
    missing = wanted - got
    assert not missing, f"{sum(missing.values())} of {sum(wanted.values())} lines are missing"
    assert got == wanted


def test_get_log_events_pages_forward_and_backward(tasks, logs):
    group = f"/ecs/{unique('pages')}"
    arn = tasks.run(container("web", command=["log", "30"], logConfiguration=awslogs(group)))
    stream = f"app/web/{task_id(arn)}"
    wanted = [f"line {i}" for i in range(1, 31)]
    wait_for(lambda: messages(logs, group, stream) == wanted, 30, "30 lines")
    events, pages = all_events(logs, group, stream)
    assert [e["message"] for e in events] == wanted
    assert pages == 6  # five pages of 7, 7, 7, 7, 2 events, and the empty one with the repeated token

    # Without startFromHead: the newest events, and backward tokens to the older ones.
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10)
    assert [e["message"] for e in page["events"]] == wanted[20:]
    older = logs.get_log_events(
        logGroupName=group, logStreamName=stream, limit=10, nextToken=page["nextBackwardToken"]
    )
    assert [e["message"] for e in older["events"]] == wanted[10:20]


def test_filter_log_events_with_a_pattern(tasks, logs, aws):
    group = f"/ecs/{unique('filter')}"
    # (A pause between lines: see test_interleaved_stdout_and_stderr_lose_no_line.)
    script = ("echo 'INFO starting'; sleep 0.05; echo 'ERROR disk full' >&2; sleep 0.05; echo 'INFO working'; "
              "echo 'ERROR timeout'; echo end")
    arns = [
        tasks.run(container(name, entryPoint=["/bin/sh", "-c"], command=[script], logConfiguration=awslogs(group)))
        for name in ("one", "two")
    ]
    streams = [f"app/one/{task_id(arns[0])}", f"app/two/{task_id(arns[1])}"]
    for stream in streams:
        wait_for(lambda: len(messages(logs, group, stream)) == 5, 30, f"the lines of {stream}")

    out = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")
    assert sorted((e["logStreamName"], e["message"]) for e in out["events"]) == sorted(
        (s, m) for s in streams for m in ("ERROR disk full", "ERROR timeout")
    )
    assert len({e["eventId"] for e in out["events"]}) == 4

    # Terms must all appear; a quoted phrase is one term; `-` excludes.
    out = logs.filter_log_events(logGroupName=group, filterPattern='"disk full"', logStreamNamePrefix="app/two/")
    assert [(e["logStreamName"], e["message"]) for e in out["events"]] == [(streams[1], "ERROR disk full")]
    out = logs.filter_log_events(logGroupName=group, filterPattern="INFO -starting", logStreamNames=[streams[0]])
    assert [e["message"] for e in out["events"]] == ["INFO working"]

    # The same through the CLI.
    out = aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "timeout")
    assert sorted(e["message"] for e in out["events"]) == ["ERROR timeout", "ERROR timeout"]


def test_cli_follows_new_lines_as_they_come(tasks, aws):
    """What `aws logs tail --follow` does (the CLI v1 has no `tail`): FilterLogEvents again and again from the
    newest timestamp seen, keeping the events not seen yet."""
    group = f"/ecs/{unique('follow')}"
    count = 40
    begin_ms = int(time.time() * 1000)
    arn = tasks.run(container("web", command=["log", str(count), "--interval-ms", "200"],
                              logConfiguration=awslogs(group)))
    stream = f"app/web/{task_id(arn)}"
    seen, polls_with_news, late = {}, 0, []
    start_ms, previous_call_ms = begin_ms, None
    deadline = time.monotonic() + 40
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only {len(seen)} of {count} lines after 40 s"
        call_ms = time.time() * 1000
        out = aws_filter(aws, group, start_ms)
        if out is None:  # the group does not exist yet
            continue
        new = [e for e in out["events"] if e["eventId"] not in seen]
        if new:
            polls_with_news += 1
        for e in new:
            assert e["logStreamName"] == stream
            seen[e["eventId"]] = e
            start_ms = max(start_ms, e["timestamp"])
            # Late: stored more than 2 s after it was written, or already 2 s old when an earlier call (which did
            # not show it) started. The CLI's own start-up time (most of a call) does not count against the server.
            if e["ingestionTime"] - e["timestamp"] > 2000 or (
                previous_call_ms is not None and previous_call_ms - e["timestamp"] > 2000
            ):
                late.append((e["message"], e["timestamp"], e["ingestionTime"], previous_call_ms))
        previous_call_ms = call_ms
    ordered = sorted(seen.values(), key=lambda e: (e["timestamp"], e["eventId"]))
    assert [e["message"] for e in ordered] == [f"line {i}" for i in range(1, count + 1)]
    # The lines came in over many polls while the container was writing them (8 s of output), not at the end.
    assert polls_with_news >= 3, polls_with_news
    assert late == []


def aws_filter(aws, group, start_ms):
    try:
        return aws("logs", "filter-log-events", "--log-group-name", group, "--start-time", str(start_ms))
    except pytest.fail.Exception as e:
        if "ResourceNotFoundException" in str(e):
            time.sleep(0.2)
            return None
        raise


def test_retention_policy_values(logs, aws_run):
    group = unique("retention")
    logs.create_log_group(logGroupName=group)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_retention_policy(logGroupName=group, retentionInDays=2)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]

    result = aws_run("logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "2")
    assert result.returncode != 0 and "InvalidParameterException" in result.stderr, result.stderr

    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 1
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
