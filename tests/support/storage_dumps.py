"""What whoever reads a backend's storage sees: keys and values read from the real servers
(redis, memcached), the database file itself (SQLite), or the memory plugin's own listing.

Each dump is limited to the keys of one test (its key prefix, or its own file).
"""

from __future__ import annotations

import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.support.backends import Backend


@dataclass
class Dump:
    """Keys and values as stored, plus the raw bytes of a database file where there is one."""

    items: list[tuple[bytes, bytes]]
    files: bytes = b""

    def everything(self) -> bytes:
        return b"\n".join([self.files, *(key + b"\n" + value for key, value in self.items)])


async def dump_storage(backend: Backend, plugin: Any) -> Dump:
    label = backend.label
    if label == "memory":
        return Dump([(key.encode(), value) for key, value in plugin.items()])
    if label.startswith("redis"):
        return await _redis(backend)
    if label == "sqlite-file":
        return _sqlite_file(Path(backend.options["database"]))
    if label.startswith("memcache"):
        return _memcache(backend)
    if label == "postgres":
        return await _postgres(backend)
    pytest.skip(f"{label}: no storage outside the process to read (the file variant covers it)")


async def _redis(backend: Backend) -> Dump:
    from redis.asyncio import Redis, RedisCluster
    from redis.asyncio.sentinel import Sentinel

    options = backend.options
    client: Any
    if options.get("cluster"):
        client = RedisCluster.from_url(options["url"])
    elif "sentinels" in options:
        hosts = [tuple(s.rsplit(":", 1)) if isinstance(s, str) else s for s in options["sentinels"]]
        sentinel = Sentinel([(h, int(p)) for h, p in hosts])
        client = sentinel.master_for(options["master_name"])
    else:
        client = Redis.from_url(options["url"])
    try:
        keys = [key async for key in client.scan_iter(match=options["key_prefix"] + "*")]
        items = [(key, await client.get(key)) for key in keys]
    finally:
        await client.aclose()
    return Dump([(key, value) for key, value in items if value is not None])


def _sqlite_file(path: Path) -> Dump:
    """The live rows (an expired one is invisible, and swept later), and the file's bytes."""
    files = b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    now_ms = time.time_ns() // 1_000_000
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT key, value FROM sessionware_sessions WHERE expiry IS NULL OR expiry > ?",
            (now_ms,),
        ).fetchall()
    return Dump([(key.encode(), value) for key, value in rows], files)


async def _postgres(backend: Backend) -> Dump:
    """The table's live rows, read over a connection of the test's own."""
    import asyncpg

    connection = await asyncpg.connect(backend.options["url"])
    try:
        rows = await connection.fetch(
            f'SELECT key, value FROM "{backend.options["table"]}" WHERE expires_at > now()'
        )
    finally:
        await connection.close()
    return Dump([(row["key"].encode(), bytes(row["value"])) for row in rows])


def _memcache(backend: Backend) -> Dump:
    """Every server's keys under this test's prefix (memcached's metadump), then their values."""
    from pymemcache.client.base import Client  # type: ignore[import-untyped]

    servers = backend.options["servers"]
    items: list[tuple[bytes, bytes]] = []
    for address in [servers] if isinstance(servers, str) else servers:
        host, port = address.rsplit(":", 1)
        keys = [
            key
            for key in _metadump(host, int(port))
            if key.startswith(backend.options["key_prefix"])
        ]
        client = Client((host, int(port)))
        try:
            items += [(key.encode(), value) for key, value in client.get_many(keys).items()]
        finally:
            client.close()
    return Dump(items)


def _metadump(host: str, port: int) -> list[str]:
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(b"lru_crawler metadump all\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    return [
        unquote(line.split(b" ", 1)[0][4:].decode())
        for line in reply.splitlines()
        if line.startswith(b"key=")
    ]
