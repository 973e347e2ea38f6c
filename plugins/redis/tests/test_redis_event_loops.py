"""One storage used from one event loop after another: its connections follow the loop.

The conformance suite shows that successive `asyncio.run`s work in every mode; these tests
look at the connections on the server, and at loops that end in other ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis, RedisCluster
from sessionware.testing import StorageCalls
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisClusterServers, RedisServer

from .support import unique_prefix

DEADLINE = 30.0


async def connections(admin: Redis) -> int:
    """Client connections on the server besides the admin's own."""
    return len(await admin.client_list()) - 1


async def write_and_read(backend: StorageCalls, value: bytes) -> bytes | None:
    await asyncio.gather(*(backend.set(f"k{i}", value, 60) for i in range(5)))
    return await backend.get("k0")


def in_a_new_loop(backend: StorageCalls, value: bytes) -> bytes | None:
    return asyncio.run(write_and_read(backend, value))


@pytest_asyncio.fixture
async def backend(fresh_server: RedisServer) -> AsyncIterator[StorageCalls]:
    calls = StorageCalls(RedisStorage(url=fresh_server.url), "redis")
    try:
        yield calls
    finally:
        await calls.close()


async def test_a_loop_that_ends_closes_its_connections(backend: StorageCalls, admin: Redis) -> None:
    async with asyncio.timeout(DEADLINE):
        assert await asyncio.to_thread(in_a_new_loop, backend, b"one") == b"one"
        assert await connections(admin) == 0
        assert await asyncio.to_thread(in_a_new_loop, backend, b"two") == b"two"
        assert await connections(admin) == 0
        assert await write_and_read(backend, b"three") == b"three"
        assert await connections(admin) > 0


async def test_a_loop_closed_without_shutting_down_is_left_behind(
    backend: StorageCalls, admin: Redis
) -> None:
    """`loop.close()` alone runs nothing on the way out: the next loop drops its
    connections, and asyncio closes their sockets when it collects them."""

    def in_a_loop_closed_bluntly() -> bytes | None:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(write_and_read(backend, b"blunt"))
        finally:
            loop.close()

    async with asyncio.timeout(DEADLINE):
        assert await asyncio.to_thread(in_a_loop_closed_bluntly) == b"blunt"
        assert await write_and_read(backend, b"after") == b"after"
        assert await asyncio.to_thread(in_a_new_loop, backend, b"again") == b"again"


async def test_a_loop_that_still_runs_closes_what_it_left(
    backend: StorageCalls, admin: Redis
) -> None:
    """This test's loop, used, then waiting for another thread's loop, then used again."""
    async with asyncio.timeout(DEADLINE):
        assert await write_and_read(backend, b"here") == b"here"
        assert await connections(admin) > 0
        assert await asyncio.to_thread(in_a_new_loop, backend, b"there") == b"there"
        # The other loop's connections closed with it, this loop's own when it woke up.
        for _ in range(100):
            if await connections(admin) == 0:
                break
            await asyncio.sleep(0.02)
        assert await connections(admin) == 0
        assert await write_and_read(backend, b"back") == b"back"


async def test_a_given_client_used_on_another_loop_first(fresh_server: RedisServer) -> None:
    """The client's idle connections of the other loop are dropped; it stays open."""
    client = Redis.from_url(fresh_server.url)
    try:
        await asyncio.to_thread(asyncio.run, client.ping())  # a connection of a dead loop
        backend = StorageCalls(RedisStorage(client=client, key_prefix=unique_prefix()), "r")
        async with asyncio.timeout(DEADLINE):
            assert await write_and_read(backend, b"v") == b"v"
            assert await asyncio.to_thread(in_a_new_loop, backend, b"w") == b"w"
            assert await write_and_read(backend, b"x") == b"x"
            await backend.close()
            assert await client.ping()
    finally:
        await client.aclose()


async def test_a_given_cluster_client_follows_the_loops(
    redis_cluster: RedisClusterServers,
) -> None:
    client = RedisCluster(host=redis_cluster.host, port=redis_cluster.port)
    try:
        await client.initialize()  # the slot map and connections of this loop
        backend = StorageCalls(RedisStorage(client=client, key_prefix=unique_prefix()), "r")
        async with asyncio.timeout(DEADLINE):
            assert await write_and_read(backend, b"v") == b"v"
            assert await asyncio.to_thread(in_a_new_loop, backend, b"w") == b"w"
            assert await write_and_read(backend, b"x") == b"x"
            await backend.reset()
            await backend.close()
            assert await client.ping()
    finally:
        await client.aclose()
