"""FastAPI dependency: ``session: Annotated[Session, Depends(session_dependency(store))]``.

Importing this module imports FastAPI; the rest of sessionware never does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from ._session import Session
from ._store import Store

__all__ = ["session_dependency"]


def session_dependency(store: Store) -> Callable[[Request], Awaitable[Session]]:
    """A dependency that gives a handler the session of its request from `store`."""

    async def current_session(request: Request) -> Session:
        return await store.get(request)

    return current_session
