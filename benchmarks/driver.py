"""Calling an ASGI app in-process, and timing it in rounds interleaved across subjects
(async ones with `measure`, sync ones, the WSGI section's, with `measure_sync`).

The same few lines of harness run for every app, so whatever they cost is the same for all
and cancels out of every difference the report prints.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}
_BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"host", b"bench.local"),
    (b"user-agent", b"sessionware-bench"),
    (b"accept", b"*/*"),
]
_NO_COOKIE_VALUES = frozenset({b"", b"''", b'""', b"null"})


class CheckFailed(Exception):
    """A subject answered something wrong: its numbers would mean nothing."""


async def _receive() -> Message:
    return _REQUEST


class Client:
    """One browser on one path: it keeps the app's session cookie as a browser would."""

    __slots__ = (
        "_app",
        "_headers",
        "_path",
        "_prefix",
        "_raw_path",
        "body",
        "cookie",
        "cookies_set",
        "failures",
        "keep_cookies",
        "requests",
    )

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        cookie_name: str,
        *,
        cookie: bytes | None = None,
        keep_cookies: bool = True,
    ) -> None:
        self._app = app
        self._path = path
        self._raw_path = path.encode()
        self._prefix = cookie_name.encode() + b"="
        self.keep_cookies = keep_cookies
        self.cookie: bytes | None = None
        self._headers = _BASE_HEADERS
        self._use_cookie(cookie)
        self.body = b""
        self.requests = 0
        self.failures = 0
        self.cookies_set = 0

    async def request(self) -> None:
        self.requests += 1
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self._path,
            "raw_path": self._raw_path,
            "root_path": "",
            "query_string": b"",
            "headers": self._headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await self._app(scope, _receive, self._send)

    async def run(self, count: int) -> None:
        request = self.request
        for _ in range(count):
            await request()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if message["status"] != 200:
                self.failures += 1
            for name, value in message.get("headers", ()):
                if value.startswith(self._prefix) and name.lower() == b"set-cookie":
                    self._take_cookie(value)
        elif kind == "http.response.body":
            self.body = message.get("body", b"")

    def _take_cookie(self, header: bytes) -> None:
        self.cookies_set += 1
        if self.keep_cookies:
            pair = header.split(b";", 1)[0]
            self._use_cookie(None if pair[len(self._prefix) :] in _NO_COOKIE_VALUES else pair)

    def _use_cookie(self, pair: bytes | None) -> None:
        if pair == self.cookie:
            return
        self.cookie = pair
        self._headers = _BASE_HEADERS if pair is None else [(b"cookie", pair), *_BASE_HEADERS]


class Subject(Protocol):
    """Anything timed in rounds: `run(n)` does n operations, `check()` proves they were right."""

    name: str
    width: int  # operations per unit of `count`: the clients of a crowd

    async def run(self, count: int) -> None: ...

    def check(self) -> None: ...


@dataclass
class Series:
    """The samples of one subject, one per round, in µs per operation.

    `samples` is wall-clock time, what the targets are judged by. `cpu` is the CPU time of
    this process (every thread: the event loop, aiosqlite's, the memcache workers), so it
    leaves out the servers' time and, on a busy machine, the time other processes had.
    """

    name: str
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    operations: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def spread(self) -> float:
        """The interquartile range as a fraction of the median: how much to trust it."""
        if len(self.samples) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / self.median

    @property
    def per_second(self) -> float:
        return 1e6 / self.median


@dataclass(frozen=True)
class Plan:
    """How long to measure: rounds of one batch per subject, each batch about `batch` s.

    Short batches and many rounds: on a busy machine most short batches run without being
    preempted, so their median is the cost of the code rather than of the neighbours.
    """

    rounds: int
    batch: float
    warmup: float
    min_count: int = 5
    seed: int = 7


class SyncSubject(Protocol):
    """A `Subject` whose `run` is a plain call: a WSGI app, a sync client."""

    name: str
    width: int

    def run(self, count: int) -> None: ...

    def check(self) -> None: ...


Timer = Callable[[Any, int], Awaitable[tuple[float, float]]]


async def _time(subject: Subject, count: int) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of `count` operations."""
    cpu, start = time.process_time(), time.perf_counter()
    await subject.run(count)
    return time.perf_counter() - start, time.process_time() - cpu


async def _time_sync(subject: SyncSubject, count: int) -> tuple[float, float]:
    """The same for a sync subject: it never suspends, so no event loop is needed."""
    cpu, start = time.process_time(), time.perf_counter()
    subject.run(count)
    return time.perf_counter() - start, time.process_time() - cpu


async def _calibrate(subject: Any, plan: Plan, timer: Timer) -> int:
    """Warm the subject up, and find how many operations fill one batch."""
    count, spent = 1, 0.0
    while spent < plan.warmup:
        elapsed, _ = await timer(subject, count)
        spent += elapsed
        if elapsed < plan.warmup / 8:
            count *= 2
    per_operation = elapsed / count
    subject.check()
    return max(plan.min_count, round(plan.batch / per_operation))


async def measure(
    subjects: Sequence[Any], plan: Plan, timer: Timer = _time
) -> tuple[dict[str, Series], dict[str, str]]:
    """Samples of each subject, batches interleaved (ABC BCA …, never AAA BBB), and failures.

    Each round runs the subjects in a new random order, so that no subject always follows
    the same neighbour (a server left idle by a memory-only batch wakes up slower).
    A subject whose check fails is reported with why, and dropped from later rounds.
    """
    failed: dict[str, str] = {}
    counts: dict[str, int] = {}
    live: list[Any] = []
    for subject in subjects:
        try:
            counts[subject.name] = await _calibrate(subject, plan, timer)
        except Exception as exc:
            failed[subject.name] = f"{type(exc).__name__}: {exc}"
        else:
            live.append(subject)
    series = {subject.name: Series(subject.name) for subject in live}
    order = random.Random(plan.seed)
    gc.collect()
    for _ in range(plan.rounds):
        order.shuffle(live)
        for subject in live:
            if subject.name in failed:
                continue
            count = counts[subject.name]
            try:
                elapsed, cpu = await timer(subject, count)
                subject.check()
            except Exception as exc:
                failed[subject.name] = f"{type(exc).__name__}: {exc}"
                continue
            operations = count * subject.width
            found = series[subject.name]
            found.samples.append(elapsed / operations * 1e6)
            found.cpu.append(cpu / operations * 1e6)
            found.operations += operations
    return {name: s for name, s in series.items() if name not in failed}, failed


def measure_sync(
    subjects: Sequence[SyncSubject], plan: Plan
) -> tuple[dict[str, Series], dict[str, str]]:
    """`measure` for sync subjects, in the calling thread, which must have no running event
    loop (sessionware's sync bridge refuses to run inside one, as a WSGI worker has none).
    Nothing in it suspends, so its coroutine runs to the end at the first step."""
    return run_to_end(measure(subjects, plan, _time_sync))


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("run_to_end: the coroutine waited for something; it needs a loop")


async def gather_clients(clients: Sequence[Client], count: int) -> None:
    """Every client does `count` requests one after another, all clients at once."""
    await asyncio.gather(*(client.run(count) for client in clients))
