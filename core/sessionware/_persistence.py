"""The I/O of sessions: loading, saving and ending them in storage, for one store.

Everything else in the core is plain objects; this is the one place that awaits storage.
A sync caller (WSGI) drives the same methods on the store's event loop thread.

Saves go through the storage's compare-and-set when it has one (R21, R24): what this request
changed is written on top of the latest stored record, and a record that is gone or was
replaced by a tombstone is never written back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet

import msgspec

from ._clock import Clock
from ._codec import DecodeError, RawRecord
from ._config import Source
from ._errors import StorageError
from ._ids import handle_of, new_id
from ._lifetime import Lifetime
from ._records import TOMBSTONE, RecordFormat, Unopenable
from ._save_turns import SaveTurns, Turn
from ._state import SessionState
from ._storage_calls import StorageCalls

logger = logging.getLogger("sessionware")

#: R21: how long a save keeps retrying a lost compare-and-set before it gives up.
SAVE_BUDGET = 5.0
#: The first pause after a lost compare-and-set, and the longest; each is jittered.
_FIRST_BACKOFF, _LONGEST_BACKOFF = 0.001, 0.05
#: How long a tombstone stays: longer than any request that could still hold the session.
TOMBSTONE_TTL = 600.0


class Persistence:
    """Sessions of one store in its storage: what `Session` and `Store` call to do I/O."""

    __slots__ = (
        "_key_generator",
        "_turns",
        "clock",
        "codec",
        "compare_and_set",
        "lifetime",
        "records",
        "storage",
    )

    def __init__(
        self,
        storage: StorageCalls,
        records: RecordFormat,
        lifetime: Lifetime,
        clock: Clock,
        key_generator: Callable[[], str],
    ) -> None:
        self.storage = storage
        self.compare_and_set = storage.has_compare_and_set
        self.codec = records.codec
        self.records = records
        self.lifetime = lifetime
        self.clock = clock
        self._key_generator = key_generator
        self._turns = SaveTurns()

    def new_id(self) -> str:
        return new_id(self._key_generator)

    def fresh(self) -> SessionState:
        """R1, R3: a new id, no data, nothing stored; costs no storage call."""
        now = self.clock()
        expiration = self.lifetime.expiration
        return SessionState(
            self.new_id(), {}, created=now, expiry=expiration, expires_at=now + expiration
        )

    # -- loading ----------------------------------------------------------------------------

    async def load(
        self, session_id: str, origin: Source | None = None, *, renew: bool = False
    ) -> tuple[SessionState, float | None] | None:
        """The stored session (R2), or None when unknown, expired or unreadable (R3, R13,
        R17). With `renew`, a session past half its expiry is saved again at once (R22); the
        second value is the TTL of that renewal, or None."""
        handle = handle_of(session_id)
        stored = await self.storage.get(handle)
        if stored is None or stored == TOMBSTONE:
            return None
        try:
            body = self.records.body(stored, handle)
            record = self.records.open(body)
        except Unopenable:
            return None  # S9: another configuration's record: unknown here, left in storage
        except DecodeError as exc:
            logger.warning(
                "session record %s… in %s storage could not be decoded (%s); deleting it",
                handle[:8],
                self.storage.name,
                exc,
            )
            await self.storage.delete(handle)
            return None
        now = self.clock()
        lifetime = self.lifetime
        if lifetime.is_over(record.created, record.expires_at, now):
            if record.expires_at > now:  # R13: past the absolute timeout, still stored
                await self.storage.delete(handle)
            return None
        state = SessionState(
            session_id,
            record.data,
            created=record.created,
            expiry=record.expiry,
            expires_at=record.expires_at,
            stored=stored,
            body=body,
            origin=origin,
        )
        if renew and lifetime.renewal_due(state.expiry, state.created, state.expires_at, now):
            return state, await self._renew(state, now)
        return state, None

    async def _renew(self, state: SessionState, now: float) -> float | None:
        """R22: the same record with a later expiry. Lost to another save: that save renewed
        it, and nothing is left to do."""
        ttl = self.lifetime.ttl(state.expiry, state.created, now)
        body = self.codec.encode(state.data, state.created, state.expiry, now + ttl)
        renewed = self.records.pack(body, state.handle)
        if self.compare_and_set:
            if not await self.storage.compare_and_set(state.handle, state.stored, renewed, ttl):
                return None
        else:
            await self.storage.set(state.handle, renewed, ttl)
        state.stored_as(renewed, body, now + ttl)
        return ttl

    # -- saving -----------------------------------------------------------------------------

    async def save(self, state: SessionState) -> float | None:
        """R6, R21: store what this request changed; returns the TTL written, or None when
        the session was ended by someone else, or expired, while this request held it (R24)."""
        if state.ended:
            return None
        now = self.clock()
        if state.destroyed:  # R8: a save after destroy() starts a new session
            state.restart(self.new_id(), now, state.expiry)
        if self.lifetime.is_over(state.created, state.expires_at, now):
            self._end(state, "expired while this request held it")
            return None
        if not self.compare_and_set:
            return await self._overwrite(state, now)
        key = state.handle
        turn = await self._turns.take(key)
        try:
            return await self._merge_in(state, turn)
        finally:
            self._turns.give_back(key, turn)

    async def _overwrite(self, state: SessionState, now: float) -> float:
        """A storage without compare-and-set: the last save wins, whole (R21)."""
        ttl = self.lifetime.ttl(state.expiry, state.created, now)
        body = self.codec.encode(state.data, state.created, state.expiry, now + ttl)
        stored = self.records.pack(body, state.handle)
        await self.storage.set(state.handle, stored, ttl)
        state.stored_as(stored, body, now + ttl)
        return ttl

    async def _merge_in(self, state: SessionState, turn: Turn) -> float | None:
        """R21: compare-and-set this request's changes onto the latest record, retrying."""
        changed = state.changed_keys(self._changed_in_place(state))
        expected, latest = state.stored, None
        if turn.latest is not None:  # another save of this process went first: start there
            expected, latest = turn.latest, self._raw(turn.latest, state.handle)
        deadline = time.monotonic() + SAVE_BUDGET
        pause = _FIRST_BACKOFF
        while True:
            now = self.clock()
            if latest is None:  # the fast path: the stored record is the one this request read
                created, expiry = state.created, state.expiry
                ttl = self.lifetime.ttl(expiry, created, now)
                body = self.codec.encode(state.data, created, expiry, now + ttl)
            else:
                created = latest.created
                expiry = state.expiry if state.expiry_changed else latest.expiry
                ttl = self.lifetime.ttl(expiry, created, now)
                if ttl <= 0:
                    self._end(state, "expired while this request held it")
                    return None
                merged = self._merged(state, latest, changed)
                body = self.codec.encode_merged(merged, created, expiry, now + ttl)
            stored = self.records.pack(body, state.handle)
            if await self.storage.compare_and_set(state.handle, expected, stored, ttl):
                if latest is not None:
                    self._take_merged(state, latest, changed, created, expiry)
                state.stored_as(stored, body, now + ttl)
                turn.latest = stored
                return ttl
            current = await self.storage.get(state.handle)
            if expected is None:
                if current == TOMBSTONE:  # S10: revoked before its first save landed
                    self._end(state, "revoked while this request held it")
                    return None
                if current is not None:
                    # R24: a new session's handle is in use (a key generator that repeats):
                    # never overwrite another client's session; take a new id instead.
                    state.renew_id(self.new_id())
            else:
                latest = None if current is None else self._raw(current, state.handle)
                if latest is None or self.lifetime.is_over(latest.created, latest.expires_at, now):
                    self._end(state, "ended or expired while this request held it")
                    return None
                expected = current
            if time.monotonic() > deadline:
                raise StorageError(
                    f"{self.storage.name} storage: could not save the session: another save "
                    f"changed it first at every attempt for {SAVE_BUDGET:g} s",
                    backend=self.storage.name,
                )
            await asyncio.sleep(random.uniform(0, pause))
            pause = min(pause * 2, _LONGEST_BACKOFF)

    def _raw(self, stored: bytes, handle: str) -> RawRecord | None:
        """The latest record with its values still encoded; None when it cannot be read
        here (a tombstone, damaged, or sealed under a key this configuration lacks)."""
        if stored == TOMBSTONE:
            return None
        try:
            body = self.records.body(stored, handle)
            self.records.open(body)  # the full check of a record, types and times included
            return self.records.open_raw(body)
        except (DecodeError, Unopenable):
            return None

    def _merged(
        self, state: SessionState, latest: RawRecord, changed: AbstractSet[str]
    ) -> dict[str, msgspec.Raw]:
        merged = dict(latest.data)
        for key in state.deleted_keys:
            merged.pop(key, None)
        encode = self.codec.encode_value
        for key in changed:
            merged[key] = msgspec.Raw(encode(state.data[key]))
        return merged

    def _take_merged(
        self,
        state: SessionState,
        latest: RawRecord,
        changed: AbstractSet[str],
        created: float,
        expiry: float,
    ) -> None:
        """After a merge, the session holds what was stored: others' keys included."""
        decode = self.codec.decode_value
        merged = dict(latest.data)
        for key in state.deleted_keys:
            merged.pop(key, None)
        for key in changed:
            merged[key] = msgspec.Raw(b"")  # a place in the order; the value is ours
        state.data = {
            key: state.data[key] if key in changed else decode(bytes(raw))
            for key, raw in merged.items()
        }
        state.created = created
        state.expiry = expiry

    def _end(self, state: SessionState, why: str) -> None:
        logger.info("session record %s… not saved: %s", state.handle[:8], why)
        state.end(self.new_id(), self.clock(), self.lifetime.expiration)

    # -- ending -----------------------------------------------------------------------------

    async def destroy(self, state: SessionState) -> None:
        """R8: delete the stored entry and clear the data; the expiry starts over."""
        if state.ended:
            return
        await self._forget(state)
        state.data.clear()
        state.set_keys.clear()
        state.deleted_keys.clear()
        state.expiry = self.lifetime.expiration
        state.expiry_changed = False
        state.destroyed = True

    async def regenerate(self, state: SessionState) -> None:
        """R9: the latest stored data with this request's changes, under a new id; the old
        entry is ended at once, by compare-and-set so that no update to it is lost."""
        if state.ended:
            return
        if state.stored is not None and self.compare_and_set:
            key = state.handle
            turn = await self._turns.take(key)
            try:
                ended = await self._end_entry(state, turn)
            finally:
                self._turns.give_back(key, turn)
            if not ended:
                return
            await self.storage.delete(key)  # the tombstone did its work: the entry is gone
        else:
            await self._forget(state)
        state.renew_id(self.new_id())

    async def _end_entry(self, state: SessionState, turn: Turn) -> bool:
        """Replace the stored record by a tombstone, taking in what others stored first."""
        changed = state.changed_keys(self._changed_in_place(state))
        expected = state.stored if turn.latest is None else turn.latest
        deadline = time.monotonic() + SAVE_BUDGET
        pause = _FIRST_BACKOFF
        while True:
            if expected is not state.stored:
                latest = None if expected is None else self._raw(expected, state.handle)
                now = self.clock()
                if latest is None or self.lifetime.is_over(latest.created, latest.expires_at, now):
                    self._end(state, "ended by another request while this one held it")
                    return False
                expiry = state.expiry if state.expiry_changed else latest.expiry
                self._take_merged(state, latest, changed, latest.created, expiry)
            if await self.storage.compare_and_set(state.handle, expected, TOMBSTONE, TOMBSTONE_TTL):
                return True
            expected = await self.storage.get(state.handle)
            if expected is None or expected == TOMBSTONE:
                self._end(state, "ended by another request while this one held it")
                return False
            if time.monotonic() > deadline:
                raise StorageError(
                    f"{self.storage.name} storage: could not regenerate the session: another "
                    f"save changed it first at every attempt for {SAVE_BUDGET:g} s",
                    backend=self.storage.name,
                )
            await asyncio.sleep(random.uniform(0, pause))
            pause = min(pause * 2, _LONGEST_BACKOFF)

    async def reset(self, state: SessionState) -> None:
        """R10: no data, a new id, the old entry deleted."""
        if state.ended:
            return
        await self._forget(state)
        state.data.clear()
        state.restart(self.new_id(), self.clock(), self.lifetime.expiration)

    async def delete(self, session_id: str) -> None:
        await self.storage.delete(handle_of(session_id))

    async def _forget(self, state: SessionState) -> None:
        if state.stored is not None:
            await self.storage.delete(state.handle)
            state.forget_stored()

    # -- deciding ---------------------------------------------------------------------------

    def wants_auto_save(self, state: SessionState) -> bool:
        """R19: changed (and not fresh-and-empty, nor destroyed-and-empty), never ended."""
        if state.ended:
            return False
        if not (state.has_explicit_changes() or self._changed_in_place(state)):
            return False
        return bool(state.data) or not (state.fresh or state.destroyed)

    def _changed_in_place(self, state: SessionState) -> list[str]:
        """R19: the loaded keys whose value no longer encodes as it did when loaded."""
        keys = state.keys_to_recheck()
        if not keys or state.body is None:
            return []
        stored = self.records.open_raw(state.body).data
        encode = self.codec.encode_value
        return [key for key in keys if encode(state.data[key]) != bytes(stored[key])]
