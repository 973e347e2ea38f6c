"""`sessionware plugins`: what is installed, without importing any of it."""

from __future__ import annotations

import json
import subprocess
import sys


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
