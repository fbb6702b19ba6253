"""The layering of docs/architecture.md, checked on the source: a new upward import or import cycle fails.

Every ``import``/``from … import`` of a ``structlearn`` module counts, at module level, inside
functions (deferred) and under ``TYPE_CHECKING`` alike: a deferred import hides a dependency from
readers, it does not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Which packages each package may import (besides itself). utils → nn → models/optim/data/diagnostics
# → train → reid → cli; cluster/ beside them on utils and data.
ALLOWED: dict[str, set[str]] = {
    "<root>": set(),
    "utils": set(),
    "nn": {"utils"},
    "models": {"utils", "nn"},
    "optim": {"utils"},
    "data": {"utils"},
    "diagnostics": {"utils", "nn", "models"},
    "cluster": {"utils", "data"},
    "train": {"utils", "nn", "models", "optim", "data", "diagnostics"},
    "reid": {"utils", "nn", "models", "data", "cluster", "train"},
    "cli": {"<root>", "utils", "nn", "models", "optim", "data", "diagnostics", "cluster", "train", "reid"},
}

# Inside cluster/ (docs/architecture.md): graph/ and objectives/ are leaves, the label-level modules
# (metrics, segmentation) too; methods/ builds on them; plots on the label modules; the package
# __init__ re-exports methods and the registry, which names methods by "module:Class" strings (imported
# on first use; counted as imports of methods/ by _imports).
CLUSTER_ALLOWED: dict[str, set[str]] = {
    "graph": set(),
    "objectives": set(),
    "labels": set(),
    "methods": {"graph", "objectives", "labels"},
    "plots": {"labels"},
    "registry": {"methods"},
    "<init>": {"methods", "labels", "registry"},
}
CLUSTER_TOP = {"metrics": "labels", "segmentation": "labels", "plots": "plots", "registry": "registry"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((SRC / "structlearn").rglob("*.py")):
        mod = _module_name(path)
        deps = out.setdefault(mod, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            internal = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("structlearn")
            if internal and node.level == 0:
                deps.add(node.module)  # type: ignore[arg-type]
                deps.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("structlearn"))
    # The three explicit lazy-import tables (name → module string, imported on first use) are imports
    # too: their targets count as edges, so the layering and cycle checks see them.
    from structlearn.cli import COMMANDS
    from structlearn.cluster.registry import ESTIMATORS
    from structlearn.train import _EXPORTS

    out["structlearn.cluster.registry"].update(target.partition(":")[0] for target in ESTIMATORS.values())
    out["structlearn.train"].update(_EXPORTS.values())
    out["structlearn.cli"].update(f"structlearn.cli.{name}" for name in COMMANDS)
    return {m: {d for d in deps if d in out and d != m} for m, deps in out.items()}


def test_lazy_import_tables_name_existing_modules() -> None:
    from structlearn.cli import COMMANDS
    from structlearn.cluster.registry import ESTIMATORS
    from structlearn.train import _EXPORTS

    targets = {t.partition(":")[0] for t in ESTIMATORS.values()} | set(_EXPORTS.values())
    targets |= {f"structlearn.cli.{name}" for name in COMMANDS}
    modules = {_module_name(p) for p in (SRC / "structlearn").rglob("*.py")}
    assert targets <= modules, f"lazy imports of missing modules: {sorted(targets - modules)}"


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def test_every_package_is_known() -> None:
    pkgs = {_package(m) for m in _imports()}
    assert pkgs <= set(ALLOWED), f"add the new package(s) {sorted(pkgs - set(ALLOWED))} to ALLOWED"


def test_no_upward_imports() -> None:
    bad = sorted(
        f"{m} imports {d}"
        for m, deps in _imports().items()
        for d in deps
        if _package(d) != _package(m) and _package(d) not in ALLOWED[_package(m)]
    )
    assert not bad, "imports against the layering (docs/architecture.md):\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = _imports()
    # A package's __init__ re-exports its modules; an edge into it stands for the package, not a cycle.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append([*stack[stack.index(d) :], d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def _cluster_group(mod: str) -> str | None:
    """The role of a ``structlearn.cluster`` module (None: a new top-level module with no role yet)."""
    parts = mod.split(".")
    if len(parts) == 2:
        return "<init>"
    if parts[2] in {"graph", "objectives", "methods"}:
        return parts[2]
    return CLUSTER_TOP.get(parts[2])


def test_every_cluster_module_has_a_role() -> None:
    mods = [m for m in _imports() if _package(m) == "cluster"]
    assert any(m.startswith("structlearn.cluster.methods.") for m in mods)  # the sub-packages are seen
    loose = sorted(m for m in mods if _cluster_group(m) is None)
    assert not loose, f"put {loose} in a cluster sub-package, or give it a role in CLUSTER_TOP"


def test_cluster_subpackages_are_layered() -> None:
    graph = _imports()
    bad = sorted(
        f"{m} imports {d}"
        for m, deps in graph.items()
        if _package(m) == "cluster"
        for d in deps
        if _package(d) == "cluster"
        and not m.startswith(d + ".")  # a sub-package importing its own parent package's __init__
        and (gm := _cluster_group(m)) != (gd := _cluster_group(d))
        and gd not in CLUSTER_ALLOWED.get(gm or "", set())
    )
    assert not bad, "imports against the layering inside cluster/ (docs/architecture.md):\n" + "\n".join(bad)
