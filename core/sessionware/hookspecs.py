"""The storage contract: gofiber/storage's five operations, plus one optional hook, as pluggy hooks.

A storage plugin is an object (or module) with these hooks implemented as ``async def`` and
marked with `hookimpl`. Keys are session handles (or the core's own keys, which begin with
``~``); values are opaque bytes. `Storage` and `CompareAndSetStorage` describe the same
contract as typing protocols, so a plugin author can have mypy check a class against it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pluggy

PROJECT_NAME = "sessionware"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "PROJECT_NAME",
    "CompareAndSetStorage",
    "Storage",
    "hookimpl",
    "hookspec",
    "storage_close",
    "storage_compare_and_set",
    "storage_delete",
    "storage_get",
    "storage_reset",
    "storage_set",
]


@hookspec(firstresult=True)
async def storage_get(key: str) -> bytes | None:
    """Return the bytes stored under `key`, or None when it is missing or expired."""


@hookspec(firstresult=True)
async def storage_set(key: str, value: bytes, expires_in: float | None) -> None:
    """Store a copy of `value` under `key` for `expires_in` seconds (None: never expires)."""


@hookspec(firstresult=True)
async def storage_delete(key: str) -> None:
    """Remove `key`; a missing key is not an error."""


@hookspec(firstresult=True)
async def storage_reset() -> None:
    """Remove every key of this storage and nothing else."""


@hookspec(firstresult=True)
async def storage_close() -> None:
    """Release the storage's resources; calling it again does nothing."""


@hookspec(firstresult=True)
async def storage_compare_and_set(
    key: str, expected: bytes | None, value: bytes, expires_in: float | None
) -> bool:
    """Optional. Atomically, if the live value equals `expected` (None: no live value), store
    `value` for `expires_in` and return True; otherwise change nothing and return False."""
    raise NotImplementedError  # a specification: pluggy never calls it


@runtime_checkable
class Storage(Protocol):
    """What a complete storage plugin offers (the hooks must also carry `@hookimpl`)."""

    async def storage_get(self, key: str) -> bytes | None: ...

    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None: ...

    async def storage_delete(self, key: str) -> None: ...

    async def storage_reset(self) -> None: ...

    async def storage_close(self) -> None: ...


@runtime_checkable
class CompareAndSetStorage(Storage, Protocol):
    """A storage with the optional hook, which no-lost-update and no-resurrection rest on."""

    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool: ...
