"""The package's layers import only downward, and no import (lazy or not) closes a cycle.

    foundation (errors, files, device, emotions, checkpoint, config) -> data -> search, metrics
    -> classifier -> gan -> inference -> pipeline -> report -> cli -> __main__

``search`` and ``metrics`` are pure (they import the foundation only), so an optimizer or a
measure never reaches for faces, models or files of a run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "ganpso"
FOUNDATION = {"ganpso", "errors", "files", "device", "emotions", "checkpoint", "config"}
RANK = {
    **{name: 0 for name in FOUNDATION},
    "data": 1,
    "search": 2,
    "metrics": 2,
    "classifier": 3,
    "gan": 4,
    "inference": 5,
    "pipeline": 6,
    "report": 7,
    "cli": 8,
    "__main__": 9,  # ``python -m ganpso``: the command line, nothing else
}
PURE = {"search", "metrics"}  # import the foundation only


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ganpso"


def imports_of(path: Path) -> list[tuple[str, int]]:
    """``(imported ganpso module, line)`` for every import in the file, nested ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((target, node.lineno))
    return [(target, line) for target, line in found if layer_of_target(target)]


def layer_of_target(target: str) -> str | None:
    if target != "ganpso" and not target.startswith("ganpso."):
        return None
    return layer(target)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    assert {layer(name) for name in MODULES} <= set(RANK)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    own = layer(module)
    for target, line in imports_of(MODULES[module]):
        theirs = layer(target)
        if theirs == own:
            continue
        where = f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target}"
        assert RANK[theirs] < RANK[own] or (own in FOUNDATION and theirs in FOUNDATION), where
        if own in PURE:
            assert theirs in FOUNDATION, f"{where}: {own} imports the foundation only"


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = set()
        for target, _ in imports_of(path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    # a package's __init__ re-exports its modules; the modules importing their own package's
    # __init__ is the usual way to reach siblings, so that edge alone is no cycle
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        if node in done:
            return
        if node in stack:
            cycle = [*stack[stack.index(node) :], node]
            if not _only_through_own_init(cycle):
                pytest.fail("import cycle: " + " -> ".join(cycle))
            return
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)


def _only_through_own_init(cycle: list[str]) -> bool:
    """A cycle through a package's ``__init__`` and its own submodules only (re-exports)."""
    packages = {layer(name) for name in cycle}
    has_init = any(name.count(".") == 1 or name == "ganpso" for name in cycle)
    return len(packages) == 1 and has_init
