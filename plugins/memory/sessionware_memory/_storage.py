"""A per-instance dictionary with monotonic-clock expiry and a lazy background sweep."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pluggy

from ._config import MemoryConfig

hookimpl = pluggy.HookimplMarker("sessionware")

_Entry = tuple[bytes, float | None]


class MemoryStorage:
    """Sessions in this process's memory: fast, and gone when the process ends."""

    name = "memory"

    def __init__(self, *, gc_interval: float | None = None, url: str | None = None) -> None:
        self.config = MemoryConfig.from_options(url=url, gc_interval=gc_interval)
        self._entries: dict[str, _Entry] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._sweeper_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and deadline <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        self._store(key, value, None if expires_in is None else time.monotonic() + expires_in)

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        """Atomic as it stands: nothing here awaits, so no other task runs in between."""
        now = time.monotonic()
        entry = self._entries.get(key)
        live: bytes | None = None
        if entry is not None and (entry[1] is None or entry[1] > now):
            live = entry[0]  # an expired entry counts as absent
        if live != expected:
            return False
        self._store(key, value, None if expires_in is None else now + expires_in)
        return True

    def _store(self, key: str, value: bytes, deadline: float | None) -> None:
        # A mutable buffer is copied; an immutable bytes object is safe to share.
        self._entries[key] = (value if type(value) is bytes else bytes(value), deadline)
        if deadline is not None and self._sweeper_loop is not asyncio.get_running_loop():
            self._ensure_sweeper()

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        self._entries.pop(key, None)

    @hookimpl
    async def storage_reset(self) -> None:
        self._entries.clear()

    @hookimpl
    async def storage_close(self) -> None:
        self._closed = True
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await sweeper

    def items(self) -> list[tuple[str, bytes]]:
        """Every live key with its bytes as stored: what whoever reads this storage sees."""
        now = time.monotonic()
        return [
            (key, value)
            for key, (value, deadline) in self._entries.items()
            if deadline is None or deadline > now
        ]

    def sweep(self) -> int:
        """Drop every expired entry now; returns how many went."""
        now = time.monotonic()
        expired = [
            key
            for key, (_, deadline) in self._entries.items()
            if deadline is not None and deadline <= now
        ]
        for key in expired:
            self._entries.pop(key, None)
        return len(expired)

    def _ensure_sweeper(self) -> None:
        """Start the sweep on the running loop: the first time, or when the loop changed."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        self._sweeper = loop.create_task(self._sweep_forever(), name="sessionware-memory-sweeper")
        self._sweeper_loop = loop

    async def _sweep_forever(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.config.gc_interval)
                self.sweep()
        finally:
            self._sweeper_loop = None  # ended: the next write starts a new one
