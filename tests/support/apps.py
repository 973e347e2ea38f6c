"""Shared pieces of the session rule suite: a test app, HTTP helpers and probe storages.

The app answers a small script of session actions posted as JSON, so a test reads as the
sequence of things a handler did: ``await do(client, ["set", "user", "ann"], ["save"])``.
Storages are reached only through the five hooks of the contract (`CountingStorage` wraps a
real backend's plugin object) or through the store's own facade, never a backend's internals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any
from weakref import WeakKeyDictionary

import httpx
import msgspec
import pytest
import sessionware
from sessionware import Config, Session, SessionMiddleware, Store
from sessionware.testing import FakeClock
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.support import flavours
from tests.support.backends import Backend

BASE_URL = "http://testserver"
COOKIE = "session_id"


# -- stores -----------------------------------------------------------------------------

# The plugin object and the clock each store of these tests was built on: raw storage is
# reached through the plugin's own hooks, and time moves only when a test moves it.
_PLUGINS: WeakKeyDictionary[Store, Any] = WeakKeyDictionary()
_CLOCKS: WeakKeyDictionary[Store, FakeClock] = WeakKeyDictionary()


def open_store(
    backend: Backend,
    *,
    storage: object | None = None,
    clock: FakeClock | None = None,
    **config: Any,
) -> Store:
    """A store on `backend`; use it as ``async with open_store(...) as store`` to close it."""
    plugin = real_plugin(backend) if storage is None else storage
    clock = clock or FakeClock()
    store = Store(Config(storage=plugin, **config), clock=clock)
    _PLUGINS[store] = plugin
    _CLOCKS[store] = clock
    flavours.opened(store)
    return store


def plugin_of(store: Store) -> Any:
    """The plugin object `store` was built on."""
    return _PLUGINS[store]


def shared_plugin(store: Store) -> object:
    """The plugin of `store`, for a second store on the same storage: closing that second
    store leaves the plugin open for the first (which closes it in the end)."""
    plugin = _PLUGINS[store]
    kind = Shared if _has_compare_and_set(plugin) else SharedPlain
    return kind(plugin)


class SharedPlain:
    """Every hook passed to another plugin object, except close."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @sessionware.hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        value: bytes | None = await self.inner.storage_get(key=key)
        return value

    @sessionware.hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        await self.inner.storage_set(key=key, value=value, expires_in=expires_in)

    @sessionware.hookimpl
    async def storage_delete(self, key: str) -> None:
        await self.inner.storage_delete(key=key)

    @sessionware.hookimpl
    async def storage_reset(self) -> None:
        await self.inner.storage_reset()

    @sessionware.hookimpl
    async def storage_close(self) -> None:
        """The plugin belongs to the first store."""


class Shared(SharedPlain):
    @sessionware.hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        stored: bool = await self.inner.storage_compare_and_set(
            key=key, expected=expected, value=value, expires_in=expires_in
        )
        return stored


def clock_of(store: Store) -> FakeClock:
    """The fake clock `store` reads: advance it to age its sessions."""
    return _CLOCKS[store]


def real_plugin(backend: Backend) -> object:
    """The backend's own plugin object, built by its entry point as a `Store` would."""
    (entry_point,) = entry_points(group="sessionware.storage", name=backend.storage)
    return entry_point.load()(**backend.options)


def counting_store(
    backend: Backend, *, fail_on: Mapping[str, Exception] | None = None, **config: Any
) -> tuple[Store, CountingStorage]:
    """A store whose every storage call is recorded on its way to the real `backend`."""
    inner = real_plugin(backend)
    kind = CountingStorage if _has_compare_and_set(inner) else CountingPlainStorage
    storage = kind(inner, fail_on=fail_on)
    return open_store(backend, storage=storage, **config), storage


def _has_compare_and_set(plugin: object) -> bool:
    return callable(getattr(plugin, "storage_compare_and_set", None))


