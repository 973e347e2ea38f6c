"""A real browser walks the demo app: headless Chromium, driven by Playwright.

What only a browser can tell: that scripts cannot read the HttpOnly session cookie, that the
cookie comes back on navigation, that regenerating changes it, and that logging out makes
the browser drop it (the request after the log-out carries no session cookie at all).
Chromium is Debian's package, installed by the test when missing and running as root; the
test skips, saying why, only where it cannot be installed (and never under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.support.processes import require_binary

COOKIE = "session_id"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile of its own."""
    chromium = require_binary("chromium", "chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    """The session cookie in the browser's own store, or None."""
    found = [dict(c) for c in context.cookies() if c["name"] == COOKIE]
    assert len(found) <= 1, found
    return found[0] if found else None


def text(page: Page, element_id: str) -> str:
    return page.inner_text(f"#{element_id}").strip()


def test_a_browser_logs_in_counts_regenerates_and_logs_out(
    demo: str, browser: BrowserContext
) -> None:
    page = browser.new_page()

    page.goto(demo + "/")
    assert text(page, "fresh") == "true"
    assert text(page, "visits") == "1"
    cookie = session_cookie(browser)
    assert cookie is not None, "the first visit set no session cookie"
    assert cookie["value"] == text(page, "session-id")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    first_id = cookie["value"]

    # Scripts can use cookies on this page, yet never see the session one.
    page.evaluate("document.cookie = 'probe=1; path=/'")
    visible = page.evaluate("document.cookie")
    assert "probe=1" in visible
    assert COOKIE not in visible
    assert str(first_id) not in visible

    # The cookie survives navigation: same session, counting.
    page.goto(demo + "/")
    assert text(page, "session-id") == first_id
    assert text(page, "fresh") == "false"
    assert text(page, "visits") == "2"

    page.fill("#name", "Ada")
    page.click("#login")
    page.wait_for_selector("#logout")
    assert text(page, "greeting") == "Hello, Ada!"
    login_cookie = session_cookie(browser)
    assert login_cookie is not None
    logged_in_id = login_cookie["value"]
    assert logged_in_id != first_id, "logging in must issue a new id (session fixation)"
    assert text(page, "session-id") == logged_in_id
    assert COOKIE not in page.evaluate("document.cookie")

    page.goto(demo + "/")
    visits = int(text(page, "visits"))
    page.goto(demo + "/")
    assert int(text(page, "visits")) == visits + 1
    assert text(page, "session-id") == logged_in_id

    page.click("#regenerate")
    page.wait_for_selector("#logout")
    regenerated = session_cookie(browser)
    assert regenerated is not None
    assert regenerated["value"] != logged_in_id
    assert text(page, "session-id") == regenerated["value"]
    assert text(page, "greeting") == "Hello, Ada!"
    assert regenerated["httpOnly"] is True

    # Log out: the browser drops the cookie, so the page it is sent to next carries none.
    cookies_sent: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            cookies_sent.append(request.all_headers().get("cookie"))
            if request.url.rstrip("/") == demo
            else None
        ),
    )
    page.click("#logout")
    page.wait_for_selector("#login-form")
    assert cookies_sent, "the log-out redirect was not followed"
    assert all(COOKIE not in (sent or "") for sent in cookies_sent), cookies_sent
    assert text(page, "fresh") == "true"
    assert "not logged in" in text(page, "greeting")
    after = session_cookie(browser)
    assert after is None or after["value"] not in {first_id, logged_in_id, regenerated["value"]}
