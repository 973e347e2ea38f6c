"""How many storage calls (and server commands) each scenario makes: counted, never timed.

The timed apps are left alone; a second store with a counting wrapper around the same
plugin runs a few requests of each scenario, so the count costs the timings nothing.
The commands that reach the server are counted too, so that a hook that costs two round
trips shows as two: redis's as redis-py writes them, memcached's by its own `stats`
(`cmd_get` counts `get` and `gets`, `cmd_set` counts `set`, `add` and `cas`).
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sessionware import hookimpl

from .driver import CheckFailed
from .scenarios import SCENARIOS, BenchApp, check_client, scenario_client

REQUESTS = 4

# What sessionware must do per request (R1, R2, R19, R22: a read is one get, no renewal;
# R21: a save is one compare-and-set of what was loaded, `expected=None` for a new session).
EXPECTED: dict[str, dict[str, int]] = {
    "untouched": {},
    "read": {"get": 1},
    "counter": {"get": 1, "compare_and_set": 1},
    "login": {"compare_and_set": 1},
}
# A storage without compare-and-set: the last save wins, whole (R21).
EXPECTED_WITHOUT_CAS: dict[str, dict[str, int]] = {
    "untouched": {},
    "read": {"get": 1},
    "counter": {"get": 1, "set": 1},
    "login": {"set": 1},
}
# S10: a login that names a new owner reads the owner's index and writes it (one
# compare-and-set) before the record itself; read and counter touch no index.
EXPECTED_OWNER: dict[str, dict[str, int]] = {
    **EXPECTED,
    "login": {"get": 1, "compare_and_set": 2},
}


class CountingStorage:
    """Passes the five required hooks through to a real plugin, counting each call."""

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


class CountingCompareAndSet(CountingStorage):
    """The same, plus the optional compare-and-set hook: without it the store would save
    with plain sets, and the counted store would not be the timed one."""

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        self.calls["compare_and_set"] += 1
        stored: bool = await self.inner.storage_compare_and_set(
            key=key, expected=expected, value=value, expires_in=expires_in
        )
        return stored


def has_compare_and_set(plugin: Any) -> bool:
    return callable(getattr(plugin, "storage_compare_and_set", None))


def counting(plugin: Any, name: str) -> CountingStorage:
    """A counting wrapper with exactly the hooks `plugin` has."""
    if has_compare_and_set(plugin):
        return CountingCompareAndSet(plugin, name)
    return CountingStorage(plugin, name)


class WithoutCompareAndSet:
    """A plugin with its compare-and-set hidden: the store saves with plain sets, as it did
    before R21, so the two can be timed side by side on the same plugin and server."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        value: bytes | None = await self.inner.storage_get(key=key)
        return value

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        await self.inner.storage_set(key=key, value=value, expires_in=expires_in)

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        await self.inner.storage_delete(key=key)

    @hookimpl
    async def storage_reset(self) -> None:
        await self.inner.storage_reset()

    @hookimpl
    async def storage_close(self) -> None:
        await self.inner.storage_close()


class ServerCommands(Protocol):
    """Commands sent to a server, counted before and after a scenario."""

    def snapshot(self) -> Counter[str]: ...

    def close(self) -> None: ...


class RedisCommands:
    """Commands redis-py wrote to a socket in this process, sync and async clients alike:
    one command, one round trip. Not the server's INFO commandstats, which also counts the
    GET and SET that a script runs inside the server, at no round trip."""

    def __init__(self) -> None:
        import redis.asyncio.connection
        import redis.connection

        self._sent: Counter[str] = Counter()
        self._patched: list[tuple[Any, str, Any]] = []
        # redis.asyncio packs every command with pack_command (the redis plugin calls it
        # itself); the sync client's send_command packs without it.
        self._count(redis.asyncio.connection.AbstractConnection, "pack_command")
        self._count(redis.connection.AbstractConnection, "send_command")

    def _count(self, cls: Any, method: str) -> None:
        original = getattr(cls, method)

        def counted(connection: Any, *args: Any, **kwargs: Any) -> Any:
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            self._sent[name.lower()] += 1
            return original(connection, *args, **kwargs)

        setattr(cls, method, counted)
        self._patched.append((cls, method, original))

    def snapshot(self) -> Counter[str]:
        return Counter(self._sent)

    def close(self) -> None:
        for cls, method, original in reversed(self._patched):
            setattr(cls, method, original)
        self._patched.clear()


class MemcachedCommands:
    """Commands memcached ran, from its `stats`, read over a socket of our own."""

    FIELDS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses")

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self._address = (host, int(port))

    def snapshot(self) -> Counter[str]:
        found: Counter[str] = Counter()
        with socket.create_connection(self._address, timeout=5) as connection:
            connection.sendall(b"stats\r\n")
            reply = b""
            while not reply.endswith(b"END\r\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                reply += chunk
        for line in reply.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in self.FIELDS:
                found[parts[1].removeprefix("cmd_")] = int(parts[2])
        return found

    def close(self) -> None:
        return None


def per_request(counts: Mapping[str, int]) -> dict[str, float]:
    return {name: n / REQUESTS for name, n in sorted(counts.items()) if n}


def expected_calls(plugin: Any, *, owner: bool = False) -> dict[str, dict[str, int]]:
    if not has_compare_and_set(plugin):
        return EXPECTED_WITHOUT_CAS
    return EXPECTED_OWNER if owner else EXPECTED


async def count_calls(
    build: Callable[[CountingStorage], BenchApp],
    plugin: Any,
    *,
    expected: dict[str, dict[str, int]],
    scenarios: tuple[str, ...] = tuple(SCENARIOS),
    server: ServerCommands | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """{scenario: {"storage": hook calls per request, "server": commands per request}}.

    `build` makes the app under test around the counting storage it is given. Raises
    CheckFailed when a scenario answers wrongly or makes other calls than `expected`.
    """
    storage = counting(plugin, "counted")
    bench = build(storage)
    found: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for scenario in scenarios:
            client = await scenario_client(bench, scenario)
            await client.run(1)  # connections open, scripts loaded: what every request finds
            storage.calls.clear()
            before = server.snapshot() if server is not None else Counter[str]()
            await client.run(REQUESTS)
            after = server.snapshot() if server is not None else Counter[str]()
            check_client(bench, scenario, client)
            calls = per_request(storage.calls)
            found[scenario] = {"storage": calls, "server": per_request(after - before)}
            wanted = {name: float(n) for name, n in expected[scenario].items()}
            if calls != wanted:
                raise CheckFailed(
                    f"{bench.name}, {scenario}: storage calls per request {calls}, "
                    f"expected {wanted}"
                )
    finally:
        await bench.close()
    return found
