"""Reading the session id from a request (R4, and the lookup chain), as raw header bytes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from ._config import Source
from ._ids import is_valid_id

_ID_BYTES: Final = rb"[A-Za-z0-9\-_.~+/=]{1,128}"
_HEADER_ID: Final = re.compile(rb"[ \t]*(" + _ID_BYTES + rb")[ \t]*")
_URL_QUERY: Final = Source.URL_QUERY  # a module global reads faster than an enum member


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
            if source is _URL_QUERY:
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


class EnvironLookup:
    """Where the lookup chain's ids are in a WSGI environ, read into the shape of an ASGI
    scope, so that `IdFinder` reads WSGI requests exactly as it reads ASGI ones."""

    __slots__ = ("_headers",)

    def __init__(self, lookups: tuple[tuple[Source, str], ...]) -> None:
        self._headers = [("HTTP_COOKIE", b"cookie")] + [
            ("HTTP_" + name.upper().replace("-", "_"), name.encode("latin-1"))
            for source, name in lookups
            if source is Source.HEADER
        ]

    def scope(self, environ: Mapping[str, Any]) -> dict[str, Any]:
        headers = [
            (name, environ[key].encode("latin-1")) for key, name in self._headers if key in environ
        ]
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        return {"type": "http", "headers": headers, "query_string": query}
