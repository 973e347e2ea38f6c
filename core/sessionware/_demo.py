"""The demo app behind `sessionware demo`: log in, count visits, regenerate, log out, and see
where the same name is signed in, ending those sessions one by one or all at once (S10)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ._config import Config
from ._middleware import ASGIApp, SessionMiddleware
from ._session import Session
from ._session_info import SessionInfo
from ._store import Store

OWNER_KEY = "name"
"""The demo has no passwords: whoever logs in under a name owns that name's sessions."""

_HANDLE = re.compile(r"[A-Za-z0-9_-]{43}")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}}
dt{{font-weight:bold}}form{{display:inline-block;margin-right:.5rem}}
td,th{{text-align:left;padding:.2rem .8rem .2rem 0}}</style></head>
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
{panel}
</body></html>
"""

_LOGIN = """<form method="post" action="/login" id="login-form">
<label>Name <input name="name" id="name" required maxlength="64"></label>
<button type="submit" id="login">Log in</button></form>"""

_ACTIONS = """<form method="post" action="/regenerate">
<button id="regenerate">Regenerate id</button></form>
<form method="post" action="/logout"><button id="logout">Log out</button></form>"""

_PANEL = """<section id="signed-in"><h2>Where you are signed in</h2>
<table><thead><tr><th>signed in</th><th>expires</th><th>visits</th><th></th></tr></thead>
<tbody>
{rows}
</tbody></table>
<form method="post" action="/sessions/sign-out-others">
<button id="sign-out-others">Sign out everywhere else</button></form></section>"""

_THIS_ROW = """<tr class="session this-browser"><td>{created}</td><td>{expires}</td>
<td>{visits}</td><td>this browser</td></tr>"""

_OTHER_ROW = """<tr class="session other-browser"><td>{created}</td><td>{expires}</td>
<td>{visits}</td><td><form method="post" action="/sessions/sign-out">
<input type="hidden" name="handle" value="{handle}">
<button class="sign-out">Sign out this one</button></form></td></tr>"""

_PANEL_OFF = """<section id="signed-in"><h2>Where you are signed in</h2>
<p>Not available on this storage: {reason}</p></section>"""


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _panel(session: Session, sessions: list[SessionInfo]) -> str:
    rows = [
        (_THIS_ROW if info.handle == session.handle else _OTHER_ROW).format(
            created=html.escape(_when(info.created)),
            expires=html.escape(_when(info.expires_at)),
            visits=html.escape(str(info.get("visits", 0))),
            handle=html.escape(info.handle),
        )
        for info in sessions
    ]
    return _PANEL.format(rows="\n".join(rows))


def _render(session: Session, panel: str) -> HTMLResponse:
    name = session.get(OWNER_KEY)
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
            visits=html.escape(str(session.get("visits", 0))),
            actions=_ACTIONS if isinstance(name, str) else _LOGIN,
            panel=panel,
        )
    )


async def _form(request: Request) -> dict[str, str]:
    """The posted fields, first value of each: the demo needs no multipart parser."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {key: values[0] for key, values in fields.items()}


def _open_store(storage: str) -> tuple[Store, str | None]:
    """The demo's store, with an owner index where the storage can keep one; elsewhere (a
    storage without compare-and-set) a store without it, and the reason the panel is off."""
    try:
        return Store(Config(storage=storage, owner_key=OWNER_KEY)), None
    except ValueError as refused:
        # Only owner_key differs: any other problem is raised here again, unchanged.
        return Store(Config(storage=storage)), str(refused)


def build_demo_app(storage: str = "memory") -> ASGIApp:
    store, panel_off = _open_store(storage)

    async def home(request: Request) -> Response:
        session = await store.get(request)
        session.set("visits", session.get("visits", 0) + 1)
        name = session.get(OWNER_KEY)
        if not isinstance(name, str):
            panel = ""
        elif panel_off is not None:
            panel = _PANEL_OFF.format(reason=html.escape(panel_off))
        else:
            await session.save()  # now, not after the handler: the panel lists this visit
            panel = _panel(session, await store.sessions_of(name))
        return _render(session, panel)

    async def login(request: Request) -> Response:
        name = (await _form(request)).get("name", "").strip()[:64]
        session = await store.get(request)
        if name:
            await session.regenerate()  # a new id on every change of privilege
            session.set(OWNER_KEY, name)
        return RedirectResponse("/", status_code=303)

    async def regenerate(request: Request) -> Response:
        await (await store.get(request)).regenerate()
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        await (await store.get(request)).destroy()
        return RedirectResponse("/", status_code=303)

    async def sign_out_one(request: Request) -> Response:
        handle = (await _form(request)).get("handle", "")
        if not _HANDLE.fullmatch(handle):
            return PlainTextResponse(
                "not a session handle: expected 43 characters of URL-safe base64",
                status_code=400,
            )
        session = await store.get(request)
        name = session.get(OWNER_KEY)
        if isinstance(name, str) and panel_off is None:
            # keep=session: this browser signs itself out with "Log out", never from here.
            await store.revoke(name, keep=session, handles=[handle])
        return RedirectResponse("/", status_code=303)

    async def sign_out_others(request: Request) -> Response:
        session = await store.get(request)
        name = session.get(OWNER_KEY)
        if isinstance(name, str) and panel_off is None:
            await store.revoke(name, keep=session)
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
            Route("/sessions/sign-out", sign_out_one, methods=["POST"]),
            Route("/sessions/sign-out-others", sign_out_others, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    return SessionMiddleware(app, store=store, auto_save=True)
