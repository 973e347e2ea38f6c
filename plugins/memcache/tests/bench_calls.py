"""What a memcache storage call costs: the thread hand-off and its timeout, and compare-and-set.

    .venv/bin/python plugins/memcache/tests/bench_calls.py timeouts   # bounding the wait
    .venv/bin/python plugins/memcache/tests/bench_calls.py writes     # set, add, gets + cas

`timeouts` runs the same calls through three ways of bounding the wait for a worker thread:

- `count + call_later`: the storage's first cut. A count of calls in flight; a call that
  finds every worker busy arms a `loop.call_later` timer that cancels its future.
- `count + asyncio.timeout`: the same count; a queued call waits inside `asyncio.timeout`.
- `asyncio.timeout always`: no count; every call waits inside `asyncio.timeout`.

It reports µs per call with every worker free (one call at a time: a trivial function, so the
machinery is all there is, then a real memcached `get`), µs per call with every worker busy
(64 tasks on 4 workers, so about 60 calls queued at any time), and how long a call queued
behind hung workers waits before it fails.

`writes` times one `set`, one `add` (compare-and-set expecting nothing) and one `gets` +
`cas` (compare-and-set expecting a value) through the storage's hooks against a real
memcached, one call at a time.

Rounds are interleaved in a new random order each round, as in benchmarks/run; the figures
are medians over rounds, with the interquartile range as a share of the median.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from sessionware_memcache import MemcacheStorage

from tests.support.memcached_servers import start_memcached

T = TypeVar("T")
ROUNDS = 41


class CountAndCallLater(MemcacheStorage):
    """The first cut's `_run` and `_queued`, kept here to be measured against."""

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        executor = self._executor or self._start()
        future = asyncio.get_running_loop().run_in_executor(executor, call, *args)
        self._in_flight += 1
        try:
            if self._in_flight <= self._workers:
                return await future
            return await self._queued_with_timer(future)
        finally:
            self._in_flight -= 1

    async def _queued_with_timer(self, future: asyncio.Future[T]) -> T:
        timer = future.get_loop().call_later(self.config.timeout, _give_up, future)
        try:
            return await future
        except asyncio.CancelledError as exc:
            if exc.args != (_GAVE_UP,):
                raise
        finally:
            timer.cancel()
        raise TimeoutError("no connection came free in time")


_GAVE_UP = "gave up"


