"""The house's shape, checked: the module import graph of `ioc/` has no cycle, and no room
reaches into another room's inner modules (only `from ioc.<room> import X`).

The graph is read from the source (ast), so it holds every import: at module level, inside
functions (a late import hides a circle, it does not remove it) and under `TYPE_CHECKING`.
The one allowance: type-only imports between two modules of the same room (a hub and the
connections it routes to name each other's types) are not edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ioc

PACKAGE = Path(ioc.__file__).parent
# Alembic's scripts are loaded by Alembic, not imported by ioc.
SKIPPED = {"migrations"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if SKIPPED & set(parts):
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _room(name: str) -> str:
    """`ioc.kpis.engine` → `kpis`; top-level modules (`ioc.cli`) are rooms of their own."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else name


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _edges(name: str) -> Iterator[Edge]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    package = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from ioc.kpis import engine` imports the module ioc.kpis.engine
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            resolved = _resolve(target) if target.split(".")[0] == "ioc" else None
            if resolved is not None and resolved != name:
                yield Edge(name, resolved, node.lineno, node.lineno in typing_only)


EDGES = [edge for name in MODULES for edge in _edges(name)]


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for edge in edges:
        graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read() -> None:
    # guards the test itself: a parser that finds nothing would pass everything below
    assert len(MODULES) > 80
    assert Edge("ioc.app", "ioc.kpis", 0, False) in {
        Edge(e.source, e.target, 0, e.type_only) for e in EDGES
    }


def test_no_import_cycle() -> None:
    counted = [e for e in EDGES if not (e.type_only and _room(e.source) == _room(e.target))]
    cycles = _cycles(counted)
    described = [
        " → ".join(c)
        + "\n    "
        + "\n    ".join(
            f"{e.source}:{e.line} imports {e.target}"
            for e in counted
            if e.source in c and e.target in c
        )
        for c in cycles
    ]
    assert not cycles, "import cycles in ioc/:\n" + "\n".join(described)


def test_rooms_import_only_other_rooms_faces() -> None:
    reaching_in = [
        f"{e.source}:{e.line} imports {e.target}; import from its package instead"
        for e in EDGES
        if _room(e.source) != _room(e.target)
        and e.target.count(".") >= 2
        and not _is_package(e.target)
    ]
    assert not reaching_in, "rooms reaching into other rooms:\n" + "\n".join(reaching_in)


def test_nothing_imports_the_composition_roots() -> None:
    # `ioc serve` runs the app: the command line is the only way in to the app factory.
    allowed = {("ioc.cli", "ioc.app"), ("ioc.__main__", "ioc.cli")}
    importers = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in EDGES
        if e.target in {"ioc.app", "ioc.cli"} and (e.source, e.target) not in allowed
    ]
    assert not importers, "the app factory and the CLI sit on top:\n" + "\n".join(importers)
