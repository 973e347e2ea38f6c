"""`Session`: one client's data, and the actions that change its id, lifetime or storage."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from ._config import LONGEST_EXPIRY, Source

if TYPE_CHECKING:
    from ._exchange import Exchange
    from ._store import Store

logger = logging.getLogger("sessionware")

# Renewing an entry is worth a write only when it gains at least this much lifetime.
_MIN_RENEWAL_GAIN = 1.0

# Setting the very object a key already holds counts as a change unless it cannot mutate:
# that is how an app says "I changed the list in place" (R19).
_IMMUTABLE: Final = frozenset(
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


def _check_key(key: object) -> None:
    if type(key) is not str and not isinstance(key, str):
        raise TypeError(f"session keys are str, got {type(key).__name__}: {key!r}")


class Session:
    """A dictionary of one client's values, loaded from and saved to the store's storage."""

    __slots__ = (
        "_changed",
        "_created",
        "_data",
        "_destroyed",
        "_exchange",
        "_expires_at",
        "_expiry",
        "_fresh",
        "_id",
        "_origin",
        "_store",
        "_stored",
    )

    def __init__(
        self,
        store: Store,
        exchange: Exchange | None,
        session_id: str,
        data: dict[str, Any],
        expiry: float,
        created: float,
        expires_at: float,
        fresh: bool,
        origin: Source | None = None,
    ) -> None:
        self._store = store
        self._exchange = exchange
        self._id = session_id
        self._data = data
        self._expiry = expiry
        self._created = created
        self._expires_at = expires_at
        self._origin = origin
        self._fresh = fresh
        self._stored = not fresh
        self._changed = False
        self._destroyed = False

    def __repr__(self) -> str:
        return f"<Session id={self._id!r} fresh={self._fresh} keys={list(self._data)!r}>"

    # -- identity and lifetime ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def fresh(self) -> bool:
        """True when this session did not come from storage in this request (R1, R3)."""
        return self._fresh

    @property
    def origin(self) -> Source | None:
        """Where this session's id was read (None for a new id): an id from the query string
        is never written back into a cookie or header (R7)."""
        return self._origin

    @property
    def expiry(self) -> timedelta:
        return timedelta(seconds=self._expiry)

    def set_expiry(self, expiry: timedelta | float) -> None:
        """R12: this session's TTL and cookie Max-Age from the next save on."""
        if isinstance(expiry, timedelta):
            seconds = expiry.total_seconds()
        elif isinstance(expiry, int | float) and not isinstance(expiry, bool):
            seconds = float(expiry)
        else:
            raise TypeError(f"set_expiry takes a timedelta or seconds, got {type(expiry).__name__}")
        if not 0 < seconds <= LONGEST_EXPIRY:  # also refuses NaN and infinity
            raise ValueError(f"set_expiry needs a positive, finite duration, got {expiry!r}")
        self._expiry = seconds
        self._changed = True

    # -- values ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        _check_key(key)
        data = self._data
        if key in data:
            old = data[key]
            same_object = (
                old is value
                and type(value) not in _IMMUTABLE
                and not isinstance(value, enum.Enum)  # members are singletons, never "mutated"
            )
            if not same_object and type(old) is type(value) and old == value:
                data[key] = value
                return
        data[key] = value
        self._changed = True

    def delete(self, key: str) -> None:
        _check_key(key)
        if key in self._data:
            del self._data[key]
            self._changed = True

    def keys(self) -> list[str]:
        return list(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._data:
            raise KeyError(key)
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    # -- storage --------------------------------------------------------------------------

    async def save(self) -> None:
        """R6: store the data with this session's expiry as TTL, then send the id back."""
        store = self._store
        now = time.time()
        if self._destroyed:
            self._restart(now, keep_expiry=True)  # destroy() reset it; a later set_expiry holds
        ttl = store._ttl(self._expiry, self._created, now)
        if ttl <= 0:
            # The absolute lifetime ran out during this request. It is a security limit
            # (sign in again), so the session ends as on load (R13) rather than living on.
            logger.info("session reached its absolute timeout while being saved; reset")
            await self.reset()
            return
        raw = store._codec.encode(self._data, self._created, self._expiry, now + ttl)
        await store._storage.set(self._id, raw, ttl)
        self._stored = True
        self._changed = False
        self._expires_at = now + ttl
        if self._exchange is not None:
            self._exchange.saved(self, ttl)

    async def destroy(self) -> None:
        """R8: delete the stored entry, clear the data, expire the client's cookie."""
        await self._forget()
        self._data.clear()
        self._expiry = self._store._expiration
        self._destroyed = True
        self._changed = False
        if self._exchange is not None:
            self._exchange.expired()

    async def regenerate(self) -> None:
        """R9: same data under a new id; the old entry is deleted at once."""
        await self._forget()
        self._id = self._store._new_id()
        self._fresh = True
        self._origin = None
        self._destroyed = False
        self._changed = True
        if self._exchange is not None:
            self._exchange.regenerated()

    async def reset(self) -> None:
        """R10: no data, a new id, the old entry deleted and the client's cookie expired."""
        await self._forget()
        self._data.clear()
        self._restart(time.time())
        if self._exchange is not None:
            self._exchange.expired()

    async def _forget(self) -> None:
        if self._stored:
            await self._store._storage.delete(self._id)
            self._stored = False

    def _restart(self, now: float, *, keep_expiry: bool = False) -> None:
        self._id = self._store._new_id()
        self._fresh = True
        self._origin = None
        self._created = now
        if not keep_expiry:
            self._expiry = self._store._expiration
        self._destroyed = False
        self._changed = False

    def needs_auto_save(self, now: float) -> bool:
        """R19 and R22: changed (and not fresh-and-empty), or read and half-way to expiry."""
        if self._changed:
            # After destroy() the session is as good as new: empty, it is not stored either.
            return bool(self._data) or not (self._fresh or self._destroyed)
        if self._fresh or self._destroyed or not self._stored:
            return False
        if self._expires_at - now >= self._expiry / 2:
            return False
        new_ttl = self._store._ttl(self._expiry, self._created, now)
        return now + new_ttl > self._expires_at + _MIN_RENEWAL_GAIN
