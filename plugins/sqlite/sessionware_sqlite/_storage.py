"""Sessions in one table of an SQLite file, reached through aiosqlite's worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sqlite3
import time

import aiosqlite
import pluggy

from ._config import SQLiteConfig
from ._schema import (
    SWEEP_BATCH,
    Statements,
    changed_rows,
    close_database,
    is_alive,
    open_database,
)

hookimpl = pluggy.HookimplMarker("sessionware")

log = logging.getLogger("sessionware.sqlite")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _expiry_ms(now_ms: int, expires_in: float | None) -> int | None:
    """Rounded up to the next millisecond, so that a short TTL never means "already gone"."""
    return None if expires_in is None else now_ms + math.ceil(expires_in * 1000)


class SQLiteStorage:
    """Sessions that survive restarts and are shared by every process using the same file.

    Built outside any event loop; the connection opens on the loop of the first call. When a
    later call comes from another loop (``asyncio.run`` twice, a test client per request, a
    WSGI app's sync calls beside async code), the storage moves to it: a file database
    reconnects, an in-memory one keeps its connection and data. A call while another loop's
    statement is still under way is refused: one loop at a time.
    """

    name = "sqlite"

    def __init__(
        self,
        *,
        database: str | os.PathLike[str] | None = None,
        table: str | None = None,
        gc_interval: float | None = None,
        reset_on_start: bool | None = None,
        url: str | None = None,
    ) -> None:
        self.config = SQLiteConfig.from_options(
            url=url,
            database=database,
            table=table,
            gc_interval=gc_interval,
            reset_on_start=reset_on_start,
        )
        self._sql = Statements.for_table(self.config.table)
        self._db: aiosqlite.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False
        self._in_flight = 0  # statements awaited right now, on whichever loop

    def __repr__(self) -> str:
        return f"SQLiteStorage(database={self.config.database!r}, table={self.config.table!r})"

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        db = self._db
        if db is None or self._loop is not asyncio.get_running_loop():
            db = await self._connection()
        self._in_flight += 1
        try:
            rows = await db.execute_fetchall(self._sql.select, (key, _now_ms()))
        finally:
            self._in_flight -= 1
        for (value,) in rows:
            return value  # type: ignore[no-any-return]
        return None

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        db = self._db
        if db is None or self._loop is not asyncio.get_running_loop():
            db = await self._connection()
        expiry = _expiry_ms(_now_ms(), expires_in)
        self._in_flight += 1
        try:
            await db.execute_fetchall(self._sql.upsert, (key, bytes(value), expiry))
        finally:
            self._in_flight -= 1

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        """One conditional statement: atomic against every connection to the file, in this
        process or another, and it changes one row exactly when the comparison holds."""
        db = self._db
        if db is None or self._loop is not asyncio.get_running_loop():
            db = await self._connection()
        now = _now_ms()
        expiry = _expiry_ms(now, expires_in)
        parameters: tuple[object, ...]
        if expected is None:
            statement, parameters = self._sql.cas_create, (key, bytes(value), expiry, now)
        else:
            statement, parameters = (
                self._sql.cas_replace,
                (bytes(value), expiry, key, expected, now),
            )
        self._in_flight += 1
        try:
            return await changed_rows(db, statement, parameters) == 1
        finally:
            self._in_flight -= 1

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        db = self._db
        if db is None or self._loop is not asyncio.get_running_loop():
            db = await self._connection()
        self._in_flight += 1
        try:
            await db.execute_fetchall(self._sql.delete, (key,))
        finally:
            self._in_flight -= 1

    @hookimpl
    async def storage_reset(self) -> None:
        db = await self._connection()
        await db.execute_fetchall(self._sql.reset)

    @hookimpl
    async def storage_close(self) -> None:
        """Stop the sweep and close the connection; a later call opens a new one."""
        db, self._db = self._db, None
        sweeper, self._sweeper = self._sweeper, None
        running = asyncio.get_running_loop()
        if sweeper is not None and not sweeper.done() and sweeper.get_loop() is running:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if db is not None:
            await close_database(db)

    async def sweep(self) -> int:
        """Delete every expired row now; returns how many went. Rows without expiry stay."""
        db = await self._connection()
        removed = 0
        self._in_flight += 1
        try:
            while True:
                count = await changed_rows(db, self._sql.sweep, (_now_ms(), SWEEP_BATCH))
                removed += count
                if count < SWEEP_BATCH:
                    return removed
        finally:
            self._in_flight -= 1

    async def _connection(self) -> aiosqlite.Connection:
        """The open connection for the running loop, opening it once however many tasks ask."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            stale = self._move_to(loop)
            if stale is not None:
                try:
                    await close_database(stale)
                except Exception:
                    log.warning("sqlite storage: closing the old connection of %r failed", self)
        assert self._lock is not None
        async with self._lock:
            db = self._db
            if db is None:
                db = await self._open()
                self._db = db
            if self._sweeper is None:
                self._sweeper = loop.create_task(
                    self._sweep_forever(), name=f"sessionware-sqlite-sweeper:{self.config.table}"
                )
            return db

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> aiosqlite.Connection | None:
        """Rebind to `loop`; returns the old connection when it is to be closed."""
        old = self._loop
        if old is not None and old.is_running() and not old.is_closed() and self._in_flight:
            raise RuntimeError(
                f"{self!r} is in use on another event loop right now; "
                "give each event loop (each thread) a storage of its own"
            )
        self._loop = loop
        self._lock = asyncio.Lock()
        # The old sweeper notices it is no longer current and ends if its loop ever resumes.
        self._sweeper = None
        db = self._db
        if db is None:
            return None
        if self.config.in_memory and is_alive(db):
            return None  # the data lives in this connection: keep it
        if self.config.in_memory:
            log.warning(
                "sqlite storage: the in-memory database of %r was lost with its event loop; "
                "starting an empty one",
                self,
            )
        # A file is simply opened again, so nothing depends on the old worker thread.
        self._db = None
        return db

    async def _open(self) -> aiosqlite.Connection:
        try:
            db = await open_database(self.config, self._sql)
        except sqlite3.Error as exc:
            raise sqlite3.OperationalError(
                f"cannot open sqlite database {self.config.database!r}: {exc}"
            ) from exc
        if self.config.reset_on_start and not self._started:
            try:
                await db.execute_fetchall(self._sql.reset)
            except BaseException:
                await close_database(db)
                raise
        self._started = True
        return db

    async def _sweep_forever(self) -> None:
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(self.config.gc_interval)
            if self._sweeper is not me or self._db is None:
                return
            pending = asyncio.ensure_future(self.sweep())
            try:
                await asyncio.shield(pending)
            except asyncio.CancelledError:
                # Let the statement finish while this loop still runs: aiosqlite's worker
                # thread dies if it answers to a loop that has been closed meanwhile.
                await asyncio.wait([pending])
                raise
            except Exception:
                log.warning("sqlite storage: sweeping %r failed", self, exc_info=True)
