"""The demo app behind `sessionware demo`: log in, count visits, regenerate, log out."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ._config import Config
from ._middleware import ASGIApp, SessionMiddleware
from ._session import Session
from ._store import Store

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}}
dt{{font-weight:bold}}form{{display:inline-block;margin-right:.5rem}}</style></head>
<body><h1>sessionware demo</h1>
{greeting}
<dl>
<dt>session id</dt><dd id="session-id">{session_id}</dd>
<dt>fresh</dt><dd id="fresh">{fresh}</dd>
<dt>keys</dt><dd id="keys">{keys}</dd>
<dt>expiry</dt><dd id="expiry">{expiry}</dd>
<dt>visits</dt><dd id="visits">{visits}</dd>
</dl>
{actions}
</body></html>
"""

_LOGIN = """<form method="post" action="/login" id="login-form">
<label>Name <input name="name" id="name" required maxlength="64"></label>
<button type="submit" id="login">Log in</button></form>"""

_ACTIONS = """<form method="post" action="/regenerate">
<button id="regenerate">Regenerate id</button></form>
<form method="post" action="/logout"><button id="logout">Log out</button></form>"""


def _render(session: Session) -> HTMLResponse:
    name = session.get("name")
    greeting = (
        f'<p id="greeting">Hello, {html.escape(name)}!</p>'
        if isinstance(name, str)
        else '<p id="greeting">You are not logged in.</p>'
    )
    return HTMLResponse(
        _PAGE.format(
            greeting=greeting,
            session_id=html.escape(session.id),
            fresh=str(session.fresh).lower(),
            keys=html.escape(", ".join(session.keys()) or "(none)"),
            expiry=f"{session.expiry.total_seconds():.0f} s",
            visits=session.get("visits", 0),
            actions=_ACTIONS if isinstance(name, str) else _LOGIN,
        )
    )


def build_demo_app(storage: str = "memory") -> ASGIApp:
    store = Store(Config(storage=storage))

    async def home(request: Request) -> Response:
        session = await store.get(request)
        session.set("visits", session.get("visits", 0) + 1)
        return _render(session)

    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        name = (form.get("name") or [""])[0].strip()[:64]
        session = await store.get(request)
        if name:
            await session.regenerate()  # a new id on every change of privilege
            session.set("name", name)
        return RedirectResponse("/", status_code=303)

    async def regenerate(request: Request) -> Response:
        await (await store.get(request)).regenerate()
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        await (await store.get(request)).destroy()
        return RedirectResponse("/", status_code=303)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/regenerate", regenerate, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    return SessionMiddleware(app, store=store, auto_save=True)
