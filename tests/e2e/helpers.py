"""Small helpers shared by the end-to-end tests."""

import uuid


def unique(prefix):
    """A resource name no other test uses, so tests can share one server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def container(name="web", image="gantry-test/testapp:latest", memory=64, **extra):
    c = {"name": name, "image": image, "memory": memory}
    c.update(extra)
    return c
