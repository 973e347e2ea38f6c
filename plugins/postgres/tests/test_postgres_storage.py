"""The table as other clients of the database see it: its layout, expiry by the database's
clock, the sweep, the pool's waiting, and moving between event loops."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest
import pytest_asyncio
from sessionware_postgres import PostgresStorage

from tests.support.postgres_servers import PostgresServer

SKEW = 2 * 3600.0


@pytest_asyncio.fixture
async def storage(postgres_server: PostgresServer, table: str) -> AsyncIterator[PostgresStorage]:
    plugin = PostgresStorage(url=postgres_server.url, table=table)
    try:
        yield plugin
    finally:
        await plugin.storage_close()


async def _rows(admin: asyncpg.Connection, table: str) -> int:
    count: int = await admin.fetchval(f'SELECT count(*) FROM "{table}"')
    return count


async def _no_statement_waits(admin: asyncpg.Connection) -> None:
    """Until no statement waits for a lock: the server has taken the cancel requests."""
    deadline = time.monotonic() + 5
    while await admin.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
        assert time.monotonic() < deadline, "a cancelled write still waits on the server"
        await asyncio.sleep(0.02)


# -- the table --------------------------------------------------------------------------


async def test_the_first_call_creates_the_table_and_its_expiry_index(
    storage: PostgresStorage, admin: asyncpg.Connection, table: str
) -> None:
    assert await admin.fetchval("SELECT to_regclass($1)", table) is None
    assert await storage.storage_get("k") is None
    columns = await admin.fetch(
        "SELECT column_name, data_type, collation_name, is_nullable "
        "FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        table,
    )
    assert [tuple(row) for row in columns] == [
        ("key", "text", "C", "NO"),
        ("value", "bytea", None, "NO"),
        ("expires_at", "timestamp with time zone", None, "NO"),
    ]
    indexes = await admin.fetch("SELECT indexdef FROM pg_indexes WHERE tablename = $1", table)
    definitions = sorted(row["indexdef"] for row in indexes)
    assert any("UNIQUE" in d and "(key" in d for d in definitions), definitions
    assert any(f"{table}_expires_at" in d and "(expires_at)" in d for d in definitions)


async def test_the_stored_key_is_the_key_given_and_values_are_bytea(
    storage: PostgresStorage, admin: asyncpg.Connection, table: str
) -> None:
    handle = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"
    await storage.storage_set(handle, b"\x00\xff record", None)
    row = await admin.fetchrow(f'SELECT key, value, expires_at FROM "{table}"')
    assert (row["key"], row["value"]) == (handle, b"\x00\xff record")
    assert await admin.fetchval("SELECT $1::timestamptz = 'infinity'", row["expires_at"])


async def test_many_storages_starting_at_once_create_one_table(
    postgres_server: PostgresServer, table: str
) -> None:
    """Concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog; the advisory lock
    makes the starters take turns."""
    storages = [PostgresStorage(url=postgres_server.url, table=table) for _ in range(8)]
    try:
        await asyncio.gather(*(s.storage_set(f"k{n}", b"v", 60) for n, s in enumerate(storages)))
        values = await asyncio.gather(*(s.storage_get(f"k{n}") for n, s in enumerate(storages)))
        assert values == [b"v"] * len(storages)
    finally:
        await asyncio.gather(*(s.storage_close() for s in storages))


async def test_a_role_that_may_not_create_tables_uses_one_that_exists(
    postgres_server: PostgresServer, admin: asyncpg.Connection, table: str
) -> None:
    """The table is created only when missing: the application's role needs no more than
    the four statements' rights on it (PostgreSQL 15 lets no other role create in public)."""
    role = f"r_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    owner = PostgresStorage(url=postgres_server.url, table=table)
    await owner.storage_get("k")
    await owner.storage_close()
    await admin.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')
    limited = PostgresStorage(
        host=postgres_server.host,
        port=postgres_server.port,
        user=role,
        database="postgres",
        table=table,
    )
    try:
        assert await limited.storage_compare_and_set("k", None, b"v", 60) is True
        assert await limited.storage_get("k") == b"v"
        await limited.storage_reset()
        assert await limited.storage_get("k") is None
    finally:
        await limited.storage_close()
    missing = PostgresStorage(
        host=postgres_server.host,
        port=postgres_server.port,
        user=role,
        database="postgres",
        table=f"{table}_new",
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await missing.storage_get("k")
    await missing.storage_close()


# -- expiry by the database's clock -----------------------------------------------------


async def test_expiry_is_stored_on_the_database_clock(
    storage: PostgresStorage, admin: asyncpg.Connection, table: str
) -> None:
    await storage.storage_set("k", b"v", 60)
    left = await admin.fetchval(
        f"SELECT extract(epoch FROM expires_at - now()) FROM \"{table}\" WHERE key = 'k'"
    )
    assert 58 < left <= 60


async def test_a_row_the_database_says_has_expired_is_gone_at_once(
    storage: PostgresStorage, admin: asyncpg.Connection, table: str
) -> None:
    await storage.storage_set("k", b"old", 3600)
    await admin.execute(
        f"UPDATE \"{table}\" SET expires_at = now() - interval '1 millisecond' WHERE key = 'k'"
    )
    assert await storage.storage_get("k") is None
    assert await storage.storage_compare_and_set("k", b"old", b"lost", 60) is False
    assert await storage.storage_compare_and_set("k", None, b"new", 60) is True
    assert await storage.storage_get("k") == b"new"
    await admin.execute(
        f"UPDATE \"{table}\" SET expires_at = now() + interval '1 hour' WHERE key = 'k'"
    )
    assert await storage.storage_compare_and_set("k", None, b"lost", 60) is False


@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["python-ahead", "python-behind"])
async def test_a_wrong_python_clock_changes_nothing(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    """Python's wall clock two hours off: a TTL still counts from the database's now()."""
    real_time, real_time_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real_time() + skew)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + int(skew * 1e9))
    await storage.storage_set("long", b"kept", 60)
    assert await storage.storage_compare_and_set("short", None, b"soon gone", 0.3) is True
    assert await storage.storage_get("long") == b"kept"
    assert await storage.storage_get("short") == b"soon gone"
    deadline = time.monotonic() + 5
    while await storage.storage_get("short") is not None:
        assert time.monotonic() < deadline, "a 0.3 s TTL outlived 5 s"
        await asyncio.sleep(0.05)
    assert await storage.storage_get("long") == b"kept"


