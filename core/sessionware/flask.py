"""Flask integration (S11): `flask.session` becomes a sessionware session.

    from flask import Flask, session
    from sessionware import Config, Store
    from sessionware.flask import Sessionware

    app = Flask(__name__)
    Sessionware(app, store=Store(Config(storage="redis://127.0.0.1:6379/0")))

    @app.post("/login")
    def login():
        session.regenerate()            # a new id on every change of privilege
        session["user"] = request.form["name"]
        return redirect("/")

The session is loaded lazily, on first use, and saved at the end of the request when it
changed (Flask's habit: R19, with R22's renewals); `session.regenerate()`,
`session.destroy()`, `session.reset()` and `session.save()` are there too. Cookie attributes
come from `Config`: Flask's SESSION_COOKIE_* settings, PERMANENT_SESSION_LIFETIME and
`session.permanent` no longer apply, and sessions need no SECRET_KEY.

Importing this module imports Flask; the rest of sessionware never does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin

from ._config import Source
from ._request import RequestContext
from ._request_ids import EnvironLookup
from ._store import Store
from ._sync import SyncSession

__all__ = ["FlaskSession", "Sessionware"]

logger = logging.getLogger("sessionware")

_SERVER_ERROR = b"Internal Server Error"


class Sessionware:
    """Make `flask.session` a sessionware session of `store`: ``Sessionware(app, store=...)``,
    or ``ext = Sessionware(store=...)`` then ``ext.init_app(app)``.

    ``auto_save=False`` stores nothing unless the view calls ``session.save()`` (Fiber v2,
    R20); by default a changed session is saved at the end of the request, as Flask's are.
    """

    def __init__(self, app: Flask | None = None, *, store: Store, auto_save: bool = True) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"Sessionware needs store=Store(...), got {type(store).__name__}")
        self.store = store
        self.auto_save = auto_save
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.session_interface = _Interface(self.store, self.auto_save)
        app.extensions["sessionware"] = self


class FlaskSession(SessionMixin):
    """`flask.session`: a lazy `SyncSession`, loaded on first use. Every mapping method and
    session action of sessionware's sessions works on it."""

    def __init__(self, store: Store, context: RequestContext, scope: dict[str, Any]) -> None:
        self._store = store
        self.request_context = context  # what the interface saves at the end of the request
        self._scope = scope

    def _session(self) -> SyncSession:
        session = self.request_context.session
        if isinstance(session, SyncSession):
            return session
        return self._store.sync.request_session(self.request_context, self._scope)

    @property
    def loaded(self) -> bool:
        """Whether this request has used its session (a request that has not costs nothing)."""
        return self.request_context.session is not None

    # Flask's own session attributes, answered from sessionware's state.
    @property
    def permanent(self) -> bool:
        """Sessions live `Config.expiration` (or `set_expiry`), whatever this says."""
        return True

    @permanent.setter
    def permanent(self, value: bool) -> None:
        pass

    @property
    def new(self) -> bool:
        return self._session().fresh

    @new.setter
    def new(self, value: bool) -> None:
        pass

    @property
    def accessed(self) -> bool:
        return self.loaded

    @accessed.setter
    def accessed(self, value: bool) -> None:
        pass

    @property
    def modified(self) -> bool:
        """Sessionware tracks changes itself, in-place ones included (R19)."""
        return False

    @modified.setter
    def modified(self, value: bool) -> None:
        pass

    # The mapping, and sessionware's own session API.
    def __getitem__(self, key: str) -> Any:
        return self._session()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._session()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._session()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._session())

    def __len__(self) -> int:
        return len(self._session())

    def __contains__(self, key: object) -> bool:
        return key in self._session()

    def get(self, key: str, default: Any = None) -> Any:
        return self._session().get(key, default)

    def keys(self) -> list[str]:  # type: ignore[override]
        return self._session().keys()

    def set(self, key: str, value: Any) -> None:
        self._session().set(key, value)

    def delete(self, key: str) -> None:
        self._session().delete(key)

    def clear(self) -> None:
        self._session().clear()

    @property
    def id(self) -> str:
        return self._session().id

    @property
    def handle(self) -> str:
        return self._session().handle

    @property
    def fresh(self) -> bool:
        return self._session().fresh

    @property
    def ended(self) -> bool:
        return self._session().ended

    @property
    def origin(self) -> Source | None:
        return self._session().origin

    @property
    def created(self) -> datetime:
        return self._session().created

    @property
    def expiry(self) -> timedelta:
        return self._session().expiry

    def set_expiry(self, expiry: timedelta | float) -> None:
        self._session().set_expiry(expiry)

    def save(self) -> None:
        self._session().save()

    def destroy(self) -> None:
        self._session().destroy()

    def regenerate(self) -> None:
        self._session().regenerate()

    def reset(self) -> None:
        self._session().reset()

    def __repr__(self) -> str:
        return f"<FlaskSession {self._session()!r}>" if self.loaded else "<FlaskSession (unread)>"


class _Interface(SessionInterface):
    """Flask's session hooks: open a lazy session per request, auto-save it at the end."""

    def __init__(self, store: Store, auto_save: bool) -> None:
        self.store = store
        self.auto_save = auto_save
        self._lookup = EnvironLookup(store.config.lookups)
        self._new_context = store.context_factory(auto_save=auto_save)

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        context = self._new_context()
        return FlaskSession(self.store, context, self._lookup.scope(request.environ))

    def is_null_session(self, obj: object) -> bool:
        return False

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession) or not session.loaded:
            return  # untouched: no storage call, no cookie (R19)
        context = session.request_context
        try:
            self.store.sync.save_if_due(context, response.status_code)
        except Exception:
            # R18: as on ASGI and WSGI, a 500 without the error's detail, and a log record.
            logger.exception("auto-save failed: the session could not be stored; answering 500")
            response.status_code = 500
            response.headers.clear()
            response.set_data(_SERVER_ERROR)
            response.mimetype = "text/plain"
            return
        owed = context.owed
        if owed is None:
            return
        # R23, as `ResponseOwed.completed` does it for ASGI: one look at the app's headers.
        headers = response.headers
        app_vary: list[bytes] = []
        app_cache_control = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "vary":
                app_vary.append(value.encode("latin-1"))
            elif lowered == "cache-control":
                app_cache_control = True
        vary = owed.vary_value(app_vary)
        if vary is not None:
            if app_vary:
                headers["Vary"] = vary.decode("latin-1")  # in place of the app's own lines
            else:
                headers.add("Vary", vary.decode("latin-1"))
        for extra_name, extra_value in owed.extra_headers(app_cache_control):
            headers.add(extra_name.decode("latin-1"), extra_value.decode("latin-1"))
