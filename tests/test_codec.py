"""The session record codec on its own: exact types back, registered types, nothing run."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import math
import pickle
import uuid
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sessionware._codec import DecodeError, SessionCodec


def assert_identical(actual: Any, expected: Any, path: str = "value") -> None:
    """Equal, and of exactly the same type all the way down (1 is not True is not 1.0)."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), path
        return
    if isinstance(expected, Decimal) and expected.is_nan():
        assert actual.is_nan(), path
        return
    if isinstance(expected, list | tuple):
        assert len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_identical(a, e, f"{path}[{index}]")
        return
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys or their order differ"
        for key in expected:
            assert_identical(actual[key], expected[key], f"{path}[{key!r}]")
        return
    if isinstance(expected, set | frozenset):
        assert actual == expected, path
        for item in actual:
            (match,) = [e for e in expected if e == item]
            assert_identical(item, match, f"{path}{{{item!r}}}")
        return
    if isinstance(expected, dt.datetime | dt.time):
        assert actual.tzinfo == expected.tzinfo or actual.utcoffset() == expected.utcoffset()
        assert actual.fold == expected.fold, path
    assert actual == expected, path


def round_trip(codec: SessionCodec, data: dict[str, Any]) -> dict[str, Any]:
    record = codec.decode(codec.encode(data, 1000.0, 60.0, 1060.0))
    assert (record.created, record.expiry, record.expires_at) == (1000.0, 60.0, 1060.0)
    return record.data


PARIS = ZoneInfo("Europe/Paris")

