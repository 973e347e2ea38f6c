"""`RequestContext`: what one request knows about its session, whatever the server protocol.

A middleware (ASGI or WSGI) makes one per request and the store finds it again when the
app asks for the session; it holds the session once loaded and what the response owes.
"""

from __future__ import annotations

from ._persistence import Persistence
from ._response_headers import CookieWriter, ResponseOwed
from ._session import SessionBase
from ._state import SessionState


class RequestContext:
    """One request's session (loaded lazily), its state, and its response headers.

    `owed` stays None for a request that never reads its session: nothing to add then.
    """

    __slots__ = ("_io", "_writer", "auto_save", "owed", "session", "state")

    def __init__(self, io: Persistence, writer: CookieWriter, auto_save: bool) -> None:
        self._io = io
        self._writer = writer
        self.auto_save = auto_save
        self.owed: ResponseOwed | None = None
        self.session: SessionBase | None = None
        self.state: SessionState | None = None

    def response(self) -> ResponseOwed:
        """What this request's response owes: made when the session is first read."""
        owed = self.owed
        if owed is None:
            owed = self.owed = ResponseOwed(self._writer)
        return owed

    def auto_save_due(self, status: int) -> bool:
        """R19: auto-save is on, the session was loaded and changed (and is not fresh and
        empty, nor destroyed and empty), it was never ended, and the handler did not fail
        (a 5xx response's half-made changes are not stored)."""
        state = self.state
        if not self.auto_save or state is None or status >= 500 or state.ended:
            return False
        if not (
            state.set_keys
            or state.deleted_keys
            or state.expiry_changed
            or self._io.changed_in_place(state)
        ):
            return False
        return bool(state.data) or not (state.fresh or state.destroyed)
