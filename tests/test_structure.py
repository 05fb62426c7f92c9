"""The shape of the code: no module of ``aion`` or ``supervisors`` over 500 lines, and no import circle
between their modules (every import that can run counts, also one inside a function; those only for type
checkers are left out)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("aion", "supervisors")
MAX_LINES = 500

pytestmark = pytest.mark.timeout(60)


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import a module can run: at its top level and inside functions (an import put in a function only
    to dodge a circle is still a circle), except those under ``if TYPE_CHECKING:``, which never run."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, set[str]]:
    """Module → the modules of the packages it imports (a package imported also means its
    ``__init__``; ``from package import name`` means the submodule when ``name`` is one)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                bases = [alias.name for alias in node.names]
                names: list[str] = []
            else:
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    bases = [".".join([*anchor, node.module] if node.module else anchor)]
                else:
                    bases = [node.module or ""]
                names = [alias.name for alias in node.names]
            for base in bases:
                parts = base.split(".")
                # importing a.b.c runs a, a.b and a.b.c
                targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()
                targets |= {f"{base}.{n}" for n in names} & modules.keys()
        # A module's own ancestor packages are imported before it (``from aion.engine import x`` inside
        # aion.engine runs nothing new): no edge up to them, only down into a package.
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_no_module_is_over_500_lines() -> None:
    over = {
        str(path.relative_to(ROOT)): count
        for path in _modules().values()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert over == {}


def test_no_import_circle() -> None:
    assert _cycle(_graph()) is None
