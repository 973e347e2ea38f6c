"""Fixtures for real memcached processes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from .processes import ServerProcess, free_port, require_binary


def start_memcached(*extra: str) -> ServerProcess:
    binary = require_binary("memcached", "memcached")
    port = free_port()
    # memcached's default item limit (-I 1m) counts the key and header too, so the 1 MiB
    # value of the conformance suite needs a larger one; 2 MiB still overflows it.
    limits = ["-m", "64", "-I", "2m"]
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root", *limits, *extra]
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


@pytest.fixture(scope="session")
def memcached_two() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two memcached for the whole run, keys spread over both; tests keep apart by prefix."""
    with two_memcached() as pair:
        yield pair


@pytest.fixture
def memcached_pair() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two memcached processes of this test's own, free to be stopped, paused or flushed."""
    with two_memcached() as pair:
        yield pair


@contextlib.contextmanager
def two_memcached() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two memcached processes, both stopped at the end (the first too when the second fails
    to start)."""
    first = start_memcached()
    try:
        second = start_memcached()
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        stop_all(first, second)


def stop_all(*servers: ServerProcess) -> None:
    """Stop servers side by side: memcached takes up to a second to notice SIGTERM."""
    threads = [threading.Thread(target=server.stop) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
