"""docs/plugins.md cannot drift from the truth: its files are a plugin that passes the
conformance suite, its `pytest` and `mypy` commands are run, its tables list what the suite
really offers, and each error it shows is the one its mistake really produces."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sessionware import Config, Store
from sessionware.testing import StorageConformance

from tests.support.apps import client, cookie_header, do, make_app
from tests.support.fake_dists import write_distribution

GUIDE = Path(__file__).parent.parent / "docs" / "plugins.md"
TEXT = GUIDE.read_text()


def guide_files() -> dict[str, str]:
    return dict(re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', TEXT, re.S))


FILES = guide_files()


def guide_commands(tool: str) -> list[list[str]]:
    """Each `tool ...` line of the guide's shell blocks, as arguments."""
    blocks = re.findall(r"```sh\n(.*?)```", TEXT, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.split(" ")[0] == tool]


def section(heading: str) -> str:
    return TEXT.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def table(heading: str) -> list[list[str]]:
    """The rows of the first table under `heading`, each cell as written (`\\|` unescaped)."""
    lines = [line for line in section(heading).splitlines() if line.startswith("|")]
    return [
        [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        for line in lines[2:]
    ]


def code_span(cell: str) -> str:
    match = re.fullmatch(r"(`+) ?(.*?) ?\1", cell)
    assert match, f"not a code span: {cell}"
    return match.group(2)


def write_plugin(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def run_in(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def changed(text: str, old: str, new: str) -> str:
    """`text` with one mistake made in it (which must be there to make)."""
    assert old in text, f"the guide's code no longer has {old!r}"
    return text.replace(old, new)


# -- the files and commands ---------------------------------------------------------------


def test_the_guide_has_the_files_of_a_plugin_with_and_without_compare_and_set() -> None:
    assert set(FILES) == {
        "memo_storage.py",
        "pyproject.toml",
        "test_memo_storage.py",
        "memo_cas_storage.py",
        "test_memo_cas_storage.py",
    }


def test_the_plain_plugin_is_still_twenty_lines_of_code() -> None:
    code = [
        line
        for line in FILES["memo_storage.py"].splitlines()
        if line.strip() and not line.lstrip().startswith(("#", '"""', "@", "import", "from"))
    ]
    assert len(code) <= 20, code


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_the_guide_plugins_pass_the_conformance_suite_in_either_asyncio_mode(
    tmp_path: Path, mode: str
) -> None:
    folder = write_plugin(tmp_path, FILES)
    assert guide_commands("pytest") == [["pytest"]]
    result = run_in(
        folder, "-m", "pytest", "-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}",
        "--junitxml=report.xml",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'asyncio_default_fixture_loop_scope" is unset' not in result.stdout + result.stderr
    skipped: dict[str, set[str]] = {"TestMemoStorage": set(), "TestMemoCasStorage": set()}
    ran: dict[str, set[str]] = {"TestMemoStorage": set(), "TestMemoCasStorage": set()}
    for case in ET.parse(folder / "report.xml").iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        if case.find("skipped") is not None:
            skipped[cls].add(case.get("name", ""))
        ran[cls].add(case.get("name", ""))
    suite = {name for name in vars(StorageConformance) if name.startswith("test_")}
    cas = {name for name in suite if "cas" in name}
    assert ran == {"TestMemoStorage": suite, "TestMemoCasStorage": suite}
    assert skipped["TestMemoStorage"] == cas | {"test_reset_leaves_other_storages_alone"}
    assert skipped["TestMemoCasStorage"] == {
        "test_concurrent_cas_increments_through_two_clients_all_land"
    }


def test_mypy_strict_accepts_the_guide_plugins(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, FILES)
    (command,) = guide_commands("mypy")
    assert set(command[2:]) == set(FILES) - {"pyproject.toml"}
    result = run_in(folder, "-m", *command)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("    ) -> bool:", "    ) -> int:"),
        ("value: bytes, expires_in: float | None\n    ) -> bool:", "value: bytes\n    ) -> bool:"),
    ],
    ids=["returns-int", "leaves-out-expires_in"],
)
def test_mypy_strict_refuses_a_compare_and_set_that_breaks_the_contract(
    tmp_path: Path, old: str, new: str
) -> None:
    broken = changed(FILES["memo_cas_storage.py"], old, new)
    folder = write_plugin(tmp_path, {**FILES, "memo_cas_storage.py": broken})
    (command,) = guide_commands("mypy")
    result = run_in(folder, "-m", *command)
    assert result.returncode == 1, result.stdout
    assert 'expected "CompareAndSetStorage"' in result.stdout


@contextmanager
def installed(
    root: Path,
    modules: dict[str, str],
    target: str = "memo_storage:MemoStorage",
    distributions: tuple[str, ...] = ("sessionware-memo",),
) -> Iterator[None]:
    """`modules` installed as the guide's distribution, entry point `memo` -> `target`."""
    root.mkdir(parents=True, exist_ok=True)
    project = tomllib.loads(FILES["pyproject.toml"])["project"]
    for name in distributions:
        write_distribution(root, name, project["version"], {"memo": target}, {})
    write_plugin(root, {f"{module}.py": text for module, text in modules.items()})
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for module in modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


def test_the_guide_entry_point_makes_the_storage_selectable_by_name(tmp_path: Path) -> None:
    assert tomllib.loads(FILES["pyproject.toml"])["project"]["entry-points"] == {
        "sessionware.storage": {"memo": "memo_storage:MemoStorage"}
    }
    with installed(tmp_path, {"memo_storage": FILES["memo_storage.py"]}):
        assert Store(Config(storage="memo")).backend == "memo"
        assert Store(Config(storage="memo://")).backend == "memo"


@pytest.mark.parametrize(
    ("target", "optional_hooks"),
    [
        ("memo_storage:MemoStorage", []),
        ("memo_cas_storage:MemoCasStorage", ["storage_compare_and_set"]),
    ],
)
def test_plugins_check_reports_the_guide_plugin(
    tmp_path: Path, target: str, optional_hooks: list[str]
) -> None:
    assert ["sessionware", "plugins", "--check"] in guide_commands("sessionware")
    write_distribution(tmp_path, "sessionware-memo", "0.1.0", {"memo": target}, {})
    folder = write_plugin(tmp_path, FILES)
    result = run_in(folder, "-m", "sessionware", "plugins", "--check", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    (memo,) = [row for row in json.loads(result.stdout) if row["name"] == "memo"]
    assert (memo["loads"], memo["optional_hooks"], memo["problem"]) == (
        True,
        optional_hooks,
        None,
    )


def test_the_fixture_table_lists_everything_the_suite_offers() -> None:
    documented = {code_span(row[0]) for row in table("The conformance suite")}
    offered = {
        name
        for name in vars(StorageConformance)
        if not name.startswith(("_", "test_")) and name != "pytestmark"
    }
    assert documented == offered


# -- Errors you will meet -----------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRow:
    message: str
    mistake: str

    def matches(self, seen: str) -> bool:
        """`…` in the guide stands for any text; everything else is literal."""
        pattern = ".*?".join(re.escape(part) for part in self.message.split("…"))
        return re.fullmatch(pattern, seen, re.S) is not None


ERROR_ROWS = [ErrorRow(code_span(row[0]), row[1]) for row in table("Errors you will meet")]

Mistake = Callable[[Path], Awaitable[list[str]]]
MISTAKES: dict[str, Mistake] = {}


def mistake(when: str) -> Callable[[Mistake], Mistake]:
    """Registers how to make the mistake that the guide's row `when` describes."""

    def register(make: Mistake) -> Mistake:
        MISTAKES[when] = make
        return make

    return register


def error_of(action: Callable[[], object]) -> str:
    try:
        action()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the mistake raised nothing")


async def error_of_requests(store: Store) -> str:
    """Save a session in one request and load it in the next, as an app does."""
    try:
        async with store, client(make_app(store)) as http:
            saved = await do(http, ["set", "user", "ann"], ["save"])
            await do(http, ["get", "user"], headers=cookie_header(saved.json()["id"]))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the mistake raised nothing")


def plugin_with(old: str, new: str) -> dict[str, str]:
    return {"memo_storage": changed(FILES["memo_storage.py"], old, new)}


def build_memo(storage: str = "memo") -> str:
    return error_of(lambda: Store(Config(storage=storage)))


@mistake("the plugin is not installed where the app runs")
async def _not_installed(root: Path) -> list[str]:
    return [build_memo()]


@mistake("importing the plugin raised, here because a dependency is missing")
async def _missing_dependency(root: Path) -> list[str]:
    source = "import a_client_library_that_is_not_installed\n" + FILES["memo_storage.py"]
    with installed(root, {"memo_storage": source}):
        return [build_memo()]


@mistake("two installed distributions declare the same storage name")
async def _two_distributions(root: Path) -> list[str]:
    modules = {"memo_storage": FILES["memo_storage.py"]}
    with installed(root, modules, distributions=("sessionware-memo", "sessionware-memo-fork")):
        return [build_memo()]


@mistake("the factory does not take `url=`, and the app named the storage by a URL")
async def _no_url(root: Path) -> list[str]:
    old = "def __init__(self, *, url: str | None = None) -> None:"
    with installed(root, plugin_with(old, "def __init__(self) -> None:")):
        return [build_memo("memo://")]


@mistake("a hook's name is misspelt")
async def _misspelt(root: Path) -> list[str]:
    with installed(root, plugin_with("def storage_get(", "def storage_gett(")):
        return [build_memo()]


@mistake("a hook is not marked with `@hookimpl`")
async def _unmarked(root: Path) -> list[str]:
    old = "    @hookimpl\n    async def storage_close"
    with installed(root, plugin_with(old, "    async def storage_close")):
        return [build_memo()]


@mistake("a hook is missing")
async def _missing(root: Path) -> list[str]:
    old = "\n    @hookimpl\n    async def storage_close(self) -> None:\n        pass\n"
    with installed(root, plugin_with(old, "")):
        return [build_memo()]


@mistake(
    "a hook leaves out a parameter (here `expires_in`), renames one, gives one a default, "
    "or takes `**kwargs`"
)
async def _wrong_parameters(root: Path) -> list[str]:
    tail = "value: bytes, expires_in: float | None) -> None:"
    variants = {
        "fewer": plugin_with(tail, "value: bytes) -> None:"),
        "renamed": plugin_with(tail, "data: bytes, expires_in: float | None) -> None:"),
        "default": plugin_with(tail, "value: bytes, expires_in: float | None = None) -> None:"),
        "kwargs": plugin_with(tail, "value: bytes, **kwargs: object) -> None:"),
    }
    seen = []
    for name, modules in variants.items():
        with installed(root / name, modules):
            seen.append(build_memo())
    return seen


@mistake("a hook is a plain `def`")
async def _not_async(root: Path) -> list[str]:
    with installed(root, plugin_with("async def storage_close", "def storage_close")):
        return [build_memo()]


@mistake("a hook raised (the server is down, a timeout)")
async def _hook_raised(root: Path) -> list[str]:
    old = "        value, deadline = self._data.get(key, (None, None))\n"
    new = f"        raise ConnectionRefusedError(111, 'Connect call failed')\n{old}"
    with installed(root, plugin_with(old, new)):
        store = Store(Config(storage="memo"))
        async with store:
            try:
                await store.get_by_id("a-session-id")
            except Exception as exc:
                return [f"{type(exc).__name__}: {exc}"]
    raise AssertionError("the mistake raised nothing")


@mistake(
    "`storage_get` returns what the driver gave (psycopg2 gives a `memoryview` for a `bytea` "
    "column)"
)
async def _not_bytes(root: Path) -> list[str]:
    old = "        return value\n"
    new = "        return None if value is None else memoryview(value)\n"
    with installed(root, plugin_with(old, new)):
        return [await error_of_requests(Store(Config(storage="memo")))]


@mistake(
    "compare-and-set does not return on every path (here it forgets `return True` after writing)"
)
async def _cas_without_return(root: Path) -> list[str]:
    cas = changed(FILES["memo_cas_storage.py"], "        return True\n", "")
    modules = {"memo_storage": FILES["memo_storage.py"], "memo_cas_storage": cas}
    with installed(root, modules, target="memo_cas_storage:MemoCasStorage"):
        return [await error_of_requests(Store(Config(storage="memo")))]


@mistake("the app asks for an owner index on a storage without compare-and-set")
async def _owner_index_without_cas(root: Path) -> list[str]:
    with installed(root, {"memo_storage": FILES["memo_storage.py"]}):
        return [error_of(lambda: Store(Config(storage="memo", owner_key="user_id")))]


@mistake("(a warning, logged once when the `Store` is built) the storage has no compare-and-set")
async def _no_cas_warning(root: Path) -> list[str]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logging.getLogger("sessionware").addHandler(handler)
    try:
        with installed(root, {"memo_storage": FILES["memo_storage.py"]}):
            Store(Config(storage="memo"))
    finally:
        logging.getLogger("sessionware").removeHandler(handler)
    return [f"{record.levelname}: {record.getMessage()}" for record in records]


def test_every_error_row_has_its_mistake_and_every_mistake_its_row() -> None:
    assert [row.mistake for row in ERROR_ROWS] == list(MISTAKES)


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[row.mistake[:40] for row in ERROR_ROWS])
async def test_each_error_in_the_guide_is_what_its_mistake_produces(
    row: ErrorRow, tmp_path: Path
) -> None:
    make = MISTAKES.get(row.mistake)
    assert make is not None, f"no test makes the mistake {row.mistake!r}"
    seen = await make(tmp_path)
    assert seen, "the mistake produced nothing"
    for text in seen:
        assert row.matches(text), f"the guide says\n  {row.message}\nthe mistake gives\n  {text}"
