"""Sessions in one PostgreSQL table, through an asyncpg pool of the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pluggy

from ._config import PostgresConfig
from ._schema import SWEEP_BATCH, Statements, microseconds, prepare_table

hookimpl = pluggy.HookimplMarker("sessionware")

log = logging.getLogger("sessionware.postgres")

#: How the storage's connections show in pg_stat_activity.
APPLICATION_NAME = "sessionware"

_BUSY_HINT = ": every one of the max_size={} connections is busy, or the server does not answer"


class _Deadlines:
    """Bounds every call made on one event loop by `seconds`, with one timer for them all.

    A timer per call (asyncio.timeout, or asyncpg's own per statement) cost about 5 µs of
    CPU per get + set pair more than this: a few per cent of a session request. Every call
    here gets the same `seconds`, so deadlines fall in the order calls begin: the oldest
    running call is the next one due, and a single timer set for it is all that is needed.
    A call that runs out of time is cancelled as `asyncio.timeout` would cancel it (asyncpg
    then asks the server to cancel its statement), and its CancelledError is turned into a
    TimeoutError.
    """

    __slots__ = ("_check", "_due", "_loop", "_overdue", "_seconds")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self._loop = loop
        self._seconds = seconds
        self._due: dict[asyncio.Task[Any], float] = {}  # oldest first
        self._overdue: set[asyncio.Task[Any]] = set()
        self._check: asyncio.TimerHandle | None = None

    def start(self, task: asyncio.Task[Any]) -> int:
        """Bound the call `task` begins; returns the cancellations it already had."""
        due = self._loop.time() + self._seconds
        self._due[task] = due
        if self._check is None:
            self._check = self._loop.call_at(due, self._expire)
        return task.cancelling()

    def stop(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)
        self._overdue.discard(task)

    def ran_out(self, task: asyncio.Task[Any], cancelling: int, exc: BaseException) -> bool:
        """Whether `exc` is this bound's cancellation, and not (also) someone else's.

        The cancellation this bound asked for is taken back in any case, so that the
        caller's own timeouts and cancellations count as if it never happened.
        """
        if task not in self._overdue:
            return False
        self._overdue.discard(task)
        return task.uncancel() <= cancelling and isinstance(exc, asyncio.CancelledError)

    def _expire(self) -> None:
        self._check = None
        now = self._loop.time()
        while self._due:
            task, due = next(iter(self._due.items()))
            if due > now:
                self._check = self._loop.call_at(due, self._expire)
                return
            del self._due[task]
            self._overdue.add(task)
            task.cancel()


async def _keep_session_state(connection: Any) -> None:
    """The pool's reset on release. Its default (RESET ALL, UNLISTEN *, …) costs a round
    trip per call, and the storage never changes a connection's session state."""


def _server_settings(timeout: float) -> dict[str, str]:
    """Set on each connection. The server gives up a statement after twice `timeout`: the
    client gives up first and asks the server to cancel; should that request be lost, a
    statement whose caller saw a timeout still cannot land much later."""
    return {
        "application_name": APPLICATION_NAME,
        "statement_timeout": str(math.ceil(2 * timeout * 1000)),
    }


@dataclass(eq=False)
class _Binding:
    """What belongs to one event loop: asyncpg pools and tasks cannot move between loops."""

    loop: asyncio.AbstractEventLoop
    timeout: float
    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    pool: Any = None
    sweeper: asyncio.Task[None] | None = None
    releases: set[asyncio.Task[None]] = field(default_factory=set)
    deadlines: _Deadlines = field(init=False)

    def __post_init__(self) -> None:
        self.deadlines = _Deadlines(self.loop, self.timeout)


class PostgresStorage:
    """Sessions shared by every process and machine that reaches the same table.

    Built outside any event loop; the pool opens on the loop of the first call. When a
    later call comes from another loop (``asyncio.run`` twice, a test client per request),
    the storage leaves the old pool behind and opens a new one there. When the loop a pool
    belongs to shuts down (``asyncio.run`` cancels its tasks), the sweep task closes the
    pool while that loop still runs.
    """

    name = "postgres"

    def __init__(
        self,
        *,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        table: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        timeout: float | None = None,
        gc_interval: float | None = None,
        reset_on_start: bool | None = None,
    ) -> None:
        self.config = PostgresConfig.from_options(
            url=url,
            host=host,
            port=port,
            user=user,
            password=password,
            database=database,
            table=table,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            gc_interval=gc_interval,
            reset_on_start=reset_on_start,
        )
        self._sql = Statements.for_table(self.config.table)
        self._timeout = self.config.timeout
        self._binding: _Binding | None = None
        self._started = False

    def __repr__(self) -> str:
        return f"<PostgresStorage {self.config.describe()}>"

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        value: bytes | None = await self._fetch(self._sql.get, key)
        return value

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        await self._fetch(self._sql.set, key, bytes(value), microseconds(expires_in))

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        """One statement either way; never sent twice (a lost reply is an error)."""
        arguments = (key, bytes(value), microseconds(expires_in))
        if expected is None:
            done = await self._fetch(self._sql.create, *arguments)
        else:
            done = await self._fetch(self._sql.replace, *arguments, bytes(expected))
        return done is not None

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        await self._fetch(self._sql.delete, key)

    @hookimpl
    async def storage_reset(self) -> None:
        """Empty this storage's table; other tables, in the same database or not, stay."""
        await self._fetch(self._sql.reset)

    @hookimpl
    async def storage_close(self) -> None:
        """Stop the sweep and close the pool; a later call opens a new one."""
        binding, self._binding = self._binding, None
        if binding is None:
            return
        if binding.loop is not asyncio.get_running_loop():
            _abandon(binding)
            return
        sweeper, binding.sweeper = binding.sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await self._close_pool(binding)

    async def sweep(self) -> int:
        """Delete every expired row now; returns how many went. Rows without expiry stay."""
        removed = 0
        while True:
            count: int = await self._fetch(self._sql.sweep, SWEEP_BATCH)
            removed += count
            if count < SWEEP_BATCH:
                return removed

    async def _fetch(self, sql: str, *args: Any) -> Any:
        """Run one statement on a pooled connection, the whole call (waiting for a
        connection, opening one, the statement) bounded by `timeout`."""
        loop = asyncio.get_running_loop()
        binding = self._binding
        if binding is None or binding.loop is not loop:
            binding = self._bind(loop)
        task = asyncio.current_task()
        assert task is not None, "storage hooks run in a task"
        deadlines = binding.deadlines
        cancelling = deadlines.start(task)
        connection = None
        try:
            pool = binding.pool
            if pool is None:
                pool = await self._open(binding)
            connection = await pool.acquire()
            result = await connection.fetchval(sql, *args)
        except BaseException as exc:
            if connection is not None:
                _release_later(binding, pool, connection, self._timeout)
            if deadlines.ran_out(task, cancelling, exc):
                what = "connection" if connection is None else "answer"
                hint = _BUSY_HINT.format(self.config.max_size) if connection is None else ""
                raise TimeoutError(
                    f"postgres storage: no {what} within {self._timeout} s (timeout){hint}"
                ) from None
            raise
        finally:
            deadlines.stop(task)
        await pool.release(connection)
        return result

    def _bind(self, loop: asyncio.AbstractEventLoop) -> _Binding:
        """Move to `loop`, leaving whatever was opened on the previous one behind."""
        old, self._binding = self._binding, _Binding(loop, self._timeout)
        if old is not None:
            _abandon(old)
        return self._binding

    async def _open(self, binding: _Binding) -> Any:
        """The pool of `binding`, opened once however many calls ask at the same time."""
        async with binding.opening:
            if binding.pool is not None:
                return binding.pool
            config = self.config
            pool = await asyncpg.create_pool(
                host=config.host,
                port=config.port,
                user=config.user,
                password=config.password,
                database=config.database,
                min_size=config.min_size,
                max_size=config.max_size,
                timeout=config.timeout,
                server_settings=_server_settings(config.timeout),
                reset=_keep_session_state,
            )
            try:
                async with pool.acquire() as connection:
                    empty = config.reset_on_start and not self._started
                    await prepare_table(connection, self._sql, empty=empty)
            except BaseException:
                pool.terminate()
                raise
            self._started = True
            binding.pool = pool
            binding.sweeper = binding.loop.create_task(
                self._sweep_forever(binding), name=f"sessionware-postgres-sweep:{config.table}"
            )
            return pool

    async def _sweep_forever(self, binding: _Binding) -> None:
        try:
            while True:
                await asyncio.sleep(self.config.gc_interval)
                if self._binding is not binding or binding.pool is None:
                    return
                try:
                    await self.sweep()
                except Exception:
                    log.warning("postgres storage: sweeping %r failed", self, exc_info=True)
        except asyncio.CancelledError:
            # Not cancelled by storage_close (which lets go of the task first): the loop is
            # shutting down. Close the pool while the loop still runs its last callbacks.
            if binding.sweeper is asyncio.current_task():
                binding.sweeper = None
                await self._close_pool(binding)
            raise

    async def _close_pool(self, binding: _Binding) -> None:
        """Close gracefully within `timeout`; past it, or on any error, drop the sockets."""
        pool, binding.pool = binding.pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._timeout)
        except Exception:
            log.debug("postgres storage: closing the pool of %r failed", self, exc_info=True)
            pool.terminate()
        except asyncio.CancelledError:
            pool.terminate()
            raise


