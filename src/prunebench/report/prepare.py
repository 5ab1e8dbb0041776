"""From result rows to the report's tidy frame: one row per finished run, at its final step.

Everything the report compares is a run's LAST step (its final ratio, accuracy and total
fine-tuning epochs). Runs are told apart by a variant label built from the config fields that
differ between runs of the same regime, so a patience or step-size sweep never gets merged into
one line by accident. Labels carry the regime's own arguments in the paper's notation
('geometric q=0.3', 'hybrid p_k=0.4 q=0.2'), then the other differing fields in brackets.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ValidationError

from prunebench.config.identity import ADDED_FIELDS
from prunebench.config.schema import RegimeConfig
from prunebench.config.sweep_grid import regime_label
from prunebench.errors import PrunebenchError
from prunebench.store.results import DENSE_EVAL_PREFIX, EVAL_OUTCOMES_PREFIX, EVAL_PREFIX
from prunebench.tables import final_steps

RANDOM = "random"
# Config fields that are not variant fields: the regime name and target, the compared axes.
NOT_VARIANT = {
    "regime.name",
    "regime.target",
    "regime.targets",
    "regime.tolerance",
    "prune.structure",
    "prune.criterion",
}
VARIANT_PREFIXES = ("regime.", "finetune.", "prune.")


@dataclass(frozen=True)
class Metric:
    """The headline metric: how to read, compare and print it."""

    name: str  # column suffix: test_<name>
    higher_is_better: bool
    label: str
    scale: float  # 100 for fractions printed as percent
    unit: str
    short: str  # table column header

    def fmt(self, value: float | None, digits: int = 2) -> str:
        if value is None or pd.isna(value):
            return "-"
        return f"{value * self.scale:.{digits}f}"

    def score(self, value: float) -> float:
        """Higher is better, whatever the metric."""
        return value if self.higher_is_better else -value


METRICS = {
    "top1": Metric("top1", True, "top-1 accuracy (%)", 100.0, "%", "top-1 (%)"),
    "top5": Metric("top5", True, "top-5 accuracy (%)", 100.0, "%", "top-5 (%)"),
    "ppl": Metric("ppl", False, "perplexity (lower is better)", 1.0, "", "perplexity"),
}


def pct(ratio: float) -> str:
    """0.95 -> '95 %', 0.985 -> '98.5 %' (never rounded: ratios are what the user asked for)."""
    return f"{100 * ratio:.6g} %"


def metric_for(name: str | None) -> Metric:
    if name and name.startswith(EVAL_PREFIX):
        return evaluation_metric(name)
    return METRICS.get(name or "top1", METRICS["top1"])


def evaluation_metric(column: str) -> Metric:
    """An evaluation of `eval:` (a results column eval.NAME) as the reported metric: a
    perplexity (NAME ending in ppl) lower is better and compared in % as test perplexity is;
    anything else (lm-eval's acc, acc_norm) a fraction, higher is better, in percent."""
    name = column.removeprefix(EVAL_PREFIX)
    if name.endswith("ppl"):
        return Metric(column, False, f"{name} (lower is better)", 1.0, "", name)
    return Metric(column, True, f"{name} (%)", 100.0, "%", f"{name} (%)")


def reported_as(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """`results` with the evaluation `column` (eval.NAME) as every run's reported metric, and
    its per-example outcomes (where stored) in place of the test metric's, so that the
    intervals count the evaluation's own examples; a PrunebenchError naming the evaluations
    stored when it is not one of them."""
    stored = [c for c in results.columns if c.startswith(EVAL_PREFIX)]
    if column not in stored:
        have = ", ".join(stored) or "none: give the runs an eval: section"
        raise PrunebenchError(f"--metric: no evaluation '{column}' in these results ({have})")
    blobs = column.replace(EVAL_PREFIX, EVAL_OUTCOMES_PREFIX, 1)
    outcomes = results[blobs] if blobs in results.columns else None
    return results.assign(metric=column, test_outcomes=outcomes)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become tuples so that they can be compared."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def variant_fields(config_json: str | None) -> dict[str, Any]:
    """The variant fields of a stored config; a field added later (ADDED_FIELDS) at its
    earlier-version value is left out, so older and newer rows of one variant match."""
    config = flatten(json.loads(config_json)) if config_json else {}
    return {
        k: v
        for k, v in config.items()
        if k.startswith(VARIANT_PREFIXES)
        and k not in NOT_VARIANT
        and v is not None
        and not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])
    }


def step_size(regime: str, schedule_json: str | None) -> float:
    """Per-step pruning rate: constant/geometric: the first increment; hybrid: the second."""
    schedule = json.loads(schedule_json) if schedule_json else []
    if regime == "hybrid":
        return schedule[1] - schedule[0] if len(schedule) > 1 else math.nan
    if regime in ("one_shot", "adaptive") or not schedule:  # adaptive: no one step size
        return math.nan
    return schedule[0]


def _short_names(keys: list[str]) -> dict[str, str]:
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def regime_text(config_json: str | None, regime: str) -> str:
    """The regime with its arguments ('geometric q=0.3'), as sweeps name runs; the bare name
    when the stored config no longer validates."""
    try:
        return regime_label(RegimeConfig.model_validate(json.loads(config_json)["regime"]))
    except (TypeError, KeyError, ValueError, ValidationError, PrunebenchError):
        return regime


