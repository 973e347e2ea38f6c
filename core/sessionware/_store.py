"""`Store`: the sessions of one configuration, on one storage (Fiber's `session.Store`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar, overload

from ._clock import SYSTEM_CLOCK, Clock
from ._codec import SessionCodec
from ._config import Config
from ._ids import check_id_argument, is_valid_id
from ._lifetime import Lifetime
from ._loader import resolve_storage
from ._persistence import Loaded, Persistence
from ._records import RecordFormat
from ._request import RequestContext
from ._request_ids import IdFinder
from ._response_headers import CookieWriter
from ._sealing import Sealer
from ._session import Session, SessionBase
from ._session_info import SessionInfo
from ._state import SessionState
from ._sync import SyncStore

logger = logging.getLogger("sessionware")

C = TypeVar("C", bound=RequestContext)


def _scope_of(request: object) -> Mapping[str, Any]:
    scope = getattr(request, "scope", None)
    if type(scope) is dict or isinstance(scope, Mapping):
        return scope
    if isinstance(request, Mapping) and "type" in request:
        return request
    raise TypeError(
        "store.get() takes a request (Starlette, FastAPI, Litestar), an object with an ASGI "
        f"`scope`, or the scope itself; got {type(request).__name__}"
    )


class Store:
    """Loads, creates and deletes sessions; one per configuration, shared by all requests.

    `clock` (unix seconds) is what every rule about time reads; tests pass a fake one.
    """

    def __init__(self, config: Config | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if config is None:
            config = Config()
        elif not isinstance(config, Config):
            raise TypeError(f"Store() takes a sessionware.Config, got {type(config).__name__}")
        self.config: Final = config
        self._storage = resolve_storage(config.storage, config.storage_options)
        self._codec = SessionCodec()
        sealer = Sealer(config.encryption_keys) if config.encryption_keys else None
        records = RecordFormat(self._codec, sealer, config.accept_plain_records)
        if config.owner_key is not None and not self._storage.has_compare_and_set:
            raise ValueError(
                f"Config.owner_key needs a storage with the storage_compare_and_set hook; "
                f"{self.backend} has none (every first-party plugin has it)"
            )
        self._io = Persistence(
            self._storage,
            records,
            Lifetime(config),
            clock,
            config.key_generator,
            config.owner_key,
            config.owner_max_sessions,
        )
        if not self._storage.has_compare_and_set:
            logger.warning(
                "%s storage has no storage_compare_and_set: concurrent saves of one session "
                "follow 'last save wins, whole', and a request that held a session someone "
                "logged out can write it back (R21, R24)",
                self.backend,
            )
        self._cookies = CookieWriter(config)
        self._finder = IdFinder(config.lookups)
        self.scope_key: Final = f"sessionware.store.{id(self):x}"
        #: The same methods as plain calls, for WSGI apps, scripts and Flask CLI commands.
        self.sync: Final = SyncStore(self, self._io, self._finder, self._request_state)

    @property
    def backend(self) -> str:
        """The storage's name: its entry point's name, or the class name of a plugin object."""
        return self._storage.name

    def __repr__(self) -> str:
        return f"<Store storage={self.backend!r} lookup={self.config.key_lookup!r}>"

    def register_type(
        self,
        cls: type,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        """Allow values of `cls` in sessions (dataclasses, enums, named tuples, or a pair)."""
        self._codec.register(cls, encode, decode)

    @overload
    def context_factory(self, *, auto_save: bool) -> Callable[[], RequestContext]: ...

    @overload
    def context_factory(self, kind: type[C], *, auto_save: bool) -> Callable[[], C]: ...

    def context_factory(
        self, kind: type[RequestContext] = RequestContext, *, auto_save: bool
    ) -> Callable[[], RequestContext]:
        """What a middleware calls to make each request's session context (a
        `RequestContext`, or its own subclass), which it puts where `get` finds it."""
        return functools.partial(kind, self._io, self._cookies, auto_save)

    async def get(self, request: object) -> Session:
        """The session of this request: loaded if its id is known, else a fresh one (R1-R5)."""
        scope = getattr(request, "scope", None)
        if type(scope) is not dict:  # a request object's scope is the common case
            scope = _scope_of(request)
        context: RequestContext | None = scope.get(self.scope_key)
        if context is None:
            raise RuntimeError(
                "store.get() found no SessionMiddleware for this store; wrap the ASGI app: "
                "app = SessionMiddleware(app, store=store)"
            )
        session = context.session
        if type(session) is Session:
            return session
        if session is None:
            found = self._finder.find(scope)
            loaded = None
            if found is not None:
                loaded = await self._io.load(found[0], found[1], renew=context.auto_save)
            if loaded is not None and loaded[1] is None:
                state = loaded[0]  # the common case: stored, and no renewal due
            else:
                state = self._request_state(context, loaded)
            if context.session is None:  # else a concurrent get() of this request won
                session = Session(state, self._io, context.response())
                context.session = session
                context.state = state
                return session
            session = context.session
            if type(session) is Session:
                return session
        raise RuntimeError("this request's session was loaded by sync code; use store.sync")

    def _request_state(self, context: RequestContext, loaded: Loaded | None) -> SessionState:
        """The state of the session a request names (R2), or a fresh one (R1, R3, R4)."""
        if loaded is None:
            return self._io.fresh()
        state, renewed = loaded
        if renewed is not None:  # R22: renewed on load, so the cookie is renewed too
            context.response().saved(state.id, state.origin, False, renewed)
        return state

    async def get_by_id(self, session_id: str) -> Session | None:
        """A stored session by id, outside any request; None when invalid, unknown or expired."""
        check_id_argument(session_id, "get_by_id")
        if not is_valid_id(session_id):
            return None
        loaded = await self._io.load(session_id)
        return None if loaded is None else Session(loaded[0], self._io, None)

    async def delete(self, session_id: str) -> None:
        """Delete one stored session; an id that could never be valid (R4) is ignored."""
        check_id_argument(session_id, "delete")
        if is_valid_id(session_id):
            await self._io.delete(session_id)

    async def sessions_of(self, owner: str | int) -> list[SessionInfo]:
        """S10: the owner's live sessions (data, handle, created, expires_at), oldest first."""
        return await self._io.sessions_of(self._owner_text(owner, "sessions_of"))

    async def revoke(
        self,
        owner: str | int,
        *,
        keep: SessionBase | SessionInfo | str | None = None,
        handles: Iterable[str] | None = None,
    ) -> int:
        """S10: log the owner out everywhere (only of `handles`, when given) except `keep`;
        returns how many live sessions it ended. Each is replaced by a short-lived tombstone,
        so no request still holding it, nor a login in flight, can bring it back (R24)."""
        kept = keep.handle if isinstance(keep, SessionBase | SessionInfo) else keep
        if kept is not None and not isinstance(kept, str):
            raise TypeError("store.revoke(keep=...) takes a Session, a SessionInfo or a handle")
        if isinstance(handles, str):
            raise TypeError("store.revoke(handles=...) takes a list of handles, not one")
        return await self._io.revoke(self._owner_text(owner, "revoke"), kept, handles)

    def _owner_text(self, owner: object, method: str) -> str:
        if self.config.owner_key is None:
            raise ValueError(f"store.{method}() needs Config(owner_key=...): what names an owner")
        if isinstance(owner, bool) or not isinstance(owner, str | int):
            raise TypeError(f"store.{method}() takes the owner as a str or an int")
        return str(owner)

    async def reset(self) -> None:
        """Delete every session of this store's storage."""
        await self._storage.reset()

    async def close(self) -> None:
        await self._storage.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
