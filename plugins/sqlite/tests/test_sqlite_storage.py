"""Behaviour beyond the conformance suite: the file, the sweep, the loop, many tasks."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sessionware_sqlite import SQLiteStorage

# aiosqlite's worker thread dies noisily when it answers a closed loop; make that a failure.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

TABLE = "sessionware_sessions"


def _rows(path: Path, table: str = TABLE) -> dict[str, int | None]:
    """key -> expiry, read with the standard library, as any other process would."""
    with sqlite3.connect(path) as db:
        return dict(db.execute(f'SELECT key, expiry FROM "{table}"').fetchall())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


@pytest.fixture
def storage(path: Path) -> SQLiteStorage:
    return SQLiteStorage(database=path)


async def test_a_new_storage_reads_what_a_closed_one_saved(path: Path) -> None:
    first = SQLiteStorage(url=f"sqlite:///{path}")
    await first.storage_set("kept", b"value", 60)
    await first.storage_set("forever", b"always", None)
    await first.storage_close()

    second = SQLiteStorage(database=path)
    assert await second.storage_get("kept") == b"value"
    assert await second.storage_get("forever") == b"always"
    await second.storage_close()


async def test_the_file_uses_wal_and_the_schema(path: Path) -> None:
    storage = SQLiteStorage(database=path)
    await storage.storage_set("k", b"v", 1)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = [(name, kind) for _, name, kind, *_ in db.execute(f"PRAGMA table_info({TABLE})")]
        indexes = [row[1] for row in db.execute(f"PRAGMA index_list({TABLE})")]
    assert columns == [("key", "TEXT"), ("value", "BLOB"), ("expiry", "INTEGER")]
    assert f"{TABLE}_expiry" in indexes
    await storage.storage_close()


async def test_expiry_is_unix_milliseconds_rounded_up(path: Path, storage: SQLiteStorage) -> None:
    before = time.time_ns() // 1_000_000
    await storage.storage_set("tiny", b"v", 0.0001)
    await storage.storage_set("long", b"v", 40 * 24 * 3600)
    await storage.storage_set("never", b"v", None)
    after = time.time_ns() // 1_000_000
    rows = _rows(path)
    assert before + 1 <= rows["tiny"] <= after + 1  # type: ignore[operator]
    assert rows["long"] >= before + 40 * 24 * 3600 * 1000  # type: ignore[operator]
    assert rows["never"] is None
    await storage.storage_close()


async def test_an_expired_row_is_invisible_before_any_sweep(
    path: Path, storage: SQLiteStorage
) -> None:
    await storage.storage_set("k", b"v", 60)
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE {TABLE} SET expiry = ? WHERE key = 'k'", (time.time_ns() // 10**6,))
    assert await storage.storage_get("k") is None
    assert "k" in _rows(path)
    await storage.storage_close()


async def test_compare_and_set_judges_a_row_by_its_expiry_column(
    path: Path, storage: SQLiteStorage
) -> None:
    for key in ("expired", "never", "live"):
        await storage.storage_set(key, b"old", 60)
    with sqlite3.connect(path) as db:
        now = time.time_ns() // 1_000_000
        db.execute(f"UPDATE {TABLE} SET expiry = ? WHERE key = 'expired'", (now,))
        db.execute(f"UPDATE {TABLE} SET expiry = NULL WHERE key = 'never'")
    assert await storage.storage_compare_and_set("expired", b"old", b"lost", 60) is False
    assert await storage.storage_compare_and_set("never", None, b"lost", 60) is False
    assert await storage.storage_compare_and_set("live", None, b"lost", 60) is False
    before = time.time_ns() // 1_000_000
    assert await storage.storage_compare_and_set("expired", None, b"new", 0.0001) is True
    assert await storage.storage_compare_and_set("never", b"old", b"new", 0.0001) is True
    after = time.time_ns() // 1_000_000
    rows = _rows(path)
    for key in ("expired", "never"):  # an expired row is taken over before any sweep
        assert before + 1 <= rows[key] <= after + 1  # type: ignore[operator]
    assert rows["live"] > after  # type: ignore[operator]
    await storage.storage_close()


@pytest.mark.parametrize("database", ["file", ":memory:"])
async def test_each_concurrent_compare_and_set_gets_its_own_outcome(
    path: Path, database: str
) -> None:
    """Outcomes are counted per statement on the worker thread, so 350 calls queued at once
    on one connection never see each other's count."""
    storage = SQLiteStorage(database=path if database == "file" else ":memory:")
    taken = [f"taken-{i}" for i in range(100)]
    for key in taken:
        await storage.storage_set(key, b"v", 60)
    calls = [
        *(storage.storage_compare_and_set(key, None, b"lost", 60) for key in taken),
        *(storage.storage_compare_and_set(f"free-{i}", None, b"won", 60) for i in range(100)),
        *(storage.storage_compare_and_set(key, b"v", b"won", 60) for key in taken[:50]),
        *(storage.storage_compare_and_set(f"free-{i}", b"v", b"lost", 60) for i in range(100)),
    ]
    outcomes = await asyncio.gather(*calls)
    # Only the winners write, so each outcome is the same in whatever order the calls run.
    assert outcomes == [False] * 100 + [True] * 100 + [True] * 50 + [False] * 100
    assert [await storage.storage_get(key) for key in taken[:50]] == [b"won"] * 50
    assert [await storage.storage_get(key) for key in taken[50:]] == [b"v"] * 50
    await storage.storage_close()


