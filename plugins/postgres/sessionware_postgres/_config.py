"""Options of the postgres storage: each declared once with its default and meaning, the
`postgresql://` URL form, and the checks that fail when the storage is built."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

URL_SCHEMES = ("postgresql", "postgres")

#: PostgreSQL keeps 63 bytes of a name; the expiry index is named `<table>_expires_at`.
MAX_TABLE_LENGTH = 63 - len("_expires_at")
_IDENTIFIER = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_TABLE_LENGTH - 1}}}")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _option(default: Any, meaning: str, **extra: Any) -> Any:
    """A field with its default and the one line the README's options table shows for it."""
    return field(default=default, metadata={"meaning": meaning}, **extra)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresConfig:
    """Checked options. Connection options left at None fall back, as in libpq and asyncpg,
    to PGHOST, PGPORT, PGUSER, PGPASSWORD (or ~/.pgpass) and PGDATABASE, then to libpq's
    defaults."""

    host: str | None = _option(
        None,
        "server name or address, or a folder holding its Unix socket; `None`: `$PGHOST`, "
        "else the local socket, else `localhost`",
    )
    port: int | None = _option(None, "1-65535; `None`: `$PGPORT`, else 5432")
    user: str | None = _option(None, "role to log in as; `None`: `$PGUSER`, else the OS user")
    password: str | None = _option(
        None,
        "its password (never shown in `repr`); `None`: `$PGPASSWORD` or `~/.pgpass`",
        repr=False,
    )
    database: str | None = _option(
        None, "database to use; `None`: `$PGDATABASE`, else the user's name"
    )
    table: str = _option(
        "sessionware_sessions",
        f"the sessions table, created when missing: letters, digits and `_`, at most "
        f"{MAX_TABLE_LENGTH} characters, not starting with a digit",
    )
    min_size: int = _option(1, "connections the pool keeps open even when idle (0 or more)")
    max_size: int = _option(
        10, "most connections the pool opens, and so statements run at once (per process)"
    )
    timeout: float = _option(
        5.0,
        "seconds one call may take in all: waiting for a free connection, connecting, "
        "and its statement",
    )
    gc_interval: float = _option(10.0, "seconds between two sweeps that delete expired rows")
    reset_on_start: bool = _option(
        False, "empty the table when the storage first connects (once per storage object)"
    )

    def __post_init__(self) -> None:
        for name in ("host", "user", "database"):
            _check_text(name, getattr(self, name), empty_allowed=False)
        _check_text("password", self.password, empty_allowed=True)
        if self.port is not None:
            _check_integer("port", self.port, 1, 65535)
        _check_table(self.table)
        _check_integer("min_size", self.min_size, 0)
        _check_integer("max_size", self.max_size, 1)
        if self.min_size > self.max_size:
            raise _fail(f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})")
        object.__setattr__(self, "timeout", _check_seconds("timeout", self.timeout))
        object.__setattr__(self, "gc_interval", _check_seconds("gc_interval", self.gc_interval))
        if not isinstance(self.reset_on_start, bool):
            raise _type_error("reset_on_start", "True or False", self.reset_on_start)

    @classmethod
    def from_options(cls, *, url: str | None, **options: Any) -> PostgresConfig:
        """Merge the options of `url` with the keyword ones (None: not given); an option
        given in both is an error, whatever the two values."""
        given = {name: value for name, value in options.items() if value is not None}
        if url is not None:
            in_url = parse_url(url)
            both = sorted(name for name in in_url if name in given)
            if both:
                raise _fail(
                    f"{', '.join(both)} given both in the URL and as an option; give "
                    f"{'it' if len(both) == 1 else 'each'} once"
                )
            given |= in_url
        return cls(**given)

    def describe(self) -> str:
        """Where the sessions live, for a repr or an error message: never the password."""
        host = self.host or "$PGHOST/local socket"
        port = f":{self.port}" if self.port is not None else ""
        database = self.database or "$PGDATABASE/user's database"
        return f"{host}{port}/{database} table {self.table}"


