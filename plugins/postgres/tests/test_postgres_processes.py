"""Two worker processes on one table: compare-and-set is atomic across processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from sessionware_postgres import PostgresStorage

from tests.support.postgres_servers import PostgresServer

INCREMENTS = 1000  # each: about a second, so that the two runs overlap even on a busy machine

# Each worker waits for "go" on stdin, so that both race from their first increment.
WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from sessionware_postgres import PostgresStorage

    async def main(url: str, table: str, count: int) -> None:
        storage = PostgresStorage(url=url, table=table)
        await storage.storage_get("warm-up")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        lost = 0
        for _ in range(count):
            while True:
                current = await storage.storage_get("counter")
                value = str(int(current or b"0") + 1).encode()
                if await storage.storage_compare_and_set("counter", current, value, 600):
                    break
                lost += 1
        await storage.storage_close()
        print(f"done {lost}", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_two_processes_racing_increments_lose_none(
    postgres_server: PostgresServer, table: str
) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, postgres_server.url, table, str(INCREMENTS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n", worker.communicate(timeout=30)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        retried = 0
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            assert out.startswith("done "), out
            retried += int(out.split()[1])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert asyncio.run(_read(postgres_server, table, "counter")) == str(2 * INCREMENTS).encode()
    # Each process runs one increment at a time: a lost compare-and-set lost to the other.
    assert retried > 0, "the two processes never raced"


async def _read(server: PostgresServer, table: str, key: str) -> bytes | None:
    reader = PostgresStorage(url=server.url, table=table)
    try:
        return await reader.storage_get(key)
    finally:
        await reader.storage_close()
