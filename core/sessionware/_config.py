"""`Config` and `Source`: the settings of a `Store`, checked once when they are built."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

DEFAULT_EXPIRATION: Final = timedelta(hours=24)
KEY_BYTES: Final = 32
# The longest lifetime a session can have: `Session.expiry` must still be a timedelta.
LONGEST_EXPIRY: Final = timedelta.max.total_seconds()

# RFC 7230 token characters: what a cookie or header name may contain.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What a Domain or Path attribute may hold: printable ASCII, nothing that ends the attribute.
_COOKIE_ATTRIBUTE = re.compile(r"[\x20-\x2b\x2d-\x3a\x3c-\x7e]*")
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


class Source(StrEnum):
    """Where a session id is looked up in the request."""

    COOKIE = "cookie"
    HEADER = "header"
    URL_QUERY = "query"


def _new_uuid4() -> str:
    """Fiber's default: a random (version 4) UUID as text."""
    return str(uuid.uuid4())


def _seconds(value: object, field_name: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"Config.{field_name} must be a timedelta or seconds, got {type(value).__name__}"
        )
    try:
        return timedelta(seconds=value)
    except (OverflowError, ValueError):  # infinity, NaN, or beyond what a timedelta holds
        raise ValueError(
            f"Config.{field_name} must be a finite number of seconds, got {value!r}"
        ) from None


def parse_key_lookup(key_lookup: str) -> tuple[tuple[Source, str], ...]:
    """Split ``"cookie:sid, header:X-Id"`` into ``((COOKIE, "sid"), (HEADER, "x-id"))``."""
    if not isinstance(key_lookup, str):
        raise TypeError(f"Config.key_lookup must be a str, got {type(key_lookup).__name__}")
    lookups: list[tuple[Source, str]] = []
    for part in key_lookup.split(","):
        source_name, sep, name = part.strip().partition(":")
        name = name.strip()
        try:
            source = Source(source_name.strip().lower())
        except ValueError:
            source = None
        if not sep or source is None or not _TOKEN.fullmatch(name):
            raise ValueError(
                f"Config.key_lookup: {part.strip()!r} is not '<source>:<name>' with source one "
                "of cookie, header, query and a name of letters, digits or !#$%&'*+-.^_`|~ "
                '(example: "cookie:session_id, header:X-Session-ID")'
            )
        lookup = (source, name.lower() if source is Source.HEADER else name)
        if lookup in lookups:
            # R11: the same cookie or header twice would be written twice in one response.
            raise ValueError(f"Config.key_lookup names {source.value}:{name} twice")
        lookups.append(lookup)
    return tuple(lookups)


@dataclass(frozen=True, init=False)
class Config:
    """How sessions are kept: lifetime, storage, where the id travels, cookie attributes.

    Checked once, when built; frozen, so the `Store` built from it can never disagree with
    it. Durations are given as a `timedelta` or seconds and held as a `timedelta`.
    """

    expiration: timedelta
    absolute_timeout: timedelta | None
    storage: str | object
    storage_options: Mapping[str, Any]
    key_lookup: str
    cookie_domain: str
    cookie_path: str
    cookie_secure: bool
    cookie_http_only: bool
    cookie_same_site: str
    cookie_session_only: bool
    cookie_partitioned: bool
    key_generator: Callable[[], str]
    cookie_name: str | None
    encryption_keys: tuple[bytes, ...] = field(repr=False)
    accept_plain_records: bool
    owner_key: str | None
    owner_max_sessions: int | None
    lookups: tuple[tuple[Source, str], ...] = field(repr=False, compare=False)

    def __init__(
        self,
        *,
        expiration: timedelta | float = DEFAULT_EXPIRATION,
        absolute_timeout: timedelta | float | None = None,
        storage: str | object = "memory",
        storage_options: Mapping[str, Any] | None = None,
        key_lookup: str = "cookie:session_id",
        cookie_domain: str = "",
        cookie_path: str = "",
        cookie_secure: bool = False,
        cookie_http_only: bool = True,
        cookie_same_site: str = "Lax",
        cookie_session_only: bool = False,
        cookie_partitioned: bool = False,
        key_generator: Callable[[], str] = _new_uuid4,
        cookie_name: str | None = None,
        encryption_keys: Sequence[bytes | str] = (),
        accept_plain_records: bool = False,
        owner_key: str | None = None,
        owner_max_sessions: int | None = None,
    ) -> None:
        held = _checked(
            expiration=expiration,
            absolute_timeout=absolute_timeout,
            storage=storage,
            storage_options={} if storage_options is None else storage_options,
            key_lookup=key_lookup,
            cookie_domain=cookie_domain,
            cookie_path=cookie_path,
            cookie_secure=cookie_secure,
            cookie_http_only=cookie_http_only,
            cookie_same_site=cookie_same_site,
            cookie_session_only=cookie_session_only,
            cookie_partitioned=cookie_partitioned,
            key_generator=key_generator,
            cookie_name=cookie_name,
            encryption_keys=encryption_keys,
            accept_plain_records=accept_plain_records,
            owner_key=owner_key,
            owner_max_sessions=owner_max_sessions,
        )
        for name, value in held.items():
            object.__setattr__(self, name, value)

    @property
    def secure(self) -> bool:
        """Whether cookies carry Secure: asked for, or forced by SameSite=None / Partitioned."""
        return self.cookie_secure or self.cookie_same_site == "None" or self.cookie_partitioned


