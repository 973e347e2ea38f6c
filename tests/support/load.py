"""Shared pieces of the reliability campaign: a recording storage, a raw ASGI call, a load run.

The load run plays many browsers at once against an in-process ASGI app: each virtual user
keeps its own cookie, sends its requests one after another, and checks every answer against
what it alone could know (its token, its counter). Numbers scale up through environment
variables so that `scripts/reliability` runs the very same tests with bigger figures, and
each test can leave its figures in the JSON-lines file named by ``SESSIONWARE_FIGURES``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import sessionware
from hypothesis import HealthCheck, settings
from sessionware import Config, SessionMiddleware, StorageError, Store

from tests.support.apps import Shared, SharedPlain, http_scope, real_plugin
from tests.support.backends import Backend

# R4, written out again here on purpose: the tests check the core against the spec's text.
VALID_ID: Final = re.compile(r"[A-Za-z0-9\-_.~+/=]{1,128}")
COOKIE: Final = "session_id"

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


# -- scale and figures ------------------------------------------------------------------


def scaled(name: str, default: int) -> int:
    """A campaign size: ``SESSIONWARE_<NAME>`` from the environment, else the suite's default."""
    return int(os.environ.get(f"SESSIONWARE_{name}", default))


def fuzz_settings(default_examples: int) -> settings:
    """Few fixed examples in the default suite (derandomized: CI never flakes), or a campaign.

    ``SESSIONWARE_FUZZ_EXAMPLES`` turns on random search with that many examples per property.
    """
    campaign = os.environ.get("SESSIONWARE_FUZZ_EXAMPLES")
    tolerate = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if campaign:
        return settings(max_examples=int(campaign), deadline=None, suppress_health_check=tolerate)
    return settings(
        max_examples=default_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=tolerate,
    )


def record_figure(kind: str, **figures: Any) -> None:
    """Append one line of figures for `scripts/reliability` to collect (no-op without it)."""
    path = os.environ.get("SESSIONWARE_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"kind": kind, **figures}, default=str) + "\n")


_tally: Counter[str] = Counter()


def tried(what: str) -> None:
    """Count one fuzzed input of a kind, for the campaign's figures."""
    _tally[what] += 1


def report_tally(module: str) -> None:
    """Leave the counts of fuzzed inputs as figures, and start counting afresh."""
    for what, count in sorted(_tally.items()):
        record_figure("fuzz", module=module, input=what, count=count)
    _tally.clear()


# -- a storage that records every key it is asked about ---------------------------------


class RecordingStorage:
    """A dictionary storage that keeps every key it was called with.

    `answer`, when given, replaces the dictionary on `storage_get`: that is how a test plays a
    hostile or corrupted storage that hands back whatever bytes it likes.
    """

    name = "recording"

    def __init__(self, answer: Callable[[str], bytes | None] | None = None) -> None:
        self.answer = answer
        self.keys: list[str] = []
        self.calls: Counter[str] = Counter()
        self.entries: dict[str, bytes] = {}

    def invalid_keys(self) -> list[str]:
        return [key for key in self.keys if VALID_ID.fullmatch(key) is None]

    def _note(self, operation: str, key: str | None = None) -> None:
        self.calls[operation] += 1
        if key is not None:
            self.keys.append(key)

    @sessionware.hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        self._note("get", key)
        if self.answer is not None:
            return self.answer(key)
        return self.entries.get(key)

    @sessionware.hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        self._note("set", key)
        self.entries[key] = bytes(value)

    @sessionware.hookimpl
    async def storage_delete(self, key: str) -> None:
        self._note("delete", key)
        self.entries.pop(key, None)

    @sessionware.hookimpl
    async def storage_reset(self) -> None:
        self._note("reset")
        self.entries.clear()

    @sessionware.hookimpl
    async def storage_close(self) -> None:
        self._note("close")


# -- several app instances on one storage ----------------------------------------------


@dataclass
class CasTally:
    """How the compare-and-sets of a run ended. Each lost one is a save (or an owner index
    change) that another got in before: it re-read the record and tried again (R21).
    The ``_on_index`` counts are those on keys the core keeps for itself, which begin with
    ``~`` (S9): the owner indexes (S10)."""

    won: int = 0
    lost: int = 0
    won_on_index: int = 0
    lost_on_index: int = 0


class TalliedStorage(Shared):
    """One instance's door to a storage it shares: every hook passed on, compare-and-set
    outcomes counted, closing left to whoever opened the storage."""

    def __init__(self, inner: Any, tally: CasTally) -> None:
        super().__init__(inner)
        self.tally = tally

    @sessionware.hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        stored: bool = await self.inner.storage_compare_and_set(
            key=key, expected=expected, value=value, expires_in=expires_in
        )
        on_index = key.startswith("~")
        if stored:
            self.tally.won += 1
            self.tally.won_on_index += on_index
        else:
            self.tally.lost += 1
            self.tally.lost_on_index += on_index
        return stored


@asynccontextmanager
async def instances(
    backend: Backend, count: int, **config: Any
) -> AsyncIterator[tuple[list[Store], CasTally]]:
    """`count` stores on one storage, as `count` processes of one app behind a load balancer.

    Inside one store, saves of one session take turns (R21) and never race; only saves from
    different instances meet at the storage's compare-and-set, which is what a run of several
    instances puts to work. A storage without compare-and-set gets plain passing doors, so
    that its tests fail on what it stores rather than on a missing hook.
    """
    plugin = real_plugin(backend)
    tally = CasTally()

    def door() -> object:
        if callable(getattr(plugin, "storage_compare_and_set", None)):
            return TalliedStorage(plugin, tally)
        return SharedPlain(plugin)

    stores = [Store(Config(storage=door(), **config)) for _ in range(count)]
    try:
        yield stores, tally
    finally:
        for store in stores:
            await store.close()
        await plugin.storage_close()  # type: ignore[attr-defined]


# -- one raw ASGI request ---------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header_values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    app: ASGIApp,
    path: str = "/",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    query_string: bytes = b"",
    method: str = "GET",
) -> Reply:
    """Call an ASGI app with exactly these bytes, the way a server would, and collect the reply."""
    scope = http_scope(path, headers or [], query_string, method)
    received = False
    start: Message | None = None
    body: list[bytes] = []

    async def receive() -> Message:
        nonlocal received
        if received:
            await asyncio.Event().wait()  # a server parks here until the client goes away
        received = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            assert start is None, "two response starts"
            start = message
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    assert start is not None, "the app answered nothing"
    return Reply(start["status"], list(start.get("headers", [])), b"".join(body))


