"""Commands on connections the storage keeps itself, for one server (not Sentinel, Cluster).

redis-py's `Redis.execute_command` and its pool take a lock, record metrics and dispatch
events around every command: about a third of a GET's CPU in this process. The gate already
caps how many commands are in flight at `max_connections`, so a plain free list of redis-py
`Connection` objects serves as the pool, and each command is packed, sent and read with
redis-py's own connection methods.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Connection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError


class DirectCommands:
    """Send one command and read its reply; a broken connection is replaced and retried once.

    GET, SET and UNLINK are safe to send twice. A timeout or a cancellation is not retried:
    redis-py closes a connection whose reply was not read, and it reconnects on next use.
    """

    __slots__ = ("_all", "_idle", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool  # a factory of connections configured like the client's own
        self._idle: list[Connection] = []
        self._all: list[Connection] = []

    async def __call__(self, *args: Any) -> Any:
        if self._idle:
            connection = self._idle.pop()
        else:
            connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            self._all.append(connection)
        try:
            try:
                return await _round_trip(connection, args)
            except RedisConnectionError:  # killed, or the server restarted, since last use
                await connection.disconnect()
                return await _round_trip(connection, args)
        finally:
            self._idle.append(connection)

    async def aclose(self) -> None:
        connections, self._all, self._idle = self._all, [], []
        await asyncio.gather(*(c.disconnect() for c in connections), return_exceptions=True)


async def _round_trip(connection: Connection, args: tuple[Any, ...]) -> Any:
    await connection.send_packed_command(connection.pack_command(*args), check_health=False)
    return await connection.read_response()
