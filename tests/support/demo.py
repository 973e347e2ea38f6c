"""`demo`: the README's demo app (`python -m sessionware demo`), running as a real process."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from .processes import ServerProcess, free_port


@pytest.fixture
def demo() -> Iterator[str]:
    """The demo's base URL, served by its own process on a free port for one test."""
    port = free_port()
    server = ServerProcess(
        "demo", [sys.executable, "-m", "sessionware", "demo", "--port", str(port)], port
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
