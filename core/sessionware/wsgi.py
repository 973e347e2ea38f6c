"""Sessions for WSGI apps (S11): the same `Store`, rules and plugins as ASGI.

    from sessionware import Store
    from sessionware.wsgi import SessionMiddleware, get_session

    store = Store()

    def app(environ, start_response):
        session = get_session(environ)            # loaded on first use, as in ASGI
        session["visits"] = session.get("visits", 0) + 1
        session.save()                            # a plain call; or auto_save=True
        ...

    app = SessionMiddleware(app, store=store)

Cookies, id headers, `Vary` and `Cache-Control` (R6-R11, R23) and auto-save (R19, R22) are
exactly as on ASGI. How the sync calls reach the async plugins: see `_sync_bridge`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

from ._request import RequestContext
from ._request_ids import EnvironLookup
from ._store import Store
from ._sync import SyncSession

__all__ = ["SessionMiddleware", "get_session"]

logger = logging.getLogger("sessionware")

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_ENVIRON_KEY = "sessionware.wsgi"
_SERVER_ERROR = b"Internal Server Error"


class _RequestSession:
    """What `get_session` finds in the environ: this request's store and context."""

    __slots__ = ("context", "environ", "middleware")

    def __init__(
        self, middleware: SessionMiddleware, context: RequestContext, environ: Environ
    ) -> None:
        self.middleware = middleware
        self.context = context
        self.environ = environ

    def session(self) -> SyncSession:
        scope = self.middleware.lookup.scope(self.environ)
        return self.middleware.store.sync.request_session(self.context, scope)


def get_session(environ: Mapping[str, Any]) -> SyncSession:
    """The session of this request: loaded if its id is known, else a fresh one (R1-R5)."""
    found = environ.get(_ENVIRON_KEY)
    if not isinstance(found, _RequestSession):
        raise RuntimeError(
            "get_session() found no sessionware.wsgi.SessionMiddleware; wrap the WSGI app: "
            "app = SessionMiddleware(app, store=store)"
        )
    return found.session()


class SessionMiddleware:
    """Wrap a WSGI app so that `get_session(environ)` works inside it.

    Nothing is loaded until the app asks for its session; with ``auto_save=True`` a changed
    session is saved when the response starts, otherwise only by ``session.save()``.
    """

    def __init__(self, app: WSGIApp, store: Store, *, auto_save: bool = False) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"SessionMiddleware needs store=Store(...), got {type(store).__name__}")
        self.app = app
        self.store = store
        self.auto_save = auto_save
        self.lookup = EnvironLookup(store.config.lookups)
        self._new_context = store.context_factory(auto_save=auto_save)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        context = self._new_context()
        environ[self.store.scope_key] = context
        environ[_ENVIRON_KEY] = _RequestSession(self, context, environ)
        start = _ResponseStart(self.store, context, start_response)
        return _Body(self.app(environ, start), start)


class _ResponseStart:
    """The server's `start_response`, wrapped: auto-save and the session headers go out with
    the status line."""

    __slots__ = ("_context", "_start_response", "_store", "failed")

    def __init__(self, store: Store, context: RequestContext, start_response: StartResponse):
        self._store = store
        self._context = context
        self._start_response = start_response
        self.failed = False

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        context = self._context
        try:
            self._store.sync.save_if_due(context, int(status[:3]))
        except Exception:
            logger.exception("auto-save failed: the session could not be stored; answering 500")
            self.failed = True
            return self._start_response(
                "500 Internal Server Error",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(_SERVER_ERROR))),
                ],
                sys.exc_info(),
            )
        owed = context.owed
        if owed is not None:
            raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in owed.completed(raw)
            ]
        return self._start_response(status, headers, exc_info)


class _Body:
    """The app's body, unless the auto-save failed: then the 500's own, and the app's closed."""

    __slots__ = ("_body", "_start")

    def __init__(self, body: Iterable[bytes], start: _ResponseStart) -> None:
        self._body = body
        self._start = start

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if self._start.failed:
                yield _SERVER_ERROR
                return
            yield chunk
        if self._start.failed:  # an app whose body was empty
            yield _SERVER_ERROR

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
