"""R21 under load, on every installed backend: many sessions at once, each sees only its own,
with plain records and with sealed ones (S9).

The default suite runs a scaled-down load (``SESSIONWARE_LOAD_SESSIONS`` and friends raise
it); `scripts/reliability` runs the full 1,000 sessions x 20 requests with 100 in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from sessionware import Config, SessionMiddleware, Store

from tests.support.apps import real_plugin, storage_key
from tests.support.backends import Backend
from tests.support.load import LoadRun, Message, call, counter_app, record_figure, scaled

SESSIONS = scaled("LOAD_SESSIONS", 200)
REQUESTS = scaled("LOAD_REQUESTS", 10)
IN_FLIGHT = scaled("LOAD_IN_FLIGHT", 50)


# S9: the first byte of what storage holds under a session's handle says how it reads.
MARKERS = {"plain": b"\x01", "sealed": b"\x02"}


@pytest.mark.parametrize("records", ["plain", "sealed"])
@pytest.mark.parametrize("auto_save", [True, False], ids=["auto-save", "explicit-save"])
async def test_every_counter_ends_exact_and_no_session_sees_another(
    storage_backend: Backend, auto_save: bool, records: str
) -> None:
    plugin: Any = real_plugin(storage_backend)
    keys = [os.urandom(32)] if records == "sealed" else []
    async with Store(Config(storage=plugin, encryption_keys=keys)) as store:
        run = LoadRun(counter_app(store, auto_save=auto_save), SESSIONS, REQUESTS, IN_FLIGHT)
        await run.run()
        stored = await run.verify_stored(store)
        markers = set()
        for user in run.users:
            assert user.session_id is not None
            raw = await plugin.storage_get(key=storage_key(user.session_id))
            markers.add(raw[:1] if raw else raw)
    record_figure(
        "load",
        backend=storage_backend.label,
        auto_save=auto_save,
        sealed=records == "sealed",
        **run.summary(),
    )
    assert run.violations == []
    assert stored == []
    assert dict(run.outcomes) == {"ok": SESSIONS * REQUESTS}
    assert all(user.count == REQUESTS and user.sessions_started == 1 for user in run.users)
    assert markers == {MARKERS[records]}, "every session is stored as configured (S9)"


async def test_concurrent_saves_of_one_session_setting_the_same_keys_never_mix(
    storage_backend: Backend,
) -> None:
    """R21: each save lands whole, on top of the one before. Writers racing on one session,
    each setting the same three keys, leave all three from one save (the later save wins
    for each key it changed), never a mix of two."""
    writers = scaled("RACE_WRITERS", 40)

    async with Store(Config(**storage_backend.config_kwargs())) as store:

        async def app(scope: Message, receive: Any, send: Any) -> None:
            session = await store.get(scope)
            mark = scope["query_string"].decode()
            for key in ("a", "b", "c"):
                session.set(key, mark)
                await asyncio.sleep(0)  # let the other writers interleave between the sets
            await session.save()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": json.dumps(session.id).encode()})

        wrapped = SessionMiddleware(app, store=store)
        first = await call(wrapped, "/", query_string=b"w-first")
        session_id = first.json()
        cookie = [(b"cookie", f"session_id={session_id}".encode())]
        marks = [f"w{i}".encode() for i in range(writers)]
        replies = await asyncio.gather(
            *(call(wrapped, "/", headers=cookie, query_string=mark) for mark in marks)
        )
        assert {reply.status for reply in replies} == {200}
        assert {reply.json() for reply in replies} == {session_id}
        stored = await store.get_by_id(session_id)
    assert stored is not None
    written = {stored["a"], stored["b"], stored["c"]}
    record_figure("race", backend=storage_backend.label, writers=writers, whole=len(written) == 1)
    assert len(written) == 1, f"a save was mixed with another: {written}"
    assert written.pop() in {mark.decode() for mark in marks}
