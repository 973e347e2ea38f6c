"""S11 for plain WSGI apps: the middleware, sync sessions, store.sync, threads and forks.

The rule suite runs against WSGI and Flask too (its modules use the `app_flavour` fixture);
this module covers what only sync code has: plain-call actions, many threads sharing one
store, the event loop the store keeps per process, and what a failed auto-save answers.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sessionware import Config, StorageError, Store
from sessionware.wsgi import SessionMiddleware, get_session

from tests.support.apps import CountingStorage, clock_of, open_store, real_plugin
from tests.support.backends import Backend

Environ = dict[str, Any]


def request(
    app: Callable[..., Iterable[bytes]],
    path: str = "/",
    *,
    cookie: str | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Call a WSGI app as a server would, from the calling thread."""
    environ: Environ = {
        "REQUEST_METHOD": "POST" if body else "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = f"session_id={cookie}"
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        started.update(status=int(status[:3]), headers=response_headers)
        return lambda data: None

    result = app(environ, start_response)
    try:
        payload = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started["status"], started["headers"], payload


def cookie_of(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("session_id="):
            return value.split(";", 1)[0].split("=", 1)[1] or None
    return None


def counter_app(store: Store, *, auto_save: bool = False) -> SessionMiddleware:
    """``/``: count this session's visits; ``/key?name``: set a key of one's own."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/key":
            session[environ["QUERY_STRING"]] = True
        else:
            session["n"] = session.get("n", 0) + 1
        if not auto_save:
            session.save()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"id": session.id, "n": session.get("n")}).encode()]

    return SessionMiddleware(app, store=store, auto_save=auto_save)


@pytest.fixture
def sync_store(storage_backend: Backend) -> Iterator[Store]:
    """A store used from sync code only, closed the sync way."""
    store = open_store(storage_backend)
    try:
        yield store
    finally:
        store.sync.close()


# -- the middleware ------------------------------------------------------------------------


def test_s11_get_session_outside_the_middleware_says_how_to_add_it() -> None:
    with pytest.raises(RuntimeError, match=r"SessionMiddleware\(app, store=store\)"):
        get_session({})


def test_s11_the_middleware_needs_a_store() -> None:
    with pytest.raises(TypeError, match=r"store=Store"):
        SessionMiddleware(lambda e, s: [], store="memory")  # type: ignore[arg-type]


def test_s11_a_wsgi_session_counts_across_requests_with_plain_calls(sync_store: Store) -> None:
    app = counter_app(sync_store)
    status, headers, body = request(app)
    session_id = cookie_of(headers)
    assert status == 200
    assert json.loads(body) == {"id": session_id, "n": 1}
    for expected in (2, 3):
        _, _, body = request(app, cookie=session_id)
        assert json.loads(body)["n"] == expected
    stored = sync_store.sync.get_by_id(session_id)  # type: ignore[arg-type]
    assert stored is not None
    assert stored["n"] == 3


def test_s11_an_untouched_request_costs_no_storage_call_and_sets_no_cookie() -> None:
    storage = CountingStorage(real_plugin(Backend("memory", "memory")))
    store = Store(Config(storage=storage))

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"untouched"]

    status, headers, _ = request(SessionMiddleware(app, store=store, auto_save=True), cookie="x")
    assert status == 200
    assert [name.lower() for name, _ in headers] == ["content-type"]
    assert storage.calls == []
    store.sync.close()


@pytest.mark.parametrize("lazy", [False, True], ids=["start-then-body", "start-in-the-body"])
def test_s11_a_failed_auto_save_answers_500_and_closes_the_apps_body(lazy: bool) -> None:
    storage = CountingStorage(real_plugin(Backend("memory", "memory")))
    store = Store(Config(storage=storage))
    closed = []

    class Body:
        def __init__(self, start: Callable[..., Any]) -> None:
            self.start = start

        def __iter__(self) -> Iterator[bytes]:
            if lazy:
                self.start("200 OK", [("Content-Type", "text/plain")])
            yield b"secret page"

        def close(self) -> None:
            closed.append(True)

    def app(environ: Environ, start_response: Callable[..., Any]) -> Body:
        get_session(environ)["n"] = 1
        if not lazy:
            start_response("200 OK", [("Content-Type", "text/plain")])
        return Body(start_response)

    storage.fail_on["set"] = PermissionError("READONLY replica")
    status, headers, body = request(SessionMiddleware(app, store=store, auto_save=True))
    assert status == 500
    assert body == b"Internal Server Error"
    assert not any(name.lower() == "set-cookie" for name, _ in headers)
    assert closed == [True]
    store.sync.close()


def test_s11_r23_vary_is_merged_with_the_apps_own_and_a_cookie_is_private(
    sync_store: Store,
) -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        get_session(environ).save()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", "Accept")])
        return [b"ok"]

    _, headers, _ = request(SessionMiddleware(app, store=sync_store))
    assert [value for name, value in headers if name.lower() == "vary"] == ["Accept, Cookie"]
    assert [value for name, value in headers if name.lower() == "cache-control"] == ["private"]


# -- threads --------------------------------------------------------------------------------


def test_s11_many_threads_share_one_store_and_every_counter_is_exact(sync_store: Store) -> None:
    app = counter_app(sync_store, auto_save=True)

    def client(_: int) -> list[int]:
        _, headers, body = request(app)
        session_id, counts = cookie_of(headers), [json.loads(body)["n"]]
        for _ in range(9):
            counts.append(json.loads(request(app, cookie=session_id)[2])["n"])
        return counts

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(client, range(32)))
    assert results == [list(range(1, 11))] * 32


def test_s11_r21_threads_sharing_one_session_lose_no_key(sync_store: Store) -> None:
    app = counter_app(sync_store)
    session_id = cookie_of(request(app)[1])
    keys = [f"k{n}" for n in range(50)]

    def set_key(name: str) -> int:
        environ_query = {"QUERY_STRING": name}
        return request(_with(app, environ_query), "/key", cookie=session_id)[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(set_key, keys)) == {200}
    stored = sync_store.sync.get_by_id(session_id)  # type: ignore[arg-type]
    assert stored is not None
    assert set(stored) == {"n", *keys}


def test_s11_r21_two_interleaved_requests_each_keep_their_key(sync_store: Store) -> None:
    loaded = threading.Barrier(2)
    first_saved = threading.Event()

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        session = get_session(environ)
        key = environ["QUERY_STRING"]
        if key in ("first", "second"):
            session.get("base")  # loaded by both before either saves
            loaded.wait(10)
            if key == "second":
                first_saved.wait(10)
            session[key] = True
        else:
            session["base"] = 1
        session.save()
        if key == "first":
            first_saved.set()
        start_response("200 OK", [])
        return [b""]

    wrapped = SessionMiddleware(app, store=sync_store)
    session_id = cookie_of(request(wrapped)[1])
    threads = [
        threading.Thread(
            target=request,
            args=(_with(wrapped, {"QUERY_STRING": key}),),
            kwargs={"cookie": session_id},
        )
        for key in ("first", "second")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    stored = sync_store.sync.get_by_id(session_id)  # type: ignore[arg-type]
    assert stored is not None
    assert dict(stored.items()) == {"base": 1, "first": True, "second": True}


def test_s11_r24_a_request_holding_a_session_logged_out_meanwhile_cannot_bring_it_back(
    sync_store: Store,
) -> None:
    held, logged_out = threading.Event(), threading.Event()

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/logout":
            session.destroy()
        elif environ["PATH_INFO"] == "/slow":
            session.get("user")
            held.set()
            logged_out.wait(10)
            session["cart"] = ["late"]
            session.save()
        else:
            session["user"] = "ann"
            session.save()
        start_response("200 OK", [])
        return [json.dumps({"ended": session.ended}).encode()]

    wrapped = SessionMiddleware(app, store=sync_store)
    session_id = cookie_of(request(wrapped)[1])
    outcome: dict[str, Any] = {}

    def slow() -> None:
        outcome["reply"] = request(wrapped, "/slow", cookie=session_id)

    thread = threading.Thread(target=slow)
    thread.start()
    assert held.wait(10)
    request(wrapped, "/logout", cookie=session_id)
    logged_out.set()
    thread.join(10)
    _, headers, body = outcome["reply"]
    assert json.loads(body) == {"ended": True}
    assert cookie_of(headers) is None
    assert sync_store.sync.get_by_id(session_id) is None  # type: ignore[arg-type]


# -- store.sync -----------------------------------------------------------------------------


def test_s11_store_sync_offers_every_store_method_as_a_plain_call(
    storage_backend: Backend,
) -> None:
    store = open_store(storage_backend, owner_key="user")
    try:
        app = counter_app(store)
        ids = [cookie_of(request(app)[1]) for _ in range(3)]
        assert all(ids)
        sessions = [store.sync.get_by_id(session_id) for session_id in ids]  # type: ignore[arg-type]
        for session in sessions:
            assert session is not None
            session["user"] = "ann"
            session.save()  # a plain call, as in a WSGI request
        assert len(store.sync.sessions_of("ann")) == 3
        assert store.sync.revoke("ann", keep=sessions[0]) == 2
        assert [info.handle for info in store.sync.sessions_of("ann")] == [sessions[0].handle]  # type: ignore[union-attr]
        kept = store.sync.get_by_id(ids[0])  # type: ignore[arg-type]
        assert kept is not None
        kept.regenerate()
        kept.save()
        assert store.sync.get_by_id(ids[0]) is None  # type: ignore[arg-type]
        store.sync.delete(kept.id)
        assert store.sync.get_by_id(kept.id) is None
        fresh_id = cookie_of(request(app)[1])
        store.sync.reset()
        assert store.sync.get_by_id(fresh_id) is None  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="session id"):
            store.sync.get_by_id("")
    finally:
        store.sync.close()


async def test_s11_store_sync_inside_async_code_says_to_await_instead() -> None:
    async with Store() as store:
        with pytest.raises(RuntimeError, match="await the store's"):
            store.sync.get_by_id("some-id")


def test_s11_a_storage_failure_in_sync_code_is_a_storage_error() -> None:
    storage = CountingStorage(real_plugin(Backend("memory", "memory")))
    storage.fail_on["get"] = ConnectionRefusedError("nobody home")
    store = Store(Config(storage=storage))
    with pytest.raises(StorageError, match="nobody home") as caught:
        store.sync.get_by_id("some-id")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    store.sync.close()


def test_s11_rules_about_time_read_the_same_clock_in_sync_code(sync_store: Store) -> None:
    app = counter_app(sync_store)
    session_id = cookie_of(request(app)[1])
    clock_of(sync_store).advance(24 * 3600)
    _, headers, body = request(app, cookie=session_id)
    assert json.loads(body)["n"] == 1  # expired: a new session
    assert cookie_of(headers) != session_id


# -- processes ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_s11_a_store_used_before_a_fork_works_in_the_child(storage_backend: Backend) -> None:
    """What gunicorn --preload does: the parent imports (here: even uses) the store, then
    forks; each child makes its own event loop and connections at its first call."""
    if storage_backend.label in ("memory", "sqlite-memory"):
        pytest.skip("a storage inside the process is not shared with a forked child")
    store = open_store(storage_backend)
    app = counter_app(store)
    session_id = cookie_of(request(app)[1])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count once, report, and leave at once
        try:
            counted = json.loads(request(app, cookie=session_id)[2])["n"]
            os.write(write, str(counted).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert reported == "2"
    assert json.loads(request(app, cookie=session_id)[2])["n"] == 3  # the parent goes on
    store.sync.close()


def _with(app: Callable[..., Any], extra: Environ) -> Callable[..., Any]:
    """The app, with `extra` written into each environ (a query string, say)."""

    def wrapped(environ: Environ, start_response: Callable[..., Any]) -> Any:
        return app({**environ, **extra}, start_response)

    return wrapped
