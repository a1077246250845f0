"""The package's shape: imports point one way, old paths still work, the public API is written down.

The import graph is read from the source (every ``import`` statement, function-level ones
included, except those under ``if TYPE_CHECKING``), so a circle or an upward import fails
here before it can fail at import time in a user's process.
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

import shrinkage

SRC = Path(shrinkage.__file__).parent

# Deprecated alias modules: each forwards to its new home (and nothing imports them).
ALIASES = {
    "shrinkage.apply": ("shrinkage.regularizer", "Regularizer"),
    "shrinkage.batched": ("shrinkage.search.engine", "train_stack"),
    "shrinkage.checkpoint": ("shrinkage.search", "run_chunks"),
    "shrinkage.distributed": ("shrinkage.search", "connect"),
    "shrinkage.diagnosis": ("shrinkage.analysis", "diagnose"),
    "shrinkage.diagnostics": ("shrinkage.analysis", "weight_table"),
    "shrinkage.persistence": ("shrinkage.estimators", "save"),
    "shrinkage.plots": ("shrinkage.analysis", "plot_validation_curve"),
}

# The layers, lowest first: a module may import its own layer or lower ones, never higher.
LAYERS = [
    ("shrinkage._version", "shrinkage._names", "shrinkage.errors", "shrinkage._deprecated"),
    (
        "shrinkage._validation",
        "shrinkage._io",
        "shrinkage._registry",
        "shrinkage.display",
        "shrinkage._progress",
    ),
    ("shrinkage.functional",),
    ("shrinkage.penalties", "shrinkage.constraints", "shrinkage.steps"),
    ("shrinkage.plan",),
    ("shrinkage.regularizer",),
    ("shrinkage.models",),
    ("shrinkage.training", "shrinkage.compact"),
    ("shrinkage.data",),
    ("shrinkage.estimators",),
    ("shrinkage.search.engine",),
    ("shrinkage.search",),
    ("shrinkage.analysis",),
    ("shrinkage.report",),
    # the top-level namespace re-exports (lazily) from every layer below
    ("shrinkage", "shrinkage.cli", "shrinkage.integrations"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {name: path for name, path in found.items() if name not in ALIASES}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's ``__init__`` is the package)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        edges: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "shrinkage":
                    resolved = _resolve(target, modules)
                    if resolved and resolved != name:
                        edges.add(resolved)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> int:
    best, level = -1, None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            inside = module == prefix or (prefix != "shrinkage" and module.startswith(prefix + "."))
            if inside and len(prefix) > best:
                best, level = len(prefix), i
    if level is None:
        raise AssertionError(f"{module} is in no layer of tests/test_imports.py; add it")
    return level


def test_the_package_has_no_import_circle():
    assert _cycles(import_graph()) == []


def test_a_circle_would_be_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_point_down_the_layers():
    upward = [
        f"{a} -> {b}"
        for a, targets in sorted(import_graph().items())
        if a != "shrinkage"
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    assert upward == []


def test_the_top_level_namespace_imports_nothing_heavy_until_asked():
    code = (
        "import sys, shrinkage; "
        "print(sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_old_import_paths_still_work_and_warn(old):
    new, name = ALIASES[old]
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_every_public_module_declares_its_api():
    public = [
        name
        for name in _modules()
        if not any(part.startswith("_") for part in name.split(".")) and name != "shrinkage.cli"
    ]
    missing = [
        name
        for name in public
        if not name.startswith("shrinkage.cli.")
        and "__all__" not in vars(importlib.import_module(name))
    ]
    assert missing == []
    for name in shrinkage.__all__:
        assert getattr(shrinkage, name) is not None
