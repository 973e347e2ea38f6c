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


def _cookie_values(headers: Iterable[tuple[bytes, bytes]], name: str) -> Iterable[str]:
    for header, raw in headers:
        if header != b"cookie":
            continue
        for pair in raw.decode("latin-1").split(";"):
            key, sep, value = pair.partition("=")
            if not sep or key.strip() != name:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            yield value


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> Iterable[str]:
    for header, raw in headers:
        if header == name:
            yield raw.decode("latin-1").strip()


def _query_values(query: bytes, name: str) -> Iterable[str]:
    if name.encode("latin-1") not in query:
        return
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == name:
            yield value


def find_id(
    scope: Mapping[str, Any], lookups: tuple[tuple[Source, str], ...]
) -> tuple[str, Source] | None:
    """The first valid id along the lookup chain, and where it came from."""
    headers = scope.get("headers") or ()
    for source, name in lookups:
        if source is Source.COOKIE:
            values = _cookie_values(headers, name)
        elif source is Source.HEADER:
            values = _header_values(headers, name.encode("latin-1"))
        else:
            values = _query_values(scope.get("query_string") or b"", name)
        for value in values:
            if is_valid_id(value):
                return value, source
    return None


class ResponseWriter:
    """The headers that carry a session id back, built from one `Config` once."""

    __slots__ = ("_cookie_names", "_header_names", "_path", "_session_only", "_suffix")

    def __init__(self, config: Config) -> None:
        self._cookie_names = [name for s, name in config.lookups if s is Source.COOKIE]
        self._header_names = [
            name.encode("latin-1") for s, name in config.lookups if s is Source.HEADER
        ]
        self._path = f"; Path={config.cookie_path or '/'}"
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
        self._suffix = "; " + "; ".join(attributes)
        self._session_only = config.cookie_session_only

    @property
    def writes_anything(self) -> bool:
        return bool(self._cookie_names or self._header_names)

    def id_headers(self, session_id: str, max_age: float) -> list[tuple[bytes, bytes]]:
        """R6: a Set-Cookie per cookie source and a header per header source."""
        age = "" if self._session_only else f"; Max-Age={max(0, math.ceil(max_age))}"
        attrs = f"{self._path}{age}{self._suffix}"
        headers = [
            (b"set-cookie", f"{name}={session_id}{attrs}".encode("latin-1"))
            for name in self._cookie_names
        ]
        value = session_id.encode("latin-1")
        headers.extend((name, value) for name in self._header_names)
        return headers

    def expiry_headers(self) -> list[tuple[bytes, bytes]]:
        """R8: expire every session cookie; header sources get nothing."""
        return [
            (
                b"set-cookie",
                f"{name}={self._path}; Max-Age=0; Expires={_EXPIRED}{self._suffix}".encode(),
            )
            for name in self._cookie_names
        ]
