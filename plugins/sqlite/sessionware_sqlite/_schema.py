"""The SQL of one sessions table, and how a connection to it is opened.

The table name is the only text put into SQL; it is a checked identifier (see `_config`) and
is quoted as well. Everything else travels as a parameter.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass

import aiosqlite

from ._config import SQLiteConfig

#: How long a statement waits for another connection's write lock before "database is locked".
BUSY_TIMEOUT = 5.0

#: Rows a sweep deletes per statement, so that it never holds the write lock for long.
SWEEP_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Statements:
    create_table: str
    create_index: str
    select: str
    upsert: str
    cas_create: str
    cas_replace: str
    delete: str
    reset: str
    sweep: str

    @classmethod
    def for_table(cls, table: str) -> Statements:
        name = f'"{table}"'
        return cls(
            create_table=(
                f"CREATE TABLE IF NOT EXISTS {name} ("
                "key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expiry INTEGER)"
            ),
            create_index=f'CREATE INDEX IF NOT EXISTS "{table}_expiry" ON {name} (expiry)',
            select=f"SELECT value FROM {name} WHERE key = ? AND (expiry IS NULL OR expiry > ?)",
            upsert=(
                f"INSERT INTO {name} (key, value, expiry) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expiry = excluded.expiry"
            ),
            # Compare-and-set, one statement each: SQLite runs a write under the file's write
            # lock, so no other connection (nor process) can change the row in between.
            # cas_create inserts, or takes over a row that has expired; a live row is left
            # as it is and counts no change.
            cas_create=(
                f"INSERT INTO {name} (key, value, expiry) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expiry = excluded.expiry "
                f"WHERE {name}.expiry IS NOT NULL AND {name}.expiry <= ?"
            ),
            cas_replace=(
                f"UPDATE {name} SET value = ?, expiry = ? "
                "WHERE key = ? AND value = ? AND (expiry IS NULL OR expiry > ?)"
            ),
            delete=f"DELETE FROM {name} WHERE key = ?",
            reset=f"DELETE FROM {name}",
            sweep=(
                f"DELETE FROM {name} WHERE rowid IN "
                f"(SELECT rowid FROM {name} WHERE expiry <= ? LIMIT ?)"
            ),
        )


async def open_database(config: SQLiteConfig, sql: Statements) -> aiosqlite.Connection:
    """Connect in autocommit mode (every write is its own committed transaction), in WAL
    journal mode with a busy timeout so that several processes can share the file, and make
    sure the table and its expiry index exist."""
    db = aiosqlite.connect(config.database, timeout=BUSY_TIMEOUT, isolation_level=None)
    # aiosqlite's worker thread is not a daemon: a storage never closed would keep the
    # interpreter from exiting. SQLite itself is crash-safe, so a daemon thread loses nothing.
    # (`_thread` is aiosqlite's own attribute; it offers no public switch for this.)
    db._thread.daemon = True
    try:
        await db
    except BaseException:
        # aiosqlite stops its thread itself here and answers on this loop: wait for that,
        # or the thread would die noisily answering a loop that is closed by then.
        await asyncio.to_thread(db._thread.join, BUSY_TIMEOUT)
        raise
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                await _prepare(db, config, sql)
                return db
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL takes an exclusive lock without SQLite's busy
                # handler, so processes that start together retry here instead.
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
    except BaseException:
        await close_database(db)
        raise


async def _prepare(db: aiosqlite.Connection, config: SQLiteConfig, sql: Statements) -> None:
    if not config.in_memory:
        (mode,) = next(iter(await db.execute_fetchall("PRAGMA journal_mode")))
        if mode != "wal":
            await db.execute_fetchall("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL keeps every commit across a process crash and never corrupts
        # the file; only a power cut may lose the last commits, for much cheaper writes.
        await db.execute_fetchall("PRAGMA synchronous = NORMAL")
    await db.execute_fetchall(sql.create_table)
    await db.execute_fetchall(sql.create_index)


async def changed_rows(
    db: aiosqlite.Connection, statement: str, parameters: tuple[object, ...]
) -> int:
    """Run one write and count the rows it changed, in a single trip to the worker thread.

    `execute_fetchall` drops the cursor, and with it the count. `execute` keeps the cursor,
    but closing it is a second trip, which makes a compare-and-set take about 1.7 times as
    long. aiosqlite has no public call that returns the count, so this queues a function on
    its worker thread the way its own methods do (`_execute`, `_conn`); the cursor is made,
    read and dropped on that thread, and a count never mixes with another call's.
    """

    def run() -> int:
        return db._conn.execute(statement, parameters).rowcount

    count: int = await db._execute(run)  # type: ignore[no-untyped-call]
    return count


def is_alive(db: aiosqlite.Connection) -> bool:
    """Whether the worker thread still runs: it ends for good when it answers a call made on
    an event loop that was closed meanwhile, and a call queued to it then never returns."""
    return db._thread.is_alive()


async def close_database(db: aiosqlite.Connection) -> None:
    """Close `db` on its worker thread, waiting on the running loop, and never for ever.

    Unlike `Connection.close`, this neither needs the loop the connection was used on nor
    hangs on a worker thread that has already ended.
    """
    if not is_alive(db):
        return
    stopped = db.stop()
    if stopped is not None:
        await asyncio.wait([stopped], timeout=BUSY_TIMEOUT)
        if stopped.done():
            stopped.result()
