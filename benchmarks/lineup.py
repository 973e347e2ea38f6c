"""Every app and raw client of one run, built once, with a note for whatever had to be left out."""

from __future__ import annotations

import base64
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sessionware import Config, Store

from . import litestar_apps, starlette_apps
from .calls import WithoutCompareAndSet
from .raw import MemcachePair, PostgresPair, RedisPair, SqlitePair
from .scenarios import BenchApp
from .servers import Servers, storage_factory, storage_options

MODES = {"explicit": False, "auto_save": True}
FLOOR = "bare +"

# A session of about 1 KB (its record is 1,028 bytes stored plain, 1,084 sealed), for the
# cost of sealing and opening it; and a fixed test key (never a real one: it is in the repo).
PROFILE = "p" * 960
KEY = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def _profile() -> Callable[[], Mapping[str, Any]]:
    return lambda: {"profile": PROFILE}


def _new_owner() -> Callable[[], Mapping[str, Any]]:
    """Each login a new user: the owner index of one entry, as at a user's first login."""
    owners = itertools.count(1)
    return lambda: {"uid": next(owners)}


@dataclass(frozen=True)
class Variant:
    """One configuration of sessionware on a backend, beside the plain one."""

    label: str  # in the app's name, "sessionware memory 1 KB sealed (explicit)"
    modes: tuple[str, ...] = ("explicit",)
    scenarios: tuple[str, ...] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    login_extra: Callable[[], Callable[[], Mapping[str, Any]]] | None = None
    backends: tuple[str, ...] | None = None  # None: every backend
    hide_compare_and_set: bool = False
    owner: bool = False


PLAIN = Variant("", modes=tuple(MODES))
VARIANTS = (
    PLAIN,
    Variant("1 KB", login_extra=_profile, backends=("memory",)),
    Variant(
        "1 KB sealed",
        config={"encryption_keys": [KEY]},
        login_extra=_profile,
        backends=("memory",),
    ),
    Variant(
        "owner_key",
        scenarios=("read", "counter", "login"),
        config={"owner_key": "uid"},
        login_extra=_new_owner,
        owner=True,
    ),
    Variant("without CAS", scenarios=("counter", "login"), hide_compare_and_set=True),
)


@dataclass
class Recipe:
    """How one sessionware app is built, so that the counting pass can build its twin."""

    name: str
    backend: str
    mode: str
    variant: Variant
    slug: str  # what keeps its keys, table or file apart from the other apps'

    def plugin(self, servers: Servers, suffix: str = "") -> Any:
        """A new plugin object as this app's store has it (compare-and-set hidden or not);
        `suffix` gives it storage of its own (the counting pass)."""
        options = storage_options(self.backend, servers, self.slug + suffix)
        if options is None:
            raise LookupError(f"{self.backend}: its server is not running")
        plugin = storage_factory(self.backend)(**options)
        return WithoutCompareAndSet(plugin) if self.variant.hide_compare_and_set else plugin

    def build(self, storage: Any) -> BenchApp:
        with quiet("sessionware"):  # the warning of a store without compare-and-set
            store = Store(Config(storage=storage, **self.variant.config))
        extra = self.variant.login_extra
        return starlette_apps.sessionware(
            store,
            auto_save=MODES[self.mode],
            name=self.name,
            backend=self.backend,
            login_extra=None if extra is None else extra(),
            scenarios=self.variant.scenarios,
        )


@dataclass
class Lineup:
    apps: list[BenchApp] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # backend -> raw pair
    floors: list[BenchApp] = field(default_factory=list)  # counter only: the pair in a handler
    backends: list[str] = field(default_factory=list)  # sessionware backends that run
    recipes: list[Recipe] = field(default_factory=list)  # every sessionware app, to count
    notes: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, BenchApp]:
        return {bench.name: bench for bench in [*self.apps, *self.floors]}

    async def close(self) -> None:
        for bench in [*self.apps, *self.floors]:
            await bench.close()
        for pair in self.raw.values():
            await pair.close()


