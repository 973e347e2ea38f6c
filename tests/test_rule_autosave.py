"""R18-R21: storage failures, auto-save's notion of a change, explicit saving, concurrency."""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

import pytest
from sessionware import SessionwareError, StorageError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.support.apps import (
    client,
    cookie_header,
    counting_store,
    do,
    make_app,
    open_store,
    serve,
    serve_counting,
    session_cookie,
    storage_key,
)
from tests.support.backends import Backend

# Every test runs once per app flavour: ASGI, plain WSGI and Flask (S11).
pytestmark = pytest.mark.usefixtures("app_flavour")

# -- R18 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "actions"),
    [
        ("get", []),
        ("set", [["set", "n", 1], ["save"]]),
        ("delete", [["destroy"]]),
    ],
)
async def test_r18_storage_failure_is_a_storage_error_naming_the_backend(
    storage_backend: Backend, operation: str, actions: list[list[Any]]
) -> None:
    down = ConnectionRefusedError(111, "Connection refused")
    async with serve_counting(storage_backend, fail_on={operation: down}) as (
        store,
        storage,
        http,
    ):
        if operation != "get":  # a stored session to load, destroy or save again
            storage.fail_on.pop(operation)
            session_id = (await do(http, ["set", "n", 0], ["save"])).json()["id"]
            storage.fail_on[operation] = down
        else:
            session_id = "some-session-id"
        with pytest.raises(StorageError) as caught:
            await http.post("/do", json=actions, headers=cookie_header(session_id))
    error = caught.value
    assert isinstance(error, SessionwareError)
    assert error.__cause__ is down
    assert error.backend == store.backend == type(storage).__name__  # an object: its class
    assert f"{type(storage).__name__} storage failed" in str(error)


async def test_r18_store_reset_and_close_failures_are_storage_errors(
    storage_backend: Backend,
) -> None:
    store, storage = counting_store(storage_backend)
    boom = TimeoutError("timed out")
    storage.fail_on["reset"] = boom
    with pytest.raises(StorageError) as caught:
        await store.reset()
    assert caught.value.__cause__ is boom
    storage.fail_on["close"] = boom
    with pytest.raises(StorageError):
        await store.close()
    storage.fail_on.clear()
    await store.close()


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "loaded"])
async def test_r18_a_failing_auto_save_answers_500_without_detail_and_logs(
    storage_backend: Backend, fresh: bool, caplog: pytest.LogCaptureFixture
) -> None:
    refused = PermissionError("READONLY You can't write against a read only replica")
    async with serve_counting(storage_backend, auto_save=True) as (_, storage, http):
        headers = {}
        if not fresh:
            session_id = (await do(http, ["set", "n", 0])).json()["id"]
            headers = cookie_header(session_id)
        storage.fail_on["set"] = refused
        with caplog.at_level(logging.ERROR, logger="sessionware"):
            response = await http.post("/do", json=[["set", "n", 1]], headers=headers)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "READONLY" not in response.text
    assert "set-cookie" not in response.headers
    (record,) = [r for r in caplog.records if r.name == "sessionware"]
    assert record.levelno == logging.ERROR
    assert "auto-save failed" in record.getMessage()  # the save failed, not the handler
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], StorageError)
    assert record.exc_info[1].__cause__ is refused