def _release_later(binding: _Binding, pool: Any, connection: Any, timeout: float) -> None:
    """Give a connection back once its statement is over, without making the caller wait.

    After a timeout or a cancellation asyncpg asks the server to cancel the statement; the
    connection serves again once the server confirms, or is dropped after `timeout`. Until
    then a write that timed out might still land, so the cancel is let through rather than
    cut short by dropping the connection first.
    """
    release = binding.loop.create_task(pool.release(connection, timeout=timeout))
    binding.releases.add(release)
    release.add_done_callback(_settle_release(binding))


def _settle_release(binding: _Binding) -> Callable[[asyncio.Task[None]], None]:
    def settle(release: asyncio.Task[None]) -> None:
        binding.releases.discard(release)
        if not release.cancelled() and release.exception() is not None:
            log.debug("postgres storage: a connection was dropped", exc_info=release.exception())

    return settle


def _abandon(binding: _Binding) -> None:
    """Let go of a binding whose loop is no longer the running one.

    A pool can only be closed on its own loop: that loop closes it when it runs again. A
    loop already closed cannot run anything; its sockets then close when collected.
    """
    pool, binding.pool = binding.pool, None
    sweeper, binding.sweeper = binding.sweeper, None
    if binding.loop.is_closed():
        return

    def close() -> None:
        if sweeper is not None:
            sweeper.cancel()
        if pool is not None:
            pool.terminate()

    with contextlib.suppress(RuntimeError):  # the loop closed just now
        binding.loop.call_soon_threadsafe(close)
