"""The redis plugin's own command path against redis-py's client on a BlockingConnectionPool,
and what one compare-and-set costs against one SET.

    .venv/bin/python -m benchmarks.redis_paths [--quick]

Two storages with the same hooks, on one redis-server this script starts:

- "connection list": the plugin as it is (`RedisStorage(url=...)`): its own list of redis-py
  connections, an admission semaphore, one deadline per command.
- "redis-py pool": the same hooks written the plain redis-py way, on
  `Redis(connection_pool=BlockingConnectionPool(max_connections=50, timeout=5,
  socket_timeout=5))`: the pool makes callers wait, bounded, for a free connection.

Each runs a sessionware counter app (explicit save) with one client and with 64 at once,
saving the way the core does now (GET, then a compare-and-set of what it loaded) and, with
the hook hidden, the way it did before R21 (GET, then SET), and the single storage calls one
at a time. Rounds
interleave as in `benchmarks/run`; medians of µs per request and of this process's CPU µs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from sessionware import Config, Store, hookimpl
from sessionware_redis import RedisStorage
from sessionware_redis._storage import REPLACE_IF_EQUAL, milliseconds

from .bench import Crowd
from .calls import WithoutCompareAndSet
from .driver import CheckFailed, Plan, Series, measure
from .lineup import quiet
from .scenarios import ScenarioRun, scenario_client
from .servers import ROOT  # noqa: F401  (puts the repository on sys.path for tests.support)
from .starlette_apps import sessionware

CROWD = 64
PAYLOAD = b"\x94\xcb" + b"\x41\xda" * 16 + b"counter-session-payload"  # as benchmarks/raw.py
FULL = (Plan(rounds=61, batch=0.01, warmup=0.1), Plan(rounds=31, batch=0.05, warmup=0.2))
QUICK = (Plan(rounds=15, batch=0.005, warmup=0.05), Plan(rounds=7, batch=0.03, warmup=0.1))


class PoolStorage:
    """The storage hooks on redis-py's client and BlockingConnectionPool, nothing of ours."""

    def __init__(self, url: str, prefix: str) -> None:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=50, timeout=5.0, socket_timeout=5.0, socket_connect_timeout=5.0
        )
        self._client = Redis(connection_pool=pool)
        self._script = self._client.register_script(REPLACE_IF_EQUAL)  # EVALSHA, NOSCRIPT: load
        self._prefix = prefix

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        value: Any = await self._client.get(self._prefix + key)
        return value  # type: ignore[no-any-return]

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        px = None if expires_in is None else milliseconds(expires_in)
        await self._client.set(self._prefix + key, value, px=px)

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        name = self._prefix + key
        if expected is None:
            px = None if expires_in is None else milliseconds(expires_in)
            return bool(await self._client.set(name, value, nx=True, px=px))
        ttl = b"" if expires_in is None else milliseconds(expires_in)
        return bool(await self._script(keys=[name], args=[expected, value, ttl]))

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        await self._client.unlink(self._prefix + key)

    @hookimpl
    async def storage_reset(self) -> None:
        async for key in self._client.scan_iter(match=self._prefix + "*", count=500):
            await self._client.unlink(key)

    @hookimpl
    async def storage_close(self) -> None:
        await self._client.aclose()


class Calls:
    """One storage hook called `count` times in a row, on one task."""

    width = 1

    def __init__(self, name: str, storage: Any, operation: str) -> None:
        self.name = name
        self._storage = storage
        self._operation = operation
        self._fresh = itertools.count()
        self._current = PAYLOAD
        self._failed = 0

    async def run(self, count: int) -> None:
        storage, operation = self._storage, self._operation
        for _ in range(count):
            if operation == "GET":
                await storage.storage_get(key="calls")
            elif operation == "SET PX":
                await storage.storage_set(key="calls", value=PAYLOAD, expires_in=60)
            elif operation == "SET NX PX":
                key = f"fresh-{next(self._fresh)}"
                if not await storage.storage_compare_and_set(
                    key=key, expected=None, value=PAYLOAD, expires_in=60
                ):
                    self._failed += 1
            else:
                following = PAYLOAD[::-1] if self._current == PAYLOAD else PAYLOAD
                if await storage.storage_compare_and_set(
                    key="cas", expected=self._current, value=following, expires_in=60
                ):
                    self._current = following
                else:
                    self._failed += 1

    def check(self) -> None:
        if self._failed:
            raise CheckFailed(f"{self.name}: {self._failed} compare-and-sets answered False")


