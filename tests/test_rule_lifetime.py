"""R12, R13 and R22: how long a session lives, and when a read renews it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.apps import (
    CountingPlainStorage,
    clock_of,
    cookie_header,
    do,
    raw_get,
    read,
    serve,
    serve_counting,
    session_cookie,
    shared_plugin,
    storage_key,
)
from tests.support.backends import Backend

# Every test runs once per app flavour: ASGI, plain WSGI and Flask (S11).
pytestmark = pytest.mark.usefixtures("app_flavour")


def sets(storage: CountingPlainStorage) -> list[tuple[str, float | None]]:
    """The writes a store made, by storage_set or compare-and-set, as (key, TTL)."""
    return storage.writes()


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
        assert sets(storage) == [(storage_key(body["id"]), 7.0)]


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
        assert sets(storage) == [(storage_key(session_id), 5.0)]


async def test_r12_a_short_expiry_ends_the_session_on_time(storage_backend: Backend) -> None:
    async with serve(storage_backend) as (store, http):
        session_id = (await do(http, ["set_expiry", 5], ["set", "n", 1], ["save"])).json()["id"]
        clock_of(store).advance(4.9)
        assert (await read(http, session_id))["data"] == {"n": 1}
        clock_of(store).advance(0.1)
        body = await read(http, session_id)
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
    async with serve(storage_backend, expiration=60) as (store, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        clock_of(store).advance(30)
        # reading does not save (explicit mode), so the 60 s still count from the save
        assert (await read(http, session_id))["id"] == session_id
        clock_of(store).advance(30)
        gone = await read(http, session_id)
        assert gone["fresh"] is True
        assert gone["id"] != session_id
        assert gone["data"] == {}
        assert await store.get_by_id(session_id) is None


async def test_r13_absolutely_expired_session_is_reset_on_load(storage_backend: Backend) -> None:
    async with serve(storage_backend, expiration=200) as (before, first):
        # stored before an absolute timeout was configured, it outlives the new limit
        session_id = (await do(first, ["set", "user", "ann"], ["save"])).json()["id"]
        clock_of(before).advance(101)
        async with serve(
            storage_backend,
            storage=shared_plugin(before),
            clock=clock_of(before),
            expiration=60,
            absolute_timeout=100,
        ) as (store, http):
            body = await read(http, session_id)
            assert body["id"] != session_id
            assert body["fresh"] is True
            assert body["data"] == {}
            assert await raw_get(store, session_id) is None  # deleted on load
            assert await store.get_by_id(session_id) is None


async def test_r13_stored_ttl_never_exceeds_the_remaining_absolute_lifetime(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, expiration=60, absolute_timeout=100) as (
        store,
        storage,
        http,
    ):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        clock_of(store).advance(50)
        await do(http, ["set", "n", 2], ["save"], headers=cookie_header(session_id))
        clock_of(store).advance(45.5)
        storage.calls.clear()
        response = await do(http, ["set", "n", 3], ["save"], headers=cookie_header(session_id))
        assert response.json()["id"] == session_id
        ((key, ttl),) = sets(storage)
        assert key == storage_key(session_id)
        assert ttl == pytest.approx(4.5)
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 5  # whole seconds, rounded up (R6)


async def test_r13_absolute_timeout_reached_during_a_request_ends_it_instead_of_saving(
    storage_backend: Backend,
) -> None:
    async with serve(storage_backend, expiration=60, absolute_timeout=100) as (store, http):
        session_id = (await do(http, ["set", "user", "ann"], ["save"])).json()["id"]
        clock_of(store).advance(50)
        await do(http, ["set_expiry", 60], ["save"], headers=cookie_header(session_id))
        clock_of(store).advance(49.5)
        response = await do(
            http, ["set", "user", "bob"], ["advance", 0.5], ["save"], ["ended"],
            headers=cookie_header(session_id),
        )  # fmt: skip
        body = response.json()
        assert body["log"] == [True]  # R24: expired while the request held it
        assert body["id"] != session_id
        assert body["fresh"] is True
        assert body["data"] == {}
        assert session_cookie(response) is None
        assert await store.get_by_id(session_id) is None
        assert await store.get_by_id(body["id"]) is None


async def test_r13_absolute_timeout_ends_an_active_session(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, expiration=20, absolute_timeout=24) as (
        store,
        storage,
        http,
    ):
        session_id = (await do(http, ["set", "n", 0], ["save"])).json()["id"]
        for step in (1, 2):
            clock_of(store).advance(6)
            kept = (
                await do(http, ["set", "n", step], ["save"], headers=cookie_header(session_id))
            ).json()
            assert kept["id"] == session_id
        ttls = [ttl for _, ttl in sets(storage)]
        assert ttls == [20, 18, 12]  # capped by what is left of the 24 s
        clock_of(store).advance(12)
        body = await read(http, session_id)
        assert body["fresh"] is True
        assert body["id"] != session_id


# -- R22 --------------------------------------------------------------------------------


async def test_r22_a_read_session_is_renewed_past_half_its_expiry(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True, expiration=30) as (
        store,
        storage,
        http,
    ):
        session_id = (await do(http, ["set", "user", "ann"])).json()["id"]
        storage.calls.clear()
        clock_of(store).advance(15)  # exactly half left: not yet
        early = await http.get("/read", headers=cookie_header(session_id))
        assert session_cookie(early) is None
        assert storage.trace() == [("get", storage_key(session_id))]
        clock_of(store).advance(1)  # less than half of 30 s left
        storage.calls.clear()
        renewed = await http.get("/read", headers=cookie_header(session_id))
        cookie = session_cookie(renewed)
        assert cookie is not None
        assert cookie.value == session_id
        assert cookie.max_age == 30
        assert storage.trace() == [
            ("get", storage_key(session_id)),
            ("write", storage_key(session_id), 30.0),
        ]
        clock_of(store).advance(20)  # past the first deadline, within the renewed one
        later = await read(http, session_id)
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
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        clock_of(store).advance(4.5)
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header(session_id))
        assert response.json()["data"] == {"n": 1}
        assert session_cookie(response) is None
        assert storage.trace() == [("get", storage_key(session_id))]


async def test_r22_renewal_is_skipped_when_it_gains_less_than_a_second(
    storage_backend: Backend,
) -> None:
    async with serve_counting(storage_backend, auto_save=True, expiration=1.5) as (
        store,
        storage,
        http,
    ):
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        clock_of(store).advance(0.8)  # 0.7 s left: renewing would gain 0.8 s
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header(session_id))
        assert response.json()["id"] == session_id
        assert session_cookie(response) is None
        assert storage.trace() == [("get", storage_key(session_id))]


async def test_r22_renewal_is_capped_by_the_absolute_timeout(storage_backend: Backend) -> None:
    async with serve_counting(
        storage_backend, auto_save=True, expiration=4, absolute_timeout=12
    ) as (store, storage, http):
        session_id = (await do(http, ["set", "n", 1])).json()["id"]
        for _ in range(2):  # reads at 3 and 6 s renew it by the full 4 s, to 10 s
            clock_of(store).advance(3)
            assert (await read(http, session_id))["id"] == session_id
        assert [ttl for _, ttl in sets(storage)] == [4.0, 4.0, 4.0]
        clock_of(store).advance(3.5)  # 9.5 s: 2.5 s of the absolute 12 s are left
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header(session_id))
        assert response.json()["id"] == session_id
        assert sets(storage) == [(storage_key(session_id), 2.5)]
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.max_age == 3


async def test_r22_explicit_mode_never_renews_a_read(storage_backend: Backend) -> None:
    async with serve_counting(storage_backend, expiration=10) as (store, storage, http):
        session_id = (await do(http, ["set", "n", 1], ["save"])).json()["id"]
        clock_of(store).advance(9)
        storage.calls.clear()
        response = await http.get("/read", headers=cookie_header(session_id))
        assert response.json()["id"] == session_id
        assert session_cookie(response) is None
        assert storage.trace() == [("get", storage_key(session_id))]
