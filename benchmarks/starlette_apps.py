"""The same four handlers on Starlette: bare, with sessionware, starsessions, and cookies.

Every app is a `Starlette` with its session layer in `middleware=[...]`, so the routing and
the response classes, which are most of a request's cost, are the same for all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from sessionware import SessionMiddleware, Store
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .scenarios import PATHS, USER, BenchApp

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

BARE = "bare starlette"
LIFETIME = 24 * 3600


def _app(handlers: Mapping[str, Handler], middleware: Sequence[Middleware] = ()) -> Starlette:
    routes = [Route(PATHS[name], handler) for name, handler in handlers.items()]
    return Starlette(routes=routes, middleware=list(middleware))


def bare() -> BenchApp:
    """The handlers without sessions: what every session layer is measured against."""
    count = 0

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        return PlainTextResponse(USER)

    async def counter(request: Request) -> Response:
        nonlocal count
        count += 1
        return PlainTextResponse(str(count))

    async def login(request: Request) -> Response:
        return PlainTextResponse("ok")

    handlers = {"untouched": untouched, "read": read, "counter": counter, "login": login}
    return BenchApp(BARE, "bare", _app(handlers), "session", BARE, sessions=False)


def floor(pair: Any, name: str) -> BenchApp:
    """Bare Starlette whose counter handler does a raw client pair itself, sessions aside.

    It differs from "bare + raw pair" by what awaiting I/O from inside the app's coroutine
    stack costs: the floor a session layer on that client can really reach.
    """
    count = 0

    async def counter(request: Request) -> Response:
        nonlocal count
        await pair.pair()
        count += 1
        return PlainTextResponse(str(count))

    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    handlers = {"untouched": ok, "read": ok, "counter": counter, "login": ok}
    return BenchApp(
        name, "floor", _app(handlers), "session", BARE, sessions=False, close=pair.close
    )


def sessionware(
    store: Store,
    *,
    auto_save: bool,
    name: str,
    backend: str,
    login_extra: Callable[[], Mapping[str, Any]] | None = None,
    scenarios: tuple[str, ...] | None = None,
    between: Callable[[], Awaitable[None]] | None = None,
) -> BenchApp:
    """The handlers with sessionware; explicit mode calls save(), auto_save leaves it.

    `login_extra` gives more values for each login to set (a 1 KB value, an owner);
    `between` is awaited by the counter between loading and saving (benchmarks/gap.py).
    """

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        session = await store.get(request)
        return PlainTextResponse(session.get("user", ""))

    async def counter(request: Request) -> Response:
        session = await store.get(request)
        if between is not None:
            await between()
        count = session.get("n", 0) + 1
        session.set("n", count)
        if not auto_save:
            await session.save()
        return PlainTextResponse(str(count))

    async def login(request: Request) -> Response:
        session = await store.get(request)
        session.set("user", USER)
        session.set("role", "admin")
        if login_extra is not None:
            for key, value in login_extra().items():
                session.set(key, value)
        if not auto_save:
            await session.save()
        return PlainTextResponse("ok")

    handlers = {"untouched": untouched, "read": read, "counter": counter, "login": login}
    middleware = [Middleware(SessionMiddleware, store=store, auto_save=auto_save)]
    return BenchApp(
        name,
        "sessionware",
        _app(handlers, middleware),
        store.config.key_lookup.split(":", 1)[1],
        BARE,
        backend=backend,
        mode="auto_save" if auto_save else "explicit",
        close=store.close,
        scenarios=scenarios,
    )


def starsessions(store: Any, *, autoload: bool, name: str, backend: str) -> BenchApp:
    """starsessions, lazy (the handler loads) or with its autoload middleware."""
    from starsessions import SessionAutoloadMiddleware, load_session
    from starsessions import SessionMiddleware as StarSessionMiddleware

    async def load(request: Request) -> None:
        if not autoload:
            await load_session(request)

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        await load(request)
        return PlainTextResponse(request.session.get("user", ""))

    async def counter(request: Request) -> Response:
        await load(request)
        count = request.session.get("n", 0) + 1
        request.session["n"] = count
        return PlainTextResponse(str(count))

    async def login(request: Request) -> Response:
        await load(request)
        request.session["user"] = USER
        request.session["role"] = "admin"
        return PlainTextResponse("ok")

    handlers = {"untouched": untouched, "read": read, "counter": counter, "login": login}
    middleware = [
        Middleware(
            StarSessionMiddleware,
            store=store,
            lifetime=LIFETIME,
            rolling=True,
            cookie_https_only=False,
        )
    ]
    if autoload:
        middleware.append(Middleware(SessionAutoloadMiddleware))
    return BenchApp(
        name,
        "starsessions",
        _app(handlers, middleware),
        "session",
        BARE,
        backend=backend,
        mode="autoload" if autoload else "lazy",
    )


def starlette_cookie() -> BenchApp:
    """Starlette's own SessionMiddleware: the data itself in a signed cookie."""
    from starlette.middleware.sessions import SessionMiddleware as CookieSessionMiddleware

    async def untouched(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        return PlainTextResponse(request.session.get("user", ""))

    async def counter(request: Request) -> Response:
        count = request.session.get("n", 0) + 1
        request.session["n"] = count
        return PlainTextResponse(str(count))

    async def login(request: Request) -> Response:
        request.session["user"] = USER
        request.session["role"] = "admin"
        return PlainTextResponse("ok")

    handlers = {"untouched": untouched, "read": read, "counter": counter, "login": login}
    middleware = [Middleware(CookieSessionMiddleware, secret_key="bench-secret", max_age=LIFETIME)]
    return BenchApp(
        "starlette cookie sessions",
        "starlette-cookie",
        _app(handlers, middleware),
        "session",
        BARE,
        backend="cookie",
    )
