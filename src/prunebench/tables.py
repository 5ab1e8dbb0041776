"""Text tables from the results DataFrame: the per-step listing and the regime comparison."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from rich.markup import escape
from rich.table import Table

STEP_VIEW = [  # (title, column); everything else is in --format csv / json / parquet
    ("run", "label"),
    ("id", "short_id"),  # a prefix that `--run` accepts
    ("seed", "seed"),
    ("structure", "structure"),
    ("criterion", "criterion"),
    ("target", "run_target"),  # the run's final target
    ("status", "status"),  # failed runs show, with a row even when no step finished
    ("step", "step"),
    ("step\ntarget", "target"),  # the step's cumulative target
    ("achieved", "achieved_sparsity"),
    ("after\nprune", "pruned_test_metric"),
    ("test", "test_metric"),
    ("top-5", "test_top5"),
    ("epochs", "epochs"),
    ("cum.\nepochs", "cumulative_epochs"),
]
# The listing's order: what was pruned how, then the run, then its steps.
STEP_ORDER = ["structure", "criterion", "label", "run_target", "seed", "run_id", "step"]
SHORT_ID = 8


def short_ids(run_ids: list[str], length: int = SHORT_ID) -> dict[str, str]:
    """Each id's shortest prefix of at least `length` characters that no other id shares."""
    unique = sorted(set(run_ids))
    short = {}
    for i, rid in enumerate(unique):
        neighbours = unique[max(i - 1, 0) : i] + unique[i + 1 : i + 2]
        shared = max((_common(rid, other) for other in neighbours), default=0)
        short[rid] = rid[: max(length, shared + 1)]
    return short


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """Adds 'label' (run name or regime) and the task's headline metric as plain columns."""
    df = df.copy()
    df["label"] = df["name"].fillna(df["regime"])
    metric = df["metric"].fillna("top1")
    df["test_metric"] = [
        row[f"test_{m}"] for (_, row), m in zip(df.iterrows(), metric, strict=True)
    ]
    df["pruned_test_metric"] = [
        row[f"pruned_test_{m}"] for (_, row), m in zip(df.iterrows(), metric, strict=True)
    ]
    return df


def final_steps(df: pd.DataFrame) -> pd.DataFrame:
    """The last step of every finished run: its final target, metric and total epochs."""
    df = df[df["status"] == "done"]
    return df[df["step"] == df["n_steps"]]


def _fmt(value, digits: int = 4) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_target(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:g}"


def steps_table(df: pd.DataFrame, among: Iterable[str] | None = None) -> Table:
    """One line per step (and per run without one), sorted by structure, criterion, run
    label, final target, seed and step; run ids shortened to prefixes that `--run` takes
    (unique among the ids in `among`, by default those of `df`)."""
    df = with_labels(df)
    ids = list(df["run_id"]) if among is None else list(among)
    df["short_id"] = df["run_id"].map(short_ids(ids))
    df = df.sort_values(STEP_ORDER, na_position="last", kind="stable")
    view = list(STEP_VIEW)
    if "rule" in df and df["rule"].notna().any():  # adaptive runs: the size chosen and why
        df["rule_note"] = [rule_note(row) for _, row in df.iterrows()]
        view.append(("rule: share\n(recovery)", "rule_note"))
    # evaluations of stored steps (eval: in the config; store/results.EVAL_PREFIX)
    view += [(c.removeprefix("eval."), c) for c in df.columns if c.startswith("eval.")]
    table = Table(title="pruning steps")
    for title, _ in view:
        left = title in ("run", "id", "structure", "criterion", "status")
        table.add_column(title, justify="left" if left else "right", no_wrap=title != "run")
    for _, row in df.iterrows():
        cells = {col: _fmt(row[col]) for _, col in view}
        cells["run_target"] = _fmt_target(row["run_target"])
        table.add_row(*(escape(cells[col]) for _, col in view))
    return table


def rule_note(row) -> str | None:
    """An adaptive step's rule, the share of the remaining weights it chose and the recovery
    of the step before that made it choose so: 'grow: 0.3 (1.02)'."""
    if row.get("rule") is None or pd.isna(row.get("rule")):
        return None
    recovery = row.get("rule_recovery")
    measured = "" if recovery is None or pd.isna(recovery) else f" ({recovery:.2f})"
    return f"{row['rule']}: {row['rule_rate']:.3g}{measured}{_applied(row)}"


def _applied(row) -> str:
    """', to the target: 0.3' where the step went to the run's target instead of the share
    the rule chose (the rule's last step): the share it did prune, counted from the targets."""
    target, increment = row.get("target"), row.get("increment")
    if any(v is None or pd.isna(v) for v in (target, increment, row.get("rule_rate"))):
        return ""
    left = 1.0 - (float(target) - float(increment))
    applied = float(increment) / left if left > 0 else float("nan")
    if abs(applied - float(row["rule_rate"])) <= 1e-6:
        return ""
    return f", to the target: {applied:.3g}"


def comparison_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: final target; columns: (label, 'test'|'epochs'); means over seeds."""
    final = with_labels(final_steps(df))
    if final.empty:
        return pd.DataFrame()
    grouped = final.groupby(["run_target", "label"]).agg(
        test=("test_metric", "mean"),
        epochs=("cumulative_epochs", "mean"),
        seeds=("seed", "nunique"),
    )
    return grouped.unstack("label")


def comparison_table(df: pd.DataFrame) -> Table:
    """Target x regime: headline test metric (mean over seeds) and total retraining epochs."""
    frame = comparison_frame(df)
    metric = (
        str(df["metric"].dropna().iloc[0]) if len(df) and df["metric"].notna().any() else "top1"
    )
    table = Table(title=f"final test {metric} / total fine-tuning epochs (mean over seeds)")
    table.add_column("target", justify="right")
    if frame.empty:
        return table
    order = list(dict.fromkeys(with_labels(df)["label"]))  # the order runs were started in
    present = set(frame.columns.get_level_values("label"))
    labels = [label for label in order if label in present]
    for label in labels:
        table.add_column(label, justify="right")
    for target, row in frame.iterrows():
        best = row["test"].max() if metric != "ppl" else row["test"].min()
        cells = []
        for label in labels:
            value, epochs = row[("test", label)], row[("epochs", label)]
            if pd.isna(value):
                cells.append("-")
                continue
            text = f"{value * 100:.2f}%" if metric != "ppl" else f"{value:.2f}"
            text += f" / {epochs:.0f}"
            cells.append(f"[bold]{text}[/]" if value == best else text)
        table.add_row(f"{target:g}", *cells)
    return table


def failures_table(runs: list[dict]) -> Table:
    """Runs that did not finish: failed (with the error) or interrupted ('running')."""
    table = Table(title=f"{len(runs)} runs not done")
    for title in ("run", "status", "target", "seed", "error"):
        table.add_column(title, justify="right" if title in ("target", "seed") else "left")
    for run in runs:
        label = run.get("name") or run.get("regime") or run["run_id"]
        target = run.get("target")
        table.add_row(
            escape(f"{label} ({run['run_id']})"),
            str(run.get("status")),
            "-" if target is None else f"{target:g}",
            str(run.get("seed")),
            escape(run.get("error") or ""),
        )
    return table
