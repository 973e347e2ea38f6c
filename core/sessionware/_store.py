"""`Store`: the sessions of one configuration, on one storage (Fiber's `session.Store`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final

from ._codec import DecodeError, Record, SessionCodec
from ._config import Config
from ._exchange import Exchange
from ._http import IdFinder, ResponseWriter, is_valid_id
from ._loader import resolve_storage
from ._session import Session

logger = logging.getLogger("sessionware")


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


def _check_id_argument(session_id: object, method: str) -> None:
    if not isinstance(session_id, str):
        raise TypeError(f"store.{method}() takes the session id as a str")
    if not session_id:
        raise ValueError(f"store.{method}() needs a session id, got an empty string")


class Store:
    """Loads, creates and deletes sessions; one per configuration, shared by all requests."""

    def __init__(self, config: Config | None = None) -> None:
        if config is None:
            config = Config()
        elif not isinstance(config, Config):
            raise TypeError(f"Store() takes a sessionware.Config, got {type(config).__name__}")
        self.config: Final = config
        self._storage = resolve_storage(config.storage, config.storage_options)
        self._codec = SessionCodec()
        self._writer = ResponseWriter(config)
        self._finder = IdFinder(config.lookups)
        self._expiration = config.expiration.total_seconds()  # type: ignore[union-attr]
        absolute = config.absolute_timeout
        self._absolute: float | None = (
            None if absolute is None else absolute.total_seconds()  # type: ignore[union-attr]
        )
        self._key_generator = config.key_generator
        self.scope_key: Final = f"sessionware.store.{id(self):x}"

    @property
    def backend(self) -> str:
        """The storage's name: its entry point's name, or the class name of a plugin object."""
        return self._storage.name

    def __repr__(self) -> str:
        return f"<Store storage={self._storage.name!r} lookup={self.config.key_lookup!r}>"

    def register_type(
        self,
        cls: type,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        """Allow values of `cls` in sessions (dataclasses, enums, named tuples, or a pair)."""
        self._codec.register(cls, encode, decode)

    async def get(self, request: object) -> Session:
        """The session of this request: loaded if its id is known, else a fresh one (R1-R5)."""
        scope = _scope_of(request)
        exchange: Exchange | None = scope.get(self.scope_key)
        if exchange is None:
            raise RuntimeError(
                "store.get() found no SessionMiddleware for this store; wrap the ASGI app: "
                "app = SessionMiddleware(app, store=store)"
            )
        if exchange.session is not None:
            return exchange.session
        found = self._finder.find(scope)
        record = None if found is None else await self._load(found[0])
        if exchange.session is not None:  # a concurrent get() of this request won the race
            return exchange.session
        if found is None or record is None:
            session = self._fresh_session(exchange)
        else:
            session = self._session_from(found[0], record, exchange, found[1])
        exchange.session = session
        return session

    async def get_by_id(self, session_id: str) -> Session | None:
        """A stored session by id, outside any request; None when invalid, unknown or expired."""
        _check_id_argument(session_id, "get_by_id")
        if not is_valid_id(session_id):
            return None
        record = await self._load(session_id)
        if record is None:
            return None
        return self._session_from(session_id, record, None, None)

    async def delete(self, session_id: str) -> None:
        """Delete one stored session; an id that could never be valid (R4) is ignored."""
        _check_id_argument(session_id, "delete")
        if is_valid_id(session_id):
            await self._storage.delete(session_id)

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

    # -- used by Session and the middleware ---------------------------------------------

    def _new_id(self) -> str:
        session_id = self._key_generator()
        if not isinstance(session_id, str) or not is_valid_id(session_id):
            raise ValueError(
                f"Config.key_generator returned {session_id!r}; a session id is 1-128 "
                "characters of A-Z a-z 0-9 - _ . ~ + / ="
            )
        return session_id

    def _ttl(self, expiry: float, created: float, now: float) -> float:
        """R13: the expiry, capped by what is left of the absolute lifetime."""
        if self._absolute is None:
            return expiry
        return min(expiry, created + self._absolute - now)

    def _fresh_session(self, exchange: Exchange | None) -> Session:
        now = time.time()
        expiration = self._expiration
        return Session(self, exchange, self._new_id(), {}, expiration, now, now + expiration, True)

    def _session_from(
        self, session_id: str, record: Record, exchange: Exchange | None, origin: Any
    ) -> Session:
        return Session(
            self,
            exchange,
            session_id,
            record.data,
            record.expiry,
            record.created,
            record.expires_at,
            False,
            origin,
        )

    async def _load(self, session_id: str) -> Record | None:
        raw = await self._storage.get(session_id)
        if raw is None:
            return None
        try:
            record = self._codec.decode(raw)
        except DecodeError as exc:
            logger.warning(
                "session %s… in %s storage could not be decoded (%s); deleting it",
                session_id[:8],
                self._storage.name,
                exc,
            )
            await self._storage.delete(session_id)
            return None
        now = time.time()
        if record.expires_at <= now:
            return None
        if self._absolute is not None and record.created + self._absolute <= now:
            await self._storage.delete(session_id)
            return None
        return record
