"""The sync twins (S11): `SyncSession` and `store.sync`, for WSGI apps, Flask and scripts.

They hold the same states and call the same `Persistence` as the async API; only the waiting
differs, through the store's `SyncBridge`. Storage plugins stay async and unaware of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from ._ids import check_id_argument, is_valid_id
from ._persistence import Loaded, Persistence
from ._request import RequestContext
from ._request_ids import IdFinder
from ._response_headers import ResponseOwed
from ._session import SessionBase
from ._session_info import SessionInfo
from ._state import SessionState
from ._sync_bridge import SyncBridge

T = TypeVar("T")


class SyncSession(SessionBase):
    """A session whose `save`, `destroy`, `regenerate` and `reset` are plain calls."""

    __slots__ = ("_bridge",)

    def __init__(
        self,
        state: SessionState,
        io: Persistence,
        owed: ResponseOwed | None,
        bridge: SyncBridge,
    ) -> None:
        super().__init__(state, io, owed)
        self._bridge = bridge

    def save(self) -> None:
        """R6: store the data with this session's expiry as TTL, then send the id back."""
        self._saved(self._bridge.run(self._io.save(self._state)))

    def destroy(self) -> None:
        """R8: delete the stored entry, clear the data, expire the client's cookie."""
        self._bridge.run(self._io.destroy(self._state))
        self._expired()

    def regenerate(self) -> None:
        """R9: the latest data under a new id; the old entry is ended at once."""
        self._bridge.run(self._io.regenerate(self._state))
        self._regenerated()

    def reset(self) -> None:
        """R10: no data, a new id, the old entry deleted and the client's cookie expired."""
        self._bridge.run(self._io.reset(self._state))
        self._expired()


class _AsyncStore(Protocol):
    """What `store.sync` calls on its store (a `Store`)."""

    async def delete(self, session_id: str) -> None: ...

    async def reset(self) -> None: ...

    async def close(self) -> None: ...

    async def sessions_of(self, owner: str | int) -> list[SessionInfo]: ...

    async def revoke(
        self,
        owner: str | int,
        *,
        keep: SessionBase | SessionInfo | str | None = ...,
        handles: Iterable[str] | None = ...,
    ) -> int: ...


RequestState = Callable[[RequestContext, Loaded | None], SessionState]


class SyncStore:
    """`store.sync`: every async method of `Store` as a plain call with the same name and
    arguments, for WSGI apps, scripts and Flask CLI commands (S11)."""

    __slots__ = ("_bridge", "_finder", "_io", "_request_state", "_store")

    def __init__(
        self,
        store: _AsyncStore,
        io: Persistence,
        finder: IdFinder,
        request_state: RequestState,
    ) -> None:
        self._store = store
        self._io = io
        self._finder = finder
        self._request_state = request_state
        self._bridge = SyncBridge()

    def get_by_id(self, session_id: str) -> SyncSession | None:
        """A stored session by id, outside any request; None when invalid, unknown or expired."""
        check_id_argument(session_id, "sync.get_by_id")
        if not is_valid_id(session_id):
            return None
        loaded = self._bridge.run(self._io.load(session_id))
        return None if loaded is None else SyncSession(loaded[0], self._io, None, self._bridge)

    def delete(self, session_id: str) -> None:
        self._bridge.run(self._store.delete(session_id))

    def reset(self) -> None:
        self._bridge.run(self._store.reset())

    def sessions_of(self, owner: str | int) -> list[SessionInfo]:
        return self._bridge.run(self._store.sessions_of(owner))

    def revoke(
        self,
        owner: str | int,
        *,
        keep: SessionBase | SessionInfo | str | None = None,
        handles: Iterable[str] | None = None,
    ) -> int:
        return self._bridge.run(self._store.revoke(owner, keep=keep, handles=handles))

    def close(self) -> None:
        """Close the storage, then this process's event loop for sync callers."""
        self._bridge.run(self._store.close())
        self._bridge.close()

    def request_session(self, context: RequestContext, scope: Mapping[str, Any]) -> SyncSession:
        """The session of a request a WSGI middleware made `context` for; `scope` carries
        its headers and query string as ASGI would (see `sessionware.wsgi`)."""
        if context.session is None:
            found = self._finder.find(scope)
            loaded = None
            if found is not None:
                load = self._io.load(found[0], found[1], renew=context.auto_save)
                loaded = self._bridge.run(load)
            state = self._request_state(context, loaded)
            context.session = SyncSession(state, self._io, context.response(), self._bridge)
            context.state = state
        session = context.session
        if not isinstance(session, SyncSession):
            raise RuntimeError("this request's session was loaded by async code; use store.get")
        return session

    def save_if_due(self, context: RequestContext, status: int) -> None:
        """R19, for a WSGI middleware when the response starts: auto-save if it is due."""
        session = context.session
        if isinstance(session, SyncSession) and context.auto_save_due(status):
            session.save()
