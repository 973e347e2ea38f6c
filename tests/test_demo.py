"""`sessionware demo` really serves: a process, walked page by page with a cookie jar.

Its "where you are signed in" panel is the owner index (S10) at work: two clients that log
in under one name see each other's sessions (created, expiry, visits; never an id) and end
them one by one or all at once, on every storage that can keep the index.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.fake_dists import write_distribution


def field(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match is not None, f"#{element_id} missing from the page"
    return match.group(1)


def listed(page: str) -> list[str | None]:
    """The panel's rows, oldest first: None for this browser, else the session's handle."""
    rows = re.findall(r'<tr class="session (this|other)-browser">(.*?)</tr>', page, re.S)
    handles: list[str | None] = []
    for kind, row in rows:
        handle = re.search(r'name="handle" value="([^"]*)"', row)
        assert (kind == "other") == (handle is not None), row
        handles.append(handle.group(1) if handle else None)
    return handles


def others(page: str) -> list[str]:
    """The handles of the other sessions the panel lists, each with its sign-out button."""
    return [handle for handle in listed(page) if handle is not None]


@contextmanager
def signed_in(base_url: str, name: str) -> Iterator[httpx.Client]:
    """A client of its own (a browser, for the demo) logged in under `name`."""
    with httpx.Client(base_url=base_url, follow_redirects=True, timeout=10) as client:
        page = client.post("/login", data={"name": name}).text
        assert field(page, "greeting") == f"Hello, {name}!"
        yield client


def test_the_demo_walks_through_login_counter_regenerate_and_logout(demo: str) -> None:
    with httpx.Client(base_url=demo, follow_redirects=True, timeout=10) as client:
        page = client.get("/").text
        assert field(page, "fresh") == "true"
        assert field(page, "visits") == "1"
        assert "not logged in" in page
        first_id = field(page, "session-id")

        page = client.post("/login", data={"name": "Ada <script>"}).text
        assert "Hello, Ada &lt;script&gt;!" in page
        logged_in_id = field(page, "session-id")
        assert logged_in_id != first_id  # a new id on login
        assert field(page, "fresh") == "false"
        assert field(page, "keys") == "visits, name"

        page = client.get("/").text
        assert field(page, "session-id") == logged_in_id
        visits = int(field(page, "visits"))
        assert int(field(client.get("/").text, "visits")) == visits + 1

        page = client.post("/regenerate").text
        assert field(page, "session-id") != logged_in_id
        assert "Hello, Ada" in page

        response = client.post("/logout", follow_redirects=False)
        assert "Max-Age=0" in response.headers["set-cookie"]
        page = client.get("/").text
        assert "not logged in" in page
        assert field(page, "fresh") == "true"


def test_the_demo_refuses_an_unknown_storage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionware", "demo", "--storage", "nosuch://x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "no storage plugin named 'nosuch'" in result.stderr


STORAGES = ["memory", "sqlite", "redis", "memcache"]


@pytest.fixture(params=STORAGES)
def demo_on_each_storage(
    request: pytest.FixtureRequest, start_demo: Callable[[str], str], tmp_path: Path
) -> str:
    """The demo served on each first-party storage, as `./dev demo --storage URL` runs it."""
    label: str = request.param
    if importlib.util.find_spec(f"sessionware_{label}") is None:
        pytest.skip(f"the {label} storage plugin is not installed")
    if label == "sqlite":
        return start_demo(f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    if label == "redis":
        return start_demo(request.getfixturevalue("redis_server").url)
    if label == "memcache":
        return start_demo(f"memcache://{request.getfixturevalue('memcached_server').address}")
    return start_demo(label)


def test_the_panel_signs_out_another_browser_of_the_same_name(demo_on_each_storage: str) -> None:
    with (
        signed_in(demo_on_each_storage, "Ada") as laptop,
        signed_in(demo_on_each_storage, "Ada") as phone,
    ):
        phone_page = phone.get("/").text
        phone_id = field(phone_page, "session-id")
        assert len(listed(phone_page)) == 2
        assert len(others(phone_page)) == 1

        page = laptop.get("/").text
        assert len(listed(page)) == 2
        assert phone_id not in page, "a page shows no session id but its own"
        [phone_handle] = others(page)
        assert len(phone_handle) == 43

        page = laptop.post("/sessions/sign-out", data={"handle": phone_handle}).text
        assert listed(page) == [None]
        assert field(page, "greeting") == "Hello, Ada!"

        page = phone.get("/").text
        assert "not logged in" in page
        assert field(page, "fresh") == "true"
        assert field(page, "session-id") != phone_id


def test_sign_out_everywhere_else_keeps_only_this_browser(demo: str) -> None:
    with (
        signed_in(demo, "Ada") as laptop,
        signed_in(demo, "Ada") as phone,
        signed_in(demo, "Ada") as tablet,
        signed_in(demo, "Grace") as other_user,
    ):
        assert len(listed(laptop.get("/").text)) == 3
        page = laptop.post("/sessions/sign-out-others").text
        assert listed(page) == [None]
        assert field(page, "greeting") == "Hello, Ada!"
        assert "not logged in" in phone.get("/").text
        assert "not logged in" in tablet.get("/").text
        assert field(other_user.get("/").text, "greeting") == "Hello, Grace!"


def test_one_name_cannot_sign_out_the_sessions_of_another(demo: str) -> None:
    with (
        signed_in(demo, "Ada") as laptop,
        signed_in(demo, "Ada") as phone,
        signed_in(demo, "Grace") as grace,
    ):
        [phone_handle] = others(laptop.get("/").text)
        page = grace.post("/sessions/sign-out", data={"handle": phone_handle}).text
        assert field(page, "greeting") == "Hello, Grace!"
        assert field(phone.get("/").text, "greeting") == "Hello, Ada!"


def test_sign_out_this_one_never_signs_out_this_browser(demo: str) -> None:
    """Its own handle is not among the buttons; posted anyway, it is kept ("Log out" is
    how a browser signs itself out)."""
    with signed_in(demo, "Ada") as laptop, signed_in(demo, "Ada") as phone:
        [own_handle] = others(phone.get("/").text)  # the laptop, as the phone sees it
        page = laptop.post("/sessions/sign-out", data={"handle": own_handle}).text
        assert field(page, "greeting") == "Hello, Ada!"
        assert len(listed(page)) == 2


@pytest.mark.parametrize(
    "handle",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "+",  # standard base64, not URL-safe
        "A" * 42 + "=",
        '"><script>alert(1)</script>' + "A" * 16,
    ],
)
def test_a_posted_handle_that_is_not_one_is_refused(demo: str, handle: str) -> None:
    with signed_in(demo, "Ada") as laptop, signed_in(demo, "Ada") as phone:
        response = laptop.post("/sessions/sign-out", data={"handle": handle})
        assert response.status_code == 400
        assert "43 characters of URL-safe base64" in response.text
        assert "<script>" not in response.text
        assert field(phone.get("/").text, "greeting") == "Hello, Ada!"


def test_signed_out_visitors_have_no_panel_and_cannot_sign_anyone_out(demo: str) -> None:
    with signed_in(demo, "Ada") as laptop, httpx.Client(base_url=demo, timeout=10) as stranger:
        assert "signed-in" not in stranger.get("/").text
        response = stranger.post("/sessions/sign-out-others")
        assert response.status_code == 303
        assert field(laptop.get("/").text, "greeting") == "Hello, Ada!"


NO_CAS_STORAGE = '''
import pluggy

hookimpl = pluggy.HookimplMarker("sessionware")


class PlainStorage:
    """Five hooks and no storage_compare_and_set: it cannot keep an owner index."""

    def __init__(self, *, url=None):
        self._data = {}

    @hookimpl
    async def storage_get(self, key):
        return self._data.get(key)

    @hookimpl
    async def storage_set(self, key, value, expires_in):
        self._data[key] = bytes(value)

    @hookimpl
    async def storage_delete(self, key):
        self._data.pop(key, None)

    @hookimpl
    async def storage_reset(self):
        self._data.clear()

    @hookimpl
    async def storage_close(self):
        pass
'''


def test_on_a_storage_without_compare_and_set_the_demo_serves_and_says_why_no_panel(
    start_demo: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_distribution(
        tmp_path,
        "plain-storage",
        "1.0",
        {"plain": "plain_storage:PlainStorage"},
        {"plain_storage": NO_CAS_STORAGE},
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with signed_in(start_demo("plain"), "Ada") as client:
        page = client.get("/").text
        assert "Not available on this storage" in page
        assert "storage_compare_and_set" in page
        assert listed(page) == []
        assert int(field(page, "visits")) >= 2
        client.post("/logout")
        assert "not logged in" in client.get("/").text
