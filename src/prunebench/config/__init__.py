"""Experiment configuration: schema, identities, YAML and --set loading, sweep grids, schedules
(light: no torch).

The public names load on first use (`from prunebench.config import RunConfig, run_id`), so that
the leaves of this package (`source_names`, `schedules`), which the catalogs import, do not pull
in the schema that reads those catalogs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RunConfig": "prunebench.config.schema",
    "DataConfig": "prunebench.config.schema",
    "ModelConfig": "prunebench.config.schema",
    "PretrainConfig": "prunebench.config.schema",
    "FinetuneConfig": "prunebench.config.schema",
    "OptimizerConfig": "prunebench.config.schema",
    "PruneConfig": "prunebench.config.schema",
    "RegimeConfig": "prunebench.config.schema",
    "TrainConfig": "prunebench.config.schema",
    "EvalConfig": "prunebench.config.evaluation",
    "SCHEMA_VERSION": "prunebench.config.identity",
    "ADDED_FIELDS": "prunebench.config.identity",
    "run_id": "prunebench.config.identity",
    "base_id": "prunebench.config.identity",
    "data_identity": "prunebench.config.identity",
    "digest": "prunebench.config.identity",
    "canonical_json": "prunebench.config.identity",
    "load_run_config": "prunebench.config.loading",
    "read_yaml": "prunebench.config.loading",
    "apply_overrides": "prunebench.config.loading",
    "validate": "prunebench.config.loading",
    "load_sweep": "prunebench.config.sweep_grid",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prunebench.config' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