class CountingPlainStorage:
    """A storage plugin that records each call and passes it on (or keeps a dict itself).

    `fail_on` maps an operation ("get", "set", "cas", "delete", "reset", "close") to the
    exception that operation raises, to play a storage that is down or refuses writes.
    """

    def __init__(
        self, inner: object | None = None, *, fail_on: Mapping[str, Exception] | None = None
    ) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", None) or "counting"
        self.fail_on = dict(fail_on or {})
        self.calls: list[tuple[Any, ...]] = []
        self._entries: dict[str, tuple[bytes, float | None]] = {}
        # Run once, after the next get has its answer: another client acting in between.
        self.after_next_get: Callable[[], Awaitable[None]] | None = None

    def count(self, operation: str | None = None) -> int:
        return sum(1 for call in self.calls if operation is None or call[0] == operation)

    def keys_called(self) -> list[str]:
        return [call[1] for call in self.calls if len(call) > 1]

    def writes(self) -> list[tuple[str, float | None]]:
        """Every write, by `storage_set` or compare-and-set, as (key, expires_in)."""
        return [(call[1], call[2]) for call in self.calls if call[0] in ("set", "cas")]

    def trace(self) -> list[tuple[Any, ...]]:
        """The calls, with either kind of write shown as "write"."""
        return [("write", *call[1:]) if call[0] in ("set", "cas") else call for call in self.calls]

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        failure = self.fail_on.get(call[0])
        if failure is None and call[0] == "cas":  # a storage that refuses writes refuses both
            failure = self.fail_on.get("set")
        if failure is not None:
            raise failure

    @sessionware.hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        self._record("get", key)
        value = await self._get(key)
        meanwhile, self.after_next_get = self.after_next_get, None
        if meanwhile is not None:
            await meanwhile()
        return value

    async def _get(self, key: str) -> bytes | None:
        if self.inner is not None:
            value: bytes | None = await self.inner.storage_get(key=key)  # type: ignore[attr-defined]
            return value
        entry = self._entries.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= time.monotonic()):
            return None
        return entry[0]

    @sessionware.hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        self._record("set", key, expires_in)
        if self.inner is not None:
            await self.inner.storage_set(key=key, value=value, expires_in=expires_in)  # type: ignore[attr-defined]
            return
        deadline = None if expires_in is None else time.monotonic() + expires_in
        self._entries[key] = (bytes(value), deadline)

    @sessionware.hookimpl
    async def storage_delete(self, key: str) -> None:
        self._record("delete", key)
        if self.inner is not None:
            await self.inner.storage_delete(key=key)  # type: ignore[attr-defined]
        self._entries.pop(key, None)

    @sessionware.hookimpl
    async def storage_reset(self) -> None:
        self._record("reset")
        if self.inner is not None:
            await self.inner.storage_reset()  # type: ignore[attr-defined]
        self._entries.clear()

    @sessionware.hookimpl
    async def storage_close(self) -> None:
        self._record("close")
        if self.inner is not None:
            await self.inner.storage_close()  # type: ignore[attr-defined]


class CountingStorage(CountingPlainStorage):
    """The same, for a storage with compare-and-set: its calls are recorded as "cas"."""

    @sessionware.hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        self._record("cas", key, expires_in)
        if self.inner is not None:
            stored: bool = await self.inner.storage_compare_and_set(  # type: ignore[attr-defined]
                key=key, expected=expected, value=value, expires_in=expires_in
            )
            return stored
        entry = self._entries.get(key)
        live = None
        if entry is not None and (entry[1] is None or entry[1] > time.monotonic()):
            live = entry[0]
        if live != expected:
            return False
        deadline = None if expires_in is None else time.monotonic() + expires_in
        self._entries[key] = (bytes(value), deadline)
        return True


# Raw access goes through the plugin's own hooks, under the key the core stores a session at.


