"""Small helpers of the redis plugin's tests."""

from __future__ import annotations

import uuid


def unique_prefix() -> str:
    """A key prefix no other test uses, so tests can share a server."""
    return f"t{uuid.uuid4().hex[:12]}:"
