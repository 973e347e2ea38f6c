"""Options of the sqlite storage: defaults, checks, and the `sqlite:///path` URL form."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MEMORY = ":memory:"
DEFAULT_DATABASE = "sessionware.sqlite3"
DEFAULT_TABLE = "sessionware_sessions"
DEFAULT_GC_INTERVAL = 10.0

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SCHEMES = ("sqlite", "sqlite3")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SQLiteConfig:
    """Checked options; `database` is an absolute path or ``:memory:``."""

    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE
    gc_interval: float = DEFAULT_GC_INTERVAL
    reset_on_start: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "database", _check_database(self.database))
        _check_table(self.table)
        _check_gc_interval(self.gc_interval)
        if not isinstance(self.reset_on_start, bool):
            raise TypeError(
                "sqlite storage: reset_on_start must be True or False, "
                f"got {type(self.reset_on_start).__name__}"
            )

    @property
    def in_memory(self) -> bool:
        return self.database == MEMORY

    @classmethod
    def from_options(cls, *, url: str | None, **options: Any) -> SQLiteConfig:
        """Merge the keyword options with those of `url`; one given twice is an error."""
        given = {name: value for name, value in options.items() if value is not None}
        if url is not None:
            for name, value in _parse_url(url).items():
                if name in given:
                    raise ValueError(
                        f"sqlite storage: {name} is given both in the URL {url!r} and as an "
                        "option; give it once"
                    )
                given[name] = value
        return cls(**given)


def _check_database(database: object) -> str:
    if isinstance(database, os.PathLike):
        database = os.fspath(database)
    if not isinstance(database, str):
        raise TypeError(
            "sqlite storage: database must be a path (str or os.PathLike) or ':memory:', "
            f"got {type(database).__name__}"
        )
    if not database:
        raise ValueError("sqlite storage: database must not be empty; use ':memory:' for RAM")
    if "\x00" in database:
        raise ValueError(f"sqlite storage: database path contains a NUL byte: {database!r}")
    return database if database == MEMORY else os.path.abspath(database)


def _check_table(table: object) -> None:
    if not isinstance(table, str):
        raise TypeError(f"sqlite storage: table must be a str, got {type(table).__name__}")
    if not _IDENTIFIER.fullmatch(table) or table.lower().startswith("sqlite_"):
        raise ValueError(
            "sqlite storage: table must be a plain identifier (a letter or _, then letters, "
            f"digits or _, at most 63 characters, not starting with sqlite_), got {table!r}"
        )


def _check_gc_interval(gc_interval: object) -> None:
    if isinstance(gc_interval, bool) or not isinstance(gc_interval, int | float):
        raise TypeError(
            "sqlite storage: gc_interval must be seconds as a number, "
            f"got {type(gc_interval).__name__}"
        )
    if not 0 < gc_interval < float("inf"):
        raise ValueError(
            f"sqlite storage: gc_interval must be more than 0 seconds, got {gc_interval}"
        )


def _parse_url(url: str) -> dict[str, Any]:
    """`sqlite:///relative`, `sqlite:////absolute`, `sqlite:///:memory:`, plus query options."""
    if not isinstance(url, str):
        raise TypeError(f"sqlite storage: url must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES or parts.netloc or parts.fragment:
        raise ValueError(
            "sqlite storage: the URL forms are sqlite:///relative/path, "
            f"sqlite:////absolute/path and sqlite:///:memory:, got {url!r}"
        )
    found: dict[str, Any] = {}
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    if path:
        found["database"] = path
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name in found:
            raise ValueError(f"sqlite storage: {name} appears twice in the URL {url!r}")
        found[name] = _query_option(name, value, url)
    return found


def _query_option(name: str, value: str, url: str) -> Any:
    if name == "table":
        return value
    if name == "gc_interval":
        try:
            return float(value)
        except ValueError:
            raise ValueError(
                f"sqlite storage: gc_interval in the URL {url!r} must be seconds, got {value!r}"
            ) from None
    if name == "reset_on_start":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(
            f"sqlite storage: reset_on_start in the URL {url!r} must be true or false, "
            f"got {value!r}"
        )
    raise ValueError(
        f"sqlite storage: unknown URL option {name!r} in {url!r}; the URL accepts table, "
        "gc_interval and reset_on_start"
    )