def storage_key(session_id: str) -> str:
    """Where a session is stored: its handle, the unpadded URL-safe base64 of the SHA-256 of
    the id (S9), computed here from that definition rather than by the core."""
    digest = hashlib.sha256(session_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def plain_record(body: list[Any]) -> bytes:
    """Stored bytes as the core writes a plain record: the marker 0x01, then MessagePack of
    ``[created, expiry, expires_at, data]`` (docs/architecture.md)."""
    return b"\x01" + msgspec.msgpack.encode(body)


async def raw_put(store: Store, session_id: str, value: bytes, ttl: float | None = 60) -> None:
    await _PLUGINS[store].storage_set(key=storage_key(session_id), value=value, expires_in=ttl)


async def raw_get_key(store: Store, key: str) -> bytes | None:
    """What storage holds under `key` itself (an owner index's key, say)."""
    value: bytes | None = await _PLUGINS[store].storage_get(key=key)
    return value


async def raw_get(store: Store, session_id: str) -> bytes | None:
    value: bytes | None = await _PLUGINS[store].storage_get(key=storage_key(session_id))
    return value


# -- the app ----------------------------------------------------------------------------


def state(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "fresh": session.fresh,
        "keys": session.keys(),
        "data": {key: session[key] for key in session},
        "expiry": session.expiry.total_seconds(),
    }


def _json(payload: Any) -> Response:
    return Response(json.dumps(payload, default=repr), media_type="application/json")


def apply_action(session: Any, op: str, args: list[Any], log: list[Any], store: Store) -> bool:
    """One action of a script that needs no storage call; False when `op` is not one."""
    if op == "set":
        session.set(args[0], args[1])
    elif op == "set_same":
        session.set(args[0], session.get(args[0]))
    elif op == "append":
        session.get(args[0]).append(args[1])
    elif op == "pop":
        session.get(args[0]).pop()
    elif op == "delete":
        session.delete(args[0])
    elif op == "set_expiry":
        session.set_expiry(args[0])
    elif op == "get":
        log.append(session.get(args[0]))
    elif op == "state":
        log.append(state(session))
    elif op == "ended":
        log.append(session.ended)
    elif op == "advance":
        clock_of(store).advance(args[0])
    elif op == "raise":
        raise RuntimeError(args[0])
    else:
        return False
    return True


ACTIONS_WITH_STORAGE = ("save", "destroy", "regenerate", "reset")


async def run_actions(
    store: Store, session: Session, actions: Iterable[Sequence[Any]]
) -> list[Any]:
    """Apply a script of session actions; "state", "get" and "stored" add to the log.

    ``["advance", seconds]`` moves the store's fake clock on.
    ``["stored", id]`` logs whether storage holds `id` right now (the session's own id when
    `id` is omitted), as seen through ``store.get_by_id``.
    """
    log: list[Any] = []
    for op, *args in actions:
        if apply_action(session, op, args, log, store):
            continue
        if op == "stored":
            log.append(await store.get_by_id(args[0] if args else session.id) is not None)
        elif op in ACTIONS_WITH_STORAGE:
            await getattr(session, op)()
        else:
            raise AssertionError(f"unknown test action {op!r}")
    return log


def make_app(store: Store, *, auto_save: bool = False, routes: Sequence[BaseRoute] = ()) -> Any:
    """The test app of the current flavour (see `flavours`): ASGI by default.

    The rule scripts (`/untouched`, `/read`, `/do`) exist in every flavour; a test that adds
    Starlette `routes` of its own is an ASGI test, skipped in the others.
    """
    flavour = flavours.current()
    if flavour == "asgi":
        return make_asgi_app(store, auto_save=auto_save, routes=routes)
    if routes:
        pytest.skip(
            f"this test's own handlers are ASGI ones; the {flavour} flavour runs the scripts"
        )
    return flavours.make_sync_app(flavour, store, auto_save=auto_save)


def make_asgi_app(
    store: Store, *, auto_save: bool = False, routes: Sequence[BaseRoute] = ()
) -> SessionMiddleware:
    """A Starlette app behind `SessionMiddleware`.

    ``GET /untouched`` never asks for the session; ``GET /read`` loads it and answers its
    state; ``POST /do`` runs the posted actions (see `run_actions`) and answers the final
    state plus a ``log``; ``/ws`` is a websocket that sends the session's state.
    """

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("untouched")

    async def read(request: Request) -> Response:
        return _json(state(await store.get(request)))

    async def act(request: Request) -> Response:
        session = await store.get(request)
        log = await run_actions(store, session, await request.json())
        return _json({**state(session), "log": log})

    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        session = await store.get(ws)
        await ws.send_text(json.dumps(state(session)))
        await ws.close()

    app = Starlette(
        routes=[
            Route("/untouched", untouched),
            Route("/read", read),
            Route("/do", act, methods=["POST"]),
            WebSocketRoute("/ws", websocket),
            *routes,
        ]
    )
    return SessionMiddleware(app, store=store, auto_save=auto_save)


@asynccontextmanager
async def serve(
    backend: Backend, *, auto_save: bool = False, **config: Any
) -> AsyncIterator[tuple[Store, httpx.AsyncClient]]:
    """A store on `backend`, the test app around it and a client; all closed afterwards."""
    async with (
        open_store(backend, **config) as store,
        client(make_app(store, auto_save=auto_save)) as http,
    ):
        yield store, http


@asynccontextmanager
async def serve_counting(
    backend: Backend,
    *,
    auto_save: bool = False,
    fail_on: Mapping[str, Exception] | None = None,
    **config: Any,
) -> AsyncIterator[tuple[Store, CountingStorage, httpx.AsyncClient]]:
    """Like `serve`, with every storage call of the store counted on its way to `backend`."""
    store, storage = counting_store(backend, fail_on=fail_on, **config)
    async with store, client(make_app(store, auto_save=auto_save)) as http:
        yield store, storage, http


# -- HTTP helpers -----------------------------------------------------------------------


def client(app: Any, *, raise_app_exceptions: bool = True, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that calls the app in process and keeps cookies like a browser (a
    WSGI app runs in a worker thread, as a threaded server would run it). Without
    `raise_app_exceptions`, an exception the app lets out is a 500, as a server answers it."""
    transport: httpx.AsyncBaseTransport
    if isinstance(app, flavours.WSGIApp):
        transport = flavours.ThreadedWSGITransport(app.app, raise_app_exceptions)
    else:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, **kwargs)


async def do(http: httpx.AsyncClient, *actions: Sequence[Any], **kwargs: Any) -> httpx.Response:
    response = await http.post("/do", json=[list(action) for action in actions], **kwargs)
    assert response.status_code == 200, response.text
    return response


def cookie_header(session_id: str, name: str = COOKIE) -> dict[str, str]:
    return {"cookie": f"{name}={session_id}"}


async def read(http: Any, session_id: str) -> dict[str, Any]:
    """GET /read with this id in an explicit header (httpx's jar drops short-lived cookies):
    what the session holds, as the test app answers."""
    body: dict[str, Any] = (await http.get("/read", headers=cookie_header(session_id))).json()
    return body


@dataclass
class SetCookie:
    """One parsed ``Set-Cookie`` line: attribute names in order, as written."""

    name: str
    value: str
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attribute_names(self) -> list[str]:
        return [name for name, _ in self.attributes]

    def get(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(key.lower() == name.lower() for key, _ in self.attributes)

    @property
    def max_age(self) -> int:
        value = self.get("Max-Age")
        assert value is not None
        return int(value)


def parse_set_cookie(line: str) -> SetCookie:
    first, *rest = line.split(";")
    name, _, value = first.strip().partition("=")
    attributes: list[tuple[str, str | None]] = []
    for part in rest:
        key, sep, attr_value = part.strip().partition("=")
        attributes.append((key, attr_value if sep else None))
    return SetCookie(name, value, attributes)


def set_cookies(response: httpx.Response) -> list[SetCookie]:
    return [parse_set_cookie(line) for line in response.headers.get_list("set-cookie")]


def session_cookie(response: httpx.Response, name: str = COOKIE) -> SetCookie | None:
    """The one Set-Cookie for the session cookie, or None; two of them fail the test (R11)."""
    found = [cookie for cookie in set_cookies(response) if cookie.name == name]
    assert len(found) <= 1, f"more than one Set-Cookie for {name}: {found}"
    return found[0] if found else None


def http_scope(
    path: str, headers: Sequence[tuple[bytes, bytes]], query_string: bytes, method: str
) -> dict[str, Any]:
    """The scope a server would build for this request, headers exactly as given."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def raw_http(
    app: Any,
    path: str = "/read",
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    query_string: bytes = b"",
    method: str = "GET",
    body: bytes = b"",
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Call the app with exactly these header bytes (what httpx would refuse to send)."""
    if isinstance(app, flavours.WSGIApp):
        return await flavours.call_wsgi(app, path, list(headers), query_string, method, body)
    scope = http_scope(path, headers, query_string, method)
    messages: list[dict[str, Any]] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        messages.append(dict(message))

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], list(start.get("headers", [])), payload
