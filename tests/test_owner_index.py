"""S10: every session of a user, listed and logged out everywhere, on every backend
(a Redis Cluster and memcached over two servers included)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import msgspec
import pytest
import sessionware
from sessionware import Config, Session, SessionInfo, Store
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.apps import (
    CountingPlainStorage,
    Shared,
    client,
    clock_of,
    cookie_header,
    do,
    make_app,
    open_store,
    plugin_of,
    raw_get_key,
    read,
    real_plugin,
    serve,
    state,
    storage_key,
)
from tests.support.backends import Backend
from tests.support.storage_dumps import dump_storage

OWNER = {"owner_key": "user_id"}


def index_key(owner: str) -> str:
    """The owner index's key, computed from S10's definition."""
    return "~o." + storage_key(owner)


async def index_entries(store: Store, owner: str) -> list[Any]:
    """The entries of an owner's index, read from storage (plain records: marker, then
    MessagePack of ``[[handle, created, until, since], ...]``)."""
    stored = await raw_get_key(store, index_key(owner))
    assert stored is not None
    assert stored[:1] == b"\x01"
    entries: list[Any] = msgspec.msgpack.decode(stored[1:])
    return entries


async def sign_in(http: Any, user: Any, **extra: Any) -> str:
    """A new client signs in as `user`; returns its session id."""
    http.cookies.clear()
    actions = [["set", "user_id", user], *(["set", k, v] for k, v in extra.items()), ["save"]]
    session_id: str = (await do(http, *actions)).json()["id"]
    return session_id


async def login(store: Store, user: Any) -> Session:
    """A sign-in without HTTP: the request context a middleware would make, then a save."""
    context = store.context_factory(auto_save=False)()
    scope = {"type": "http", "headers": [], store.scope_key: context}
    session = await store.get(scope)
    session.set("user_id", user)
    await session.save()
    return session


# -- listing and revoking -----------------------------------------------------------------


async def test_s10_a_user_signed_in_from_three_clients_is_listed_oldest_first(
    spread_backend: Backend,
) -> None:
    async with serve(spread_backend, **OWNER) as (store, http):
        ids = []
        for device in ("laptop", "phone", "tablet"):
            ids.append(await sign_in(http, "ann", device=device))
            clock_of(store).advance(1)
        await sign_in(http, "bob", device="desktop")
        listed = await store.sessions_of("ann")
        assert [info["device"] for info in listed] == ["laptop", "phone", "tablet"]
        assert all(isinstance(info, SessionInfo) for info in listed)
        handles = [(await store.get_by_id(session_id)).handle for session_id in ids]  # type: ignore[union-attr]
        assert [info.handle for info in listed] == handles
        assert listed[0].created < listed[1].created < listed[2].created
        assert all(info.expires_at > info.created for info in listed)
        assert [info["device"] for info in await store.sessions_of("bob")] == ["desktop"]
        assert await store.sessions_of("nobody") == []


async def test_s10_revoking_all_but_the_current_one_signs_the_others_out_at_once(
    spread_backend: Backend,
) -> None:
    async with serve(spread_backend, **OWNER) as (store, http):
        laptop, phone, tablet = [await sign_in(http, "ann") for _ in range(3)]
        current = await store.get_by_id(laptop)
        assert current is not None
        assert await store.revoke("ann", keep=current) == 2
        for gone in (phone, tablet):
            body = await read(http, gone)
            assert body["fresh"] is True
            assert body["data"] == {}
            assert await store.get_by_id(gone) is None
        assert (await read(http, laptop))["data"] == {"user_id": "ann"}
        assert [info.handle for info in await store.sessions_of("ann")] == [current.handle]
        assert await store.revoke("ann", keep=current) == 0  # nothing left to end


async def test_s10_revoking_one_handle_ends_that_session_alone(spread_backend: Backend) -> None:
    async with serve(spread_backend, **OWNER) as (store, http):
        ids = [await sign_in(http, 42) for _ in range(3)]
        listed = await store.sessions_of(42)
        assert await store.revoke("42", handles=[listed[1].handle]) == 1  # 42 is "42"
        assert [await store.get_by_id(i) is not None for i in ids] == [True, False, True]
        assert len(await store.sessions_of("42")) == 2


async def test_s10_a_change_of_owner_moves_the_session_between_indexes(
    spread_backend: Backend,
) -> None:
    async with serve(spread_backend, **OWNER) as (store, http):
        session_id = await sign_in(http, "ann")
        await do(http, ["set", "user_id", "bob"], ["save"], headers=cookie_header(session_id))
        assert await store.sessions_of("ann") == []
        assert [info["user_id"] for info in await store.sessions_of("bob")] == ["bob"]
        await do(http, ["delete", "user_id"], ["save"], headers=cookie_header(session_id))
        assert await store.sessions_of("bob") == []
        assert await store.revoke("bob") == 0
        assert await store.get_by_id(session_id) is not None  # it lives on, owned by nobody


async def test_s10_a_request_that_held_a_revoked_session_cannot_bring_it_back(
    spread_backend: Backend,
) -> None:
    async with open_store(spread_backend, **OWNER) as store:
        loaded, revoked = asyncio.Event(), asyncio.Event()

        async def slow(request: Request) -> Response:
            session = await store.get(request)
            loaded.set()
            await revoked.wait()
            session.set("cart", ["late"])
            await session.save()
            return JSONResponse({**state(session), "ended": session.ended})

        app = make_app(store, routes=[Route("/slow", slow)])
        async with client(app) as http:
            session_id = await sign_in(http, "ann")
            pending = asyncio.ensure_future(http.get("/slow", headers=cookie_header(session_id)))
            await loaded.wait()
            assert await store.revoke("ann") == 1
            revoked.set()
            response = await pending
        assert response.json()["ended"] is True
        assert "set-cookie" not in response.headers
        assert await store.get_by_id(session_id) is None
        assert await store.sessions_of("ann") == []


class PausedFirstCreate(Shared):
    """The real plugin, but the first record created waits until told: a login in flight,
    its index entry written and its record not yet."""

    def __init__(self, inner: object) -> None:
        super().__init__(inner)
        self.indexed, self.go_on = asyncio.Event(), asyncio.Event()

    @sessionware.hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        if not key.startswith("~") and expected is None and not self.indexed.is_set():
            self.indexed.set()
            await self.go_on.wait()
        return await super().storage_compare_and_set(key, expected, value, expires_in)

    @sessionware.hookimpl
    async def storage_close(self) -> None:
        await self.inner.storage_close()


async def test_s10_a_login_in_flight_cannot_slip_past_a_revoke(spread_backend: Backend) -> None:
    """The index lists a new session before its record exists; a revoke then leaves a
    tombstone, and the login's first save finds it and stores nothing (R24)."""
    storage = PausedFirstCreate(real_plugin(spread_backend))
    async with open_store(spread_backend, storage=storage, **OWNER) as store:

        async def sign_in_slowly(request: Request) -> Response:
            session = await store.get(request)
            session.set("user_id", "ann")
            await session.save()
            return JSONResponse({**state(session), "ended": session.ended})

        app = make_app(store, routes=[Route("/login", sign_in_slowly)])
        async with client(app) as http:
            pending = asyncio.ensure_future(http.get("/login"))
            await storage.indexed.wait()
            assert await store.revoke("ann") == 0  # not live yet: not counted
            storage.go_on.set()
            response = await pending
        assert response.json()["ended"] is True
        assert "set-cookie" not in response.headers
        assert await store.sessions_of("ann") == []