def option_meanings() -> dict[str, tuple[Any, str]]:
    """Every option of the factory with its default and meaning, in declaration order."""
    found: dict[str, tuple[Any, str]] = {
        "url": (
            None,
            "`postgresql://user:password@host:port/database?option=value`, or `postgres://`",
        )
    }
    for option in fields(PostgresConfig):
        found[option.name] = (option.default, option.metadata["meaning"])
    return found


def _fail(message: str) -> ValueError:
    return ValueError(f"postgres storage: {message}")


def _type_error(name: str, expected: str, value: object) -> TypeError:
    return TypeError(f"postgres storage: {name} must be {expected}, got {type(value).__name__}")


def _check_text(name: str, value: object, *, empty_allowed: bool) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _type_error(name, "a str", value)
    if not value and not empty_allowed:
        raise _fail(f"{name} must not be empty; leave it out for the default")
    if "\x00" in value:
        raise _fail(f"{name} must not contain a NUL character")


def _check_integer(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an int", value)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        raise _fail(f"{name} must be {bounds}, got {value}")


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(name, "seconds as a number", value)
    if not (value > 0 and math.isfinite(value)):
        raise _fail(f"{name} must be more than 0 seconds, got {value}")
    return float(value)


def _check_table(table: object) -> None:
    if not isinstance(table, str):
        raise _type_error("table", "a str", table)
    if not _IDENTIFIER.fullmatch(table):
        raise _fail(
            "table must be a plain identifier: a letter or _, then letters, digits or _, "
            f"at most {MAX_TABLE_LENGTH} characters in all, got {table!r}"
        )


# -- the URL ------------------------------------------------------------------------------

#: Options a URL may carry in its query string (the connection ones have their own places;
#: `host` there names a socket folder, as libpq allows).
_QUERY_OPTIONS = (
    "host",
    "table",
    "min_size",
    "max_size",
    "timeout",
    "gc_interval",
    "reset_on_start",
)


def parse_url(url: object) -> dict[str, Any]:
    """`postgresql://user:password@host:port/database?table=…`: the options it gives."""
    if not isinstance(url, str):
        raise _type_error("url", "a str", url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise _fail(f"url must start with postgresql:// or postgres://, got {_hide(url)!r}")
    if parts.fragment:
        raise _fail(f"url takes no #fragment: {_hide(url)!r}")
    if "," in parts.netloc:
        raise _fail(f"url names several hosts; this storage connects to one server: {_hide(url)!r}")
    try:
        port = parts.port
    except ValueError:
        raise _fail(f"url has an invalid port: {_hide(url)!r}") from None
    found: dict[str, Any] = {}
    if parts.hostname:
        found["host"] = unquote(parts.hostname)
    if port is not None:
        found["port"] = port
    if parts.username:
        found["user"] = unquote(parts.username)
    if parts.password is not None:
        found["password"] = unquote(parts.password)
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if "/" in database:
        raise _fail(f"url path must be one database name, got {database!r}")
    if database:
        found["database"] = database
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _QUERY_OPTIONS:
            hint = (
                "; for TLS set PGSSLMODE (and its PGSSL* companions) in the environment"
                if name.startswith("ssl")
                else ""
            )
            raise _fail(
                f"unknown URL option {name!r}; a URL's query may carry "
                f"{', '.join(_QUERY_OPTIONS)}{hint}"
            )
        if name in found:
            raise _fail(f"{name} appears twice in the URL")
        found[name] = _query_value(name, value)
    return found


def _query_value(name: str, text: str) -> Any:
    if name in ("host", "table"):
        return text
    if name == "reset_on_start":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _fail(f"reset_on_start in the URL must be true or false, got {text!r}")
    try:
        return int(text) if name in ("min_size", "max_size") else float(text)
    except ValueError:
        kind = "a whole number" if name in ("min_size", "max_size") else "seconds"
        raise _fail(f"{name} in the URL must be {kind}, got {text!r}") from None


def _hide(url: str) -> str:
    """`url` with its password replaced, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
