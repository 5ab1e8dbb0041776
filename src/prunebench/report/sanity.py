"""Sanity gates (issue 23): a dense model that is not clearly above chance, and pruned runs
that collapsed to it, said loudly, and never recommended.

"Clearly above chance": accuracy at least 2 pp and a tenth of the way from chance to 100 %
above the majority class; perplexity at most 90 % of the uniform vocabulary's. A run is judged
by its last step's test metric; `chance_metric` is stored with every run (engine/chance.py;
missing for runs stored before it: nothing is judged then). A run whose last stored step left
a prunable layer with no weight at all (an all-zero keep mask of unstructured pruning;
structured pruning refuses to remove every channel) is flagged too, read from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prunebench.store.results import empty_layers

MIN_GAIN = 0.02  # accuracy: at least this much above chance ...
MIN_SHARE = 0.1  # ... and this share of the way from chance to 1
MAX_PPL_SHARE = 0.9  # perplexity: at most this share of chance


def clearly_above_chance(value: float, chance: float, higher_is_better: bool = True) -> bool:
    if higher_is_better:
        return value >= chance + max(MIN_GAIN, MIN_SHARE * (1.0 - chance))
    return value <= MAX_PPL_SHARE * chance


def _headline(row: pd.Series, prefix: str) -> float | None:
    value = row.get(f"{prefix}{row.get('metric')}")
    return None if value is None or pd.isna(value) else float(value)


def _fmt(metric: str, value: float) -> str:
    return f"{metric} {value:.1f}" if metric == "ppl" else f"{metric} {100 * value:.2f}%"


def _chance_words(metric: str) -> str:
    return "a uniform vocabulary" if metric == "ppl" else "always the majority class"


def collapsed_runs(df: pd.DataFrame) -> dict[str, str]:
    """run id -> why its final model is at chance, for done runs whose chance is known."""
    out: dict[str, str] = {}
    if "chance_metric" not in df or df.empty:
        return out
    steps = df[df["step"].notna() & df["chance_metric"].notna()]
    for run_id, rows in steps.groupby("run_id", sort=False):
        last = rows.loc[rows["step"].idxmax()]
        value, chance, metric = (
            _headline(last, "test_"),
            float(last["chance_metric"]),
            last["metric"],
        )
        if value is not None and not clearly_above_chance(value, chance, metric != "ppl"):
            out[str(run_id)] = (
                f"{_fmt(metric, value)} at {100 * last['target']:.0f} % vs "
                f"{_fmt(metric, chance)} at chance ({_chance_words(metric)})"
            )
    return out


def sanity_warnings(df: pd.DataFrame, directory: Path | str | None = None) -> list[str]:
    """One line per dense model not clearly above chance, then one per collapsed run, then
    (given the results `directory`) one per run with a layer reduced to nothing."""
    lines = [] if "chance_metric" not in df or df.empty else _chance_warnings(df)
    if directory is not None:
        runs = df.drop_duplicates("run_id")
        for run_id, names in empty_layers(directory, df).items():
            label = runs.loc[runs["run_id"] == run_id].iloc[0]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            lines.append(
                f"run {run_id} ({label['regime']}, seed {label['seed']}) reduced "
                f"{len(names)} layer(s) to nothing (every weight pruned: {shown}); its "
                "predictions cannot use them: prune less, use prune.scope=layerwise, or leave them "
                "out with prune.exclude"
            )
    return lines


def _chance_warnings(df: pd.DataFrame) -> list[str]:
    lines = []
    runs = df.drop_duplicates("run_id")
    for _, row in runs[runs["chance_metric"].notna()].drop_duplicates("base_id").iterrows():
        value, chance, metric = (
            _headline(row, "dense_test_"),
            float(row["chance_metric"]),
            row["metric"],
        )
        if value is not None and not clearly_above_chance(value, chance, metric != "ppl"):
            lines.append(
                f"the dense model {row['base_id']} ({row['model']} on {row['dataset']}) is not "
                f"clearly above chance: {_fmt(metric, value)} vs {_fmt(metric, chance)} "
                f"({_chance_words(metric)}); every comparison built on it is meaningless: "
                "change its recipe (pretrain epochs, learning rate, model.weights)"
            )
    for run_id, why in collapsed_runs(df).items():
        label = runs.loc[runs["run_id"] == run_id].iloc[0]
        lines.append(
            f"run {run_id} ({label['regime']}, seed {label['seed']}) collapsed to chance: {why}; "
            "prune less, or retrain longer (finetune.max_epochs, patience)"
        )
    return lines


def chance_at(df: pd.DataFrame, ratio: float, tolerance: float = 1e-6) -> float | None:
    """The chance level of the runs at pruning ratio `ratio` (None: unknown)."""
    if "chance_metric" not in df:
        return None
    rows = df[(df["run_target"] - ratio).abs() < tolerance]["chance_metric"].dropna()
    return float(rows.max()) if not rows.empty else None


def collapsed_decision_text(ratio: float, metric: str, best: float, chance: float) -> str:
    return (
        f"At {100 * ratio:.0f} %: no regime is recommended: even the best "
        f"({_fmt(metric, best)}) is not clearly above chance ({_fmt(metric, chance)}, "
        f"{_chance_words(metric)}); prune less, or change the recipe (fine-tuning epochs, "
        "learning rate)."
    )
