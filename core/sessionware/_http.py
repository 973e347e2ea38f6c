"""Reading the session id from a request and writing it into a response, as raw ASGI bytes."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from ._config import Config, Source

_VALID_ID: Final = re.compile(r"[A-Za-z0-9\-_.~+/=]{1,128}")
_EXPIRED: Final = "Thu, 01 Jan 1970 00:00:00 GMT"


def is_valid_id(value: str) -> bool:
    """R4: 1-128 characters of ``A-Z a-z 0-9 - _ . ~ + / =``."""
    return _VALID_ID.fullmatch(value) is not None


_ID_BYTES: Final = rb"[A-Za-z0-9\-_.~+/=]{1,128}"
_HEADER_ID: Final = re.compile(rb"[ \t]*(" + _ID_BYTES + rb")[ \t]*")


def _cookie_pattern(name: str) -> re.Pattern[bytes]:
    """Matches `name=<valid id>` (optionally quoted) as a whole pair of a Cookie header.

    Only valid ids match, so the first match is the first valid one among duplicates, and a
    request's cookies are never decoded or split: this runs on every session lookup.
    """
    return re.compile(
        rb"(?:^|;)[ \t]*"
        + re.escape(name.encode("latin-1"))
        + rb'[ \t]*=[ \t]*(?:"('
        + _ID_BYTES
        + rb')"|('
        + _ID_BYTES
        + rb"))[ \t]*(?:;|$)"
    )


def _query_values(query: bytes, name: str) -> Iterable[str]:
    if name.encode("latin-1") not in query:
        return
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == name:
            yield value


class IdFinder:
    """Reads the first valid id along a lookup chain (R4) and says where it came from."""

    __slots__ = ("_steps",)

    def __init__(self, lookups: tuple[tuple[Source, str], ...]) -> None:
        self._steps: list[tuple[Source, str, bytes, re.Pattern[bytes] | None]] = [
            (
                source,
                name,
                b"cookie" if source is Source.COOKIE else name.encode("latin-1"),
                _cookie_pattern(name) if source is Source.COOKIE else None,
            )
            for source, name in lookups
        ]

    def find(self, scope: Mapping[str, Any]) -> tuple[str, Source] | None:
        headers = scope.get("headers") or ()
        for source, name, header_name, pattern in self._steps:
            if source is Source.URL_QUERY:
                for value in _query_values(scope.get("query_string") or b"", name):
                    if is_valid_id(value):
                        return value, source
                continue
            for header, raw in headers:
                if header != header_name:
                    continue
                if pattern is not None:
                    found = pattern.search(raw)
                    if found is not None:
                        return (found[1] or found[2]).decode("ascii"), source
                else:
                    found = _HEADER_ID.fullmatch(raw)
                    if found is not None:
                        return found[1].decode("ascii"), source
        return None


class ResponseWriter:
    """The headers that carry a session id back, built from one `Config` once."""

    __slots__ = (
        "_cookie_prefixes",
        "_expiry_headers",
        "_header_names",
        "_last_tail",
        "_path",
        "_suffix",
    )

    def __init__(self, config: Config) -> None:
        cookie_names = [name for s, name in config.lookups if s is Source.COOKIE]
        self._cookie_prefixes = [f"{name}=".encode("latin-1") for name in cookie_names]
        self._header_names = [
            name.encode("latin-1") for s, name in config.lookups if s is Source.HEADER
        ]
        attributes = []
        if config.cookie_domain:
            attributes.append(f"Domain={config.cookie_domain}")
        if config.secure:
            attributes.append("Secure")
        if config.cookie_http_only:
            attributes.append("HttpOnly")
        attributes.append(f"SameSite={config.cookie_same_site}")
        if config.cookie_partitioned:
            attributes.append("Partitioned")
        path = f"; Path={config.cookie_path or '/'}"
        suffix = "; " + "; ".join(attributes)
        self._path = path.encode("latin-1")
        # Session-only cookies carry no Max-Age: their whole tail is fixed.
        self._suffix: bytes | None = None if config.cookie_session_only else suffix.encode()
        if config.cookie_session_only:
            self._path += suffix.encode("latin-1")
        expired = f"{path}; Max-Age=0; Expires={_EXPIRED}{suffix}"
        self._last_tail: tuple[int, bytes] = (-1, b"")
        self._expiry_headers = [
            (b"set-cookie", f"{name}={expired}".encode("latin-1")) for name in cookie_names
        ]

    def id_headers(self, session_id: str, max_age: float) -> list[tuple[bytes, bytes]]:
        """R6: a Set-Cookie per cookie source and a header per header source."""
        value = session_id.encode("ascii")
        tail = self._path
        if self._suffix is not None:
            seconds = max(0, math.ceil(max_age))
            last_seconds, last_tail = self._last_tail
            if seconds == last_seconds:  # nearly every save: the configured expiration
                tail = last_tail
            else:
                tail += b"; Max-Age=" + str(seconds).encode() + self._suffix
                self._last_tail = (seconds, tail)
        headers = []
        for prefix in self._cookie_prefixes:
            headers.append((b"set-cookie", prefix + value + tail))
        for name in self._header_names:
            headers.append((name, value))
        return headers

    def expiry_headers(self) -> list[tuple[bytes, bytes]]:
        """R8: expire every session cookie; header sources get nothing."""
        return list(self._expiry_headers)
