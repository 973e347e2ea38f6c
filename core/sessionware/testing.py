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
through a pluggy manager that checks the five hooks. Needs pytest and pytest-asyncio
(`pip install "sessionware[testing]"`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ._facade import StorageFacade

__all__ = ["StorageConformance"]


def _key(label: str) -> str:
    return f"conformance-{label}-{uuid.uuid4()}"


class StorageConformance:
    """Subclass it and override the `storage` fixture; every test below then runs on it."""

    pytestmark = pytest.mark.asyncio

    #: How coarse the backend's expiry clock is, in seconds (memcached: 1). Expiry tests
    #: allow this much on top of the TTL before a value must be gone.
    ttl_resolution: float = 0.0

    @pytest.fixture
    def storage(self) -> object:
        """Yield a fresh plugin object (the five hooks) for each test. Override this."""
        pytest.fail("override the `storage` fixture to return a fresh plugin object")

    @pytest.fixture
    def other_storage(self) -> object | None:
        """Another storage whose keys must survive `storage_reset`; None skips that check."""
        return None

    @pytest_asyncio.fixture
    async def backend(self, storage: object) -> AsyncIterator[StorageFacade]:
        facade = StorageFacade(storage, type(storage).__name__)
        try:
            yield facade
        finally:
            await facade.close()

    async def _expires_by(self, backend: StorageFacade, key: str, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if await backend.get(key) is None:
                return True
            await asyncio.sleep(0.05)
        return await backend.get(key) is None

    async def test_missing_key_gives_none(self, backend: StorageFacade) -> None:
        assert await backend.get(_key("missing")) is None

    async def test_set_then_get_returns_the_value(self, backend: StorageFacade) -> None:
        key = _key("set")
        await backend.set(key, b"value", 60)
        assert await backend.get(key) == b"value"

    async def test_get_returns_bytes(self, backend: StorageFacade) -> None:
        key = _key("type")
        await backend.set(key, b"abc", 60)
        assert type(await backend.get(key)) is bytes

    async def test_set_overrides_the_previous_value(self, backend: StorageFacade) -> None:
        key = _key("override")
        await backend.set(key, b"first", 60)
        await backend.set(key, b"second", 60)
        assert await backend.get(key) == b"second"

    async def test_empty_value_is_not_missing(self, backend: StorageFacade) -> None:
        key = _key("empty")
        await backend.set(key, b"", 60)
        assert await backend.get(key) == b""

    async def test_all_256_byte_values_round_trip(self, backend: StorageFacade) -> None:
        key = _key("bytes")
        value = bytes(range(256)) * 4
        await backend.set(key, value, 60)
        assert await backend.get(key) == value

    async def test_one_mebibyte_value_round_trips(self, backend: StorageFacade) -> None:
        key = _key("large")
        value = bytes(range(256)) * 4096  # exactly 1 MiB
        await backend.set(key, value, 60)
        assert await backend.get(key) == value

    async def test_every_valid_session_id_shape_is_a_usable_key(
        self, backend: StorageFacade
    ) -> None:
        keys = [
            "A",
            "az-AZ_09.~+/=",
            "x" * 128,
            "aGVsbG8gd29ybGQ+/w==",
            str(uuid.uuid4()),
        ]
        for index, key in enumerate(keys):
            await backend.set(key, f"value-{index}".encode(), 60)
        for index, key in enumerate(keys):
            assert await backend.get(key) == f"value-{index}".encode()
            await backend.delete(key)
            assert await backend.get(key) is None

    async def test_short_ttl_expires(self, backend: StorageFacade) -> None:
        key = _key("ttl")
        await backend.set(key, b"soon gone", 0.3)
        assert await backend.get(key) == b"soon gone"
        deadline = time.monotonic() + 0.3 + self.ttl_resolution + 1.0
        assert await self._expires_by(backend, key, deadline)

    async def test_fractional_ttl_is_never_rounded_down_to_immediate(
        self, backend: StorageFacade
    ) -> None:
        key = _key("fraction")
        await backend.set(key, b"still here", 0.2)
        assert await backend.get(key) == b"still here"

    async def test_long_ttl_keeps_the_value(self, backend: StorageFacade) -> None:
        key = _key("long")
        await backend.set(key, b"kept", 40 * 24 * 3600)
        assert await backend.get(key) == b"kept"

    async def test_none_ttl_never_expires(self, backend: StorageFacade) -> None:
        key = _key("forever")
        short = _key("short")
        await backend.set(key, b"forever", None)
        await backend.set(short, b"short", 0.3)
        deadline = time.monotonic() + 0.3 + self.ttl_resolution + 1.0
        assert await self._expires_by(backend, short, deadline)
        assert await backend.get(key) == b"forever"

    async def test_delete_removes_the_key(self, backend: StorageFacade) -> None:
        key = _key("delete")
        await backend.set(key, b"x", 60)
        await backend.delete(key)
        assert await backend.get(key) is None

    async def test_delete_of_a_missing_key_is_not_an_error(self, backend: StorageFacade) -> None:
        await backend.delete(_key("never-set"))

    async def test_reset_removes_every_key(self, backend: StorageFacade) -> None:
        keys = [_key(f"reset-{i}") for i in range(20)]
        for key in keys:
            await backend.set(key, b"x", 60)
        await backend.set(_key("reset-forever"), b"x", None)
        await backend.reset()
        assert [await backend.get(key) for key in keys] == [None] * len(keys)

    async def test_reset_leaves_other_storages_alone(
        self, backend: StorageFacade, other_storage: object | None
    ) -> None:
        if other_storage is None:
            pytest.skip("this backend's reset empties the whole server (see its README)")
        other = StorageFacade(other_storage, "other")
        try:
            mine, theirs = _key("mine"), _key("theirs")
            await backend.set(mine, b"mine", 60)
            await other.set(theirs, b"theirs", 60)
            await backend.reset()
            assert await backend.get(mine) is None
            assert await other.get(theirs) == b"theirs"
        finally:
            await other.close()

    async def test_close_twice_is_fine(self, backend: StorageFacade) -> None:
        await backend.set(_key("close"), b"x", 60)
        await backend.close()
        await backend.close()

    async def test_200_concurrent_tasks_on_distinct_keys(self, backend: StorageFacade) -> None:
        keys = [_key(f"concurrent-{i}") for i in range(200)]
        await asyncio.gather(*(backend.set(k, k.encode(), 60) for k in keys))
        values = await asyncio.gather(*(backend.get(k) for k in keys))
        assert values == [k.encode() for k in keys]

    async def test_a_buffer_changed_after_set_does_not_change_what_is_stored(
        self, backend: StorageFacade
    ) -> None:
        key = _key("copy")
        buffer = bytearray(b"original")
        await backend.set(key, buffer, 60)  # type: ignore[arg-type]
        buffer[:] = b"changed!"
        assert await backend.get(key) == b"original"
