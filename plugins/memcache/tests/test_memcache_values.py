"""What memcached holds after a write: keys, empty values, long TTLs, the size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from sessionware import Config, StorageError, Store
from sessionware.testing import StorageCalls
from sessionware_memcache import MemcacheStorage

from tests.support.processes import ServerProcess

DAY = 24 * 3600
Direct = Callable[[ServerProcess], Any]


@pytest_asyncio.fixture
async def backend(memcached_server: ServerProcess) -> AsyncIterator[StorageCalls]:
    facade = StorageCalls(
        MemcacheStorage(servers=memcached_server.address, key_prefix="values:"), "memcache"
    )
    try:
        yield facade
    finally:
        await facade.close()


async def test_a_40_day_ttl_is_kept_as_an_absolute_time(
    backend: StorageCalls, memcached_server: ServerProcess, direct: Direct
) -> None:
    await backend.set("forty-days", b"kept", 40 * DAY)
    assert await backend.get("forty-days") == b"kept"
    # Sent as 3,456,000 relative seconds it would be read as a 1970 date and be gone.
    reply = direct(memcached_server).raw_command(b"mg values:forty-days t", b"\r\n")
    remaining = int(reply.split(b" t", 1)[1])
    # We add a second and round up; memcached's own clock ticks once a second and lags the
    # wall clock by a few seconds more (seen: 4 s on a loaded machine), so allow 10 s over:
    # what matters is that this is 40 days, not a date in 1970 (gone at once).
    assert 40 * DAY - 60 < remaining <= 40 * DAY + 10


async def test_a_value_over_the_item_limit_is_a_storage_error_that_says_so(
    backend: StorageCalls,
) -> None:
    with pytest.raises(StorageError, match="too large") as info:
        await backend.set("huge", b"x" * (2 * 1024 * 1024), 60)
    assert isinstance(info.value.__cause__, ValueError)
    assert "2097152 bytes" in str(info.value)
    await backend.set("after-huge", b"fine", 60)
    assert await backend.get("after-huge") == b"fine"


async def test_an_empty_value_is_stored_and_read_back_empty(backend: StorageCalls) -> None:
    await backend.set("empty", b"", None)
    assert await backend.get("empty") == b""


@pytest.mark.parametrize(
    "key",
    [
        "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg",  # a session's handle
        "~o.n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg",  # an owner index
        "az-AZ_09.~+/=",
    ],
)
async def test_storage_keys_are_stored_as_they_are_under_the_prefix(
    backend: StorageCalls, memcached_server: ServerProcess, direct: Direct, key: str
) -> None:
    await backend.set(key, b"plain", 60)
    assert direct(memcached_server).get(f"values:{key}".encode()) == b"plain"


async def test_keys_memcached_cannot_hold_are_hashed_and_still_work(
    backend: StorageCalls,
) -> None:
    odd = ["has space", "ünïcode", "x" * 300, "ctrl\x01", "#x"]
    for index, key in enumerate(odd):
        await backend.set(key, f"v{index}".encode(), 60)
    assert [await backend.get(key) for key in odd] == [f"v{i}".encode() for i in range(5)]
    for key in odd:
        await backend.delete(key)
        assert await backend.get(key) is None


async def test_a_zero_ttl_is_gone_at_once(backend: StorageCalls) -> None:
    await backend.set("zero", b"x", 0)
    assert await backend.get("zero") is None


async def test_reset_flushes_the_whole_server(
    backend: StorageCalls, memcached_server: ServerProcess, direct: Direct
) -> None:
    client = direct(memcached_server)
    client.set(b"someone-else:key", b"theirs")
    await backend.set("mine", b"mine", 60)
    await backend.reset()
    assert await backend.get("mine") is None
    assert client.get(b"someone-else:key") is None


async def test_a_memcache_url_builds_a_working_store(memcached_server: ServerProcess) -> None:
    url = f"memcache://{memcached_server.address}?key_prefix=url:&timeout=2"
    async with Store(Config(storage=url)) as store:
        assert await store.get_by_id("no-such-session") is None


async def test_calls_after_close_fail_clearly(memcached_server: ServerProcess) -> None:
    storage = MemcacheStorage(servers=memcached_server.address)
    await storage.storage_set("k", b"v", 60)
    await storage.storage_close()
    with pytest.raises(RuntimeError, match="closed"):
        await storage.storage_get("k")
