"""What one request knows about sessions: the session it loaded and what the response owes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from ._config import Source

if TYPE_CHECKING:
    from ._http import ResponseWriter
    from ._session import Session

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("sessionware")

_SERVER_ERROR = b"Internal Server Error"


class Exchange:
    """Per-request state that `SessionMiddleware` puts into the ASGI scope for its store."""

    __slots__ = ("_failed", "_pending_id", "_send", "auto_save", "pending", "session", "writer")

    def __init__(self, writer: ResponseWriter, auto_save: bool, send: Send) -> None:
        self.writer = writer
        self.auto_save = auto_save
        self.session: Session | None = None
        # R11: the last cookie action of the request wins, so one slot is enough.
        self.pending: list[tuple[bytes, bytes]] | None = None
        self._pending_id = False  # whether `pending` carries an id rather than expires it
        self._send = send
        self._failed = False

    def saved(self, session: Session, ttl: float) -> None:
        if session._origin is Source.URL_QUERY and not session._fresh:
            return  # R7: an id read from the query string is never echoed into a cookie
        self.pending = self.writer.id_headers(session._id, ttl)
        self._pending_id = True

    def expired(self) -> None:
        self.pending = self.writer.expiry_headers()
        self._pending_id = False

    def regenerated(self) -> None:
        """R9: an id saved earlier in this request is deleted now; never send it to the client."""
        if self._pending_id:
            self.pending = None
            self._pending_id = False

    async def send(self, message: Message) -> None:
        """The app's `send`, wrapped: session headers go out with the response start."""
        if self._failed:
            return
        if message["type"] == "http.response.start":
            session = self.session
            # A handler that failed (5xx) did not finish: its half-made changes are not saved.
            if (
                self.auto_save
                and session is not None
                and message.get("status", 200) < 500
                and session.needs_auto_save(time.time())
            ):
                try:
                    await session.save()
                except Exception:
                    logger.exception("saving the session after the handler failed")
                    self._failed = True
                    await self._answer_server_error()
                    return
            if self.pending is not None:
                message = {**message, "headers": [*message.get("headers", ()), *self.pending]}
        await self._send(message)

    async def _answer_server_error(self) -> None:
        await self._send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(_SERVER_ERROR)).encode()),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": _SERVER_ERROR})
