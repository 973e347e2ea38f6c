"""Commands through a redis-py client: a Redis Cluster, or a client given as `client`.

The client's own retries apply to the commands that are safe to repeat. A command sent at
most once goes around them: on a plain client, on a connection taken from the client's
pool; on a cluster, with its node named, which turns the cluster client's retries off
(it still follows MOVED and ASK, which a node answers without running the command).
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from ._call_limits import Admission
from ._commands import SCAN_BATCH, scan_and_unlink


class ClientCommands:
    """Commands through a given `redis.asyncio.Redis`, which the storage never closes."""

    __slots__ = ("_admission", "_client")

    def __init__(self, client: Redis, admission: Admission) -> None:
        self._client = client
        self._admission = admission

    async def run(self, *args: Any) -> Any:
        async with self._admission:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def run_once(self, key: str, *args: Any) -> Any:
        pool = self._client.connection_pool
        async with self._admission:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await connection.send_command(*args)
                return await connection.read_response()
            finally:
                await pool.release(connection)

    async def reset(self, pattern: str) -> None:
        await scan_and_unlink(self.run, pattern)

    async def start(self) -> None:
        """Idle connections the client opened on another loop cannot serve this one: they
        are disconnected (and reconnect on first use). Closing one that belongs to a loop
        that has ended fails ("Event loop is closed"); it is disconnected all the same, and
        its socket is closed when asyncio collects its transport."""
        with contextlib.suppress(Exception):
            await self._client.connection_pool.disconnect(inuse_connections=False)

    async def loop_ended(self) -> None:
        """The client's idle connections belong to the ending loop: close them while it runs."""
        await self.start()

    async def aclose(self) -> None:
        return None


class ClusterCommands:
    """Commands through a `RedisCluster`: the storage's own (`owned`), or one given to it."""

    __slots__ = ("_admission", "_client", "_owned")

    def __init__(self, client: RedisCluster, admission: Admission, *, owned: bool) -> None:
        self._client = client
        self._admission = admission
        self._owned = owned

    async def run(self, *args: Any) -> Any:
        async with self._admission:
            return await self._client.execute_command(*args)

    async def run_once(self, key: str, *args: Any) -> Any:
        client = self._client
        async with self._admission:
            await client.initialize()  # the slot map again, after a failure reset it
            node = client.get_node_from_key(key)
            return await client.execute_command(*args, target_nodes=node)

    async def reset(self, pattern: str) -> None:
        async with self._admission:
            await self._client.initialize()  # the primaries are known from here on
        for node in self._client.get_primaries():
            await self._reset_node(node, pattern)

    async def start(self) -> None:
        """A given cluster client set up on another loop holds that loop's connections:
        it is closed, and finds the cluster again on this loop at its first command."""
        if not self._owned:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    async def loop_ended(self) -> None:
        """The cluster client's connections belong to the ending loop: close them now; a
        given client stays usable and finds the cluster again when next used."""
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()

    async def _reset_node(self, node: ClusterNode, pattern: str) -> None:
        """Keys of one master span many slots, so they go as one pipeline of single UNLINKs."""
        client = self._client
        cursor = 0
        while True:
            async with self._admission:
                # With target_nodes the cluster client answers ({node name: cursor}, keys).
                reply: Any = await client.scan(
                    cursor, match=pattern, count=SCAN_BATCH, target_nodes=node
                )
            cursors, keys = reply
            cursor = cursors[node.name]
            if keys:
                async with self._admission:
                    pipe = client.pipeline(transaction=False)
                    for key in keys:
                        pipe.execute_command("UNLINK", key)
                    await pipe.execute()
            if cursor == 0:
                return
