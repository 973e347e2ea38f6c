"""Commands on connections the storage keeps itself in a plain list: one server or the
master a Sentinel names.

redis-py's `Redis.execute_command` and its pools take a lock, record metrics and dispatch
events around every command, and with a socket timeout they start a task per write: with a
`BlockingConnectionPool` a GET took 55 µs of this process's CPU against 22 µs here, and a
counter request under 64 clients 173-180 µs against 101-107 µs (benchmarks/redis_paths.py,
docs/benchmarks.md). The admission already caps how many commands are in flight at
`max_connections`, so a plain free list of redis-py `Connection` objects serves as the pool;
each command is packed, sent and read with redis-py's own connection methods, and bounded
once, as a whole, by the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from redis.asyncio import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from ._call_limits import Admission, Deadline
from ._commands import scan_and_unlink


class _Closable(Protocol):
    async def aclose(self) -> None: ...


class ConnectionList:
    """Send one command and read its reply, on an idle connection or a new one.

    A broken connection says the server restarted, or that a Sentinel's master moved (the
    old one, now a replica, refuses writes): the idle connections are disconnected with it,
    and reconnect (asking the sentinels again) on next use. A timeout or a cancellation is
    never retried: redis-py closes a connection whose reply was not read.
    """

    __slots__ = ("_admission", "_all", "_also_close", "_idle", "_make", "_timeout")

    def __init__(
        self,
        make: Callable[[], Connection],
        size: int,
        timeout: float,
        also_close: Sequence[_Closable] = (),
    ) -> None:
        self._make = make  # a new, unconnected redis-py connection, configured for the server
        self._admission = Admission(size, timeout)
        self._timeout = timeout
        self._idle: list[Connection] = []
        self._all: list[Connection] = []
        self._also_close = also_close  # what the connections need (the sentinels' clients)

    async def run(self, *args: Any) -> Any:
        async with self._admission:
            connection = self._take()
            try:
                async with Deadline(self._timeout):
                    try:
                        return await _round_trip(connection, args)
                    except RedisConnectionError:  # killed, or the server restarted, since last use
                        await self._disconnect_idle()
                        await connection.disconnect()
                        return await _round_trip(connection, args)
            finally:
                self._idle.append(connection)

    async def run_once(self, key: str, *args: Any) -> Any:
        async with self._admission:
            connection = self._take()
            try:
                async with Deadline(self._timeout):
                    try:
                        return await _round_trip(connection, args)
                    except RedisConnectionError:
                        await self._disconnect_idle()
                        raise
            finally:
                self._idle.append(connection)

    async def reset(self, pattern: str) -> None:
        await scan_and_unlink(self.run, pattern)

    async def start(self) -> None:
        return None

    async def loop_ended(self) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        connections, self._all, self._idle = self._all, [], []
        closing = [c.disconnect() for c in connections]
        closing += [resource.aclose() for resource in self._also_close]
        await asyncio.gather(*closing, return_exceptions=True)  # one failing closes the rest

    async def _disconnect_idle(self) -> None:
        idle = list(self._idle)
        await asyncio.gather(*(c.disconnect() for c in idle), return_exceptions=True)

    def _take(self) -> Connection:
        if self._idle:
            return self._idle.pop()
        connection = self._make()
        self._all.append(connection)
        return connection


async def _round_trip(connection: Connection, args: tuple[Any, ...]) -> Any:
    if not connection.is_connected:
        # connect() itself, not the send's own connecting: a Sentinel's connection asks the
        # sentinels for the master there.
        await connection.connect()  # type: ignore[no-untyped-call]
    await connection.send_packed_command(connection.pack_command(*args), check_health=False)
    return await connection.read_response()
