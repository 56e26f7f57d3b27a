"""End-to-end harness: drives the real `gantry` binary with boto3, the aws CLI and Docker.

Fixtures:
  gantry      (session) the running server: .endpoint, .port, .data_dir, .proc, .log(),
              .kill9(), .restart(), .reset(), .stop(), .start()
  ecs, logs   boto3 clients for it; every response is checked against the botocore model
  boto_client factory for other services: boto_client("ecr")
  aws         aws(*args) runs the aws CLI with `--output json` and returns the parsed JSON
  aws_run     aws_run(*args) returns the subprocess.CompletedProcess, whatever the exit code
  cli_env     the environment the CLI runs with (for tests that call other programs)
  registry_auth   ("AWS", token) from ECR GetAuthorizationToken, for `requests` (auth=registry_auth) and skopeo
  docker_login    runs `docker login` to the server's registry once; docker push/pull then work

The server is built beforehand (scripts/test does it); GANTRY_BIN overrides its path.
Docker is required: without it the suite fails rather than skips.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shape_check import make_client

REPO = Path(__file__).resolve().parents[2]
GANTRY_BIN = Path(os.environ.get("GANTRY_BIN", REPO / "target" / "release" / "gantry"))
# The aws CLI of the venv running pytest, else the repo's .venv.
AWS_CLI = next(
    (p for p in [Path(sys.executable).parent / "aws", REPO / ".venv" / "bin" / "aws"] if p.exists()),
    REPO / ".venv" / "bin" / "aws",
)
# Gantry puts this label on every task container (DESIGN §4).
TASK_LABEL = "com.amazonaws.ecs.cluster"
HEALTH_TIMEOUT = 30


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


def remove_task_containers(data_dir):
    """Removes the containers of the agents that ran on `data_dir`'s server, and only those: other servers (a
    parallel run, a demo) keep theirs. The agent labels each container with its instance (DESIGN §4)."""
    state = Path(data_dir) / "agent" / "agent-state.json"
    arns = set()
    if state.exists():
        arn = json.loads(state.read_text()).get("containerInstanceArn")
        if arn:
            arns.add(arn)
    for arn in arns:
        ids = docker("ps", "-aq", "--filter", f"label=gantry.instance={arn}").stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
    # The subnets' host networks with nothing left on them (the engine refuses the others).
    for name in docker("network", "ls", "-q", "--filter", "label=gantry.subnet").stdout.split():
        docker("network", "rm", name, check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gantry:
    """One `gantry server` process; restartable on the same port and data dir."""

    def __init__(self, binary, data_dir, log_path, port, extra_args=(), env=None, admin=True, host="127.0.0.1"):
        self.host = host  # the address it listens on and is reached at
        self.extra_args = list(extra_args)
        self.admin = admin
        self.env = env
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.port = port
        self.endpoint = f"http://{host}:{port}"
        self.proc = None

    def url(self, path):
        return self.endpoint + path

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "gantry is already running"
        with open(self.log_path, "a") as log:
            log.write(f"\n===== starting gantry on port {self.port} =====\n")
            log.flush()
            # A session of its own: Ctrl-C on pytest reaches the teardown, not the server directly.
            self.proc = subprocess.Popen(
                [
                    str(self.binary), "server",
                    "--listen", f"{self.host}:{self.port}",
                    "--data-dir", str(self.data_dir),
                    *(["--enable-admin"] if self.admin else []),
                    *self.extra_args,
                ],
                env=None if self.env is None else {**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_healthy()

    def wait_healthy(self, timeout=HEALTH_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gantry exited with {self.proc.returncode} while starting; log:\n{self.log()}")
            try:
                if requests.get(self.url("/_gantry/health"), timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"gantry did not answer /_gantry/health with 200 within {timeout}s; log:\n{self.log()}")

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self):
        """Kills the server with SIGKILL (crash test); `restart()` brings it back."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        """Stops the server if it runs, then starts it again on the same port and data dir."""
        self.stop()
        self.start()

    def reset(self):
        """Forgets all state, through the admin endpoint (`--enable-admin`)."""
        response = requests.post(self.url("/_gantry/reset"), timeout=60)
        assert response.status_code in (200, 204), f"reset: HTTP {response.status_code}: {response.text}"

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"


_running = None  # the session's Gantry, for the failure report hook below


@pytest.fixture(scope="session")
def gantry(tmp_path_factory):
    global _running
    if not GANTRY_BIN.exists():
        pytest.fail(f"{GANTRY_BIN} not found: build it with `cargo build --release -p gantry`")
    try:
        docker("info")
    except (OSError, subprocess.SubprocessError) as e:
        pytest.fail(f"docker is required by the e2e tests and does not answer: {e}")
    base = tmp_path_factory.mktemp("gantry")
    server = Gantry(GANTRY_BIN, base / "data", base / "gantry.log", free_port())
    _running = server
    try:
        server.start()
        yield server
    finally:
        # Also when start() failed: a server that never got healthy may still be running.
        server.stop()
        _running = None
        remove_task_containers(server.data_dir)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Adds the tail of the server log to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _running is not None:
        tail = "\n".join(_running.log().splitlines()[-200:])
        report.sections.append(("gantry server log (last 200 lines)", tail))


@pytest.fixture
def boto_client(gantry):
    """boto_client("ecr") -> a checked boto3 client for Gantry."""
    return lambda service: make_client(service, gantry.endpoint)


@pytest.fixture
def ecs(boto_client):
    return boto_client("ecs")


@pytest.fixture
def logs(boto_client):
    return boto_client("logs")


@pytest.fixture(scope="session")
def cli_env(gantry):
    env = {
        k: v
        for k, v in os.environ.items()
        # A developer's own profile, session or per-service endpoint must not leak in.
        if not k.startswith("AWS_ENDPOINT_URL_") and k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")
    }
    env.update(
        AWS_ENDPOINT_URL=gantry.endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_PAGER="",
        AWS_MAX_ATTEMPTS="1",
    )
    return env


@pytest.fixture(scope="session")
def aws_run(cli_env):
    """aws_run("ecs", "describe-clusters", "--clusters", "x") -> CompletedProcess (text), any exit code."""

    def run(*args, timeout=300):
        return subprocess.run(
            [str(AWS_CLI), *map(str, args), "--output", "json"],
            env=cli_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def aws(aws_run):
    """aws("ecs", "list-clusters") -> parsed JSON output (None when it prints nothing); fails the
    test when the CLI exits non-zero."""

    def run(*args, timeout=300):
        result = aws_run(*args, timeout=timeout)
        if result.returncode != 0:
            pytest.fail(f"aws {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
        return json.loads(result.stdout) if result.stdout.strip() else None

    return run


@pytest.fixture(scope="session")
def registry_auth(gantry):
    """("AWS", token): the registry's login from ECR GetAuthorizationToken, usable as `requests`' auth=."""
    import base64

    data = make_client("ecr", gantry.endpoint).get_authorization_token()["authorizationData"][0]
    user, token = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return (user, token)


@pytest.fixture(scope="session")
def docker_login(gantry, registry_auth):
    """Logs docker in to the registry (as `aws ecr get-login-password | docker login` does); returns the host."""
    host = f"localhost:{gantry.port}"
    subprocess.run(
        ["docker", "login", "--username", registry_auth[0], "--password-stdin", host],
        input=registry_auth[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return host
