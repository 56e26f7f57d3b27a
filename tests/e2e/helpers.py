"""Small helpers shared by the end-to-end tests."""

import subprocess
import time
import uuid

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
