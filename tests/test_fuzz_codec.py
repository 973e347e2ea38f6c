"""R16 and R17, fuzzed: stored bytes are data, never code, and bad ones never break a request.

The decoder is fed arbitrary bytes and MessagePack built to look like ours (nested lists, maps
and extension values, records of the right shape with wrong parts). It must answer a `Record`
or raise `DecodeError`, nothing else, while an audit hook watches that nothing is executed,
unpickled, spawned or connected. Then a hostile storage hands such bytes to real requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import pickle
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sessionware import Config, SessionMiddleware, Store
from sessionware._codec import DecodeError, Record, SessionCodec

from tests.support.apps import storage_key
from tests.support.load import (
    RecordingStorage,
    call,
    fuzz_settings,
    report_tally,
    session_cookie,
    tried,
)

VICTIM: Final = "stored-session-id"
# The format marker of a plain record (docs/architecture.md): one byte before the body.
PLAIN_RECORD: Final = b"\x01"
_packer = msgspec.msgpack.Encoder()


@pytest.fixture(autouse=True, scope="module")
def _count_inputs() -> Iterator[None]:
    """How many inputs this module tried, for `scripts/reliability`."""
    yield
    report_tally(__name__)


# -- "never runs code": an audit hook that notes what a decoder must never do ------------

_FORBIDDEN: Final = (
    "exec",
    "compile",
    "pickle.",
    "marshal.",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "subprocess.",
    "ctypes.",
    "socket.",
    "builtins.input",
)
_watching: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching and event.startswith(_FORBIDDEN):
        _watching[-1].append(event)


sys.addaudithook(_audit)  # hooks cannot be removed; this one only listens inside `forbidden`


@contextmanager
def forbidden() -> Iterator[list[str]]:
    """The code-running, unpickling, process and socket events raised inside the block."""
    seen: list[str] = []
    _watching.append(seen)
    try:
        yield seen
    finally:
        _watching.pop()


tripped: list[tuple[Any, ...]] = []


def tripwire(*args: Any) -> None:
    """What a hostile pickle calls when it is loaded; nothing may ever reach it."""
    tripped.append(args)


class Hostile:
    def __reduce__(self) -> tuple[Any, ...]:
        return (tripwire, ("a pickle was loaded",))


@dataclasses.dataclass
class Registered:
    """A registered type, so that fuzzed payloads reach the registered-type decoder too."""

    name: str
    level: int = 0


REGISTERED_NAME: Final = f"{Registered.__module__}.{Registered.__qualname__}"


def codec() -> SessionCodec:
    fresh = SessionCodec()
    fresh.register(Registered)
    return fresh


# -- strategies: MessagePack that looks like ours ----------------------------------------


def pack(value: Any) -> bytes:
    try:
        return _packer.encode(value)
    except (TypeError, ValueError, OverflowError):
        return b"\xc0"  # nil: a value msgspec cannot write is not interesting here


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from(
        [
            "Europe/Paris",
            "UTC",
            "../../../../etc/passwd",
            "/etc/passwd",
            "2024-01-02T03:04:05+01:00",
            "2024-01-02",
            "12:00:01",
            "ff" * 8,
            "NaN",
            "1e999999",
            "builtins.eval",
            "os.system",
            f"{__name__}.tripwire",
            REGISTERED_NAME,
        ]
    ),
)


def extension(children: st.SearchStrategy[Any]) -> st.SearchStrategy[msgspec.msgpack.Ext]:
    """An extension value: mostly our codes (1-12) around MessagePack of a child, or junk."""
    code = st.one_of(st.integers(0, 13), st.integers(-128, 127))
    payload = st.one_of(children.map(pack), st.binary(max_size=48))
    return st.builds(msgspec.msgpack.Ext, code, payload)


def msgpack_values(max_leaves: int = 25) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(st.text(max_size=8), children, max_size=5),
            st.dictionaries(st.integers(-3, 3), children, max_size=3),
            extension(children),
        ),
        max_leaves=max_leaves,
    )


# Times a save could have written; the impossible ones have tests of their own below.
plausible_times = st.one_of(st.floats(min_value=1.0, max_value=4e9), st.integers(1, 4_000_000_000))
record_data = st.dictionaries(st.text(max_size=10), msgpack_values(), max_size=5)


def records(times: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """``[created, expiry, expires_at, data]`` as bytes, some parts wrong on purpose."""
    return st.builds(
        lambda a, b, c, data: pack([a, b, c, data]),
        times,
        times,
        times,
        record_data,
    )


def live_records() -> st.SearchStrategy[bytes]:
    """Well-formed records that have not expired: their data is what the request sees."""
    return st.builds(
        lambda data, expiry: pack([time.time(), expiry, time.time() + 3600, data]),
        record_data,
        st.floats(min_value=1.0, max_value=1e6),
    )


# Python values of every type R15 lists, for records the real encoder writes.
_zones = st.sampled_from([None, "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
python_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200) | st.integers(max_value=-(2**63) - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.builds(
        lambda moment, zone: moment if zone is None else moment.replace(tzinfo=ZoneInfo(zone)),
        st.datetimes(),
        _zones,
    ),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.builds(Registered, st.text(max_size=8), st.integers(-5, 5)),
)
python_values = st.recursive(
    python_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=4),
        st.sets(st.integers() | st.text(max_size=5), max_size=4),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
        st.dictionaries(st.integers(), children, max_size=3),
    ),
    max_leaves=20,
)
python_data = st.dictionaries(st.text(max_size=10), python_values, max_size=5)


def encoded(data: dict[str, Any]) -> bytes:
    now = time.time()
    return codec().encode(data, now, 3600.0, now + 3600.0)


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    """A record the real encoder wrote, then damaged: bytes changed, cut short or inserted."""
    raw = bytearray(encoded(draw(python_data)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(len(raw) - 1, 0)))
        how = draw(st.sampled_from(["replace", "truncate", "insert"]))
        if how == "truncate":
            del raw[where:]
        elif how == "insert":
            raw[where:where] = draw(st.binary(min_size=1, max_size=4))
        elif raw:
            raw[where] = draw(st.integers(0, 255))
    return bytes(raw)


any_stored_bytes = st.one_of(
    st.binary(max_size=2048),
    records(plausible_times),
    records(msgpack_values(4)),
    live_records(),
    msgpack_values().map(pack),
    python_data.map(encoded),
    mutated_records(),
)


# -- the decoder ------------------------------------------------------------------------


def decode_checked(raw: bytes) -> Record | None:
    """Decode as the store does: a Record or DecodeError, nothing run; anything else fails."""
    tried("stored bytes given to the decoder")
    with forbidden() as events:
        try:
            record = codec().decode(raw)
        except DecodeError:
            record = None
    assert events == [], f"decoding ran forbidden operations: {events}"
    if record is not None:
        assert type(record.data) is dict
        assert all(type(key) is str for key in record.data)
        assert all(type(t) is float for t in (record.created, record.expiry, record.expires_at))
    return record


@fuzz_settings(400)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_decode_to_a_record_or_a_decode_error(raw: bytes) -> None:
    decode_checked(raw)


@fuzz_settings(400)
@given(
    st.one_of(
        records(msgpack_values(4)),
        records(plausible_times),
        msgpack_values().map(pack),
        mutated_records(),
    )
)
def test_messagepack_shaped_like_ours_decodes_to_a_record_or_a_decode_error(raw: bytes) -> None:
    decode_checked(raw)


@fuzz_settings(200)
@given(st.lists(st.tuples(st.integers(1, 12), msgpack_values(6)), min_size=1, max_size=4))
def test_every_extension_of_ours_with_any_payload_decodes_or_fails_cleanly(
    extensions: list[tuple[int, Any]],
) -> None:
    data = {
        f"k{i}": msgspec.msgpack.Ext(code, pack(value))
        for i, (code, value) in enumerate(extensions)
    }
    decode_checked(pack([1.0, 60.0, 61.0, data]))


@fuzz_settings(150)
@given(python_data)
def test_every_value_the_encoder_writes_comes_back_exactly(data: dict[str, Any]) -> None:
    """R15 as a property, through the same fuzzed decoder: equal values of the same types."""
    record = decode_checked(encoded(data))
    assert record is not None
    assert record.data == data
    assert _types(record.data) == _types(data)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return (dict, [(_types(k), _types(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [_types(item) for item in value])
    if isinstance(value, set | frozenset):
        return (type(value), sorted(repr(_types(item)) for item in value))
    return type(value)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickle_in_storage_is_never_loaded(protocol: int) -> None:
    """R16: pickle bytes are just undecodable bytes."""
    raw = pickle.dumps({"user": Hostile()}, protocol=protocol)
    tripped.clear()
    assert decode_checked(raw) is None
    assert tripped == []


@pytest.mark.parametrize(
    "name", ["builtins.eval", "os.system", f"{__name__}.tripwire", "pickle.loads"]
)
def test_a_registered_type_name_never_imports_or_calls_anything(name: str) -> None:
    """R16: only classes given to `register_type` can be built, whatever name storage gives."""
    hostile = msgspec.msgpack.Ext(12, pack([name, "__import__('os').system('true')"]))
    tripped.clear()
    assert decode_checked(pack([1.0, 60.0, 61.0, {"x": hostile}])) is None
    assert tripped == []


def test_a_registered_type_comes_back_through_its_own_decoder_only() -> None:
    value = msgspec.msgpack.Ext(12, pack([REGISTERED_NAME, {"name": "ann", "level": 3}]))
    record = decode_checked(pack([1.0, 60.0, 61.0, {"x": value}]))
    assert record is not None
    assert record.data == {"x": Registered("ann", 3)}


def nested_extensions(depth: int) -> bytes:
    payload = pack(0)
    for _ in range(depth):
        payload = pack(msgspec.msgpack.Ext(1, payload))
    return payload


@pytest.mark.parametrize(
    "data",
    [
        b"\x91" * 200_000 + b"\xc0",
        b"\x81\xa1a" * 100_000 + b"\xc0",
        nested_extensions(5_000),
    ],
    ids=["lists", "maps", "extensions"],
)
def test_data_nested_far_too_deep_is_a_decode_error_not_a_crash(data: bytes) -> None:
    """A stored record built to exhaust the stack is refused like any other bad record."""
    assert decode_checked(pack([1.0, 60.0, 61.0, {"x": msgspec.Raw(data)}])) is None


def bigint(value: int) -> msgspec.msgpack.Ext:
    return msgspec.msgpack.Ext(5, pack(format(value, "x")))


def test_a_timestamp_too_big_for_a_float_is_a_decode_error() -> None:
    """Found by this campaign: an int record time beyond any float escaped as OverflowError."""
    assert decode_checked(pack([bigint(10**400), 60.0, 61.0, {}])) is None


# -- a hostile storage, through real requests -------------------------------------------


async def answer_with_session(
    raw: bytes, *, auto_save: bool
) -> tuple[int, dict[str, Any] | None, RecordingStorage, list[str]]:
    """One request with a cookie for VICTIM, whose stored record (a plain one's body) is `raw`."""
    tried("requests whose stored session is hostile bytes")
    stored = PLAIN_RECORD + raw
    storage = RecordingStorage(answer=lambda key: stored if key == storage_key(VICTIM) else None)
    store = Store(Config(storage=storage))
    store.register_type(Registered)
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        session = await store.get(scope)
        seen.update(
            id=session.id,
            fresh=session.fresh,
            values=repr([session[key] for key in session]),
            expiry=session.expiry.total_seconds(),
        )
        session.set("visited", True)
        if not auto_save:
            await session.save()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = SessionMiddleware(app, store=store, auto_save=auto_save)
    with forbidden() as events:
        reply = await call(wrapped, headers=[(b"cookie", f"session_id={VICTIM}".encode())])
    await store.close()
    cookie = session_cookie(reply)
    assert cookie is None or cookie[0] == seen.get("id")
    return reply.status, seen or None, storage, events


def expect_treated_as_unknown(
    status: int, seen: dict[str, Any] | None, storage: RecordingStorage
) -> None:
    """R17 then R3: the request goes on with a fresh session, and the bad entry is deleted."""
    assert status == 200
    assert seen is not None
    assert seen["fresh"] is True
    assert seen["id"] != VICTIM
    assert storage_key(VICTIM) in storage.keys
    assert storage.calls["delete"] >= 1


@pytest.mark.parametrize("auto_save", [True, False], ids=["auto-save", "explicit-save"])
def test_a_hostile_storage_never_breaks_a_request(auto_save: bool) -> None:
    @fuzz_settings(250)
    @given(any_stored_bytes)
    def property_(raw: bytes) -> None:
        expected = decode_checked(raw)
        tripped.clear()
        status, seen, storage, events = asyncio.run(answer_with_session(raw, auto_save=auto_save))
        assert events == []
        assert tripped == []
        assert status == 200
        assert storage.invalid_keys() == []
        assert seen is not None
        if expected is None:
            expect_treated_as_unknown(status, seen, storage)
        elif expected.expires_at > time.time() + 5:
            assert seen["fresh"] is False
            assert seen["id"] == VICTIM
            assert seen["values"] == repr(list(expected.data.values()))

    property_()


def test_undecodable_data_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        status, seen, storage, _ = asyncio.run(answer_with_session(b"\xff\x00junk", auto_save=True))
    expect_treated_as_unknown(status, seen, storage)
    assert any(r.levelno == logging.WARNING and "decoded" in r.getMessage() for r in caplog.records)


def _record(created: Any, expiry: Any, expires_at: Any) -> bytes:
    return pack([created, expiry, expires_at, {"user": "ann"}])


NOW: Final = time.time()
UNUSABLE_TIMES = [
    pytest.param(math.nan, math.nan, math.nan, id="nan-times"),
    pytest.param(NOW, math.inf, NOW + 3600, id="infinite-expiry"),
    pytest.param(NOW, 1e20, NOW + 3600, id="expiry-beyond-timedelta"),
    pytest.param(NOW, 0.0, NOW + 3600, id="zero-expiry"),
    pytest.param(NOW, -60.0, NOW + 3600, id="negative-expiry"),
    pytest.param(bigint(10**400), 60.0, NOW + 3600, id="created-beyond-float"),
]


@pytest.mark.parametrize(("created", "expiry", "expires_at"), UNUSABLE_TIMES)
@pytest.mark.parametrize("auto_save", [True, False], ids=["auto-save", "explicit-save"])
def test_a_record_with_impossible_times_is_treated_as_undecodable(
    created: Any, expiry: Any, expires_at: Any, auto_save: bool
) -> None:
    try:
        status, seen, storage, _ = asyncio.run(
            answer_with_session(_record(created, expiry, expires_at), auto_save=auto_save)
        )
    except Exception as exc:  # what the ASGI server would turn into a 500
        pytest.fail(f"the request crashed: {type(exc).__name__}: {exc}")
    expect_treated_as_unknown(status, seen, storage)
