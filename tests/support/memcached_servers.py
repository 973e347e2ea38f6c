"""Fixtures for real memcached processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .processes import ServerProcess, free_port, require_binary


def start_memcached(*extra: str) -> ServerProcess:
    binary = require_binary("memcached", "memcached")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root", "-m", "64", *extra]
    server = ServerProcess("memcached", argv, port)
    server.start()
    return server


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[ServerProcess]:
    """One memcached for the whole run; tests keep apart by key prefix."""
    server = start_memcached()
    try:
        yield server
    finally:
        server.stop()
