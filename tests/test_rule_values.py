"""R14-R17: what a session holds, how it is stored, and what storage can never make us do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import os
import pickle
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest
from sessionware import Store
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.apps import (
    client,
    clock_of,
    cookie_header,
    do,
    make_app,
    open_store,
    plain_record,
    raw_get,
    raw_put,
    serve,
    session_cookie,
    shared_plugin,
    storage_key,
)
from tests.support.backends import Backend
from tests.test_codec import EVERY_TYPE, assert_identical

# Every test runs once per app flavour: ASGI, plain WSGI and Flask (S11).
pytestmark = pytest.mark.usefixtures("app_flavour")

# -- R14 --------------------------------------------------------------------------------


async def test_r14_keys_keep_insertion_order_through_storage(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (_, http):
        first = await do(http, ["set", "c", 1], ["set", "a", 2], ["set", "b", 3], ["save"])
        assert first.json()["keys"] == ["c", "a", "b"]
        assert (await http.get("/read")).json()["keys"] == ["c", "a", "b"]
        await do(http, ["delete", "a"], ["set", "a", 4], ["set", "c", 5], ["save"])
        body = (await http.get("/read")).json()
    assert body["keys"] == ["c", "b", "a"]
    assert body["data"] == {"c": 5, "b": 3, "a": 4}


async def test_r14_keys_that_are_not_str_are_a_type_error(storage_backend: Backend) -> None:
    async with open_store(storage_backend) as store:

        async def bad_keys(request: Request) -> JSONResponse:
            session = await store.get(request)
            errors = []
            for key in (1, b"bytes", None, ("t",)):
                for action, args in ((session.set, (key, "x")), (session.delete, (key,))):
                    try:
                        action(*args)
                    except TypeError as exc:
                        errors.append(str(exc))
            return JSONResponse({"errors": errors, "keys": session.keys()})

        async with client(make_app(store, routes=[Route("/bad", bad_keys)])) as http:
            body = (await http.get("/bad")).json()
    assert len(body["errors"]) == 8
    assert all("str" in error for error in body["errors"])
    assert body["keys"] == []


# -- R15 --------------------------------------------------------------------------------


@dataclasses.dataclass
class Cart:
    items: list[str]
    total: Decimal


class Plan(enum.Enum):
    FREE = "free"
    PRO = "pro"


class Span(NamedTuple):
    start: dt.date
    end: dt.date


class Token:
    """Neither a dataclass, an enum nor a named tuple: registered with an encode/decode pair."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)


def register_all(store: Store) -> None:
    store.register_type(Cart)
    store.register_type(Plan)
    store.register_type(Span)
    store.register_type(Token, encode=lambda t: t.raw, decode=Token)


def value_app(store: Store, values: dict[str, Any], loaded: list[dict[str, Any]]) -> Any:
    """``/put`` saves `values` into the session; ``/take`` appends what was loaded."""

    async def put(request: Request) -> Response:
        session = await store.get(request)
        for key, value in values.items():
            session.set(key, value)
        await session.save()
        return PlainTextResponse(session.id)

    async def take(request: Request) -> Response:
        session = await store.get(request)
        loaded.append({key: session[key] for key in session})
        return PlainTextResponse(session.id)

    return make_app(store, routes=[Route("/put", put), Route("/take", take)])


NESTED: dict[str, Any] = {
    "everything-in-a-list": list(EVERY_TYPE.values()),
    "everything-in-a-tuple": tuple(v for v in EVERY_TYPE.values() if not isinstance(v, dict)),
    "in-a-map": {"inner": dict(EVERY_TYPE), 7: {frozenset({1, 2}): (dt.date(2000, 1, 1),)}},
    "set-of-mixed": {1, "1", 1.5, b"1", (1,), uuid.UUID(int=5), Decimal("1.25")},
}


