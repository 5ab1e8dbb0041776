"""Sweeps: a base run config plus a grid of dotted keys, expanded into validated run configs.

base: ../digits.yaml          # relative to the sweep file
set: {finetune.patience: 3}   # overrides for every run
grid:
  regime: [{name: one_shot}, {name: geometric, rate: 0.3}]   # a mapping replaces the node
  regime.target: [0.5, 0.9]   # deeper keys are applied after shallower ones
  seed: [0, 1]
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import Field

from prunebench.config import (
    RunConfig,
    StrictModel,
    apply_overrides,
    canonical_json,
    read_yaml,
    validate,
)
from prunebench.errors import ConfigError


class SweepConfig(StrictModel):
    base: Path | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    skip_invalid: bool = False  # drop grid points whose run config is invalid (listed, not hidden)


def _assign(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set a dotted key; mappings replace the node rather than merge into it."""
    out = apply_overrides(raw, [f"{key}=null"])
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


def load_sweep(
    path: Path, overrides: list[str] | None = None
) -> tuple[SweepConfig, list[RunConfig], list[str]]:
    """Expand a sweep file into run configs (deduplicated) and the descriptions of skipped points."""
    sweep = validate(SweepConfig, read_yaml(path), str(path))
    raw: dict[str, Any] = {}
    if sweep.base is not None:
        base_path = sweep.base if sweep.base.is_absolute() else path.parent / sweep.base
        raw = read_yaml(base_path)
    raw = apply_overrides(raw, [f"{k}={canonical_json(v)}" for k, v in sweep.set.items()])
    raw = apply_overrides(raw, list(overrides or []))
    for key, values in sweep.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty list")
    axes = sorted(sweep.grid.items(), key=lambda item: item[0].count("."))
    runs: list[RunConfig] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for values in itertools.product(*(v for _, v in axes)):
        point = raw
        for (key, _), value in zip(axes, values, strict=True):
            point = _assign(point, key, value)
        label = ", ".join(
            f"{k}={canonical_json(v)}" for (k, _), v in zip(axes, values, strict=True)
        )
        try:
            cfg = validate(RunConfig, point, f"{path} [{label}]")
        except ConfigError as exc:
            if not sweep.skip_invalid:
                raise
            skipped.append(str(exc))
            continue
        fingerprint = canonical_json(cfg.model_dump(mode="json"))
        if fingerprint not in seen:
            seen.add(fingerprint)
            runs.append(cfg)
    if not runs:
        raise ConfigError(f"{path}: the grid expands to no valid run")
    return sweep, runs, skipped
