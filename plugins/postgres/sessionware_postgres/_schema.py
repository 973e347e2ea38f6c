"""The SQL of one sessions table, and how the table comes to exist.

The table name is the only text put into SQL; it is a checked identifier (see `_config`) and
is quoted as well. Everything else travels as a parameter. Expiry is always judged by the
database's clock (`now()`), never Python's, so that every client of the table, on whatever
machine, agrees on what has expired.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

#: Rows one sweep statement deletes at most, so that it never holds many row locks for long.
SWEEP_BATCH = 1000

#: TTLs from this many seconds on (about 31,700 years) are stored as never expiring:
#: PostgreSQL's timestamps end in the year 294276, and this rounds up, never down.
FOREVER = 1e12

# `$3` is the TTL in whole microseconds, NULL for none; NULL makes the sum NULL, and the
# row then never expires ('infinity' is later than any now()).
_EXPIRY = "coalesce(now() + $3::bigint * interval '1 microsecond', 'infinity')"


def microseconds(expires_in: float | None) -> int | None:
    """The `$3` of a write: the TTL in microseconds, rounded up, or None for no expiry."""
    if expires_in is None or expires_in >= FOREVER:
        return None
    return max(1, math.ceil(expires_in * 1_000_000))


@dataclass(frozen=True, slots=True)
class Statements:
    """Every statement the storage runs on `table`, each one round trip once prepared."""

    lock_id: int
    exists: str
    create_table: str
    create_index: str
    get: str
    set: str
    create: str
    replace: str
    delete: str
    reset: str
    sweep: str

    @classmethod
    def for_table(cls, table: str) -> Statements:
        name = f'"{table}"'
        digest = hashlib.sha256(f"sessionware-postgres:{table}".encode()).digest()
        return cls(
            lock_id=int.from_bytes(digest[:8], "big", signed=True),
            exists=f"SELECT to_regclass('{name}') IS NOT NULL",
            create_table=(
                f"CREATE TABLE IF NOT EXISTS {name} ("
                'key text COLLATE "C" PRIMARY KEY, '
                "value bytea NOT NULL, "
                "expires_at timestamptz NOT NULL)"
            ),
            create_index=(
                f'CREATE INDEX IF NOT EXISTS "{table}_expires_at" ON {name} (expires_at)'
            ),
            get=f"SELECT value FROM {name} WHERE key = $1 AND expires_at > now()",
            set=(
                f"INSERT INTO {name} (key, value, expires_at) VALUES ($1, $2, {_EXPIRY}) "
                "ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value, expires_at = excluded.expires_at"
            ),
            # Compare-and-set where nothing may be live: a new row, or one whose expiry
            # has passed. A live row makes the conflict's WHERE false: no row is returned.
            create=(
                f"INSERT INTO {name} AS s (key, value, expires_at) VALUES ($1, $2, {_EXPIRY}) "
                "ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value, expires_at = excluded.expires_at "
                "WHERE s.expires_at <= now() "
                "RETURNING true"
            ),
            # Compare-and-set of a live value: the row changes only while it still holds
            # exactly the expected bytes (re-checked on the newest version of the row when
            # another transaction changed it first).
            replace=(
                f"UPDATE {name} SET value = $2, expires_at = {_EXPIRY} "
                "WHERE key = $1 AND value = $4 AND expires_at > now() "
                "RETURNING true"
            ),
            delete=f"DELETE FROM {name} WHERE key = $1",
            reset=f"DELETE FROM {name}",
            # The outer condition is checked again on the newest version of each row, so a
            # row that a compare-and-set revived meanwhile is kept. Rows another sweep holds
            # are skipped rather than waited for.
            sweep=(
                f"WITH gone AS (DELETE FROM {name} WHERE key IN "
                f"(SELECT key FROM {name} WHERE expires_at <= now() "
                "LIMIT $1 FOR UPDATE SKIP LOCKED) "
                "AND expires_at <= now() RETURNING 1) "
                "SELECT count(*) FROM gone"
            ),
        )


async def prepare_table(connection: Any, sql: Statements, *, empty: bool) -> None:
    """Create the table and its expiry index when the table is missing; empty it if asked.

    A role without the right to create tables still works on a table that exists: it is
    only created when missing. Processes that start together take turns on an advisory
    lock, since two concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog.
    """
    if not await connection.fetchval(sql.exists):
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", sql.lock_id)
            await connection.execute(sql.create_table)
            await connection.execute(sql.create_index)
    if empty:
        await connection.execute(sql.reset)
