"""Options of the memory storage, with their defaults and checks."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_GC_INTERVAL = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryConfig:
    gc_interval: float = DEFAULT_GC_INTERVAL

    def __post_init__(self) -> None:
        if isinstance(self.gc_interval, bool) or not isinstance(self.gc_interval, int | float):
            raise TypeError(
                f"memory storage: gc_interval must be seconds as a number, "
                f"got {type(self.gc_interval).__name__}"
            )
        if not self.gc_interval > 0:
            raise ValueError(
                f"memory storage: gc_interval must be more than 0 seconds, got {self.gc_interval}"
            )

    @classmethod
    def from_options(cls, *, url: str | None, gc_interval: float | None) -> MemoryConfig:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme.lower() != "memory" or parts.netloc or parts.path or parts.query:
                raise ValueError(f"memory storage: the only URL form is 'memory://', got {url!r}")
        if gc_interval is None:
            return cls()
        return cls(gc_interval=gc_interval)
