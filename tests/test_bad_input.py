"""Hostile and broken requests: never a 5xx, never a storage call with an invalid id (R4)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.apps import (
    CountingStorage,
    client,
    counting_store,
    do,
    make_app,
    raw_http,
    serve,
    storage_key,
)
from tests.support.backends import Backend

CHAIN = "cookie:session_id, header:X-Session-ID, query:sid"


async def saved_id(backend_store: Any) -> str:
    """Save a session through the app and return its id."""
    async with client(make_app(backend_store)) as http:
        return str((await do(http, ["set", "who", "known"], ["save"])).json()["id"])


HANDLE = re.compile(r"[A-Za-z0-9_-]{43}")


def assert_only_valid_keys(storage: CountingStorage) -> None:
    """Storage hears only handles (S9): 43 characters of URL-safe base64, whatever came in."""
    assert all(HANDLE.fullmatch(key) for key in storage.keys_called()), storage.calls


MALFORMED_COOKIES = [
    b"",
    b";",
    b";;;;",
    b"=",
    b"==",
    b"session_id",
    b"session_id=",
    b"session_id;",
    b"=session_id",
    b"; session_id=; ",
    b'session_id="',
    b'session_id=""',
    b'session_id="abc',
    b"session_id=a b c",
    b"session_id=\x00\x01\x02",
    b"session_id=\xff\xfe\xfd",
    b"\xff\xfe=\xfd; session_id=\xc3",
    b"session_id=%41%42",
    b"session_id=abc\tdef",
    b"SESSION_ID=" + b"x" * 10,  # another cookie: names are case-sensitive
    b"session_id=" + b"a" * 10_240,
    b"junk=" + b"\xff" * 10_240,
    b" " * 10_240,
    b"a=1; " * 2_000,
]


@pytest.mark.parametrize("cookie", MALFORMED_COOKIES, ids=lambda c: repr(c[:24]))
@pytest.mark.parametrize("auto_save", [False, True], ids=["explicit", "auto"])
async def test_malformed_cookie_headers_give_a_fresh_session(
    storage_backend: Backend, cookie: bytes, auto_save: bool
) -> None:
    store, storage = counting_store(storage_backend)
    async with store:
        app = make_app(store, auto_save=auto_save)
        for path, body in (("/read", b""), ("/do", b'[["set", "n", 1]]')):
            method = "POST" if path == "/do" else "GET"
            status, _, payload = await raw_http(
                app, path, method=method, body=body, headers=[(b"cookie", cookie)]
            )
            assert status == 200
            assert json.loads(payload)["fresh"] is True
        assert_only_valid_keys(storage)
        assert storage.count("get") == 0


async def test_the_first_valid_cookie_wins(storage_backend: Backend) -> None:
    store, storage = counting_store(storage_backend)
    async with store:
        known = await saved_id(store)
        app = make_app(store)
        storage.calls.clear()
        cases = [
            (f"session_id=bad id; session_id={known}", known),
            (f"session_id=; session_id=\xe9; session_id={known}; session_id=other", known),
            (f"other=1; session_id={known}; session_id=unknown-but-valid", known),
            (f"session_id=unknown-but-valid; session_id={known}", None),  # first valid is used
            (f'session_id="{known}"', known),  # quoted values are unquoted
            (f"  session_id = {known} ", known),
        ]
        for cookie, expected in cases:
            status, _, payload = await raw_http(
                app, headers=[(b"cookie", cookie.encode("latin-1"))]
            )
            body = json.loads(payload)
            assert status == 200
            if expected is None:
                assert body["fresh"] is True
            else:
                assert body["id"] == expected
                assert body["data"] == {"who": "known"}
        assert_only_valid_keys(storage)


async def test_several_cookie_headers_are_read_in_order(storage_backend: Backend) -> None:
    store, _ = counting_store(storage_backend)
    async with store:
        known = await saved_id(store)
        status, _, payload = await raw_http(
            make_app(store),
            headers=[
                (b"cookie", b"session_id=\xff\xff"),
                (b"cookie", b"theme=dark"),
                (b"cookie", f"session_id={known}".encode()),
            ],
        )
    assert status == 200
    assert json.loads(payload)["id"] == known


BAD_QUERIES = [
    b"sid",
    b"sid=",
    b"sid=%ZZ",
    b"sid=%FF%FE",
    b"sid=%00",
    b"sid=a+b",  # '+' is a space in a query string: not a valid id
    b"&&&==&",
    b"sid=" + b"a" * 10_240,
    b"\xff\xfe=\x00&sid=\xff",
    b"sid=%3B%20",
    b"sid=" + "é".encode(),
]


@pytest.mark.parametrize("query", BAD_QUERIES, ids=lambda q: repr(q[:20]))
async def test_bad_query_strings_give_a_fresh_session(
    storage_backend: Backend, query: bytes
) -> None:
    store, storage = counting_store(storage_backend, key_lookup=CHAIN)
    async with store:
        status, _, payload = await raw_http(
            make_app(store), "/do", method="POST", body=b'[["save"]]', query_string=query
        )
        assert status == 200
        assert json.loads(payload)["fresh"] is True
        assert storage.keys_called() == [storage_key(json.loads(payload)["id"])]  # only the save
        assert_only_valid_keys(storage)


async def test_a_percent_encoded_query_id_is_decoded(storage_backend: Backend) -> None:
    async with serve(storage_backend, key_generator=lambda: "abc+/=", key_lookup=CHAIN) as (
        store,
        http,
    ):
        await do(http, ["set", "n", 1], ["save"])
        body = json.loads((await raw_http(make_app(store), query_string=b"sid=abc%2B%2F%3D"))[2])
    assert body["id"] == "abc+/="
    assert body["fresh"] is False


async def test_bad_header_values_give_a_fresh_session_and_the_first_valid_wins(
    storage_backend: Backend,
) -> None:
    store, storage = counting_store(storage_backend, key_lookup=CHAIN)
    async with store:
        known = await saved_id(store)
        app = make_app(store)
        for value in (b"", b"\xff\xfe", b"a b", b"x" * 10_240, b"\x00", b"id;with;semicolons"):
            status, _, payload = await raw_http(app, headers=[(b"x-session-id", value)])
            assert status == 200
            assert json.loads(payload)["fresh"] is True
        status, _, payload = await raw_http(
            app,
            headers=[
                (b"x-session-id", b"bad value"),
                (b"x-session-id", known.encode()),
                (b"x-session-id", b"later-valid"),
            ],
        )
        assert json.loads(payload)["id"] == known
        assert_only_valid_keys(storage)


async def test_the_chain_falls_through_to_the_next_source(storage_backend: Backend) -> None:
    store, storage = counting_store(storage_backend, key_lookup=CHAIN)
    async with store:
        known = await saved_id(store)
        _, _, payload = await raw_http(
            make_app(store),
            headers=[(b"cookie", b"session_id=not valid"), (b"x-session-id", b"\xff")],
            query_string=f"sid={known}".encode(),
        )
        assert json.loads(payload)["id"] == known
        assert_only_valid_keys(storage)


@pytest.mark.parametrize(
    "odd_id", [".", "..", "/", "=", "~", "+", "-", "_", "../x", "//", "a/../b"]
)
async def test_odd_but_valid_ids_are_ordinary_unknown_ids(
    storage_backend: Backend, odd_id: str
) -> None:
    store, storage = counting_store(storage_backend)
    async with store:
        status, _, payload = await raw_http(
            make_app(store), headers=[(b"cookie", f"session_id={odd_id}".encode())]
        )
        assert status == 200
        body = json.loads(payload)
        assert body["fresh"] is True
        assert body["id"] != odd_id
        assert storage.calls == [("get", storage_key(odd_id))]
