"""The memcached servers: a connection pool each, a down mark each, and the key -> server map.

Everything here blocks, and runs only in the storage's worker threads.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pymemcache.client.base import PooledClient  # type: ignore[import-untyped]
from pymemcache.client.rendezvous import RendezvousHash  # type: ignore[import-untyped]
from pymemcache.exceptions import MemcacheUnexpectedCloseError  # type: ignore[import-untyped]

from ._config import Address, MemcacheConfig

T = TypeVar("T")

logger = logging.getLogger("sessionware.memcache")

#: The server closed a pooled connection (it restarted, or dropped an idle client). get, set,
#: delete and flush_all are idempotent, so they are sent again on another connection. A
#: compare-and-set is not: its write may have landed before the reply was lost.
_DROPPED = (
    MemcacheUnexpectedCloseError,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


class ServerDownError(ConnectionError):
    """A memcached server failed to connect or answer in time, and is not asked again yet."""


class Server:
    """One memcached: a pymemcache `PooledClient` and a short-lived "down" mark.

    A refused connection or a timeout marks the server down for `dead_timeout` seconds:
    calls for its keys then fail at once instead of each waiting for the timeout, and the
    other servers keep their keys (nothing is moved to them). When the mark runs out, one
    call tries the server again; its success clears the mark.
    """

    __slots__ = ("_dead_timeout", "_down_until", "_retries", "_why", "address", "pool")

    def __init__(self, address: Address, config: MemcacheConfig) -> None:
        host, port = address
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.pool: Any = PooledClient(
            address,
            connect_timeout=config.connect_timeout,
            timeout=config.timeout,
            no_delay=True,
            max_pool_size=config.max_pool_size,
            default_noreply=False,
        )
        self._dead_timeout = config.dead_timeout
        self._retries = config.max_pool_size
        self._down_until = 0.0
        self._why = ""

    def call(self, operation: Callable[..., T], *args: Any) -> T:
        """Run the idempotent `operation(*args)` (a method of `pool`), honouring and updating
        the mark; sent again on another connection when the pooled one was closed."""
        if self._down_until:
            self._admit()
        for _ in range(self._retries):
            try:
                result = operation(*args)
            except _DROPPED:
                continue
            except OSError as exc:
                self._mark_down(exc)
                raise
            if self._down_until:
                self._mark_up()
            return result
        try:
            return operation(*args)
        except OSError as exc:
            self._mark_down(exc)
            raise

    def compare_and_set(self, key: str, expected: bytes | None, value: bytes, expire: int) -> bool:
        """`add` (expected None) or `gets` then `cas`, on one connection, never sent twice.

        The connection is held for both commands, so the `cas` goes out on a connection that
        has just answered. When the reply to the write is lost, whether it landed is unknown:
        the key is read again (a read may be resent) and the answer is whether it now holds
        `value`. A caller that gets False re-reads and tries again, so a write that landed
        and was then overwritten costs a retry, never a lost or doubled update.
        """
        if self._down_until:
            self._admit()
        try:
            with self.pool.client_pool.get_and_release(destroy_on_fail=True) as client:
                stored = _compare_and_set(client, key, expected, value, expire)
        except OSError as exc:
            self._mark_down(exc)
            raise
        if self._down_until:
            self._mark_up()
        return stored

    def close(self) -> None:
        self.pool.close()

    def _admit(self) -> None:
        now = time.monotonic()
        left = self._down_until - now
        if left > 0:
            raise ServerDownError(
                f"memcached {self.address} is marked down ({self._why}); "
                f"it is tried again in {left:.2f}s"
            )
        # This call is the one that tries the server again; others still fail at once.
        self._down_until = now + self._dead_timeout

    def _mark_down(self, exc: OSError) -> None:
        if not self._dead_timeout:
            return
        if not self._down_until:
            logger.warning(
                "memcached %s marked down for %.2fs: %s: %s",
                self.address,
                self._dead_timeout,
                type(exc).__name__,
                exc,
            )
        self._why = f"{type(exc).__name__}: {exc}"
        self._down_until = time.monotonic() + self._dead_timeout

    def _mark_up(self) -> None:
        self._down_until = 0.0
        logger.info("memcached %s answers again", self.address)


class Servers:
    """Every configured server, and which one holds a key.

    Several servers share the keys by rendezvous hashing (pymemcache's `RendezvousHash`,
    the hash its `HashClient` uses) over their "host:port" names. The map never changes
    while the storage lives: a down server's keys fail; they do not move.
    """

    __slots__ = ("_by_name", "_hash", "all")

    def __init__(self, config: MemcacheConfig) -> None:
        self.all = tuple(Server(address, config) for address in config.servers)
        self._by_name = {server.address: server for server in self.all}
        self._hash: Any = (
            RendezvousHash(nodes=[server.address for server in self.all])
            if len(self.all) > 1
            else None
        )

    def for_key(self, key: str) -> Server:
        if self._hash is None:
            return self.all[0]
        server: Server = self._by_name[self._hash.get_node(key)]
        return server

    def get(self, key: str) -> bytes | None:
        server = self.for_key(key)
        value: bytes | None = server.call(server.pool.get, key)
        return value

    def set(self, key: str, value: bytes, expire: int) -> bool:
        server = self.for_key(key)
        stored: bool = server.call(server.pool.set, key, value, expire)
        return stored

    def delete(self, key: str) -> None:
        server = self.for_key(key)
        server.call(server.pool.delete, key)

    def compare_and_set(self, key: str, expected: bytes | None, value: bytes, expire: int) -> bool:
        return self.for_key(key).compare_and_set(key, expected, value, expire)

    def close(self) -> None:
        for server in self.all:
            server.close()


def _compare_and_set(
    client: Any, key: str, expected: bytes | None, value: bytes, expire: int
) -> bool:
    """One compare-and-set on one pymemcache `Client` (a pooled connection).

    A `Client` whose connection broke opens a new one on its next command, so one more try
    is enough to get past a connection the server had closed while it sat in the pool. An
    `add` is not retried, so its connection is checked first: after a restart of memcached
    (or its idle_timeout), each pooled connection would otherwise lose one `add` and cost
    the caller a retry.
    """
    args: tuple[Any, ...]
    if expected is None:
        if client.sock is not None and _closed_by_server(client.sock):
            client.close()  # the add then goes out on a new connection
        command, args = client.add, (key, value, expire)
    else:
        current, token = _read_again_if_dropped(client.gets, key)
        if current != expected:
            return False
        command, args = client.cas, (key, value, token, expire)
    try:
        # add answers True, or False where a live item is; cas answers True, False (changed
        # since the gets) or None (gone since the gets).
        return command(*args) is True
    except _DROPPED:
        return bool(_read_again_if_dropped(client.get, key) == value)


def _read_again_if_dropped(read: Callable[[str], T], key: str) -> T:
    try:
        return read(key)
    except _DROPPED:
        return read(key)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read, without reading it: the server's
    close (or an error), since memcached never speaks unasked. One poll, about a µs."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # Windows: no poll, no descriptor limit
