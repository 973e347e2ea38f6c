"""What the redis storage sends, what reset leaves alone, and how the pool behaves under load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import ConnectionPool, Redis
from sessionware.testing import StorageCalls
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisServer

from .support import unique_prefix


@pytest_asyncio.fixture
async def backend(redis_server: RedisServer) -> AsyncIterator[StorageCalls]:
    facade = StorageCalls(RedisStorage(url=redis_server.url, key_prefix="sw-test:"), "redis")
    try:
        yield facade
    finally:
        await facade.close()


@pytest_asyncio.fixture
async def shared_admin(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def command_counts(admin: Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT, leaving out the admin's own."""
    stats = await admin.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: n for name, n in counts.items() if name not in ("info", "config|resetstat")}


async def test_a_load_is_one_get_and_a_save_one_set(
    fresh_server: RedisServer, admin: Redis
) -> None:
    backend = StorageCalls(RedisStorage(url=fresh_server.url), "redis")
    try:
        await backend.get("warm-up")  # the connection's own handshake is not counted
        await admin.config_resetstat()
        await backend.set("id", b"data", 60)
        assert await command_counts(admin) == {"set": 1}
        await admin.config_resetstat()
        assert await backend.get("id") == b"data"
        assert await command_counts(admin) == {"get": 1}
        await admin.config_resetstat()
        await backend.delete("id")
        assert await command_counts(admin) == {"unlink": 1}
    finally:
        await backend.close()


async def test_keys_carry_the_prefix_and_the_ttl_in_milliseconds(
    backend: StorageCalls, shared_admin: Redis
) -> None:
    await backend.set("ttl", b"x", 1.2345)
    pttl = await shared_admin.pttl("sw-test:ttl")
    assert 1000 < pttl <= 1235
    await backend.set("forever", b"x", None)
    assert await shared_admin.ttl("sw-test:forever") == -1
    await backend.set("forever", b"y", 60)
    assert 0 < await shared_admin.ttl("sw-test:forever") <= 60


async def test_a_tiny_ttl_is_one_millisecond(backend: StorageCalls, shared_admin: Redis) -> None:
    await backend.set("tiny", b"x", 0.0001)  # PX 1: neither PX 0 (an error) nor no expiry
    await asyncio.sleep(0.05)
    assert await shared_admin.exists("sw-test:tiny") == 0


async def test_reset_never_flushes_and_leaves_keys_outside_the_prefix(
    fresh_server: RedisServer, admin: Redis
) -> None:
    outside = ["sessionware", "sessionwarex:1", "other:1", "sessionware-other:1", "x"]
    for key in outside:
        await admin.set(key, b"keep")
    backend = StorageCalls(RedisStorage(url=fresh_server.url), "redis")
    try:
        for index in range(1200):  # more than one SCAN batch
            await backend.set(f"s{index}", b"x", 60 if index % 2 else None)
        await admin.config_resetstat()
        await backend.reset()
        counts = await command_counts(admin)
        assert set(counts) == {"scan", "unlink"}
        assert sorted(await admin.keys("*")) == sorted(key.encode() for key in outside)
    finally:
        await backend.close()


async def test_a_prefix_with_glob_characters_is_taken_literally(
    redis_server: RedisServer, shared_admin: Redis
) -> None:
    prefix = f"{unique_prefix()}g*?[ab]\\:"
    lookalike = prefix.replace("*?[ab]\\", "XYa")  # what the unescaped pattern would match
    await shared_admin.set(lookalike + "1", b"keep")
    backend = StorageCalls(RedisStorage(url=redis_server.url, key_prefix=prefix), "redis")
    try:
        await backend.set("mine", b"x", 60)
        await backend.reset()
        assert await backend.get("mine") is None
        assert await shared_admin.get(lookalike + "1") == b"keep"
    finally:
        await backend.close()
        await shared_admin.delete(lookalike + "1")


async def test_a_given_client_is_never_closed(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        backend = StorageCalls(RedisStorage(client=client, key_prefix=unique_prefix()), "redis")
        await backend.set("k", b"v", 60)
        await backend.close()
        assert await client.ping()
        assert len(client.connection_pool._available_connections) == 1
    finally:
        await client.aclose()


async def test_a_given_client_with_a_small_pool_makes_callers_wait(
    redis_server: RedisServer,
) -> None:
    client = Redis.from_pool(ConnectionPool.from_url(redis_server.url, max_connections=3))
    try:
        backend = StorageCalls(RedisStorage(client=client, key_prefix=unique_prefix()), "redis")
        keys = [f"k{index}" for index in range(300)]
        await asyncio.gather(*(backend.set(key, key.encode(), 60) for key in keys))
        assert await asyncio.gather(*(backend.get(key) for key in keys)) == [
            key.encode() for key in keys
        ]
        await backend.reset()
        await backend.close()
    finally:
        await client.aclose()


async def test_close_is_idempotent_and_a_closed_storage_says_so(
    redis_server: RedisServer,
) -> None:
    storage = RedisStorage(url=redis_server.url, key_prefix=unique_prefix())
    await storage.storage_set("k", b"v", 60)
    await storage.storage_close()
    await storage.storage_close()
    with pytest.raises(RuntimeError, match="closed"):
        await storage.storage_get("k")


async def test_1000_concurrent_calls_share_20_connections(
    fresh_server: RedisServer, admin: Redis
) -> None:
    backend = StorageCalls(RedisStorage(url=fresh_server.url, max_connections=20), "redis")
    keys = [f"key-{index}" for index in range(1000)]
    try:
        await asyncio.gather(*(backend.set(key, key.encode(), 60) for key in keys))
        half = len(keys) // 2
        results = await asyncio.gather(
            *(backend.get(key) for key in keys[:half]),
            *(backend.set(key, b"new", 60) for key in keys[half:]),
        )
        assert results[:half] == [key.encode() for key in keys[:half]]
        assert await asyncio.gather(*(backend.get(key) for key in keys[half:])) == [b"new"] * (
            len(keys) - half
        )
        clients = await admin.client_list()
        assert len(clients) - 1 <= 20  # the admin's own connection is the one more
    finally:
        await backend.close()
