"""R23: a response that depends on the session says so to shared caches (`Vary`), and one
that sets or expires the session cookie is `Cache-Control: private`."""

from __future__ import annotations

import pytest
from sessionware import Config, Store
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.support.apps import client, cookie_header, do, make_app, raw_http


def vary_of(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """Every name the response varies on, over all its Vary lines, as sent."""
    names = []
    for name, value in headers:
        if name.lower() == b"vary":
            names.extend(token.strip().decode() for token in value.split(b",") if token.strip())
    return names


def header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> list[bytes]:
    return [value for name, value in headers if name.lower() == wanted]


def app_setting(
    store: Store, *, vary: str | None = None, cache_control: str | None = None
) -> object:
    """``/page`` loads the session (and saves it when asked), with the app's own headers."""

    async def page(request: Request) -> Response:
        session = await store.get(request)
        if "save" in request.query_params:
            session.set("n", 1)
            await session.save()
        if "destroy" in request.query_params:
            await session.destroy()
        response = PlainTextResponse("page")
        if vary is not None:
            response.headers["Vary"] = vary
        if cache_control is not None:
            response.headers["Cache-Control"] = cache_control
        return response

    async def static(request: Request) -> Response:
        response = PlainTextResponse("static")
        if vary is not None:
            response.headers["Vary"] = vary
        return response

    return make_app(store, routes=[Route("/page", page), Route("/static", static)])


async def test_r23_a_read_session_adds_vary_cookie() -> None:
    async with Store() as store:
        _, headers, _ = await raw_http(app_setting(store), "/page")
    assert vary_of(headers) == ["Cookie"]
    assert header(headers, b"cache-control") == []  # nothing was set or expired


async def test_r23_each_header_source_is_named_and_the_cookie_too() -> None:
    config = Config(key_lookup="cookie:sid, header:X-Session-ID, query:sid, header:X-Alt")
    async with Store(config) as store:
        _, headers, _ = await raw_http(app_setting(store), "/page")
    assert vary_of(headers) == ["Cookie", "x-session-id", "x-alt"]


async def test_r23_a_header_only_lookup_varies_on_that_header_alone() -> None:
    async with Store(Config(key_lookup="header:X-Session-ID")) as store:
        _, headers, _ = await raw_http(app_setting(store), "/page")
    assert vary_of(headers) == ["x-session-id"]


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        ("Accept-Encoding", ["Accept-Encoding", "Cookie", "x-session-id"]),
        ("accept-language, COOKIE", ["accept-language", "COOKIE", "x-session-id"]),
        ("X-Session-Id", ["X-Session-Id", "Cookie"]),
        ("Cookie, X-Session-ID", ["Cookie", "X-Session-ID"]),
    ],
)
async def test_r23_the_apps_own_vary_is_kept_and_never_doubled(
    app_vary: str, expected: list[str]
) -> None:
    async with Store(Config(key_lookup="cookie:sid, header:X-Session-ID")) as store:
        _, headers, _ = await raw_http(app_setting(store, vary=app_vary), "/page")
    assert vary_of(headers) == expected
    assert len(header(headers, b"vary")) == 1


async def test_r23_nothing_is_added_to_vary_star() -> None:
    async with Store() as store:
        _, headers, _ = await raw_http(app_setting(store, vary="*"), "/page")
    assert vary_of(headers) == ["*"]


async def test_r23_a_request_that_never_loads_its_session_gets_neither_header() -> None:
    async with Store() as store:
        _, headers, _ = await raw_http(app_setting(store, vary="Accept"), "/static")
    assert vary_of(headers) == ["Accept"]
    assert header(headers, b"cache-control") == []


@pytest.mark.parametrize("action", ["save", "destroy"])
async def test_r23_setting_or_expiring_the_cookie_makes_the_response_private(action: str) -> None:
    async with Store() as store:
        app = app_setting(store)
        async with client(app) as http:
            session_id = (await do(http, ["set", "n", 0], ["save"])).json()["id"]
        _, headers, _ = await raw_http(
            app, "/page", query_string=action.encode(), headers=[
                (b"cookie", f"session_id={session_id}".encode())
            ],
        )  # fmt: skip
    assert header(headers, b"set-cookie")
    assert header(headers, b"cache-control") == [b"private"]
    assert vary_of(headers) == ["Cookie"]


async def test_r23_the_apps_own_cache_control_is_left_as_it_is() -> None:
    async with Store() as store:
        app = app_setting(store, cache_control="no-store")
        _, headers, _ = await raw_http(app, "/page", query_string=b"save")
    assert header(headers, b"set-cookie")
    assert header(headers, b"cache-control") == [b"no-store"]


async def test_r23_a_header_source_alone_is_not_made_private() -> None:
    """No cookie is set: the id goes back in a response header the app chose to read."""
    async with Store(Config(key_lookup="header:X-Session-ID")) as store:
        _, headers, _ = await raw_http(app_setting(store), "/page", query_string=b"save")
    assert header(headers, b"x-session-id")
    assert header(headers, b"cache-control") == []
    assert vary_of(headers) == ["x-session-id"]


async def test_r23_auto_save_and_renewals_carry_the_headers_too() -> None:
    async with Store() as store, client(make_app(store, auto_save=True)) as http:
        response = await do(http, ["set", "n", 1])
        assert response.headers["vary"] == "Cookie"
        assert response.headers["cache-control"] == "private"
        read = await http.get("/read", headers=cookie_header(response.json()["id"]))
        assert read.headers["vary"] == "Cookie"
        assert "cache-control" not in read.headers
