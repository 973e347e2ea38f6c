"""Every app and raw client of one run, built once, with a note for whatever had to be left out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessionware import Config, Store

from . import litestar_apps, starlette_apps
from .raw import MemcachePair, PostgresPair, RedisPair, SqlitePair
from .scenarios import BenchApp
from .servers import Servers, storage_factory, storage_options

MODES = {"explicit": False, "auto_save": True}
FLOOR = "bare +"


@dataclass
class Lineup:
    apps: list[BenchApp] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # backend -> raw pair
    floors: list[BenchApp] = field(default_factory=list)  # counter only: the pair in a handler
    backends: list[str] = field(default_factory=list)  # sessionware backends that run
    notes: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, BenchApp]:
        return {bench.name: bench for bench in [*self.apps, *self.floors]}

    async def close(self) -> None:
        for bench in [*self.apps, *self.floors]:
            await bench.close()
        for pair in self.raw.values():
            await pair.close()


def sessionware_name(backend: str, mode: str) -> str:
    return f"sessionware {backend} ({mode})"


def _sessionware(lineup: Lineup, backend: str, servers: Servers) -> None:
    """Both modes of one backend, or a note when its plugin or server is missing."""
    try:
        storage_factory(backend)
    except Exception as exc:
        lineup.notes.append(f"sessionware {backend}: skipped, the plugin is not importable ({exc})")
        return
    built: list[BenchApp] = []
    for mode, auto_save in MODES.items():
        options = storage_options(backend, servers, mode)
        if options is None:
            lineup.notes.append(f"sessionware {backend}: skipped, its server is not running")
            return
        try:
            store = Store(Config(storage=backend, storage_options=options))
        except Exception as exc:
            lineup.notes.append(f"sessionware {backend}: skipped, {type(exc).__name__}: {exc}")
            return
        name = sessionware_name(backend, mode)
        built.append(
            starlette_apps.sessionware(store, auto_save=auto_save, name=name, backend=backend)
        )
    lineup.apps.extend(built)
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


async def _raw(lineup: Lineup, backend: str, make: Callable[[], Any]) -> None:
    """The raw pair of `backend`, and the same pair done inside a bare app's handler."""
    raw, inside = make(), make()
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
    if "redis" in backends and redis_url is not None:
        await _raw(lineup, "redis", lambda: RedisPair(redis_url))
    if "memcache" in backends and servers.memcached is not None:
        address = servers.memcached.address
        await _raw(lineup, "memcache", lambda: MemcachePair(address))
    if "sqlite" in backends:
        paths = iter((servers.tmp / "raw.sqlite3", servers.tmp / "floor.sqlite3"))
        await _raw(lineup, "sqlite", lambda: SqlitePair(next(paths)))
    if "postgres" in backends and servers.postgres is not None:
        url = servers.postgres.url
        tables = iter(("bench_raw_pair", "bench_floor_pair"))
        await _raw(lineup, "postgres", lambda: PostgresPair(url, next(tables)))
    return lineup
