"""Session data as MessagePack: exact Python types back, and never any code run.

A record's body is ``[created, expiry, expires_at, data]``: unix times, seconds, and the
session's dictionary. Types MessagePack lacks travel as extension values whose payload is
MessagePack again, so the decoder rebuilds them in one pass. Nothing here uses pickle: the
only classes a record can build are the built-ins below and those given to `register_type`.

Every value encodes the same way each time (a set's members are sorted by their encoding),
so "does this value still encode as it did when loaded" tells whether it changed in place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Final, NamedTuple
from zoneinfo import ZoneInfo

import msgspec

from ._config import LONGEST_EXPIRY

_TUPLE, _SET, _FROZENSET, _DICT, _BIGINT = 1, 2, 3, 4, 5
_DATETIME, _DATE, _TIME, _TIMEDELTA, _DECIMAL, _UUID, _REGISTERED = 6, 7, 8, 9, 10, 11, 12

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
_FAR_TIME: Final = 4 * LONGEST_EXPIRY  # unix seconds, some million millennia away
_SCALARS: Final = frozenset({str, float, bool, type(None), bytes})
_NATIVE: Final = _SCALARS | {int}  # what msgspec packs as the same type it decodes

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


# Times no save could have written (NaN, infinite, absurd) would break the session later;
# msgspec refuses them while it decodes. Every real one is far inside these bounds.
_Time = Annotated[float, msgspec.Meta(ge=-_FAR_TIME, le=_FAR_TIME)]
_Expiry = Annotated[float, msgspec.Meta(gt=0, le=LONGEST_EXPIRY)]


class Record(msgspec.Struct, array_like=True, frozen=True):
    """A stored session; on the wire ``[created, expiry, expires_at, data, indexed_until]``.

    msgspec builds and checks it in C while it decodes: times are unix seconds, expiry is
    this session's lifetime in seconds (R12), `data` its values, and `indexed_until` how long
    its owner's index keeps an entry for it (S10; absent, 0, when it has no owner).
    """

    created: _Time
    expiry: _Expiry
    expires_at: _Time
    data: dict[str, Any]
    indexed_until: _Time = 0.0


class RawRecord(msgspec.Struct, array_like=True, frozen=True):
    """The same record with each value left encoded: what a merge (R21) works on."""

    created: float
    expiry: float
    expires_at: float
    data: dict[str, msgspec.Raw]
    indexed_until: float = 0.0


class DecodeError(ValueError):
    """Stored bytes that are not a session record of ours."""


class _Registered(NamedTuple):
    name: str
    encode: Encode
    decode: Decode


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _dataclass_pair(cls: type) -> tuple[Encode, Decode]:
    fields = dataclasses.fields(cls)
    init_names = [f.name for f in fields if f.init]
    late_names = [f.name for f in fields if not f.init]

    def encode(obj: Any) -> Any:
        return {f.name: getattr(obj, f.name) for f in fields}

    def decode(value: Any) -> Any:
        obj = cls(**{name: value[name] for name in init_names})
        for name in late_names:
            object.__setattr__(obj, name, value[name])
        return obj

    return encode, decode


def _default_pair(cls: type) -> tuple[Encode, Decode]:
    if dataclasses.is_dataclass(cls):
        return _dataclass_pair(cls)
    if issubclass(cls, enum.Enum):
        return (lambda obj: obj.value), cls
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return list, (lambda value: cls(*value))
    raise TypeError(
        f"register_type({cls.__qualname__}) needs encode= and decode= functions: without them "
        "only dataclasses, enums and named tuples can be registered"
    )


class SessionCodec:
    """Encodes and decodes session records for one store, with that store's registered types."""

    def __init__(self) -> None:
        self._by_type: dict[type, _Registered] = {}
        self._by_name: dict[str, _Registered] = {}
        self._packer = msgspec.msgpack.Encoder()
        self._unpacker = msgspec.msgpack.Decoder(ext_hook=self._from_ext)
        # The record's shape is checked by msgspec itself, in C, while it decodes.
        self._records = msgspec.msgpack.Decoder(Record, ext_hook=self._from_ext)
        self._raw_records = msgspec.msgpack.Decoder(RawRecord)
        self._converters: dict[type, Callable[[Any], Any]] = {
            int: self._int,
            list: self._list,
            dict: self._dict,
            tuple: lambda v: self._ext(_TUPLE, [self._wire(x) for x in v]),
            set: lambda v: self._ext(_SET, self._members(v)),
            frozenset: lambda v: self._ext(_FROZENSET, self._members(v)),
            dt.datetime: self._datetime,
            dt.date: lambda v: self._ext(_DATE, v.isoformat()),
            dt.time: self._time,
            dt.timedelta: lambda v: self._ext(_TIMEDELTA, [v.days, v.seconds, v.microseconds]),
            Decimal: lambda v: self._ext(_DECIMAL, str(v)),
            uuid.UUID: lambda v: self._ext(_UUID, v.bytes),
        }

    def register(
        self, cls: type, encode: Encode | None = None, decode: Decode | None = None
    ) -> None:
        if not isinstance(cls, type):
            raise TypeError(f"register_type expects a class, got {cls!r}")
        if (encode is None) != (decode is None):
            raise TypeError(
                f"register_type({cls.__qualname__}): give both encode= and decode=, or neither"
            )
        if encode is None or decode is None:
            encode, decode = _default_pair(cls)
        elif not (callable(encode) and callable(decode)):
            raise TypeError(
                f"register_type({cls.__qualname__}): encode and decode must be callable"
            )
        if cls in self._converters or cls in _SCALARS:
            raise TypeError(f"{cls.__qualname__} is stored natively and cannot be registered")
        entry = _Registered(_type_name(cls), encode, decode)
        self._by_type[cls] = entry
        self._by_name[entry.name] = entry

    def encode(
        self,
        data: dict[str, Any],
        created: float,
        expiry: float,
        expires_at: float,
        indexed_until: float = 0.0,
    ) -> bytes:
        """A record's body from live values (the fast path: one call to the packer)."""
        if _NATIVE.issuperset(map(type, data.values())):
            # Plain scalars only, as most sessions hold: msgspec packs the dictionary as it
            # is. An int beyond 64 bits is all it refuses; that takes the general path.
            try:
                if indexed_until:
                    return self._packer.encode([created, expiry, expires_at, data, indexed_until])
                return self._packer.encode([created, expiry, expires_at, data])
            except OverflowError:
                pass
        # Top-level strings and 64-bit ints are most other values: they skip `_wire`.
        scalars, wire_of = _SCALARS, self._wire
        wire: dict[str, Any] = {}
        try:
            for key, value in data.items():
                kind = type(value)
                if kind in scalars or (kind is int and _INT64_MIN <= value <= _UINT64_MAX):
                    wire[key] = value
                else:
                    wire[key] = wire_of(value)
        except RecursionError:
            raise ValueError("a session value refers to itself; it cannot be stored") from None
        return self._pack_record(wire, created, expiry, expires_at, indexed_until)

    def encode_merged(
        self,
        data: dict[str, msgspec.Raw],
        created: float,
        expiry: float,
        expires_at: float,
        indexed_until: float = 0.0,
    ) -> bytes:
        """A record's body from values that are encoded already."""
        return self._pack_record(data, created, expiry, expires_at, indexed_until)

    def _pack_record(
        self,
        data: Mapping[str, Any],
        created: float,
        expiry: float,
        expires_at: float,
        indexed_until: float,
    ) -> bytes:
        # The same array a `Record` decodes from; a list packs faster than a new Struct.
        if indexed_until:
            return self._packer.encode([created, expiry, expires_at, data, indexed_until])
        return self._packer.encode([created, expiry, expires_at, data])

    def encode_value(self, value: Any) -> bytes:
        try:
            return self._packer.encode(self._wire(value))
        except RecursionError:
            raise ValueError("a session value refers to itself; it cannot be stored") from None

    def decode(self, raw: bytes) -> Record:
        try:
            return self._records.decode(raw)
        except Exception as exc:
            raise DecodeError(f"not a session record: {type(exc).__name__}: {exc}") from exc

    def decode_raw(self, raw: bytes) -> RawRecord:
        """The record with its values still encoded; `raw` decoded with `decode` already."""
        return self._raw_records.decode(raw)

    def decode_value(self, raw: bytes) -> Any:
        return self._unpacker.decode(raw)

    # -- encoding -------------------------------------------------------------------------

    def _wire(self, value: Any) -> Any:
        cls = type(value)
        if cls in _SCALARS:
            return value
        converter = self._converters.get(cls)
        if converter is not None:
            return converter(value)
        registered = self._by_type.get(cls)
        if registered is not None:
            payload = self._wire(registered.encode(value))
            return self._ext(_REGISTERED, [registered.name, payload])
        raise TypeError(
            f"cannot store a value of type {_type_name(cls)} in a session; register it first "
            f"with store.register_type({cls.__qualname__}) (dataclasses, enums and named tuples "
            "need nothing more; other classes pass encode= and decode=)"
        )

    def _ext(self, code: int, payload: Any) -> msgspec.msgpack.Ext:
        return msgspec.msgpack.Ext(code, self._packer.encode(payload))

    def _int(self, value: int) -> Any:
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        return self._ext(_BIGINT, format(value, "x"))  # hex: no digit limit

    def _members(self, members: set[Any] | frozenset[Any]) -> list[msgspec.Raw]:
        """A set's members, each encoded, in the order of their encodings: canonical."""
        encoded = sorted(self._packer.encode(self._wire(member)) for member in members)
        return [msgspec.Raw(item) for item in encoded]

    def _list(self, value: list[Any]) -> list[Any]:
        return [self._wire(item) for item in value]

    def _dict(self, value: dict[Any, Any]) -> Any:
        if all(type(key) is str for key in value):
            return {key: self._wire(item) for key, item in value.items()}
        return self._ext(_DICT, [[self._wire(k), self._wire(v)] for k, v in value.items()])

    def _datetime(self, value: dt.datetime) -> Any:
        zone = value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else None
        return self._ext(_DATETIME, [value.isoformat(), zone])

    def _time(self, value: dt.time) -> Any:
        if value.tzinfo is not None and value.utcoffset() is None:
            raise TypeError("a time whose time zone has no fixed offset cannot be stored")
        return self._ext(_TIME, value.isoformat())

    # -- decoding -------------------------------------------------------------------------

    def _from_ext(self, code: int, data: memoryview) -> Any:
        payload = self._unpacker.decode(data)
        if code == _TUPLE:
            return tuple(payload)
        if code == _SET:
            return set(payload)
        if code == _FROZENSET:
            return frozenset(payload)
        if code == _DICT:
            return {key: value for key, value in payload}
        if code == _BIGINT:
            return int(payload, 16)
        if code == _DATETIME:
            text, zone = payload
            value = dt.datetime.fromisoformat(text)
            return value if zone is None else value.astimezone(ZoneInfo(zone))
        if code == _DATE:
            return dt.date.fromisoformat(payload)
        if code == _TIME:
            return dt.time.fromisoformat(payload)
        if code == _TIMEDELTA:
            days, seconds, micros = payload
            return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
        if code == _DECIMAL:
            return Decimal(payload)
        if code == _UUID:
            return uuid.UUID(bytes=payload)
        if code == _REGISTERED:
            name, value = payload
            registered = self._by_name.get(name)
            if registered is None:
                raise DecodeError(f"the type {name} is not registered with this store")
            return registered.decode(value)
        raise DecodeError(f"unknown extension type {code}")