def session_cookie(reply: Reply, name: str = COOKIE) -> tuple[str, bool] | None:
    """The session cookie a reply sets: (value, expired?), or None when it sets none."""
    found = []
    for raw in reply.header_values(b"set-cookie"):
        first, *attributes = raw.decode("latin-1").split(";")
        key, _, value = first.strip().partition("=")
        if key == name:
            expired = any(a.strip().lower() == "max-age=0" for a in attributes)
            found.append((value, expired))
    assert len(found) <= 1, f"two Set-Cookie lines for {name} (R11): {found}"
    return found[0] if found else None


# -- the load app -----------------------------------------------------------------------


def counter_app(store: Store, *, auto_save: bool) -> SessionMiddleware:
    """``GET /hit?token=T``: a session owned by T counts its visits and answers its data.

    A fresh session is claimed with two keys only its owner can know (``owner`` and
    ``k_<token>``); every visit adds one to ``n``. Without auto-save the handler saves.
    """

    async def app(scope: Message, receive: Any, send: Any) -> None:
        query = parse_qs(scope["query_string"].decode())
        token = query["token"][0]
        session = await store.get(scope)
        fresh = session.fresh
        if fresh:
            session.set("owner", token)
            session.set(f"k_{token}", token)
        session.set("n", session.get("n", 0) + 1)
        if not auto_save:
            await session.save()
        payload = {"id": session.id, "fresh": fresh, "data": {key: session[key] for key in session}}
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return SessionMiddleware(app, store=store, auto_save=auto_save)


# -- the load run -----------------------------------------------------------------------

OK, SERVER_ERROR, STORAGE_ERROR, HUNG = "ok", "500", "StorageError", "hung"


@dataclass
class User:
    """One virtual browser: its token, its cookie, and what the server told it so far."""

    token: str
    cookie: str | None = None
    session_id: str | None = None
    count: int = 0  # the last `n` the server acknowledged
    failures_since_ack: int = 0  # failed requests since then: each may or may not have counted
    sessions_started: int = 0


