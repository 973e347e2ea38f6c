"""The storage's connections for the event loop in use, built afresh when another loop calls.

asyncio connections, and so redis-py's, belong to the loop that opened them: on another
loop they fail ("attached to a different loop", "Event loop is closed"). A storage may
serve several loops one after another (a second test client, `asyncio.run` twice), so it
keeps what it built for one loop, and builds anew when a call comes from another.

asyncio has no hook for "this loop is ending". The nearest is `shutdown_asyncgens`, which
`asyncio.run` and `asyncio.Runner` (and so uvicorn, pytest-asyncio and anyio) call before
closing a loop: it closes every async generator still suspended on the loop while the loop
still runs. Each loop's commands are therefore tied to a small generator parked on that
loop, and their connections are closed on their own loop when it ends. A loop that ends
without that step leaves its connections to be dropped when the next loop calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

from ._commands import Commands

C = TypeVar("C", bound=Commands)


class PerLoop(Generic[C]):
    """The commands of the running loop: `here()` on the hot path, else `enter()`."""

    __slots__ = ("_build", "_closed", "_current", "_entering", "_guard", "_loop")

    def __init__(self, build: Callable[[], C]) -> None:
        self._build = build
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: C | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._closed = False
        self._entering: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def here(self) -> C | None:
        """The running loop's commands, or None when they are still to be built."""
        if self._loop is asyncio.get_running_loop():
            return self._current
        return None

    async def enter(self) -> C:
        """Build the running loop's commands, leaving the previous loop's behind. The
        first caller builds them; callers arriving meanwhile wait for it, then use them."""
        loop = asyncio.get_running_loop()
        if self._entering is None or self._entering[0] is not loop:
            self._entering = (loop, asyncio.Lock())
        async with self._entering[1]:
            if self._closed:
                raise RuntimeError("redis storage is closed")
            current = self.here()
            if current is not None:
                return current
            await self._leave()
            commands = self._build()
            await commands.start()
            guard = self._closed_with_loop(commands)
            await anext(guard)
            self._loop, self._current, self._guard = loop, commands, guard
            return commands

    async def close(self) -> None:
        """Close the storage's own connections; every later call raises. Idempotent."""
        self._closed = True
        await self._leave()

    async def _leave(self) -> None:
        """Close the commands in use: here, on their own loop if it still lives, or, on a
        loop that has closed, drop them (asyncio closes the sockets of a closed loop's
        transports when it collects them)."""
        commands, loop, guard = self._current, self._loop, self._guard
        self._current = self._loop = self._guard = None
        if commands is None or loop is None or guard is None:
            return
        with contextlib.suppress(StopAsyncIteration):
            await guard.asend(None)  # finished: it no longer closes anything at loop end
        if loop is asyncio.get_running_loop():
            await commands.aclose()
        elif not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile, in another thread
                loop.call_soon_threadsafe(_close_on, loop, commands)

    async def _closed_with_loop(self, commands: C) -> AsyncGenerator[None, None]:
        """Suspended on the loop until the storage leaves it (resumed: nothing to do) or
        the loop shuts its async generators down (closed: release the loop's connections)."""
        try:
            yield
        except GeneratorExit:
            if self._current is commands:
                self._current = self._loop = self._guard = None
            await commands.loop_ended()
            raise


_closing: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio asks


def _close_on(loop: asyncio.AbstractEventLoop, commands: Commands) -> None:
    task = loop.create_task(commands.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)
