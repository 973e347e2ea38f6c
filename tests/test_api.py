"""The S3 surface besides the rules: how a store finds its request, and its other methods."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
import sessionware
from sessionware import Config, Session, SessionMiddleware, Source, Store
from sessionware.testing import FakeClock
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.apps import (
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
    shared_plugin,
    state,
)
from tests.support.backends import Backend


def test_the_public_names_of_s3() -> None:
    assert set(sessionware.__all__) >= {
        "Config",
        "Store",
        "Session",
        "SessionMiddleware",
        "Source",
        "SessionwareError",
        "StorageError",
        "StorageNotFoundError",
        "StorageLoadError",
    }
    for name in sessionware.__all__:
        assert getattr(sessionware, name) is not None


def test_source_is_a_str_enum_with_the_three_sources() -> None:
    assert issubclass(Source, StrEnum)
    assert Source.COOKIE == "cookie"
    assert Source.HEADER == "header"
    assert Source.URL_QUERY == "query"
    assert [s.value for s in Source] == ["cookie", "header", "query"]
    assert Source("query") is Source.URL_QUERY


# -- finding the request ----------------------------------------------------------------


async def test_store_get_without_the_middleware_says_how_to_add_it() -> None:
    async with Store() as store:

        async def handler(request: Request) -> Response:
            await store.get(request)
            return PlainTextResponse("unreachable")

        bare = Starlette(routes=[Route("/", handler)])
        async with client(bare) as http:
            with pytest.raises(RuntimeError, match=r"SessionMiddleware\(app, store=store\)"):
                await http.get("/")


async def test_the_middleware_of_another_store_does_not_count() -> None:
    async with Store() as store, Store() as other:

        async def handler(request: Request) -> Response:
            await other.get(request)
            return PlainTextResponse("unreachable")

        async with client(make_app(store, routes=[Route("/other", handler)])) as http:
            with pytest.raises(RuntimeError, match="SessionMiddleware"):
                await http.get("/other")


class _HasScope:
    def __init__(self, scope: Any) -> None:
        self.scope = scope


async def test_store_get_takes_a_request_an_object_with_scope_or_the_scope(
    storage_backend: Backend,
) -> None:
    async with open_store(storage_backend) as store:

        async def forms(request: Request) -> JSONResponse:
            by_request = await store.get(request)
            by_object = await store.get(_HasScope(request.scope))
            by_scope = await store.get(request.scope)
            same = by_request is by_object is by_scope
            return JSONResponse({"same": same, "keys": by_scope.keys()})

        async with client(make_app(store, routes=[Route("/forms", forms)])) as http:
            session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
            body = (await http.get("/forms", headers=cookie_header(session_id))).json()
    assert body == {"same": True, "keys": ["n"]}


@pytest.mark.parametrize("thing", [None, "request", 42, {"no": "type"}, _HasScope(None)])
async def test_store_get_refuses_what_is_not_a_request(thing: Any) -> None:
    async with Store() as store:
        with pytest.raises(TypeError, match="scope"):
            await store.get(thing)


# -- other ASGI scopes ------------------------------------------------------------------


async def websocket_call(app: Any, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


async def test_a_websocket_can_read_its_session(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        sent = await websocket_call(
            make_app(store), [(b"cookie", f"session_id={session_id}".encode())]
        )
        fresh = await websocket_call(make_app(store), [])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    body = json.loads(sent[1]["text"])
    assert body["id"] == session_id
    assert body["fresh"] is False
    assert body["data"] == {"user": "ann"}
    assert json.loads(fresh[1]["text"])["fresh"] is True


async def test_lifespan_passes_through() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    storage = CountingStorage()
    async with Store(Config(storage=storage)) as store:
        scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await SessionMiddleware(app, store=store)(scope, receive, send)
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not any(key.startswith("sessionware") for key in scope)
    assert storage.calls == [("close",)]


# -- get_by_id and delete ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["get_by_id", "delete"])
async def test_an_empty_id_is_a_value_error_and_a_non_str_a_type_error(
    storage_backend: Backend, method: str
) -> None:
    store, storage = counting_store(storage_backend)
    async with store:
        with pytest.raises(ValueError, match=method):
            await getattr(store, method)("")
        for wrong in (None, 42, b"id"):
            with pytest.raises(TypeError, match=method):
                await getattr(store, method)(wrong)
        assert storage.calls == []


async def test_an_invalid_id_is_no_storage_call_and_no_error(storage_backend: Backend) -> None:
    store, storage = counting_store(storage_backend)
    async with store:
        for bad in ("has space", "x" * 129, "a;b", "\x00", "é"):
            assert await store.get_by_id(bad) is None
            await store.delete(bad)
        assert storage.calls == []


async def test_get_by_id_of_unknown_expired_and_absolutely_expired_ids(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, expiration=200) as (before, http):
        assert await before.get_by_id("never-stored") is None

        async def new_session(*actions: list[object]) -> str:
            http.cookies.clear()
            session_id: str = (await do(http, *actions, ["save"])).json()["id"]
            return session_id

        too_old = await new_session(["set", "n", 1])
        clock_of(before).advance(50)
        expired = await new_session(["set", "n", 2], ["set_expiry", 10])
        alive = await new_session(["set", "n", 3])
        clock_of(before).advance(60)
        async with open_store(
            storage_backend,
            storage=shared_plugin(before),
            clock=clock_of(before),
            expiration=60,
            absolute_timeout=100,
        ) as store:
            assert await store.get_by_id(expired) is None
            assert await store.get_by_id(too_old) is None  # 110 s old
            assert await raw_get(store, too_old) is None  # deleted
            session = await store.get_by_id(alive)
            assert session is not None
            assert (session.id, session.fresh, session.get("n")) == (alive, False, 3)


async def test_a_session_from_get_by_id_can_be_changed_and_saved_outside_a_request(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "role", "user"], ["save"])).json()["id"]
        session = await store.get_by_id(session_id)
        assert session is not None
        session.set("role", "admin")
        session.set_expiry(300)
        await session.save()
        body = (await http.get("/read")).json()
        assert body["data"] == {"role": "admin"}
        assert body["expiry"] == 300.0
        again = await store.get_by_id(session_id)
        assert again is not None
        await again.destroy()
        assert (await http.get("/read")).json()["fresh"] is True


async def test_store_delete_ends_one_session(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        async with client(make_app(store)) as other:
            kept = (await do(other, ["set", "n", 2], ["save"])).json()["id"]
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        await store.delete(session_id)
        await store.delete(session_id)  # already gone: not an error
        await store.delete("never-existed")
        assert (await http.get("/read")).json()["fresh"] is True
        assert await store.get_by_id(kept) is not None


async def test_store_reset_ends_every_session(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        ids = [(await do(http, ["set", "n", n], ["save"])).json()["id"] for n in range(3)]
        await store.reset()
        assert [await store.get_by_id(i) for i in ids] == [None, None, None]


# -- closing ----------------------------------------------------------------------------


async def test_async_with_store_closes_its_storage() -> None:
    storage = CountingStorage()
    async with Store(Config(storage=storage)) as store:
        assert isinstance(store, Store)
    assert storage.calls == [("close",)]


async def test_the_default_store_works_and_closes() -> None:
    async with Store() as store, client(make_app(store)) as http:
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        assert (await http.get("/read")).json()["id"] == session_id
    assert "memory" in repr(store)


# -- the Session object -----------------------------------------------------------------


async def test_session_is_a_mapping_of_str_keys(storage_backend: Backend) -> None:
    async with open_store(storage_backend) as store:
        checks: dict[str, Any] = {}

        async def mapping(request: Request) -> JSONResponse:
            session: Session = await store.get(request)
            session["a"] = 1
            session["b"] = [2]
            checks["getitem"] = session["a"]
            checks["contains"] = ["a" in session, "z" in session, 1 in session]
            checks["len"] = len(session)
            checks["iter"] = list(session)
            checks["keys"] = session.keys()
            checks["get"] = [session.get("z"), session.get("z", "dflt"), session.get("a", 9)]
            for key in session:  # iterating a snapshot: deleting inside the loop is safe
                del session[key]
            checks["emptied"] = len(session)
            for missing in ("getitem", "delitem"):
                try:
                    if missing == "getitem":
                        session["nope"]
                    else:
                        del session["nope"]
                except KeyError:
                    checks[f"{missing}-keyerror"] = True
            session.delete("nope")  # delete() of a missing key is quiet
            return JSONResponse(state(session))

        async with client(make_app(store, routes=[Route("/mapping", mapping)])) as http:
            await http.get("/mapping")
    assert checks == {
        "getitem": 1,
        "contains": [True, False, False],
        "len": 2,
        "iter": ["a", "b"],
        "keys": ["a", "b"],
        "get": [None, "dflt", 1],
        "emptied": 0,
        "getitem-keyerror": True,
        "delitem-keyerror": True,
    }


async def test_session_is_a_mutable_mapping_with_every_dict_method(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "keep", 1], ["set", "gone", 2], ["save"])).json()["id"]
        session = await store.get_by_id(session_id)
        assert session is not None
        assert isinstance(session, MutableMapping)
        assert sorted(session.items()) == [("gone", 2), ("keep", 1)]
        assert sorted(session.values()) == [1, 2]
        assert session.pop("gone") == 2
        assert session.pop("gone", "default") == "default"
        session.update({"a": 1}, b=2)
        assert session.setdefault("a", 99) == 1
        assert session.setdefault("c", 3) == 3
        assert session.keys() == ["keep", "a", "b", "c"]  # a list, in insertion order (R14)
        assert session == {"keep": 1, "a": 1, "b": 2, "c": 3}
        await session.save()
        stored = await store.get_by_id(session_id)
        assert stored is not None
        assert dict(stored.items()) == {"keep": 1, "a": 1, "b": 2, "c": 3}
        stored.clear()  # every key deleted, each a change; not reset(): the id stays
        await stored.save()
        emptied = await store.get_by_id(session_id)
        assert emptied is not None
        assert (emptied.id, len(emptied)) == (session_id, 0)


async def test_session_created_is_when_it_began_in_utc(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        began = clock_of(store).now
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        clock_of(store).advance(30)
        await do(http, ["set", "n", 2], ["save"])
        session = await store.get_by_id(session_id)
        assert session is not None
        assert session.created == datetime.fromtimestamp(began, UTC)
        assert session.created.tzinfo is UTC


def test_config_is_frozen_so_a_store_never_disagrees_with_it() -> None:
    config = Config(expiration=60)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.expiration = timedelta(seconds=5)  # type: ignore[misc]
    assert Store(config).config is config


async def test_every_rule_about_time_reads_the_store_clock() -> None:
    clock = FakeClock(start=1_000_000.0)
    async with Store(Config(expiration=60), clock=clock) as store, client(make_app(store)) as http:
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        session = await store.get_by_id(session_id)
        assert session is not None
        assert session.created.timestamp() == 1_000_000.0
        clock.advance(59.9)
        assert await store.get_by_id(session_id) is not None
        clock.advance(0.1)
        assert await store.get_by_id(session_id) is None


async def test_session_repr_shows_keys_but_never_values() -> None:
    async with Store() as store:
        seen: list[str] = []

        async def show(request: Request) -> Response:
            session = await store.get(request)
            session.set("password", "hunter2")
            seen.append(repr(session))
            return PlainTextResponse("ok")

        async with client(make_app(store, routes=[Route("/show", show)])) as http:
            await http.get("/show")
    assert "password" in seen[0]
    assert "hunter2" not in seen[0]


async def test_register_type_refuses_what_it_cannot_store() -> None:
    class Plain:
        pass

    async with Store() as store:
        with pytest.raises(TypeError, match="encode= and decode="):
            store.register_type(Plain)
        with pytest.raises(TypeError, match="both"):
            store.register_type(Plain, encode=repr)
        with pytest.raises(TypeError, match="both"):
            store.register_type(Plain, decode=Plain)