EVERY_TYPE: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int": 42,
    "negative": -7,
    "int64-min": -(2**63),
    "int64-max": 2**63 - 1,
    "uint64-max": 2**64 - 1,
    "big": 2**200 + 1,
    "big-negative": -(2**64),
    "huge": 10**5000,
    "float": 1.5,
    "float-whole": 2.0,
    "negative-zero": -0.0,
    "inf": float("inf"),
    "nan": float("nan"),
    "str": "héllo wörld ✓ 🎉",
    "empty-str": "",
    "bytes": bytes(range(256)),
    "empty-bytes": b"",
    "list": [1, "two", 3.0],
    "empty-list": [],
    "tuple": (1, "two", 3.0),
    "empty-tuple": (),
    "dict": {"b": 1, "a": 2},
    "empty-dict": {},
    "int-keys": {1: "one", 2: "two"},
    "mixed-keys": {"a": 1, 2: "b", (3, 4): "c", frozenset({5}): "d", None: 0},
    "set": {1, 2, 3},
    "empty-set": set(),
    "frozenset": frozenset({"a", "b"}),
    "datetime-naive": dt.datetime(2024, 2, 29, 13, 14, 15, 161718),
    "datetime-utc": dt.datetime(2024, 2, 29, 13, 14, 15, tzinfo=dt.UTC),
    "datetime-offset": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
    "datetime-zone": dt.datetime(2024, 7, 1, 12, tzinfo=PARIS),
    "datetime-fold": dt.datetime(2021, 10, 31, 2, 30, tzinfo=PARIS, fold=1),
    "date": dt.date(1999, 12, 31),
    "time": dt.time(23, 59, 59, 999999),
    "time-offset": dt.time(8, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "timedelta": dt.timedelta(days=-3, seconds=5, microseconds=7),
    "decimal": Decimal("3.14159265358979323846264338327950288419716939937510"),
    "decimal-negative-zero": Decimal("-0"),
    "decimal-inf": Decimal("-Infinity"),
    "decimal-nan": Decimal("NaN"),
    "decimal-exponent": Decimal("1E+999999"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}


def test_every_listed_type_round_trips_with_its_exact_type() -> None:
    codec = SessionCodec()
    assert_identical(round_trip(codec, EVERY_TYPE), EVERY_TYPE, "data")


def test_nested_combinations_round_trip() -> None:
    codec = SessionCodec()
    nested = {
        "tree": [
            {"when": dt.date(2020, 1, 1), "tags": {"x", "y"}, "pair": (Decimal("1.1"), b"\x00")},
            ({"inner": [(1, 2), frozenset({(3, 4)})]}, [[[]]], {(): {1: [None]}}),
        ],
        "set-of-tuples": {(1, "a"), (2, dt.timedelta(seconds=1))},
        "tuple-of-sets": (set(), {uuid.UUID(int=1)}),
        "deep": [[[[[[[[[[{"k": (10**30,)}]]]]]]]]]],
    }
    assert_identical(round_trip(codec, nested), nested, "data")


def test_key_order_is_kept_at_every_level() -> None:
    codec = SessionCodec()
    data = {"z": 1, "a": {"y": 1, "b": 2, "m": 3}, "m": {3: "c", 1: "a", 2: "b"}}
    back = round_trip(codec, data)
    assert list(back) == ["z", "a", "m"]
    assert list(back["a"]) == ["y", "b", "m"]
    assert list(back["m"]) == [3, 1, 2]


def test_bool_int_and_float_keep_apart() -> None:
    codec = SessionCodec()
    data = {"values": [True, 1, 1.0, False, 0, 0.0], "keys": {True: "t", 2: "i", 3.5: "f"}}
    assert_identical(round_trip(codec, data), data, "data")


# -- registered types -------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    where: Point
    tags: tuple[str, ...] = ()
    cached: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cached", len(self.name))


class Colour(enum.Enum):
    RED = "red"
    PAIR = (1, 2)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    READ = "r"


class Perm(enum.Flag):
    R = 4
    W = 2


class Pair(NamedTuple):
    left: Any
    right: Any


LegacyPair = collections.namedtuple("LegacyPair", "a b")


class Money:
    """A class that is none of the above: it needs an encode/decode pair."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents, self.currency = cents, currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.cents, self.currency) == (
            other.cents,
            other.currency,
        )

    def __hash__(self) -> int:
        return hash((self.cents, self.currency))


def registered_codec() -> SessionCodec:
    codec = SessionCodec()
    for cls in (Point, Frozen, Colour, Level, Mode, Perm, Pair, LegacyPair):
        codec.register(cls)
    codec.register(
        Money,
        encode=lambda m: (m.cents, m.currency),
        decode=lambda value: Money(*value),
    )
    return codec


def test_registered_types_round_trip() -> None:
    codec = registered_codec()
    frozen = Frozen("home", Point(1, 2), ("a", "b"))
    data = {
        "point": Point(3, 4),
        "frozen": frozen,
        "colour": Colour.RED,
        "colour-tuple": Colour.PAIR,
        "level": Level.HIGH,
        "mode": Mode.READ,
        "perm": Perm.R | Perm.W,
        "pair": Pair(Point(0, 0), [Colour.RED, {Money(5, "EUR")}]),
        "legacy": LegacyPair(1, (2, 3)),
        "money": Money(1999, "USD"),
        "as-key": {Money(1, "GBP"): frozen, Level.LOW: "low"},
    }
    back = round_trip(codec, data)
    assert_identical(back, data, "data")
    assert back["frozen"].cached == 4
    assert back["level"] is Level.HIGH


def test_registered_types_belong_to_one_store() -> None:
    raw = registered_codec().encode({"p": Point(1, 2)}, 0.0, 1.0, 1.0)
    with pytest.raises(DecodeError, match="not registered"):
        SessionCodec().decode(raw)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        pytest.param(Money, {}, "encode= and decode=", id="plain-class-without-pair"),
        pytest.param(Money, {"encode": repr}, "both", id="only-encode"),
        pytest.param(Money, {"decode": repr}, "both", id="only-decode"),
        pytest.param(Money, {"encode": "x", "decode": "y"}, "callable", id="not-callable"),
        pytest.param(Point(1, 2), {}, "class", id="an-instance"),
        pytest.param(dict, {}, "dict", id="dict-without-pair"),
        pytest.param(int, {"encode": str, "decode": int}, "natively", id="native-int"),
        pytest.param(str, {"encode": str, "decode": str}, "natively", id="native-str"),
        pytest.param(bool, {"encode": int, "decode": bool}, "natively", id="native-bool"),
    ],
)
def test_register_type_errors(cls: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        SessionCodec().register(cls, kwargs.get("encode"), kwargs.get("decode"))


class Unregistered:
    pass


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(Unregistered(), id="plain"),
        pytest.param([1, {"deep": (Unregistered(),)}], id="nested"),
        pytest.param(Point(1, 2), id="dataclass-not-registered"),
        pytest.param(collections.OrderedDict(a=1), id="dict-subclass"),
        pytest.param(bytearray(b"x"), id="bytearray"),
    ],
)
def test_unregistered_type_is_a_type_error_naming_it(value: Any) -> None:
    with pytest.raises(TypeError, match="register_type") as caught:
        SessionCodec().encode({"v": value}, 0.0, 1.0, 1.0)
    assert "Unregistered" in str(caught.value) or type(value).__name__ in str(caught.value)


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="itself"):
        SessionCodec().encode({"loop": loop}, 0.0, 1.0, 1.0)


def test_a_time_in_a_zone_without_fixed_offset_is_refused() -> None:
    with pytest.raises(TypeError, match="time zone"):
        SessionCodec().encode({"t": dt.time(8, tzinfo=PARIS)}, 0.0, 1.0, 1.0)


# -- decoding what storage hands back ---------------------------------------------------

pack = msgspec.msgpack.encode
Ext = msgspec.msgpack.Ext


class _Trap:
    ran = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Trap.spring, ())

    @staticmethod
    def spring() -> None:
        _Trap.ran = True


GARBAGE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\xc1", id="reserved-byte"),
    pytest.param(b"\x93\x01\x02", id="truncated-array"),
    pytest.param(b"not msgpack at all, just text", id="text"),
    pytest.param(b'{"json": true}', id="json"),
    pytest.param(pickle.dumps(_Trap()), id="pickle"),
    pytest.param(pack([1.0, 2.0, 3.0]), id="short-record"),
    pytest.param(pack([0.0, 1.0, 1.0, []]), id="data-not-a-map"),
    pytest.param(pack([0.0, 1.0, 1.0, {1: "x"}]), id="non-str-key"),
    pytest.param(pack(["0", 1.0, 1.0, {}]), id="times-not-numbers"),
    pytest.param(pack([True, 1.0, 1.0, {}]), id="bool-time"),
    pytest.param(pack({"version": 1}), id="a-map"),
    pytest.param(pack([0.0, 1.0, 1.0, {"v": Ext(99, b"")}]), id="unknown-ext"),
    pytest.param(pack([0.0, 1.0, 1.0, {"v": Ext(1, b"\xc1")}]), id="bad-ext-payload"),
    pytest.param(pack([0.0, 1.0, 1.0, {"v": Ext(6, pack(["nope", None]))}]), id="bad-date"),
    pytest.param(
        pack([0.0, 1.0, 1.0, {"v": Ext(6, pack(["2020-01-01T00:00", "../../etc/x"]))}]),
        id="zone-path",
    ),
    pytest.param(
        pack([0.0, 1.0, 1.0, {"v": Ext(12, pack(["subprocess.Popen", ["id"]]))}]),
        id="unregistered-class-name",
    ),
    pytest.param(pack([0.0, 1.0, 1.0, {"v": Ext(4, pack([[[1], 2]]))}]), id="unhashable-key"),
    pytest.param(pack([0.0, 1.0, 1.0, {"v": Ext(9, pack([10**10, 0, 0]))}]), id="overflow"),
    pytest.param(pack([0.0, 1.0, 1.0, {"v": Ext(5, pack("xyz"))}]), id="bad-bigint"),
    pytest.param(b"\x91" * 100_000 + b"\xc0", id="very-deep"),
]


@pytest.mark.parametrize("raw", GARBAGE)
def test_garbage_is_a_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        SessionCodec().decode(raw)
    assert _Trap.ran is False


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


@pytest.mark.parametrize(
    "times",
    [
        pytest.param([0.0, float("nan"), 1.0], id="nan-expiry"),
        pytest.param([0.0, float("inf"), 1.0], id="inf-expiry"),
        pytest.param([0.0, -5.0, 1.0], id="negative-expiry"),
        pytest.param([0.0, 0.0, 1.0], id="zero-expiry"),
        pytest.param([float("nan"), 1.0, 1.0], id="nan-created"),
        pytest.param([0.0, 1.0, float("nan")], id="nan-expires-at"),
        pytest.param([0.0, 1.0, float("inf")], id="inf-expires-at"),
    ],
)
def test_impossible_times_are_a_decode_error(times: list[float]) -> None:
    with pytest.raises(DecodeError):
        SessionCodec().decode(pack([*times, {}]))