async def test_s10_listing_while_a_sign_in_is_in_flight_keeps_its_entry(
    spread_backend: Backend,
) -> None:
    """The index lists a new session before its record exists: a listing then must not
    prune the entry, or the session would end up live but unlisted."""
    storage = PausedFirstCreate(real_plugin(spread_backend))
    async with open_store(spread_backend, storage=storage, **OWNER) as store:

        async def sign_in_slowly(request: Request) -> Response:
            session = await store.get(request)
            session.set("user_id", "ann")
            await session.save()
            return JSONResponse(state(session))

        app = make_app(store, routes=[Route("/login", sign_in_slowly)])
        async with client(app) as http:
            pending = asyncio.ensure_future(http.get("/login"))
            await storage.indexed.wait()
            assert await store.sessions_of("ann") == []  # not live yet: not listed
            storage.go_on.set()
            session_id = (await pending).json()["id"]
        session = await store.get_by_id(session_id)
        assert session is not None
        assert [info.handle for info in await store.sessions_of("ann")] == [session.handle]


async def test_s10_an_entry_whose_record_is_gone_is_pruned_once_settled(
    spread_backend: Backend,
) -> None:
    async with serve(spread_backend, **OWNER) as (store, http):
        kept, deleted = await sign_in(http, "ann"), await sign_in(http, "ann")
        await store.delete(deleted)  # by id: the index is not told
        assert len(await store.sessions_of("ann")) == 1
        assert len(await index_entries(store, "ann")) == 2  # young: maybe a sign-in in flight
        clock_of(store).advance(60)  # no sign-in takes that long: the entry is pruned
        assert len(await store.sessions_of("ann")) == 1
        assert len(await index_entries(store, "ann")) == 1
        kept_session = await store.get_by_id(kept)
        assert kept_session is not None
        assert await store.revoke("ann") == 1


