"""Sessions in Redis: one GET to load, one SET with PX to save, UNLINK to delete."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import pluggy
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from ._config import RedisConfig
from ._connect import bounds_each_call, commands_of, connect, gate
from ._gate import Closed, Deadline, Gate

hookimpl = pluggy.HookimplMarker("sessionware")

# Keys asked for per SCAN step, and so at most this many per UNLINK.
SCAN_BATCH = 500

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def match_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern for every key under `prefix`, taking its characters literally."""
    return _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"


def milliseconds(expires_in: float) -> int:
    """A TTL in whole milliseconds, rounded up and never 0 (PX 0 is an error, not 'now')."""
    # A nanosecond of slack absorbs float error: 4.03 * 1000 is 4030.0000000000005.
    return max(1, math.ceil(expires_in * 1000 - 1e-6))


class RedisStorage:
    """Sessions in Redis (one server, Sentinel or Cluster), each key under `key_prefix`."""

    name = "redis"

    def __init__(
        self,
        *,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        db: int | None = None,
        username: str | None = None,
        password: str | None = None,
        ssl: bool | None = None,
        client: Redis | RedisCluster | None = None,
        cluster: bool | None = None,
        sentinels: Sequence[str | tuple[str, int]] | None = None,
        master_name: str | None = None,
        key_prefix: str | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.config = RedisConfig.from_options(
            url=url,
            host=host,
            port=port,
            db=db,
            username=username,
            password=password,
            ssl=ssl,
            client=client,
            cluster=cluster,
            sentinels=sentinels,
            master_name=master_name,
            key_prefix=key_prefix,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )
        self._prefix = self.config.key_prefix
        self._client, owned = connect(self.config)
        self._run, direct = commands_of(self.config, self._client)
        self._owned = owned if direct is None else (direct, *owned)
        self._gate: Gate | Closed = gate(self.config, self._client)
        timeout = self.config.socket_timeout
        self._bound: Callable[[], AbstractAsyncContextManager[object]] = (
            (lambda: Deadline(timeout)) if bounds_each_call(self.config) else contextlib.nullcontext
        )

    def __repr__(self) -> str:
        return f"<RedisStorage {self.config.mode} key_prefix={self._prefix!r}>"

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client in use (the one given as `client`, or the plugin's own)."""
        return self._client

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        async with self._gate, self._bound():
            value: bytes | None = await self._run("GET", self._prefix + key)
        return value  # bytes: the client never decodes

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        if type(value) is not bytes:
            value = bytes(value)  # a mutable buffer is copied before the await
        async with self._gate, self._bound():
            if expires_in is None:
                await self._run("SET", self._prefix + key, value)
            else:
                await self._run("SET", self._prefix + key, value, "PX", milliseconds(expires_in))

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        async with self._gate, self._bound():
            await self._run("UNLINK", self._prefix + key)

    @hookimpl
    async def storage_reset(self) -> None:
        """SCAN for this storage's keys and UNLINK them on every master; never a FLUSHDB."""
        pattern = match_pattern(self._prefix)
        client = self._client
        if isinstance(client, RedisCluster):
            async with self._gate:
                await client.initialize()  # the primaries are known from here on
            for node in client.get_primaries():
                await self._reset_cluster_node(client, node, pattern)
        else:
            await self._reset_server(pattern)

    @hookimpl
    async def storage_close(self) -> None:
        """Close what the plugin opened (a `client` given to it stays open); idempotent."""
        if isinstance(self._gate, Closed):
            return
        self._gate = Closed()
        owned, self._owned = self._owned, ()
        async with contextlib.AsyncExitStack() as closing:  # one failing still closes the rest
            for resource in owned:
                closing.push_async_callback(resource.aclose)

    async def _reset_server(self, pattern: str) -> None:
        cursor = 0
        while True:
            async with self._gate, self._bound():
                reply = await self._run("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)
            cursor, keys = int(reply[0]), reply[1]  # raw (b"17", [...]) or parsed (17, [...])
            if keys:
                async with self._gate, self._bound():
                    await self._run("UNLINK", *keys)
            if cursor == 0:
                return

    async def _reset_cluster_node(
        self, client: RedisCluster, node: ClusterNode, pattern: str
    ) -> None:
        """Keys of one master span many slots, so they go as one pipeline of single UNLINKs."""
        cursor = 0
        while True:
            async with self._gate:
                # With target_nodes the cluster client answers ({node name: cursor}, keys).
                reply: Any = await client.scan(
                    cursor, match=pattern, count=SCAN_BATCH, target_nodes=node
                )
            cursors, keys = reply
            cursor = cursors[node.name]
            if keys:
                async with self._gate:
                    pipe = client.pipeline(transaction=False)
                    for key in keys:
                        pipe.execute_command("UNLINK", key)
                    await pipe.execute()
            if cursor == 0:
                return
