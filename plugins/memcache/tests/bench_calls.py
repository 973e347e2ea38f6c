"""What a memcache storage call costs: the thread hand-off and its timeout, and compare-and-set.

    .venv/bin/python plugins/memcache/tests/bench_calls.py timeouts      # µs per call
    .venv/bin/python plugins/memcache/tests/bench_calls.py instructions  # the same, callgrind
    .venv/bin/python plugins/memcache/tests/bench_calls.py writes        # set, add, gets + cas

`timeouts` runs the same calls through three ways of bounding the wait for a worker thread:

- `count + call_later (first cut)`: a count of calls in flight; a call that finds every
  worker busy arms a `loop.call_later` timer that cancels its future.
- `count + asyncio.timeout (now)`: the storage as it is: the same count; a queued call
  waits inside `asyncio.timeout`.
- `asyncio.timeout always`: no count; every call waits inside `asyncio.timeout`.

Four scenarios: every worker free (one call at a time) and every worker busy (64 tasks on 4
workers, so about 60 calls queued at any time), each with a trivial function, so the
machinery is all there is, and with a real memcached `get`. Then how long a call queued
behind hung workers waits before it fails. `instructions` counts the same scenarios with
valgrind's callgrind, which repeats where times on a shared machine do not.

`writes` times one `get`, one `set`, one `add` (compare-and-set expecting nothing) and one
`gets` + `cas` (compare-and-set expecting a value) through the storage's hooks against a real
memcached, one call at a time.

Rounds are interleaved in a new random order each round, as in benchmarks/run; the figures
are medians over rounds, with the interquartile range as a share of the median.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import subprocess
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


class AsyncioTimeoutAlways(MemcacheStorage):
    """Every call waits inside `asyncio.timeout`, worker free or not."""

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        executor = self._executor or self._start()
        async with asyncio.timeout(self.config.timeout):
            return await asyncio.get_running_loop().run_in_executor(executor, call, *args)


VARIANTS: dict[str, type[MemcacheStorage]] = {
    "count + call_later (first cut)": CountAndCallLater,
    "count + asyncio.timeout (now)": MemcacheStorage,
    "asyncio.timeout always": AsyncioTimeoutAlways,
}


def _nothing() -> None:
    return None


PAYLOAD = b"\x94\xcb" + b"\x41\xda" * 16 + b"counter-session-payload"

#: scenario: (max_pool_size, concurrent tasks, which call)
SCENARIOS: dict[str, tuple[int, int, str]] = {
    "free, trivial": (16, 1, "trivial"),
    "free, get": (16, 1, "get"),
    "busy, trivial": (4, 64, "trivial"),
    "busy, get": (4, 64, "get"),
}


def _subject(
    variant: type[MemcacheStorage], scenario: str, server: str
) -> tuple[MemcacheStorage, Callable[[int], Awaitable[None]]]:
    """A storage of `variant`, and a batch that makes `count` calls per task of `scenario`."""
    pool, tasks, which = SCENARIOS[scenario]
    storage = variant(servers=server, key_prefix="bench:", max_pool_size=pool)
    call: Callable[[], Awaitable[Any]] = (
        partial(storage._run, _nothing) if which == "trivial" else partial(storage.storage_get, "k")
    )

    async def one_task(count: int) -> None:
        for _ in range(count):
            await call()

    async def batch(count: int) -> None:
        if tasks == 1:
            await one_task(count)
        else:
            await asyncio.gather(*(one_task(count) for _ in range(tasks)))

    return storage, batch


Samples = dict[str, tuple[list[float], list[float]]]


async def _interleaved(subjects: dict[str, Callable[[], Awaitable[None]]], calls: int) -> Samples:
    """µs per call of each subject (a batch of `calls` calls), wall clock and this process's
    CPU (all its threads), one figure per round, the subjects in a new order each round."""
    samples: Samples = {name: ([], []) for name in subjects}
    for subject in subjects.values():  # warm up: threads started, connections open
        await subject()
    for _ in range(ROUNDS):
        order = list(subjects.items())
        random.shuffle(order)
        for name, batch in order:
            wall, cpu = time.perf_counter(), time.process_time()
            await batch()
            samples[name][0].append((time.perf_counter() - wall) / calls * 1e6)
            samples[name][1].append((time.process_time() - cpu) / calls * 1e6)
    return samples


def _show(title: str, samples: Samples) -> None:
    print(f"\n{title}\n  {'':32}{'µs/call':>9}{'spread':>8}{'cpu µs':>9}{'spread':>8}")
    for name, (wall, cpu) in samples.items():
        print(f"  {name:32}{_median_and_spread(wall)}{_median_and_spread(cpu)}")


def _median_and_spread(values: list[float]) -> str:
    median = statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{median:9.2f}{(q3 - q1) / median:8.1%}"


async def timeouts(server: str) -> None:
    await MemcacheStorage(servers=server, key_prefix="bench:").storage_set("k", PAYLOAD, 600)
    for scenario, (pool, tasks, which) in SCENARIOS.items():
        per_task = {(1, "trivial"): 500, (1, "get"): 50, (64, "trivial"): 20}.get(
            (tasks, which), 10
        )
        subjects = {name: _subject(cls, scenario, server) for name, cls in VARIANTS.items()}
        _show(
            f"{scenario}: {tasks} task(s) on {pool} workers, "
            f"{'a trivial function' if which == 'trivial' else 'memcached get'} (µs per call)",
            await _interleaved(
                {name: partial(batch, per_task) for name, (_, batch) in subjects.items()},
                per_task * tasks,
            ),
        )
        for storage, _ in subjects.values():
            await storage.storage_close()

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
            outcome = f"TimeoutError({str(exc)[:40]!r}...)"
        waited = time.monotonic() - started
        hung_outcomes = await asyncio.gather(*hung, return_exceptions=True)
        hung_text = ", ".join(type(r).__name__ if r else "finished" for r in hung_outcomes)
        print(f"  {name:32} {outcome} after {waited:.2f}s; the hung calls: {hung_text}")
        await storage.storage_close()


async def _one(variant: str, scenario: str, count: int, server: str) -> None:
    """The measured program of `instructions`: a warm-up, then `count` calls per task."""
    storage, batch = _subject(VARIANTS[variant], scenario, server)
    await storage.storage_set("k", PAYLOAD, 600)
    await batch(20)
    await batch(count)
    await storage.storage_close()


def instructions(server: str) -> None:
    """Instructions per call under callgrind (all threads), from two runs that differ only
    in the number of calls: start-up and warm-up cancel out, and the count repeats."""
    few, many = 100, 1100
    for scenario, (pool, tasks, _) in SCENARIOS.items():
        print(f"\n{scenario}: {tasks} task(s) on {pool} workers (instructions per call)")
        for variant in VARIANTS:
            runs = [_callgrind(variant, scenario, n, server) for n in (few, many)]
            per_call = (runs[1] - runs[0]) / ((many - few) * tasks)
            print(f"  {variant:32}{per_call:12,.0f}")


def _callgrind(variant: str, scenario: str, count: int, server: str) -> int:
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "_one",
        variant,
        scenario,
        str(count),
        server,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-500:]}")
    return int(found.group(1))


async def writes(server: str) -> None:
    storage = MemcacheStorage(servers=server, key_prefix="bench:")
    fresh = iter(range(10**9))
    current = [PAYLOAD]
    await storage.storage_set("cas", PAYLOAD, 60)

    async def gets() -> None:
        for _ in range(50):
            await storage.storage_get("set")

    async def sets() -> None:
        for _ in range(50):
            await storage.storage_set("set", PAYLOAD, 86400)

    async def adds() -> None:
        for _ in range(50):
            assert await storage.storage_compare_and_set(f"add-{next(fresh)}", None, PAYLOAD, 86400)

    async def gets_cas() -> None:
        for _ in range(50):
            new = PAYLOAD + str(next(fresh)).encode()
            assert await storage.storage_compare_and_set("cas", current[0], new, 86400)
            current[0] = new

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
    if what == "_one":
        variant, scenario, count, server = sys.argv[2:6]
        asyncio.run(_one(variant, scenario, int(count), server))
        return
    if what not in ("timeouts", "instructions", "writes"):
        sys.exit(f"usage: {sys.argv[0]} timeouts|instructions|writes")
    memcached = start_memcached()
    try:
        print(f"CPython {sys.version.split()[0]}, memcached at {memcached.address}")
        if what == "instructions":
            instructions(memcached.address)
        else:
            asyncio.run((timeouts if what == "timeouts" else writes)(memcached.address))
    finally:
        memcached.stop()


if __name__ == "__main__":
    main()
