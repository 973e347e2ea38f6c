"""The WSGI section (S11): Flask apps called in-process through WSGI, timed and counted.

It runs in a thread of its own with no event loop (`asyncio.to_thread` from the main run),
as a WSGI server's worker does: sessionware's sync bridge then drives the store's own loop in
that thread, which is the path a Flask app takes in production.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessionware import Config, Store

from . import flask_apps
from .calls import REQUESTS, RedisCommands, ServerCommands, counting, expected_calls, per_request
from .driver import CheckFailed, Plan, Series, measure_sync, run_to_end
from .raw import LoopDrivenRedisPair, SyncRedisPair
from .scenarios import SCENARIOS, BenchApp, check_client
from .servers import Servers, storage_factory, storage_options
from .wsgi import WsgiRun, scenario_client

FLASK_BACKENDS = ("memory", "redis")
MODES = {"auto_save": True, "explicit": False}
FLOOR = "bare flask + redis pair in view"


def sessionware_name(backend: str, mode: str) -> str:
    return f"sessionware flask {backend} ({mode})"


@dataclass
class FlaskLineup:
    apps: list[BenchApp] = field(default_factory=list)
    floors: list[BenchApp] = field(default_factory=list)
    raw: list[SyncRedisPair] = field(default_factory=list)  # timed in the counter scenario
    helpers: list[SyncRedisPair] = field(default_factory=list)  # closed, not timed
    counted: dict[str, Callable[[], dict[str, dict[str, dict[str, float]]]]] = field(
        default_factory=dict
    )
    notes: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, BenchApp]:
        return {bench.name: bench for bench in [*self.apps, *self.floors]}


@dataclass
class FlaskResults:
    apps: dict[str, BenchApp] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Series]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _counting_cache(directory: str) -> tuple[Any, Counter[str]]:
    """cachelib's FileSystemCache, as Flask-Session's cachelib store uses it, with its get,
    set and delete counted: that store's storage calls."""
    from cachelib.file import FileSystemCache

    calls: Counter[str] = Counter()

    class CountingCache(FileSystemCache):  # type: ignore[misc]
        """Counts Flask-Session's calls; the cache's own bookkeeping (its file count, kept
        under a key of its own through the same methods) is left out."""

        def get(self, key: str) -> Any:
            calls["get"] += key != self._fs_count_file
            return super().get(key)

        def set(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
            calls["set"] += key != self._fs_count_file
            return super().set(key, value, *args, **kwargs)

        def delete(self, key: str, *args: Any, **kwargs: Any) -> Any:
            calls["delete"] += key != self._fs_count_file
            return super().delete(key, *args, **kwargs)

    return CountingCache(directory, threshold=500), calls


def _count(
    bench: BenchApp,
    calls: Callable[[], Counter[str]],
    expected: dict[str, dict[str, int]] | None,
    server: ServerCommands | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Calls per request of each scenario, as `calls.count_calls` counts them, in sync."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for scenario in SCENARIOS:
            client = scenario_client(bench, scenario)
            client.run(1)
            before_calls = Counter(calls())
            before = server.snapshot() if server is not None else Counter[str]()
            client.run(REQUESTS)
            after = server.snapshot() if server is not None else Counter[str]()
            check_client(bench, scenario, client)  # type: ignore[arg-type]
            made = per_request(Counter(calls()) - before_calls)
            found[scenario] = {"storage": made, "server": per_request(after - before)}
            if expected is not None:
                wanted = {name: float(n) for name, n in expected[scenario].items()}
                if made != wanted:
                    raise CheckFailed(
                        f"{bench.name}, {scenario}: storage calls per request {made}, "
                        f"expected {wanted}"
                    )
    finally:
        if server is not None:
            server.close()
    return found


def _sessionware_counted(
    backend: str, mode: str, servers: Servers
) -> Callable[[], dict[str, dict[str, dict[str, float]]]]:
    def count() -> dict[str, dict[str, dict[str, float]]]:
        options = storage_options(backend, servers, f"flask-{mode}-counted") or {}
        plugin = storage_factory(backend)(**options)
        storage = counting(plugin, backend)
        store = Store(Config(storage=storage))
        bench = flask_apps.sessionware(
            store, auto_save=MODES[mode], name=sessionware_name(backend, mode), backend=backend
        )
        server = RedisCommands() if backend == "redis" else None
        try:
            return _count(bench, lambda: storage.calls, expected_calls(plugin), server)
        finally:
            store.sync.close()

    return count


def build(servers: Servers, backends: list[str], *, peers: bool = True) -> FlaskLineup:
    lineup = FlaskLineup()
    try:
        import flask  # noqa: F401
    except ImportError as exc:
        lineup.notes.append(f"the Flask section: skipped, {exc}")
        return lineup
    lineup.apps.append(flask_apps.bare())
    redis_url = servers.redis.url if servers.redis is not None else None
    for backend in FLASK_BACKENDS:
        if backend not in backends or (backend == "redis" and redis_url is None):
            continue
        for mode, auto_save in MODES.items():
            options = storage_options(backend, servers, f"flask-{mode}") or {}
            store = Store(Config(storage=backend, storage_options=options))
            name = sessionware_name(backend, mode)
            lineup.apps.append(
                flask_apps.sessionware(store, auto_save=auto_save, name=name, backend=backend)
            )
            lineup.counted[name] = _sessionware_counted(backend, mode, servers)
    if peers:
        lineup.apps.append(flask_apps.flask_cookie())
        try:
            if redis_url is not None and "redis" in backends:
                lineup.apps.append(flask_apps.flask_session_redis(redis_url))
                lineup.counted["flask-session redis"] = _flask_session_redis_counted(redis_url)
            lineup.apps.append(flask_apps.flask_session_cachelib(servers.tmp / "flask-session"))
            lineup.counted["flask-session cachelib (files)"] = _flask_session_cachelib_counted(
                servers
            )
        except ImportError as exc:
            lineup.notes.append(f"Flask-Session: skipped, {exc} (benchmarks/run installs it)")
    if redis_url is not None and "redis" in backends:
        inside = SyncRedisPair(redis_url)
        lineup.raw.extend([SyncRedisPair(redis_url), LoopDrivenRedisPair(redis_url)])
        lineup.helpers.append(inside)
        lineup.floors.append(flask_apps.floor(inside, FLOOR))
    return lineup


def _flask_session_redis_counted(url: str) -> Callable[[], dict[str, dict[str, dict[str, float]]]]:
    def count() -> dict[str, dict[str, dict[str, float]]]:
        """A peer on redis: its storage calls are the commands it sends."""
        bench = flask_apps.flask_session_redis(url)
        found = _count(bench, Counter, None, RedisCommands())
        run_to_end(bench.close())
        return {
            scenario: {"storage": {}, "server": counts["server"]}
            for scenario, counts in found.items()
        }

    return count


def _flask_session_cachelib_counted(
    servers: Servers,
) -> Callable[[], dict[str, dict[str, dict[str, float]]]]:
    def count() -> dict[str, dict[str, dict[str, float]]]:
        from flask_session import Session

        bench = flask_apps.flask_session_cachelib(servers.tmp / "flask-session-counted")
        cache, calls = _counting_cache(str(servers.tmp / "flask-session-counted"))
        bench.app.config["SESSION_CACHELIB"] = cache
        Session(bench.app)
        return _count(bench, lambda: calls, None)

    return count


def run(
    servers: Servers, backends: list[str], plan: Plan, *, peers: bool = True, log: Any = print
) -> FlaskResults:
    """Build, count and time the Flask apps; call it in a thread with no event loop."""
    results = FlaskResults()
    lineup = build(servers, backends, peers=peers)
    results.apps = lineup.by_name()
    results.notes.extend(lineup.notes)
    try:
        log("counting the Flask apps' storage calls …")
        for name, count in lineup.counted.items():
            try:
                results.calls[name] = count()
            except Exception as exc:
                results.failed[f"{name}: storage calls"] = f"{type(exc).__name__}: {exc}"
        for scenario in SCENARIOS:
            subjects: list[Any] = []
            for bench in lineup.apps + (lineup.floors if scenario == "counter" else []):
                if not bench.runs(scenario):
                    continue
                try:
                    subjects.append(WsgiRun(bench, scenario, scenario_client(bench, scenario)))
                except Exception as exc:
                    results.failed[f"{bench.name}: {scenario}"] = f"{type(exc).__name__}: {exc}"
            if scenario == "counter":
                subjects.extend(lineup.raw)
            log(f"timing Flask {scenario}: {len(subjects)} subjects x {plan.rounds} rounds …")
            series, failed = measure_sync(subjects, plan)
            results.scenarios[scenario] = series
            for name, why in failed.items():
                results.failed[f"{name}: flask {scenario}"] = why
    finally:
        _close(lineup)
    return results


def _close(lineup: FlaskLineup) -> None:
    for bench in lineup.apps + lineup.floors:
        run_to_end(bench.close())
    for pair in lineup.raw + lineup.helpers:
        pair.close()
