"""Calling a WSGI app in-process, as `driver.Client` calls an ASGI one: no server, no socket.

Each request is a new environ (a copy of a prepared one, as a server would build), a
`start_response` that keeps the status and the session cookie, and the body read to its
end and closed. Everything here is sync: it runs in a thread with no event loop, as a WSGI
server's worker thread does, so that sessionware's sync bridge drives its own loop.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

from .driver import CheckFailed
from .scenarios import PATHS, BenchApp, check_client

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_BASE_ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "bench.local",
    "HTTP_USER_AGENT": "sessionware-bench",
    "HTTP_ACCEPT": "*/*",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}
_NO_COOKIE_VALUES = frozenset({"", "''", '""', "null"})


class WsgiClient:
    """One browser on one path of a WSGI app: it keeps the session cookie as a browser would.
    Its counters are those of `driver.Client`, so the same checks apply."""

    __slots__ = (
        "_app",
        "_environ",
        "_prefix",
        "body",
        "cookie",
        "cookies_set",
        "failures",
        "keep_cookies",
        "requests",
    )

    def __init__(
        self,
        app: WSGIApp,
        path: str,
        cookie_name: str,
        *,
        cookie: str | None = None,
        keep_cookies: bool = True,
    ) -> None:
        self._app = app
        self._prefix = cookie_name + "="
        self._environ = {**_BASE_ENVIRON, "PATH_INFO": path}
        self.keep_cookies = keep_cookies
        self.cookie: str | None = None
        self._use_cookie(cookie)
        self.body = b""
        self.requests = 0
        self.failures = 0
        self.cookies_set = 0

    def request(self) -> None:
        self.requests += 1
        environ = self._environ.copy()
        environ["wsgi.input"] = io.BytesIO()
        body = self._app(environ, self._start_response)
        try:
            self.body = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def run(self, count: int) -> None:
        request = self.request
        for _ in range(count):
            request()

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if not status.startswith("200"):
            self.failures += 1
        for name, value in headers:
            if value.startswith(self._prefix) and name.lower() == "set-cookie":
                self._take_cookie(value)
        return _no_write

    def _take_cookie(self, header: str) -> None:
        self.cookies_set += 1
        if self.keep_cookies:
            pair = header.split(";", 1)[0]
            self._use_cookie(None if pair[len(self._prefix) :] in _NO_COOKIE_VALUES else pair)

    def _use_cookie(self, pair: str | None) -> None:
        self.cookie = pair
        if pair is None:
            self._environ.pop("HTTP_COOKIE", None)
        else:
            self._environ["HTTP_COOKIE"] = pair


def _no_write(data: bytes) -> object:
    raise RuntimeError("the benchmark's apps return their body; none calls write()")


class WsgiRun:
    """One WSGI app in one scenario, timed by `driver.measure_sync`."""

    width = 1

    def __init__(self, bench: BenchApp, scenario: str, client: WsgiClient) -> None:
        self.bench = bench
        self.scenario = scenario
        self.client = client
        self.name = bench.name

    def run(self, count: int) -> None:
        self.client.run(count)

    def check(self) -> None:
        check_client(self.bench, self.scenario, self.client)  # type: ignore[arg-type]


def login_cookie(bench: BenchApp) -> str | None:
    client = WsgiClient(bench.app, PATHS["login"], bench.cookie_name)
    client.request()
    if bench.sessions and client.cookie is None:
        raise CheckFailed(f"{bench.name}: a login set no session cookie")
    return client.cookie


def scenario_client(bench: BenchApp, scenario: str) -> WsgiClient:
    """A client for `scenario`: logged in (its own session) unless it is the login itself."""
    path = PATHS[scenario]
    if scenario == "login":
        return WsgiClient(bench.app, path, bench.cookie_name, keep_cookies=False)
    return WsgiClient(bench.app, path, bench.cookie_name, cookie=login_cookie(bench))
