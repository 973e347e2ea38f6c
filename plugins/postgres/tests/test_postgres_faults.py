"""A restarted server, a stopped one, a frozen one, a killed connection: every call ends in
a result or an exception within the timeout, and service comes back by itself.

Each test has a cluster of its own and a hard deadline, so none can hang. Calls go through
the core's typed door (`StorageCalls`), which is how a `Store` sees the plugin: a plugin
failure reaches it as a `StorageError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import asyncpg  # type: ignore[import-untyped]
import pytest
import pytest_asyncio
from sessionware import StorageError
from sessionware.testing import StorageCalls
from sessionware_postgres import PostgresStorage

from tests.support.postgres_servers import PostgresServer

DEADLINE = 60.0
TIMEOUT = 0.5
# One call: the timeout, plus scheduling on a busy two-core machine.
CALL_BOUND = TIMEOUT + 1.0


@pytest_asyncio.fixture
async def backend(fresh_postgres: PostgresServer) -> AsyncIterator[StorageCalls]:
    storage = PostgresStorage(url=fresh_postgres.url, timeout=TIMEOUT, max_size=5)
    calls = StorageCalls(storage, "postgres")
    try:
        yield calls
    finally:
        await calls.close()


@dataclass
class Tally:
    """What a load saw: the slowest call, and each failure's exception."""

    done: int = 0
    failures: list[BaseException] = field(default_factory=list)
    slowest: float = 0.0

    async def time(self, call: Awaitable[object]) -> object:
        began = time.monotonic()
        try:
            return await call
        except StorageError as exc:
            self.failures.append(exc)
            return exc
        finally:
            self.done += 1
            self.slowest = max(self.slowest, time.monotonic() - began)


async def reached(tally: Tally, calls: int) -> None:
    """Until the load has made this many calls (the test's deadline bounds the wait)."""
    while tally.done < calls:  # noqa: ASYNC110 - a count, not an event
        await asyncio.sleep(0.01)


async def increment(backend: StorageCalls, key: str, tally: Tally) -> bool:
    """One compare-and-set increment; True when the server said it landed."""
    current = await tally.time(backend.get(key))
    if isinstance(current, StorageError):
        return False
    assert current is None or isinstance(current, bytes)
    value = str(int(current or b"0") + 1).encode()
    return await tally.time(backend.compare_and_set(key, current, value, 600)) is True


async def assert_healthy(backend: StorageCalls) -> None:
    keys = [f"after-{i}" for i in range(30)]
    await asyncio.gather(*(backend.set(key, key.encode(), 60) for key in keys))
    assert await asyncio.gather(*(backend.get(key) for key in keys)) == [k.encode() for k in keys]
    assert await backend.compare_and_set("after-0", b"after-0", b"next", 60) is True


async def test_a_restart_under_load_fails_calls_cleanly_then_serves_again(
    backend: StorageCalls, fresh_postgres: PostgresServer
) -> None:
    """Compare-and-set increments on a few counters while the server restarts: failures
    are StorageErrors within the timeout, no acknowledged increment is lost (the data
    persists), and the same storage object serves once the server is back."""
    tally = Tally()
    acknowledged = dict.fromkeys((f"counter-{i}" for i in range(4)), 0)
    stop = asyncio.Event()

    async def worker(key: str) -> None:
        while not stop.is_set():
            if await increment(backend, key, tally):
                acknowledged[key] += 1
            await asyncio.sleep(0.002)

    async with asyncio.timeout(DEADLINE):
        workers = [asyncio.create_task(worker(key)) for key in acknowledged for _ in range(3)]
        await reached(tally, 200)
        await asyncio.to_thread(fresh_postgres.stop)
        failed_before = len(tally.failures)
        await asyncio.sleep(1.0)  # down for a while: every call in this second fails
        assert len(tally.failures) > failed_before
        await asyncio.to_thread(fresh_postgres.start)
        recovered = tally.done
        await reached(tally, recovered + 200)
        stop.set()
        await asyncio.gather(*workers)
        await assert_healthy(backend)
        finals = {key: int(await backend.get(key) or b"0") for key in acknowledged}

    assert all(isinstance(exc, StorageError) for exc in tally.failures)
    assert all(exc.__cause__ is not None for exc in tally.failures)
    assert tally.slowest < CALL_BOUND
    # A compare-and-set that failed may or may not have landed; none that landed is lost.
    for key, count in acknowledged.items():
        assert finals[key] >= count, (key, finals[key], count)


