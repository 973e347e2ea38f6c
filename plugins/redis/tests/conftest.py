"""Servers of the redis plugin's own tests, beside the shared ones (redis_server & co.)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.redis_servers import RedisServer, start_redis


@pytest.fixture
def fresh_server() -> Iterator[RedisServer]:
    """A server of this test alone: it may be stopped, paused, restarted or counted."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def admin(fresh_server: RedisServer) -> AsyncIterator[Redis]:
    """A separate client of `fresh_server`, to look and to kill connections from outside."""
    client = Redis(host=fresh_server.host, port=fresh_server.port, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()
