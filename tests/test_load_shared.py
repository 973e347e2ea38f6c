"""R21 under load: many clients sharing few sessions, each request setting a key of its own.

Clients far outnumber sessions, so many requests hold one session at once, and they are
spread over several app instances on one storage (as processes behind a load balancer), so
their saves meet at the storage's compare-and-set. Each request loads its shared session,
sets one key no other request sets, and saves it (explicitly, or by auto-save). What must
hold, on every backend: no request fails, each reads every key its client wrote before (its
own earlier saves all landed), and at the end every key written by a request is in its
session with its value: none lost, none extra. Before R21's merge, "the last save wins,
whole" lost most of them.

The default suite runs a small crowd; `scripts/reliability` sets ``SESSIONWARE_SHARED_*``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from sessionware import SessionMiddleware, Store

from tests.support.backends import Backend
from tests.support.load import (
    COOKIE,
    ASGIApp,
    CasTally,
    Message,
    Reply,
    call,
    instances,
    record_figure,
    scaled,
    session_cookie,
)

CLIENTS = scaled("SHARED_CLIENTS", 60)
SESSIONS = scaled("SHARED_SESSIONS", 4)
REQUESTS = scaled("SHARED_REQUESTS", 8)
IN_FLIGHT = scaled("SHARED_IN_FLIGHT", 20)
INSTANCES = scaled("INSTANCES", 3)


def key_setter_app(store: Store, *, auto_save: bool) -> SessionMiddleware:
    """``GET /add?key=K``: load the request's session, set K to K, save; answer its keys.

    Between loading and saving, the handler awaits once, as one that calls a database would,
    so that requests on one session overlap even on a storage that never suspends (memory).
    """

    async def app(scope: Message, receive: Any, send: Any) -> None:
        key = parse_qs(scope["query_string"].decode())["key"][0]
        session = await store.get(scope)
        fresh = session.fresh
        session.set(key, key)
        await asyncio.sleep(0)
        if not auto_save:
            await session.save()
        payload = {"id": session.id, "fresh": fresh, "ended": session.ended, "keys": list(session)}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    return SessionMiddleware(app, store=store, auto_save=auto_save)


@dataclass
class SharedRun:
    """`CLIENTS` clients, client c on session ``c % SESSIONS``, each sending `REQUESTS`
    requests one after another, request r of client c to instance ``(c + r) % INSTANCES``."""

    apps: Sequence[ASGIApp]
    session_ids: list[str]
    written: dict[str, set[str]] = field(default_factory=dict)  # session id -> acknowledged keys
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    keys_lost: int = 0  # acknowledged keys missing from storage at the end
    elapsed: float = 0.0

    async def run(self) -> SharedRun:
        self.written = {session_id: set() for session_id in self.session_ids}
        gate = asyncio.Semaphore(IN_FLIGHT)
        started = time.monotonic()
        await asyncio.gather(*(self._client(number, gate) for number in range(CLIENTS)))
        self.elapsed = time.monotonic() - started
        return self

    async def _client(self, number: int, gate: asyncio.Semaphore) -> None:
        session_id = self.session_ids[number % len(self.session_ids)]
        cookie = [(b"cookie", f"{COOKIE}={session_id}".encode())]
        mine: set[str] = set()
        for request in range(REQUESTS):
            key = f"c{number}r{request}"
            app = self.apps[(number + request) % len(self.apps)]
            self.sent += 1
            async with gate:
                try:
                    reply = await call(
                        app, "/add", headers=cookie, query_string=f"key={key}".encode()
                    )
                except Exception as exc:
                    self.failures.append(f"{key}: {type(exc).__name__}: {exc}")
                    continue
            if reply.status != 200:
                self.failures.append(f"{key}: answered {reply.status}")
                continue
            self._check(key, session_id, mine, reply)
            mine.add(key)
            self.written[session_id].add(key)

    def _check(self, key: str, session_id: str, mine: set[str], reply: Reply) -> None:
        payload = reply.json()
        if payload["fresh"] or payload["ended"] or payload["id"] != session_id:
            self.violations.append(f"{key}: the shared session was lost: {payload}")
            return
        missing = (mine | {key}) - set(payload["keys"])
        if missing:
            self.violations.append(f"{key}: its client's earlier keys are gone: {sorted(missing)}")
        if session_cookie(reply) != (session_id, False):
            self.violations.append(f"{key}: the reply does not send the session's id back (R6)")

    async def verify_stored(self, store: Store) -> list[str]:
        """Each shared session, read back: its first key and every acknowledged one, no other."""
        problems = []
        for session_id, keys in self.written.items():
            session = await store.get_by_id(session_id)
            if session is None:
                problems.append(f"session {session_id} is gone from storage")
                continue
            expected = {"base", *keys}
            stored = set(session.keys())
            if stored != expected:
                lost, extra = sorted(expected - stored), sorted(stored - expected)
                self.keys_lost += len(lost)
                problems.append(
                    f"session {session_id}: {len(lost)} keys lost {lost[:5]}, extra {extra[:5]}"
                )
            wrong = [key for key in expected & stored if session[key] != key]
            if wrong:
                problems.append(f"session {session_id}: wrong values under {wrong[:5]}")
        return problems

    def figures(self, tally: CasTally) -> dict[str, Any]:
        return {
            "instances": len(self.apps),
            "clients": CLIENTS,
            "sessions": len(self.session_ids),
            "in_flight": IN_FLIGHT,
            "requests": self.sent,
            "failed": len(self.failures),
            "keys": sum(len(keys) for keys in self.written.values()),
            "keys_lost": self.keys_lost,
            "cas_won": tally.won,
            "cas_lost": tally.lost,
            "violations": len(self.violations),
            "seconds": round(self.elapsed, 2),
        }


@pytest.mark.parametrize("auto_save", [True, False], ids=["auto-save", "explicit-save"])
async def test_r21_clients_sharing_few_sessions_each_setting_a_key_lose_none(
    storage_backend: Backend, auto_save: bool
) -> None:
    async with instances(storage_backend, INSTANCES) as (stores, tally):
        apps = [key_setter_app(store, auto_save=auto_save) for store in stores]
        session_ids = []
        for _ in range(SESSIONS):
            first = await call(apps[0], "/add", query_string=b"key=base")
            assert first.status == 200
            session_ids.append(first.json()["id"])
        tally.won = tally.lost = 0
        run = await SharedRun(apps, session_ids).run()
        stored = await run.verify_stored(stores[-1])
    record_figure(
        "shared", backend=storage_backend.label, auto_save=auto_save, **run.figures(tally)
    )
    assert run.failures == []
    assert run.violations == []
    assert stored == []
    assert sum(len(keys) for keys in run.written.values()) == CLIENTS * REQUESTS
