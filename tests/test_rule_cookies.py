"""R6-R11: what a response writes back, and the id changes that decide it."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.support.apps import (
    client,
    cookie_header,
    do,
    make_app,
    serve,
    serve_counting,
    session_cookie,
    set_cookies,
    storage_key,
)
from tests.support.backends import Backend

# Every test runs once per app flavour: ASGI, plain WSGI and Flask (S11).
pytestmark = pytest.mark.usefixtures("app_flavour")

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CHAIN = "cookie:session_id, header:X-Session-ID, query:sid"


# -- R6 ---------------------------------------------------------------------------------


async def test_r6_default_save_sets_exactly_one_cookie(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (_, http):
        response = await do(http, ["set", "user", "ann"], ["save"])
    lines = response.headers.get_list("set-cookie")
    assert len(lines) == 1
    (cookie,) = set_cookies(response)
    assert cookie.name == "session_id"
    assert len(cookie.value) == 36
    assert UUID.fullmatch(cookie.value)
    assert cookie.value == response.json()["id"]
    assert sorted(cookie.attribute_names()) == ["HttpOnly", "Max-Age", "Path", "SameSite"]
    assert cookie.get("HttpOnly") is None  # a flag, no value
    assert cookie.get("Max-Age") == "86400"
    assert cookie.get("Path") == "/"
    assert cookie.get("SameSite") == "Lax"
    assert not cookie.has("Expires")
    assert not cookie.has("Secure")
    assert not cookie.has("Domain")
    assert "x-session-id" not in response.headers


async def test_r6_save_stores_with_the_expiry_as_ttl(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, expiration=90) as (_, storage, http):
        response = await do(http, ["set", "n", 1], ["save"])
        session_id = response.json()["id"]
        assert storage.writes() == [(storage_key(session_id), 90)]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            {"cookie_domain": "example.com"},
            {"Path": "/", "Max-Age": "86400", "Domain": "example.com", "HttpOnly": None,
             "SameSite": "Lax"},
            id="domain",
        ),
        pytest.param(
            {"cookie_path": "/app", "cookie_secure": True},
            {"Path": "/app", "Max-Age": "86400", "Secure": None, "HttpOnly": None,
             "SameSite": "Lax"},
            id="path-secure",
        ),
        pytest.param(
            {"cookie_same_site": "strict", "cookie_http_only": False},
            {"Path": "/", "Max-Age": "86400", "SameSite": "Strict"},
            id="strict-not-http-only",
        ),
        pytest.param(
            {"cookie_same_site": "NONE"},
            {"Path": "/", "Max-Age": "86400", "Secure": None, "HttpOnly": None,
             "SameSite": "None"},
            id="same-site-none-forces-secure",
        ),
        pytest.param(
            {"cookie_partitioned": True},
            {"Path": "/", "Max-Age": "86400", "Secure": None, "HttpOnly": None,
             "SameSite": "Lax", "Partitioned": None},
            id="partitioned-forces-secure",
        ),
        pytest.param(
            {"cookie_session_only": True},
            {"Path": "/", "HttpOnly": None, "SameSite": "Lax"},
            id="session-only-has-no-max-age",
        ),
        pytest.param(
            {"expiration": 1.5},
            {"Path": "/", "Max-Age": "2", "HttpOnly": None, "SameSite": "Lax"},
            id="max-age-rounds-up",
        ),
    ],
)  # fmt: skip
async def test_r6_cookie_attributes_follow_the_config(
    storage_backend: Backend, config: dict[str, Any], expected: dict[str, str | None]
) -> None:
    async with serve(storage_backend, **config) as (_, http):
        response = await do(http, ["save"])
    cookie = session_cookie(response)
    assert cookie is not None
    assert dict(cookie.attributes) == expected
    assert len(cookie.attributes) == len(expected)  # no attribute twice


async def test_r6_max_age_is_the_session_expiry_rounded_up(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (_, http):
        response = await do(http, ["set_expiry", 2.2], ["save"])
    cookie = session_cookie(response)
    assert cookie is not None
    assert cookie.max_age == 3


async def test_r6_header_source_writes_the_id_into_a_response_header(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, key_lookup="header:X-Session-ID") as (store, http):
        response = await do(http, ["set", "n", 1], ["save"])
        session_id = response.json()["id"]
        assert response.headers.get_list("x-session-id") == [session_id]
        assert "set-cookie" not in response.headers
        loaded = await http.get("/read", headers={"X-Session-ID": session_id})
        assert loaded.json()["data"] == {"n": 1}
        assert await store.get_by_id(session_id) is not None


async def test_r6_query_source_writes_nothing(storage_backend: Backend) -> None:
    async with serve(storage_backend, key_lookup="query:sid") as (store, http):
        response = await do(http, ["set", "n", 1], ["save"])
        session_id = response.json()["id"]
        assert "set-cookie" not in response.headers
        assert "sid" not in response.headers
        assert await store.get_by_id(session_id) is not None
        loaded = await http.get("/read", params={"sid": session_id})
        assert loaded.json()["data"] == {"n": 1}


async def test_r6_every_cookie_and_header_source_of_the_chain_is_written(
    storage_backend: Backend,
) -> None:
    lookup = "cookie:sid_a, header:X-Session-ID, cookie:sid_b, header:X-Other, query:sid"
    async with serve(storage_backend, key_lookup=lookup) as (_, http):
        response = await do(http, ["save"])
    session_id = response.json()["id"]
    cookies = set_cookies(response)
    assert [(c.name, c.value) for c in cookies] == [("sid_a", session_id), ("sid_b", session_id)]
    assert response.headers.get_list("x-session-id") == [session_id]
    assert response.headers.get_list("x-other") == [session_id]


# -- R7 ---------------------------------------------------------------------------------


async def test_r7_an_id_from_the_query_string_is_never_written_back(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, key_lookup=CHAIN) as (store, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        async with client(make_app(store)) as stranger:
            response = await do(stranger, ["set", "n", 2], ["save"], params={"sid": session_id})
        body = response.json()
        assert body["id"] == session_id
        assert body["fresh"] is False
        assert "set-cookie" not in response.headers
        assert "x-session-id" not in response.headers
        stored = await store.get_by_id(session_id)
        assert stored is not None
        assert stored.get("n") == 2  # the save itself happened


async def test_r7_a_fresh_session_is_written_to_every_cookie_and_header_source(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, key_lookup=CHAIN) as (_, http):
        response = await do(http, ["save"], params={"sid": "unknown-query-id"})
    body = response.json()
    assert body["id"] != "unknown-query-id"
    assert body["fresh"] is True
    cookie = session_cookie(response)
    assert cookie is not None
    assert cookie.value == body["id"]
    assert response.headers.get_list("x-session-id") == [body["id"]]


async def test_r7_regenerating_a_query_session_writes_the_new_id(storage_backend: Backend) -> None:
    async with serve(storage_backend, key_lookup=CHAIN) as (store, http):
        old_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        async with client(make_app(store)) as stranger:
            response = await do(stranger, ["regenerate"], ["save"], params={"sid": old_id})
    new_id = response.json()["id"]
    assert new_id != old_id
    cookie = session_cookie(response)
    assert cookie is not None
    assert cookie.value == new_id
    assert response.headers.get_list("x-session-id") == [new_id]


# -- R8 ---------------------------------------------------------------------------------


def assert_expired(response: Any, name: str = "session_id") -> None:
    cookie = session_cookie(response, name)
    assert cookie is not None
    assert cookie.value == ""
    assert cookie.max_age == 0
    expires = cookie.get("Expires")
    assert expires is not None
    assert parsedate_to_datetime(expires).year == 1970


async def test_r8_destroy_deletes_clears_and_expires_the_cookie(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["destroy"], ["state"], ["stored", session_id])
        body = response.json()
        assert body["data"] == {}
        assert body["log"][1] is False  # deleted during the request
        assert_expired(response)
        assert await store.get_by_id(session_id) is None
        # the browser dropped the cookie: the next request starts over
        assert (await http.get("/read")).json()["fresh"] is True


async def test_r8_the_expiring_cookie_keeps_the_cookie_attributes(
    storage_backend: Backend,
) -> None:
    config = {"cookie_domain": "example.com", "cookie_path": "/app", "cookie_same_site": "None"}
    async with serve(storage_backend, **config) as (_, http):
        saved = session_cookie(await do(http, ["save"]))
        destroyed = session_cookie(await do(http, ["destroy"], headers=cookie_header("any")))
    assert saved is not None
    assert destroyed is not None
    assert destroyed.name == saved.name
    kept = {k: v for k, v in saved.attributes if k != "Max-Age"}
    assert {k: v for k, v in destroyed.attributes if k not in ("Max-Age", "Expires")} == kept
    assert destroyed.max_age == 0


async def test_r8_destroy_and_reset_send_no_header_for_a_header_source(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, key_lookup="cookie:session_id, header:X-Session-ID") as (
        _,
        http,
    ):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        for action in ("destroy", "reset"):
            response = await do(http, [action], headers={"X-Session-ID": session_id})
            assert "x-session-id" not in response.headers
            assert_expired(response)


async def test_r8_save_after_destroy_starts_a_new_session(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        old_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["destroy"], ["set", "user", "bob"], ["save"])
        body = response.json()
        assert body["id"] != old_id
        assert body["fresh"] is True
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.value == body["id"]
        assert cookie.max_age == 86400
        assert await store.get_by_id(old_id) is None
        stored = await store.get_by_id(body["id"])
        assert stored is not None
        assert {k: stored[k] for k in stored} == {"user": "bob"}


# -- R9 ---------------------------------------------------------------------------------


async def test_r9_regenerate_deletes_the_old_entry_at_once_and_keeps_the_data(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        old_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["regenerate"], ["stored", old_id], ["state"])
        body = response.json()
        assert body["log"][0] is False
        assert body["id"] != old_id
        assert body["fresh"] is True
        assert body["data"] == {"user": "ann"}
        assert "set-cookie" not in response.headers  # explicit mode: nothing until save()
        assert await store.get_by_id(body["id"]) is None


async def test_r9_save_after_regenerate_stores_under_the_new_id(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        old_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["regenerate"], ["save"])
        new_id = response.json()["id"]
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.value == new_id
        assert await store.get_by_id(old_id) is None
        stored = await store.get_by_id(new_id)
        assert stored is not None
        assert stored.get("user") == "ann"
        follow = (await http.get("/read")).json()
        assert follow["id"] == new_id
        assert follow["data"] == {"user": "ann"}


# -- R10 --------------------------------------------------------------------------------


async def test_r10_reset_clears_deletes_expires_and_issues_a_new_id(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend) as (store, http):
        old_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["reset"], ["stored", old_id])
        body = response.json()
        assert body["id"] != old_id
        assert body["fresh"] is True
        assert body["data"] == {}
        assert body["log"] == [False]
        assert_expired(response)
        assert await store.get_by_id(old_id) is None


async def test_r10_save_after_reset_sets_the_new_cookie_instead(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        old_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["reset"], ["set", "cart", [1]], ["save"])
        new_id = response.json()["id"]
        assert new_id != old_id
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.value == new_id
        assert cookie.max_age == 86400
        stored = await store.get_by_id(new_id)
        assert stored is not None
        assert stored.keys() == ["cart"]


# -- R11 --------------------------------------------------------------------------------

SEQUENCES = [
    pytest.param([["save"], ["save"]], "id", id="save-save"),
    pytest.param([["save"], ["destroy"]], "expired", id="save-destroy"),
    pytest.param([["destroy"], ["save"]], "id", id="destroy-save"),
    pytest.param([["save"], ["reset"]], "expired", id="save-reset"),
    pytest.param([["reset"], ["save"]], "id", id="reset-save"),
    pytest.param([["save"], ["reset"], ["save"], ["destroy"]], "expired", id="long-expired"),
    pytest.param([["save"], ["regenerate"], ["save"], ["regenerate"], ["save"]], "id", id="regen"),
    pytest.param([["destroy"], ["reset"], ["save"]], "id", id="destroy-reset-save"),
]


@pytest.mark.parametrize(("actions", "outcome"), SEQUENCES)
@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_r11_last_cookie_action_wins(
    storage_backend: Backend, actions: list[list[str]], outcome: str, auto_save: bool
) -> None:
    lookup = "cookie:session_id, cookie:backup_id"
    async with serve(storage_backend, auto_save=auto_save, key_lookup=lookup) as (store, http):
        first_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        response = await do(http, ["set", "n", 1], *actions)
        final_id = response.json()["id"]
        for name in ("session_id", "backup_id"):
            cookie = session_cookie(response, name)  # at most one each, or this fails
            assert cookie is not None
            if outcome == "expired":
                assert_expired(response, name)
            else:
                assert cookie.value == final_id
                assert cookie.max_age == 86400
        assert len(response.headers.get_list("set-cookie")) == 2
        if final_id != first_id:
            assert await store.get_by_id(first_id) is None


async def test_r8_an_expiry_set_after_destroy_holds_for_the_new_session(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, expiration=100) as (_, storage, http):
        await do(http, ["set_expiry", 30], ["save"])
        storage.calls.clear()
        reset_expiry = await do(http, ["destroy"], ["state"], ["set_expiry", 5], ["save"])
        assert reset_expiry.json()["log"][0]["expiry"] == 100.0  # the destroyed one's 30 s went
        cookie = session_cookie(reset_expiry)
        assert cookie is not None
        assert cookie.max_age == 5
        assert [ttl for _, ttl in storage.writes()] == [5.0]
        plain = session_cookie(await do(http, ["destroy"], ["save"]))
        assert plain is not None
        assert plain.max_age == 100


@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
@pytest.mark.parametrize("data", [[], [["set", "n", 1]]], ids=["empty", "with-data"])
async def test_r9_a_cookie_saved_before_regenerate_is_not_sent(
    storage_backend: Backend, auto_save: bool, data: list[list[Any]]
) -> None:
    async with serve(storage_backend, auto_save=auto_save) as (store, http):
        response = await do(http, *data, ["save"], ["state"], ["regenerate"])
        body = response.json()
        old_id = body["log"][0]["id"]
        assert await store.get_by_id(old_id) is None
        cookie = session_cookie(response)
        if auto_save and data:  # changed and not empty: auto-saved under the new id
            assert cookie is not None
            assert cookie.value == body["id"]
        else:  # never a cookie for the id regenerate just deleted
            assert cookie is None
