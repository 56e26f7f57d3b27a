"""Small helpers shared by the end-to-end tests."""

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest


def unique(prefix):
    """A resource name no other test uses, so tests can share one server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def container(name="web", image="gantry-test/testapp:latest", memory=64, **extra):
    c = {"name": name, "image": image, "memory": memory}
    c.update(extra)
    return c


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, check=check)


def wait_for(probe, timeout, what, interval=0.2):
    """Calls `probe()` until it returns something truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Agent:
    """One `gantry agent` process with its own data dir; restartable."""

    def __init__(self, server, base, name, *args, token=None, wrapper=()):
        self.server = server
        self.wrapper = list(wrapper)  # runs the agent through it, e.g. `ip netns exec NS`
        self.name = name
        self.args = list(args)
        self.token = token
        self.data_dir = Path(base) / name
        self.log_path = Path(base) / f"{name}.log"
        self.proc = None

    def command(self, token=None):
        from conftest import GANTRY_BIN

        return [
            *self.wrapper,
            str(GANTRY_BIN), "agent",
            "--server", self.server.endpoint,
            "--token", token or self.token,
            "--data-dir", str(self.data_dir),
            *self.args,
        ]

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, f"agent {self.name} is already running"
        with open(self.log_path, "a") as log:
            log.write(f"\n===== starting agent {self.name} =====\n")
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def arn(self):
        """The container instance ARN the agent keeps in its data dir (None before it registered)."""
        state = self.data_dir / "agent-state.json"
        if not state.exists():
            return None
        return json.loads(state.read_text()).get("containerInstanceArn")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"


def remove_containers_of(arn):
    if arn:
        ids = docker("ps", "-aq", "--filter", f"label=gantry.instance={arn}").stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
