"""`SessionState`: one session's identity, data and what this request changed. No I/O.

`Session` (and its sync twin) wrap a state for the application; the store's persistence
loads and saves states. Neither reaches into the other: this module is what they share.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, Final

from ._config import Source
from ._ids import handle_of

# Setting the very object a key already holds counts as a change unless it cannot mutate:
# that is how an app says "I changed the list in place" (R19).
IMMUTABLE: Final = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        Decimal,
        uuid.UUID,
        dt.datetime,
        dt.date,
        dt.time,
        dt.timedelta,
    }
)


def check_key(key: object) -> None:
    if type(key) is not str and not isinstance(key, str):
        raise TypeError(f"session keys are str, got {type(key).__name__}: {key!r}")


class SessionState:
    """The session's values and identity, plus the record of this request's changes.

    `stored` is what storage held for this session when it was loaded or last saved by this
    request (None: nothing of ours is stored), and `body` that record opened (unsealed).
    `base` is the data as it was then, so a value changed in place can be told from one left
    alone (R19).

    Made once per request that reads its session: callers pass the arguments by position,
    as calling a class with keywords costs a dictionary each time.
    """

    __slots__ = (
        "base",
        "body",
        "created",
        "data",
        "deleted_keys",
        "destroyed",
        "ended",
        "expires_at",
        "expiry",
        "expiry_changed",
        "fresh",
        "handle",
        "id",
        "indexed_until",
        "origin",
        "set_keys",
        "stored",
    )

    def __init__(
        self,
        session_id: str,
        data: dict[str, Any],
        created: float,
        expiry: float,
        expires_at: float,
        stored: bytes | None = None,
        handle: str | None = None,
        body: bytes | None = None,
        indexed_until: float = 0.0,
        origin: Source | None = None,
    ) -> None:
        self.id = session_id
        self.handle = handle_of(session_id) if handle is None else handle
        self.data = data
        self.created = created
        self.expiry = expiry
        self.expires_at = expires_at
        self.stored = stored
        self.body = body
        self.indexed_until = indexed_until  # S10: until when its owner's index lists it
        self.origin = origin
        self.fresh = stored is None
        # The data as stored: the same dictionary until this request first changes it (a
        # request that only reads copies nothing); see `_own_data`.
        self.base: dict[str, Any] = {} if stored is None else data
        self.set_keys: set[str] = set()
        self.deleted_keys: set[str] = set()
        self.expiry_changed = False
        self.destroyed = False
        self.ended = False

    # -- changes ----------------------------------------------------------------------------

    def _own_data(self) -> None:
        """Before the first change: `base` keeps the stored values, `data` changes."""
        if self.base is self.data:
            self.base = dict(self.data)

    def set(self, key: str, value: Any) -> None:
        data = self.data
        if key in data:
            old = data[key]
            if old is value:
                # The very object again: a change unless it cannot mutate (enum members are
                # singletons, never "mutated").
                if type(value) in IMMUTABLE or isinstance(value, enum.Enum):
                    return
            elif type(old) is type(value) and old == value:
                self._own_data()
                data[key] = value
                return
        self._own_data()
        data[key] = value
        self.set_keys.add(key)
        if self.deleted_keys:
            self.deleted_keys.discard(key)

    def delete(self, key: str) -> bool:
        """Remove `key`; False when it was not there (nothing changed)."""
        if key not in self.data:
            return False
        self._own_data()
        del self.data[key]
        self.deleted_keys.add(key)
        self.set_keys.discard(key)
        return True

    def set_expiry(self, seconds: float) -> None:
        self.expiry = seconds
        self.expiry_changed = True

    def keys_to_recheck(self) -> list[str]:
        """Keys whose value may have changed in place: not set again, and not the very
        immutable object that was loaded. Their encodings tell (see `SessionCodec`)."""
        base, set_keys = self.base, self.set_keys
        return [
            key
            for key, value in self.data.items()
            if key not in set_keys
            and key in base
            and not (base[key] is value and type(value) in IMMUTABLE)
        ]

    # -- identity ---------------------------------------------------------------------------

    def stored_as(
        self, raw: bytes, body: bytes, expires_at: float, indexed_until: float = 0.0
    ) -> None:
        """After a save: this is now the stored state, with no changes of its own."""
        self.stored = raw
        self.body = body
        self.indexed_until = indexed_until
        self.expires_at = expires_at
        self.base = self.data  # copied again at the next change (`_own_data`)
        self.set_keys.clear()
        if self.deleted_keys:
            self.deleted_keys.clear()
        self.expiry_changed = False
        self.destroyed = False

    def forget_stored(self) -> None:
        """The stored entry is gone (deleted by this request): the next save creates it."""
        self.stored = None
        self.body = None
        self.indexed_until = 0.0
        self.base = {}

    def renew_id(self, session_id: str) -> None:
        """A new id for the same data: everything the session holds counts as new."""
        self.id = session_id
        self.handle = handle_of(session_id)
        self.fresh = True
        self.origin = None
        self.forget_stored()
        self.set_keys = set(self.data)
        self.deleted_keys.clear()

    def restart(self, session_id: str, now: float, expiry: float) -> None:
        """A new session under a new id, holding whatever data is left (R8, R10)."""
        self.id = session_id
        self.handle = handle_of(session_id)
        self.fresh = True
        self.origin = None
        self.created = now
        self.expiry = expiry
        self.expires_at = now + expiry
        self.forget_stored()
        self.set_keys = set(self.data)
        self.deleted_keys.clear()
        self.expiry_changed = False
        self.destroyed = False

    def end(self, session_id: str, now: float, expiration: float) -> None:
        """R24: someone else ended this session; it is empty and fresh under a new id, and
        nothing this request does to it is stored or sent any more."""
        self.data = {}
        self.restart(session_id, now, expiration)
        self.ended = True
