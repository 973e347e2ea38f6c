"""The owner index (S10): for each owner, which sessions it has, kept in the same storage.

One key per owner, ``~o.`` + the unpadded URL-safe base64 of the SHA-256 of the owner (so
storage never shows owner ids), holding the entries ``[handle, created, until]`` behind the
same format marker as a record (sealed when keys are set). Every change is one
compare-and-set of that one key, so it needs no multi-key command and works on a Redis
Cluster and across memcached servers alike. Every write drops the expired entries, and the
key expires with its latest entry.

Readers never trust the index alone: an entry only says where to look (see `Persistence`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

import msgspec

from ._clock import Clock
from ._codec import DecodeError
from ._errors import StorageError
from ._records import RecordFormat, Unopenable
from ._retries import Retries
from ._save_turns import SaveTurns, Turn
from ._storage_calls import StorageCalls

logger = logging.getLogger("sessionware")

INDEX_PREFIX: Final = "~o."
#: How long an index that has just lost its last entry stays, empty, before it expires.
_EMPTY_TTL: Final = 1.0


class Entry(NamedTuple):
    """One session of an owner: where it is stored, when it began, until when it is listed,
    and when the entry was written (a young entry may point at a record not written yet)."""

    handle: str
    created: float
    until: float
    since: float = 0.0


def index_key(owner: str) -> str:
    digest = hashlib.sha256(owner.encode()).digest()
    return INDEX_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def owner_in(data: Mapping[str, Any], owner_key: str) -> str | None:
    """The owner a session names (S10): its `owner_key` value as text; `42` is `"42"`."""
    value = data.get(owner_key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(
            f"the session's {owner_key!r} (Config.owner_key) names its owner and must be a str "
            f"or an int, got {type(value).__name__}"
        )
    return str(value)


def stored_owner(data: Mapping[str, Any], owner_key: str) -> str | None:
    """The owner a stored record names; a value no save would write names none."""
    try:
        return owner_in(data, owner_key)
    except TypeError:
        return None


class OwnerIndex:
    """Reads and changes owners' indexes, each change one compare-and-set, retried."""

    __slots__ = ("_clock", "_decoder", "_encoder", "_records", "_storage", "_turns")

    def __init__(self, storage: StorageCalls, records: RecordFormat, clock: Clock) -> None:
        self._storage = storage
        self._records = records
        self._clock = clock
        self._turns = SaveTurns()  # changes of one index in this process wait for each other
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Entry])

    async def entries(self, owner: str) -> list[Entry]:
        """The owner's unexpired entries (what they point at is not checked here)."""
        key = index_key(owner)
        return self._live(await self._storage.get(key), key)

    async def change(self, owner: str, edit: Callable[[list[Entry]], list[Entry]]) -> None:
        """Apply `edit` to the owner's live entries, atomically, retrying when another
        change got in first. Changes of one index in this process take turns, the next one
        starting from what the last one wrote."""
        key = index_key(owner)
        turn = self._turns.claim(key) or await self._turns.take(key)
        try:
            await self._change(key, edit, turn)
        finally:
            self._turns.give_back(key, turn)

    async def _change(
        self, key: str, edit: Callable[[list[Entry]], list[Entry]], turn: Turn
    ) -> None:
        current = turn.latest if turn.latest is not None else await self._storage.get(key)
        retries = Retries(self._storage.name, "change an owner index: another change got in first")
        while True:
            entries = edit(self._live(current, key))
            now = self._clock()
            ttl = max((entry.until for entry in entries), default=now) - now
            body = self._encoder.encode(entries)
            value = self._records.pack(body, key)
            if await self._storage.compare_and_set(key, current, value, max(ttl, _EMPTY_TTL)):
                turn.latest = value
                return
            await retries.pause()
            current = await self._storage.get(key)

    async def enter(self, owner: str, entry: Entry) -> None:
        """Add or extend one session's entry."""

        def entered(entries: list[Entry]) -> list[Entry]:
            return [*(e for e in entries if e.handle != entry.handle), entry]

        await self.change(owner, entered)

    async def leave(self, owner: str, handles: Iterable[str]) -> None:
        gone = set(handles)
        await self.change(owner, lambda entries: [e for e in entries if e.handle not in gone])

    def _live(self, stored: bytes | None, key: str) -> list[Entry]:
        if stored is None:
            return []
        try:
            entries = self._decoder.decode(self._records.body(stored, key))
        except Unopenable as exc:
            # Rewriting it would drop entries this instance cannot see: refuse instead.
            raise StorageError(
                f"{self._storage.name} storage: an owner index this configuration cannot open "
                f"({exc}); list the key it was sealed under in encryption_keys",
                backend=self._storage.name,
            ) from None
        except (DecodeError, msgspec.DecodeError) as exc:
            logger.warning("an owner index could not be decoded (%s); starting it afresh", exc)
            return []
        now = self._clock()
        return [entry for entry in entries if entry.until > now]