async def test_r18_a_storage_error_in_a_handler_propagates_like_any_exception(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (store, storage, http):
        storage.fail_on["get"] = ConnectionResetError("reset by peer")

        async def guarded(request: Request) -> Response:
            try:
                await store.get(request)
            except StorageError as exc:
                return PlainTextResponse(f"handled: {exc.backend}", status_code=503)
            return PlainTextResponse("unreachable")

        app = make_app(store, auto_save=True, routes=[Route("/guarded", guarded)])
        async with client(app) as guarded_http:
            response = await guarded_http.get("/guarded", headers=cookie_header("abc"))
        assert response.status_code == 503
        assert response.text == f"handled: {type(storage).__name__}"
        with pytest.raises(StorageError):
            await http.get("/read", headers=cookie_header("abc"))


async def test_r18_the_server_turns_an_unhandled_storage_error_into_a_500(
    storage_backend: Backend,
) -> None:
    store, storage = counting_store(storage_backend, fail_on={"get": OSError("disk on fire")})
    async with store, client(make_app(store), raise_app_exceptions=False) as http:
        response = await http.get("/read", headers=cookie_header("abc"))
        assert response.status_code == 500
        assert "disk on fire" not in response.text
        untouched = await http.get("/untouched", headers=cookie_header("abc"))
        assert untouched.status_code == 200  # no session asked: no storage
    assert storage.count("get") == 1


# -- R19 --------------------------------------------------------------------------------

CHANGES = [
    pytest.param([["set", "new", 1]], True, id="set-absent-key"),
    pytest.param([["set", "n", 2]], True, id="set-unequal-value"),
    pytest.param([["set", "n", 1.0]], True, id="set-equal-value-other-type"),
    pytest.param([["set", "n", True]], True, id="set-bool-for-int"),
    pytest.param([["set", "n", 1]], False, id="set-equal-value-same-type"),
    pytest.param([["set", "items", [1, 2]]], False, id="set-equal-list"),
    pytest.param([["append", "items", 3]], True, id="append-in-place-seen"),
    pytest.param([["append", "items", 3], ["pop", "items"]], False, id="changed-in-place-and-back"),
    pytest.param([["append", "items", 3], ["set_same", "items"]], True, id="append-then-set"),
    pytest.param([["set_same", "n"]], False, id="set-same-immutable-object"),
    pytest.param([["delete", "n"]], True, id="delete-present-key"),
    pytest.param([["delete", "missing"]], False, id="delete-absent-key"),
    pytest.param([["set_expiry", 120]], True, id="set-expiry"),
    pytest.param([["regenerate"]], True, id="regenerate"),
    pytest.param([["set", "n", 2], ["set", "n", 1]], True, id="changed-and-back"),
    pytest.param([["get", "n"], ["state"]], False, id="only-reads"),
]


@pytest.mark.parametrize(("actions", "saved"), CHANGES)
async def test_r19_auto_save_stores_only_a_changed_session(
    storage_backend: Backend, actions: list[list[Any]], saved: bool
) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (store, storage, http):
        first = await do(http, ["set", "n", 1], ["set", "items", [1, 2]])
        old_id = first.json()["id"]
        storage.calls.clear()
        response = await do(http, *actions, headers=cookie_header(old_id))
        new_id = response.json()["id"]
        writes = len(storage.writes())
        cookie = session_cookie(response)
        if saved:
            assert [key for key, _ in storage.writes()].count(storage_key(new_id)) == 1
            assert cookie is not None
            assert cookie.value == new_id
            stored = await store.get_by_id(new_id)
            assert stored is not None
            assert {k: stored[k] for k in stored} == response.json()["data"]
        else:
            assert writes == 0
            assert cookie is None
            assert storage.trace() == [("get", storage_key(old_id))]
            stored = await store.get_by_id(old_id)
            assert stored is not None
            assert {k: stored[k] for k in stored} == {"n": 1, "items": [1, 2]}


class Plan(enum.Enum):
    FREE = "free"
    PRO = "pro"


@pytest.mark.parametrize(
    ("value", "saved"),
    [
        (Plan.PRO, False),  # the same member again: an equal value, not an in-place change
        (Plan.FREE, True),
        ("pro", True),  # equal-looking value of another type
    ],
)
async def test_r19_setting_the_same_enum_member_is_no_change(
    storage_backend: Backend, value: Any, saved: bool
) -> None:
    store, storage = counting_store(storage_backend)
    store.register_type(Plan)

    async def choose(request: Request) -> Response:
        session = await store.get(request)
        session.set("plan", value if "again" in request.query_params else Plan.PRO)
        return PlainTextResponse(session.id)

    async with (
        store,
        client(make_app(store, auto_save=True, routes=[Route("/plan", choose)])) as http,
    ):
        session_id = (await http.get("/plan")).text
        storage.calls.clear()
        response = await http.get("/plan", params={"again": "1"}, headers=cookie_header(session_id))
        assert response.text == session_id
        assert len(storage.writes()) == (1 if saved else 0)
        assert (session_cookie(response) is not None) is saved


async def test_r19_a_handler_that_fails_saves_nothing(storage_backend: Backend) -> None:
    store, storage = counting_store(storage_backend)
    app = make_app(store, auto_save=True)
    async with store, client(app, raise_app_exceptions=False) as http:
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        storage.calls.clear()
        response = await http.post(
            "/do", json=[["set", "n", 2], ["raise", "half-way"]], headers=cookie_header(session_id)
        )
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        assert len(storage.writes()) == 0
        stored = await store.get_by_id(session_id)
        assert stored is not None
        assert stored["n"] == 1


async def test_r19_an_untouched_session_costs_nothing(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (_, storage, http):
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        storage.calls.clear()
        for headers in ({}, cookie_header(session_id), cookie_header("unknown-id")):
            response = await http.get("/untouched", headers=headers)
            assert response.text == "untouched"
            assert "set-cookie" not in response.headers
        assert storage.calls == []


async def test_r19_a_read_costs_exactly_one_storage_call(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (_, storage, http):
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header(session_id))
        assert response.json()["data"] == {"n": 1}
        assert "set-cookie" not in response.headers
        assert storage.trace() == [("get", storage_key(session_id))]


async def test_r19_a_fresh_session_that_ends_empty_is_not_stored(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (_, storage, http):
        for actions in (
            [["set", "n", 1], ["delete", "n"]],
            [["set_expiry", 60]],
            [["regenerate"]],
            [["state"]],
        ):
            response = await do(http, *actions)
            assert response.json()["fresh"] is True
            assert "set-cookie" not in response.headers
        assert storage.calls == []


async def test_r19_a_fresh_session_with_data_is_saved_without_save(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, auto_save=True) as (store, http):
        response = await do(http, ["set", "user", "ann"])
        session_id = response.json()["id"]
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.value == session_id
        assert cookie.max_age == 86400
        stored = await store.get_by_id(session_id)
        assert stored is not None
        assert stored.get("user") == "ann"


async def test_r19_a_loaded_session_emptied_by_delete_is_saved_empty(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, auto_save=True) as (store, http):
        session_id = (await do(http, ["set", "a", 1], ["set", "b", 2])).json()["id"]
        response = await do(http, ["delete", "a"], ["delete", "b"])
        assert response.json()["id"] == session_id
        assert session_cookie(response) is not None
        stored = await store.get_by_id(session_id)
        assert stored is not None
        assert len(stored) == 0


async def test_r19_destroy_is_never_undone(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (store, storage, http):
        session_id = (await do(http, ["set", "user", "ann"])).json()["id"]
        storage.calls.clear()
        response = await do(http, ["set", "user", "bob"], ["destroy"])
        assert len(storage.writes()) == 0
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 0
        assert await store.get_by_id(session_id) is None


async def test_r19_destroy_then_an_empty_change_stores_nothing(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (_, storage, http):
        await do(http, ["set", "user", "ann"])
        storage.calls.clear()
        for actions in (
            [["destroy"], ["set_expiry", 60]],
            [["destroy"], ["set", "a", 1], ["delete", "a"]],
        ):
            response = await do(http, ["set", "user", "ann"], ["save"], *actions)
            cookie = session_cookie(response)
            assert cookie is not None
            assert cookie.max_age == 0  # the destroy stands
        assert len(storage.writes()) == 2  # the two explicit saves only


async def test_r19_keys_set_after_destroy_go_under_a_new_id(storage_backend: Backend) -> None:
    async with serve(storage_backend, auto_save=True) as (store, http):
        old_id = (await do(http, ["set", "user", "ann"], ["set", "role", "admin"])).json()["id"]
        response = await do(http, ["destroy"], ["set", "flash", "bye"])
        cookie = session_cookie(response)
        assert cookie is not None
        new_id = cookie.value  # the new id is drawn by the save after the handler
        assert new_id != old_id
        assert cookie.max_age == 86400
        assert await store.get_by_id(old_id) is None
        stored = await store.get_by_id(new_id)
        assert stored is not None
        assert {k: stored[k] for k in stored} == {"flash": "bye"}


async def test_r19_reset_expires_the_cookie_and_stores_nothing_more(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True) as (store, storage, http):
        old_id = (await do(http, ["set", "user", "ann"])).json()["id"]
        storage.calls.clear()
        response = await do(http, ["reset"])
        assert len(storage.writes()) == 0
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 0
        assert await store.get_by_id(old_id) is None


# -- R20 --------------------------------------------------------------------------------


async def test_r20_without_auto_save_nothing_is_stored_unless_saved(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend) as (store, storage, http):
        response = await do(http, ["set", "user", "ann"], ["regenerate"], ["set_expiry", 9])
        assert "set-cookie" not in response.headers
        assert len(storage.writes()) == 0
        saved_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        storage.calls.clear()
        response = await do(http, ["set", "n", 2], ["delete", "n"], ["set", "m", 3])
        assert response.json()["id"] == saved_id
        assert "set-cookie" not in response.headers
        assert len(storage.writes()) == 0
        stored = await store.get_by_id(saved_id)
        assert stored is not None
        assert {k: stored[k] for k in stored} == {"n": 1}


# -- R21 --------------------------------------------------------------------------------


@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_r21_concurrent_sessions_never_see_each_others_data(
    storage_backend: Backend, auto_save: bool
) -> None:
    async with open_store(storage_backend) as store:
        app = make_app(store, auto_save=auto_save)
        save = [] if auto_save else [["save"]]

        async def visitor(number: int) -> list[Any]:
            async with client(app) as http:
                first = await do(http, ["get", "owner"], ["set", "owner", number], *save)
                seen = [first.json()["log"][0]]
                for step in range(3):
                    body = (
                        await do(http, ["get", "owner"], ["set", f"step{step}", number], *save)
                    ).json()
                    seen.append(body["log"][0])
                final = (await http.get("/read")).json()
                return [seen, final["data"]]

        results = await asyncio.gather(*(visitor(n) for n in range(40)))
    for number, (seen, data) in enumerate(results):
        assert seen == [None, number, number, number]
        assert data == {"owner": number, "step0": number, "step1": number, "step2": number}
