"""The rule suite's app in three flavours: ASGI (Starlette), plain WSGI, and Flask (S11).

A rule module marks itself with ``pytestmark = pytest.mark.usefixtures("app_flavour")``; each
of its tests then runs once per flavour, through the same scripts (`/untouched`, `/read`,
`/do`), the same store and backends, and the same httpx client, which runs a WSGI app in a
worker thread, as a threaded WSGI server would.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import flask
import httpx
import pytest
from sessionware import Store
from sessionware.flask import Sessionware
from sessionware.wsgi import SessionMiddleware, get_session

FLAVOURS = ("asgi", "wsgi", "flask")
_current = "asgi"
_opened: list[Store] = []


def current() -> str:
    return _current


def opened(store: Store) -> None:
    """A store of this test: closed through its sync side too, in the end (a sync flavour
    ran its storage on the store's own event loop, which that closes)."""
    if _current != "asgi":
        _opened.append(store)


@pytest.fixture(params=FLAVOURS)
def app_flavour(request: pytest.FixtureRequest) -> Iterator[str]:
    global _current
    _current = request.param
    try:
        yield _current
    finally:
        _current = "asgi"
        while _opened:
            _opened.pop().sync.close()


class WSGIApp:
    """A WSGI app, marked as such for `client`."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app


class ThreadedWSGITransport(httpx.AsyncBaseTransport):
    """Calls a WSGI app from a worker thread of the test's event loop; an exception the app
    raises reaches the test, as with httpx's ASGI transport."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], raise_app_exceptions: bool = True
    ) -> None:
        self._app = WSGIApp(app)
        self._raise = raise_app_exceptions

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [(name.lower(), value) for name, value in request.headers.raw]
        try:
            status, response_headers, payload = await call_wsgi(
                self._app, request.url.path, headers, request.url.query, request.method, body
            )
        except Exception:
            if self._raise:
                raise
            return httpx.Response(500, text="Internal Server Error")
        return httpx.Response(status, headers=response_headers, content=payload)


async def call_wsgi(
    app: WSGIApp,
    path: str,
    headers: list[tuple[bytes, bytes]],
    query_string: bytes,
    method: str,
    body: bytes,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Call a WSGI app with exactly these header bytes, as a server would pass them: several
    lines of one header joined in one environ entry (cookies by "; ", others by ", ")."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query_string.decode("latin-1"),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = text
            continue
        key = "HTTP_" + key
        joiner = "; " if key == "HTTP_COOKIE" else ", "
        environ[key] = environ[key] + joiner + text if key in environ else text
    started: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc: Any = None
    ) -> Any:
        started.update(status=int(status[:3]), headers=response_headers)
        return lambda data: None

    def run() -> bytes:
        result = app.app(environ, start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    payload = await asyncio.to_thread(run)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in started["headers"]]
    return started["status"], raw, payload


def make_sync_app(flavour: str, store: Store, *, auto_save: bool) -> WSGIApp:
    if flavour == "wsgi":
        return WSGIApp(_wsgi_app(store, auto_save))
    return WSGIApp(_flask_app(store, auto_save))


def run_sync_actions(store: Store, session: Any, actions: Iterable[list[Any]]) -> list[Any]:
    """`run_actions` for a sync session: the same script, plain calls."""
    from tests.support.apps import ACTIONS_WITH_STORAGE, apply_action

    log: list[Any] = []
    for op, *args in actions:
        if apply_action(session, op, args, log, store):
            continue
        if op == "stored":
            log.append(store.sync.get_by_id(args[0] if args else session.id) is not None)
        elif op in ACTIONS_WITH_STORAGE:
            getattr(session, op)()
        else:
            raise AssertionError(f"unknown test action {op!r}")
    return log


def _answer(session: Any, log: list[Any] | None = None) -> bytes:
    from tests.support.apps import state

    payload = state(session) if log is None else {**state(session), "log": log}
    return json.dumps(payload, default=repr).encode()


def _wsgi_app(store: Store, auto_save: bool) -> SessionMiddleware:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/untouched":
            body = b"untouched"
        elif path == "/read":
            body = _answer(get_session(environ))
        elif path == "/do":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            actions = json.loads(environ["wsgi.input"].read(length))
            session = get_session(environ)
            body = _answer(session, run_sync_actions(store, session, actions))
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return SessionMiddleware(app, store=store, auto_save=auto_save)


def _flask_app(store: Store, auto_save: bool) -> flask.Flask:
    app = flask.Flask(__name__)
    app.testing = True  # a view's exception reaches the test, as in the other flavours
    Sessionware(app, store=store, auto_save=auto_save)

    @app.get("/untouched")
    def untouched() -> str:
        return "untouched"

    @app.get("/read")
    def read() -> flask.Response:
        return flask.Response(_answer(flask.session), mimetype="application/json")

    @app.post("/do")
    def act() -> flask.Response:
        actions = flask.request.get_json()
        log = run_sync_actions(store, flask.session, actions)
        return flask.Response(_answer(flask.session, log), mimetype="application/json")

    return app
