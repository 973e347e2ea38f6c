"""`SessionInfo`: a read-only view of one stored session of an owner (S10)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any


class SessionInfo(Mapping[str, Any]):
    """One live session's data, and where and when it lives; never its id, which storage
    does not hold. Pass it (or its `handle`) to `store.revoke(owner, keep=...)`."""

    __slots__ = ("_data", "created", "expires_at", "handle")

    def __init__(self, handle: str, data: dict[str, Any], created: float, expires_at: float):
        self._data = data
        self.handle = handle
        self.created = datetime.fromtimestamp(created, UTC)
        self.expires_at = datetime.fromtimestamp(expires_at, UTC)

    def __repr__(self) -> str:
        return f"<SessionInfo handle={self.handle[:8]}… created={self.created.isoformat()}>"

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
