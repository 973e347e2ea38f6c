"""Cluster and Sentinel beyond the conformance suite, and every command path side by side."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis, RedisCluster
from sessionware import StorageError
from sessionware.testing import StorageCalls
from sessionware_redis import RedisStorage
from sessionware_redis._storage import match_pattern

from tests.support.redis_servers import RedisClusterServers, RedisSentinel, RedisServer

from .support import unique_prefix

DEADLINE = 30.0


@pytest_asyncio.fixture
async def masters(redis_cluster: RedisClusterServers) -> AsyncIterator[list[Redis]]:
    """A plain client of each master, to see what each one holds."""
    clients = [Redis(host=node.host, port=node.port) for node in redis_cluster.nodes]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def keys_on(master: Redis, prefix: str) -> list[bytes]:
    return [key async for key in master.scan_iter(match=match_pattern(prefix), count=1000)]


async def test_cluster_reset_empties_the_prefix_on_every_master(
    redis_cluster: RedisClusterServers, masters: list[Redis]
) -> None:
    mine, theirs = unique_prefix(), unique_prefix()
    backend = StorageCalls(RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=mine), "r")
    other = StorageCalls(RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=theirs), "r")
    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(backend.set(f"s{i}", b"x", 60) for i in range(600)))
            await asyncio.gather(*(other.set(f"s{i}", b"y", None) for i in range(30)))
            before = [len(await keys_on(master, mine)) for master in masters]
            assert all(count > 0 for count in before), before
            assert sum(before) == 600
            await backend.reset()
            assert [await keys_on(master, mine) for master in masters] == [[], [], []]
            assert sum([len(await keys_on(master, theirs)) for master in masters]) == 30
    finally:
        await other.reset()
        await other.close()
        await backend.close()


async def test_cluster_waits_for_connections_instead_of_failing(
    redis_cluster: RedisClusterServers,
) -> None:
    storage = RedisStorage(
        host=redis_cluster.host, port=redis_cluster.port, cluster=True, max_connections=5
    )
    backend = StorageCalls(storage, "redis")
    keys = [f"{unique_prefix()}{i}" for i in range(1000)]
    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(backend.set(key, key.encode(), 60) for key in keys))
            values = await asyncio.gather(*(backend.get(key) for key in keys))
            assert values == [key.encode() for key in keys]
            await asyncio.gather(*(backend.delete(key) for key in keys))
    finally:
        await backend.close()


async def test_cluster_connections_killed_on_every_master(
    redis_cluster: RedisClusterServers, masters: list[Redis]
) -> None:
    backend = StorageCalls(
        RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=unique_prefix()), "redis"
    )
    keys = [f"k{i}" for i in range(60)]
    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(backend.set(key, b"v", 60) for key in keys))
            for master in masters:
                await master.client_kill_filter(_type="normal", skipme=True)
            for key in keys:  # a call may fail once the topology is re-read; later ones work
                with contextlib.suppress(StorageError):
                    await backend.get(key)
            assert await asyncio.gather(*(backend.get(key) for key in keys)) == [b"v"] * 60
            await backend.reset()
    finally:
        await backend.close()


async def test_a_given_cluster_client_is_reset_on_every_master_and_left_open(
    redis_cluster: RedisClusterServers, masters: list[Redis]
) -> None:
    client = RedisCluster(host=redis_cluster.host, port=redis_cluster.port)
    prefix = unique_prefix()
    try:
        backend = StorageCalls(RedisStorage(client=client, key_prefix=prefix), "redis")
        await asyncio.gather(*(backend.set(f"s{i}", b"x", 60) for i in range(90)))
        await backend.reset()
        assert [await keys_on(master, prefix) for master in masters] == [[], [], []]
        await backend.close()
        assert await client.ping()
    finally:
        await client.aclose()


async def test_sentinel_writes_reach_the_master_it_names(redis_sentinel: RedisSentinel) -> None:
    prefix = unique_prefix()
    storage = RedisStorage(
        sentinels=redis_sentinel.sentinels,
        master_name=redis_sentinel.master_name,
        key_prefix=prefix,
    )
    backend = StorageCalls(storage, "redis")
    master = Redis(host=redis_sentinel.master.host, port=redis_sentinel.master.port)
    try:
        await backend.set("k", b"v", 60)
        assert await master.get(f"{prefix}k") == b"v"
        await backend.reset()
        assert await master.get(f"{prefix}k") is None
    finally:
        await backend.close()
        await master.aclose()


async def results_of_one_script(backend: StorageCalls) -> list[object]:
    """Every operation, in an order where each answer depends on the one before."""
    return [
        await backend.get("k"),
        await backend.set("k", b"v", 60),
        await backend.get("k"),
        await backend.compare_and_set("k", None, b"lost", 60),
        await backend.compare_and_set("k", b"v", b"w", 60),
        await backend.compare_and_set("k", b"v", b"lost", 60),
        await backend.get("k"),
        await backend.compare_and_set("k", b"w", b"", None),
        await backend.get("k"),
        await backend.delete("k"),
        await backend.get("k"),
        await backend.compare_and_set("k", None, b"n", None),
        await backend.compare_and_set("missing", b"x", b"lost", 60),
        await backend.get("missing"),
        await backend.reset(),
        await backend.get("k"),
    ]


async def test_every_command_path_answers_alike(
    redis_server: RedisServer,
    redis_sentinel: RedisSentinel,
    redis_cluster: RedisClusterServers,
) -> None:
    """Connections of the storage's own (one server, Sentinel) and a redis-py client (a
    given client, a cluster) reply in different shapes; the hooks return the same."""
    given, given_cluster = (
        Redis.from_url(redis_server.url),
        RedisCluster(host=redis_cluster.host, port=redis_cluster.port),
    )
    storages = {
        "server": RedisStorage(url=redis_server.url, key_prefix=unique_prefix()),
        "sentinel": RedisStorage(
            sentinels=redis_sentinel.sentinels,
            master_name=redis_sentinel.master_name,
            key_prefix=unique_prefix(),
        ),
        "given client": RedisStorage(client=given, key_prefix=unique_prefix()),
        "cluster": RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=unique_prefix()),
        "given cluster": RedisStorage(client=given_cluster, key_prefix=unique_prefix()),
    }
    expected: list[object] = [None, None, b"v", False, True, False, b"w", True, b""]
    expected += [None, None, True, False, None, None, None]
    try:
        async with asyncio.timeout(DEADLINE):
            for mode, storage in storages.items():
                backend = StorageCalls(storage, "redis")
                try:
                    found = await results_of_one_script(backend)
                finally:
                    await backend.close()
                assert found == expected, mode
                assert [type(x) for x in found] == [type(x) for x in expected], mode
    finally:
        await given.aclose()
        await given_cluster.aclose()
