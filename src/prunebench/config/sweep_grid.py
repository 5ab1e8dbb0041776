"""Sweeps: a base run config, cases and a grid of dotted keys, expanded into validated run configs.

base: ../digits.yaml          # relative to the sweep file
set: {finetune.patience: 3}   # the sweep's defaults for every run
cases:                        # one axis whose points set several keys together (optional)
  - {name: one-shot, regime.name: one_shot, finetune.patience: 6}
  - {name: geometric q=0.2, regime: {name: geometric, rate: 0.2}}
grid:                         # crossed with the cases and with each other
  regime.target: [0.5, 0.9]   # a mapping replaces the node; deeper keys apply after shallower
  seed: [0, 1]

Order: base, `set`, the case, the grid axes, then the command line's `--set` (the last word:
`--set seed=0` keeps one seed of a seed axis; points that become equal are merged).

Every run gets a readable name (its label in tables and reports; not part of its id): the
case's `name`, else the regime with its arguments (e.g. `hybrid p_k=0.5 q=0.04365`), followed by
the values of the grid axes that vary (e.g. `criterion=random`), except seed and target, which
are columns of their own. A name with `{dotted.key}` placeholders is a template filled from the
run's config and gets no suffix. Two different runs with the same name, target and seed would
be averaged together in tables, so that is refused up front.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from prunebench.config.identity import canonical_json, run_id
from prunebench.config.loading import apply_overrides, read_yaml, validate
from prunebench.config.schema import RegimeConfig, RunConfig, StrictModel
from prunebench.errors import ConfigError


class SweepConfig(StrictModel):
    base: Path | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    cases: list[dict[str, Any]] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    skip_invalid: bool = False  # drop grid points whose run config is invalid (listed, not hidden)


# Paper notation for the schedule arguments in run names.
ARG_LABELS = {"first": "p_k", "rate": "q", "step": "step", "steps": "steps", "targets": "targets"}
# Axes that are table dimensions of their own, never part of a run's name.
UNNAMED_AXES = ("seed", "name", "device", "log")


def _assign(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set a dotted key; mappings replace the node rather than merge into it."""
    out = apply_overrides(raw, [f"{key}=null"])
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


def _by_depth(items: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(items.items(), key=lambda item: item[0].count("."))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return canonical_json(value)
    return str(value)


def regime_label(regime: RegimeConfig) -> str:
    """e.g. 'one-shot', 'geometric q=0.2', 'hybrid p_k=0.5 q=0.04365', 'constant steps=5'."""
    args = regime.arguments()
    parts = [regime.name.replace("_", "-")]
    parts += [f"{label}={_fmt(args[arg])}" for arg, label in ARG_LABELS.items() if arg in args]
    if "tolerance" in args:
        parts.append(f"tol={_fmt(args['tolerance'])}")
    return " ".join(parts)


def _lookup(dump: dict[str, Any], dotted: str) -> Any:
    node: Any = dump
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")


def _fill(template: str, dump: dict[str, Any], source: str) -> str:
    def value(match: re.Match[str]) -> str:
        try:
            return _fmt(_lookup(dump, match.group(1)))
        except KeyError:
            raise ConfigError(
                f"{source}: name template '{template}' refers to unknown key "
                f"'{match.group(1)}'; use a dotted config key such as {{regime.rate}}"
            ) from None

    return _PLACEHOLDER.sub(value, template)


def name_runs(configs: list[RunConfig], axes: list[str], source: str = "sweep") -> list[RunConfig]:
    """Give every run its readable name (see the module docstring) and refuse ambiguous names."""
    dumps = [cfg.model_dump(mode="json") for cfg in configs]
    varying = []
    for key in axes:
        if key in UNNAMED_AXES or key == "regime" or key.startswith("regime."):
            continue  # the regime's label already shows its arguments
        values = set()
        for dump in dumps:
            try:
                values.add(canonical_json(_lookup(dump, key)))
            except KeyError:
                values.add("")
        if len(values) > 1:
            varying.append(key)
    named = []
    for cfg, dump in zip(configs, dumps, strict=True):
        if cfg.name and _PLACEHOLDER.search(cfg.name):
            name = _fill(cfg.name, dump, source)
        else:
            name = cfg.name or regime_label(cfg.regime)
            suffix = [f"{key.split('.')[-1]}={_fmt(_lookup(dump, key))}" for key in varying]
            name = " ".join([name, *suffix])
        named.append(cfg.model_copy(update={"name": name}))
    _check_names(named, source)
    return named


def _check_names(configs: list[RunConfig], source: str) -> None:
    seen: dict[tuple[str, float, int], str] = {}
    for cfg in configs:
        key = (cfg.name or "", round(cfg.regime.final_target, 12), cfg.seed)
        rid = run_id(cfg)
        if seen.setdefault(key, rid) != rid:
            raise ConfigError(
                f"{source}: two different runs are both named '{cfg.name}' (target "
                f"{cfg.regime.final_target:g}, seed {cfg.seed}); give each case its own name"
            )


def load_sweep(
    path: Path, overrides: list[str] | None = None
) -> tuple[SweepConfig, list[RunConfig], list[str]]:
    """Expand a sweep file into named run configs (one per run id) and the skipped points."""
    sweep = validate(SweepConfig, read_yaml(path), str(path))
    raw: dict[str, Any] = {}
    if sweep.base is not None:
        base_path = sweep.base if sweep.base.is_absolute() else path.parent / sweep.base
        raw = read_yaml(base_path)
    raw = apply_overrides(raw, [f"{k}={canonical_json(v)}" for k, v in sweep.set.items()])
    for key, values in sweep.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty list")
    axes = _by_depth(sweep.grid)
    cases = sweep.cases or [{}]
    runs: list[RunConfig] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for (case_index, case), values in itertools.product(
        enumerate(cases), itertools.product(*(v for _, v in axes))
    ):
        point = raw
        for key, value in _by_depth(case):
            point = _assign(point, key, value)
        for (key, _), value in zip(axes, values, strict=True):
            point = _assign(point, key, value)
        point = apply_overrides(point, list(overrides or []))
        label = ", ".join(
            ([f"case {case_index + 1}"] if sweep.cases else [])
            + [f"{k}={canonical_json(v)}" for (k, _), v in zip(axes, values, strict=True)]
        )
        try:
            cfg = validate(RunConfig, point, f"{path} [{label}]")
        except ConfigError as exc:
            if not sweep.skip_invalid:
                raise
            skipped.append(str(exc))
            continue
        rid = run_id(cfg)
        if rid not in seen:
            seen.add(rid)
            runs.append(cfg)
    if not runs:
        raise ConfigError(f"{path}: the grid expands to no valid run")
    return sweep, name_runs(runs, [k for k, _ in axes], str(path)), skipped
