"""The storage contract: the five operations of gofiber/storage, as pluggy hooks.

A storage plugin is an object (or module) with these five hooks implemented as
``async def`` and marked with `hookimpl`. Keys are session ids; values are opaque bytes.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "sessionware"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "storage_close",
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
