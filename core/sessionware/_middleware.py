"""`SessionMiddleware`: plain ASGI that lets a store find its request and answer in headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._exchange import Exchange
from ._store import Store

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
        self._writer = store._writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            exchange = Exchange(self._writer, self.auto_save, send)
            scope[self._key] = exchange
            await self.app(scope, receive, exchange.send)
        elif kind == "websocket":
            # A websocket can read its session; its handshake has no response to carry a cookie.
            scope[self._key] = Exchange(self._writer, False, send)
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
