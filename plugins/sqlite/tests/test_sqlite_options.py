from __future__ import annotations

import os
from pathlib import Path

import pytest
from sessionware_sqlite import SQLiteStorage

# aiosqlite's worker thread dies noisily when it answers a closed loop; make that a failure.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def test_defaults() -> None:
    storage = SQLiteStorage()
    assert storage.config.database == os.path.abspath("sessionware.sqlite3")
    assert storage.config.table == "sessionware_sessions"
    assert storage.config.gc_interval == 10.0
    assert storage.config.reset_on_start is False


def test_constructing_touches_no_file(tmp_path: Path) -> None:
    SQLiteStorage(database=tmp_path / "lazy.sqlite3")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("sqlite:///relative/sessions.db", os.path.abspath("relative/sessions.db")),
        ("sqlite:////absolute/sessions.db", "/absolute/sessions.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite3:///:memory:", ":memory:"),
        ("SQLITE:///with%20space.db", os.path.abspath("with space.db")),
        ("sqlite://", os.path.abspath("sessionware.sqlite3")),
    ],
)
def test_url_forms(url: str, database: str) -> None:
    assert SQLiteStorage(url=url).config.database == database


def test_url_query_options() -> None:
    storage = SQLiteStorage(url="sqlite:///:memory:?table=mine&gc_interval=2.5&reset_on_start=yes")
    assert storage.config.table == "mine"
    assert storage.config.gc_interval == 2.5
    assert storage.config.reset_on_start is True


@pytest.mark.parametrize(
    ("url", "option"),
    [
        ("sqlite:///a.db", {"database": "b.db"}),
        ("sqlite:///:memory:?table=t", {"table": "t"}),
        ("sqlite:///:memory:?gc_interval=1", {"gc_interval": 1}),
        ("sqlite:///:memory:?reset_on_start=false", {"reset_on_start": False}),
    ],
)
def test_an_option_in_the_url_and_as_a_keyword_is_an_error(
    url: str, option: dict[str, object]
) -> None:
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"sqlite storage: {name} is given both"):
        SQLiteStorage(url=url, **option)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost/0",
        "sqlite://host/path.db",
        "sqlite:///:memory:?colour=blue",
        "sqlite:///:memory:?gc_interval=soon",
        "sqlite:///:memory:?reset_on_start=maybe",
        "sqlite:///:memory:?table=a&table=b",
        "sqlite:///:memory:?table=x;drop",
    ],
)
def test_bad_urls_are_value_errors(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite storage"):
        SQLiteStorage(url=url)


@pytest.mark.parametrize(
    "table",
    ["x; DROP TABLE y", 'a"b', "1abc", "", "has space", "sqlite_master", "é", "a" * 64, "t\n"],
)
def test_unsafe_table_names_are_refused_at_construction(table: str) -> None:
    with pytest.raises(ValueError, match="sqlite storage: table"):
        SQLiteStorage(database=":memory:", table=table)


def test_plain_table_names_are_accepted() -> None:
    for table in ("sessions", "_private", "App_Sessions_2", "a" * 63):
        assert SQLiteStorage(database=":memory:", table=table).config.table == table


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"table": 5}, TypeError, "table"),
        ({"database": 5}, TypeError, "database"),
        ({"database": b"x.db"}, TypeError, "database"),
        ({"database": ""}, ValueError, "database"),
        ({"gc_interval": 0}, ValueError, "gc_interval"),
        ({"gc_interval": -1.0}, ValueError, "gc_interval"),
        ({"gc_interval": float("nan")}, ValueError, "gc_interval"),
        ({"gc_interval": float("inf")}, ValueError, "gc_interval"),
        ({"gc_interval": "10"}, TypeError, "gc_interval"),
        ({"gc_interval": True}, TypeError, "gc_interval"),
        ({"reset_on_start": "yes"}, TypeError, "reset_on_start"),
        ({"reset_on_start": 1}, TypeError, "reset_on_start"),
        ({"url": 5}, TypeError, "url"),
    ],
)
def test_bad_options_name_the_option_and_the_backend(
    options: dict[str, object], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=f"sqlite storage: {name}"):
        SQLiteStorage(**options)  # type: ignore[arg-type]


def test_an_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        SQLiteStorage(path="x.db")  # type: ignore[call-arg]


def test_a_path_object_is_a_database(tmp_path: Path) -> None:
    storage = SQLiteStorage(database=tmp_path / "p.sqlite3")
    assert storage.config.database == str(tmp_path / "p.sqlite3")


async def test_an_unopenable_database_names_its_path(tmp_path: Path) -> None:
    storage = SQLiteStorage(database=tmp_path / "missing-dir" / "s.sqlite3")
    with pytest.raises(Exception, match="missing-dir"):
        await storage.storage_get("k")
    await storage.storage_close()
