"""R21 and R24: concurrent requests on one session lose no update and never bring back a
session that was ended, on every backend, through the storage's compare-and-set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sessionware
from sessionware import Config, Session, StorageError, Store
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.apps import (
    CountingPlainStorage,
    CountingStorage,
    client,
    clock_of,
    cookie_header,
    counting_store,
    do,
    make_app,
    open_store,
    raw_get,
    serve,
    session_cookie,
    state,
)
from tests.support.backends import Backend

Handler = Callable[[Session, Request], Awaitable[None]]


def app_with(store: Store, handler: Handler, *, auto_save: bool = False) -> Any:
    """The test app plus ``/hold``: load the session, run `handler`, answer its state."""

    async def hold(request: Request) -> Response:
        session = await store.get(request)
        await handler(session, request)
        return JSONResponse({**state(session), "ended": session.ended})

    return make_app(store, auto_save=auto_save, routes=[Route("/hold", hold)])


async def stored_data(store: Store, session_id: str) -> dict[str, Any] | None:
    session = await store.get_by_id(session_id)
    return None if session is None else dict(session.items())


# -- R21: no lost update -----------------------------------------------------------------


@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_r21_two_interleaved_requests_each_setting_a_key_keep_both(
    storage_backend: Backend, auto_save: bool
) -> None:
    async with open_store(storage_backend) as store:
        loaded = asyncio.Barrier(2)
        first_saved = asyncio.Event()

        async def write(session: Session, request: Request) -> None:
            await loaded.wait()  # both requests hold the same stored version
            key = request.query_params["key"]
            if key == "second":
                await first_saved.wait()
            session.set(key, True)
            if not auto_save:
                await session.save()
            if key == "first":
                first_saved.set()

        async with client(app_with(store, write, auto_save=auto_save)) as http:
            session_id = (await do(http, ["set", "base", 1], ["save"])).json()["id"]
            first, second = await asyncio.gather(
                http.get("/hold", params={"key": "first"}),
                http.get("/hold", params={"key": "second"}),
            )
        assert await stored_data(store, session_id) == {"base": 1, "first": True, "second": True}
        if not auto_save:  # after its save, the later request's session holds the merge
            assert second.json()["data"] == {"base": 1, "first": True, "second": True}
        assert first.json()["id"] == second.json()["id"] == session_id


async def test_r21_fifty_concurrent_requests_each_setting_a_key_all_land(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:
        everyone_loaded = asyncio.Barrier(50)

        async def write(session: Session, request: Request) -> None:
            await everyone_loaded.wait()
            session.set(request.query_params["key"], int(request.query_params["n"]))
            await session.save()

        async with client(app_with(store, write)) as http:
            session_id = (await do(http, ["set", "base", 0], ["save"])).json()["id"]
            responses = await asyncio.gather(
                *(http.get("/hold", params={"key": f"k{n}", "n": str(n)}) for n in range(50))
            )
        assert all(r.status_code == 200 for r in responses)
        expected = {"base": 0, **{f"k{n}": n for n in range(50)}}
        assert await stored_data(store, session_id) == expected


async def test_r21_saves_of_one_session_in_one_process_take_turns_instead_of_racing(
    storage_backend: Backend,
) -> None:
    if storage_backend.label == "memory":
        pytest.skip("memory storage never suspends: its saves run one after another anyway")
    store, storage = counting_store(storage_backend)
    if not isinstance(storage, CountingStorage):
        pytest.skip(f"{storage_backend.label} has no compare-and-set")
    async with store:
        everyone_loaded = asyncio.Barrier(20)

        async def write(session: Session, request: Request) -> None:
            await everyone_loaded.wait()
            session.set(request.query_params["key"], 1)
            await session.save()

        async with client(app_with(store, write)) as http:
            session_id = (await do(http, ["set", "base", 0], ["save"])).json()["id"]
            storage.calls.clear()
            await asyncio.gather(*(http.get("/hold", params={"key": f"k{n}"}) for n in range(20)))
        # 20 loads and 20 compare-and-sets: each save started from what the one before wrote
        assert storage.count("get") == 20
        assert storage.count("cas") == 20
        assert len(await stored_data(store, session_id) or {}) == 21


async def test_r21_when_two_requests_change_one_key_the_later_save_wins_for_it(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:
        loaded = asyncio.Barrier(2)
        first_saved = asyncio.Event()

        async def write(session: Session, request: Request) -> None:
            await loaded.wait()
            who = request.query_params["who"]
            if who == "later":
                await first_saved.wait()
            session.set("colour", who)
            session.set(f"by-{who}", True)
            await session.save()
            if who == "earlier":
                first_saved.set()

        async with client(app_with(store, write)) as http:
            session_id = (await do(http, ["set", "colour", "none"], ["save"])).json()["id"]
            await asyncio.gather(
                http.get("/hold", params={"who": "earlier"}),
                http.get("/hold", params={"who": "later"}),
            )
        assert await stored_data(store, session_id) == {
            "colour": "later",
            "by-earlier": True,
            "by-later": True,
        }


async def test_r21_a_delete_and_an_expiry_change_merge_like_a_set(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:
        loaded = asyncio.Barrier(2)
        first_saved = asyncio.Event()

        async def write(session: Session, request: Request) -> None:
            await loaded.wait()
            if request.query_params["who"] == "deleter":
                session.delete("gone")
                await session.save()
                first_saved.set()
            else:
                await first_saved.wait()
                session.set_expiry(300)
                session.set("added", 1)
                await session.save()

        async with client(app_with(store, write)) as http:
            body = (await do(http, ["set", "gone", 1], ["set", "kept", 2], ["save"])).json()
            await asyncio.gather(
                http.get("/hold", params={"who": "deleter"}),
                http.get("/hold", params={"who": "extender"}),
            )
        session = await store.get_by_id(body["id"])
        assert session is not None
        assert dict(session.items()) == {"kept": 2, "added": 1}
        assert session.expiry.total_seconds() == 300


async def test_r21_a_value_changed_in_place_is_merged_as_a_change(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:
        loaded = asyncio.Barrier(2)
        first_saved = asyncio.Event()

        async def write(session: Session, request: Request) -> None:
            await loaded.wait()
            if request.query_params["who"] == "appender":
                session["cart"].append("pear")  # explicit save, changed in place
                await session.save()
                first_saved.set()
            else:
                await first_saved.wait()
                session.set("seen", True)
                await session.save()

        async with client(app_with(store, write)) as http:
            session_id = (await do(http, ["set", "cart", ["apple"]], ["save"])).json()["id"]
            await asyncio.gather(
                http.get("/hold", params={"who": "appender"}),
                http.get("/hold", params={"who": "other"}),
            )
        assert await stored_data(store, session_id) == {"cart": ["apple", "pear"], "seen": True}


async def test_r21_a_session_from_get_by_id_merges_too(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "a", 1], ["save"])).json()["id"]
        outside = await store.get_by_id(session_id)
        assert outside is not None
        await do(http, ["set", "b", 2], ["save"])  # a request saves meanwhile
        outside.set("c", 3)
        await outside.save()
        assert dict(outside.items()) == {"a": 1, "b": 2, "c": 3}
        assert await stored_data(store, session_id) == {"a": 1, "b": 2, "c": 3}


async def test_r9_regenerate_keeps_what_another_request_stored_meanwhile(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "cart", ["apple"]], ["save"])).json()["id"]
        login = await store.get_by_id(session_id)
        assert login is not None
        await do(http, ["set", "cart", ["apple", "pear"]], ["save"])  # another tab
        login.set("user", "ann")
        await login.regenerate()
        await login.save()
        assert login.id != session_id
        assert await stored_data(store, login.id) == {"cart": ["apple", "pear"], "user": "ann"}
        assert await raw_get(store, session_id) is None  # the old entry is gone
        assert await store.get_by_id(session_id) is None


# -- R24: no resurrection ----------------------------------------------------------------

ENDINGS = ["destroy", "regenerate", "reset", "store.delete"]


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_r24_a_request_holding_an_ended_session_cannot_bring_it_back(
    storage_backend: Backend, ending: str, auto_save: bool
) -> None:
    async with open_store(storage_backend) as store:
        slow_loaded = asyncio.Event()
        ended = asyncio.Event()

        async def slow(session: Session, request: Request) -> None:
            slow_loaded.set()
            await ended.wait()  # the user logs out while this request is still running
            session.set("cart", ["late"])
            if not auto_save:
                await session.save()

        async with client(app_with(store, slow, auto_save=auto_save)) as http:
            session_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
            slow_request = asyncio.ensure_future(
                http.get("/hold", headers=cookie_header(session_id))
            )
            await slow_loaded.wait()
            if ending == "store.delete":
                await store.delete(session_id)
            else:
                await do(http, [ending], headers=cookie_header(session_id))
            ended.set()
            response = await slow_request
        body = response.json()
        if not auto_save:  # (an auto-save runs after the handler built its answer)
            assert body["ended"] is True
            assert body["fresh"] is True
            assert body["id"] != session_id
            assert body["data"] == {}
        assert session_cookie(response) is None  # the log-out's cookie is not undone
        assert await raw_get(store, session_id) is None
        assert await store.get_by_id(session_id) is None
        assert await store.get_by_id(body["id"]) is None


async def test_r24_the_old_id_of_a_regenerate_is_never_written_back(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        holder = await store.get_by_id(session_id)
        assert holder is not None
        login = await store.get_by_id(session_id)
        assert login is not None
        await login.regenerate()
        await login.save()
        holder.set("n", 2)
        await holder.save()
        assert holder.ended
        assert await raw_get(store, session_id) is None
        old_cookie = await http.get("/read", headers=cookie_header(session_id))
        assert old_cookie.json()["fresh"] is True
        assert await stored_data(store, login.id) == {"n": 1}


async def test_r24_a_session_that_expired_while_held_is_not_saved(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, expiration=60) as (store, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        response = await do(
            http, ["advance", 61], ["set", "n", 2], ["save"], ["ended"],
            headers=cookie_header(session_id),
        )  # fmt: skip
        assert response.json()["log"] == [True]
        assert session_cookie(response) is None
        assert await store.get_by_id(session_id) is None
        assert await store.get_by_id(response.json()["id"]) is None


async def test_r24_an_ended_session_stores_and_sends_nothing_for_the_rest_of_the_request(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:
        loaded = asyncio.Event()
        logged_out = asyncio.Event()

        async def keeps_going(session: Session, request: Request) -> None:
            session.set("early", 1)
            await session.save()  # queues a cookie for the old id...
            loaded.set()
            await logged_out.wait()
            session.set("late", 1)
            await session.save()  # ...which this save, finding it ended, withdraws
            assert session.ended
            session.set("later", 1)
            await session.save()
            await session.regenerate()
            await session.destroy()

        async with client(app_with(store, keeps_going)) as http:
            session_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
            request = asyncio.ensure_future(http.get("/hold", headers=cookie_header(session_id)))
            await loaded.wait()
            await do(http, ["destroy"], headers=cookie_header(session_id))
            logged_out.set()
            response = await request
        assert session_cookie(response) is None
        assert response.json()["ended"] is True
        for stored_id in (session_id, response.json()["id"]):
            assert await store.get_by_id(stored_id) is None


async def test_r24_a_repeating_key_generator_never_overwrites_another_clients_session(
    storage_backend: Backend,
) -> None:
    ids = iter(["repeated-id", "repeated-id", "second-id"])
    async with open_store(storage_backend, key_generator=lambda: next(ids)) as store:
        app = make_app(store)
        async with client(app) as first, client(app) as second:
            mine = (await do(first, ["set", "owner", "first"], ["save"])).json()
            theirs = await do(second, ["set", "owner", "second"], ["save"])
        assert mine["id"] == "repeated-id"
        assert theirs.json()["id"] == "second-id"
        cookie = session_cookie(theirs)
        assert cookie is not None
        assert cookie.value == "second-id"
        assert await stored_data(store, "repeated-id") == {"owner": "first"}
        assert await stored_data(store, "second-id") == {"owner": "second"}


async def test_r22_a_renewal_that_loses_to_another_save_is_simply_done(
    storage_backend: Backend,
) -> None:
    store, storage = counting_store(storage_backend, expiration=30)
    if not isinstance(storage, CountingStorage):
        pytest.skip(f"{storage_backend.label} has no compare-and-set")
    async with store, client(make_app(store, auto_save=True)) as http:
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        clock_of(store).advance(20)  # less than half left: a read renews it

        async def another_request_saves() -> None:
            other = await store.get_by_id(session_id)
            assert other is not None
            other.set("n", 2)
            await other.save()  # and so renews it, before the read's renewal lands

        storage.after_next_get = another_request_saves
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header(session_id))
        assert response.status_code == 200
        assert response.json()["data"] == {"n": 1}  # what the read loaded
        assert session_cookie(response) is None  # the renewal lost: nothing to renew
        assert [op for op, *_ in storage.calls].count("cas") == 2  # the other save, the renewal
        assert await stored_data(store, session_id) == {"n": 2}


# -- storage without compare-and-set -----------------------------------------------------


async def test_r21_without_compare_and_set_the_last_save_wins_whole_and_a_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = CountingPlainStorage()  # the five hooks only
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        store = Store(Config(storage=plain))
    (warning,) = [r for r in caplog.records if r.name == "sessionware"]
    assert "storage_compare_and_set" in warning.getMessage()
    async with store:
        loaded = asyncio.Barrier(2)
        first_saved = asyncio.Event()

        async def write(session: Session, request: Request) -> None:
            await loaded.wait()
            key = request.query_params["key"]
            if key == "second":
                await first_saved.wait()
            session.set(key, True)
            await session.save()
            if key == "first":
                first_saved.set()

        async with client(app_with(store, write)) as http:
            session_id = (await do(http, ["set", "base", 1], ["save"])).json()["id"]
            await asyncio.gather(
                http.get("/hold", params={"key": "first"}),
                http.get("/hold", params={"key": "second"}),
            )
        assert await stored_data(store, session_id) == {"base": 1, "second": True}
        assert plain.count("set") == 3


class AlwaysOvertaken(CountingPlainStorage):
    """A storage on which another client always writes first: every compare-and-set of an
    existing record loses, while the record keeps reading back well-formed."""

    @sessionware.hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        self._record("cas", key, expires_in)
        if expected is not None:
            return False
        await self.storage_set(key=key, value=value, expires_in=expires_in)
        return True


async def test_r21_a_save_that_always_loses_gives_up_with_a_storage_error() -> None:
    storage = AlwaysOvertaken()
    async with Store(Config(storage=storage)) as store, client(make_app(store)) as http:
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        session = await store.get_by_id(session_id)
        assert session is not None
        session.set("n", 2)
        with pytest.raises(StorageError, match="another save changed it first") as caught:
            await session.save()
    assert caught.value.backend == "AlwaysOvertaken"
    assert storage.count("cas") > 10  # it retried, with backoff, for its whole budget
