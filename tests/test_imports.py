"""The import graph of src/inertia: no cycles (counting imports inside functions, which only defer
one), no private name imported across packages, and the packages import in any order."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "inertia"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
PACKAGES = {_module_name(p) for p in ROOT.rglob("__init__.py")}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``from X import ...`` in ``module`` reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if module in PACKAGES else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, str | None, int]]:
    """Every import in ``module`` (at any depth, functions included) as (module, name or None, line);
    ``from pkg import sub`` with ``sub`` a module counts as importing ``pkg.sub``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for a in node.names:
                sub = f"{source}.{a.name}"
                out.append((sub, None, node.lineno) if sub in MODULES else (source, a.name, node.lineno))
    return out


def graph() -> dict[str, set[str]]:
    """module -> the inertia modules it imports (not counting the parent packages Python imports first)."""
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {target for target, _, _ in imports(module) if target in MODULES and target != module}
        edges[module] = {t for t in targets if not module.startswith(t + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def _unit(module: str) -> str:
    """The package a module belongs to for the privacy rule: ``inertia.X`` (a subpackage, or a
    top-level module such as ``inertia.cli``)."""
    return ".".join(module.split(".")[:2])


def is_private_across_packages(module: str, target: str, name: str | None = None) -> bool:
    """``module`` importing ``target`` (or ``name`` from it) reads a private name (``_x``, not dunder)
    of another package. A private module directly under ``inertia`` (``inertia._registry``) is shared
    by the whole library; anything else private stays inside its package; other libraries' names
    are not checked here."""
    parts = target.split(".") + ([name] if name else [])
    private = [i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")]
    if parts[0] != "inertia" or not private:
        return False
    owner = ".".join(parts[: private[0]])
    return owner != "inertia" and _unit(module) != _unit(owner)


def private_imports() -> list[str]:
    """``module:line imports target.name`` for each private name imported across packages."""
    return [
        f"{module}:{line} imports {target}{'.' + name if name else ''}"
        for module in MODULES
        for target, name, line in imports(module)
        if is_private_across_packages(module, target, name)
    ]


def test_the_graph_finds_every_module_and_a_planted_cycle():
    assert {"inertia.cli", "inertia.experiments.train", "inertia.data.registry"} <= set(MODULES)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "inertia.experiments.config" in graph()["inertia.experiments.components"]


def test_no_import_cycles_in_inertia():
    assert cycles(graph()) == []


def test_experiments_config_does_not_import_components():
    assert "inertia.experiments.components" not in graph()["inertia.experiments.config"]


# Imports of another package's private names, in files other engineers own (reported to the lead:
# inertia.doctor's _stability_line is being renamed; jacobians._spectrum wants a public name).
def test_no_private_name_is_imported_across_packages():
    assert private_imports() == []


@pytest.mark.parametrize(
    "module,target,name,private",
    [
        ("inertia.doctor", "inertia.diagnostics.jacobians", "_spectrum", True),
        ("inertia.cli", "inertia.doctor", "_stability_line", True),
        ("inertia.doctor", "inertia.data._validate", "check_count", True),
        ("inertia.data.curves", "inertia.data._validate", "check_count", False),  # inside its package
        ("inertia.experiments.store", "inertia._atomic", "atomic_torch_save", False),  # the library's own
        ("inertia.cli", "typer._click", "exceptions", False),  # another library
        ("inertia.doctor", "inertia.diagnostics.jacobians", "blocks_of", False),
    ],
)
def test_the_privacy_rule(module, target, name, private):
    assert is_private_across_packages(module, target, name) is private


# Packages whose import order could expose a cycle (each imported first in a fresh interpreter).
FIRST_IMPORTS = [
    "inertia.experiments.config",
    "inertia.experiments.components",
    "inertia.experiments.train",
    "inertia.experiments",
    "inertia.data",
    "inertia.cli",
]


@pytest.mark.slow
@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_each_entry_module_imports_first_in_a_fresh_interpreter(first):
    code = f"import {first}; import inertia.experiments.train, inertia.cli, inertia.reproduce"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=300
    )
    assert res.returncode == 0, res.stderr


def test_importing_inertia_experiments_imports_no_submodule_and_not_torch():
    code = (
        "import sys, inertia.experiments as e; "
        "assert 'torch' not in sys.modules and 'inertia.experiments.config' not in sys.modules, sorted(sys.modules); "
        "assert set(e.__all__) >= {'train', 'Config', 'from_dict', 'dry_build', 'run_sweep'}"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    assert res.returncode == 0, res.stderr


def test_the_core_packages_do_not_import_matplotlib_until_a_figure_is_made():
    """matplotlib costs 0.65 s of import here: measuring (diagnostics, doctor, optim, init) needs none."""
    code = (
        "import sys, inertia, inertia.init, inertia.optim, inertia.diagnostics, inertia.doctor; "
        "assert 'matplotlib' not in sys.modules; "
        "inertia.diagnostics.plots.subplots(); assert 'matplotlib' in sys.modules"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    assert res.returncode == 0, res.stderr


def test_experiments_train_is_the_function_after_its_module_is_imported():
    import importlib

    import inertia.experiments as e

    module = importlib.import_module("inertia.experiments.train")  # the import system binds it on the package
    from inertia.experiments import train

    assert callable(train) and train is e.train is module.train
