"""A real browser walks the demo app: headless Chromium, driven by Playwright.

What only a browser can tell: that scripts cannot read the HttpOnly session cookie, that the
cookie comes back on navigation, that regenerating changes it, and that logging out makes
the browser drop it (the request after the log-out carries no session cookie at all); and
that "sign out this one" in one browser ends the session of another: the other still sends
its cookie, and the server no longer knows it (S10).
Chromium is Debian's package, installed by the test when missing and running as root; the
test skips, saying why, only where it cannot be installed (and never under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

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
def chromium() -> Iterator[Browser]:
    """Headless Chromium; each context it opens is a browser of its own (own cookie jar)."""
    executable = require_binary("chromium", "chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


def open_context(chromium: Browser) -> BrowserContext:
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def browser(chromium: Browser) -> BrowserContext:
    """One browser with a fresh profile: no cookies yet."""
    return open_context(chromium)


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


def sign_in(context: BrowserContext, demo: str, name: str) -> Page:
    page = context.new_page()
    page.goto(demo + "/")
    page.fill("#name", name)
    page.click("#login")
    page.wait_for_selector("#logout")
    assert text(page, "greeting") == f"Hello, {name}!"
    return page


def test_a_browser_signs_out_another_browser_of_the_same_user(demo: str, chromium: Browser) -> None:
    laptop_browser, phone_browser = open_context(chromium), open_context(chromium)
    laptop = sign_in(laptop_browser, demo, "Ada")
    phone = sign_in(phone_browser, demo, "Ada")
    phone_cookie = session_cookie(phone_browser)
    assert phone_cookie is not None
    phone_id = phone_cookie["value"]

    laptop.reload()
    assert laptop.locator("#signed-in tr.session").count() == 2
    assert laptop.locator("tr.this-browser").count() == 1
    assert "this browser" in laptop.inner_text("tr.this-browser")
    assert str(phone_id) not in laptop.content(), "the panel shows no other session's id"

    with laptop.expect_navigation():
        laptop.click("tr.other-browser button.sign-out")
    assert laptop.locator("#signed-in tr.session").count() == 1
    assert laptop.locator("tr.other-browser").count() == 0
    assert text(laptop, "greeting") == "Hello, Ada!"

    # The phone still holds and sends its cookie; the server has ended that session.
    cookies_sent: list[str] = []
    phone.on(
        "request",
        lambda request: cookies_sent.append(request.all_headers().get("cookie", "")),
    )
    phone.reload()
    assert cookies_sent, "the reload sent no request"
    assert f"{COOKIE}={phone_id}" in cookies_sent[0]
    assert "not logged in" in text(phone, "greeting")
    assert phone.locator("#login-form").count() == 1
    assert phone.locator("#signed-in").count() == 0
    after = session_cookie(phone_browser)
    assert after is None or after["value"] != phone_id

    laptop.reload()
    assert text(laptop, "greeting") == "Hello, Ada!"
    assert laptop.locator("#signed-in tr.session").count() == 1
