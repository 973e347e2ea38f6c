"""Finding a storage plugin by name, URL or object, without ever falling back to another."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ._errors import StorageLoadError, StorageNotFoundError
from ._storage_calls import StorageCalls

ENTRY_POINT_GROUP = "sessionware.storage"

_EXTRA_FOR = {
    "redis": "redis",
    "rediss": "redis",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "memcache": "memcache",
    "memcached": "memcache",
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
        both = " and ".join(f"{p.distribution} {p.version} ({p.module})" for p in providers)
        raise StorageLoadError(
            f"the storage name {name!r} is claimed by {both}; uninstall one of them"
        )
    return providers[0]


def _load_factory(storage: InstalledStorage) -> Any:
    try:
        return storage.entry_point.load()
    except Exception as exc:
        raise StorageLoadError(
            f"storage plugin {storage.name!r} from {storage.distribution} {storage.version} "
            f"failed to load: {type(exc).__name__}: {exc}"
        ) from exc


def resolve_storage(storage: object, options: Mapping[str, Any]) -> StorageCalls:
    """Build the storage a `Config` names; errors surface here, never at the first request."""
    if not isinstance(storage, str):
        if options:
            raise ValueError(
                "storage_options only apply when storage is a name or URL; "
                "configure the plugin object itself instead"
            )
        return StorageCalls(storage, type(storage).__name__)
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
