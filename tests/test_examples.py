"""The runnable examples in examples/ work as their docstrings say."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.support.flavours import ThreadedWSGITransport

ROOT = Path(__file__).parent.parent


def load(name: str) -> ModuleType:
    return importlib.import_module(f"examples.{name}")


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(name: str) -> httpx.AsyncClient:
        app = load(name).app
        transport: httpx.AsyncBaseTransport
        if name in ("flask_app", "wsgi_app"):
            transport = ThreadedWSGITransport(app)
        else:
            transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://example.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize("name", ["starlette_app", "litestar_app", "wsgi_app", "flask_app"])
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


async def test_flask_login_regenerates_and_the_session_is_flasks_own(
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    client = client_for("flask_app")
    first = await client.get("/")
    assert first.json() == {"visits": 1, "user": None}
    old_id = client.cookies["session_id"]
    response = await client.post("/login", json={"name": "ada"})
    assert response.json() == {"hello": "ada"}
    assert client.cookies["session_id"] != old_id  # regenerated
    assert (await client.get("/")).json() == {"visits": 2, "user": "ada"}
    await client.post("/logout")
    assert (await client.get("/")).json() == {"visits": 1, "user": None}


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


async def test_fastapi_devices_lists_a_users_sessions_and_logs_out_everywhere_else(
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    laptop, phone, tablet, grace = (client_for("fastapi_devices") for _ in range(4))
    assert (await laptop.get("/sessions")).status_code == 401
    for device in (laptop, phone, tablet):
        assert (await device.post("/login", json={"user_id": "ada"})).json() == {"hello": "ada"}
    await grace.post("/login", json={"user_id": "grace"})

    listed = (await laptop.get("/sessions")).json()
    assert [entry["this_device"] for entry in listed].count(True) == 1
    assert len(listed) == 3
    assert all(entry["created"] < entry["expires_at"] for entry in listed)

    assert (await laptop.post("/sessions/log-out-others")).json() == {"logged_out": 2}
    assert [entry["this_device"] for entry in (await laptop.get("/sessions")).json()] == [True]
    assert (await phone.get("/sessions")).status_code == 401
    assert (await tablet.get("/sessions")).status_code == 401
    assert len((await grace.get("/sessions")).json()) == 1


def test_each_example_the_readme_shows_is_the_file_it_names() -> None:
    """A README block titled with a path is that file, byte for byte, so the code a reader
    copies is the code the tests above run."""
    blocks = re.findall(
        r'```python title="([^"]+)"\n(.*?)```', (ROOT / "README.md").read_text(), re.S
    )
    assert "examples/fastapi_devices.py" in dict(blocks)
    for path, code in blocks:
        assert code == (ROOT / path).read_text(), f"README's {path} differs from the file"