def _give_up(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.cancel(_GAVE_UP)


class CountAndAsyncioTimeout(MemcacheStorage):
    """The same count; a queued call waits inside `asyncio.timeout`."""

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        executor = self._executor or self._start()
        future = asyncio.get_running_loop().run_in_executor(executor, call, *args)
        self._in_flight += 1
        try:
            if self._in_flight <= self._workers:
                return await future
            async with asyncio.timeout(self.config.timeout):
                return await future
        finally:
            self._in_flight -= 1


class AsyncioTimeoutAlways(MemcacheStorage):
    """Every call waits inside `asyncio.timeout`, worker free or not."""

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        executor = self._executor or self._start()
        async with asyncio.timeout(self.config.timeout):
            return await asyncio.get_running_loop().run_in_executor(executor, call, *args)


class Shipped(MemcacheStorage):
    """The storage as it is now."""


VARIANTS: dict[str, type[MemcacheStorage]] = {
    "count + call_later": CountAndCallLater,
    "count + asyncio.timeout": CountAndAsyncioTimeout,
    "asyncio.timeout always": AsyncioTimeoutAlways,
    "shipped (_storage.py now)": Shipped,
}


def _nothing() -> None:
    return None


Samples = dict[str, tuple[list[float], list[float]]]


async def _interleaved(
    subjects: dict[str, Callable[[], Awaitable[None]]], per_batch: int
) -> Samples:
    """µs per call of each subject, wall clock and this process's CPU (all its threads), one
    figure per round, the subjects in a new random order each round."""
    samples: Samples = {name: ([], []) for name in subjects}
    for subject in subjects.values():  # warm up: threads started, connections open
        await subject()
    for _ in range(ROUNDS):
        order = list(subjects.items())
        random.shuffle(order)
        for name, batch in order:
            wall, cpu = time.perf_counter(), time.process_time()
            await batch()
            samples[name][0].append((time.perf_counter() - wall) / per_batch * 1e6)
            samples[name][1].append((time.process_time() - cpu) / per_batch * 1e6)
    return samples


def _show(title: str, samples: Samples) -> None:
    print(f"\n{title}\n  {'':30}{'µs/call':>9}{'spread':>8}{'cpu µs':>9}{'spread':>8}")
    for name, (wall, cpu) in samples.items():
        print(f"  {name:30}{_median_and_spread(wall)}{_median_and_spread(cpu)}")


def _median_and_spread(values: list[float]) -> str:
    median = statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{median:9.2f}{(q3 - q1) / median:8.1%}"


async def timeouts(server: str) -> None:
    storages = {name: cls(servers=server, key_prefix="bench:") for name, cls in VARIANTS.items()}
    await storages["shipped (_storage.py now)"].storage_set("k", b"v" * 64, 60)

    def free_trivial(storage: MemcacheStorage) -> Callable[[], Awaitable[None]]:
        async def batch() -> None:
            for _ in range(500):
                await storage._run(_nothing)

        return batch

    def free_get(storage: MemcacheStorage) -> Callable[[], Awaitable[None]]:
        async def batch() -> None:
            for _ in range(50):
                await storage.storage_get("k")

        return batch

    _show(
        "every worker free, one call at a time, a trivial function (µs per call)",
        await _interleaved({n: free_trivial(s) for n, s in storages.items()}, 500),
    )
    _show(
        "every worker free, one call at a time, memcached get (µs per call)",
        await _interleaved({n: free_get(s) for n, s in storages.items()}, 50),
    )

    busy = {
        name: cls(servers=server, key_prefix="bench:", max_pool_size=4)
        for name, cls in VARIANTS.items()
    }

    def crowded(storage: MemcacheStorage, call: Callable[[], Awaitable[Any]], count: int) -> Any:
        async def one_task() -> None:
            for _ in range(count):
                await call()

        async def batch() -> None:
            await asyncio.gather(*(one_task() for _ in range(64)))

        return batch

    _show(
        "every worker busy: 64 tasks on 4 workers, a trivial function (µs per call)",
        await _interleaved(
            {n: crowded(s, partial(s._run, _nothing), 20) for n, s in busy.items()}, 64 * 20
        ),
    )
    _show(
        "every worker busy: 64 tasks on 4 workers, memcached get (µs per call)",
        await _interleaved(
            {n: crowded(s, partial(s.storage_get, "k"), 4) for n, s in busy.items()}, 64 * 4
        ),
    )

    print("\na call queued behind 2 hung workers, timeout=0.5 s: how it ends, after how long")
    for name, cls in VARIANTS.items():
        storage = cls(servers=server, max_pool_size=2, timeout=0.5)
        hung = [asyncio.ensure_future(storage._run(time.sleep, 1.5)) for _ in range(2)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        try:
            await storage._run(_nothing)
            outcome = "answered"
        except TimeoutError as exc:
            outcome = f"TimeoutError({str(exc)[:48]!r})"
        waited = time.monotonic() - started
        hung_outcomes = await asyncio.gather(*hung, return_exceptions=True)
        hung_text = ", ".join(type(r).__name__ if r else "finished" for r in hung_outcomes)
        print(f"  {name:30} {outcome} after {waited:.2f}s; the hung calls: {hung_text}")
        await storage.storage_close()

    for storage in [*storages.values(), *busy.values()]:
        await storage.storage_close()


async def writes(server: str) -> None:
    storage = MemcacheStorage(servers=server, key_prefix="bench:")
    value = b"\x94\xcb" + b"\x41\xda" * 16 + b"counter-session-payload"
    fresh = iter(range(10**9))
    current = [value]
    await storage.storage_set("cas", value, 60)

    async def sets() -> None:
        for _ in range(50):
            await storage.storage_set("set", value, 86400)

    async def adds() -> None:
        for _ in range(50):
            assert await storage.storage_compare_and_set(f"add-{next(fresh)}", None, value, 86400)

    async def gets_cas() -> None:
        for _ in range(50):
            new = value + str(next(fresh)).encode()
            assert await storage.storage_compare_and_set("cas", current[0], new, 86400)
            current[0] = new

    async def gets() -> None:
        for _ in range(50):
            await storage.storage_get("set")

    _show(
        "one call at a time through the hooks, real memcached (µs per call)",
        await _interleaved(
            {
                "get": gets,
                "set": sets,
                "compare-and-set: add": adds,
                "compare-and-set: gets + cas": gets_cas,
            },
            50,
        ),
    )
    await storage.storage_close()


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in ("timeouts", "writes"):
        sys.exit(f"usage: {sys.argv[0]} timeouts|writes")
    memcached = start_memcached()
    try:
        print(f"CPython {sys.version.split()[0]}, memcached at {memcached.address}")
        bench = timeouts if what == "timeouts" else writes
        asyncio.run(bench(memcached.address))
    finally:
        memcached.stop()


if __name__ == "__main__":
    main()
