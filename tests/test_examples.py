"""The runnable examples in examples/ work as their docstrings say."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from types import ModuleType

import httpx
import pytest


def load(name: str) -> ModuleType:
    return importlib.import_module(f"examples.{name}")


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(name: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=load(name).app)
        client = httpx.AsyncClient(transport=transport, base_url="http://example.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize("name", ["starlette_app", "litestar_app"])
async def test_visits_are_counted_per_client_then_logout_forgets(
    client_for: Callable[[str], httpx.AsyncClient], name: str
) -> None:
    first, second = client_for(name), client_for(name)
    assert [(await first.get("/")).json()["visits"] for _ in range(3)] == [1, 2, 3]
    assert (await second.get("/")).json()["visits"] == 1
    response = await first.post("/logout")
    assert response.status_code == 200
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert (await first.get("/")).json()["visits"] == 1


async def test_fastapi_login_regenerates_and_logout_forgets(
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    client = client_for("fastapi_app")
    assert (await client.get("/me")).json() == {"user": None}
    assert "set-cookie" not in (await client.get("/me")).headers  # untouched: no cookie
    response = await client.post("/login", json={"name": "ada"})
    assert response.json() == {"hello": "ada"}
    assert "HttpOnly" in response.headers["set-cookie"]
    assert (await client.get("/me")).json() == {"user": "ada"}
    await client.post("/logout")
    assert (await client.get("/me")).json() == {"user": None}
