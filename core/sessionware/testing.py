"""The storage conformance suite: what it means to be a sessionware storage.

Run it against a plugin with a few lines in a test module::

    import pytest
    from sessionware.testing import StorageConformance
    from my_plugin import MyStorage

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def storage(self):
            return MyStorage()

Every test gets a fresh plugin object from `storage` and reaches it the way a `Store` does,
through the same checks of the hooks and the same typed calls. The optional hook
`storage_compare_and_set` is tested when the plugin has it; every other fixture and attribute
meant for overriding is listed in docs/plugins.md. Needs pytest and pytest-asyncio
(`pip install "sessionware[testing]"`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ._loader import object_name
from ._storage_calls import StorageCalls

__all__ = ["FakeClock", "StorageCalls", "StorageConformance"]

#: Increments each concurrent compare-and-set test makes, from this many tasks.
_TASKS, _INCREMENTS = 20, 10


def _key(label: str) -> str:
    return f"conformance-{label}-{uuid.uuid4()}"


async def _increment(backend: StorageCalls, key: str) -> int:
    """Add one to the counter under `key` by compare-and-set; returns the attempts it took."""
    attempts = 0
    while True:
        attempts += 1
        current = await backend.get(key)
        value = int(current or b"0") + 1
        if await backend.compare_and_set(key, current, str(value).encode(), 60):
            return attempts
        await asyncio.sleep(0)


class StorageConformance:
    """Subclass it and override the `storage` fixture; every test below then runs on it."""

    pytestmark = pytest.mark.asyncio

    #: How coarse the backend's expiry clock is, in seconds (memcached: 1). Expiry tests
    #: allow this much on top of the TTL before a value must be gone.
    ttl_resolution: float = 0.0

    @pytest.fixture
    def storage(self) -> object:
        """A fresh plugin object (the hooks) for each test. Override this."""
        pytest.fail("override the `storage` fixture to return a fresh plugin object")

    @pytest.fixture
    def other_storage(self) -> object | None:
        """Another storage on the same server whose keys `storage_reset` must leave alone."""
        return None

    @pytest.fixture
    def other_client(self) -> object | None:
        """A second plugin object on the same backend and keys as `storage` (another
        connection, as another process would have), for compare-and-set across clients."""
        return None

    @pytest_asyncio.fixture
    async def backend(self, storage: object) -> AsyncIterator[StorageCalls]:
        calls = StorageCalls(storage, object_name(storage))
        try:
            yield calls
        finally:
            await calls.close()

    @pytest.fixture
    def cas_backend(self, backend: StorageCalls) -> StorageCalls:
        if not backend.has_compare_and_set:
            pytest.skip(
                "this storage does not implement the optional storage_compare_and_set hook: "
                "sessions on it keep 'last save wins, whole' (R21) and cannot have owner "
                "indexes (S10)"
            )
        return backend

    async def _expires_by(self, backend: StorageCalls, key: str, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if await backend.get(key) is None:
                return True
            await asyncio.sleep(0.05)
        return await backend.get(key) is None

    # -- the five operations ---------------------------------------------------------------

    async def test_missing_key_gives_none(self, backend: StorageCalls) -> None:
        assert await backend.get(_key("missing")) is None

    async def test_set_then_get_returns_the_value(self, backend: StorageCalls) -> None:
        key = _key("set")
        await backend.set(key, b"value", 60)
        assert await backend.get(key) == b"value"

    async def test_get_returns_exactly_bytes(self, backend: StorageCalls) -> None:
        """Not a bytearray or memoryview: the typed calls refuse those as a StorageError."""
        key = _key("type")
        await backend.set(key, b"abc", 60)
        assert type(await backend.get(key)) is bytes

    async def test_set_overrides_the_previous_value(self, backend: StorageCalls) -> None:
        key = _key("override")
        await backend.set(key, b"first", 60)
        await backend.set(key, b"second", 60)
        assert await backend.get(key) == b"second"

    async def test_empty_value_is_not_missing(self, backend: StorageCalls) -> None:
        key = _key("empty")
        await backend.set(key, b"", 60)
        assert await backend.get(key) == b""

    async def test_all_256_byte_values_round_trip(self, backend: StorageCalls) -> None:
        key = _key("bytes")
        value = bytes(range(256)) * 4
        await backend.set(key, value, 60)
        assert await backend.get(key) == value

    async def test_one_mebibyte_value_round_trips(self, backend: StorageCalls) -> None:
        key = _key("large")
        value = bytes(range(256)) * 4096  # exactly 1 MiB
        await backend.set(key, value, 60)
        assert await backend.get(key) == value

    async def test_every_key_shape_the_core_uses_is_a_usable_key(
        self, backend: StorageCalls
    ) -> None:
        keys = [
            "A",
            "az-AZ_09.~+/=",
            "x" * 128,
            "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg",  # a handle: 43 characters
            "~o.n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg",  # an owner index
            str(uuid.uuid4()),
        ]
        for index, key in enumerate(keys):
            await backend.set(key, f"value-{index}".encode(), 60)
        for index, key in enumerate(keys):
            assert await backend.get(key) == f"value-{index}".encode()
            await backend.delete(key)
            assert await backend.get(key) is None

    async def test_short_ttl_expires(self, backend: StorageCalls) -> None:
        key = _key("ttl")
        await backend.set(key, b"soon gone", 0.3)
        assert await backend.get(key) == b"soon gone"
        deadline = time.monotonic() + 0.3 + self.ttl_resolution + 1.0
        assert await self._expires_by(backend, key, deadline)

    async def test_fractional_ttl_is_never_rounded_down_to_immediate(
        self, backend: StorageCalls
    ) -> None:
        key = _key("fraction")
        await backend.set(key, b"still here", 0.2)
        assert await backend.get(key) == b"still here"

    async def test_long_ttl_keeps_the_value(self, backend: StorageCalls) -> None:
        key = _key("long")
        await backend.set(key, b"kept", 40 * 24 * 3600)
        assert await backend.get(key) == b"kept"

    async def test_none_ttl_never_expires(self, backend: StorageCalls) -> None:
        key = _key("forever")
        short = _key("short")
        await backend.set(key, b"forever", None)
        await backend.set(short, b"short", 0.3)
        deadline = time.monotonic() + 0.3 + self.ttl_resolution + 1.0
        assert await self._expires_by(backend, short, deadline)
        assert await backend.get(key) == b"forever"

    async def test_delete_removes_the_key(self, backend: StorageCalls) -> None:
        key = _key("delete")
        await backend.set(key, b"x", 60)
        await backend.delete(key)
        assert await backend.get(key) is None

    async def test_delete_of_a_missing_key_is_not_an_error(self, backend: StorageCalls) -> None:
        await backend.delete(_key("never-set"))

    async def test_reset_removes_every_key(self, backend: StorageCalls) -> None:
        keys = [_key(f"reset-{i}") for i in range(20)]
        for key in keys:
            await backend.set(key, b"x", 60)
        await backend.set(_key("reset-forever"), b"x", None)
        await backend.reset()
        assert [await backend.get(key) for key in keys] == [None] * len(keys)

    async def test_reset_leaves_other_storages_alone(
        self, backend: StorageCalls, other_storage: object | None
    ) -> None:
        if other_storage is None:
            pytest.skip(
                "the other_storage fixture was not overridden: return a second storage on the "
                "same server (another key prefix, table or database) whose keys reset must "
                "keep; where the backend cannot keep them, say so in its README"
            )
        other = StorageCalls(other_storage, object_name(other_storage))
        try:
            mine, theirs = _key("mine"), _key("theirs")
            await backend.set(mine, b"mine", 60)
            await other.set(theirs, b"theirs", 60)
            await backend.reset()
            assert await backend.get(mine) is None
            assert await other.get(theirs) == b"theirs"
        finally:
            await other.close()

    async def test_close_twice_is_fine(self, backend: StorageCalls) -> None:
        await backend.set(_key("close"), b"x", 60)
        await backend.close()
        await backend.close()

    async def test_200_concurrent_tasks_on_distinct_keys(self, backend: StorageCalls) -> None:
        keys = [_key(f"concurrent-{i}") for i in range(200)]
        await asyncio.gather(*(backend.set(k, k.encode(), 60) for k in keys))
        values = await asyncio.gather(*(backend.get(k) for k in keys))
        assert values == [k.encode() for k in keys]

    async def test_a_buffer_changed_after_set_does_not_change_what_is_stored(
        self, backend: StorageCalls
    ) -> None:
        key = _key("copy")
        buffer = bytearray(b"original")
        await backend.set(key, buffer, 60)  # type: ignore[arg-type]
        buffer[:] = b"changed!"
        assert await backend.get(key) == b"original"

    async def test_one_storage_serves_successive_event_loops(self, backend: StorageCalls) -> None:
        """A second test client, or `asyncio.run` twice in a script, uses the same storage
        object from a new event loop after the first one has ended."""
        key = _key("loops")

        async def write_and_read(value: bytes) -> bytes | None:
            await backend.set(key, value, 60)
            return await backend.get(key)

        for value in (b"first loop", b"second loop"):
            assert await asyncio.to_thread(asyncio.run, write_and_read(value)) == value
        assert await backend.get(key) == b"second loop"

    # -- storage_compare_and_set (optional) -----------------------------------------------

    async def test_cas_creates_only_where_nothing_is_live(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-create")
        assert await cas_backend.compare_and_set(key, None, b"first", 60) is True
        assert await cas_backend.get(key) == b"first"
        assert await cas_backend.compare_and_set(key, None, b"second", 60) is False
        assert await cas_backend.get(key) == b"first"

    async def test_cas_replaces_only_the_expected_value(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-replace")
        await cas_backend.set(key, b"current", 60)
        assert await cas_backend.compare_and_set(key, b"stale", b"lost", 60) is False
        assert await cas_backend.get(key) == b"current"
        assert await cas_backend.compare_and_set(key, b"current", b"next", 60) is True
        assert await cas_backend.get(key) == b"next"

    async def test_cas_compares_every_byte(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-bytes")
        stored = bytes(range(256)) * 4
        await cas_backend.set(key, stored, 60)
        almost = stored[:-1] + b"\x00"
        assert await cas_backend.compare_and_set(key, almost, b"lost", 60) is False
        assert await cas_backend.compare_and_set(key, stored[:-1], b"lost", 60) is False
        assert await cas_backend.compare_and_set(key, stored, b"won", 60) is True
        assert await cas_backend.get(key) == b"won"

    async def test_cas_expecting_a_value_stores_nothing_where_none_is_live(
        self, cas_backend: StorageCalls
    ) -> None:
        key = _key("cas-missing")
        assert await cas_backend.compare_and_set(key, b"anything", b"lost", 60) is False
        assert await cas_backend.get(key) is None
        await cas_backend.set(key, b"x", 60)
        await cas_backend.delete(key)
        assert await cas_backend.compare_and_set(key, b"x", b"lost", 60) is False
        assert await cas_backend.get(key) is None

    async def test_cas_an_empty_value_is_live(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-empty")
        await cas_backend.set(key, b"", 60)
        assert await cas_backend.compare_and_set(key, None, b"lost", 60) is False
        assert await cas_backend.compare_and_set(key, b"", b"won", 60) is True
        assert await cas_backend.get(key) == b"won"

    async def test_cas_counts_an_expired_value_as_missing(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-expired")
        await cas_backend.set(key, b"old", 0.3)
        deadline = time.monotonic() + 0.3 + self.ttl_resolution + 1.0
        assert await self._expires_by(cas_backend, key, deadline)
        assert await cas_backend.compare_and_set(key, b"old", b"lost", 60) is False
        assert await cas_backend.compare_and_set(key, None, b"new", 60) is True
        assert await cas_backend.get(key) == b"new"

    async def test_cas_sets_the_ttl(self, cas_backend: StorageCalls) -> None:
        key, kept = _key("cas-ttl"), _key("cas-forever")
        assert await cas_backend.compare_and_set(key, None, b"soon gone", 0.3) is True
        assert await cas_backend.compare_and_set(kept, None, b"forever", None) is True
        await cas_backend.set(key + "-x", b"x", 60)
        assert await cas_backend.compare_and_set(key + "-x", b"x", b"y", 0.3) is True
        deadline = time.monotonic() + 0.3 + self.ttl_resolution + 1.0
        assert await self._expires_by(cas_backend, key, deadline)
        assert await self._expires_by(cas_backend, key + "-x", deadline)
        assert await cas_backend.get(kept) == b"forever"

    async def test_cas_keeps_a_fractional_ttl_alive(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-fraction")
        assert await cas_backend.compare_and_set(key, None, b"still here", 0.2) is True
        assert await cas_backend.get(key) == b"still here"

    async def test_cas_of_a_large_value(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-large")
        big = bytes(range(256)) * 4096
        assert await cas_backend.compare_and_set(key, None, big, 60) is True
        assert await cas_backend.compare_and_set(key, big, big[::-1], 60) is True
        assert await cas_backend.get(key) == big[::-1]

    async def test_cas_copies_the_value(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-copy")
        buffer = bytearray(b"original")
        assert await cas_backend.compare_and_set(key, None, buffer, 60) is True  # type: ignore[arg-type]
        buffer[:] = b"changed!"
        assert await cas_backend.get(key) == b"original"

    async def test_concurrent_cas_increments_all_land(self, cas_backend: StorageCalls) -> None:
        key = _key("cas-counter")
        await asyncio.gather(
            *(self._increments(cas_backend, key) for _ in range(_TASKS)),
        )
        assert await cas_backend.get(key) == str(_TASKS * _INCREMENTS).encode()

    async def test_concurrent_cas_increments_through_two_clients_all_land(
        self, cas_backend: StorageCalls, other_client: object | None
    ) -> None:
        """A lock inside one plugin object is not atomicity: another process has its own."""
        if other_client is None:
            pytest.skip(
                "the other_client fixture was not overridden: return a second plugin object "
                "on the same backend and keys as `storage` (for a storage that lives inside one "
                "object, such as memory, there is no second client)"
            )
        other = StorageCalls(other_client, object_name(other_client))
        try:
            key = _key("cas-two-clients")
            await asyncio.gather(
                *(self._increments(cas_backend if n % 2 else other, key) for n in range(_TASKS)),
            )
            assert await cas_backend.get(key) == str(_TASKS * _INCREMENTS).encode()
            assert await other.get(key) == str(_TASKS * _INCREMENTS).encode()
        finally:
            await other.close()

    async def _increments(self, backend: StorageCalls, key: str) -> None:
        for _ in range(_INCREMENTS):
            await _increment(backend, key)


class FakeClock:
    """A clock for ``Store(config, clock=FakeClock())`` that moves only when told to.

    Rules about time (expiry, absolute timeout, renewal) are then tested without sleeping;
    storage TTLs still run on real time, as the storage's own clock does.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
