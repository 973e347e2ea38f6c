"""The same four handlers on Litestar: bare, and with its server-side sessions.

Litestar's routing costs differ from Starlette's, so its sessions are measured against a bare
Litestar app, never against bare Starlette.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, MediaType, Request, get
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.stores.base import Store

from .scenarios import PATHS, USER, BenchApp
from .starlette_apps import LIFETIME

BARE = "bare litestar"

AnyRequest = Request[Any, Any, Any]


def _handlers(sessions: bool) -> list[Any]:
    """The four route handlers; without `sessions` they never touch `request.session`."""
    count = 0

    @get(PATHS["untouched"], media_type=MediaType.TEXT)
    async def untouched() -> str:
        return "ok"

    @get(PATHS["read"], media_type=MediaType.TEXT)
    async def read(request: AnyRequest) -> str:
        return str(request.session.get("user", "")) if sessions else USER

    @get(PATHS["counter"], media_type=MediaType.TEXT)
    async def counter(request: AnyRequest) -> str:
        nonlocal count
        if not sessions:
            count += 1
            return str(count)
        value = int(request.session.get("n", 0)) + 1
        request.session["n"] = value
        return str(value)

    @get(PATHS["login"], media_type=MediaType.TEXT)
    async def login(request: AnyRequest) -> str:
        if sessions:
            request.session["user"] = USER
            request.session["role"] = "admin"
        return "ok"

    return [untouched, read, counter, login]


def bare() -> BenchApp:
    app: Any = Litestar(route_handlers=_handlers(False), logging_config=None)
    return BenchApp(BARE, "bare", app, "session", BARE, sessions=False)


def server_side(store: Store, *, backend: str) -> BenchApp:
    """Litestar's ServerSideSessionConfig on a Litestar store (memory or redis)."""
    config = ServerSideSessionConfig(max_age=LIFETIME)
    app: Any = Litestar(
        route_handlers=_handlers(True),
        middleware=[config.middleware],
        stores={"sessions": store},
        logging_config=None,
    )
    return BenchApp(
        f"litestar {backend}", "litestar", app, config.key, BARE, backend=backend, mode="server"
    )
