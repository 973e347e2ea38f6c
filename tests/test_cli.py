"""`sessionware plugins`: what is installed, without importing any of it; `--check` imports
each one and reports whether it loads and which optional hooks it implements (S5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_dists import write_distribution


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, timeout=60
    )


def test_plugins_json_lists_memory_with_its_distribution() -> None:
    rows = json.loads(run("-m", "sessionware", "plugins", "--json").stdout)
    memory = next(row for row in rows if row["name"] == "memory")
    assert memory == {
        "name": "memory",
        "distribution": "sessionware-memory",
        "version": "0.1.0",
        "module": "sessionware_memory",
    }


def test_plugins_table_has_a_header_and_a_row_per_storage() -> None:
    lines = run("-m", "sessionware", "plugins").stdout.splitlines()
    assert lines[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "MODULE"]
    assert any(line.split()[:2] == ["memory", "sessionware-memory"] for line in lines[1:])


def test_listing_imports_no_plugin() -> None:
    probe = (
        "import sys\n"
        "from sessionware._cli import main\n"
        "main(['plugins', '--json'])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('sessionware_'))\n"
        "print('LOADED', loaded)\n"
    )
    out = run("-c", probe).stdout
    assert "LOADED []" in out


def test_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionware", "fly"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_plugins_table_says_that_check_imports_them() -> None:
    out = run("-m", "sessionware", "plugins").stdout
    assert "without importing them; `sessionware plugins --check` imports each one" in out


# -- sessionware plugins --check (S5) ---------------------------------------------------------

_HOOKS = """
import pluggy

hookimpl = pluggy.HookimplMarker("sessionware")


class Five:
    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        return None

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        pass

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        pass

    @hookimpl
    async def storage_reset(self) -> None:
        pass

    @hookimpl
    async def storage_close(self) -> None:
        pass


class Six(Five):
    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        return False
"""

_PLUGINS = {
    # Building any of these would fail: a check must learn their hooks without building them.
    "needs_dsn": (
        "needs_dsn:Storage",
        "class Storage(Five):\n"
        "    def __init__(self, *, dsn: str) -> None:\n"
        "        raise AssertionError('built by a check')\n",
    ),
    "with_cas": (
        "with_cas:Storage",
        "class Storage(Six):\n"
        "    def __init__(self, *, dsn: str) -> None:\n"
        "        raise AssertionError('built by a check')\n",
    ),
    "by_function": (
        "by_function:build",
        "def build(*, dsn: str) -> Six:\n    raise AssertionError('built by a check')\n",
    ),
    "unannotated": ("unannotated:build", "def build(**options):\n    return Six()\n"),
    # A protocol names the contract, not a class whose hooks could be checked.
    "by_protocol": (
        "by_protocol:build",
        "from sessionware.hookspecs import CompareAndSetStorage\n"
        "def build(**options) -> CompareAndSetStorage:\n    return Six()\n",
    ),
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    for name, (target, source) in _PLUGINS.items():
        write_distribution(
            tmp_path, f"sessionware-{name}", "1.0", {name: target}, {name: _HOOKS + source}
        )
    return tmp_path


def _entry(site: Path, name: str, target: str, source: str) -> None:
    write_distribution(site, f"sessionware-{name}", "2.0", {name: target}, {name: source})


def check(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionware", "plugins", "--check", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(site)},
    )


def by_name(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_check_reports_the_optional_hooks_of_every_plugin_without_building_it(site: Path) -> None:
    result = check(site, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = by_name(result)
    assert rows["memory"]["optional_hooks"] == ["storage_compare_and_set"]
    assert rows["needs_dsn"] == {
        "name": "needs_dsn",
        "distribution": "sessionware-needs_dsn",
        "version": "1.0",
        "module": "needs_dsn",
        "loads": True,
        "optional_hooks": [],
        "problem": None,
        "note": None,
    }
    assert rows["with_cas"]["optional_hooks"] == ["storage_compare_and_set"]
    assert rows["by_function"]["optional_hooks"] == ["storage_compare_and_set"]
    for unknown in (rows["unannotated"], rows["by_protocol"]):
        assert (unknown["loads"], unknown["optional_hooks"]) == (True, None)
        assert unknown["problem"] is None
        assert "annotate the class it returns" in unknown["note"]


def test_check_table_shows_loads_and_optional_hooks(site: Path) -> None:
    result = check(site)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "DISTRIBUTION", "VERSION", "MODULE", "LOADS", "OPTIONAL", "HOOKS",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split()[4:] for line in lines[1:] if line.strip()}
    assert rows["needs_dsn"] == ["yes", "none"]
    assert rows["with_cas"] == ["yes", "storage_compare_and_set"]
    assert lines[-1].endswith(" storage names load")


def test_a_plugin_that_fails_to_import_fails_the_check_and_the_others_are_still_reported(
    site: Path,
) -> None:
    _entry(site, "broken", "broken:Storage", "import a_module_that_does_not_exist\n")
    result = check(site, "--json")
    assert result.returncode == 1
    rows = by_name(result)
    assert rows["broken"]["loads"] is False
    assert rows["broken"]["optional_hooks"] is None
    assert rows["broken"]["problem"] == (
        "storage plugin 'broken' from sessionware-broken 2.0 failed to load: "
        "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"
    )
    assert rows["with_cas"]["problem"] is None
    table = check(site)
    assert table.returncode == 1
    assert "broken (sessionware-broken 2.0): storage plugin 'broken' from" in table.stdout
    assert table.stdout.splitlines()[-1].startswith("1 of ")


def test_a_plugin_a_store_would_refuse_fails_the_check_with_the_stores_message(
    site: Path,
) -> None:
    unmarked = _HOOKS.replace("@hookimpl\n    async def storage_close", "async def storage_close")
    assert unmarked != _HOOKS
    _entry(site, "unmarked", "unmarked:Five", unmarked)
    short = _HOOKS.replace("value: bytes, expires_in: float | None) -> None", "value: bytes)")
    assert short != _HOOKS
    _entry(site, "short", "short:Five", short)
    result = check(site, "--json")
    assert result.returncode == 1
    rows = by_name(result)
    assert rows["unmarked"]["loads"] is True
    assert rows["unmarked"]["problem"].startswith(
        "storage plugin 'unmarked': does not implement storage_close "
        "(storage_close defined but not marked with @hookimpl)"
    )
    assert rows["short"]["problem"].startswith(
        "storage plugin 'short': hook storage_set(key: str, value: bytes) must declare exactly "
        "the parameters of its spec"
    )


def test_an_entry_point_that_is_not_a_factory_fails_the_check(site: Path) -> None:
    _entry(site, "constant", "constant:VALUE", "VALUE = 42\n")
    rows = by_name(check(site, "--json"))
    assert rows["constant"]["loads"] is True
    assert "names a int, not a factory" in rows["constant"]["problem"]


def test_two_distributions_claiming_one_name_fail_the_check(site: Path) -> None:
    for dist in ("sessionware-first", "sessionware-second"):
        write_distribution(site, dist, "0.1", {"twin": "needs_dsn:Storage"}, {})
    result = check(site, "--json")
    assert result.returncode == 1
    twins = [row for row in json.loads(result.stdout) if row["name"] == "twin"]
    assert [row["distribution"] for row in twins] == ["sessionware-first", "sessionware-second"]
    for row in twins:
        assert row["problem"].startswith("the storage name 'twin' is claimed by sessionware-first")
