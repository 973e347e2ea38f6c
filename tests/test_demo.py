"""`sessionware demo` really serves: a process, walked page by page with a cookie jar."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx


def field(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match is not None, f"#{element_id} missing from the page"
    return match.group(1)


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
