"""S10 and R24 under load: users signing in and out on many clients while "log out
everywhere else" runs again and again.

A few owners each have one client that stays signed in (the device the user logs the others
out from) and many that sign in, use their session, and sign out after every other round,
leaving the other sessions signed in. Meanwhile each owner's revoker calls
``store.revoke(owner, keep=...)`` again and again, keeping the first client's session, until
every client has played all rounds but the last, and once more then; the last round runs
after every revoke, so that sessions other than the kept ones are live at the end too.
Requests and revokes are spread over several app instances on one storage. What must hold,
on every backend:

- no request fails (no 5xx, no exception), and the kept session is never ended;
- a session revoked is unknown to every request that starts after the revoke returned (R3),
  and a request that held it while it was revoked stores nothing and sends no cookie (R24);
- afterwards ``store.sessions_of(owner)`` lists exactly the sessions still live (each
  checked with ``store.get_by_id``), and each live session holds its owner and every key its
  client's acknowledged saves wrote; no revoked or signed-out session is among them.

The default suite runs a small crowd; `scripts/reliability` sets ``SESSIONWARE_OWNER_*``.
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

from tests.support.apps import storage_key as handle_of
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

OWNERS = scaled("OWNERS", 3)
CLIENTS = scaled("OWNER_CLIENTS", 8)  # per owner, besides the one that stays signed in
ROUNDS = scaled("OWNER_ROUNDS", 4)  # sign-ins per client
USES = scaled("OWNER_USES", 3)  # requests per sign-in
IN_FLIGHT = scaled("OWNER_IN_FLIGHT", 20)
INSTANCES = scaled("INSTANCES", 3)
OWNER_KEY = "user_id"
# Users pause between requests, and revokers between revokes, so that the revokes fall while
# clients hold their sessions, yet a session lives through a few requests.
THINK = 0.005
REVOKE_PAUSE = 0.02


def account_app(store: Store, *, auto_save: bool) -> SessionMiddleware:
    """A site with accounts: ``/signin?owner=O&key=K`` starts a session of O holding K,
    ``/use?key=K`` sets K in a signed-in session (a fresh one it leaves alone), and
    ``/signout`` destroys the session. Each answers the session's id, whether it was fresh,
    whether it ended under the request, its owner and its keys.

    Between loading and saving, the handler awaits once, as one that calls a database would,
    so that a revoke can fall in the middle of a request even on memory storage.
    """

    async def app(scope: Message, receive: Any, send: Any) -> None:
        query = {
            name: values[0] for name, values in parse_qs(scope["query_string"].decode()).items()
        }
        path = scope["path"]
        session = await store.get(scope)
        fresh = session.fresh
        changed = False
        if path == "/signin":
            session.set(OWNER_KEY, query["owner"])
            session.set(query["key"], True)
            changed = True
        elif path == "/use" and not fresh:
            session.set(query["key"], True)
            changed = True
        elif path == "/signout":
            await session.destroy()
        await asyncio.sleep(0)
        if changed and not auto_save:
            await session.save()
        payload = {
            "id": session.id,
            "fresh": fresh,
            "ended": session.ended,
            "owner": session.get(OWNER_KEY),
            "keys": list(session),
        }
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    return SessionMiddleware(app, store=store, auto_save=auto_save)


@dataclass
class Owner:
    """One user: the session kept signed in, every session its clients held, what happened."""

    name: str
    kept: str = ""  # the id of the session that stays signed in
    written: dict[str, set[str]] = field(default_factory=dict)  # id -> acknowledged keys
    gone: set[str] = field(default_factory=set)  # ids a client saw ended, or signed out of
    revoked_at: dict[str, float] = field(default_factory=dict)  # handle -> when revoke returned
    revoked: int = 0  # what the revokes returned, summed


@dataclass
class OwnerRun:
    apps: Sequence[ASGIApp]
    stores: list[Store]
    auto_save: bool
    owners: list[Owner] = field(default_factory=list)
    requests: int = 0
    sign_ins: int = 0
    sign_outs: int = 0
    found_revoked: int = 0  # requests that found their session revoked (fresh, R3)
    ended_in_flight: int = 0  # saves that stored nothing: revoked under the request (R24)
    revokes: int = 0
    live_at_end: int = 0
    at_last_round: int = 0
    all_at_last_round: asyncio.Event = field(default_factory=asyncio.Event)
    revokes_done: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    async def run(self) -> OwnerRun:
        self.owners = [Owner(f"user-{n}") for n in range(OWNERS)]
        gate = asyncio.Semaphore(IN_FLIGHT)
        for owner in self.owners:
            reply = await self._send(self.apps[0], "/signin", f"owner={owner.name}&key=k0", None)
            assert reply is not None
            assert session_cookie(reply) is not None
            owner.kept = reply.json()["id"]
            owner.written[owner.kept] = {"k0"}
        started = time.monotonic()
        tasks = [self._keeper(owner, gate) for owner in self.owners]
        tasks += [self._revokers()]
        tasks += [
            self._client(owner, number, gate) for owner in self.owners for number in range(CLIENTS)
        ]
        await asyncio.gather(*tasks)
        self.elapsed = time.monotonic() - started
        return self

    async def _send(
        self, app: ASGIApp, path: str, query: str, session_id: str | None
    ) -> Reply | None:
        """One request; None (and a failure noted) unless it was answered 200."""
        self.requests += 1
        headers = [(b"cookie", f"{COOKIE}={session_id}".encode())] if session_id else []
        try:
            reply = await call(app, path, headers=headers, query_string=query.encode())
        except Exception as exc:
            self.failures.append(f"{path}?{query}: {type(exc).__name__}: {exc}")
            return None
        if reply.status != 200:
            self.failures.append(f"{path}?{query}: answered {reply.status}")
            return None
        return reply

    async def _keeper(self, owner: Owner, gate: asyncio.Semaphore) -> None:
        """The client that stays signed in: never revoked, so every request keeps its session."""
        for number in range(ROUNDS * USES):
            key = f"keep{number}"
            async with gate:
                reply = await self._send(
                    self.apps[number % len(self.apps)], "/use", f"key={key}", owner.kept
                )
            await asyncio.sleep(THINK)
            if reply is None:
                continue
            if reply.json()["fresh"] or session_cookie(reply) != (owner.kept, False):
                self.violations.append(f"{owner.name}: the kept session was ended: {reply.json()}")
                return
            owner.written[owner.kept].add(key)

    async def _client(self, owner: Owner, number: int, gate: asyncio.Semaphore) -> None:
        sent = number
        for round_ in range(ROUNDS):
            if round_ == ROUNDS - 1:  # the last round, after every revoke: its sessions stay
                self.at_last_round += 1
                if self.at_last_round == OWNERS * CLIENTS:
                    self.all_at_last_round.set()
                await self.revokes_done.wait()
            app = self.apps[sent % len(self.apps)]
            sent += 1
            key = f"c{number}r{round_}u0"
            async with gate:
                reply = await self._send(app, "/signin", f"owner={owner.name}&key={key}", None)
            self.sign_ins += 1
            session_id = None if reply is None else self._signed_in(owner, key, reply)
            for use in range(1, USES + 1):
                if session_id is None:
                    break
                await asyncio.sleep(THINK)
                key = f"c{number}r{round_}u{use}"
                app = self.apps[sent % len(self.apps)]
                sent += 1
                async with gate:
                    began = time.monotonic()
                    reply = await self._send(app, "/use", f"key={key}", session_id)
                if reply is None or not self._used(owner, session_id, key, began, reply):
                    session_id = None
            await asyncio.sleep(THINK)
            if session_id is not None and (number + round_) % 2 == 0:
                async with gate:
                    await self._send(self.apps[sent % len(self.apps)], "/signout", "", session_id)
                sent += 1
                self.sign_outs += 1
                owner.gone.add(session_id)

    def _signed_in(self, owner: Owner, key: str, reply: Reply) -> str | None:
        """The new session's id, or None when a revoke ended it before its first save."""
        payload = reply.json()
        cookie = session_cookie(reply)
        if cookie is None:
            self.ended_in_flight += 1
            owner.gone.add(payload["id"])
            if not self.auto_save and not payload["ended"]:
                self.violations.append(f"{owner.name}: a sign-in sent no cookie: {payload}")
            return None
        session_id: str = payload["id"]
        if cookie != (session_id, False) or not payload["fresh"] or payload["owner"] != owner.name:
            self.violations.append(f"{owner.name}: a sign-in went wrong: {payload}, {cookie}")
            return None
        owner.written[session_id] = {key}
        return session_id

    def _used(self, owner: Owner, session_id: str, key: str, began: float, reply: Reply) -> bool:
        """Check one use of `session_id`; True while the session is still signed in."""
        payload = reply.json()
        cookie = session_cookie(reply)
        revoked_at = owner.revoked_at.get(handle_of(session_id))
        if payload["fresh"]:  # R3: revoked before this request loaded it
            self.found_revoked += 1
            owner.gone.add(session_id)
            if cookie is not None:
                self.violations.append(
                    f"{owner.name}: a fresh session that set nothing sent {cookie}"
                )
            return False
        if revoked_at is not None and revoked_at < began:
            self.violations.append(f"{owner.name}: revoked session {session_id} came back (R24)")
        if cookie is None:  # R24: revoked while this request held it; nothing was stored
            self.ended_in_flight += 1
            owner.gone.add(session_id)
            if not self.auto_save and not payload["ended"]:
                self.violations.append(f"{owner.name}: a save sent no cookie: {payload}")
            return False
        if payload["ended"] or payload["id"] != session_id or payload["owner"] != owner.name:
            self.violations.append(f"{owner.name}: {session_id} was answered as {payload}")
            return False
        missing = owner.written[session_id] - set(payload["keys"])
        if missing:
            self.violations.append(f"{owner.name}: {session_id} lost {sorted(missing)}")
        if cookie != (session_id, False):
            self.violations.append(f"{owner.name}: {session_id} answered with cookie {cookie}")
        owner.written[session_id].add(key)
        return True

    async def _revokers(self) -> None:
        await asyncio.gather(*(self._revoker(owner, n) for n, owner in enumerate(self.owners)))
        self.revokes_done.set()

    async def _revoker(self, owner: Owner, number: int) -> None:
        """Log out everywhere else, keeping the first client's session, until every client
        has played all rounds but the last, and once more then."""
        kept = handle_of(owner.kept)
        while True:
            last = self.all_at_last_round.is_set()
            store = self.stores[(number + self.revokes) % len(self.stores)]
            listed = {info.handle for info in await store.sessions_of(owner.name)}
            if kept not in listed:
                self.violations.append(f"{owner.name}: the kept session is not listed")
            owner.revoked += await store.revoke(owner.name, keep=kept)
            self.revokes += 1
            done = time.monotonic()
            for handle in listed - {kept}:
                owner.revoked_at.setdefault(handle, done)
            if last:
                return
            await asyncio.sleep(REVOKE_PAUSE)

    async def verify_stored(self, store: Store) -> list[str]:
        """Per owner: the listing is exactly the live sessions, each holding what was written."""
        problems = []
        for owner in self.owners:
            live = {}
            for session_id, keys in owner.written.items():
                session = await store.get_by_id(session_id)
                if session is None:
                    continue
                live[session.handle] = session_id
                self.live_at_end += 1
                stored = set(session.keys())
                if session.get(OWNER_KEY) != owner.name or stored != {OWNER_KEY, *keys}:
                    problems.append(f"{owner.name}: {session_id} holds {sorted(stored)}")
            listed = {info.handle for info in await store.sessions_of(owner.name)}
            if listed != set(live):
                problems.append(
                    f"{owner.name}: {len(listed - set(live))} listed but not live, "
                    f"{len(set(live) - listed)} live but not listed"
                )
            back = {handle_of(i) for i in owner.gone} | set(owner.revoked_at)
            if back & set(live):
                problems.append(f"{owner.name}: {len(back & set(live))} ended sessions came back")
            if handle_of(owner.kept) not in live:
                problems.append(f"{owner.name}: the kept session is gone")
        return problems

    def figures(self, tally: CasTally) -> dict[str, Any]:
        return {
            "instances": len(self.apps),
            "owners": OWNERS,
            "clients": OWNERS * (CLIENTS + 1),
            "in_flight": IN_FLIGHT,
            "requests": self.requests,
            "failed": len(self.failures),
            "sign_ins": self.sign_ins,
            "sign_outs": self.sign_outs,
            "revokes": self.revokes,
            "revoked": sum(owner.revoked for owner in self.owners),
            "found_revoked": self.found_revoked,
            "ended_in_flight": self.ended_in_flight,
            "live_at_end": self.live_at_end,
            "cas_won": tally.won,
            "cas_lost": tally.lost,
            "cas_won_on_index": tally.won_on_index,
            "cas_lost_on_index": tally.lost_on_index,
            "violations": len(self.violations),
            "seconds": round(self.elapsed, 2),
        }


@pytest.mark.parametrize("auto_save", [True, False], ids=["auto-save", "explicit-save"])
async def test_s10_revoking_while_clients_sign_in_and_out_lists_exactly_the_live_sessions(
    storage_backend: Backend, auto_save: bool
) -> None:
    async with instances(storage_backend, INSTANCES, owner_key=OWNER_KEY) as (stores, tally):
        apps = [account_app(store, auto_save=auto_save) for store in stores]
        run = await OwnerRun(apps, stores, auto_save).run()
        stored = await run.verify_stored(stores[-1])
    record_figure(
        "owners", backend=storage_backend.label, auto_save=auto_save, **run.figures(tally)
    )
    assert run.failures == []
    assert run.violations == []
    assert stored == []
    assert run.revokes >= 2 * OWNERS  # at least one while clients play, and the last one
    assert sum(owner.revoked for owner in run.owners) > 0, "no revoke ended a session"