async def test_s10_a_session_renewed_past_its_first_expiry_is_still_listed_and_revoked(
    spread_backend: Backend,
) -> None:
    async with serve(spread_backend, auto_save=True, expiration=60, **OWNER) as (store, http):
        session_id = (await do(http, ["set", "user_id", "ann"])).json()["id"]
        for _ in range(6):  # read every 40 s: renewed each time, alive 240 s later
            clock_of(store).advance(40)
            assert (await read(http, session_id))["fresh"] is False
        assert [info["user_id"] for info in await store.sessions_of("ann")] == ["ann"]
        assert await store.revoke("ann") == 1
        assert (await read(http, session_id))["fresh"] is True


async def test_s10_owner_max_sessions_ends_the_oldest(spread_backend: Backend) -> None:
    async with serve(spread_backend, owner_max_sessions=2, **OWNER) as (store, http):
        ids = []
        for _ in range(4):
            ids.append(await sign_in(http, "ann"))
            clock_of(store).advance(1)
        assert [await store.get_by_id(i) is not None for i in ids] == [False, False, True, True]
        assert len(await store.sessions_of("ann")) == 2
        assert (await read(http, ids[0]))["fresh"] is True


async def test_s10_only_what_the_record_says_is_listed(spread_backend: Backend) -> None:
    """Readers trust records: an entry whose record is gone is pruned, never listed."""
    async with serve(spread_backend, **OWNER) as (store, http):
        kept, deleted = await sign_in(http, "ann"), await sign_in(http, "ann")
        await store.delete(deleted)  # by id: the index is not told
        assert len(await store.sessions_of("ann")) == 1
        await do(http, ["destroy"], headers=cookie_header(kept))
        assert await store.sessions_of("ann") == []


async def test_s10_owner_ids_are_hashed_in_index_keys_and_sealed_with_keys(
    spread_backend: Backend,
) -> None:
    keys = [os.urandom(32)]
    async with serve(spread_backend, encryption_keys=keys, **OWNER) as (store, http):
        await sign_in(http, "ann-the-owner")
        dump = await dump_storage(spread_backend, plugin_of(store))
    stored = dump.everything()
    assert b"ann-the-owner" not in stored
    assert index_key("ann-the-owner").encode() in stored
    index_values = [value for key, value in dump.items if b"~o." in key]
    assert index_values
    assert all(value[:1] == b"\x02" for value in index_values)


