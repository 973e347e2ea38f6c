"""The plugin guide's example is run, so docs/plugins.md cannot drift from the truth."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sessionware import Config, Store

from tests.support.fake_dists import write_distribution

GUIDE = Path(__file__).parent.parent / "docs" / "plugins.md"


def guide_files() -> dict[str, str]:
    blocks = re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', GUIDE.read_text(), re.S)
    return dict(blocks)


def test_the_guide_has_the_three_files_of_a_plugin() -> None:
    assert set(guide_files()) == {"memo_storage.py", "pyproject.toml", "test_memo_storage.py"}


def test_the_guide_plugin_passes_the_conformance_suite(tmp_path: Path) -> None:
    for name, text in guide_files().items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_memo_storage.py",
            "-o",
            "asyncio_mode=strict",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))  # type: ignore[union-attr]
    assert passed >= 15


def test_the_guide_entry_point_makes_the_storage_selectable_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = guide_files()
    project = tomllib.loads(files["pyproject.toml"])["project"]
    write_distribution(
        tmp_path,
        project["name"],
        project["version"],
        project["entry-points"]["sessionware.storage"],
        {"memo_storage": files["memo_storage.py"]},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    store = Store(Config(storage="memo"))
    assert store.backend == "memo"
    sys.modules.pop("memo_storage", None)