async def test_a_stopped_server_fails_each_call_fast_and_a_started_one_serves(
    backend: StorageCalls, fresh_postgres: PostgresServer
) -> None:
    async with asyncio.timeout(DEADLINE):
        await backend.set("k", b"v", None)
        fresh_postgres.stop()
        for call in (backend.get("k"), backend.set("k", b"w", 60), backend.delete("k")):
            began = time.monotonic()
            with pytest.raises(StorageError, match="postgres storage failed"):
                await call
            assert time.monotonic() - began < CALL_BOUND
        with pytest.raises(StorageError):
            await backend.compare_and_set("k", b"v", b"w", 60)
        fresh_postgres.start()
        assert await backend.get("k") == b"v"
        await assert_healthy(backend)


async def test_a_frozen_server_times_every_call_out_then_serves_again(
    backend: StorageCalls, fresh_postgres: PostgresServer
) -> None:
    """SIGSTOP on every server process: connections stay open and nothing answers, so
    statements, the waits for a connection and new connections all run into the timeout."""
    async with asyncio.timeout(DEADLINE):
        await backend.set("k", b"v", None)
        fresh_postgres.pause()
        try:
            tally = Tally()
            calls: list[Awaitable[object]] = [backend.get("k") for _ in range(8)]
            calls += [backend.compare_and_set("k", b"v", b"w", 60) for _ in range(4)]
            await asyncio.gather(*(tally.time(call) for call in calls))
            assert len(tally.failures) == len(calls)
            assert all(isinstance(exc.__cause__, TimeoutError) for exc in tally.failures)
            assert tally.slowest < CALL_BOUND
            newcomer = StorageCalls(
                PostgresStorage(url=fresh_postgres.url, timeout=TIMEOUT), "postgres"
            )
            began = time.monotonic()
            with pytest.raises(StorageError, match="no connection within"):
                await newcomer.get("k")
            assert time.monotonic() - began < CALL_BOUND
        finally:
            fresh_postgres.resume()
        await newcomer.close()
        deadline = time.monotonic() + 10
        while isinstance(await Tally().time(backend.get("k")), StorageError):
            assert time.monotonic() < deadline, "no call succeeded after the server woke"
            await asyncio.sleep(0.05)
        assert await backend.get("k") == b"v"
        await assert_healthy(backend)


async def test_a_compare_and_set_whose_connection_dies_is_never_sent_again(
    backend: StorageCalls, fresh_postgres: PostgresServer
) -> None:
    """Its outcome is unknown to the client, so it fails; sending it again on a new
    connection could apply it twice. Here the server ended it before it ran: nothing ran."""
    admin = await asyncpg.connect(fresh_postgres.url)
    try:
        async with asyncio.timeout(DEADLINE):
            await backend.set("k", b"v", 600)
            async with admin.transaction():
                await admin.execute("SELECT 1 FROM sessionware_sessions WHERE key = 'k' FOR UPDATE")
                swap = asyncio.create_task(backend.compare_and_set("k", b"v", b"w", 600))
                waiting = None
                while not waiting:
                    await asyncio.sleep(0.01)
                    waiting = await admin.fetchval(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE application_name = 'sessionware' AND wait_event_type = 'Lock'"
                    )
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", waiting)
                with pytest.raises(StorageError) as raised:
                    await swap
                cause = raised.value.__cause__
                assert isinstance(cause, asyncpg.PostgresError | asyncpg.InterfaceError | OSError)
            await asyncio.sleep(0.2)  # time for a resent statement to land, were there one
            assert await backend.get("k") == b"v"
    finally:
        await admin.close()
