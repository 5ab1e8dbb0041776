"""Distillation vs plain fine-tuning: each distilled variant against the same variant without
`finetune.distill` (same regime, criterion, ratio and every other setting), paired by seed and
test example and judged like the recommendation (Holm over these comparisons, the practical
margin). Shown only where some run distilled; empty, saying why, when no such pair was run.
"""

from __future__ import annotations

import pandas as pd

from prunebench.report.advice import describe
from prunebench.report.candidates import advantage, from_summary
from prunebench.report.document import Section, Table
from prunebench.report.prepare import pct
from prunebench.report.sections import Context
from prunebench.report.verdicts import A_BETTER, B_BETTER, judge

PREFIX = "finetune.distill."
WORDS = {A_BETTER: "distillation better", B_BETTER: "plain better"}


def _plain_key(fields: dict) -> str:
    return repr(sorted((k, v) for k, v in fields.items() if not k.startswith(PREFIX)))


def distilled(ctx: Context) -> bool:
    """Whether any finished run of the setup distilled."""
    return any(any(k.startswith(PREFIX) for k in f) for f in ctx.finals["fields"])


def pairs(ctx: Context) -> list[tuple[pd.Series, pd.Series]]:
    """(distilled, plain) summary rows that differ only in the distillation settings."""
    finals = ctx.finals.drop_duplicates("label")
    fields = dict(zip(finals["label"], finals["fields"], strict=True))
    summary = ctx.summary[ctx.summary["mean"].notna() & ~ctx.summary["is_random"]]
    out = []
    for (_, _), group in summary.groupby(["ratio", "criterion"], sort=True):
        plain = {
            _plain_key(fields[row["label"]]): row
            for _, row in group.iterrows()
            if not any(k.startswith(PREFIX) for k in fields[row["label"]])
        }
        for _, row in group.iterrows():
            own = fields[row["label"]]
            if any(k.startswith(PREFIX) for k in own) and _plain_key(own) in plain:
                out.append((row, plain[_plain_key(own)]))
    return out


def distillation(ctx: Context) -> Section:
    sec = ctx.section("distillation", "Distillation vs plain fine-tuning")
    found = pairs(ctx)
    if not found:
        sec.unavailable = (
            "no variant was run both with and without finetune.distill (add "
            "finetune.distill: [null, {alpha: 0.5}] to the grid)"
        )
        return sec
    candidates = [(from_summary(d), from_summary(p)) for d, p in found]
    spreads = [advantage(d, p, ctx.metric) for d, p in candidates]
    keys = [(d.ratio, d.label, p.label) for d, p in candidates]
    bound = 1.0 if ctx.metric.higher_is_better else None
    verdicts = judge(spreads, keys, ctx.margin, ctx.alpha, bound)
    rows = [
        [pct(d.ratio), d.criterion, d.label, ctx.metric.fmt(d.mean), ctx.metric.fmt(p.mean),
         f"{d.epochs:g} / {p.epochs:g}", describe(ctx.metric, c), WORDS.get(c.outcome, c.outcome)]
        for (d, p), c in zip(candidates, verdicts, strict=True)
    ]  # fmt: skip
    header = ["ratio", "criterion", "distilled variant", f"distilled {ctx.metric.short}",
              f"plain {ctx.metric.short}", "epochs (distilled / plain)",
              "difference (distilled - plain)", "verdict"]  # fmt: skip
    sec.add(Table("Distillation against the same variant without it", header, rows))
    return sec
