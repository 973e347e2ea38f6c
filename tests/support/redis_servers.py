"""Fixtures for real redis-server processes (single server; cluster and sentinel below)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .processes import ServerProcess, free_port, require_binary


class RedisServer(ServerProcess):
    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def start_redis(*extra: str) -> RedisServer:
    binary = require_binary("redis-server", "redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", *extra]
    server = RedisServer("redis", argv, port)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole run; tests keep apart by key prefix."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
