"""Finding a storage plugin by name, URL or object, without ever falling back to another."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from ._errors import StorageLoadError, StorageNotFoundError
from ._storage_calls import OPTIONAL_HOOKS, StorageCalls, validated_hooks

ENTRY_POINT_GROUP = "sessionware.storage"

_EXTRA_FOR = {
    "redis": "redis",
    "rediss": "redis",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "memcache": "memcache",
    "memcached": "memcache",
    "postgres": "postgres",
    "postgresql": "postgres",
}


@dataclass(frozen=True, slots=True)
class InstalledStorage:
    """One entry point of the `sessionware.storage` group, described without importing it."""

    name: str
    distribution: str
    version: str
    module: str
    entry_point: EntryPoint


def normalise_name(name: str) -> str:
    return name.strip().lower()


def installed_storages() -> dict[str, list[InstalledStorage]]:
    """Every installed storage by name; a list holds more than one provider on a clash."""
    found: dict[str, list[InstalledStorage]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        storage = InstalledStorage(
            name=normalise_name(ep.name),
            distribution=dist.name if dist is not None else "<unknown>",
            version=dist.version if dist is not None else "<unknown>",
            module=ep.module,
            entry_point=ep,
        )
        providers = found.setdefault(storage.name, [])
        if all(p.distribution != storage.distribution for p in providers):
            providers.append(storage)
    return dict(sorted(found.items()))


def install_hint(name: str) -> str:
    extra = _EXTRA_FOR.get(name)
    if extra is not None:
        return f'pip install "sessionware[{extra}]"'
    return f"pip install <the distribution that provides the {name!r} storage>"


def _find(name: str) -> InstalledStorage:
    installed = installed_storages()
    providers = installed.get(name)
    if not providers:
        names = ", ".join(installed) or "none"
        raise StorageNotFoundError(
            f"no storage plugin named {name!r} is installed; installed: {names}; "
            f"install it with `{install_hint(name)}`"
        )
    if len(providers) > 1:
        raise StorageLoadError(_clash(name, providers))
    return providers[0]


def _clash(name: str, providers: list[InstalledStorage]) -> str:
    both = " and ".join(f"{p.distribution} {p.version} ({p.module})" for p in providers)
    return f"the storage name {name!r} is claimed by {both}; uninstall one of them"


def _load_factory(storage: InstalledStorage) -> Any:
    try:
        return storage.entry_point.load()
    except Exception as exc:
        raise StorageLoadError(
            f"storage plugin {storage.name!r} from {storage.distribution} {storage.version} "
            f"failed to load: {type(exc).__name__}: {exc}"
        ) from exc


def object_name(plugin: object) -> str:
    """What messages call a plugin given as an object: its class's name, or a module's own."""
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__name__


def resolve_storage(storage: object, options: Mapping[str, Any]) -> StorageCalls:
    """Build the storage a `Config` names; errors surface here, never at the first request."""
    if not isinstance(storage, str):
        if options:
            raise ValueError(
                "storage_options only apply when storage is a name or URL; "
                "configure the plugin object itself instead"
            )
        return StorageCalls(storage, object_name(storage))
    kwargs = dict(options)
    if "://" in storage:
        name = normalise_name(storage.split("://", 1)[0])
        if "url" in kwargs:
            raise ValueError(
                "storage is a URL and storage_options also has 'url'; give the URL once"
            )
        kwargs["url"] = storage
    else:
        name = normalise_name(storage)
    if not name:
        raise ValueError(f"storage must name a plugin, got {storage!r}")
    factory = _load_factory(_find(name))
    plugin = factory(**kwargs)
    return StorageCalls(plugin, name)


@dataclass(frozen=True, slots=True)
class StorageCheck:
    """What `sessionware plugins --check` learnt about one installed storage.

    `optional_hooks` is None when they are not known: the plugin did not load, or its factory
    is not a class and names none as its return annotation. `problem` is set when the storage
    cannot be used (a `Store` would refuse it); `note` when something could not be checked.
    """

    storage: InstalledStorage
    loads: bool
    optional_hooks: tuple[str, ...] | None
    problem: str | None = None
    note: str | None = None


def check_storages() -> list[StorageCheck]:
    """Import every installed storage and check its hooks the way a `Store` would."""
    return [
        _check(storage, providers)
        for providers in installed_storages().values()
        for storage in providers
    ]


def _check(storage: InstalledStorage, providers: list[InstalledStorage]) -> StorageCheck:
    try:
        factory = _load_factory(storage)
    except StorageLoadError as exc:
        return StorageCheck(storage, loads=False, optional_hooks=None, problem=str(exc))
    clash = _clash(storage.name, providers) if len(providers) > 1 else None
    target = storage.entry_point.value
    if not callable(factory):
        problem = (
            f"the entry point {storage.name} = {target!r} names a {type(factory).__name__}, "
            "not a factory; point it at the plugin's class (or a function that builds it)"
        )
        return StorageCheck(storage, loads=True, optional_hooks=None, problem=problem)
    cls = _plugin_class(factory)
    if cls is None:
        note = (
            f"hooks not checked: {target} is not a class and its return annotation names "
            "none; annotate the class it returns to have them checked without building it"
        )
        return StorageCheck(storage, loads=True, optional_hooks=None, problem=clash, note=note)
    try:
        hooks = validated_hooks(_Unbuilt(cls), storage.name)
    except pluggy.PluginValidationError as exc:
        return StorageCheck(storage, loads=True, optional_hooks=None, problem=str(exc))
    optional = tuple(hook for hook in OPTIONAL_HOOKS if hook in hooks)
    return StorageCheck(storage, loads=True, optional_hooks=optional, problem=clash)


def _plugin_class(factory: Any) -> type | None:
    """The class whose instances the factory builds, when it says so without being called."""
    if inspect.isclass(factory):
        return factory
    try:
        returned = typing.get_type_hints(factory).get("return")
    except Exception:
        return None
    if not inspect.isclass(returned):
        return None
    # A Protocol (such as sessionware.hookspecs.Storage) names the contract, not the class.
    return None if getattr(returned, "_is_protocol", False) else returned


class _Unbuilt:
    """A plugin class's methods bound to a stand-in, so the checks a `Store` makes can run
    without calling the factory: it may need options (a server's address) that a check
    does not have, and building may connect or create files."""

    def __init__(self, cls: type) -> None:
        for attr in dir(cls):
            if attr.startswith("__"):
                continue
            raw = inspect.getattr_static(cls, attr)
            if isinstance(raw, staticmethod | classmethod) or inspect.isfunction(raw):
                setattr(self, attr, raw.__get__(self, cls))
