"""The four request scenarios, the apps measured, and the checks that prove each answer right."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .driver import CheckFailed, Client

SCENARIOS: dict[str, str] = {
    "untouched": "valid cookie, the handler ignores the session",
    "read": "valid cookie, the handler reads a key",
    "counter": "read, increment, save",
    "login": "no cookie, two keys set, saved",
}
PATHS = {name: f"/{name}" for name in SCENARIOS}
USER = "alice"


async def _nothing() -> None:
    return None


@dataclass
class BenchApp:
    """One app under test (ASGI, or WSGI for the Flask section), with what the report needs
    to know about it."""

    name: str
    family: str  # "bare", "sessionware", "starsessions", "starlette-cookie", "litestar", …
    app: Any  # an ASGI app; a WSGI app in the Flask section
    cookie_name: str
    baseline: str  # the bare app whose cost this one adds to
    backend: str | None = None
    mode: str | None = None
    sessions: bool = True
    close: Callable[[], Awaitable[None]] = field(default=_nothing)
    scenarios: tuple[str, ...] | None = None  # None: every scenario

    def runs(self, scenario: str) -> bool:
        return self.scenarios is None or scenario in self.scenarios


class ScenarioRun:
    """One app in one scenario: a client, and the check of what the client got back."""

    width = 1

    def __init__(self, bench: BenchApp, scenario: str, client: Client) -> None:
        self.bench = bench
        self.scenario = scenario
        self.client = client
        self.name = bench.name

    async def run(self, count: int) -> None:
        await self.client.run(count)

    def check(self) -> None:
        check_client(self.bench, self.scenario, self.client)


def check_client(bench: BenchApp, scenario: str, client: Client) -> None:
    """Raise CheckFailed unless the last answer is exactly what this scenario must give."""
    where = f"{bench.name}, {scenario}"
    if client.failures:
        raise CheckFailed(f"{where}: {client.failures} responses were not 200")
    body = client.body
    if scenario == "untouched" and body != b"ok":
        raise CheckFailed(f"{where}: answered {body!r}, not b'ok'")
    if scenario == "read" and body != USER.encode():
        raise CheckFailed(f"{where}: read {body!r}, not the logged-in user")
    if scenario == "counter":
        expected = client.requests
        if body != str(expected).encode():
            raise CheckFailed(f"{where}: the counter is {body!r} after {expected} increments")
    if scenario == "login":
        expected = client.requests if bench.sessions else 0
        if client.cookies_set != expected:
            raise CheckFailed(
                f"{where}: {client.cookies_set} session cookies for {client.requests} logins"
            )


async def login_cookie(bench: BenchApp) -> bytes | None:
    """The cookie of a new logged-in session, as a browser would keep it."""
    client = Client(bench.app, PATHS["login"], bench.cookie_name)
    await client.request()
    if bench.sessions and client.cookie is None:
        raise CheckFailed(f"{bench.name}: a login set no session cookie")
    return client.cookie


async def scenario_client(bench: BenchApp, scenario: str) -> Client:
    """A client for `scenario`: logged in (its own session) unless it is the login itself."""
    path = PATHS[scenario]
    if scenario == "login":
        return Client(bench.app, path, bench.cookie_name, keep_cookies=False)
    cookie = await login_cookie(bench)
    return Client(bench.app, path, bench.cookie_name, cookie=cookie)
