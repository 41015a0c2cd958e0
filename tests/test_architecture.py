"""How the package's modules depend on each other, read from their source (every import statement, also those inside
functions and under ``TYPE_CHECKING``): no cycles, and the entry points and callbacks import what they should."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


MODULES = {_module_name(p): p for p in sorted((SRC / "inpaint").rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {c for c in candidates if c in MODULES and c != name}
    return found


def import_cycles() -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's strongly connected components)."""
    graph = {name: imports_of(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_reader_sees_imports() -> None:
    # The parser itself: a known import of each kind is found, so that an empty result below means something.
    assert "inpaint.evaluation.figures" in imports_of("inpaint.evaluation.report")  # from ... import
    assert "inpaint.runs" in imports_of("inpaint.evaluation.cli")
    assert "inpaint.inference" in imports_of("inpaint")  # inside a function


def test_no_import_cycles() -> None:
    assert import_cycles() == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        # Figures draw tensors and curves; the report uses them, not the other way round.
        ("inpaint.evaluation.figures", "inpaint.evaluation.report"),
        # The method labels have their own module: training does not depend on the evaluation report.
        ("inpaint.training.callbacks", "inpaint.evaluation.report"),
        # The entry points share the library, not each other.
        ("inpaint.app", "inpaint.predict"),
        ("inpaint.export", "inpaint.predict"),
    ],
)
def test_module_does_not_import(module: str, forbidden: str) -> None:
    assert forbidden not in imports_of(module)
