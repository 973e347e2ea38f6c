"""The one typed door between session code and a storage plugin.

Session code never touches pluggy: it awaits the methods of `StorageCalls`, and any exception
a plugin raises comes out as a `StorageError` that names the storage.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final

import pluggy

from . import hookspecs
from ._errors import StorageError

REQUIRED_HOOKS: Final = (
    "storage_get",
    "storage_set",
    "storage_delete",
    "storage_reset",
    "storage_close",
)
OPTIONAL_HOOKS: Final = ("storage_compare_and_set",)
ALL_HOOKS: Final = REQUIRED_HOOKS + OPTIONAL_HOOKS

Hook = Callable[..., Awaitable[Any]]


def expected_signature(hook: str) -> str:
    """How an implementation of `hook` is written, e.g. for an error message."""
    spec = inspect.signature(getattr(hookspecs, hook))
    params = ", ".join(["self", *(f"{p.name}: {p.annotation}" for p in spec.parameters.values())])
    return f"async def {hook}({params}) -> {spec.return_annotation}"


def _refuse(plugin: object, name: str, problem: str) -> pluggy.PluginValidationError:
    return pluggy.PluginValidationError(plugin, f"storage plugin {name!r}: {problem}")


def _shown(param: inspect.Parameter) -> str:
    """A parameter as written, its annotation unquoted (`from __future__ import annotations`
    keeps annotations as strings)."""
    if not isinstance(param.annotation, str):
        return str(param)
    stars = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(param.kind.name, "")
    text = f"{stars}{param.name}: {param.annotation}"
    return text if param.default is param.empty else f"{text} = {param.default!r}"


def _check_signature(plugin: object, name: str, hook: str, function: Hook) -> None:
    """Every parameter of the spec, by name, without defaults: the core calls by keyword."""
    expected = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params]
    plain = all(
        p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty for p in params
    )
    if sorted(names) != sorted(expected) or not plain:
        shown = f"{hook}({', '.join(_shown(p) for p in params)})"
        raise _refuse(
            plugin,
            name,
            f"hook {shown} must declare exactly the parameters of its spec, by the same names, "
            f"without defaults, *args or **kwargs; write it as `{expected_signature(hook)}`",
        )
    if not inspect.iscoroutinefunction(function):
        raise _refuse(
            plugin,
            name,
            f"hook {hook} must be `async def`; write it as `{expected_signature(hook)}`",
        )


def validated_hooks(plugin: object, name: str) -> dict[str, Hook]:
    """Register `plugin` alone in a manager of its own, prove it complete, return its hooks.

    Each store registers exactly one plugin and every hook is `firstresult`, so the single
    implementation *is* the hook's result: calling it directly is what `pm.hook.<name>(...)`
    would do, minus pluggy's dispatch (about 2.5 µs a call, a large share of the session
    layer's cost on a fast backend).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    marked = [attr for attr in dir(plugin) if pm.parse_hookimpl_opts(plugin, attr) is not None]
    for attr in marked:
        if attr not in ALL_HOOKS:
            close = difflib.get_close_matches(attr, ALL_HOOKS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _refuse(
                plugin,
                name,
                f"unknown hook {attr!r}; {hint}the hooks are {', '.join(ALL_HOOKS)} "
                "(sessionware.hookspecs)",
            )
    missing = [hook for hook in REQUIRED_HOOKS if hook not in marked]
    if missing:
        unmarked = [hook for hook in missing if callable(getattr(plugin, hook, None))]
        hint = f" ({', '.join(unmarked)} defined but not marked with @hookimpl)" if unmarked else ""
        raise _refuse(
            plugin,
            name,
            f"does not implement {', '.join(missing)}{hint}; a storage implements all five "
            "hooks of sessionware.hookspecs, each marked with @sessionware.hookimpl",
        )
    hooks: dict[str, Hook] = {}
    for hook in marked:
        function = getattr(plugin, hook)
        _check_signature(plugin, name, hook, function)
        hooks[hook] = function
    pm.register(plugin, name=name)
    pm.check_pending()
    return hooks


class StorageCalls:
    """Typed calls to one storage plugin, with its failures turned into `StorageError`."""

    __slots__ = ("_cas", "_close", "_delete", "_get", "_reset", "_set", "name")

    def __init__(self, plugin: object, name: str) -> None:
        self.name: Final = name
        hooks = validated_hooks(plugin, name)
        self._get = hooks["storage_get"]
        self._set = hooks["storage_set"]
        self._delete = hooks["storage_delete"]
        self._reset = hooks["storage_reset"]
        self._close = hooks["storage_close"]
        self._cas: Hook | None = hooks.get("storage_compare_and_set")

    @property
    def has_compare_and_set(self) -> bool:
        return self._cas is not None

    def _failure(self, operation: str, exc: Exception) -> StorageError:
        return StorageError(
            f"{self.name} storage failed to {operation}: {type(exc).__name__}: {exc}",
            backend=self.name,
        )

    def _wrong_type(self, hook: str, value: object, expected: str) -> StorageError:
        return StorageError(
            f"{self.name} storage returned {type(value).__name__} from {hook}; "
            f"it must return {expected}",
            backend=self.name,
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value: Any = await self._get(key=key)
        except Exception as exc:
            raise self._failure("get a session", exc) from exc
        if value is None or type(value) is bytes:
            return value
        raise self._wrong_type("storage_get", value, "bytes or None (exactly)")

    async def set(self, key: str, value: bytes, expires_in: float | None) -> None:
        try:
            await self._set(key=key, value=value, expires_in=expires_in)
        except Exception as exc:
            raise self._failure("save a session", exc) from exc

    async def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        cas = self._cas
        if cas is None:
            raise RuntimeError(f"{self.name} storage has no storage_compare_and_set")
        try:
            stored: Any = await cas(key=key, expected=expected, value=value, expires_in=expires_in)
        except Exception as exc:
            raise self._failure("compare-and-set a session", exc) from exc
        if type(stored) is not bool:
            raise self._wrong_type("storage_compare_and_set", stored, "True or False")
        return stored

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
