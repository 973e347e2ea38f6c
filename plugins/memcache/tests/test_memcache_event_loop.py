"""A hung memcached must never freeze the event loop, and no call may wait past its timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from sessionware import StorageError
from sessionware.testing import StorageCalls
from sessionware_memcache import MemcacheStorage

from tests.support.processes import ServerProcess

TIMEOUT = 1.0


@asynccontextmanager
async def loop_lag() -> AsyncIterator[list[float]]:
    """Measure the longest gap between ticks of a task that wakes every 5 ms."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        yield gaps
    finally:
        done.set()
        await task


async def _timed(call: Callable[[], Awaitable[object]]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        await call()
    return info.value, time.monotonic() - started


async def test_a_paused_server_fails_within_the_timeout_and_the_loop_keeps_running(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server = memcached_pair[0]
    backend = StorageCalls(
        MemcacheStorage(servers=server.address, timeout=TIMEOUT, connect_timeout=TIMEOUT),
        "memcache",
    )
    await backend.set("k", b"v", 60)
    server.pause()
    try:
        async with loop_lag() as gaps:
            error, elapsed = await _timed(lambda: backend.get("k"))
    finally:
        server.resume()
    assert isinstance(error.__cause__, TimeoutError)
    assert elapsed < TIMEOUT + 0.5
    assert max(gaps) < 0.3 * TIMEOUT
    await backend.close()


async def test_with_every_connection_busy_a_call_waits_at_most_the_timeout(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server = memcached_pair[0]
    # No down mark, so the queued call can only end by giving up its wait for the connection.
    storage = MemcacheStorage(
        servers=server.address, timeout=TIMEOUT, max_pool_size=1, dead_timeout=0
    )
    backend = StorageCalls(storage, "memcache")
    await backend.set("k", b"v", 60)
    server.pause()
    try:
        async with loop_lag() as gaps:
            results = await asyncio.gather(
                _timed(lambda: backend.get("k")), _timed(lambda: backend.get("k"))
            )
    finally:
        server.resume()
    (hung, hung_elapsed), (queued, queued_elapsed) = results
    assert isinstance(hung.__cause__, TimeoutError)
    assert isinstance(queued.__cause__, TimeoutError)
    assert "max_pool_size" in str(queued)
    assert max(hung_elapsed, queued_elapsed) < TIMEOUT + 0.5
    assert max(gaps) < 0.3 * TIMEOUT
    await backend.close()


async def test_more_tasks_than_connections_wait_their_turn(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    storage = MemcacheStorage(servers=memcached_pair[0].address, max_pool_size=2)
    keys = [f"turn-{i}" for i in range(100)]
    await asyncio.gather(*(storage.storage_set(k, k.encode(), 60) for k in keys))
    assert await asyncio.gather(*(storage.storage_get(k) for k in keys)) == [
        k.encode() for k in keys
    ]
    await storage.storage_close()


async def test_the_server_is_used_again_once_it_resumes(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server = memcached_pair[0]
    storage = MemcacheStorage(servers=server.address, timeout=0.3, dead_timeout=0.2)
    await storage.storage_set("k", b"v", 60)
    server.pause()
    try:
        with pytest.raises(TimeoutError):
            await storage.storage_get("k")
    finally:
        server.resume()
    await asyncio.sleep(0.3)
    assert await storage.storage_get("k") == b"v"
    await storage.storage_close()
