"""Distillation vs plain fine-tuning: each distilled variant against the same variant without
`finetune.distill` (same regime, criterion, ratio and every other setting), paired by seed and
test example. The pairs are found here before the decisions are made and judged in the
criterion's one Holm family (decisions.py: `extra`), with the same margin and minimum effect as
every other comparison. Shown only where some run distilled; empty, saying why, when no such
pair was run.
"""

from __future__ import annotations

import pandas as pd

from prunebench.report.advice import describe
from prunebench.report.document import Section, Table
from prunebench.report.prepare import pct
from prunebench.report.sections import Context
from prunebench.report.verdicts import A_BETTER, B_BETTER

PREFIX = "finetune.distill."
WORDS = {A_BETTER: "distillation better", B_BETTER: "plain better"}


def _distills(fields: dict) -> bool:
    return any(k.startswith(PREFIX) for k in fields)


def _plain_key(fields: dict) -> str:
    return repr(sorted((k, v) for k, v in fields.items() if not k.startswith(PREFIX)))


def distilled(ctx: Context) -> bool:
    """Whether any finished run of the setup distilled."""
    return any(_distills(f) for f in ctx.finals["fields"])


def pairs(finals: pd.DataFrame, summary: pd.DataFrame) -> dict[str, list[tuple[float, str, str]]]:
    """criterion -> (ratio, distilled label, plain label) for the summary rows that differ
    only in the distillation settings (the `extra` pairs of decisions.decide)."""
    finals = finals.drop_duplicates("label")
    fields = dict(zip(finals["label"], finals["fields"], strict=True))
    summary = summary[summary["mean"].notna() & ~summary["is_random"]]
    out: dict[str, list[tuple[float, str, str]]] = {}
    for (ratio, criterion), group in summary.groupby(["ratio", "criterion"], sort=True):
        labels = list(group["label"])
        plain = {_plain_key(fields[lb]): lb for lb in labels if not _distills(fields[lb])}
        for label in labels:
            twin = plain.get(_plain_key(fields[label]))
            if _distills(fields[label]) and twin is not None:
                out.setdefault(str(criterion), []).append((float(ratio), label, twin))
    return out


def distillation(ctx: Context) -> Section:
    sec = ctx.section("distillation", "Distillation vs plain fine-tuning")
    found = sorted(
        ((c, pair) for c, listed in pairs(ctx.finals, ctx.summary).items() for pair in listed),
        key=lambda item: (item[1][0], item[0]),
    )
    if not found:
        sec.unavailable = (
            "no variant was run both with and without finetune.distill (add "
            "finetune.distill: [null, {alpha: 0.5}] to the grid)"
        )
        return sec
    rows = []
    for criterion, (ratio, a, b) in found:
        v = ctx.verdicts[criterion]
        by_label = {c.label: c for c in v.candidates[ratio]}
        d, p, c = by_label[a], by_label[b], v.comparison(ratio, a, b)
        rows.append(
            [pct(ratio), criterion, a, ctx.metric.fmt(d.mean), ctx.metric.fmt(p.mean),
             f"{d.epochs:g} / {p.epochs:g}", describe(ctx.metric, c),
             WORDS.get(c.outcome, c.outcome)]
        )  # fmt: skip
    header = ["ratio", "criterion", "distilled variant", f"distilled {ctx.metric.short}",
              f"plain {ctx.metric.short}", "epochs (distilled / plain)",
              "difference (distilled - plain)", "verdict"]  # fmt: skip
    sec.add(Table("Distillation against the same variant without it", header, rows))
    return sec
