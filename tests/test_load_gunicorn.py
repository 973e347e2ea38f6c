"""S11 under load: the Flask example in gunicorn, forked threaded workers, on a real Redis.

gunicorn imports the app (and builds its `Store`) once, then forks its workers
(``--preload``); each worker serves many threads at once, which share its store. Clients
count their visits over real HTTP, each with its own cookie jar: every answer must be the
client's next number, and none a 5xx. The default suite runs a small crowd;
`scripts/reliability` sets ``SESSIONWARE_GUNICORN_*`` (1,000 clients x 20 requests on 4
workers x 8 threads).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.load import record_figure, scaled
from tests.support.processes import free_port, wait_for_http

ROOT = Path(__file__).parent.parent


def start_gunicorn(storage: str, workers: int, threads: int, port: int) -> subprocess.Popen[bytes]:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn is not None
    return subprocess.Popen(
        [gunicorn, "--preload", "-w", str(workers), "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "--backlog", "2048", "examples.flask_app:app"],
        cwd=ROOT,
        env={**os.environ, "SESSIONWARE_STORAGE": storage},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


async def test_s11_gunicorn_forked_threaded_workers_keep_every_counter_on_redis(
    redis_server: Any,
) -> None:
    clients = scaled("GUNICORN_CLIENTS", 60)
    requests = scaled("GUNICORN_REQUESTS", 8)
    workers = scaled("GUNICORN_WORKERS", 4)
    threads = scaled("GUNICORN_THREADS", 8)
    in_flight = scaled("GUNICORN_IN_FLIGHT", 64)
    port = free_port()
    storage = f"redis://{redis_server.host}:{redis_server.port}/6"
    process = start_gunicorn(storage, workers, threads, port)
    url = f"http://127.0.0.1:{port}/"
    gate = asyncio.Semaphore(in_flight)
    failures: list[str] = []
    server_errors = 0
    try:
        await asyncio.to_thread(wait_for_http, url, process, 60)
        limits = httpx.Limits(max_connections=in_flight)
        started = time.monotonic()

        async def client(number: int) -> None:
            nonlocal server_errors
            async with httpx.AsyncClient(limits=limits, timeout=30) as http:
                for expected in range(1, requests + 1):
                    async with gate:
                        response = await http.get(url)
                    if response.status_code >= 500:
                        server_errors += 1
                    visits = response.json().get("visits") if response.is_success else None
                    if visits != expected:
                        failures.append(f"client {number}: {visits!r} for visit {expected}")
                        return

        await asyncio.gather(*(client(n) for n in range(clients)))
        seconds = time.monotonic() - started
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
    record_figure(
        "gunicorn",
        workers=workers,
        threads=threads,
        clients=clients,
        requests=clients * requests,
        in_flight=in_flight,
        server_errors=server_errors,
        wrong=len(failures),
        seconds=round(seconds, 2),
        per_second=round(clients * requests / seconds),
    )
    assert server_errors == 0
    assert failures == []