@pytest.mark.parametrize("values", [EVERY_TYPE, NESTED], ids=["every-type", "nested"])
async def test_r15_every_type_round_trips_through_storage(
    storage_backend: Backend, values: dict[str, Any]
) -> None:
    loaded: list[dict[str, Any]] = []
    async with open_store(storage_backend) as store:
        async with client(value_app(store, values, loaded)) as http:
            session_id = (await http.get("/put")).text
            assert (await http.get("/take")).text == session_id
        stored = await store.get_by_id(session_id)
    assert_identical(loaded[0], values, "session")
    assert stored is not None
    assert_identical({key: stored[key] for key in stored}, values, "get_by_id")


async def test_r15_registered_types_round_trip_through_storage(storage_backend: Backend) -> None:
    values = {
        "cart": Cart(["apple", "pear"], Decimal("3.50")),
        "plan": Plan.PRO,
        "span": Span(dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
        "token": Token(b"\x00secret"),
        "mixed": [
            Plan.FREE,
            {Token(b"k"): Cart([], Decimal(0))},
            (Span(dt.date.min, dt.date.max),),
        ],
    }
    loaded: list[dict[str, Any]] = []
    async with open_store(storage_backend) as store:
        register_all(store)
        async with client(value_app(store, values, loaded)) as http:
            await http.get("/put")
            await http.get("/take")
    assert_identical(loaded[0], values, "session")
    assert loaded[0]["plan"] is Plan.PRO


class NotRegistered:
    pass


@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_r15_unregistered_type_fails_at_save_naming_the_type(
    storage_backend: Backend, auto_save: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_store(storage_backend) as store:

        async def holds(request: Request) -> Response:
            session = await store.get(request)
            session.set("thing", [1, NotRegistered()])  # set() accepts it...
            if not auto_save:
                await session.save()  # ...save() refuses it
            return PlainTextResponse("saved?")

        app = make_app(store, auto_save=auto_save, routes=[Route("/hold", holds)])
        async with client(app) as http:
            if auto_save:
                with caplog.at_level(logging.ERROR, logger="sessionware"):
                    response = await http.get("/hold")
                assert response.status_code == 500
                assert "NotRegistered" not in response.text
                (record,) = [r for r in caplog.records if r.name == "sessionware"]
                error = record.exc_info[1] if record.exc_info else None
            else:
                with pytest.raises(TypeError) as caught:
                    await http.get("/hold")
                error = caught.value
            assert "set-cookie" not in (response.headers if auto_save else {})
    assert isinstance(error, TypeError)
    assert "NotRegistered" in str(error)
    assert "register_type" in str(error)


# -- R16 --------------------------------------------------------------------------------

RAN: list[str] = []


def _record_run(marker: str) -> None:
    RAN.append(marker)


class _Exploit:
    """Unpickling this calls `_record_run`; unpickling a second one would make a directory."""

    def __init__(self, reduce: tuple[Any, ...]) -> None:
        self._reduce = reduce

    def __reduce__(self) -> tuple[Any, ...]:
        return self._reduce


async def test_r16_stored_pickles_are_never_unpickled(
    storage_backend: Backend, tmp_path: Path
) -> None:
    victim_dir = tmp_path / "pwned"
    payloads = {
        "pickle-call": pickle.dumps(_Exploit((_record_run, ("unpickled",)))),
        "pickle-mkdir": pickle.dumps(_Exploit((os.mkdir, (str(victim_dir),)))),
        "pickle-in-record": plain_record(
            [0.0, 60.0, 9e9, {"v": pickle.dumps(_Exploit((_record_run, ("inner",))))}]
        ),
    }
    # Prove the payloads are real: unpickling one here does run code.
    pickle.loads(pickle.dumps(_Exploit((_record_run, ("control",)))))
    assert RAN == ["control"]
    RAN.clear()
    async with serve(storage_backend) as (store, http):
        for key, raw in payloads.items():
            await raw_put(store, key, raw)
            response = await http.get("/read", headers=cookie_header(key))
            assert response.status_code == 200
            body = response.json()
            if key == "pickle-in-record":  # a record of ours whose value is just bytes
                assert body["id"] == key
                assert body["data"]["v"].startswith("b'")
            else:
                assert body["fresh"] is True
                assert body["id"] != key
    assert RAN == []
    assert not victim_dir.exists()


async def test_r16_an_unregistered_class_name_in_storage_is_never_imported(
    storage_backend: Backend,
) -> None:
    hostile = msgspec.msgpack.encode(
        [1, 0.0, 60.0, 9e9, {"v": msgspec.msgpack.Ext(12, msgspec.msgpack.encode(
            ["tests.test_rule_values._record_run", "imported"]
        ))}]
    )  # fmt: skip
    async with serve(storage_backend) as (store, http):
        await raw_put(store, "hostile", hostile)
        response = await http.get("/read", headers=cookie_header("hostile"))
        assert response.status_code == 200
        assert response.json()["fresh"] is True
    assert RAN == []


# -- R17 --------------------------------------------------------------------------------

UNDECODABLE = [
    pytest.param(b"\xc1garbage", id="garbage"),
    pytest.param(b"", id="empty"),
    pytest.param(os.urandom(64), id="random"),
    pytest.param(b'{"user": "json"}', id="json"),
    pytest.param(b"\x07" + msgspec.msgpack.encode([0.0, 60.0, 9e9, {}]), id="unknown-marker"),
    pytest.param(plain_record([0.0, 60.0, 9e9, {}])[:-2], id="truncated"),
    pytest.param(plain_record([0.0, float("nan"), 9e9, {}]), id="nan-expiry"),
    pytest.param(
        plain_record([0.0, 60.0, 9e9, {"v": msgspec.msgpack.Ext(77, b"")}]), id="unknown-ext"
    ),
]


@pytest.mark.parametrize("raw", UNDECODABLE)
@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_r17_undecodable_data_is_logged_deleted_and_treated_as_unknown(
    storage_backend: Backend, raw: bytes, auto_save: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(storage_backend, auto_save=auto_save) as (store, http):
        await raw_put(store, "corrupt", raw)
        with caplog.at_level(logging.WARNING, logger="sessionware"):
            response = await do(
                http,
                ["set", "n", 1],
                ["set_expiry", 30],
                ["save"],
                headers=cookie_header("corrupt"),
            )
        body = response.json()
        assert body["id"] != "corrupt"
        assert body["fresh"] is True
        assert body["data"] == {"n": 1}
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.value == body["id"]
        assert await raw_get(store, "corrupt") is None
        warnings = [r for r in caplog.records if r.name == "sessionware"]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        assert "decoded" in warnings[0].getMessage()
        assert storage_key("corrupt")[:8] in warnings[0].getMessage()  # never the id itself
        assert "corrupt" not in warnings[0].getMessage()


async def test_r17_a_record_of_another_stores_types_is_treated_as_unknown(
    storage_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        serve(storage_backend) as (store, http),
        open_store(storage_backend, storage=shared_plugin(store), clock=clock_of(store)) as other,
    ):
        register_all(other)
        async with client(value_app(other, {"plan": Plan.PRO}, [])) as other_http:
            foreign = (await other_http.get("/put")).text
        with caplog.at_level(logging.WARNING, logger="sessionware"):
            body = (await http.get("/read", headers=cookie_header(foreign))).json()
        assert body["fresh"] is True
        assert await raw_get(store, foreign) is None
        assert any("not registered" in r.getMessage() for r in caplog.records)


async def test_r17_a_good_record_next_to_a_bad_one_is_untouched(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        good = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        await raw_put(store, "bad", b"\xc1")
        assert (await http.get("/read", headers=cookie_header("bad"))).json()["fresh"] is True
        body = (await http.get("/read", headers=cookie_header(good))).json()
        assert body["id"] == good
        assert body["data"] == {"n": 1}
