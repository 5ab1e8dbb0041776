"""prunebench: benchmark pruning regimes (one-shot, iterative constant/geometric, hybrid).

Library use, e.g. inside your own training loop:

    from prunebench import schedules, UnstructuredPruner, fit, run, load_run_config
    targets = schedules.geometric(0.9, steps=5)

Heavy pieces are imported on first use, so `import prunebench` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "schedules": ("prunebench.config.schedules", None),
    "load_run_config": ("prunebench.config.loading", "load_run_config"),
    "RunConfig": ("prunebench.config.schema", "RunConfig"),
    "run": ("prunebench.engine.single_run", "run"),
    "Store": ("prunebench.store.database", "Store"),
    "load_results": ("prunebench.store.results", "load_results"),
    "UnstructuredPruner": ("prunebench.pruning.unstructured", "UnstructuredPruner"),
    "StructuredPruner": ("prunebench.pruning.structured", "StructuredPruner"),
    "load_pruned": ("prunebench.export.pruned", "load_pruned"),
    "MaskSet": ("prunebench.pruning.masks", "MaskSet"),
    "select_prunable": ("prunebench.pruning.params", "select_prunable"),
    "make_pruner": ("prunebench.pruning.factory", "make_pruner"),
    "make_criterion": ("prunebench.criteria.catalog", "make_criterion"),
    "EarlyStopping": ("prunebench.engine.finetune", "EarlyStopping"),
    "FitSettings": ("prunebench.config.fit_settings", "FitSettings"),
    "fit": ("prunebench.engine.finetune", "fit"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prunebench' has no attribute '{name}'")
    module_name, attr = _EXPORTS[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
