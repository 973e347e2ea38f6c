"""Options and the entry point: what an app writes in its `Config`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sessionware import Config, Store

from sessionware_example import ExampleStorage


def test_the_entry_point_makes_the_storage_selectable_by_name(tmp_path: Path) -> None:
    store = Store(Config(storage="example", storage_options={"path": str(tmp_path / "s.db")}))
    assert store.backend == "example"


def test_a_url_names_the_file(tmp_path: Path) -> None:
    assert ExampleStorage(url="example:///sessions.db").config.path == "sessions.db"
    absolute = tmp_path / "sessions.db"
    assert ExampleStorage(url=f"example:///{absolute}").config.path == str(absolute)


def test_the_store_sees_compare_and_set(tmp_path: Path) -> None:
    """An owner index needs the optional hook; a storage without it is refused here."""
    options = {"path": str(tmp_path / "s.db")}
    Store(Config(storage="example", storage_options=options, owner_key="user_id"))


def test_the_path_is_required() -> None:
    with pytest.raises(ValueError, match="path is required"):
        ExampleStorage()


def test_the_path_is_given_once() -> None:
    with pytest.raises(ValueError, match="give the path once"):
        ExampleStorage(url="example:///a.db", path="b.db")


@pytest.mark.parametrize("table", ["", "1st", "x; DROP TABLE y", "a" * 64])
def test_a_bad_table_name_never_reaches_sql(table: str) -> None:
    with pytest.raises(ValueError, match="table"):
        ExampleStorage(path="s.db", table=table)


def test_a_timeout_is_positive_seconds() -> None:
    with pytest.raises(ValueError, match="timeout"):
        ExampleStorage(path="s.db", timeout=0)
    with pytest.raises(TypeError, match="timeout"):
        ExampleStorage(path="s.db", timeout="5")  # type: ignore[arg-type]
