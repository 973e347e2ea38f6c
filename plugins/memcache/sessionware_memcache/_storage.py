"""The five storage hooks over pymemcache, every blocking call in the storage's own threads."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pluggy
from pymemcache.exceptions import MemcacheServerError  # type: ignore[import-untyped]

from ._config import MemcacheConfig
from ._servers import Server, Servers
from ._wire import KeyMapper, wire_expiry

hookimpl = pluggy.HookimplMarker("sessionware")

T = TypeVar("T")


class MemcacheStorage:
    """Sessions in one or several memcached servers, through pymemcache.

    pymemcache blocks, so each call runs in a thread pool owned by this storage, as large
    as the connection pool: the event loop never waits on a socket, and a call that finds
    every connection busy waits for one, at most `timeout` seconds.
    """

    name = "memcache"

    def __init__(
        self,
        *,
        servers: str | Sequence[str | tuple[str, int]] | None = None,
        key_prefix: str | None = None,
        connect_timeout: float | None = None,
        timeout: float | None = None,
        max_pool_size: int | None = None,
        dead_timeout: float | None = None,
        url: str | None = None,
    ) -> None:
        self.config = MemcacheConfig.from_options(
            url=url,
            servers=servers,
            key_prefix=key_prefix,
            connect_timeout=connect_timeout,
            timeout=timeout,
            max_pool_size=max_pool_size,
            dead_timeout=dead_timeout,
        )
        self._pid = os.getpid()
        self._connections = Servers(self.config)
        self._key = KeyMapper(self.config.key_prefix)
        self._workers = self.config.max_pool_size
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight = 0
        self._closed = False

    @property
    def _servers(self) -> Servers:
        """The servers' connections, made again in a forked child (gunicorn --preload): a
        socket or worker thread of the parent is never used after a fork."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._connections = Servers(self.config)
            self._executor = None
            self._in_flight = 0
        return self._connections

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        return await self._run(self._servers.get, self._key(key))

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        # bytes(...) copies a mutable buffer, which pymemcache would otherwise send as its repr.
        data = value if type(value) is bytes else bytes(value)
        expire = wire_expiry(expires_in, time.time())
        try:
            stored = await self._run(self._servers.set, self._key(key), data, expire)
        except MemcacheServerError as exc:
            _raise_if_too_large(data, exc)
            raise
        if not stored:
            raise RuntimeError("memcache storage: memcached answered NOT_STORED to a set")

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        """memcached's `add` when nothing is expected, else `gets` then `cas` (two round
        trips, in one worker call); atomic across processes, as memcached does each command
        under the item's lock and `cas` only replaces the item `gets` saw."""
        data = value if type(value) is bytes else bytes(value)
        expire = wire_expiry(expires_in, time.time())
        try:
            return await self._run(
                self._servers.compare_and_set, self._key(key), expected, data, expire
            )
        except MemcacheServerError as exc:
            _raise_if_too_large(data, exc)
            raise

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        await self._run(self._servers.delete, self._key(key))

    @hookimpl
    async def storage_reset(self) -> None:
        """flush_all on every server: this empties the servers, not only this key prefix."""
        results = await asyncio.gather(
            *(self._run(_flush, server) for server in self._servers.all),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    @hookimpl
    async def storage_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            # Lets the calls already queued finish (each bounded by the timeouts), off the loop.
            await asyncio.to_thread(executor.shutdown, wait=True)
        self._servers.close()

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        executor = self._executor or self._start()  # (`_servers`, read first, saw any fork)
        future = asyncio.get_running_loop().run_in_executor(executor, call, *args)
        self._in_flight += 1
        try:
            if self._in_flight <= self._workers:
                return await future
            return await self._queued(future)
        finally:
            self._in_flight -= 1

    async def _queued(self, future: asyncio.Future[T]) -> T:
        """Every worker is busy: wait for one, but no longer than `timeout`.

        Only a queued call pays for a timer: `asyncio.timeout` around every call cost 5-8 µs
        more per call with the workers free (tests/bench_calls.py). A timeout that fires
        cancels the future, so the worker skips the call if it has not started it.
        """
        wait = asyncio.timeout(self.config.timeout)
        try:
            async with wait:
                return await future
        except TimeoutError:
            if not wait.expired():
                raise  # the call's own socket timeout, raised in the worker
            raise TimeoutError(
                f"memcache storage: no answer within {self.config.timeout}s while all "
                f"{self._workers} connections (max_pool_size) were busy"
            ) from None

    def _start(self) -> ThreadPoolExecutor:
        if self._closed:
            raise RuntimeError("memcache storage is closed")
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="sessionware-memcache"
        )
        return self._executor


def _raise_if_too_large(data: bytes, exc: MemcacheServerError) -> None:
    """Say plainly when memcached refused a value for its size, and where the limit is set."""
    if "too large" in str(exc):
        raise ValueError(
            f"memcache storage: the value ({len(data)} bytes) is too large for memcached's "
            f"item size limit (server said: object too large for cache; the limit is "
            f"memcached's -I option, 1 MiB by default)"
        ) from exc


def _flush(server: Server) -> None:
    if not server.call(server.pool.flush_all, 0):
        raise RuntimeError(f"memcache storage: memcached {server.address} refused flush_all")
