"""Shared helpers for the benchmarks: start/stop a Gantry server or a moto server on 127.0.0.1, boto3 clients,
pre-signed raw requests, statistics and Markdown tables.

Everything talks to 127.0.0.1 only. Each server is started on a free port with a fresh temporary data dir, and
stopped (and its task containers removed) by `close()`, also when the benchmark fails.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[1]
GANTRY_BIN = Path(os.environ.get("GANTRY_BIN", REPO / "target" / "release" / "gantry"))
VENV_BIN = REPO / ".venv" / "bin"
MOTO_SERVER = os.environ.get("MOTO_SERVER") or str(
    VENV_BIN / "moto_server" if (VENV_BIN / "moto_server").exists() else "moto_server"
)
TESTAPP = "gantry-test/testapp:latest"

# The HTTP server of the test image on a dynamic host port, with 32 MiB: as a task definition's container, and as
# the `docker run` that does the same.
SERVE_CONTAINER = {
    "name": "app", "image": TESTAPP, "memory": 32, "command": ["serve"],
    "portMappings": [{"containerPort": 8080, "hostPort": 0}],
}


def docker_run_serve_argv(label):
    """`docker run -d` of SERVE_CONTAINER, labelled so that the run's containers can be removed."""
    return ["docker", "run", "-d", "--label", label, "-p", "0:8080", "-m", "32m", TESTAPP, "serve"]
REGION = "us-east-1"
KEY_ID, SECRET = "test", "test"
ECS_TARGET = "AmazonEC2ContainerServiceV20141113"


def log(*args):
    """Progress goes to stderr; the table is the only thing on stdout."""
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker(*args, check=True, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def client(service, endpoint, pool=10):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(max_pool_connections=pool, retries={"max_attempts": 1, "mode": "standard"}),
    )


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process, in KiB, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out["VmRSS"], out["VmHWM"]


class Server:
    """A server process of ours: `start()`, `wait_ready()`, `stop()`; `pid`, `endpoint`."""

    name = "server"

    def __init__(self, port=None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name}-", suffix=".log", delete=False)

    @property
    def pid(self):
        return self.proc.pid

    def argv(self):
        raise NotImplementedError

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def ready(self):
        raise NotImplementedError

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                if self.ready():
                    return
            except (requests.RequestException, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout}s; log:\n{self.log_tail()}")

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines=40):
        try:
            return "\n".join(Path(self.log_file.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self):
        self.stop()
        try:
            os.unlink(self.log_file.name)
        except OSError:
            pass


class Gantry(Server):
    """`gantry server` with the embedded agent, admin enabled, a fresh data dir (kept across restarts)."""

    name = "gantry"

    def __init__(self, port=None, extra_args=()):
        super().__init__(port)
        self.data_dir = Path(tempfile.mkdtemp(prefix="bench-gantry-"))
        self.extra_args = list(extra_args)

    def argv(self):
        return [
            str(GANTRY_BIN), "server",
            "--listen", f"127.0.0.1:{self.port}",
            "--data-dir", str(self.data_dir),
            "--enable-admin",
            *self.extra_args,
        ]

    def ready(self):
        return requests.get(self.endpoint + "/_gantry/health", timeout=1).status_code == 200

    def instance_arn(self):
        state = self.data_dir / "agent" / "agent-state.json"
        if state.exists():
            return json.loads(state.read_text()).get("containerInstanceArn")
        return None

    def wait_agent(self, ecs, cluster="default", timeout=60):
        """Waits until the embedded agent's container instance is registered and connected."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
                if arns:
                    ci = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
                    if any(c.get("agentConnected") for c in ci["containerInstances"]):
                        return
            except Exception:  # noqa: BLE001 - the cluster may not exist yet
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the embedded agent did not connect within {timeout}s; log:\n{self.log_tail()}")

    def remove_containers(self):
        """Removes the containers of this server's agent, and only those (label gantry.instance=<ARN>)."""
        arn = self.instance_arn()
        if not arn:
            return
        ids = docker("ps", "-aq", "--filter", f"label=gantry.instance={arn}", check=False).stdout.split()
        for i in range(0, len(ids), 100):
            docker("rm", "-f", "-v", *ids[i:i + 100], check=False, timeout=300)

    def close(self):
        self.stop()
        self.remove_containers()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        super().close()


class Moto(Server):
    """`moto_server` on 127.0.0.1 (in-memory state)."""

    name = "moto"

    def argv(self):
        return [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self):
        return requests.get(self.endpoint + "/moto-api/", timeout=1).status_code == 200


def signed_request(endpoint, operation, body, service="ecs", target_prefix=ECS_TARGET):
    """A SigV4-signed JSON 1.1 request: (headers dict, body bytes). Valid for 15 minutes and replayable."""
    data = json.dumps(body).encode()
    host = endpoint.split("://", 1)[1]
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=data,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"{target_prefix}.{operation}",
            "Host": host,
        },
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), service, REGION).add_auth(request)
    return dict(request.headers.items()), data


def raw_http(headers, body):
    """The request as bytes on the wire (HTTP/1.1, keep-alive)."""
    lines = ["POST / HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def table(header, rows):
    """A Markdown table as a string."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def machine_note():
    """One line that says what the numbers were taken on."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return f"{os.cpu_count()} cores, load average {load:.2f} at the end of the run"


def check_prerequisites(need_moto=False):
    if not GANTRY_BIN.exists():
        sys.exit(f"{GANTRY_BIN} not found: build it with `cargo build --release -p gantry`")
    if docker("image", "inspect", TESTAPP, check=False).returncode != 0:
        sys.exit(f"image {TESTAPP} missing: run scripts/build-test-images")
    if need_moto and shutil.which(MOTO_SERVER) is None and not Path(MOTO_SERVER).exists():
        sys.exit("moto_server not found: .venv/bin/pip install 'moto[server]'")
