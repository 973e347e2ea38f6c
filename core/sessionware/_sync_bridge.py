"""How sync code (WSGI, Flask, scripts) runs the store's coroutines: on one event loop per
store and process, driven by the threads that need it, with no thread of its own.

A thread that finds the loop idle runs its coroutine on it directly, in its own thread: no
hand-off to another thread, which costs tens of microseconds each way. A thread that finds
another one driving queues its coroutine and waits; the driver, once its own coroutine is
done, runs everything queued meanwhile, concurrently, before it lets go. So the storage
plugin only ever sees one event loop, used by one thread at a time, as S5 allows; and under
contention the queued calls still overlap their I/O.

Each call is one `run_until_complete` on the driver's thread: about 4-6 µs here, against
45-55 µs for handing a coroutine to a loop thread and back (`run_coroutine_threadsafe`).
(Stepping a coroutine that never waits without the loop would save most of the 4-6 µs, but
code that needs a current task, `asyncio.timeout` among it, then breaks.)

The loop is made lazily, at the first call in a process: a server that imports the app and
then forks its workers (gunicorn --preload) gives each worker a loop of its own, and nothing
made before the fork is used after it.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from collections import deque
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Job(Generic[T]):
    """A coroutine queued by a thread that found another one driving, and its outcome."""

    __slots__ = ("coroutine", "done", "error", "value")

    def __init__(self, coroutine: Coroutine[Any, Any, T]) -> None:
        self.coroutine = coroutine
        self.done = threading.Event()  # the thread that queued it waits for this
        self.value: T | None = None
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            self.value = await self.coroutine
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self.error = exc
        finally:
            self.done.set()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class SyncBridge:
    """Runs coroutines for sync callers on this store's event loop (see the module)."""

    __slots__ = ("__weakref__", "_driving", "_loop", "_mutex", "_pid", "_queue")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._driving = False
        self._queue: deque[_Job[Any]] = deque()
        _BRIDGES.add(self)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` to its end and return its result (or raise its exception)."""
        if _running_loop() is not None:
            coroutine.close()
            raise RuntimeError(
                "store.sync and the sync session methods are for sync code (WSGI, scripts); "
                "in async code, await the store's and the session's own methods"
            )
        with self._mutex:
            loop = self._loop_of_this_process()
            if self._driving:
                job = _Job(coroutine)
                self._queue.append(job)
            else:
                self._driving = True
                job = None
        if job is not None:
            job.done.wait()
            return job.outcome()
        try:
            result = loop.run_until_complete(coroutine)
        except Exception:
            self._drive_queued_or_give_up(loop)
            raise
        except BaseException as exc:  # interrupted: whoever waits is released, with the error
            self._give_up(exc)
            raise
        self._drive_queued_or_give_up(loop)
        return result

    def close(self) -> None:
        """Close this process's loop, after its remaining tasks (a storage's sweep) are
        cancelled and have ended; a later call makes a new loop."""
        with self._mutex:
            loop, self._loop = self._loop, None
        if loop is None or self._pid != os.getpid() or loop.is_closed() or loop.is_running():
            return
        if _running_loop() is not None:  # in async code: leave it to the garbage collector
            return
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _drive_queued_or_give_up(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run what other threads queued while this one drove, until nothing is left."""
        try:
            while True:
                with self._mutex:
                    if not self._queue:
                        self._driving = False
                        return
                    jobs = list(self._queue)
                    self._queue.clear()
                loop.run_until_complete(_all(jobs))
        except BaseException as exc:
            self._give_up(exc)
            raise

    def _give_up(self, exc: BaseException) -> None:
        """The driver itself failed (interrupted): release whoever waits, with the error."""
        with self._mutex:
            self._driving = False
            jobs = list(self._queue)
            self._queue.clear()
        for job in jobs:
            job.coroutine.close()
            job.error = RuntimeError("the thread running the store's event loop stopped")
            job.error.__cause__ = exc
            job.done.set()

    def _loop_of_this_process(self) -> asyncio.AbstractEventLoop:
        """This process's loop: made at first use, and again after a fork (called under
        the mutex)."""
        # A forked child starts with none (`after_fork`), so no pid check is needed here.
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
            self._pid = os.getpid()
            self._driving = False
            self._queue.clear()
        return self._loop

    def after_fork(self) -> None:
        """In a forked child: the parent's loop, threads and lock state are not ours."""
        self._mutex = threading.Lock()
        self._loop = None
        self._driving = False
        self._queue.clear()


_BRIDGES: weakref.WeakSet[SyncBridge] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for bridge in list(_BRIDGES):
        bridge.after_fork()


def _close_all() -> None:
    """At exit, end each loop cleanly rather than leave its tasks to be destroyed pending."""
    for bridge in list(_BRIDGES):
        bridge.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)


async def _all(jobs: list[_Job[Any]]) -> None:
    await asyncio.gather(*(job.run() for job in jobs))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    # The loop running in this thread, or None: asyncio's own non-raising form (it is in
    # asyncio.__all__), since raising and catching costs more than the call.
    return asyncio._get_running_loop()
