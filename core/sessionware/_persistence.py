"""The I/O of sessions: loading, saving and ending them in storage, for one store.

Everything else in the core is plain objects; this is the one place that awaits storage.
A sync caller (WSGI) drives the same methods on the store's event loop thread.

Saves go through the storage's compare-and-set when it has one (R21, R24): what this request
changed is written on top of the latest stored record, and a record that is gone or was
replaced by a tombstone is never written back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import msgspec

from ._clock import Clock
from ._codec import DecodeError, RawRecord, Record
from ._config import Source
from ._ids import handle_of, new_id
from ._lifetime import Lifetime
from ._owner_index import Entry, OwnerIndex, owner_in, stored_owner
from ._records import TOMBSTONE, RecordFormat, Unopenable
from ._retries import BUDGET, Retries
from ._save_turns import SaveTurns, Turn
from ._session_info import SessionInfo
from ._state import SessionState
from ._storage_calls import StorageCalls

logger = logging.getLogger("sessionware")

#: How long a tombstone stays: longer than any request that could still hold the session.
TOMBSTONE_TTL = 600.0
#: An index entry younger than this may point at a record its save has yet to write (S10).
_SETTLING = 2 * BUDGET


#: A loaded session's state, and the TTL of its renewal on load (R22) or None.
Loaded = tuple[SessionState, float | None]


class Persistence:
    """Sessions of one store in its storage: what `Session` and `Store` call to do I/O."""

    __slots__ = (
        "_index",
        "_key_generator",
        "_owner_max",
        "_turns",
        "clock",
        "codec",
        "compare_and_set",
        "lifetime",
        "owner_key",
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
        owner_key: str | None = None,
        owner_max: int | None = None,
    ) -> None:
        self.storage = storage
        self.compare_and_set = storage.has_compare_and_set
        self.codec = records.codec
        self.records = records
        self.lifetime = lifetime
        self.clock = clock
        self._key_generator = key_generator
        self._turns = SaveTurns()
        self.owner_key = owner_key
        self._owner_max = owner_max
        self._index = OwnerIndex(storage, records, clock)

    def new_id(self) -> str:
        return new_id(self._key_generator)

    def fresh(self) -> SessionState:
        """R1, R3: a new id, no data, nothing stored; costs no storage call."""
        now = self.clock()
        expiration = self.lifetime.expiration
        return SessionState(self.new_id(), {}, now, expiration, now + expiration)

    # -- loading ----------------------------------------------------------------------------

    async def load(
        self, session_id: str, origin: Source | None = None, *, renew: bool = False
    ) -> Loaded | None:
        """The stored session (R2), or None when unknown, expired or unreadable (R3, R13,
        R17). With `renew`, a session past half its expiry is saved again at once (R22); the
        second value is the TTL of that renewal, or None."""
        handle = handle_of(session_id)
        stored = await self.storage.get(handle)
        if stored is None or stored == TOMBSTONE:
            return None
        try:
            record, body = self.records.opened(stored, handle)
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
        created, expiry, expires_at = record.created, record.expiry, record.expires_at
        if self.lifetime.is_over(created, expires_at, now):
            if expires_at > now:  # R13: past the absolute timeout, still stored
                await self.storage.delete(handle)
            return None
        state = SessionState(
            session_id,
            record.data,
            created,
            expiry,
            expires_at,
            stored,
            handle,
            body,
            record.indexed_until,
            origin,
        )
        if renew and self.lifetime.renewal_due(expiry, created, expires_at, now):
            return state, await self._renew(state, now)
        return state, None

    async def _renew(self, state: SessionState, now: float) -> float | None:
        """R22: the same record with a later expiry. Lost to another save: that save renewed
        it, and nothing is left to do."""
        ttl = self.lifetime.ttl(state.expiry, state.created, now)
        owner = self._stored_owner(state.data)
        until = await self._index_first(
            state, owner, owner, state.created, now + ttl, state.expiry, state.indexed_until
        )
        body = self.codec.encode(state.data, state.created, state.expiry, now + ttl, until)
        renewed = self.records.pack(body, state.handle)
        if self.compare_and_set:
            if not await self.storage.compare_and_set(state.handle, state.stored, renewed, ttl):
                return None
        else:
            await self.storage.set(state.handle, renewed, ttl)
        state.stored_as(renewed, body, now + ttl, until)
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
        key = state.handle
        turn = None
        if self.compare_and_set:
            turn = self._turns.claim(key) or await self._turns.take(key)
        try:
            if turn is None or (turn.latest is None and self.owner_key is None):
                # The whole record as this request holds it: all there is to write when
                # nobody else wrote since this request read, as nearly always.
                ttl = self.lifetime.ttl(state.expiry, state.created, now)
                body = self.codec.encode(state.data, state.created, state.expiry, now + ttl)
                stored = self.records.pack(body, key)
                if turn is None:  # no compare-and-set: the last save wins, whole (R21)
                    await self.storage.set(key, stored, ttl)
                elif await self.storage.compare_and_set(key, state.stored, stored, ttl):
                    turn.latest = stored
                else:
                    return await self._merge_in(state, turn, lost=True)
                state.stored_as(stored, body, now + ttl)
                return ttl
            return await self._merge_in(state, turn, lost=False)
        finally:
            if turn is not None:
                self._turns.give_back(key, turn)

    async def _merge_in(self, state: SessionState, turn: Turn, *, lost: bool) -> float | None:
        """R21: compare-and-set this request's changes onto the latest record, retrying with
        jittered backoff; `lost`: an attempt already lost, so start from what storage holds."""
        changed = self._changed_keys(state)
        owned = self.owner_key is not None
        expected, latest = state.stored, None
        if turn.latest is not None:  # another save of this process went first: start there
            expected, latest = turn.latest, self._raw(turn.latest, state.handle)
        retries = Retries(self.storage.name, "save the session: another save changed it first")
        old_owner = new_owner = None
        until = 0.0
        while True:
            if lost:
                await retries.pause()
                found = await self._latest(state, expected)
                if found is None:
                    return None
                expected, latest = found
            now = self.clock()
            if latest is None:  # what this request read is what storage holds
                created, expiry = state.created, state.expiry
                if owned:
                    old_owner, until = self._stored_owner(state.base), state.indexed_until
            else:
                created = latest.created
                expiry = state.expiry if state.expiry_changed else latest.expiry
                if owned:
                    old_owner, until = self._stored_owner_raw(latest), latest.indexed_until
            ttl = self.lifetime.ttl(expiry, created, now)
            if ttl <= 0:
                self._end(state, "expired while this request held it")
                return None
            if owned:
                new_owner = self._new_owner(state, changed, old_owner)
                until = await self._index_first(
                    state, new_owner, old_owner, created, now + ttl, expiry, until
                )
            if latest is None:
                body = self.codec.encode(state.data, created, expiry, now + ttl, until)
            else:
                merged = self._merged(state, latest, changed)
                body = self.codec.encode_merged(merged, created, expiry, now + ttl, until)
            stored = self.records.pack(body, state.handle)
            if await self.storage.compare_and_set(state.handle, expected, stored, ttl):
                if latest is not None:
                    self._take_merged(state, latest, changed, created, expiry)
                state.stored_as(stored, body, now + ttl, until)
                turn.latest = stored
                if old_owner is not None and old_owner != new_owner:
                    # S10: removed only after the record stopped naming that owner
                    await self._index.leave(old_owner, [state.handle])
                return ttl
            lost = True

    async def _latest(
        self, state: SessionState, expected: bytes | None
    ) -> tuple[bytes | None, RawRecord | None] | None:
        """After a lost compare-and-set: what to expect and merge onto next, or None when the
        session has ended for this request (R24)."""
        current = await self.storage.get(state.handle)
        if expected is None:  # a new session's first save
            if current == TOMBSTONE:  # S10: revoked before its first save landed
                self._end(state, "revoked while this request held it")
                return None
            if current is not None:
                # R24: its handle is in use (a key generator that repeats): never overwrite
                # another client's session; take a new id instead.
                state.renew_id(self.new_id())
            return None, None
        latest = None if current is None else self._raw(current, state.handle)
        if latest is None or self.lifetime.is_over(latest.created, latest.expires_at, self.clock()):
            self._end(state, "ended or expired while this request held it")
            return None
        return current, latest

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

    # -- the owner index (S10) ------------------------------------------------------------

    def _stored_owner(self, data: Mapping[str, Any]) -> str | None:
        return None if self.owner_key is None else stored_owner(data, self.owner_key)

    def _stored_owner_raw(self, record: RawRecord) -> str | None:
        if self.owner_key is None or self.owner_key not in record.data:
            return None
        value = self.codec.decode_value(bytes(record.data[self.owner_key]))
        return stored_owner({self.owner_key: value}, self.owner_key)

    def _new_owner(
        self, state: SessionState, changed: AbstractSet[str], old_owner: str | None
    ) -> str | None:
        """Who the record will name after this save: this request's owner value where it
        set or deleted it, else the stored one. A value of the wrong type is a TypeError."""
        key = self.owner_key
        if key is None:
            return None
        if key in changed or key in state.deleted_keys or state.stored is None:
            return owner_in(state.data, key)
        return old_owner

    async def _index_first(
        self,
        state: SessionState,
        owner: str | None,
        old_owner: str | None,
        created: float,
        expires_at: float,
        expiry: float,
        until: float,
    ) -> float:
        """S10: before the record names `owner` until `expires_at`, its index lists it at
        least that long; listed for one expiry more, so most saves touch no index. Returns
        what the record notes as `indexed_until`."""
        if owner is None:
            return 0.0
        if owner == old_owner and expires_at <= until:
            return until
        new_until = expires_at + expiry
        if self.lifetime.absolute is not None:
            new_until = max(expires_at, min(new_until, created + self.lifetime.absolute))
        if owner != old_owner and self._owner_max is not None:
            await self._make_room(owner, state.handle)
        await self._index.enter(owner, Entry(state.handle, created, new_until, self.clock()))
        return new_until

    async def _make_room(self, owner: str, handle: str) -> None:
        """`owner_max_sessions`: revoke the owner's oldest live sessions, so that this one
        joining leaves no more than the maximum."""
        assert self._owner_max is not None
        live = [info for info in await self.sessions_of(owner) if info.handle != handle]
        oldest = [info.handle for info in live[: max(0, len(live) + 1 - self._owner_max)]]
        for old in oldest:
            await self._end_for_owner(old, owner)
        if oldest:
            await self._index.leave(owner, oldest)

    async def sessions_of(self, owner: str) -> list[SessionInfo]:
        """The owner's live sessions, oldest first, as their records say (S10); entries whose
        record is gone or names someone else are pruned from the index."""
        listed, stale = [], []
        now = self.clock()
        for entry in await self._index.entries(owner):
            record = await self._record_of(entry.handle, now)
            if record is None or self._stored_owner(record.data) != owner:
                # A young entry may be a sign-in whose record is not written yet: left be.
                if entry.since + _SETTLING <= now:
                    stale.append(entry.handle)
            else:
                listed.append(
                    SessionInfo(entry.handle, record.data, record.created, record.expires_at)
                )
        if stale:
            await self._index.leave(owner, stale)
        return sorted(listed, key=lambda info: info.created)

    async def revoke(self, owner: str, keep: str | None, handles: Iterable[str] | None) -> int:
        """S10: end the owner's sessions (only `handles`, when given), except `keep`;
        returns how many live sessions were ended."""
        chosen = None if handles is None else set(handles)
        targets = [
            entry.handle
            for entry in await self._index.entries(owner)
            if entry.handle != keep and (chosen is None or entry.handle in chosen)
        ]
        ended = 0
        for handle in targets:
            ended += await self._end_for_owner(handle, owner)
        if targets:
            await self._index.leave(owner, targets)
        return ended

    async def _end_for_owner(self, handle: str, owner: str) -> bool:
        """Replace the record by a tombstone while it names `owner`; True when a live
        session was ended. A record not written yet gets the tombstone too, so a login in
        flight cannot create it afterwards (R24)."""
        retries = Retries(self.storage.name, "revoke a session: it changed")
        while True:
            current = await self.storage.get(handle)
            if current == TOMBSTONE:
                return False
            if current is not None:
                record = self._opened(current, handle)
                now = self.clock()
                if (
                    record is None
                    or self.lifetime.is_over(record.created, record.expires_at, now)
                    or self._stored_owner(record.data) != owner
                ):
                    return False
            if await self.storage.compare_and_set(handle, current, TOMBSTONE, TOMBSTONE_TTL):
                return current is not None
            await retries.pause()

    async def _record_of(self, handle: str, now: float) -> Record | None:
        current = await self.storage.get(handle)
        if current is None or current == TOMBSTONE:
            return None
        record = self._opened(current, handle)
        if record is None or self.lifetime.is_over(record.created, record.expires_at, now):
            return None
        return record

    def _opened(self, stored: bytes, handle: str) -> Record | None:
        try:
            return self.records.open(self.records.body(stored, handle))
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
            owners = {self._stored_owner(state.base), self._stored_owner(state.data)}
            for owner in owners - {None}:
                assert owner is not None
                await self._index.leave(owner, [key])
        else:
            await self._forget(state)
        state.renew_id(self.new_id())

    async def _end_entry(self, state: SessionState, turn: Turn) -> bool:
        """Replace the stored record by a tombstone, taking in what others stored first."""
        changed = self._changed_keys(state)
        expected = state.stored if turn.latest is None else turn.latest
        retries = Retries(
            self.storage.name, "regenerate the session: another save changed it first"
        )
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
            await retries.pause()

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
        """Delete the stored entry, then its owner's index entry (S10: after the record)."""
        if state.stored is None:
            return
        owner = self._stored_owner(state.base)
        await self.storage.delete(state.handle)
        if owner is not None:
            await self._index.leave(owner, [state.handle])
        state.forget_stored()

    # -- deciding ---------------------------------------------------------------------------

    def _changed_keys(self, state: SessionState) -> AbstractSet[str]:
        """R19, R21: the keys this request set, and the loaded keys whose value no longer
        encodes as it did when loaded (changed in place)."""
        in_place = self.changed_in_place(state)
        return state.set_keys.union(in_place) if in_place else state.set_keys

    def changed_in_place(self, state: SessionState) -> list[str]:
        """R19: the loaded keys whose value no longer encodes as it did when loaded."""
        keys = state.keys_to_recheck()
        if not keys or state.body is None:
            return []
        stored = self.records.open_raw(state.body).data
        encode = self.codec.encode_value
        return [key for key in keys if encode(state.data[key]) != bytes(stored[key])]
