"""R4 and the request side, fuzzed: whatever a client sends, no 5xx and no bad id in storage.

Requests carry arbitrary cookie headers (invalid bytes, duplicates, quotes, up to 16 KB),
header ids and query strings, against stores with arbitrary lookup chains. A recording
storage keeps every key it is asked about: each must match R4 and must be an id the client
sent or the store generated, and every id the response hands back must match R4 too.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from sessionware import Config, SessionMiddleware, Store

from tests.support.apps import plain_record, storage_key
from tests.support.load import (
    VALID_ID,
    RecordingStorage,
    call,
    fuzz_settings,
    report_tally,
    tried,
)

KNOWN: Final = "known-session-0001"
HANDLE: Final = re.compile(
    r"[A-Za-z0-9_-]{43}"
)  # stored before each example, so some requests load it
ID_CHARS: Final = "ABCXYZabcxyz0189-_.~+/="
BAD_CHARS: Final = " ;,\"'\\\t\n\r\x00\x7f%<>éß\u2028\U0001f600"


@pytest.fixture(autouse=True, scope="module")
def _count_inputs() -> Iterator[None]:
    """How many inputs this module tried, for `scripts/reliability`."""
    yield
    report_tally(__name__)


# -- strategies -------------------------------------------------------------------------

names = st.one_of(
    st.sampled_from(["session_id", "sid", "x-session-id", "token", "a"]),
    st.from_regex(r"[A-Za-z0-9_.\-]{1,10}", fullmatch=True),
)
valid_ids = st.one_of(
    st.just(KNOWN),
    st.text(alphabet=ID_CHARS, min_size=1, max_size=128),
    st.just("a" * 128),
)
invalid_ids = st.one_of(
    st.just(""),
    st.just("a" * 129),
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(alphabet=ID_CHARS, max_size=20),
        st.text(alphabet=BAD_CHARS, min_size=1, max_size=3),
        st.text(alphabet=ID_CHARS, max_size=20),
    ),
    st.text(max_size=40),
)
ids = st.one_of(valid_ids, invalid_ids)


def big_bytes(seed: int, size: int) -> bytes:
    """Up to 16 KB of noise, fast: hypothesis rarely draws big binaries by itself."""
    return random.Random(seed).randbytes(size)


big = st.builds(big_bytes, st.integers(0, 2**32), st.integers(4096, 16384))


@st.composite
def cookie_headers(draw: st.DrawFn, lookup_names: list[str]) -> bytes:
    """A Cookie header: pairs for our names and others, quoted, repeated, badly separated."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.binary(max_size=256), big))
    pairs = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.sampled_from(lookup_names), names, st.text(max_size=8)))
        value = draw(ids)
        if draw(st.booleans()):
            value = f'"{value}"'
        pairs.append(f"{name}={value}" if draw(st.integers(0, 9)) else name)
    separator = draw(st.sampled_from(["; ", ";", " ; ", ", ", ";;", "\t;"]))
    header = separator.join(pairs)
    if draw(st.integers(0, 19)) == 0:  # a 16 KB header of duplicates
        header = separator.join([f"{lookup_names[0]}=x"] * 1200 + [header])
    return header.encode("utf-8", "surrogateescape")


@st.composite
def query_strings(draw: st.DrawFn, lookup_names: list[str]) -> bytes:
    if draw(st.integers(0, 7)) == 0:
        return draw(st.binary(max_size=200))
    pairs = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.sampled_from(lookup_names), names))
        value = draw(ids)
        raw = draw(st.booleans())
        pairs.append(f"{name}={value if raw else quote(value, safe='')}")
    return "&".join(pairs).encode("utf-8", "surrogateescape")


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A store's lookup chain, a request for it and what the handler does with the session."""
    sources = st.sampled_from(["cookie", "header", "query"])
    chain = draw(
        st.lists(
            st.tuples(sources, names),
            min_size=1,
            max_size=4,
            unique_by=lambda pair: (pair[0], pair[1].lower()),  # a pair twice is a config error
        )
    )
    key_lookup = ", ".join(
        f"{draw(st.sampled_from([source, source.upper()]))}:{name}" for source, name in chain
    )
    lookup_names = [name for _, name in chain]
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(draw(st.integers(0, 3))):
        headers.append((b"cookie", draw(cookie_headers(lookup_names))))
    for source, name in chain:
        if source == "header" and draw(st.booleans()):
            for _ in range(draw(st.integers(1, 2))):
                value = draw(st.one_of(ids.map(lambda v: v.encode("utf-8", "replace")), big))
                headers.append((name.lower().encode(), value))
    draw(st.randoms()).shuffle(headers)
    return {
        "key_lookup": key_lookup,
        "headers": headers,
        "query_string": draw(query_strings(lookup_names)),
        "auto_save": draw(st.booleans()),
        "actions": draw(
            st.lists(st.sampled_from(["set", "save", "regenerate", "destroy", "reset"]), max_size=4)
        ),
    }


# -- the property -----------------------------------------------------------------------


def stored_known(storage: RecordingStorage) -> None:
    now = time.time()
    storage.entries[storage_key(KNOWN)] = plain_record(
        [now, 3600.0, now + 3600.0, {"who": "known"}]
    )


