"""`SessionMiddleware`: plain ASGI that lets a store find its request and answer in headers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._request import RequestContext
from ._session import Session
from ._store import Store

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("sessionware")

_SERVER_ERROR = b"Internal Server Error"


class SessionMiddleware:
    """Wrap an ASGI app so that `store.get(request)` works inside it.

    Nothing is loaded until the app asks for its session; with ``auto_save=True`` a changed
    session is saved when the response starts (Fiber v3), otherwise only by ``save()``.
    """

    def __init__(self, app: ASGIApp, store: Store, *, auto_save: bool = False) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"SessionMiddleware needs store=Store(...), got {type(store).__name__}")
        self.app = app
        self.store = store
        self.auto_save = auto_save
        self._key = store.scope_key
        self._new_context = store.context_factory(_HTTPRequest, auto_save=auto_save)
        self._websocket_context = store.context_factory(auto_save=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            context = self._new_context()
            context.send = send
            context.failed = False
            scope[self._key] = context
            await self.app(scope, receive, context.response_start)
        elif kind == "websocket":
            # A websocket can read its session; its handshake has no response to carry a cookie.
            scope[self._key] = self._websocket_context()
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _HTTPRequest(RequestContext):
    """An ASGI request's session context, which also wraps the app's `send`: the auto-save
    and the session headers go out with the response start. (One object, not two: this is
    made for every request.)"""

    __slots__ = ("failed", "send")

    send: Send
    failed: bool

    async def response_start(self, message: Message) -> None:
        if self.failed:
            return
        if message["type"] == "http.response.start":
            session = self.session
            if (
                self.auto_save
                and self.auto_save_due(message.get("status", 200))
                and type(session) is Session
            ):
                try:
                    await session.save()
                except Exception:
                    logger.exception(
                        "auto-save failed: the session could not be stored; answering 500"
                    )
                    self.failed = True
                    await self._answer_server_error()
                    return
            owed = self.owed
            if owed is not None:
                headers = message.get("headers")
                if type(headers) is not list:  # a list the app made is extended where it is
                    headers = list(headers or ())
                    message = {**message, "headers": headers}
                owed.completed(headers)
        await self.send(message)

    async def _answer_server_error(self) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(_SERVER_ERROR)).encode()),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": _SERVER_ERROR})
