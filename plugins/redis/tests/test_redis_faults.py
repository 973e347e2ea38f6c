"""Killed connections, a restarted server, a frozen one: calls fail cleanly, then work again.

Every test runs against a server of its own and under a hard deadline, so none can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sessionware import StorageError
from sessionware.testing import StorageCalls
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisServer

DEADLINE = 30.0


@pytest_asyncio.fixture
async def backend(fresh_server: RedisServer) -> AsyncIterator[StorageCalls]:
    storage = RedisStorage(url=fresh_server.url, max_connections=10, socket_timeout=1)
    facade = StorageCalls(storage, "redis")
    try:
        yield facade
    finally:
        await facade.close()


async def outcome(call: Awaitable[object]) -> object:
    """The call's result, or the StorageError it raised (anything else fails the test)."""
    try:
        return await call
    except StorageError as exc:
        return exc


async def kill_clients(admin: Redis) -> int:
    killed: int = await admin.client_kill_filter(_type="normal", skipme=True)
    return killed


async def load(backend: StorageCalls, stop: asyncio.Event, seen: list[object]) -> None:
    """Sets and gets on a few keys until told to stop, noting every outcome."""
    round_ = 0
    while not stop.is_set():
        round_ += 1
        calls: list[Awaitable[object]] = [backend.set(f"load-{i}", b"v", 60) for i in range(10)]
        calls += [backend.get(f"load-{i}") for i in range(10)]
        seen.extend(await asyncio.gather(*(outcome(call) for call in calls)))
        await asyncio.sleep(0.005)


async def assert_healthy(backend: StorageCalls) -> None:
    keys = [f"after-{i}" for i in range(50)]
    await asyncio.gather(*(backend.set(key, key.encode(), 60) for key in keys))
    assert await asyncio.gather(*(backend.get(key) for key in keys)) == [k.encode() for k in keys]


async def test_idle_connections_killed_by_the_server_are_replaced(
    backend: StorageCalls, admin: Redis
) -> None:
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(backend.set(f"k{i}", b"v", 60) for i in range(30)))
        assert await kill_clients(admin) >= 2
        outcomes = [await outcome(backend.get(f"k{i}")) for i in range(30)]
        assert all(o == b"v" or isinstance(o, StorageError) for o in outcomes)
        assert outcomes[-1] == b"v"
        await assert_healthy(backend)


async def test_connections_killed_under_load(backend: StorageCalls, admin: Redis) -> None:
    stop, seen = asyncio.Event(), list[object]()
    async with asyncio.timeout(DEADLINE):
        worker = asyncio.create_task(load(backend, stop, seen))
        try:
            for _ in range(5):
                await asyncio.sleep(0.05)
                await kill_clients(admin)
        finally:
            stop.set()
            await worker
        assert seen
        assert all(o in (None, b"v") or isinstance(o, StorageError) for o in seen)
        await assert_healthy(backend)


async def test_a_restarted_server_is_used_again(
    backend: StorageCalls, fresh_server: RedisServer
) -> None:
    async with asyncio.timeout(DEADLINE):
        await backend.set("before", b"x", 60)
        await asyncio.to_thread(fresh_server.stop)
        with pytest.raises(StorageError, match="redis") as caught:
            await backend.get("before")
        assert caught.value.__cause__ is not None
        with pytest.raises(StorageError):
            await backend.set("during", b"x", 60)
        await asyncio.to_thread(fresh_server.start)
        assert await backend.get("before") is None  # an empty server: no persistence
        await assert_healthy(backend)


async def test_a_restart_under_load(backend: StorageCalls, fresh_server: RedisServer) -> None:
    stop, seen = asyncio.Event(), list[object]()
    async with asyncio.timeout(DEADLINE):
        worker = asyncio.create_task(load(backend, stop, seen))
        try:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(fresh_server.restart)
            await asyncio.sleep(0.05)
        finally:
            stop.set()
            await worker
        assert all(o in (None, b"v") or isinstance(o, StorageError) for o in seen)
        await assert_healthy(backend)


@contextlib.asynccontextmanager
async def frozen(server: RedisServer) -> AsyncIterator[None]:
    """The server stops answering (SIGSTOP) but keeps its connections open."""
    server.pause()
    try:
        yield
    finally:
        server.resume()


async def test_a_frozen_server_times_out_then_answers_again(
    backend: StorageCalls, fresh_server: RedisServer
) -> None:
    async with asyncio.timeout(DEADLINE):
        await backend.set("k", b"v", 60)
        async with frozen(fresh_server):
            with pytest.raises(StorageError):
                await backend.get("k")
        assert await backend.get("k") == b"v"


async def test_waiting_for_a_connection_is_bounded_by_socket_timeout(
    fresh_server: RedisServer,
) -> None:
    storage = RedisStorage(url=fresh_server.url, max_connections=1, socket_timeout=0.5)
    backend = StorageCalls(storage, "redis")
    try:
        async with asyncio.timeout(DEADLINE):
            await backend.set("k", b"v", 60)
            async with frozen(fresh_server):
                outcomes = await asyncio.gather(*(outcome(backend.get("k")) for _ in range(4)))
            assert all(isinstance(o, StorageError) for o in outcomes)
            assert any("no free connection" in str(o) for o in outcomes)
            assert await backend.get("k") == b"v"
    finally:
        await backend.close()


async def test_one_broken_connection_drops_the_idle_ones_with_it(
    backend: StorageCalls, admin: Redis
) -> None:
    """After a restart every idle connection is dead: one compare-and-set finds out (and,
    not knowing whether it ran, answers False); the next ones open fresh connections."""
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(backend.set(f"k{i}", b"v", 60) for i in range(10)))
        assert await kill_clients(admin) >= 2
        assert await backend.compare_and_set("k0", b"v", b"w", 60) is False
        for i in range(1, 10):
            assert await backend.compare_and_set(f"k{i}", b"v", b"w", 60) is True
