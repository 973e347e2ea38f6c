"""Sessions in one table of an SQLite file, through the standard library's blocking `sqlite3`.

The shape of a storage whose client library blocks: each call runs in a worker thread
(`asyncio.to_thread`), so the event loop never waits on the file; and nothing is bound to an
event loop, so one storage object serves successive loops (a second test client,
`asyncio.run` twice in a script). To write a storage for another backend, keep the shape and
replace the statements.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from typing import Any

import pluggy

from ._config import ExampleConfig

hookimpl = pluggy.HookimplMarker("sessionware")

#: Every this many writes, one of them also deletes the expired rows.
SWEEP_EVERY = 1000


def _deadline(now: float, expires_in: float | None) -> float | None:
    """Unix seconds, fractions kept: a TTL of 0.2 s is 0.2 s, never "now" or "never"."""
    return None if expires_in is None else now + expires_in


class ExampleStorage:
    """A storage that survives restarts and is shared by every process using the same file.

    Expiry is judged by the wall clock (`time.time()`), which every process on the machine
    shares; a storage on a database server would judge it by the server's own clock.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        table: str | None = None,
        timeout: float | None = None,
        url: str | None = None,
    ) -> None:
        # Built when the app starts, outside any event loop: check the options, connect later.
        self.config = ExampleConfig.from_options(url=url, path=path, table=table, timeout=timeout)
        t = f'"{self.config.table}"'  # a validated name: letters, digits and '_' only
        self._schema = (
            f"CREATE TABLE IF NOT EXISTS {t} "
            "(key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at REAL)",
            f'CREATE INDEX IF NOT EXISTS "{self.config.table}_expires_at" ON {t} (expires_at)',
        )
        self._select = (
            f"SELECT value FROM {t} WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)"
        )
        self._upsert = (
            f"INSERT INTO {t} (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
        )
        # Compare-and-set, each one statement: atomic against every connection to the file.
        # Create where nothing is live: insert, or take over a row that has expired.
        self._create = f"{self._upsert} WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= ?"
        # Replace only the expected bytes, and only while they are live.
        self._replace = (
            f"UPDATE {t} SET value = ?, expires_at = ? "
            "WHERE key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)"
        )
        self._delete = f"DELETE FROM {t} WHERE key = ?"
        self._reset = f"DELETE FROM {t}"
        self._sweep = f"DELETE FROM {t} WHERE expires_at <= ?"
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used by one worker thread at a time
        self._writes = 0

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        _, rows = await self._run(self._select, (key, time.time()))
        if not rows:
            return None
        value: bytes = rows[0][0]  # sqlite3 gives a BLOB as bytes, as the core requires
        return value

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        now = time.time()
        # bytes(value) copies a buffer the caller might change after this call returns.
        await self._run(self._upsert, (key, bytes(value), _deadline(now, expires_in)))
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            await self._run(self._sweep, (now,))

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        """One conditional statement, so no other client can write between the comparison
        and the write. A local file never loses a reply; a storage on a network must not
        resend a compare-and-set whose reply was lost (it may have been applied): re-read
        and compare with what it wrote, or raise."""
        now = time.time()
        deadline = _deadline(now, expires_in)
        if expected is None:
            changed, _ = await self._run(self._create, (key, bytes(value), deadline, now))
        else:
            parameters = (bytes(value), deadline, key, bytes(expected), now)
            changed, _ = await self._run(self._replace, parameters)
        return changed == 1  # exactly a bool

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        await self._run(self._delete, (key,))

    @hookimpl
    async def storage_reset(self) -> None:
        await self._run(self._reset, ())

    @hookimpl
    async def storage_close(self) -> None:
        """Close the connection; a second close does nothing, a later call reconnects."""
        await asyncio.to_thread(self._disconnect)

    async def _run(self, statement: str, parameters: tuple[object, ...]) -> tuple[int, list[Any]]:
        """Rows changed and rows read by one statement, run off the event loop."""
        return await asyncio.to_thread(self._execute, statement, parameters)

    def _execute(self, statement: str, parameters: tuple[object, ...]) -> tuple[int, list[Any]]:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            cursor = self._connection.execute(statement, parameters)
            return cursor.rowcount, cursor.fetchall()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.config.path,
            timeout=self.config.timeout,  # wait this long for another writer, then raise
            isolation_level=None,  # autocommit: every statement is its own transaction
            check_same_thread=False,  # used from worker threads, one at a time (the lock)
        )
        try:
            for statement in self._schema:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return connection

    def _disconnect(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
