"""`demo`: the README's demo app (`python -m sessionware demo`), running as a real process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from .processes import ServerProcess, free_port


@pytest.fixture
def start_demo() -> Iterator[Callable[[str], str]]:
    """`start_demo(storage)` serves the demo on that storage (a name or URL, as
    `--storage` takes it) in its own process on a free port, and returns its base URL;
    every demo it started stops when the test ends."""
    servers: list[ServerProcess] = []

    def start(storage: str) -> str:
        port = free_port()
        argv = [sys.executable, "-m", "sessionware", "demo", "--port", str(port)]
        server = ServerProcess("demo", [*argv, "--storage", storage], port)
        server.start()
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def demo(start_demo: Callable[[str], str]) -> str:
    """The demo's base URL, on its default storage (memory), for one test."""
    return start_demo("memory")
