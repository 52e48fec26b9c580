"""The house's plan, checked from the code's own imports (issue 12).

- Imports run agents -> dishbrain -> envs, never back: nothing in `envs` imports `dishbrain` or
  `agents`; nothing in `dishbrain` imports `agents` (players reach dishbrain through the
  `dishbrain.players` entry points and `module:factory` specs, resolved at run time).
- No circular import between modules, counting imports inside functions too (a lazy import
  hides a circle from Python, not from a reader).
- No module over 600 lines unless its docstring says why ("Long because ...").

Imports are read with `ast` (nothing is imported), so the test is fast and sees every branch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envs", "dishbrain", "agents")
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import of `name` loads last (its own file), or None if foreign."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` loads the submodule when one exists, else pkg itself
            names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
                     for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                targets.add(target)
    return targets


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_modules_were_found():
    assert {"envs.pong", "dishbrain.mea", "agents.simple"} <= set(MODULES)


@pytest.mark.parametrize("importer, forbidden", [("envs", {"dishbrain", "agents"}),
                                                 ("dishbrain", {"agents"})])
def test_imports_run_agents_to_dishbrain_to_envs(importer, forbidden):
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                   if _top(module) == importer for target in targets if _top(target) in forbidden)
    assert not wrong, "imports against the plan:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_circular_imports():
    cycles = _cycles(GRAPH)
    assert not cycles, "circular imports:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_long_modules_say_why():
    too_long = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            if "Long because" not in doc:
                too_long.append(f"{module}: {lines} lines")
    assert not too_long, (f"modules over {MAX_LINES} lines without 'Long because ...' in their "
                          "docstring:\n") + "\n".join(too_long)