# -- the sweep --------------------------------------------------------------------------


async def test_the_periodic_sweep_deletes_expired_rows_and_keeps_the_rest(
    postgres_server: PostgresServer, admin: asyncpg.Connection, table: str
) -> None:
    storage = PostgresStorage(url=postgres_server.url, table=table, gc_interval=0.2)
    try:
        for n in range(5):
            await storage.storage_set(f"short{n}", b"x", 0.1)
        await storage.storage_set("forever", b"x", None)
        await storage.storage_set("hour", b"x", 3600)
        deadline = time.monotonic() + 10
        while await _rows(admin, table) > 2:
            assert time.monotonic() < deadline, "expired rows were never swept"
            await asyncio.sleep(0.1)
        keys = {row["key"] for row in await admin.fetch(f'SELECT key FROM "{table}"')}
        assert keys == {"forever", "hour"}
    finally:
        await storage.storage_close()


async def test_sweep_now_counts_what_it_deleted_in_batches(
    postgres_server: PostgresServer, admin: asyncpg.Connection, table: str
) -> None:
    storage = PostgresStorage(url=postgres_server.url, table=table, gc_interval=3600)
    try:
        await storage.storage_get("k")  # creates the table
        await admin.execute(
            f"INSERT INTO \"{table}\" SELECT 'k' || n, '\\x00', now() - interval '1 second' "
            "FROM generate_series(1, 2500) AS n"
        )
        await storage.storage_set("live", b"x", 60)
        assert await storage.sweep() == 2500
        assert await _rows(admin, table) == 1
        assert await storage.sweep() == 0
    finally:
        await storage.storage_close()


# -- reset ------------------------------------------------------------------------------


async def test_reset_on_start_empties_the_table_once_per_storage(
    postgres_server: PostgresServer, table: str
) -> None:
    first = PostgresStorage(url=postgres_server.url, table=table)
    await first.storage_set("old", b"x", None)
    await first.storage_close()
    fresh = PostgresStorage(url=postgres_server.url, table=table, reset_on_start=True)
    try:
        assert await fresh.storage_get("old") is None
        await fresh.storage_set("new", b"x", None)
        await fresh.storage_close()  # the next call opens a new pool: no second reset
        assert await fresh.storage_get("new") == b"x"

        async def on_another_loop() -> bytes | None:
            return await fresh.storage_get("new")

        assert await asyncio.to_thread(asyncio.run, on_another_loop()) == b"x"
    finally:
        await fresh.storage_close()


# -- the pool ---------------------------------------------------------------------------