async def answer(
    request: dict[str, Any],
) -> tuple[int, list[tuple[bytes, bytes]], dict[str, Any], RecordingStorage]:
    tried("requests with fuzzed cookies, headers, query and lookup chain")
    storage = RecordingStorage()
    stored_known(storage)
    generated: list[str] = []

    def new_id() -> str:
        generated.append(str(uuid.uuid4()))
        return generated[-1]

    store = Store(Config(storage=storage, key_lookup=request["key_lookup"], key_generator=new_id))
    seen: dict[str, Any] = {"generated": generated}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        session = await store.get(scope)
        seen.update(
            first_id=session.id,
            fresh=session.fresh,
            origin=session.origin,
            data=dict.fromkeys(session),
        )
        for action in request["actions"]:
            if action == "set":
                session.set("n", 1)
            else:
                await getattr(session, action)()
        if not request["auto_save"]:
            await session.save()
        seen["last_id"] = session.id
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = SessionMiddleware(app, store=store, auto_save=request["auto_save"])
    reply = await asyncio.wait_for(
        call(wrapped, headers=request["headers"], query_string=request["query_string"]), 10
    )
    await store.close()
    return reply.status, reply.headers, seen, storage


def request_text(request: dict[str, Any]) -> str:
    sent = [value for _, value in request["headers"]] + [request["query_string"]]
    return "\n".join(raw.decode("latin-1") for raw in sent)


@fuzz_settings(300)
@given(requests())
def test_no_request_gets_a_5xx_or_puts_an_invalid_id_into_storage(request: dict[str, Any]) -> None:
    status, headers, seen, storage = asyncio.run(answer(request))
    assert status == 200
    assert storage.invalid_keys() == []
    sent = request_text(request)
    made_here = {storage_key(made) for made in seen["generated"]}
    for key in storage.keys:
        # Storage hears only handles (S9): of ids made here, or hashed from what was sent.
        assert HANDLE.fullmatch(key), key
        assert key in made_here or key not in sent, key
    event("loaded the stored session" if not seen["fresh"] else "fresh session")
    event(f"storage calls: {sum(storage.calls.values())}")
    if not seen["fresh"]:
        assert seen["first_id"] == KNOWN
        assert list(seen["data"]) == ["who"]
    lookup_names = {part.split(":", 1)[1].strip() for part in request["key_lookup"].split(",")}
    for name, value in headers:
        assert b"\r" not in value
        assert b"\n" not in value
        if name == b"set-cookie":
            cookie_name, _, rest = value.decode("latin-1").partition("=")
            assert cookie_name in lookup_names
            cookie_value = rest.split(";", 1)[0]
            assert cookie_value == "" or VALID_ID.fullmatch(cookie_value), value
            if cookie_value:
                assert echoed_rightly(cookie_value, seen)
        elif name.decode("latin-1") in {n.lower() for n in lookup_names}:
            assert echoed_rightly(value.decode("latin-1"), seen)


def echoed_rightly(value: str, seen: dict[str, Any]) -> bool:
    """An id the request made, or the one it loaded, unless that came from the query (R7)."""
    if value in seen["generated"]:
        return True
    return value == KNOWN and not seen["fresh"] and seen["origin"] != "query"


@fuzz_settings(300)
@given(st.one_of(ids, st.text(max_size=300)))
def test_get_by_id_and_delete_never_pass_an_invalid_id_to_storage(session_id: str) -> None:
    tried("ids given to get_by_id and delete")

    async def scenario() -> RecordingStorage:
        storage = RecordingStorage()
        async with Store(Config(storage=storage)) as store:
            for method in (store.get_by_id, store.delete):
                try:
                    await method(session_id)
                except ValueError:
                    assert session_id == ""
        return storage

    storage = asyncio.run(scenario())
    assert storage.invalid_keys() == []
    valid = VALID_ID.fullmatch(session_id) is not None
    assert storage.calls["get"] + storage.calls["delete"] == (2 if valid else 0)


@fuzz_settings(150)
@given(ids)
def test_a_key_generator_breaking_r4_is_a_value_error_and_never_stored(made: str) -> None:
    tried("ids returned by key_generator")

    async def scenario() -> tuple[BaseException | None, RecordingStorage]:
        storage = RecordingStorage()
        store = Store(Config(storage=storage, key_generator=lambda: made))

        async def app(scope: Any, receive: Any, send: Any) -> None:
            session = await store.get(scope)
            session.set("n", 1)
            await session.save()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        try:
            await call(SessionMiddleware(app, store=store))
        except ValueError as exc:
            return exc, storage
        finally:
            await store.close()
        return None, storage

    error, storage = asyncio.run(scenario())
    assert storage.invalid_keys() == []
    if VALID_ID.fullmatch(made):
        assert error is None
        assert storage.keys == [storage_key(made)]
    else:
        assert error is not None
        assert "key_generator" in str(error)


@pytest.mark.parametrize(
    "cookie",
    [
        b"session_id=" + b"a" * 16384,
        b"; ".join([b"session_id=\xff\xfe"] * 1500),
        b'session_id="' + KNOWN.encode() + b'"; ' * 1000,
        b"\x00" * 16384,
    ],
    ids=["16KB-id", "duplicates-of-invalid-bytes", "quoted-duplicates", "nul-bytes"],
)
def test_sixteen_kilobyte_cookie_headers(cookie: bytes) -> None:
    request = {
        "key_lookup": "cookie:session_id",
        "headers": [(b"cookie", cookie)],
        "query_string": b"",
        "auto_save": True,
        "actions": ["set"],
    }
    status, _, _, storage = asyncio.run(answer(request))
    assert status == 200
    assert storage.invalid_keys() == []
