"""How many storage calls (and redis commands) each scenario makes: counted, never timed.

The timed apps are left alone; a second store with a counting wrapper around the same
plugin runs a few requests of each scenario, so the count costs the timings nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sessionware import Config, Store, hookimpl

from .driver import CheckFailed
from .scenarios import SCENARIOS, check_client, scenario_client
from .starlette_apps import sessionware

REQUESTS = 4

# What sessionware must do per request (R1, R2, R19, R22: a read is one get, no renewal).
EXPECTED: dict[str, dict[str, int]] = {
    "untouched": {},
    "read": {"get": 1},
    "counter": {"get": 1, "set": 1},
    "login": {"set": 1},
}


class CountingStorage:
    """Passes the five hooks through to a real plugin, counting each call."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner = inner
        self.name = name
        self.calls: Counter[str] = Counter()

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        self.calls["get"] += 1
        value: bytes | None = await self.inner.storage_get(key=key)
        return value

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        self.calls["set"] += 1
        await self.inner.storage_set(key=key, value=value, expires_in=expires_in)

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        self.calls["delete"] += 1
        await self.inner.storage_delete(key=key)

    @hookimpl
    async def storage_reset(self) -> None:
        await self.inner.storage_reset()

    @hookimpl
    async def storage_close(self) -> None:
        await self.inner.storage_close()


class RedisCommands:
    """Commands the redis server ran, from INFO commandstats (the INFO itself left out)."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._client = Redis.from_url(url)

    async def snapshot(self) -> Counter[str]:
        stats = await self._client.info("commandstats")
        return Counter(
            {
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in stats.items()
                if name != "cmdstat_info"
            }
        )

    async def close(self) -> None:
        await self._client.aclose()


def per_request(counts: Counter[str]) -> dict[str, float]:
    return {name: n / REQUESTS for name, n in sorted(counts.items()) if n}


async def count_calls(
    backend: str, plugin: Any, *, auto_save: bool, redis_url: str | None
) -> dict[str, dict[str, dict[str, float]]]:
    """{scenario: {"storage": calls per request, "redis": commands per request}}.

    Raises CheckFailed when a scenario answers wrongly or makes other calls than EXPECTED.
    """
    counting = CountingStorage(plugin, backend)
    store = Store(Config(storage=counting))
    bench = sessionware(store, auto_save=auto_save, name=f"{backend} (counted)", backend=backend)
    commands = RedisCommands(redis_url) if redis_url is not None else None
    found: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for scenario in SCENARIOS:
            client = await scenario_client(bench, scenario)
            counting.calls.clear()
            before = await commands.snapshot() if commands is not None else Counter[str]()
            await client.run(REQUESTS)
            after = await commands.snapshot() if commands is not None else Counter[str]()
            check_client(bench, scenario, client)
            storage = per_request(counting.calls)
            found[scenario] = {"storage": storage, "redis": per_request(after - before)}
            expected = {name: float(n) for name, n in EXPECTED[scenario].items()}
            if storage != expected:
                raise CheckFailed(
                    f"sessionware {backend} ({bench.mode}), {scenario}: storage calls per "
                    f"request {storage}, expected {expected}"
                )
    finally:
        if commands is not None:
            await commands.close()
        await store.close()
    return found
