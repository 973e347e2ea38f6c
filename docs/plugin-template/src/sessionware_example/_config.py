"""The storage's options: each declared once, with its meaning, its default and its check.

The factory receives `storage_options` as keyword arguments, plus `url=` when the app named
the storage by a URL. A bad option is a `ValueError` (a wrong type a `TypeError`) naming it:
the app sees it unchanged when it builds its `Store`, not at the first request.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DEFAULT_TABLE = "sessionware_sessions"
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExampleConfig:
    #: Path of the SQLite file. Required (as `path=` or as the URL `example:///sessions.db`).
    path: str
    #: Table holding the sessions: letters, digits and `_`. Default "sessionware_sessions".
    table: str = DEFAULT_TABLE
    #: Seconds a call waits for another connection's write lock before failing. Default 5.0.
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not isinstance(self.path, str):
            raise TypeError(
                "example storage: path must be a str or os.PathLike, "
                f"got {type(self.path).__name__}"
            )
        if not self.path:
            raise ValueError("example storage: path must name a file, got an empty string")
        if not isinstance(self.table, str) or not _TABLE_NAME.fullmatch(self.table):
            raise ValueError(
                "example storage: table must be 1 to 63 letters, digits or '_', not starting "
                f"with a digit, got {self.table!r}"
            )
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise TypeError(
                f"example storage: timeout must be seconds, got {type(self.timeout).__name__}"
            )
        if not self.timeout > 0:
            raise ValueError(
                f"example storage: timeout must be above 0 seconds, got {self.timeout}"
            )

    @classmethod
    def from_options(
        cls,
        *,
        url: str | None,
        path: str | os.PathLike[str] | None,
        table: str | None,
        timeout: float | None,
    ) -> ExampleConfig:
        if url is not None:
            if path is not None:
                raise ValueError("example storage: give the path once, in the URL or as path=")
            path = _path_of(url)
        if path is None:
            raise ValueError(
                "example storage: path is required, e.g. storage_options={'path': 'sessions.db'} "
                "or storage='example:///sessions.db'"
            )
        return cls(
            path=os.fspath(path) if isinstance(path, os.PathLike) else path,
            table=DEFAULT_TABLE if table is None else table,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )


def _path_of(url: str) -> str:
    """`example:///relative.db` or `example:////absolute/path.db`, as for SQLAlchemy."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "example" or parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            "example storage: the URL is example:///relative/file.db or "
            f"example:////absolute/file.db, got {url!r}"
        )
    return unquote(parts.path[1:])