async def _prepare_calls(storage: Any) -> None:
    await storage.storage_set(key="calls", value=PAYLOAD, expires_in=600)
    await storage.storage_set(key="cas", value=PAYLOAD, expires_in=600)


async def count_round_trips(storage: Any, call: str) -> float:
    """Commands written to the socket per call, counted on redis-py's connections."""
    sent = 0
    pack = AbstractConnection.pack_command

    def counting(connection: AbstractConnection, *args: Any) -> Any:
        nonlocal sent
        sent += 1
        return pack(connection, *args)

    subject = Calls(call, storage, call)
    await _prepare_calls(storage)
    await subject.run(1)  # connections open, the script is loaded
    AbstractConnection.pack_command = counting  # type: ignore[method-assign, assignment]
    try:
        await subject.run(100)
    finally:
        AbstractConnection.pack_command = pack  # type: ignore[method-assign]
    subject.check()
    return sent / 100


async def server_usec(url: str) -> dict[str, tuple[int, float]]:
    """(calls, µs per call) of SET, GET and EVALSHA as redis-server measured them itself."""
    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec_per_call"]))
        for name, v in stats.items()
        if name in ("cmdstat_set", "cmdstat_get", "cmdstat_evalsha")
    }


def _row(series: Series) -> str:
    return (
        f"  {series.name:<44} {series.median:>8.1f} {series.per_second:>10,.0f}"
        f" {series.spread:>7.1%} {series.cpu_median:>8.1f}"
    )


def _table(title: str, unit: str, found: dict[str, Series], failed: dict[str, str]) -> str:
    lines = [title, f"  {'subject':<44} {unit:>8} {'per s':>10} {'spread':>7} {'cpu µs':>8}"]
    lines += [_row(series) for series in sorted(found.values(), key=lambda s: s.name)]
    lines += [f"  FAILED {name}: {why}" for name, why in failed.items()]
    return "\n".join(lines)


async def main(quick: bool) -> int:
    from tests.support.redis_servers import start_redis

    plan, crowd_plan = QUICK if quick else FULL
    server = start_redis()
    stores: list[Store] = []
    call_storages: list[Any] = []
    try:
        url = server.url
        makers: dict[str, Callable[[str], Any]] = {
            "connection list": lambda prefix: RedisStorage(url=url, key_prefix=prefix),
            "redis-py pool": lambda prefix: PoolStorage(url, prefix),
        }
        apps: list[ScenarioRun] = []
        crowds: list[Crowd] = []
        calls: list[Calls] = []
        for path, make in makers.items():
            for save in ("SET", "compare-and-set"):
                name = f"{path}, save by {save}"
                inner = make(f"bench-{len(stores)}:")
                storage = WithoutCompareAndSet(inner) if save == "SET" else inner
                with quiet("sessionware"):  # its warning about the hidden hook
                    store = Store(Config(storage=storage))
                stores.append(store)
                bench = sessionware(store, auto_save=False, name=name, backend="redis")
                apps.append(ScenarioRun(bench, "counter", await scenario_client(bench, "counter")))
                clients = [await scenario_client(bench, "counter") for _ in range(CROWD)]
                crowds.append(Crowd(bench, "counter", clients))
            storage = make(f"bench-calls-{path[:4]}:")
            call_storages.append(storage)
            await _prepare_calls(storage)
            for call in ("GET", "SET PX", "SET NX PX", "compare-and-set script"):
                calls.append(Calls(f"{path}: {call}", storage, call))
        print(f"redis command paths, redis-server {url}; medians of interleaved rounds\n")
        print(_table("counter, one client", "µs/req", *await measure(apps, plan)))
        print()
        print(
            _table(
                f"counter, {CROWD} clients at once", "µs/req", *await measure(crowds, crowd_plan)
            )
        )
        print()
        print(_table("storage calls, one at a time", "µs/call", *await measure(calls, plan)))
        print("\nround trips per call (commands written to a socket)")
        for path, make in makers.items():
            storage = make(f"bench-trips-{path[:4]}:")
            trips = {
                call: await count_round_trips(storage, call)
                for call in ("SET PX", "SET NX PX", "compare-and-set script")
            }
            await storage.storage_close()
            print(f"  {path:<18} " + ", ".join(f"{c} {n:g}" for c, n in trips.items()))
        print("\nredis-server's own time per command (INFO commandstats, whole run)")
        for command, (count, usec) in sorted((await server_usec(url)).items()):
            print(f"  {command:<8} {usec:>6.2f} µs per call over {count:,} calls")
    finally:
        for store in stores:
            await store.close()
        for storage in call_storages:
            await storage.storage_close()
        server.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_paths", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
