"""Several servers: keys spread by hashing, a down server fails only its own keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sessionware import StorageError
from sessionware.testing import StorageCalls
from sessionware_memcache import MemcacheStorage, ServerDownError

from tests.support.processes import ServerProcess

PREFIX = "spread:"
Direct = Callable[[ServerProcess], Any]


async def _until_every_key_works(backend: StorageCalls, keys: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            for key in keys:
                await backend.set(key, key.encode(), 60)
                assert await backend.get(key) == key.encode()
            return
        except StorageError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_stopped_server_fails_only_its_keys_and_comes_back(
    memcached_pair: tuple[ServerProcess, ServerProcess], direct: Direct
) -> None:
    first, second = memcached_pair
    storage = MemcacheStorage(
        servers=[first.address, second.address],
        key_prefix=PREFIX,
        connect_timeout=0.5,
        timeout=0.5,
        dead_timeout=0.2,
    )
    backend = StorageCalls(storage, "memcache")
    keys = [f"session-{i}" for i in range(40)]
    for key in keys:
        await backend.set(key, key.encode(), 60)

    on_first = {k for k in keys if direct(first).get(PREFIX + k) == k.encode()}
    on_second = {k for k in keys if direct(second).get(PREFIX + k) == k.encode()}
    assert on_first
    assert on_second
    assert on_first.isdisjoint(on_second)
    assert on_first | on_second == set(keys)

    first.stop()
    for key in sorted(on_first):
        with pytest.raises(StorageError, match="memcache") as info:
            await backend.get(key)
        assert isinstance(info.value.__cause__, OSError)
        with pytest.raises(StorageError):
            await backend.set(key, b"moved?", 60)
    for key in sorted(on_second):
        assert await backend.get(key) == key.encode()
        await backend.set(key, b"still fine", 60)
    # Nothing of the stopped server's was written to the other one instead.
    assert all(direct(second).get(PREFIX + k) is None for k in on_first)

    first.start()
    await _until_every_key_works(backend, keys, within=5.0)
    assert {k for k in keys if direct(first).get(PREFIX + k) is not None} == on_first
    await backend.close()


async def test_a_down_server_fails_fast_until_its_mark_runs_out(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server = memcached_pair[0]
    storage = MemcacheStorage(servers=server.address, dead_timeout=30)
    await storage.storage_set("k", b"v", 60)
    server.stop()
    with pytest.raises(OSError):
        await storage.storage_get("k")
    server.start()
    # Marked down: the next calls are refused here, without reaching the restarted server.
    with pytest.raises(ServerDownError, match=f"{server.address} is marked down"):
        await storage.storage_get("k")
    await storage.storage_close()


async def test_after_a_restart_stale_connections_are_replaced_without_an_error(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server = memcached_pair[0]
    storage = MemcacheStorage(servers=server.address, max_pool_size=4)
    await asyncio.gather(*(storage.storage_set(f"k{i}", b"v", 60) for i in range(20)))
    server.restart()
    assert await asyncio.gather(*(storage.storage_get(f"k{i}") for i in range(20))) == [None] * 20
    await storage.storage_close()


async def test_reset_flushes_every_server(
    memcached_pair: tuple[ServerProcess, ServerProcess], direct: Direct
) -> None:
    storage = MemcacheStorage(servers=[s.address for s in memcached_pair], key_prefix=PREFIX)
    for server in memcached_pair:
        direct(server).set(b"other-app", b"x")
    await storage.storage_set("k", b"v", 60)
    await storage.storage_reset()
    assert [direct(s).get(b"other-app") for s in memcached_pair] == [None, None]
    await storage.storage_close()
