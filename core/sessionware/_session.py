"""`Session`: one client's values as a mapping, and the actions that store or end them.

The values, identity and change tracking live in a `SessionState`; the I/O is the store's
`Persistence`; what the response must say is a `ResponseOwed`. `Session` only connects the
three, so a sync twin (WSGI) differs in nothing but how it waits for the I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ._config import LONGEST_EXPIRY, Source
from ._persistence import Persistence
from ._response_headers import ResponseOwed
from ._state import SessionState, check_key


def _seconds(expiry: timedelta | float) -> float:
    if isinstance(expiry, timedelta):
        seconds = expiry.total_seconds()
    elif isinstance(expiry, int | float) and not isinstance(expiry, bool):
        seconds = float(expiry)
    else:
        raise TypeError(f"set_expiry takes a timedelta or seconds, got {type(expiry).__name__}")
    if not 0 < seconds <= LONGEST_EXPIRY:  # also refuses NaN and infinity
        raise ValueError(f"set_expiry needs a positive, finite duration, got {expiry!r}")
    return seconds


class SessionBase(MutableMapping[str, Any]):
    """Everything a session is except how its actions wait for storage."""

    __slots__ = ("_io", "_owed", "_state")

    def __init__(self, state: SessionState, io: Persistence, owed: ResponseOwed | None) -> None:
        self._state = state
        self._io = io
        self._owed = owed

    def __repr__(self) -> str:
        state = self._state
        return (
            f"<{type(self).__name__} id={state.id!r} fresh={state.fresh} keys={list(state.data)!r}>"
        )

    # -- identity and lifetime ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def handle(self) -> str:
        """Where storage keeps this session: a hash of its id, which storage never sees (S9)."""
        return self._state.handle

    @property
    def fresh(self) -> bool:
        """True when this session did not come from storage in this request (R1, R3)."""
        return self._state.fresh

    @property
    def origin(self) -> Source | None:
        """Where this session's id was read (None for a new id): an id from the query string
        is never written back into a cookie or header (R7)."""
        return self._state.origin

    @property
    def created(self) -> datetime:
        """When this session began (aware, UTC): what the absolute timeout counts from."""
        return datetime.fromtimestamp(self._state.created, UTC)

    @property
    def expiry(self) -> timedelta:
        return timedelta(seconds=self._state.expiry)

    def set_expiry(self, expiry: timedelta | float) -> None:
        """R12: this session's TTL and cookie Max-Age from the next save on."""
        self._state.set_expiry(_seconds(expiry))

    # -- values ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if type(key) is not str:
            check_key(key)
        self._state.set(key, value)

    def delete(self, key: str) -> None:
        check_key(key)
        self._state.delete(key)

    def keys(self) -> list[str]:  # type: ignore[override]
        """The keys in insertion order, as a list (Fiber's `Keys`)."""
        return list(self._state.data)

    def __getitem__(self, key: str) -> Any:
        return self._state.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            check_key(key)
        self._state.set(key, value)

    def __delitem__(self, key: str) -> None:
        check_key(key)
        if not self._state.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self._state.data

    def __len__(self) -> int:
        return len(self._state.data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._state.data))

    def clear(self) -> None:
        """Delete every key this session holds (each a change); not `reset()`."""
        for key in list(self._state.data):
            self._state.delete(key)

    @property
    def ended(self) -> bool:
        """R24: another request ended this session (a log-out, a regenerate, a revoke) or it
        expired while this request held it. It is empty and fresh under a new id, and
        nothing this request does to it is stored or sent."""
        return self._state.ended

    # -- what the actions owe the response ------------------------------------------------

    def _saved(self, ttl: float | None) -> None:
        owed = self._owed
        if owed is not None:
            state = self._state
            if ttl is None or state.ended:
                owed.withdrawn()
            else:
                owed.saved(state.id, state.origin, state.fresh, ttl)

    def _expired(self) -> None:
        owed = self._owed
        if owed is not None and self._state.ended:
            owed.withdrawn()
        elif owed is not None:
            owed.expired()

    def _regenerated(self) -> None:
        owed = self._owed
        if owed is not None and self._state.ended:
            owed.withdrawn()
        elif owed is not None:
            owed.id_withdrawn()


class Session(SessionBase):
    """A dictionary of one client's values, loaded from and saved to the store's storage."""

    __slots__ = ()

    async def save(self) -> None:
        """R6: store the data with this session's expiry as TTL, then send the id back."""
        self._saved(await self._io.save(self._state))

    async def destroy(self) -> None:
        """R8: delete the stored entry, clear the data, expire the client's cookie."""
        await self._io.destroy(self._state)
        self._expired()

    async def regenerate(self) -> None:
        """R9: the latest data under a new id; the old entry is ended at once."""
        await self._io.regenerate(self._state)
        self._regenerated()

    async def reset(self) -> None:
        """R10: no data, a new id, the old entry deleted and the client's cookie expired."""
        await self._io.reset(self._state)
        self._expired()