async def test_the_sweep_deletes_expired_rows_and_keeps_rows_without_expiry(path: Path) -> None:
    storage = SQLiteStorage(database=path, gc_interval=0.05)
    for i in range(30):
        await storage.storage_set(f"gone-{i}", b"x", 0.01)
    await storage.storage_set("forever", b"x", None)
    await storage.storage_set("later", b"x", 60)
    for _ in range(200):  # no read touches the rows: only the sweep can remove them
        if len(_rows(path)) == 2:
            break
        await asyncio.sleep(0.05)
    assert set(_rows(path)) == {"forever", "later"}
    await storage.storage_close()


async def test_sweep_works_in_batches_and_counts(path: Path, storage: SQLiteStorage) -> None:
    await storage.storage_set("first", b"x", None)
    with sqlite3.connect(path) as db:
        db.executemany(
            f"INSERT INTO {TABLE} VALUES (?, x'00', 1)", ((f"old-{i}",) for i in range(2500))
        )
    assert await storage.sweep() == 2500
    assert list(_rows(path)) == ["first"]
    await storage.storage_close()


async def test_close_stops_the_sweeper(storage: SQLiteStorage) -> None:
    await storage.storage_set("k", b"x", 10)
    sweeper = storage._sweeper
    assert sweeper is not None
    assert not sweeper.done()
    await storage.storage_close()
    assert sweeper.done()
    assert storage._sweeper is None


async def test_a_closed_storage_opens_again_on_use(storage: SQLiteStorage) -> None:
    await storage.storage_set("k", b"v", 60)
    await storage.storage_close()
    assert await storage.storage_get("k") == b"v"
    await storage.storage_close()


async def test_concurrent_first_calls_open_one_connection(storage: SQLiteStorage) -> None:
    await asyncio.gather(*(storage.storage_get(f"k{i}") for i in range(50)))
    db = storage._db
    await asyncio.gather(*(storage.storage_get(f"k{i}") for i in range(50)))
    assert storage._db is db
    await storage.storage_close()


@pytest.mark.parametrize("database", ["file", ":memory:"])
async def test_1000_concurrent_tasks_lose_no_row(path: Path, database: str) -> None:
    storage = SQLiteStorage(database=path if database == "file" else ":memory:")
    keys = [f"task-{i}" for i in range(1000)]
    await asyncio.gather(*(storage.storage_set(key, key.encode(), 60) for key in keys))
    values = await asyncio.gather(*(storage.storage_get(key) for key in keys))
    assert values == [key.encode() for key in keys]
    if database == "file":
        assert len(_rows(path)) == 1000
    await storage.storage_close()


async def test_reset_on_start_empties_the_table_at_first_use(path: Path) -> None:
    first = SQLiteStorage(database=path)
    await first.storage_set("old", b"x", None)
    await first.storage_close()

    kept = SQLiteStorage(database=path)
    assert await kept.storage_get("old") == b"x"
    await kept.storage_close()

    fresh = SQLiteStorage(database=path, reset_on_start=True)
    assert await fresh.storage_get("old") is None
    await fresh.storage_set("new", b"y", None)
    await fresh.storage_close()
    assert await fresh.storage_get("new") == b"y"  # reopening does not reset again
    await fresh.storage_close()


async def test_reset_empties_only_its_own_table(path: Path) -> None:
    mine = SQLiteStorage(database=path)
    theirs = SQLiteStorage(database=path, table="other")
    await mine.storage_set("a", b"x", None)
    await theirs.storage_set("b", b"y", None)
    await mine.storage_reset()
    assert _rows(path) == {}
    assert _rows(path, "other") == {"b": None}
    await mine.storage_close()
    await theirs.storage_close()


@pytest.mark.parametrize("database", ["file", ":memory:"])
def test_the_storage_follows_a_new_event_loop(path: Path, database: str) -> None:
    storage = SQLiteStorage(database=path if database == "file" else ":memory:", gc_interval=0.05)
    asyncio.run(storage.storage_set("k", b"v", 60))
    assert asyncio.run(storage.storage_get("k")) == b"v"

    async def later() -> bytes | None:
        await storage.storage_set("gone", b"x", 0.01)
        await asyncio.sleep(0.2)
        value = await storage.storage_get("k")
        await storage.storage_close()
        return value

    assert asyncio.run(later()) == b"v"


def test_a_call_while_another_loops_statement_is_under_way_is_refused(path: Path) -> None:
    storage = SQLiteStorage(database=path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        asyncio.run_coroutine_threadsafe(storage.storage_set("k", b"v", 60), loop).result(10)
        blocker.execute("BEGIN EXCLUSIVE")  # the next write on `loop` waits for this lock
        waiting = asyncio.run_coroutine_threadsafe(storage.storage_set("k", b"w", 60), loop)
        time.sleep(0.2)
        with pytest.raises(RuntimeError, match="another event loop right now"):
            asyncio.run(storage.storage_get("k"))
        blocker.execute("COMMIT")
        waiting.result(10)
        asyncio.run_coroutine_threadsafe(storage.storage_close(), loop).result(10)
    finally:
        blocker.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_an_idle_running_loop_lets_another_loop_use_the_storage(path: Path) -> None:
    """A WSGI app's sync calls beside async code: one loop at a time, both still running."""
    storage = SQLiteStorage(database=path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(storage.storage_set("k", b"v", 60), loop).result(10)
        assert asyncio.run(storage.storage_get("k")) == b"v"
        get = storage.storage_get("k")
        assert asyncio.run_coroutine_threadsafe(get, loop).result(10) == b"v"
        asyncio.run_coroutine_threadsafe(storage.storage_close(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
