"""Raw client round trips: one read and one write, done the way a plugin must do them.

These are the floor under the counter scenario: a session layer cannot load and save for
less than its client's GET + SET.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .driver import CheckFailed

# About the size of an encoded counter session, so the bytes on the wire are alike.
PAYLOAD = b"\x94\xcb" + b"\x41\xda" * 16 + b"counter-session-payload"
TTL = 24 * 3600


class _RawPair:
    """One key read then written, `count` times; `check` proves the read saw the write."""

    width = 1

    def __init__(self, name: str) -> None:
        self.name = name
        self.last: Any = None

    async def pair(self) -> None:
        raise NotImplementedError

    async def run(self, count: int) -> None:
        pair = self.pair
        for _ in range(count):
            await pair()

    async def open(self) -> None:
        return None

    def check(self) -> None:
        if self.last != PAYLOAD:
            raise CheckFailed(f"{self.name}: read {self.last!r} back, not what was written")

    async def close(self) -> None:
        return None


class RedisPair(_RawPair):
    """redis.asyncio GET, then SET with a PX expiry: the redis plugin's load and save."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        super().__init__("raw redis GET + SET")
        self._client = Redis.from_url(url)
        self._key = "bench-raw:pair"

    async def pair(self) -> None:
        client = self._client
        self.last = await client.get(self._key)
        await client.set(self._key, PAYLOAD, px=TTL * 1000)

    async def close(self) -> None:
        await self._client.aclose()


class SyncRedisPair:
    """redis-py's sync client GET, then SET with a PX expiry: the floor under a Flask app's
    redis counter, as a WSGI worker thread would do it."""

    width = 1

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.name = "raw redis GET + SET (sync client)"
        self._client = Redis.from_url(url)
        self._key = "bench-raw:sync-pair"
        self.last: Any = None

    def pair(self) -> None:
        client = self._client
        self.last = client.get(self._key)
        client.set(self._key, PAYLOAD, px=TTL * 1000)

    def run(self, count: int) -> None:
        pair = self.pair
        for _ in range(count):
            pair()

    def check(self) -> None:
        if self.last != PAYLOAD:
            raise CheckFailed(f"{self.name}: read {self.last!r} back, not what was written")

    def close(self) -> None:
        self._client.close()


class LoopDrivenRedisPair(SyncRedisPair):
    """redis.asyncio GET, then SET PX, each run to its end by `loop.run_until_complete` on a
    loop of this thread's own: how sync code (sessionware's sync bridge) reaches an async
    client, without any session code. Context for the Flask redis rows, not a target."""

    def __init__(self, url: str) -> None:
        import asyncio

        from redis.asyncio import Redis

        super().__init__(url)
        self.name = "raw redis.asyncio pair, run_until_complete"
        self._loop = asyncio.new_event_loop()
        self._async = Redis.from_url(url)
        self._key = "bench-raw:loop-pair"

    def pair(self) -> None:
        run, client = self._loop.run_until_complete, self._async
        self.last = run(client.get(self._key))
        run(client.set(self._key, PAYLOAD, px=TTL * 1000))

    def close(self) -> None:
        super().close()
        self._loop.run_until_complete(self._async.aclose())
        self._loop.close()


class MemcachePair(_RawPair):
    """pymemcache get + set, each in a worker thread: blocking calls never run on the loop."""

    def __init__(self, address: str) -> None:
        from pymemcache.client.base import PooledClient  # type: ignore[import-untyped]

        super().__init__("raw memcache get + set (threads)")
        host, port = address.rsplit(":", 1)
        self._client = PooledClient(
            (host, int(port)), connect_timeout=2.0, timeout=2.0, no_delay=True, max_pool_size=10
        )
        self._executor = ThreadPoolExecutor(max_workers=10, thread_name_prefix="bench-memcache")
        self._key = "bench-raw:pair"

    async def pair(self) -> None:
        loop = asyncio.get_running_loop()
        client, executor, key = self._client, self._executor, self._key
        self.last = await loop.run_in_executor(executor, client.get, key)
        stored = await loop.run_in_executor(executor, _set, client, key)
        if not stored:
            raise CheckFailed("memcached refused a set")

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()


def _set(client: Any, key: str) -> bool:
    return bool(client.set(key, PAYLOAD, expire=TTL, noreply=False))


class SqlitePair(_RawPair):
    """aiosqlite SELECT + upsert on a WAL file in autocommit: each write its own commit."""

    def __init__(self, path: Path) -> None:
        super().__init__("raw sqlite select + upsert")
        self._path = path
        self._db: Any = None

    async def open(self) -> None:
        import aiosqlite

        db = await aiosqlite.connect(self._path, isolation_level=None)
        await db.execute_fetchall("PRAGMA journal_mode = WAL")
        await db.execute_fetchall("PRAGMA synchronous = NORMAL")
        await db.execute_fetchall(
            "CREATE TABLE IF NOT EXISTS pairs (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, "
            "expiry INTEGER)"
        )
        await db.execute_fetchall("CREATE INDEX IF NOT EXISTS pairs_expiry ON pairs (expiry)")
        self._db = db

    async def pair(self) -> None:
        db = self._db
        now = int(time.time() * 1000)
        rows = await db.execute_fetchall(
            "SELECT value FROM pairs WHERE key = ? AND (expiry IS NULL OR expiry > ?)",
            ("pair", now),
        )
        self.last = next((bytes(value) for (value,) in rows), None)
        await db.execute_fetchall(
            "INSERT INTO pairs (key, value, expiry) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expiry = excluded.expiry",
            ("pair", PAYLOAD, now + TTL * 1000),
        )

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()


class PostgresPair(_RawPair):
    """asyncpg SELECT + upsert on the plugin's table layout, each on a connection taken from
    and given back to a pool set up as the plugin's (the same size, no reset round trip on
    release); asyncpg's statement cache makes both prepared statements, one round trip each.
    """

    def __init__(self, url: str, table: str) -> None:
        super().__init__("raw postgres select + upsert")
        self._url = url
        self._table = table
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        async def keep_session_state(connection: Any) -> None:
            return None

        self._pool = await asyncpg.create_pool(
            self._url, min_size=1, max_size=10, reset=keep_session_state
        )
        name = f'"{self._table}"'
        await self._pool.execute(
            f'CREATE TABLE IF NOT EXISTS {name} (key text COLLATE "C" PRIMARY KEY, '
            "value bytea NOT NULL, expires_at timestamptz NOT NULL)"
        )
        await self._pool.execute(
            f"CREATE INDEX IF NOT EXISTS {self._table}_x ON {name} (expires_at)"
        )
        self._select = f"SELECT value FROM {name} WHERE key = $1 AND expires_at > now()"
        self._upsert = (
            f"INSERT INTO {name} (key, value, expires_at) "
            "VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond') "
            "ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value, expires_at = excluded.expires_at"
        )

    async def pair(self) -> None:
        pool = self._pool
        async with pool.acquire() as connection:
            self.last = await connection.fetchval(self._select, "pair")
        async with pool.acquire() as connection:
            await connection.fetchval(self._upsert, "pair", PAYLOAD, TTL * 1_000_000)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
