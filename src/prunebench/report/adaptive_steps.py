"""The adaptive regime in the report: for each finished adaptive run, the steps its rule chose
and why (the recovery measured on the validation split by the step before)."""

from __future__ import annotations

import pandas as pd

from prunebench.report.document import Section, Table
from prunebench.report.sections import Context


def step_words(row: pd.Series) -> str:
    """'0.704 hold (0.88)': the step's cumulative target, the rule that chose its size, and the
    previous step's recovery that made it fire."""
    recovery = row.get("rule_recovery")
    measured = "" if recovery is None or pd.isna(recovery) else f" ({recovery:.2f})"
    return f"{row['target']:.4g} {row['rule']}{measured}"


def adaptive_steps(ctx: Context, results: pd.DataFrame) -> Section | None:
    """None when the setup has no finished adaptive run (the section is then left out)."""
    runs = ctx.finals[ctx.finals["regime"] == "adaptive"]
    if runs.empty:
        return None
    sec = ctx.section("adaptive", "Adaptive runs: the steps their rule chose")
    steps = results[results["run_id"].isin(runs["run_id"])].sort_values(["run_id", "step"])
    rows = []
    for run in runs.sort_values(["ratio", "seed"]).itertuples():
        mine = steps[steps["run_id"] == run.run_id]
        chain = " → ".join(step_words(row) for _, row in mine.iterrows())
        rows.append([f"{run.ratio:g}", str(run.seed), str(len(mine)), f"{run.epochs:.0f}", chain])
    note = (
        "Each step: its cumulative target, the rule that chose its size (first cut, grow, hold, "
        "shrink, retry, no drop) and in brackets the recovery of the step before it (the share "
        "of the drop after pruning that fine-tuning regained on the validation split). The rule "
        "and its parameters: docs/concepts.md."
    )
    columns = ["target", "seed", "steps", "epochs", "steps chosen"]
    return sec.add(Table("Steps of each adaptive run", columns, rows, note=note))
