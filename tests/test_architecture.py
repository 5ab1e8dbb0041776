"""The package's shape: imports point one way, config validation stays light, catalogs are true."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from prunebench.criteria.catalog import CRITERIA
from prunebench.data.catalog import DATASETS
from prunebench.models.catalog import MODELS

SRC = Path(__file__).parents[1] / "src"
PACKAGE = "prunebench"


def module_names() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports, counting EVERY import statement: top level,
    inside functions, under TYPE_CHECKING; `from a import b` counts `a` (and `a.b` if a module)."""
    modules = module_names()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        base = module if is_package else module.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                root = node.module or ""
                if node.level:
                    anchor = base
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    root = f"{anchor}.{root}" if root else anchor
                targets += [root, *(f"{root}.{alias.name}" for alias in node.names)]
        graph[module] = {
            r
            for t in targets
            if t.startswith(PACKAGE) and (r := resolve(t)) is not None and r != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_imports_inside_functions_and_type_checking(tmp_path, monkeypatch):
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from prunebench.b import g\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import prunebench.a\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    assert cycles(import_graph()) == [[f"{PACKAGE}.a", f"{PACKAGE}.b"]]


def test_arrows_point_one_way():
    """The layers of docs/architecture.md: nothing below imports what is above it."""
    graph = import_graph()
    below = {
        "prunebench.config.schema": {
            "prunebench.engine.plan",
            "prunebench.engine.driver",
            "prunebench.engine.step",
        },
        "prunebench.engine.plan": {
            "prunebench.engine.driver",
            "prunebench.engine.step",
            "prunebench.store.database",
        },
        "prunebench.engine.step": {
            "prunebench.engine.driver",
            "prunebench.store.database",
            "prunebench.engine.executors.base",
            "prunebench.engine.executors.local",
        },
        "prunebench.engine.pretrain": {"prunebench.store.database", "prunebench.engine.driver"},
        "prunebench.export.pruned": {"prunebench.engine.driver", "prunebench.engine.step"},
    }
    for module, forbidden in below.items():
        assert not graph[module] & forbidden, f"{module} imports {graph[module] & forbidden}"
    store_users = {
        m
        for m, deps in graph.items()
        if "prunebench.store.database" in deps and not m.startswith("prunebench.cli.")
    }
    assert store_users <= {
        "prunebench.engine.driver",
        "prunebench.engine.adaptive",
        "prunebench.engine.dense_models",
        "prunebench.engine.dead_runs",
        "prunebench.engine.leases",
        "prunebench.engine.resume",
        "prunebench.engine.run_rows",
        "prunebench.engine.single_run",
        "prunebench.engine.step_evaluation",
        "prunebench.engine.migrate",
        "prunebench.store.results",
        "prunebench.export.pruned",
        "prunebench.store.verify",
    }, store_users
    # trackers get rows from the driver and never reach back into it, the store or torch code
    tracking = {m for m in graph if m.startswith("prunebench.tracking")}
    assert tracking
    for module in tracking:
        outside = {d for d in graph[module] if not d.startswith("prunebench.tracking")}
        assert outside <= {"prunebench.errors"}, f"{module} imports {outside}"
    assert {
        d for d in graph["prunebench.config.schema"] if d.startswith("prunebench.tracking")
    } == {"prunebench.tracking.spec"}
    # the command line is the top: nothing of the library imports it
    cli_users = {
        m for m, deps in graph.items() if any(d.startswith("prunebench.cli") for d in deps)
    }
    assert {m for m in cli_users if not m.startswith("prunebench.cli")} == {"prunebench.__main__"}
    # the store is below the engine, the CLI, reports and exports: it never reaches up to them
    store = {m for m in graph if m.startswith("prunebench.store")}
    assert len(store) > 1
    above = ("prunebench.engine", "prunebench.cli", "prunebench.report", "prunebench.export")
    for module in store:
        upward = {d for d in graph[module] if d.startswith(above)}
        assert not upward, f"{module} imports {upward}"
    report = {m for m in graph if m.startswith("prunebench.report")}
    for module in report:
        assert "prunebench.store.database" not in graph[module], (
            f"{module} reads the store directly"
        )


# What config/ may import besides its own modules: light leaves only (no torch, no engine).
CONFIG_LEAVES = {
    "prunebench.errors",
    "prunebench.registry",
    "prunebench.models.catalog",
    "prunebench.data.catalog",
    "prunebench.data.options",
    "prunebench.criteria.catalog",
    "prunebench.pruning.presets",
    "prunebench.tracking.spec",
}


def test_config_imports_only_light_leaves():
    graph = import_graph()
    config = {m for m in graph if m == "prunebench.config" or m.startswith("prunebench.config.")}
    assert {
        "prunebench.config.schema",
        "prunebench.config.identity",
        "prunebench.config.loading",
    } <= config
    for module in config:
        outside = {d for d in graph[module] if d not in config}
        assert outside <= CONFIG_LEAVES, f"{module} imports {outside - CONFIG_LEAVES}"


def test_the_engine_imports_no_interface_layer():
    """The engine computes and stores; the CLI, the report and export sit above it."""
    graph = import_graph()
    engine = {m for m in graph if m.startswith("prunebench.engine")}
    assert {"prunebench.engine.driver", "prunebench.engine.executors.base"} <= engine
    above = ("prunebench.cli", "prunebench.report", "prunebench.export")
    for module in engine:
        wrong = {d for d in graph[module] if d.startswith(above)}
        assert not wrong, f"{module} imports {wrong}"
    # executors only compute: the driver is the one writer of the results directory
    executors = {m for m in engine if m.startswith("prunebench.engine.executors")}
    for module in executors:
        assert not {d for d in graph[module] if d.startswith("prunebench.store")}, module


def test_validating_a_config_imports_no_torch():
    code = (
        "import sys\n"
        "from prunebench.config import load_run_config\n"
        "load_run_config(None, ['model.name=vit_small_patch16_224', 'prune.criterion=taylor'])\n"
        "heavy = [m for m in ('torch', 'timm', 'transformers', 'torch_pruning') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    env_path = {"PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_path, check=True
    )
    assert done.stdout.strip() == ""


@pytest.mark.parametrize(
    ("registry", "facts"),
    [
        (MODELS, ("task",)),
        (DATASETS, ("task", "needs_root")),
        (CRITERIA, ("needs_data", "structured")),
    ],
    ids=["models", "datasets", "criteria"],
)
def test_declared_facts_equal_the_loaded_objects(registry, facts):
    """The catalogs answer config checks without importing; they must not drift from the code."""
    for name in registry.names():
        declared = registry.declared_facts(name)
        assert set(declared) == set(facts), name
        loaded = registry.get(name)
        for key, value in declared.items():
            assert getattr(loaded, key) == value, (name, key)


def test_config_reexports_its_public_names():
    """`from prunebench.config import RunConfig, run_id, ...` gives the defining modules' objects."""
    import importlib

    import prunebench.config as config

    for name, module in config._EXPORTS.items():
        assert getattr(config, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'RunConfg'"):
        _ = config.RunConfg


def test_every_module_is_described_in_the_architecture_page():
    """docs/architecture.md stays true: each module of the package is named there."""
    text = (SRC.parent / "docs" / "architecture.md").read_text()
    missing = sorted(
        str(path.relative_to(SRC / PACKAGE))
        for path in (SRC / PACKAGE).rglob("*.py")
        if path.name != "__init__.py" and f"{path.stem}.py" not in text
    )
    assert not missing, f"not described in docs/architecture.md: {missing}"