def variant_labels(
    fields: pd.Series, regimes: pd.Series, bases: pd.Series | None = None
) -> pd.Series:
    """'geometric' when all geometric runs share their settings, else 'geometric (rate=0.2)'.

    With `bases` (the regime with its arguments, per row), labels start with the base and
    list only the differing fields that are not regime arguments: 'geometric q=0.3 (patience=1)'.
    """
    labels = pd.Series(index=fields.index, dtype=object)
    for regime in regimes.unique():
        idx = regimes.index[regimes == regime]
        keys = sorted({k for i in idx for k in fields[i]})
        if bases is not None:
            keys = [k for k in keys if not k.startswith("regime.")]
        varying = [k for k in keys if len({fields[i].get(k) for i in idx}) > 1]
        short = _short_names(varying)
        for i in idx:
            parts = [
                f"{short[k]}={fields[i][k]:g}"
                if isinstance(fields[i].get(k), float)
                else f"{short[k]}={fields[i][k]}"
                for k in varying
                if k in fields[i]
            ]
            base = regime if bases is None else bases[i]
            labels[i] = f"{base} ({', '.join(parts)})" if parts else base
    return labels


def headline(row: pd.Series, prefix: str = "test_") -> float:
    """The row's reported metric (test_ or dense_test_ PREFIX); an evaluation: eval.NAME or
    the dense model's dense_eval.NAME."""
    metric = row["metric"] or "top1"
    if metric.startswith(EVAL_PREFIX):
        value = row.get(metric if prefix == "test_" else f"dense_{metric}")
    else:
        value = row.get(f"{prefix}{metric}")
    return math.nan if value is None or pd.isna(value) else float(value)


def final_runs(results: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run (its final step) with the columns the report works with."""
    df = final_steps(results).copy()
    if df.empty:
        return pd.DataFrame(columns=FINAL_COLUMNS)
    df["metric"] = df["metric"].fillna("top1")
    fields = df["config_json"].map(variant_fields)
    finetune_patience = fields.map(lambda f: f.get("finetune.patience"))
    patience_mode = fields.map(lambda f: f.get("finetune.mode", "patience") == "patience")
    out = pd.DataFrame(
        {
            "run_id": df["run_id"],
            "setup": df["model"].astype(str)
            + " on "
            + df["dataset"].astype(str)
            + ", "
            + df["structure"].astype(str),
            "criterion": df["criterion"],
            "regime": df["regime"],
            "ratio": df["run_target"].astype(float).round(6),
            "seed": df["seed"],
            "metric": df["metric"],
            "value": df.apply(headline, axis=1),
            "top1": df["test_top1"],
            "top5": df["test_top5"],
            "ppl": df["test_ppl"],
            "epochs": df["cumulative_epochs"].astype(float),
            "compression": df["compression_ratio"],
            "speedup": df["speedup"],
            "latency_ms": df["latency_ms"],
            "dense_latency_ms": df["dense_latency_ms"],
            "dense_value": df.apply(headline, axis=1, prefix="dense_test_"),
            "patience": finetune_patience.where(patience_mode),
            "step_size": [
                step_size(r, s) for r, s in zip(df["regime"], df["schedule_json"], strict=True)
            ],
            "fields": fields,
            "base": [
                regime_text(c, r) for c, r in zip(df["config_json"], df["regime"], strict=True)
            ],
            "outcomes": df.get("test_outcomes"),
        }
    )
    out["label"] = ""
    # Labels are minimal per setup and criterion: fields that differ only between criteria
    # (e.g. calibration samples) do not leak into the labels of the others.
    for _, rows in out.groupby(["setup", "criterion"], sort=False).groups.items():
        out.loc[rows, "label"] = variant_labels(
            out.loc[rows, "fields"], out.loc[rows, "regime"], out.loc[rows, "base"]
        )
    out["is_random"] = out["criterion"] == RANDOM
    # eval: of the final steps and of the dense models
    evaluations = [c for c in df.columns if c.startswith((EVAL_PREFIX, DENSE_EVAL_PREFIX))]
    out[evaluations] = df[evaluations]
    return out[FINAL_COLUMNS + evaluations].reset_index(drop=True)


FINAL_COLUMNS = [
    "run_id",
    "setup",
    "criterion",
    "regime",
    "label",
    "ratio",
    "seed",
    "metric",
    "value",
    "top1",
    "top5",
    "ppl",
    "epochs",
    "compression",
    "speedup",
    "latency_ms",
    "dense_latency_ms",
    "dense_value",
    "patience",
    "step_size",
    "fields",
    "is_random",
    "outcomes",  # per-example test outcomes (bytes) of the final step, or None
]


UNFINISHED_COLUMNS = [
    "run_id", "regime", "target", "criterion", "seed", "status", "steps", "n_steps", "error"
]  # fmt: skip


def unfinished_runs(results: pd.DataFrame) -> pd.DataFrame:
    """Runs that did not finish (failed or still running), with how far they got."""
    runs = results[results["status"] != "done"]
    if runs.empty:
        return pd.DataFrame(columns=UNFINISHED_COLUMNS)
    grouped = runs.groupby("run_id", sort=False).agg(
        regime=("regime", "first"),
        target=("run_target", "first"),
        criterion=("criterion", "first"),
        seed=("seed", "first"),
        status=("status", "first"),
        steps=("step", "count"),
        n_steps=("n_steps", "first"),
        error=("error", "first"),
    )
    return grouped.reset_index()[UNFINISHED_COLUMNS]
