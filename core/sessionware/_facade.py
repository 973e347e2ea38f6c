"""The one typed door between session code and a storage plugin.

Session code never touches pluggy: it awaits these five methods, and any exception a plugin
raises comes out as a `StorageError` that names the backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final

import pluggy

from . import hookspecs
from ._errors import StorageError

HOOK_NAMES: Final = (
    "storage_get",
    "storage_set",
    "storage_delete",
    "storage_reset",
    "storage_close",
)

Hook = Callable[..., Awaitable[Any]]


def _validated_hooks(plugin: object, backend: str) -> dict[str, Hook]:
    """Register `plugin` alone in a manager of its own, prove it complete, return its hooks.

    pluggy checks names and signatures. Each store registers exactly one plugin and every hook
    is `firstresult`, so the single implementation *is* the hook's result: calling it directly
    is what `pm.hook.<name>(...)` would do, minus pluggy's dispatch (about 2.5 µs a call,
    twice per request, which is most of the session layer's cost on a fast backend).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name=f"sessionware-storage:{backend}")
    pm.check_pending()
    hooks: dict[str, Hook] = {}
    missing = []
    for name in HOOK_NAMES:
        impls = getattr(pm.hook, name).get_hookimpls()
        if not impls:
            missing.append(name)
            continue
        (impl,) = impls
        if not inspect.iscoroutinefunction(impl.function):
            raise pluggy.PluginValidationError(
                plugin,
                f"storage plugin {backend!r}: hook {name} must be `async def`, "
                f"got {impl.function!r}",
            )
        hooks[name] = impl.function
    if missing:
        raise pluggy.PluginValidationError(
            plugin,
            f"storage plugin {backend!r} does not implement {', '.join(missing)}; a storage "
            "implements all five hooks of sessionware.hookspecs, each marked with "
            "@sessionware.hookimpl",
        )
    return hooks


class StorageFacade:
    """Typed calls to one storage plugin, with its failures turned into `StorageError`."""

    __slots__ = ("_close", "_delete", "_get", "_reset", "_set", "backend")

    def __init__(self, plugin: object, backend: str) -> None:
        self.backend: Final = backend
        hooks = _validated_hooks(plugin, backend)
        self._get = hooks["storage_get"]
        self._set = hooks["storage_set"]
        self._delete = hooks["storage_delete"]
        self._reset = hooks["storage_reset"]
        self._close = hooks["storage_close"]

    def _failure(self, operation: str, exc: Exception) -> StorageError:
        return StorageError(
            f"{self.backend} storage failed to {operation}: {type(exc).__name__}: {exc}",
            backend=self.backend,
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value: Any = await self._get(key=key)
        except Exception as exc:
            raise self._failure("get a session", exc) from exc
        if value is None or type(value) is bytes:
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        raise StorageError(
            f"{self.backend} storage returned {type(value).__name__} from storage_get; "
            "it must return bytes or None",
            backend=self.backend,
        )

    async def set(self, key: str, value: bytes, expires_in: float | None) -> None:
        try:
            await self._set(key=key, value=value, expires_in=expires_in)
        except Exception as exc:
            raise self._failure("save a session", exc) from exc

    async def delete(self, key: str) -> None:
        try:
            await self._delete(key=key)
        except Exception as exc:
            raise self._failure("delete a session", exc) from exc

    async def reset(self) -> None:
        try:
            await self._reset()
        except Exception as exc:
            raise self._failure("reset", exc) from exc

    async def close(self) -> None:
        try:
            await self._close()
        except Exception as exc:
            raise self._failure("close", exc) from exc
