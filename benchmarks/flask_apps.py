"""The same four handlers on Flask, called through WSGI: bare, with sessionware, Flask's own
signed-cookie session, and Flask-Session on redis and on cachelib's file system cache.

Every app but the bare one uses `flask.session`, so the views are the same code; only the
session interface differs. Each is measured against bare Flask.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, session
from sessionware import Store
from sessionware.flask import Sessionware

from .scenarios import PATHS, USER, BenchApp

BARE = "bare flask"
LIFETIME = 24 * 3600

View = Callable[[], Any]


def _app(views: dict[str, View]) -> Flask:
    app = Flask("sessionware_bench")
    for name, view in views.items():
        app.add_url_rule(PATHS[name], name, view)
    return app


def _session_views(save: bool = False) -> dict[str, View]:
    """The handlers on `flask.session`; with `save`, the two that change it save it."""

    def untouched() -> str:
        return "ok"

    def read() -> str:
        return str(session.get("user", ""))

    def counter() -> str:
        count = session.get("n", 0) + 1
        session["n"] = count
        if save:
            session.save()  # type: ignore[attr-defined]
        return str(count)

    def login() -> str:
        session["user"] = USER
        session["role"] = "admin"
        if save:
            session.save()  # type: ignore[attr-defined]
        return "ok"

    return {"untouched": untouched, "read": read, "counter": counter, "login": login}


def bare() -> BenchApp:
    """The handlers without sessions: what every Flask app below is measured against."""
    count = 0

    def untouched() -> str:
        return "ok"

    def read() -> str:
        return USER

    def counter() -> str:
        nonlocal count
        count += 1
        return str(count)

    def login() -> str:
        return "ok"

    views = {"untouched": untouched, "read": read, "counter": counter, "login": login}
    return BenchApp(BARE, "bare", _app(views), "session", BARE, sessions=False)


def floor(pair: Any, name: str) -> BenchApp:
    """Bare Flask whose counter view does the raw sync redis pair itself."""
    count = 0

    def counter() -> str:
        nonlocal count
        pair.pair()
        count += 1
        return str(count)

    def ok() -> str:
        return "ok"

    views = {"untouched": ok, "read": ok, "counter": counter, "login": ok}
    return BenchApp(
        name, "floor", _app(views), "session", BARE, sessions=False, scenarios=("counter",)
    )


def sessionware(store: Store, *, auto_save: bool, name: str, backend: str) -> BenchApp:
    """`sessionware.flask.Sessionware`: auto_save (Flask's habit, the default) saves a
    changed session at the end of the request; explicit mode has the views call save()."""
    app = _app(_session_views(save=not auto_save))
    Sessionware(app, store=store, auto_save=auto_save)

    async def close() -> None:  # called without an event loop: see driver.run_to_end
        store.sync.close()

    return BenchApp(
        name,
        "sessionware",
        app,
        store.config.key_lookup.split(":", 1)[1],
        BARE,
        backend=backend,
        mode="auto_save" if auto_save else "explicit",
        close=close,
    )


def flask_cookie() -> BenchApp:
    """Flask's default session: the data itself in a cookie signed with itsdangerous."""
    app = _app(_session_views())
    app.secret_key = "bench-secret"
    return BenchApp("flask cookie sessions", "flask-cookie", app, "session", BARE, backend="cookie")


def flask_session_redis(url: str) -> BenchApp:
    """Flask-Session on redis, with its defaults (permanent sessions, refreshed on every
    request: SESSION_PERMANENT and Flask's SESSION_REFRESH_EACH_REQUEST)."""
    from flask_session import Session
    from redis import Redis

    client = Redis.from_url(url)
    app = _app(_session_views())
    app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client)
    Session(app)

    async def close() -> None:
        client.close()

    return BenchApp(
        "flask-session redis", "flask-session", app, "session", BARE, backend="redis", close=close
    )


def flask_session_cachelib(directory: Path) -> BenchApp:
    """Flask-Session on cachelib's FileSystemCache, as Flask-Session builds it when given
    none (threshold 500 files), in a directory of this run's own."""
    from cachelib.file import FileSystemCache
    from flask_session import Session

    app = _app(_session_views())
    cache = FileSystemCache(str(directory), threshold=500)
    app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=cache)
    Session(app)
    return BenchApp(
        "flask-session cachelib (files)",
        "flask-session",
        app,
        "session",
        BARE,
        backend="cachelib",
    )
