"""The I/O of sessions: loading, saving and ending them in storage, for one store.

Everything else in the core is plain objects; this is the one place that awaits storage.
A sync caller (WSGI) drives the same methods on the store's event loop thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._clock import Clock
from ._codec import DecodeError, SessionCodec
from ._config import Source
from ._ids import new_id
from ._lifetime import Lifetime
from ._records import RecordFormat
from ._state import SessionState
from ._storage_calls import StorageCalls

logger = logging.getLogger("sessionware")


class Persistence:
    """Sessions of one store in its storage: what `Session` and `Store` call to do I/O."""

    __slots__ = ("_key_generator", "clock", "codec", "lifetime", "records", "storage")

    def __init__(
        self,
        storage: StorageCalls,
        codec: SessionCodec,
        lifetime: Lifetime,
        clock: Clock,
        key_generator: Callable[[], str],
    ) -> None:
        self.storage = storage
        self.codec = codec
        self.records = RecordFormat(codec)
        self.lifetime = lifetime
        self.clock = clock
        self._key_generator = key_generator

    def new_id(self) -> str:
        return new_id(self._key_generator)

    def fresh(self) -> SessionState:
        """R1, R3: a new id, no data, nothing stored; costs no storage call."""
        now = self.clock()
        expiration = self.lifetime.expiration
        return SessionState(
            self.new_id(), {}, created=now, expiry=expiration, expires_at=now + expiration
        )

    async def load(
        self, session_id: str, origin: Source | None = None, *, renew: bool = False
    ) -> tuple[SessionState, float | None] | None:
        """The stored session (R2), or None when unknown, expired or unreadable (R3, R13,
        R17). With `renew`, a session past half its expiry is saved again at once (R22); the
        second value is the TTL of that renewal, or None."""
        stored = await self.storage.get(session_id)
        if stored is None:
            return None
        try:
            record = self.records.open(stored)
        except DecodeError as exc:
            logger.warning(
                "session %s… in %s storage could not be decoded (%s); deleting it",
                session_id[:8],
                self.storage.name,
                exc,
            )
            await self.storage.delete(session_id)
            return None
        now = self.clock()
        lifetime = self.lifetime
        if lifetime.is_over(record.created, record.expires_at, now):
            if record.expires_at > now:  # R13: past the absolute timeout, still stored
                await self.storage.delete(session_id)
            return None
        state = SessionState(
            session_id,
            record.data,
            created=record.created,
            expiry=record.expiry,
            expires_at=record.expires_at,
            stored=stored,
            origin=origin,
        )
        if renew and lifetime.renewal_due(state.expiry, state.created, state.expires_at, now):
            return state, await self._write(state, now)
        return state, None

    async def save(self, state: SessionState) -> float | None:
        """R6: store the data with the session's expiry as TTL; returns that TTL, or None
        when the session reached its absolute timeout meanwhile and was reset (R13)."""
        now = self.clock()
        if state.destroyed:  # R8: a save after destroy() starts a new session
            state.restart(self.new_id(), now, state.expiry)
        if self.lifetime.ttl(state.expiry, state.created, now) <= 0:
            # The absolute lifetime ran out during this request. It is a security limit
            # (sign in again), so the session ends as on load (R13) rather than living on.
            logger.info("session reached its absolute timeout while being saved; reset")
            await self.reset(state)
            return None
        return await self._write(state, now)

    async def _write(self, state: SessionState, now: float) -> float:
        ttl = self.lifetime.ttl(state.expiry, state.created, now)
        body = self.codec.encode(state.data, state.created, state.expiry, now + ttl)
        stored = self.records.pack(body)
        await self.storage.set(state.id, stored, ttl)
        state.stored_as(stored, now + ttl)
        return ttl

    async def destroy(self, state: SessionState) -> None:
        """R8: delete the stored entry and clear the data; the expiry starts over."""
        await self._forget(state)
        state.data.clear()
        state.set_keys.clear()
        state.deleted_keys.clear()
        state.expiry = self.lifetime.expiration
        state.expiry_changed = False
        state.destroyed = True

    async def regenerate(self, state: SessionState) -> None:
        """R9: the same data under a new id; the old entry is deleted at once."""
        await self._forget(state)
        state.renew_id(self.new_id())

    async def reset(self, state: SessionState) -> None:
        """R10: no data, a new id, the old entry deleted."""
        await self._forget(state)
        state.data.clear()
        state.restart(self.new_id(), self.clock(), self.lifetime.expiration)

    async def delete(self, session_id: str) -> None:
        await self.storage.delete(session_id)

    async def _forget(self, state: SessionState) -> None:
        if state.stored is not None:
            await self.storage.delete(state.id)
            state.forget_stored()

    def wants_auto_save(self, state: SessionState) -> bool:
        """R19: changed (and not fresh-and-empty, nor destroyed-and-empty)."""
        if not (state.has_explicit_changes() or self.changed_in_place(state)):
            return False
        return bool(state.data) or not (state.fresh or state.destroyed)

    def changed_in_place(self, state: SessionState) -> bool:
        """R19: a loaded value that no longer encodes as it did when loaded."""
        keys = state.keys_to_recheck()
        if not keys or state.stored is None:
            return False
        stored = self.records.open_raw(state.stored).data
        encode = self.codec.encode_value
        return any(encode(state.data[key]) != bytes(stored[key]) for key in keys)
