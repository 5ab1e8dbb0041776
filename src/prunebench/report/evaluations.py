"""The evaluations of `eval:` in the report: each variant's final-step perplexity over the text
file and lm-eval accuracies, mean ± standard deviation over seeds, below the dense models'."""

from __future__ import annotations

import pandas as pd

from prunebench.report.document import Section, Table
from prunebench.report.prepare import evaluation_metric
from prunebench.report.sections import Context, pm
from prunebench.store.results import EVAL_PREFIX


def evaluation_columns(finals: pd.DataFrame) -> list[str]:
    return [c for c in finals.columns if c.startswith(EVAL_PREFIX) and finals[c].notna().any()]


def evaluations(ctx: Context) -> Section | None:
    """None when no finished run of the setup has an evaluation (the section is left out)."""
    columns = evaluation_columns(ctx.finals)
    if not columns:
        return None
    sec = ctx.section("evaluations", "Standard language-model evaluations (final steps)")
    metrics = [evaluation_metric(c) for c in columns]
    rows = []
    finals = ctx.finals.sort_values(["criterion", "label", "ratio"])
    for (criterion, label, ratio), group in finals.groupby(
        ["criterion", "label", "ratio"], sort=False
    ):
        cells = [
            pm(group[column].mean(), group[column].std(), metric.scale)
            for column, metric in zip(columns, metrics, strict=True)
        ]
        seeds = int(group[columns].notna().any(axis=1).sum())
        rows.append([criterion, label, f"{ratio:g}", str(seeds), *cells])
    dense = [f"dense_{c}" for c in columns]
    if all(c in ctx.finals for c in dense):  # one row per dense model (runs share theirs)
        models = ctx.finals[dense].dropna(how="all").drop_duplicates()
        if not models.empty:
            cells = [
                pm(models[c].mean(), models[c].std(), m.scale)
                for c, m in zip(dense, metrics, strict=True)
            ]
            rows.insert(0, ["-", "dense", "0", str(len(models)), *cells])
    note = (
        "Mean ± standard deviation over seeds of the final step's evaluations (eval: in the "
        "config; docs/lm-evaluation.md): strided perplexity over the local text file, lm-eval "
        "accuracies in percent; 'dense': the dense models the runs start from ('seeds' counts "
        "them). `prunebench report --metric eval.NAME` makes one of them the "
        "reported metric of the decisions above."
    )
    header = ["criterion", "variant", "ratio", "seeds", *(m.short for m in metrics)]
    return sec.add(Table("Evaluations of the final steps", header, rows, note=note))
