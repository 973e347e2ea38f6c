"""R1-R5: which id a request ends up with, and when storage is asked about it."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.apps import (
    client,
    clock_of,
    cookie_header,
    counting_store,
    do,
    make_app,
    open_store,
    raw_http,
    serve,
    serve_counting,
    session_cookie,
    storage_key,
)
from tests.support.backends import Backend

# Every test runs once per app flavour: ASGI, plain WSGI and Flask (S11).
pytestmark = pytest.mark.usefixtures("app_flavour")

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# R4: everything that is not 1-128 characters of A-Z a-z 0-9 - _ . ~ + / =
INVALID_IDS = [
    pytest.param("", id="empty"),
    pytest.param("a" * 129, id="129-chars"),
    pytest.param("abc def", id="space"),
    pytest.param("abc;def", id="semicolon"),
    pytest.param('"', id="lone-quote"),
    pytest.param("abc'def", id="single-quote"),
    pytest.param("ab\"c'd", id="quotes-inside"),
    pytest.param("sessión", id="unicode"),
    pytest.param("abc\x00def", id="nul"),
    pytest.param("abc%20def", id="percent"),
    pytest.param("abc,def", id="comma"),
    pytest.param("abc\\def", id="backslash"),
    pytest.param("abc\tdef", id="tab"),
    pytest.param("abc\ndef", id="newline"),
    pytest.param("abc<def>", id="angle-brackets"),
]


async def test_r1_no_id_gives_a_fresh_empty_session(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (_, http):
        response = await http.get("/read")
    body = response.json()
    assert body["fresh"] is True
    assert UUID4.fullmatch(body["id"])
    assert body["data"] == {}
    assert session_cookie(response) is None  # nothing saved, nothing sent


async def test_r1_no_id_costs_no_storage_call(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend) as (_, storage, http):
        first = (await http.get("/read")).json()
        second = (await http.get("/read")).json()
    assert storage.calls == [("close",)]
    assert first["fresh"]
    assert second["fresh"]
    assert first["id"] != second["id"]


async def test_r1_new_ids_come_from_the_key_generator(storage_backend: Backend) -> None:
    counter = itertools.count(1)
    async with serve(storage_backend, key_generator=lambda: f"generated-{next(counter)}") as (
        _,
        http,
    ):
        assert (await http.get("/read")).json()["id"] == "generated-1"
        assert (await http.get("/read")).json()["id"] == "generated-2"


async def test_r1_a_fresh_session_stays_fresh_after_saving_in_the_same_request(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (_, http):
        body = (await do(http, ["set", "n", 1], ["save"], ["state"], ["save"])).json()
        assert body["log"][0]["fresh"] is True
        assert body["fresh"] is True
        assert (await http.get("/read")).json()["fresh"] is False  # the next request loads it


async def test_r2_known_id_loads_its_data_under_the_same_id(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (_, http):
        saved = (await do(http, ["set", "user", "ann"], ["save"])).json()
        loaded = (await http.get("/read")).json()
    assert loaded["id"] == saved["id"]
    assert loaded["fresh"] is False
    assert loaded["data"] == {"user": "ann"}


async def test_r2_a_loaded_session_costs_one_storage_get(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend) as (_, storage, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        storage.calls.clear()
        body = (await http.get("/read", headers=cookie_header(session_id))).json()
        assert storage.calls == [("get", storage_key(session_id))]
    assert body["data"] == {"n": 1}


async def test_r3_unknown_id_is_never_adopted(storage_backend: Backend) -> None:
    planted = "attacker-chosen-id"
    async with serve(storage_backend) as (store, http):
        response = await do(
            http, ["set", "user", "victim"], ["save"], headers=cookie_header(planted)
        )
        body = response.json()
        assert body["id"] != planted
        assert body["fresh"] is True
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.value == body["id"]
        assert await store.get_by_id(planted) is None
        stored = await store.get_by_id(body["id"])
        assert stored is not None
        assert stored.get("user") == "victim"


async def test_r3_expired_id_is_never_adopted(storage_backend: Backend) -> None:
    async with serve(storage_backend, expiration=60) as (store, http):
        old_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        clock_of(store).advance(60)
        body = (await http.get("/read", headers=cookie_header(old_id))).json()
        assert body["id"] != old_id
        assert body["fresh"] is True
        assert body["data"] == {}
        assert await store.get_by_id(old_id) is None


@pytest.mark.parametrize("bad_id", INVALID_IDS)
async def test_r4_invalid_id_is_absent_and_never_reaches_storage(
    storage_backend: Backend, bad_id: str
) -> None:
    store, storage = counting_store(storage_backend, key_lookup="header:X-Session-ID")
    async with store:
        # Raw ASGI headers, so NUL, newlines and non-ASCII reach the app unchanged.
        status, _, body = await raw_http(
            make_app(store), headers=[(b"x-session-id", bad_id.encode("utf-8"))]
        )
        assert status == 200
        assert json.loads(body)["fresh"] is True
        if bad_id:
            assert await store.get_by_id(bad_id) is None
            await store.delete(bad_id)
        assert storage.calls == []


@pytest.mark.parametrize(
    "bad_id", ["a" * 129, "abc def", "abc,def", "abc%20def", "sessión", '"abc']
)
async def test_r4_invalid_id_in_a_cookie_is_absent(storage_backend: Backend, bad_id: str) -> None:
    async with serve_counting(storage_backend) as (_, storage, http):
        response = await http.get("/read", headers={"cookie": f"session_id={bad_id}".encode()})
        assert response.status_code == 200
        assert response.json()["fresh"] is True
        assert storage.calls == []


@pytest.mark.parametrize(
    "good_id",
    [
        pytest.param("A", id="one-char"),
        pytest.param("x" * 128, id="128-chars"),
        pytest.param("AZaz09-_.~+/=", id="whole-alphabet"),
        pytest.param("aGVsbG8gd29ybGQ+/w==", id="base64"),
    ],
)
async def test_r4_every_valid_id_shape_is_used(storage_backend: Backend, good_id: str) -> None:
    async with serve(storage_backend, key_generator=lambda: good_id) as (_, http):
        saved = await do(http, ["set", "k", "v"], ["save"])
        cookie = session_cookie(saved)
        assert cookie is not None
        assert cookie.value == good_id
        body = (await http.get("/read", headers=cookie_header(good_id))).json()
    assert body == {**body, "id": good_id, "fresh": False, "data": {"k": "v"}}


@pytest.mark.parametrize("generated", ["", "has space", "x" * 129, "ünï", None, 42])
async def test_r4_key_generator_breaking_the_rule_is_a_value_error(
    storage_backend: Backend, generated: object
) -> None:
    async with serve(storage_backend, key_generator=lambda: generated) as (_, http):
        with pytest.raises(ValueError, match="key_generator"):
            await http.get("/read")


async def test_r5_get_twice_in_one_request_gives_the_same_session(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:

        async def twice(request: Request) -> JSONResponse:
            first = await store.get(request)
            first.set("marker", 1)
            second = await store.get(request)
            gathered = await asyncio.gather(*(store.get(request) for _ in range(5)))
            return JSONResponse(
                {
                    "same": first is second and all(s is first for s in gathered),
                    "fresh": first.fresh,
                    "id": first.id,
                }
            )

        app = make_app(store, routes=[Route("/twice", twice)])
        async with client(app) as http:
            fresh = (await http.get("/twice")).json()
            assert fresh["same"] is True
            assert fresh["fresh"] is True
            session_id = (await do(http, ["save"])).json()["id"]
            loaded = (await http.get("/twice", headers=cookie_header(session_id))).json()
            assert loaded == {"same": True, "fresh": False, "id": session_id}


async def test_r5_concurrent_gets_in_one_handler_share_one_session(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:

        async def gathered(request: Request) -> JSONResponse:
            sessions = await asyncio.gather(*(store.get(request) for _ in range(10)))
            return JSONResponse(
                {"ids": sorted({s.id for s in sessions}), "objects": len({id(s) for s in sessions})}
            )

        app = make_app(store, routes=[Route("/gathered", gathered)])
        async with client(app) as http:
            fresh = (await http.get("/gathered")).json()
            assert fresh["objects"] == 1
            assert uuid.UUID(fresh["ids"][0])
            session_id = (await do(http, ["set", "a", 1], ["save"])).json()["id"]
            body = (await http.get("/gathered", headers=cookie_header(session_id))).json()
            assert body == {"ids": [session_id], "objects": 1}
