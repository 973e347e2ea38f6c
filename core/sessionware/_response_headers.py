"""What a response owes the client about its session: the id in cookies and headers (R6-R11),
and the cache headers that keep a shared cache from mixing users up (R23).

`CookieWriter` builds the header bytes once per configuration; `ResponseOwed` is one
request's account, fed plain values by whoever loaded, saved, ended or renewed the session.
"""

from __future__ import annotations

import math
from typing import Final

from ._config import Config, Source

_EXPIRED: Final = "Thu, 01 Jan 1970 00:00:00 GMT"
_PRIVATE: Final = (b"cache-control", b"private")
_URL_QUERY: Final = Source.URL_QUERY  # a module global reads faster than an enum member
#: The response headers that R23 merges with the app's own.
_WATCHED: Final = frozenset({b"vary", b"cache-control"})
_WATCHED_LENGTHS: Final = frozenset(len(name) for name in _WATCHED)

Headers = list[tuple[bytes, bytes]]


class CookieWriter:
    """The headers that carry a session id back, built from one `Config` once."""

    __slots__ = (
        "_cookie_prefixes",
        "_expiry_headers",
        "_header_names",
        "_last_tail",
        "_path",
        "_suffix",
        "before_pending",
        "has_cookies",
        "vary",
        "vary_headers",
        "vary_line",
    )

    def __init__(self, config: Config) -> None:
        cookie_names = [name for s, name in config.lookups if s is Source.COOKIE]
        self._cookie_prefixes = [f"{name}=".encode("latin-1") for name in cookie_names]
        self.has_cookies = bool(cookie_names)
        self._header_names = [
            name.encode("latin-1") for s, name in config.lookups if s is Source.HEADER
        ]
        # R23: what a response depends on once the session was read.
        self.vary: tuple[bytes, ...] = ((b"Cookie",) if cookie_names else ()) + tuple(
            self._header_names
        )
        self.vary_line = b", ".join(self.vary)
        #: What `completed` adds beside no pending headers, and before pending ones.
        self.vary_headers: Headers = [(b"vary", self.vary_line)] if self.vary else []
        self.before_pending = self.vary_headers + ([_PRIVATE] if cookie_names else [])
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
        self._last_tail: tuple[float, bytes] = (-1.0, b"")
        self._expiry_headers = [
            (b"set-cookie", f"{name}={expired}".encode("latin-1")) for name in cookie_names
        ]

    def id_headers(self, session_id: str, max_age: float) -> Headers:
        """R6: a Set-Cookie per cookie source and a header per header source."""
        value = session_id.encode("ascii")
        tail = self._path
        if self._suffix is not None:
            last_age, last_tail = self._last_tail
            if max_age == last_age:  # nearly every save: the configured expiration
                tail = last_tail
            else:
                seconds = max(0, math.ceil(max_age))
                tail += b"; Max-Age=" + str(seconds).encode() + self._suffix
                self._last_tail = (max_age, tail)
        headers = []
        for prefix in self._cookie_prefixes:
            headers.append((b"set-cookie", prefix + value + tail))
        for name in self._header_names:
            headers.append((name, value))
        return headers

    def expiry_headers(self) -> Headers:
        """R8: expire every session cookie; header sources get nothing."""
        return list(self._expiry_headers)


class ResponseOwed:
    """The session headers of one request that read its session (a response that depends
    on the session varies with it, R23). R11: the last action of the request wins."""

    __slots__ = ("_carries_id", "_writer", "pending")

    def __init__(self, writer: CookieWriter) -> None:
        self._writer = writer
        self.pending: Headers | None = None
        self._carries_id = False  # whether `pending` sends an id rather than expiring one

    def saved(self, session_id: str, origin: Source | None, fresh: bool, max_age: float) -> None:
        """R6: send the id back; R7: never an id that was read from the query string."""
        if origin is _URL_QUERY and not fresh:
            return
        self.pending = self._writer.id_headers(session_id, max_age)
        self._carries_id = True

    def expired(self) -> None:
        """R8, R10: the client's cookie is expired."""
        self.pending = self._writer.expiry_headers()
        self._carries_id = False

    def withdrawn(self) -> None:
        """R24: the session was ended by another request; this response says nothing of it."""
        self.pending = None
        self._carries_id = False

    def id_withdrawn(self) -> None:
        """R9: an id sent earlier in this request was deleted since; never send it."""
        if self._carries_id:
            self.pending = None
            self._carries_id = False

    def completed(self, headers: Headers) -> Headers:
        """The response's headers with what the session adds: `Vary` (R23) merged into the
        app's own, and the id or its expiry, with `Cache-Control: private` beside a cookie."""
        for name, _ in headers:
            if len(name) in _WATCHED_LENGTHS and name.lower() in _WATCHED:
                return self._merged_into(headers)
        # The common case: the app set neither header (a length check skips most names).
        writer = self._writer
        pending = self.pending
        if pending is None:
            headers.extend(writer.vary_headers)
        else:
            headers.extend(writer.before_pending)
            headers.extend(pending)
        return headers

    def _merged_into(self, headers: Headers) -> Headers:
        """`completed` for a response whose app set `Vary` or `Cache-Control` itself."""
        vary_at: list[int] = []
        cache_control = False
        for index, (name, _) in enumerate(headers):
            lowered = name.lower()
            if lowered == b"vary":
                vary_at.append(index)
            elif lowered == b"cache-control":
                cache_control = True
        vary = self.vary_value([headers[i][1] for i in vary_at])
        if vary is not None and vary_at:
            headers[vary_at[-1]] = (headers[vary_at[-1]][0], vary)
            for index in reversed(vary_at[:-1]):
                del headers[index]
        elif vary is not None:
            headers.append((b"vary", vary))
        headers.extend(self.extra_headers(cache_control))
        return headers

    def vary_value(self, app_vary: list[bytes]) -> bytes | None:
        """R23: the one `Vary` value to send in place of the app's lines, or None to leave
        them be: the session was not read, the app varies on `*`, or names it all already."""
        names = self._writer.vary
        if not names:
            return None
        if not app_vary:  # the common case: the app set no Vary of its own
            return self._writer.vary_line
        present = {token.strip().lower() for line in app_vary for token in line.split(b",")}
        if b"*" in present:
            return None
        missing = [name for name in names if name.lower() not in present]
        if not missing:
            return None
        return b", ".join([*(line for line in app_vary if line.strip()), *missing])

    def extra_headers(self, app_sets_cache_control: bool) -> Headers:
        """The id or its expiry (R6, R8), and `Cache-Control: private` beside a cookie
        unless the app chose its own (R23)."""
        pending = self.pending
        if pending is None:
            return []
        if self._writer.has_cookies and not app_sets_cache_control:  # `pending` sets a cookie
            return [_PRIVATE, *pending]
        return list(pending)