async def test_a_full_pool_waits_for_a_connection(
    postgres_server: PostgresServer, admin: asyncpg.Connection, table: str
) -> None:
    """One connection, held by a write that waits for a row lock: a second call waits for
    the connection instead of failing, and both finish once the lock goes."""
    storage = PostgresStorage(url=postgres_server.url, table=table, max_size=1, timeout=10)
    try:
        await storage.storage_set("locked", b"before", 60)
        async with admin.transaction():
            await admin.execute(f"SELECT 1 FROM \"{table}\" WHERE key = 'locked' FOR UPDATE")
            write = asyncio.create_task(storage.storage_set("locked", b"after", 60))
            read = asyncio.create_task(storage.storage_get("other"))
            await asyncio.sleep(0.5)
            assert not write.done()
            assert not read.done()
        assert await asyncio.wait_for(asyncio.gather(write, read), 5) == [None, None]
        assert await storage.storage_get("locked") == b"after"
    finally:
        await storage.storage_close()


async def test_a_statement_held_up_on_the_server_is_cancelled_at_the_timeout(
    postgres_server: PostgresServer, admin: asyncpg.Connection, table: str
) -> None:
    storage = PostgresStorage(url=postgres_server.url, table=table, max_size=1, timeout=0.5)
    try:
        await storage.storage_set("locked", b"before", 60)
        async with admin.transaction():
            await admin.execute(f"SELECT 1 FROM \"{table}\" WHERE key = 'locked' FOR UPDATE")
            began = time.monotonic()
            with pytest.raises(TimeoutError, match=r"no answer within 0\.5 s \(timeout\)"):
                await storage.storage_set("locked", b"after", 60)
            assert time.monotonic() - began < 1.5
            await _no_statement_waits(admin)
        # The server cancelled the write; the pool's one connection serves the next calls.
        assert await storage.storage_get("locked") == b"before"
        await storage.storage_set("locked", b"after", 60)
        assert await storage.storage_get("locked") == b"after"
    finally:
        await storage.storage_close()


async def test_the_callers_own_cancellation_and_timeouts_stay_its_own(
    postgres_server: PostgresServer, admin: asyncpg.Connection, table: str
) -> None:
    """The storage bounds calls by cancelling them as asyncio.timeout does; a caller's own
    cancellation or shorter timeout must come out as the caller's, never as the storage's,
    and leave the task with no cancellation pending."""
    storage = PostgresStorage(url=postgres_server.url, table=table, timeout=2.0)
    try:
        await storage.storage_set("locked", b"before", 60)
        async with admin.transaction():
            await admin.execute(f"SELECT 1 FROM \"{table}\" WHERE key = 'locked' FOR UPDATE")

            blocked = asyncio.create_task(storage.storage_set("locked", b"lost", 60))
            await asyncio.sleep(0.2)
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked

            with pytest.raises(TimeoutError) as mine:
                async with asyncio.timeout(0.2):
                    await storage.storage_set("locked", b"lost", 60)
            assert "postgres storage" not in str(mine.value)

            with pytest.raises(TimeoutError, match="postgres storage: no answer"):
                async with asyncio.timeout(30):
                    await storage.storage_set("locked", b"lost", 60)
            task = asyncio.current_task()
            assert task is not None
            assert task.cancelling() == 0
            await _no_statement_waits(admin)
        # Each of the three writes was cancelled on the server: none landed.
        assert await storage.storage_get("locked") == b"before"
    finally:
        await storage.storage_close()


# -- event loops ------------------------------------------------------------------------


async def _client_connections(admin: asyncpg.Connection) -> int:
    count: int = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    return count


async def test_a_loop_that_ends_takes_its_connections_with_it(
    fresh_postgres: PostgresServer,
) -> None:
    """`asyncio.run` cancels the sweep task as it ends, which closes the pool while that
    loop still runs: no connection is left behind for the server to keep."""
    admin = await asyncpg.connect(fresh_postgres.url)
    storage = PostgresStorage(url=fresh_postgres.url, min_size=2)

    async def use() -> bytes | None:
        await storage.storage_set("k", b"v", 60)
        return await storage.storage_get("k")

    try:
        for _ in range(3):
            assert await asyncio.to_thread(asyncio.run, use()) == b"v"
            deadline = time.monotonic() + 5
            while await _client_connections(admin) > 0:
                assert time.monotonic() < deadline, "the ended loop's connections stayed"
                await asyncio.sleep(0.05)
        assert await storage.storage_get("k") == b"v"
        assert await _client_connections(admin) == 2
        await storage.storage_close()
        await storage.storage_close()
        assert await _client_connections(admin) == 0
    finally:
        await storage.storage_close()
        await admin.close()
