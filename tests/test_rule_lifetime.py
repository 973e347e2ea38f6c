"""R12, R13 and R22: how long a session lives, and when a read renews it."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import timedelta

import pytest

from tests.support.apps import (
    cookie_header,
    do,
    put_record,
    raw_get,
    serve,
    serve_counting,
    session_cookie,
)
from tests.support.backends import Backend


def sets(storage: object) -> list[tuple[str, str, float]]:
    return [call for call in storage.calls if call[0] == "set"]  # type: ignore[attr-defined]


# -- R12 --------------------------------------------------------------------------------


async def test_r12_set_expiry_changes_ttl_and_max_age_from_the_next_save(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend) as (_, storage, http):
        response = await do(http, ["set_expiry", 7], ["state"], ["save"])
        body = response.json()
        assert body["log"][0]["expiry"] == 7.0
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 7
        assert sets(storage) == [("set", body["id"], 7.0)]


async def test_r12_the_expiry_is_remembered_by_later_saves(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, expiration=60) as (_, storage, http):
        session_id = (await do(http, ["set_expiry", 5], ["save"])).json()["id"]
        storage.calls.clear()
        later = await do(http, ["state"], ["set", "n", 2], ["save"])
        assert later.json()["log"][0]["expiry"] == 5.0
        assert later.json()["id"] == session_id
        cookie = session_cookie(later)
        assert cookie is not None
        assert cookie.max_age == 5
        assert sets(storage) == [("set", session_id, 5.0)]


async def test_r12_a_short_expiry_ends_the_session_on_time(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set_expiry", 1], ["set", "n", 1], ["save"])).json()["id"]
        loaded = await http.get("/read", headers=cookie_header(session_id))
        assert loaded.json()["data"] == {"n": 1}
        await asyncio.sleep(1.3)
        body = (await http.get("/read", headers=cookie_header(session_id))).json()
        assert body["fresh"] is True
        assert body["id"] != session_id
        assert await store.get_by_id(session_id) is None


async def test_r12_expiry_reads_the_configured_expiration_until_changed(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, expiration=timedelta(minutes=3)) as (store, http):
        body = (await do(http, ["save"])).json()
        assert body["expiry"] == 180.0
        session = await store.get_by_id(body["id"])
        assert session is not None
        assert session.expiry == timedelta(minutes=3)
        session.set_expiry(timedelta(seconds=2.5))
        assert session.expiry == timedelta(seconds=2.5)
        session.set_expiry(4)
        assert session.expiry == timedelta(seconds=4)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (timedelta(0), ValueError),
        (timedelta(seconds=-3), ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("10", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
async def test_r12_set_expiry_rejects_what_is_not_a_positive_duration(
    storage_backend: Backend, value: object, error: type[Exception]
) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["save"])).json()["id"]
        session = await store.get_by_id(session_id)
        assert session is not None
        with pytest.raises(error, match="set_expiry"):
            session.set_expiry(value)  # type: ignore[arg-type]
        assert session.expiry == timedelta(hours=24)


# -- R13 --------------------------------------------------------------------------------


async def test_r13_a_session_not_saved_within_its_expiry_is_gone(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, expiration=2) as (store, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        await asyncio.sleep(0.5)  # 1.5 s of slack left, for a slow machine
        # explicit cookie headers: httpx's jar rounds a short Max-Age down to "now"
        read = (await http.get("/read", headers=cookie_header(session_id))).json()
        # reading does not save (explicit mode)
        assert read["id"] == session_id
        await asyncio.sleep(1.7)
        gone = (await http.get("/read", headers=cookie_header(session_id))).json()
        assert gone["fresh"] is True
        assert gone["id"] != session_id
        assert gone["data"] == {}
        assert await store.get_by_id(session_id) is None


async def test_r13_absolutely_expired_session_is_reset_on_load(storage_backend: Backend) -> None:
    async with serve(storage_backend, expiration=60, absolute_timeout=100) as (store, http):
        now = time.time()
        await put_record(
            store, "old-session", {"user": "ann"}, created=now - 101, expiry=60,
            expires_at=now + 50,
        )  # fmt: skip
        response = await http.get("/read", headers=cookie_header("old-session"))
        body = response.json()
        assert body["id"] != "old-session"
        assert body["fresh"] is True
        assert body["data"] == {}
        assert await raw_get(store, "old-session") is None  # deleted on load
        assert await store.get_by_id("old-session") is None


async def test_r13_stored_ttl_never_exceeds_the_remaining_absolute_lifetime(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, expiration=60, absolute_timeout=100) as (
        store,
        storage,
        http,
    ):
        now = time.time()
        await put_record(store, "aging", {"n": 1}, created=now - 95, expiry=60, expires_at=now + 30)
        storage.calls.clear()
        response = await do(http, ["set", "n", 2], ["save"], headers=cookie_header("aging"))
        assert response.json()["id"] == "aging"
        ((_, key, ttl),) = sets(storage)
        assert key == "aging"
        assert 3 < ttl <= 5
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == math.ceil(ttl)


async def test_r13_absolute_timeout_reached_during_a_request_resets_instead_of_saving(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, expiration=60, absolute_timeout=100) as (store, http):
        now = time.time()
        await put_record(
            store, "ending", {"user": "ann"}, created=now - 99.6, expiry=60, expires_at=now + 30
        )
        response = await do(
            http, ["set", "user", "bob"], ["sleep", 0.6], ["save"], headers=cookie_header("ending")
        )
        body = response.json()
        assert body["id"] != "ending"
        assert body["fresh"] is True
        assert body["data"] == {}
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 0
        assert await raw_get(store, "ending") is None
        assert await store.get_by_id(body["id"]) is None


async def test_r13_absolute_timeout_ends_an_active_session(storage_backend: Backend) -> None:
    # Saves at about 0, 0.6 and 1.2 s leave 1.2 s of slack before the 2.4 s limit, so a slow
    # machine cannot push the last save past it; the last sleep ends at 2.6 s at the earliest.
    async with serve_counting(storage_backend, expiration=2, absolute_timeout=2.4) as (
        _,
        storage,
        http,
    ):
        session_id = (await do(http, ["set", "n", 0], ["save"])).json()["id"]
        for step in (1, 2):
            await asyncio.sleep(0.6)
            kept = (
                await do(http, ["set", "n", step], ["save"], headers=cookie_header(session_id))
            ).json()
            assert kept["id"] == session_id
        ttls = [call[2] for call in sets(storage)]
        assert ttls[0] == 2
        assert ttls[0] > ttls[1] > ttls[2] > 0  # capped by what is left of the 2.4 s
        await asyncio.sleep(1.4)
        body = (await http.get("/read", headers=cookie_header(session_id))).json()
        assert body["fresh"] is True
        assert body["id"] != session_id


# -- R22 --------------------------------------------------------------------------------


async def test_r22_a_read_session_is_renewed_past_half_its_expiry(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True, expiration=3) as (
        _,
        storage,
        http,
    ):
        session_id = (await do(http, ["set", "user", "ann"])).json()["id"]
        storage.calls.clear()
        early = await http.get("/read", headers=cookie_header(session_id))
        assert session_cookie(early) is None
        assert storage.calls == [("get", session_id)]
        await asyncio.sleep(1.7)  # less than half of 3 s left
        storage.calls.clear()
        renewed = await http.get("/read", headers=cookie_header(session_id))
        cookie = session_cookie(renewed)
        assert cookie is not None
        assert cookie.value == session_id
        assert cookie.max_age == 3
        assert storage.calls == [("get", session_id), ("set", session_id, 3.0)]
        await asyncio.sleep(1.5)  # past the first deadline, within the renewed one
        later = (await http.get("/read", headers=cookie_header(session_id))).json()
        assert later["id"] == session_id
        assert later["data"] == {"user": "ann"}


async def test_r22_more_than_half_left_costs_exactly_one_storage_call(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True, expiration=10) as (
        store,
        storage,
        http,
    ):
        now = time.time()
        await put_record(store, "young", {"n": 1}, created=now, expiry=10, expires_at=now + 5.5)
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header("young"))
        assert response.json()["data"] == {"n": 1}
        assert session_cookie(response) is None
        assert storage.calls == [("get", "young")]


async def test_r22_renewal_is_skipped_when_it_gains_less_than_a_second(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True, expiration=1.5) as (
        store,
        storage,
        http,
    ):
        now = time.time()
        await put_record(store, "short", {"n": 1}, created=now, expiry=1.5, expires_at=now + 0.7)
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header("short"))
        assert response.json()["id"] == "short"
        assert session_cookie(response) is None
        assert storage.calls == [("get", "short")]


async def test_r22_renewal_is_capped_by_the_absolute_timeout(storage_backend: Backend) -> None:
    async with serve_counting(
        storage_backend, auto_save=True, expiration=4, absolute_timeout=12
    ) as (store, storage, http):
        now = time.time()
        await put_record(
            store, "capped", {"n": 1}, created=now - 10, expiry=4, expires_at=now + 0.5
        )
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header("capped"))
        assert response.json()["id"] == "capped"
        ((_, key, ttl),) = sets(storage)
        assert key == "capped"
        assert 1.5 < ttl <= 2
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 2


async def test_r22_explicit_mode_never_renews_a_read(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, expiration=10) as (store, storage, http):
        now = time.time()
        await put_record(store, "old", {"n": 1}, created=now - 9, expiry=10, expires_at=now + 1)
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header("old"))
        assert response.json()["id"] == "old"
        assert session_cookie(response) is None
        assert storage.calls == [("get", "old")]
