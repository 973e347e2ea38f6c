"""Several worker processes sharing one file: WAL and the busy timeout at work."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sessionware_sqlite import SQLiteStorage

# aiosqlite's worker thread dies noisily when it answers a closed loop; make that a failure.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

WRITES = 500
INCREMENTS = 300

# Each process waits for "go" on stdin so that both open the fresh file and write at once.
WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from sessionware_sqlite import SQLiteStorage

    async def main(path: str, name: str, count: int) -> None:
        storage = SQLiteStorage(database=path)
        for i in range(count):
            key = f"{name}-{i}"
            await storage.storage_set(key, key.encode(), 600)
            if await storage.storage_get(key) != key.encode():
                raise SystemExit(f"{key} not read back")
        await storage.storage_close()

    print("ready", flush=True)
    sys.stdin.readline()
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    print("done", flush=True)
    """
)

# Adds one to the counter under one key, `count` times, by read and compare-and-set; a lost
# race reads again. Prints how many races it lost.
INCREMENTER = textwrap.dedent(
    """
    import asyncio, sys
    from sessionware_sqlite import SQLiteStorage

    async def main(path: str, count: int) -> int:
        storage = SQLiteStorage(database=path)
        lost = 0
        for _ in range(count):
            while True:
                current = await storage.storage_get("counter")
                value = str(int(current or b"0") + 1).encode()
                if await storage.storage_compare_and_set("counter", current, value, 600):
                    break
                lost += 1
        await storage.storage_close()
        return lost

    print("ready", flush=True)
    sys.stdin.readline()
    lost = asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    print(f"done, {lost} races lost", flush=True)
    """
)


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def _go(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()


async def test_two_processes_write_concurrently_while_a_third_reads(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    writers = [_start(WRITER, str(path), name, str(WRITES)) for name in ("a", "b")]
    _go(writers)

    reader = SQLiteStorage(database=path)
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        for key in (f"{name}-{i}" for name in ("a", "b") for i in range(0, WRITES, 25)):
            assert await reader.storage_get(key) in (None, key.encode())
        await asyncio.sleep(0.01)

    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert out == "done\n"
        assert "locked" not in err

    keys = [f"{name}-{i}" for name in ("a", "b") for i in range(WRITES)]
    values = await asyncio.gather(*(reader.storage_get(key) for key in keys))
    assert values == [key.encode() for key in keys]
    await reader.storage_close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM sessionware_sessions").fetchone() == (2 * WRITES,)


async def test_two_processes_racing_compare_and_set_lose_no_increment(tmp_path: Path) -> None:
    path = tmp_path / "counter.sqlite3"
    incrementers = [_start(INCREMENTER, str(path), str(INCREMENTS)) for _ in range(2)]
    _go(incrementers)
    for incrementer in incrementers:
        out, err = incrementer.communicate(timeout=120)
        assert incrementer.returncode == 0, err
        assert out.startswith("done, "), out
        assert "locked" not in err

    storage = SQLiteStorage(database=path)
    assert await storage.storage_get("counter") == str(2 * INCREMENTS).encode()
    await storage.storage_close()


def test_a_storage_never_closed_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    path = tmp_path / "unclosed.sqlite3"
    script = textwrap.dedent(
        """
        import asyncio, sys
        from sessionware_sqlite import SQLiteStorage

        storage = SQLiteStorage(database=sys.argv[1])
        asyncio.run(storage.storage_set("k", b"v", None))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM sessionware_sessions").fetchone() == (b"v",)
