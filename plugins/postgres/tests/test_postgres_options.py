"""Options and URLs: checked when the storage (and so the Store) is built, never later."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sessionware import Config, Store
from sessionware_postgres import PostgresConfig, PostgresStorage
from sessionware_postgres._config import MAX_TABLE_LENGTH, option_meanings
from sessionware_postgres._schema import FOREVER, microseconds

README = Path(__file__).parent.parent / "README.md"


def test_defaults() -> None:
    config = PostgresStorage().config
    assert config == PostgresConfig()
    assert (config.host, config.port, config.user, config.password, config.database) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert config.table == "sessionware_sessions"
    assert (config.min_size, config.max_size) == (1, 10)
    assert config.timeout == 5.0
    assert config.gc_interval == 10.0
    assert config.reset_on_start is False


def test_building_opens_no_connection_and_needs_no_event_loop() -> None:
    """Nothing listens on port 1: a storage that connected here would fail."""
    PostgresStorage(host="127.0.0.1", port=1)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
def test_url_fills_the_connection_options(scheme: str) -> None:
    config = PostgresStorage(url=f"{scheme}://app:s%40cret@db.internal:6432/shop").config
    assert (config.host, config.port, config.user, config.password, config.database) == (
        "db.internal",
        6432,
        "app",
        "s@cret",
        "shop",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://", {}),
        ("postgresql://localhost", {"host": "localhost"}),
        ("postgresql://[::1]:5433/db", {"host": "::1", "port": 5433, "database": "db"}),
        ("postgresql://u@h/d", {"host": "h", "user": "u", "database": "d"}),
        ("postgresql://:pw@h", {"host": "h", "password": "pw"}),
        ("postgresql:///d?host=/run/postgresql", {"host": "/run/postgresql", "database": "d"}),
        (
            "postgresql://h/d?table=mine&min_size=0&max_size=3&timeout=0.5&gc_interval=2"
            "&reset_on_start=yes",
            {
                "host": "h",
                "database": "d",
                "table": "mine",
                "min_size": 0,
                "max_size": 3,
                "timeout": 0.5,
                "gc_interval": 2.0,
                "reset_on_start": True,
            },
        ),
    ],
)
def test_url_forms(url: str, expected: dict[str, Any]) -> None:
    assert PostgresStorage(url=url).config == PostgresConfig(**expected)


def test_keywords_fill_what_the_url_leaves_out() -> None:
    config = PostgresStorage(url="postgresql://h/d", user="app", table="web", timeout=1).config
    assert (config.host, config.database, config.user, config.table) == ("h", "d", "app", "web")
    assert config.timeout == 1.0


@pytest.mark.parametrize(
    ("url", "option"),
    [
        ("postgresql://h/d", {"host": "h"}),
        ("postgresql://h:5432/d", {"port": 5432}),
        ("postgresql://u@h/d", {"user": "other"}),
        ("postgresql://u:p@h/d", {"password": "p"}),
        ("postgresql://h/d", {"database": "e"}),
        ("postgresql://h/d?table=t", {"table": "t"}),
        ("postgresql:///d?host=/tmp", {"host": "/tmp"}),
        ("postgresql://h/d?reset_on_start=false", {"reset_on_start": False}),
    ],
)
def test_an_option_in_the_url_and_as_a_keyword_is_an_error(
    url: str, option: dict[str, Any]
) -> None:
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"postgres storage: {name} given both in the URL"):
        PostgresStorage(url=url, **option)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://localhost/0", "must start with postgresql:// or postgres://"),
        ("postgresql://h1:5432,h2:5432/d", "several hosts"),
        ("postgresql://h:99999/d", "invalid port"),
        ("postgresql://h:port/d", "invalid port"),
        ("postgresql://h/d/e", "one database name"),
        ("postgresql://h/d#x", "fragment"),
        ("postgresql://h/d?colour=blue", "unknown URL option 'colour'"),
        ("postgresql://h/d?sslmode=require", "PGSSLMODE"),
        ("postgresql://h/d?timeout=soon", "timeout in the URL must be seconds"),
        ("postgresql://h/d?max_size=many", "max_size in the URL must be a whole number"),
        ("postgresql://h/d?reset_on_start=maybe", "true or false"),
        ("postgresql://h/d?table=a&table=b", "table appears twice"),
        ("postgresql://h/d?host=/tmp", "host appears twice"),
        ("postgresql://h/d?table=x;drop", "plain identifier"),
        ("postgresql://h/d?max_size=0", "max_size must be at least 1"),
    ],
)
def test_bad_urls_are_value_errors_that_say_why(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        PostgresStorage(url=url)


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"url": 5}, TypeError, "url must be a str"),
        ({"host": ""}, ValueError, "host must not be empty"),
        ({"host": b"h"}, TypeError, "host must be a str"),
        ({"port": 0}, ValueError, "port must be 1..65535"),
        ({"port": 65536}, ValueError, "port must be 1..65535"),
        ({"port": "5432"}, TypeError, "port must be an int"),
        ({"port": True}, TypeError, "port must be an int"),
        ({"user": ""}, ValueError, "user must not be empty"),
        ({"password": 123}, TypeError, "password must be a str"),
        ({"database": "a\x00b"}, ValueError, "database must not contain a NUL"),
        ({"table": ""}, ValueError, "table must be a plain identifier"),
        ({"table": "1st"}, ValueError, "table must be a plain identifier"),
        ({"table": 'a"b'}, ValueError, "table must be a plain identifier"),
        ({"table": "a.b"}, ValueError, "table must be a plain identifier"),
        ({"table": "x" * (MAX_TABLE_LENGTH + 1)}, ValueError, "table must be a plain"),
        ({"table": ["t"]}, TypeError, "table must be a str"),
        ({"min_size": -1}, ValueError, "min_size must be at least 0"),
        ({"min_size": 1.5}, TypeError, "min_size must be an int"),
        ({"max_size": 0}, ValueError, "max_size must be at least 1"),
        ({"min_size": 5, "max_size": 2}, ValueError, "min_size (5) must not exceed max_size"),
        ({"timeout": 0}, ValueError, "timeout must be more than 0 seconds"),
        ({"timeout": float("inf")}, ValueError, "timeout must be more than 0 seconds"),
        ({"timeout": float("nan")}, ValueError, "timeout must be more than 0 seconds"),
        ({"timeout": "5"}, TypeError, "timeout must be seconds as a number"),
        ({"gc_interval": -1}, ValueError, "gc_interval must be more than 0 seconds"),
        ({"gc_interval": None, "timeout": True}, TypeError, "timeout must be seconds"),
        ({"reset_on_start": 1}, TypeError, "reset_on_start must be True or False"),
    ],
)
def test_bad_options_fail_at_construction_naming_the_option(
    options: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=re.escape(f"postgres storage: {says}")):
        PostgresStorage(**options)


def test_an_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        PostgresStorage(colour="blue")  # type: ignore[call-arg]


def test_the_longest_table_name_is_accepted() -> None:
    assert PostgresStorage(table="t" * MAX_TABLE_LENGTH).config.table == "t" * MAX_TABLE_LENGTH


def test_the_password_never_shows() -> None:
    storage = PostgresStorage(url="postgresql://app:hunter2@db/shop")
    assert "hunter2" not in repr(storage)
    assert "hunter2" not in repr(storage.config)
    assert "hunter2" not in repr(PostgresStorage(password="hunter2").config)
    with pytest.raises(ValueError) as raised:
        PostgresStorage(url="postgresql://app:hunter2@db/shop#frag")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("name", ["postgres", "postgresql"])
def test_both_names_build_a_store_from_a_url(name: str) -> None:
    store = Store(Config(storage=f"{name}://app:hunter2@127.0.0.1:1/shop"))
    assert "hunter2" not in repr(store)


def test_a_bad_option_reaches_the_store_builder_unchanged() -> None:
    with pytest.raises(ValueError, match="postgres storage: table must be a plain identifier"):
        Store(Config(storage="postgres", storage_options={"table": "no such; table"}))
    with pytest.raises(ValueError, match="postgres storage: port given both"):
        Store(Config(storage="postgresql://h:5432/d", storage_options={"port": 5432}))


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        PostgresStorage("postgresql://h/d")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("seconds", "micros"),
    [(None, None), (0.2, 200_000), (1e-9, 1), (3600, 3_600_000_000), (FOREVER, None)],
)
def test_ttls_are_whole_microseconds_rounded_up(seconds: float | None, micros: int | None) -> None:
    assert microseconds(seconds) == micros


def test_the_readme_lists_every_option_with_its_default_and_meaning() -> None:
    """The options are declared once, in _config; the README's table must say the same."""
    rows = {}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`\w+`", cells[0]):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    expected = {
        name: (f'`"{default}"`' if isinstance(default, str) else f"`{default!r}`", meaning)
        for name, (default, meaning) in option_meanings().items()
    }
    assert rows == expected