def _checked(**given: Any) -> dict[str, Any]:
    """Every field as the config holds it, or the error that names the field."""
    held = dict(given)
    expiration = _seconds(given["expiration"], "expiration")
    if expiration < timedelta(0):
        raise ValueError(f"Config.expiration must not be negative, got {expiration}")
    held["expiration"] = expiration = expiration or DEFAULT_EXPIRATION
    if given["absolute_timeout"] is not None:
        absolute = _seconds(given["absolute_timeout"], "absolute_timeout")
        if absolute < expiration:
            raise ValueError(
                f"Config.absolute_timeout ({absolute}) must not be shorter than "
                f"expiration ({expiration}); raise it or leave it None"
            )
        held["absolute_timeout"] = absolute
    if not isinstance(given["storage_options"], Mapping):
        raise TypeError("Config.storage_options must be a mapping of keyword options")
    held["storage_options"] = MappingProxyType(dict(given["storage_options"]))
    cookie_name = given["cookie_name"]
    if cookie_name is not None:
        if not isinstance(cookie_name, str):
            raise TypeError("Config.cookie_name must be a str")
        if not _TOKEN.fullmatch(cookie_name):
            raise ValueError(
                f"Config.cookie_name {cookie_name!r} is not a cookie name (letters, "
                "digits or !#$%&'*+-.^_`|~)"
            )
        warnings.warn(
            f'Config.cookie_name is deprecated; use key_lookup="cookie:{cookie_name}" instead',
            DeprecationWarning,
            stacklevel=3,
        )
        held["key_lookup"] = f"cookie:{cookie_name}"
    held["lookups"] = parse_key_lookup(held["key_lookup"])
    for name in ("cookie_domain", "cookie_path", "cookie_same_site"):
        if not isinstance(given[name], str):
            raise TypeError(f"Config.{name} must be a str")
    for name in ("cookie_secure", "cookie_http_only", "cookie_session_only", "cookie_partitioned"):
        if not isinstance(given[name], bool):
            raise TypeError(f"Config.{name} must be True or False")
    same_site = _SAME_SITE.get(given["cookie_same_site"].lower())
    if same_site is None:
        raise ValueError(
            f"Config.cookie_same_site must be Strict, Lax or None, got "
            f"{given['cookie_same_site']!r}"
        )
    held["cookie_same_site"] = same_site
    for name in ("cookie_domain", "cookie_path"):
        if not _COOKIE_ATTRIBUTE.fullmatch(given[name]):
            raise ValueError(
                f"Config.{name} must be printable ASCII without ';' or ',', got {given[name]!r}"
            )
    if not callable(given["key_generator"]):
        raise TypeError("Config.key_generator must be a function that returns a new id")
    held["encryption_keys"] = _encryption_keys(given["encryption_keys"])
    if not isinstance(given["accept_plain_records"], bool):
        raise TypeError("Config.accept_plain_records must be True or False")
    owner_key, most = given["owner_key"], given["owner_max_sessions"]
    if owner_key is not None and (not isinstance(owner_key, str) or not owner_key):
        raise TypeError("Config.owner_key must be the session key that names the owner, a str")
    if most is not None:
        if isinstance(most, bool) or not isinstance(most, int):
            raise TypeError("Config.owner_max_sessions must be an int or None")
        if most < 1:
            raise ValueError(f"Config.owner_max_sessions must be at least 1, got {most}")
        if owner_key is None:
            raise ValueError("Config.owner_max_sessions needs owner_key: whose sessions to count")
    return held


def _encryption_keys(keys: object) -> tuple[bytes, ...]:
    """Each key as its 32 bytes; an error says which key is wrong, never what it holds."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
        raise TypeError(
            "Config.encryption_keys must be a list of keys (32 bytes, or the text "
            "`sessionware keygen` prints), not a single key"
        )
    held = []
    for number, key in enumerate(keys, start=1):
        if isinstance(key, str):
            try:
                raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            except (ValueError, binascii.Error):
                raw = b""
            if len(key) != 43 or len(raw) != KEY_BYTES:
                raise ValueError(
                    f"Config.encryption_keys: key {number} is not the 43 characters of URL-safe "
                    "base64 that `sessionware keygen` prints"
                )
            held.append(raw)
        elif isinstance(key, bytes):
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"Config.encryption_keys: key {number} is {len(key)} bytes, not {KEY_BYTES}"
                )
            held.append(key)
        else:
            raise TypeError(
                f"Config.encryption_keys: key {number} must be bytes or str, "
                f"got {type(key).__name__}"
            )
    return tuple(held)