async def test_s10_the_index_of_an_owner_whose_sessions_expired_is_gone_from_storage(
    spread_backend: Backend,
) -> None:
    async with serve(spread_backend, expiration=0.5, **OWNER) as (store, http):
        await sign_in(http, "ann")
        await sign_in(http, "ann")
        dump = await dump_storage(spread_backend, plugin_of(store))
        assert any(index_key("ann").encode() in key for key, _ in dump.items)
        deadline = time.monotonic() + 6  # 1 s listed (two expiries), memcached's 1 s clock
        while time.monotonic() < deadline:
            dump = await dump_storage(spread_backend, plugin_of(store))
            if not dump.items:
                break
            await asyncio.sleep(0.25)
        assert dump.items == []


async def test_s10_an_owner_with_10000_sessions_over_time_keeps_a_small_index(
    spread_backend: Backend,
) -> None:
    async with open_store(spread_backend, expiration=5, **OWNER) as store:
        for _ in range(10_000):  # a sign-in every 0.1 s: about 50 alive at any time
            await login(store, "busy")
            clock_of(store).advance(0.1)
        dump = await dump_storage(spread_backend, plugin_of(store))
    (index,) = [value for key, value in dump.items if key.endswith(index_key("busy").encode())]
    assert len(index) < 64 * 1024


# -- concurrency --------------------------------------------------------------------------


async def test_s10_twenty_clients_logging_in_and_out_while_revoked_are_listed_exactly(
    spread_backend: Backend,
) -> None:
    async with open_store(spread_backend, **OWNER) as store:
        app = make_app(store)
        signed_in: list[str] = []

        async def user(number: int) -> None:
            async with client(app) as own:
                for round_ in range(4):
                    session_id = await sign_in(own, "ann", n=number)
                    signed_in.append(session_id)
                    if (number + round_) % 2:
                        await do(own, ["destroy"], headers=cookie_header(session_id))

        async def revoker() -> None:
            for _ in range(5):
                await store.revoke("ann")
                await asyncio.sleep(0.01)

        await asyncio.gather(*(user(n) for n in range(20)), revoker())
        sessions = [await store.get_by_id(session_id) for session_id in signed_in]
        live = {session.handle for session in sessions if session is not None}
        listed = {info.handle for info in await store.sessions_of("ann")}
        assert listed == live
        assert await store.revoke("ann") == len(live)
        assert await store.sessions_of("ann") == []


# -- configuration ------------------------------------------------------------------------


def test_s10_owner_key_on_a_storage_without_compare_and_set_names_the_hook() -> None:
    with pytest.raises(ValueError, match="storage_compare_and_set"):
        Store(Config(storage=CountingPlainStorage(), owner_key="user_id"))


@pytest.mark.parametrize("value", [True, 1.5, ["ann"], {"id": 1}])
async def test_s10_an_owner_that_is_not_a_str_or_an_int_fails_at_save(value: Any) -> None:
    async with open_store(Backend("memory", "memory"), **OWNER) as store:
        scope = {
            "type": "http",
            "headers": [],
            store.scope_key: store.context_factory(auto_save=False)(),
        }
        session = await store.get(scope)
        session.set("user_id", value)
        with pytest.raises(TypeError, match="owner_key"):
            await session.save()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"owner_key": ""}, TypeError),
        ({"owner_key": 5}, TypeError),
        ({"owner_key": "user_id", "owner_max_sessions": 0}, ValueError),
        ({"owner_key": "user_id", "owner_max_sessions": True}, TypeError),
        ({"owner_max_sessions": 3}, ValueError),
    ],
)
def test_s10_owner_options_are_checked_when_the_config_is_built(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match="owner"):
        Config(**options)
