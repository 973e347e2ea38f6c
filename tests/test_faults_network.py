"""R18 under fire: the storage server fails in the middle of a load, and the app survives it.

Each test gets a server of its own and runs the same users through three phases: a clean
start, a phase during which the fault strikes (server restarted, connections killed, server
frozen), and a phase after it. What must hold:

- every request either succeeds or ends in a `StorageError` or a 500, within a bound of a
  few timeouts: nothing hangs and nothing else is raised;
- the service recovers by itself (no restart of the app, no manual reconnect);
- no user ever sees another's data, and counters stay exact up to the requests that failed
  (a failed save may or may not have reached the server before its answer was lost);
- what the server still holds is intact. A server that kept its memory (killed connections,
  a frozen process) or persisted it (redis with an append-only file, PostgreSQL) still holds every
  session, and each is found with its data. A server restarted without persistence holds
  nothing: every user must then start over exactly once, under a new id (R3), and the new
  sessions work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sessionware import Config, Store

from tests.support.load import (
    OK,
    SERVER_ERROR,
    STORAGE_ERROR,
    LoadRun,
    counter_app,
    record_figure,
    recovery_seconds,
    scaled,
)
from tests.support.memcached_servers import start_memcached
from tests.support.postgres_servers import PostgresServer, start_postgres
from tests.support.processes import ServerProcess
from tests.support.redis_servers import RedisServer, redis_cli, start_redis

TIMEOUT = 0.5  # the plugins' socket_timeout / timeout, in seconds
# A request makes at most a few storage calls, each bounded by TIMEOUT (and a wait for a
# free connection by as much again); beyond this, a request is counted as hung.
NO_HANG = 6 * TIMEOUT + 3.0
RECOVERY_LIMIT = 20.0

SESSIONS = scaled("FAULT_SESSIONS", 40)
REQUESTS = scaled("FAULT_REQUESTS", 25)
IN_FLIGHT = scaled("FAULT_IN_FLIGHT", 20)
THINK = 0.1  # users pause between requests, so the load lasts across the fault

Fault = Callable[[], Awaitable[None]]


def require_plugin(module: str, storage_class: str) -> None:
    """Skip until the plugin is importable and has its storage class (it is being written)."""
    plugin = pytest.importorskip(module)
    if not hasattr(plugin, storage_class):
        pytest.skip(f"{module} has no {storage_class} yet")


# -- servers of the test's own ----------------------------------------------------------


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    require_plugin("sessionware_redis", "RedisStorage")
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis that writes every command to its append-only file before answering."""
    require_plugin("sessionware_redis", "RedisStorage")
    server = start_redis("--appendonly", "yes", "--appendfsync", "always")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def memcached() -> Iterator[ServerProcess]:
    require_plugin("sessionware_memcache", "MemcacheStorage")
    server = start_memcached()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    require_plugin("sessionware_postgres", "PostgresStorage")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def redis_store(server: RedisServer) -> Store:
    options = {"url": server.url, "key_prefix": "faults:", "socket_timeout": TIMEOUT}
    return Store(Config(storage="redis", storage_options=options))


def memcache_store(server: ServerProcess) -> Store:
    options = {"servers": server.address, "key_prefix": "faults:", "timeout": TIMEOUT}
    return Store(Config(storage="memcache", storage_options=options))


def postgres_store(server: PostgresServer) -> Store:
    options = {"url": server.url, "table": "faults", "timeout": TIMEOUT}
    return Store(Config(storage="postgres", storage_options=options))


# -- faults -----------------------------------------------------------------------------


def restart(server: ServerProcess, down_for: float = 0.5) -> Fault:
    """Stop the server, leave it down a moment, start it again on the same port."""

    async def fault() -> None:
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(server.start)

    return fault


def freeze(server: ServerProcess, frozen_for: float = 1.5) -> Fault:
    """SIGSTOP: connections stay open and nothing answers, so every call times out."""

    async def fault() -> None:
        server.pause()
        try:
            await asyncio.sleep(frozen_for)
        finally:
            server.resume()

    return fault


def kill_clients(server: RedisServer, times: int = 5, every: float = 0.2) -> Fault:
    """`CLIENT KILL TYPE normal` from another connection: every pooled connection dies."""

    async def fault() -> None:
        for _ in range(times):
            reply = await asyncio.to_thread(
                redis_cli, server.port, "CLIENT", "KILL", "TYPE", "normal"
            )
            assert reply.strip().isdigit(), f"CLIENT KILL answered {reply!r}"
            await asyncio.sleep(every)

    return fault


# -- the three phases -------------------------------------------------------------------


