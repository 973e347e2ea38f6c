"""The docs name tests as evidence (`tests/file.py::test_name`, then `::test_other` for more
of the same file) and rules by label (R7): each named test exists, each label is in
docs/rules.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", *ROOT.glob("plugins/*/README.md")])
REFERENCE = re.compile(r"`((?:tests|plugins/\w+/tests)/[\w/]+\.py)?::(\w+)")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test_"
        ):
            names.add(node.name)
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_test_a_doc_names_exists(doc: Path) -> None:
    missing = []
    current: Path | None = None
    for file, name in REFERENCE.findall(doc.read_text()):
        if file:
            current = ROOT / file
        assert current is not None, f"{doc}: ::{name} names no file before it"
        if not current.exists() or name not in defined_tests(current):
            missing.append(f"{current.relative_to(ROOT)}::{name}")
    assert missing == []


def test_every_rule_label_the_code_names_is_stated_in_docs_rules() -> None:
    stated = set(re.findall(r"\*\*(R\d+)\.", (ROOT / "docs" / "rules.md").read_text()))
    used: set[str] = set()
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("tests/**/*.py"), *DOCS]:
        used |= set(re.findall(r"\bR(\d+)\b", path.read_text()))
    assert {f"R{number}" for number in used} <= stated
