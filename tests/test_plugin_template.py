"""The plugin template (docs/plugin-template) works as an author gets it: copied, built into a
wheel, installed, its own tests run against the installed plugin, and mypy --strict content."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TEMPLATE = ROOT / "docs" / "plugin-template"
LEFTOVERS = shutil.ignore_patterns("__pycache__", ".*_cache", "dist", "build", "*.egg-info")


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_template(folder: Path) -> Path:
    project = folder / "sessionware-example"
    shutil.copytree(TEMPLATE, project, ignore=LEFTOVERS)
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_template(tmp_path_factory.mktemp("copy"))


@pytest.fixture(scope="module")
def wheel(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    uv = shutil.which("uv") or str(ROOT / ".cache" / "uv" / "bin" / "uv")
    run(uv, "build", "--wheel", "--quiet", "--out-dir", wheels, project, cwd=project)
    (built,) = wheels.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a throwaway folder; its dependencies (pluggy, sessionware,
    pytest-asyncio) are the ones this interpreter already has."""
    target = tmp_path_factory.mktemp("site")
    uv = shutil.which("uv") or str(ROOT / ".cache" / "uv" / "bin" / "uv")
    run(
        uv, "pip", "install", "--quiet", "--offline", "--no-deps",
        "--python", sys.executable, "--target", target, wheel,
        cwd=target,
    )  # fmt: skip
    return target


def test_the_wheel_has_the_package_its_py_typed_and_the_entry_point(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "sessionware_example/py.typed" in names
    assert "sessionware_example/_storage.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[sessionware.storage]\nexample = sessionware_example:ExampleStorage" in text


def test_the_templates_tests_pass_against_the_installed_plugin(project: Path, site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = run(
        sys.executable, "-c", "import sessionware_example as m; print(m.__file__)",
        cwd=project, env=env,
    )  # fmt: skip
    assert Path(where.strip()).is_relative_to(site), "the tests must use the installed copy"
    out = run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
        cwd=project, env=env,
    )  # fmt: skip
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s( \([^)]*\))?", summary), out
    assert int(summary.split()[0]) >= 40, out


def test_mypy_strict_finds_the_template_storage_a_compare_and_set_storage(project: Path) -> None:
    out = run(sys.executable, "-m", "mypy", cwd=project)
    assert out.startswith("Success: no issues found")


def test_mypy_strict_refuses_a_storage_whose_hook_breaks_the_contract(tmp_path: Path) -> None:
    """The typed fixtures are a real check, not a formality."""
    project = copy_template(tmp_path)
    storage = project / "src" / "sessionware_example" / "_storage.py"
    text = storage.read_text()
    broken = text.replace(
        "self, key: str, expected: bytes | None, value: bytes, expires_in: float | None\n"
        "    ) -> bool:",
        "self, key: str, expected: bytes | None, value: bytes, expires_in: float | None\n"
        "    ) -> int:",
    )
    assert broken != text
    storage.write_text(broken)
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'got "ExampleStorage", expected "CompareAndSetStorage"' in result.stdout
    assert "Coroutine[Any, Any, int]" in result.stdout