@dataclass
class Survival:
    before: LoadRun
    during: LoadRun
    after: LoadRun
    failing_after_fault: float  # seconds from the fault's end to the last failed request
    recovery: float
    stored: list[str]

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.before.completed + self.during.completed + self.after.completed,
            "failed_during_fault": self.during.failed,
            "outcomes_during_fault": dict(self.during.outcomes),
            "slowest_failure_s": round(max(self.during.failure_seconds, default=0.0), 3),
            "failing_after_fault_s": round(self.failing_after_fault, 3),
            "recovery_s": round(self.recovery, 3),
            "sessions_lost": self.during.losses + self.after.losses,
            "violations": len(self.during.violations + self.after.violations + self.stored),
        }


async def survive(store: Store, fault: Fault, *, server_forgets: bool) -> Survival:
    app = counter_app(store, auto_save=True)

    def phase(requests: int, **extra: Any) -> LoadRun:
        return LoadRun(app, SESSIONS, requests, IN_FLIGHT, request_timeout=NO_HANG, **extra)

    before = await phase(3).run()
    assert dict(before.outcomes) == {OK: SESSIONS * 3}, before.violations
    assert before.violations == []

    during = phase(REQUESTS, think=THINK, allow_loss=server_forgets, users=before.users)

    ended = 0.0

    async def strike() -> None:
        nonlocal ended
        await during.reached(0.2)
        await fault()
        ended = time.monotonic()

    async with asyncio.TaskGroup() as group:
        group.create_task(during.run())
        group.create_task(strike())
    failing_after_fault = max(0.0, during.last_failure - ended) if during.failed else 0.0
    recovery = await recovery_seconds(app, RECOVERY_LIMIT, request_timeout=NO_HANG)
    after = await phase(3, allow_loss=server_forgets, users=before.users).run()
    stored = await after.verify_stored(store)
    return Survival(before, during, after, failing_after_fault, recovery, stored)


def assert_survived(result: Survival, *, server_forgets: bool, fails_requests: bool) -> None:
    during, after = result.during, result.after
    if fails_requests:  # the fault really struck: a test that saw nothing proves nothing
        assert during.failed > 0, dict(during.outcomes)
    assert set(during.outcomes) <= {OK, SERVER_ERROR, STORAGE_ERROR}, dict(during.outcomes)
    assert max(during.failure_seconds, default=0.0) <= NO_HANG
    assert during.violations == []
    assert dict(after.outcomes) == {OK: SESSIONS * 3}, after.violations
    assert after.violations == []
    assert result.stored == []
    started = {user.sessions_started for user in after.users}
    # Forgetting everything, the server makes each user start over exactly once; otherwise never.
    assert started == ({2} if server_forgets else {1})


async def check(
    label: str, store: Store, fault: Fault, *, server_forgets: bool, fails_requests: bool = True
) -> None:
    async with store:
        result = await survive(store, fault, server_forgets=server_forgets)
    record_figure("fault", fault=label, sessions=SESSIONS, **result.figures())
    assert_survived(result, server_forgets=server_forgets, fails_requests=fails_requests)


# -- redis ------------------------------------------------------------------------------


async def test_redis_connections_killed_during_load_lose_nothing(redis: RedisServer) -> None:
    await check(
        "redis: CLIENT KILL TYPE normal x5",
        redis_store(redis),
        kill_clients(redis),
        server_forgets=False,
        fails_requests=False,  # the plugin sends a command again on a killed connection
    )


async def test_redis_frozen_during_load_times_out_and_loses_nothing(redis: RedisServer) -> None:
    await check(
        "redis: frozen 1.5 s (SIGSTOP)", redis_store(redis), freeze(redis), server_forgets=False
    )


async def test_redis_restarted_with_persistence_keeps_every_session(
    persistent_redis: RedisServer,
) -> None:
    await check(
        "redis (appendfsync always): restarted",
        redis_store(persistent_redis),
        restart(persistent_redis),
        server_forgets=False,
    )


async def test_redis_restarted_without_persistence_starts_everyone_over(
    redis: RedisServer,
) -> None:
    await check(
        "redis (no persistence): restarted", redis_store(redis), restart(redis), server_forgets=True
    )


# -- memcached --------------------------------------------------------------------------


async def test_memcached_frozen_during_load_times_out_and_loses_nothing(
    memcached: ServerProcess,
) -> None:
    await check(
        "memcached: frozen 1.5 s (SIGSTOP)",
        memcache_store(memcached),
        freeze(memcached),
        server_forgets=False,
    )


async def test_memcached_restarted_starts_everyone_over(memcached: ServerProcess) -> None:
    await check(
        "memcached: restarted", memcache_store(memcached), restart(memcached), server_forgets=True
    )


# -- postgres ---------------------------------------------------------------------------


async def test_postgres_restarted_keeps_every_session(postgres: PostgresServer) -> None:
    """A fast shutdown ends every pooled connection; the pool replaces them once it is back."""
    await check(
        "postgres: restarted (fast shutdown)",
        postgres_store(postgres),
        restart(postgres),
        server_forgets=False,
    )
