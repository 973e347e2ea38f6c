"""How many commands may be in flight at once, how long a caller waits for a turn, and how
long a command may take once it has one.

redis-py's async pools raise MaxConnectionsError at once when every connection is busy.
Letting no more than `max_connections` commands in at a time means a pool of that size is
never exhausted: the extra callers wait here, bounded by the timeout, in every mode (one
server, Sentinel and Cluster alike; a cluster's per-node pools cannot fill up either).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType


class Admission:
    """An async context manager that admits `size` holders at once; others queue.

    `prepare`, when given, runs alone before the first holder is let in (and again at the
    next entry if it failed), while the callers that arrive meanwhile wait for it. One
    admission serves one event loop: an asyncio semaphore belongs to the loop it waited on.
    """

    __slots__ = ("_prepare", "_preparing", "_semaphore", "_size", "_timeout")

    def __init__(
        self,
        size: int,
        timeout: float,
        prepare: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._size = size
        self._timeout = timeout
        self._prepare = prepare
        self._preparing: asyncio.Lock | None = None

    async def __aenter__(self) -> None:
        if self._prepare is not None:
            await self._run_prepare()
        semaphore = self._semaphore
        if not semaphore.locked():
            await semaphore.acquire()  # a free slot: returns without suspending
            return
        try:
            async with asyncio.timeout(self._timeout):
                await semaphore.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"redis storage: no free connection within {self._timeout} s "
                f"(all {self._size} of max_connections busy)"
            ) from None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._semaphore.release()

    async def _run_prepare(self) -> None:
        if self._preparing is None:
            self._preparing = asyncio.Lock()
        async with self._preparing:
            prepare = self._prepare
            if prepare is not None:
                await prepare()
                self._prepare = None


class Deadline:
    """Bounds one command, once it has its turn, by `seconds`, and says so on expiry.

    One instance per call: `asyncio.timeout` keeps per-call state.
    """

    __slots__ = ("_seconds", "_timeout")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._timeout = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, traceback)
        except TimeoutError:
            raise TimeoutError(
                f"redis storage: no answer within {self._seconds} s (socket_timeout)"
            ) from None
