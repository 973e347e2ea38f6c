"""The core's shape (docs/architecture.md): objects talk through public methods, and the
modules import each other without a cycle, counting imports made only for type checking."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

CORE = Path(__file__).parent.parent / "core" / "sessionware"


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(CORE.glob("*.py"))}


def _exported(owner: ast.expr, attribute: str) -> bool:
    """A module's underscored name that the module lists in `__all__` is public (asyncio's
    `_set_running_loop` is exported for event loops written outside it)."""
    if not isinstance(owner, ast.Name):
        return False
    try:
        module = importlib.import_module(owner.id)
    except ImportError:
        return False
    return attribute in getattr(module, "__all__", ())


def test_no_core_module_reads_another_objects_private_members() -> None:
    reaches = [
        f"{name}.py:{node.lineno}: {ast.unparse(node)}"
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        and not _exported(node.value, node.attr)
    ]
    assert reaches == []


def _imports(tree: ast.Module) -> set[str]:
    """The sibling modules a module imports, wherever the import stands."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is not None:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sessionware."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
    return found


def test_core_modules_import_each_other_without_a_cycle() -> None:
    graph = {name: _imports(tree) for name, tree in modules().items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, name]))
        if name in done or name not in graph:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    assert "_store" in done
    assert "_session" in done