@dataclass
class LoadRun:
    """Many users, each sending `requests` in a row, at most `in_flight` requests at once.

    `allow_loss` says whether a user may find its session gone (a server restarted without
    persistence): it must then get a fresh session under a new id (R3), never anyone else's.
    """

    app: ASGIApp
    sessions: int
    requests: int
    in_flight: int
    request_timeout: float = 30.0
    allow_loss: bool = False
    think: float = 0.0  # seconds a user waits between two of its requests
    users: list[User] = field(default_factory=list)  # given: a later phase of the same users
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    failure_seconds: list[float] = field(default_factory=list)
    losses: int = 0
    last_failure: float = 0.0  # time.monotonic() when the last failed request ended
    completed: int = 0
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        return self.sessions * self.requests

    @property
    def failed(self) -> int:
        return self.completed - self.outcomes[OK]

    async def run(self) -> LoadRun:
        if not self.users:
            self.users = [User(f"u{i}x{uuid.uuid4().hex[:8]}") for i in range(self.sessions)]
        gate = asyncio.Semaphore(self.in_flight)
        started = time.monotonic()
        await asyncio.gather(*(self._browse(user, gate) for user in self.users))
        self.elapsed = time.monotonic() - started
        return self

    async def reached(self, fraction: float, limit: float = 120.0) -> None:
        """Wait until this share of all requests is done (bounded: a stuck run fails)."""
        deadline = time.monotonic() + limit
        while self.completed < fraction * self.total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the load run is stuck at {self.completed}/{self.total}")
            await asyncio.sleep(0.01)

    async def _browse(self, user: User, gate: asyncio.Semaphore) -> None:
        for _ in range(self.requests):
            async with gate:
                await self.visit(user)
            self.completed += 1
            if self.think:
                await asyncio.sleep(self.think)

    async def visit(self, user: User) -> bool:
        """One request of `user`; True when it was answered 200 and checked."""
        headers = [(b"cookie", f"{COOKIE}={user.cookie}".encode())] if user.cookie else []
        began = time.monotonic()
        try:
            reply = await asyncio.wait_for(
                call(
                    self.app, "/hit", headers=headers, query_string=f"token={user.token}".encode()
                ),
                self.request_timeout,
            )
        except StorageError:
            return self._failed(user, STORAGE_ERROR, began)
        except TimeoutError:
            return self._failed(user, HUNG, began)
        except Exception as exc:
            return self._failed(user, f"crash: {type(exc).__name__}: {exc}", began)
        if reply.status != 200:
            return self._failed(user, str(reply.status), began)
        self.outcomes[OK] += 1
        self._check(user, reply)
        return True

    def _failed(self, user: User, outcome: str, began: float) -> bool:
        self.outcomes[outcome] += 1
        self.last_failure = time.monotonic()
        self.failure_seconds.append(self.last_failure - began)
        user.failures_since_ack += 1
        return False

    def _check(self, user: User, reply: Reply) -> None:
        payload = reply.json()
        data = payload["data"]
        expected_keys = {"owner", "n", f"k_{user.token}"}
        if data.get("owner") != user.token or set(data) != expected_keys:
            self.violations.append(f"{user.token} saw another session's data: {data}")
            return
        if payload["fresh"]:
            if user.session_id is not None:
                self.losses += 1
                if not self.allow_loss:
                    self.violations.append(f"{user.token} lost its session {user.session_id}")
                if payload["id"] == user.session_id:
                    self.violations.append(f"{user.token}: unknown id adopted (R3)")
            user.sessions_started += 1
            user.count = 0
            user.failures_since_ack = 0
        elif payload["id"] != user.session_id:
            self.violations.append(f"{user.token}: id changed without a fresh session")
        n = data["n"]
        low, high = user.count + 1, user.count + 1 + user.failures_since_ack
        if not low <= n <= high:
            self.violations.append(f"{user.token}: counter {n}, expected {low}..{high}")
        user.count, user.failures_since_ack, user.session_id = n, 0, payload["id"]
        cookie = session_cookie(reply)
        if cookie is not None:
            value, expired = cookie
            user.cookie = None if expired else value
            if not expired and value != payload["id"]:
                self.violations.append(f"{user.token}: cookie {value} for session {payload['id']}")

    async def verify_stored(self, store: Store) -> list[str]:
        """Every user's session, read back from storage: its own data and its exact count."""
        problems = []
        for user in self.users:
            if user.session_id is None:
                continue
            session = await store.get_by_id(user.session_id)
            if session is None:
                problems.append(f"{user.token}: session {user.session_id} is gone from storage")
                continue
            n = session.get("n")
            high = user.count + user.failures_since_ack
            if session.get("owner") != user.token or not isinstance(n, int):
                problems.append(f"{user.token}: storage holds another's data under its id")
            elif not user.count <= n <= high:
                problems.append(f"{user.token}: stored counter {n}, expected {user.count}..{high}")
        return problems

    def summary(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "requests_per_session": self.requests,
            "in_flight": self.in_flight,
            "requests": self.completed,
            "ok": self.outcomes[OK],
            "failed": self.failed,
            "outcomes": dict(self.outcomes),
            "violations": len(self.violations),
            "lost_sessions": self.losses,
            "slowest_failure_s": round(max(self.failure_seconds, default=0.0), 3),
            "seconds": round(self.elapsed, 2),
        }


async def recovery_seconds(app: ASGIApp, limit: float, request_timeout: float = 30.0) -> float:
    """Seconds until a new user's request succeeds again; fails after `limit` seconds."""
    probe = LoadRun(app, sessions=1, requests=1, in_flight=1, request_timeout=request_timeout)
    user = User(f"probe{uuid.uuid4().hex[:8]}")
    began = time.monotonic()
    while not await probe.visit(user):
        if time.monotonic() - began > limit:
            raise AssertionError(f"no request succeeded within {limit}s: {dict(probe.outcomes)}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began
