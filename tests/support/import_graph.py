"""The module-level import graph of our packages, and its cycles.

An import inside a function (a lazy import) or under `if TYPE_CHECKING:` runs after every module has loaded, so it
cannot make a cycle at import time; every other import, however nested in try/if blocks, counts. Edges lead to our
own modules only: `from core import pictures` leads to core.pictures, `from core.domain import Node` to core.domain.

    python -m tests.support.import_graph        # prints each cycle of core/, storage/ and bot/, exits 1 if any
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "storage", "bot")


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of the packages under root, by dotted name (a package by its own name, for its __init__)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports when it is imported."""
    known = modules(root, packages)
    graph = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for imported in _module_level_imports(ast.parse(path.read_text(), str(path)), name, is_package):
            target = _closest_module(imported, known)
            if target is not None and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that ends where it started) through each group of modules that import each other."""
    found = []
    for component in _strongly_connected(graph):
        if len(component) > 1:
            found.append(_cycle_within(graph, set(component)))
    return sorted(found)


def _module_level_imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[str]:
    def visit(statements: list[ast.stmt]) -> Iterator[str]:
        for statement in statements:
            if isinstance(statement, ast.Import):
                yield from (alias.name for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom):
                base = _absolute(statement, name, is_package)
                yield base
                yield from (f"{base}.{alias.name}" for alias in statement.names)
            elif isinstance(statement, ast.If) and _is_type_checking(statement.test):
                yield from visit(statement.orelse)
            elif isinstance(statement, ast.If) and _is_main_guard(statement.test):
                continue  # runs only when the module is executed as a script, never on import
            elif isinstance(statement, (ast.If, ast.Try, ast.With)):
                for block in ("body", "orelse", "finalbody"):
                    yield from visit(getattr(statement, block, []))
                for handler in getattr(statement, "handlers", []):
                    yield from visit(handler.body)

    return visit(tree.body)


def _absolute(statement: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not statement.level:
        return statement.module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    parts = parts[: len(parts) - statement.level + 1]
    return ".".join(parts + ([statement.module] if statement.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(value, ast.Constant) and value.value == "__main__" for value in test.comparators))


def _closest_module(imported: str, known: dict[str, Path]) -> str | None:
    parts = imported.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on a long import chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
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
                components.append(sorted(component))
    return components


def _cycle_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest way from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor == start:
                    return paths[node] + [start]
                if successor not in paths:
                    paths[successor] = paths[node] + [successor]
                    following.append(successor)
        frontier = following
    raise AssertionError("a strongly connected component always holds a cycle")


if __name__ == "__main__":
    found = cycles(import_graph())
    for cycle in found:
        print(" -> ".join(cycle))
    print(f"{len(found)} import cycle(s) in {', '.join(PACKAGES)}")
    sys.exit(1 if found else 0)
