"""Aggregation over seeds: one summary row per (setup, criterion, variant, ratio).

Means and sample standard deviations (ddof=1) of every number the report prints, the raw
per-seed values and per-example outcomes (so that every comparison uses the very same
samples), and the confidence interval of the headline metric over seeds and test examples.
"""

from __future__ import annotations

import pandas as pd

from prunebench.report.candidates import decode, from_summary, point_interval
from prunebench.report.prepare import Metric, metric_for, pct, variant_labels

KEYS = ["setup", "criterion", "label", "ratio"]
MAIN_CRITERION = "magnitude"  # the paper's default, also the baseline of Blalock et al.


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if values.count() > 1 else float("nan")


def summarize(finals: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Mean, spread, per-seed values and the (1 - alpha) interval of every (setup, criterion,
    variant, ratio)."""
    if finals.empty:
        return pd.DataFrame(columns=[*KEYS, "regime", "n", "mean", "std", "values"])
    rows = []
    for key, group in finals.groupby(KEYS, sort=True):
        valid = group[group["value"].notna()]
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "regime": group["regime"].iloc[0],
                "is_random": bool(group["is_random"].iloc[0]),
                "n": int(valid["value"].count()),
                "mean": valid["value"].mean(),
                "std": _std(valid["value"]),
                "values": tuple(float(v) for v in valid["value"]),
                "seeds": tuple(int(s) for s in valid["seed"]),
                "failed": tuple(int(s) for s in group.loc[group["value"].isna(), "seed"]),
                "outcomes": decode(zip(valid["seed"], valid["outcomes"], strict=True)),
                "top1_mean": group["top1"].mean(),
                "top1_std": _std(group["top1"]),
                "top5_mean": group["top5"].mean(),
                "top5_std": _std(group["top5"]),
                "compression": group["compression"].mean(),
                "speedup": group["speedup"].mean(),
                "latency_ms": group["latency_ms"].mean(),
                "dense_latency_ms": group["dense_latency_ms"].mean(),
                "epochs_mean": group["epochs"].mean(),
                "epochs_std": _std(group["epochs"]),
                "dense_value": group["dense_value"].mean(),
                "patience": group["patience"].iloc[0],
                "step_size": group["step_size"].mean(),
            }
        )
        metric = metric_for(group["metric"].iloc[0])
        interval = point_interval(from_summary(pd.Series(rows[-1])), metric, alpha)
        rows[-1].update(zip(("ci_low", "ci_high", "ci_method"), interval, strict=True))
    return pd.DataFrame(rows)


def main_criterion(finals: pd.DataFrame) -> str | None:
    """magnitude when present, else the most frequent non-random criterion."""
    criteria = finals.loc[~finals["is_random"], "criterion"]
    if criteria.empty:
        return None
    if MAIN_CRITERION in set(criteria):
        return MAIN_CRITERION
    counts = criteria.value_counts()
    return str(sorted(counts.index[counts == counts.max()])[0])


def representatives(main: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """One summary row per (regime, ratio): the regime's main configuration there.

    The main configuration is the regime's most-run variant. Where it was not run (e.g. a
    hybrid grid whose first step scales with the target), the regime's variant with the most
    seeds at that ratio stands in, best mean first — as the paper plots the best configuration.
    Column `line` names the line: the variant label, or the regime when variants are mixed.
    """
    if main.empty:
        return main.assign(line=pd.Series(dtype=object))
    parts = []
    for _, group in main.groupby("regime", sort=True):
        points = group.groupby("label")["n"].sum()
        top = sorted(points.index[points == points.max()], key=lambda s: (len(s), s))[0]
        chosen = []
        for _, here in group.groupby("ratio", sort=True):
            if (here["label"] == top).any():
                chosen.append(here[here["label"] == top].iloc[0])
                continue
            ordered = best_by_ratio(here, metric)
            chosen.append(ordered.loc[ordered["n"].idxmax()])
        rows = pd.DataFrame(chosen).infer_objects()
        mixed = rows["label"].nunique() > 1
        parts.append(rows.assign(line=f"{rows['regime'].iloc[0]} (best variant per ratio)"
                                 if mixed else rows["label"]))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def main_configurations(reps: pd.DataFrame) -> dict[str, str]:
    """regime -> its representative label, or 'a at 50 %, b at 90 %' when they differ."""
    out = {}
    for regime, rows in reps.groupby("regime", sort=True):
        labels = list(dict.fromkeys(rows["label"]))
        out[str(regime)] = (
            labels[0]
            if len(labels) == 1
            else ", ".join(f"{r['label']} at {pct(r['ratio'])}" for _, r in rows.iterrows())
        )
    return out


def best_by_ratio(summary: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The summary sorted best-first within each ratio; equal means: fewer epochs first."""
    ordered = summary.assign(_score=summary["mean"].map(metric.score))
    ordered = ordered.sort_values(
        ["ratio", "_score", "epochs_mean", "label"],
        ascending=[True, False, True, True],
        na_position="last",
    )
    return ordered.drop(columns="_score")


ABLATED_FIELDS = {
    "patience": {"finetune.patience"},
    "step_size": {"regime.rate", "regime.step", "regime.steps"},
}


def ablation_rows(finals: pd.DataFrame, param: str, alpha: float = 0.05) -> pd.DataFrame:
    """Mean/std of the metric per value of `param`, for lines where only `param` varies.

    A line is a regime with all other variant fields fixed; lines with fewer than two values
    of `param` at a ratio are dropped (nothing to ablate there).
    """
    columns = ["ratio", "line", "regime", "x", "mean", "std", "n", "ci_low", "ci_high"]
    finals = finals[finals[param].notna() & finals["value"].notna()]
    if finals.empty:
        return pd.DataFrame(columns=columns)
    drop = ABLATED_FIELDS[param]
    rest = finals["fields"].map(lambda f: {k: v for k, v in f.items() if k not in drop})
    finals = finals.assign(
        rest=rest.map(lambda f: repr(sorted(f.items()))),
        line=variant_labels(rest, finals["regime"]),
    )
    rows = []
    for (ratio, _, line), group in finals.groupby(["ratio", "rest", "line"], sort=True):
        if group[param].nunique() < 2:
            continue
        for x, points in group.groupby(param, sort=True):
            point = summarize(points, alpha).iloc[0]
            rows.append(
                {"ratio": ratio, "line": line, "regime": point["regime"], "x": float(x),
                 **{k: point[k] for k in ("mean", "std", "n", "ci_low", "ci_high")}}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