def sessionware_name(backend: str, mode: str, label: str = "") -> str:
    return f"sessionware {backend}{' ' + label if label else ''} ({mode})"


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """The logger's warnings left out (a store built on purpose without compare-and-set)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _sessionware(lineup: Lineup, backend: str, servers: Servers) -> None:
    """Every variant of one backend, or a note when its plugin or server is missing."""
    try:
        storage_factory(backend)
    except Exception as exc:
        lineup.notes.append(f"sessionware {backend}: skipped, the plugin is not importable ({exc})")
        return
    built: list[tuple[Recipe, BenchApp]] = []
    for variant in VARIANTS:
        if variant.backends is not None and backend not in variant.backends:
            continue
        for mode in variant.modes:
            slug = "-".join([mode, *variant.label.replace("-", " ").split()])
            if storage_options(backend, servers, slug) is None:
                lineup.notes.append(f"sessionware {backend}: skipped, its server is not running")
                return
            recipe = Recipe(
                sessionware_name(backend, mode, variant.label), backend, mode, variant, slug
            )
            try:
                built.append((recipe, recipe.build(recipe.plugin(servers))))
            except Exception as exc:
                lineup.notes.append(f"{recipe.name}: skipped, {type(exc).__name__}: {exc}")
                if variant is PLAIN:
                    return
    lineup.apps.extend(bench for _, bench in built)
    lineup.recipes.extend(recipe for recipe, _ in built)
    lineup.backends.append(backend)


def _peer(lineup: Lineup, what: str, build: Callable[[], BenchApp]) -> None:
    try:
        lineup.apps.append(build())
    except ImportError as exc:
        lineup.notes.append(f"{what}: skipped, {exc} (benchmarks/run installs the bench group)")


def _starsessions_memory(autoload: bool) -> Callable[[], BenchApp]:
    def build() -> BenchApp:
        from starsessions import InMemoryStore

        mode = "autoload" if autoload else "lazy"
        return starlette_apps.starsessions(
            InMemoryStore(),
            autoload=autoload,
            name=f"starsessions memory ({mode})",
            backend="memory",
        )

    return build


def _starsessions_redis(url: str, autoload: bool) -> Callable[[], BenchApp]:
    def build() -> BenchApp:
        from redis.asyncio import Redis
        from starsessions.stores.redis import RedisStore

        mode = "autoload" if autoload else "lazy"
        client = Redis.from_url(url)
        store = RedisStore(connection=client, prefix=f"bench-starsessions-{mode}:")
        bench = starlette_apps.starsessions(
            store, autoload=autoload, name=f"starsessions redis ({mode})", backend="redis"
        )
        bench.close = client.aclose
        return bench

    return build


def _litestar_memory() -> BenchApp:
    from litestar.stores.memory import MemoryStore

    return litestar_apps.server_side(MemoryStore(), backend="memory")


def _litestar_redis(url: str) -> Callable[[], BenchApp]:
    def build() -> BenchApp:
        from litestar.stores.redis import RedisStore
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        bench = litestar_apps.server_side(
            RedisStore(client, namespace="bench-litestar"), backend="redis"
        )
        bench.close = client.aclose
        return bench

    return build


def raw_pair(backend: str, servers: Servers, label: str) -> Any:
    """A new raw client pair of `backend` (to be opened), or None when it has none here."""
    if backend == "redis" and servers.redis is not None:
        return RedisPair(servers.redis.url)
    if backend == "memcache" and servers.memcached is not None:
        return MemcachePair(servers.memcached.address)
    if backend == "sqlite":
        return SqlitePair(servers.tmp / f"{label}.sqlite3")
    if backend == "postgres" and servers.postgres is not None:
        return PostgresPair(servers.postgres.url, f"bench_{label}_pair")
    return None


async def _raw(lineup: Lineup, backend: str, servers: Servers) -> None:
    """The raw pair of `backend`, and the same pair done inside a bare app's handler."""
    raw, inside = raw_pair(backend, servers, "raw"), raw_pair(backend, servers, "floor")
    if raw is None or inside is None:
        return
    await raw.open()
    await inside.open()
    lineup.raw[backend] = raw
    lineup.floors.append(starlette_apps.floor(inside, f"{FLOOR} {backend} pair in handler"))


async def build_lineup(backends: list[str], servers: Servers, *, peers: bool = True) -> Lineup:
    lineup = Lineup(notes=list(servers.notes))
    lineup.apps.append(starlette_apps.bare())
    lineup.apps.append(litestar_apps.bare())
    for backend in backends:
        _sessionware(lineup, backend, servers)
    redis_url = servers.redis.url if servers.redis is not None else None
    if peers:
        _peer(lineup, "starlette cookie sessions", starlette_apps.starlette_cookie)
        if "memory" in backends:
            for autoload in (False, True):
                _peer(lineup, "starsessions memory", _starsessions_memory(autoload))
            _peer(lineup, "litestar memory", _litestar_memory)
        if "redis" in backends and redis_url is not None:
            for autoload in (False, True):
                _peer(lineup, "starsessions redis", _starsessions_redis(redis_url, autoload))
            _peer(lineup, "litestar redis", _litestar_redis(redis_url))
    for backend in ("redis", "memcache", "sqlite", "postgres"):
        if backend in backends:
            await _raw(lineup, backend, servers)
    return lineup
