from __future__ import annotations

import asyncio

import pytest
from sessionware.testing import StorageConformance
from sessionware_memory import MemoryStorage


class TestMemoryConformance(StorageConformance):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage(gc_interval=0.1)

    @pytest.fixture
    def other_storage(self) -> MemoryStorage:
        return MemoryStorage()


async def test_sweeper_drops_expired_entries_without_a_read() -> None:
    storage = MemoryStorage(gc_interval=0.05)
    await storage.storage_set("gone", b"x", 0.05)
    await storage.storage_set("kept", b"y", None)
    await asyncio.sleep(0.3)
    assert list(storage._entries) == ["kept"]
    await storage.storage_close()


async def test_close_stops_the_sweeper() -> None:
    storage = MemoryStorage(gc_interval=0.05)
    await storage.storage_set("k", b"x", 10)
    sweeper = storage._sweeper
    assert sweeper is not None
    assert not sweeper.done()
    await storage.storage_close()
    assert sweeper.done()


def test_gc_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="gc_interval"):
        MemoryStorage(gc_interval=0)


def test_gc_interval_must_be_a_number() -> None:
    with pytest.raises(TypeError, match="gc_interval"):
        MemoryStorage(gc_interval="10")  # type: ignore[arg-type]


def test_only_the_bare_memory_url_is_accepted() -> None:
    MemoryStorage(url="memory://")
    with pytest.raises(ValueError, match="memory://"):
        MemoryStorage(url="memory://somewhere/else")
