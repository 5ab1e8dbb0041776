"""The distillation section: each distilled variant against its plain twin, judged in the
criterion's one Holm family (the same interval as anywhere else it could be printed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prunebench.report import build_document
from prunebench.report.build import contexts
from prunebench.report.verdicts import A_BETTER
from prunebench.store.database import Store
from prunebench.store.results import load_results
from report_db import add_run, scratch_dir

EXAMPLES = 200
DISTILL = ("finetune.distill.alpha=0.5",)


def test_distilled_twin_is_judged_in_the_criterions_family(tmp_path):
    with scratch_dir(tmp_path) as root:
        store = Store(root)
        for seed in range(3):  # values on the 1/200 grid: outcomes match them exactly
            add_run(store, "geometric", 0.9, seed, 0.80, examples=EXAMPLES)
            add_run(store, "geometric", 0.9, seed, 0.90, extra=DISTILL, examples=EXAMPLES)
            add_run(store, "one_shot", 0.9, seed, 0.85, examples=EXAMPLES)
        results = load_results(root, outcomes=True)
        (ctx,) = contexts(results, 0.05, None)
        doc = build_document(results, "db")
    v = ctx.verdicts["magnitude"]
    (distilled,) = [c for c in v.candidates[0.9] if c.regime == "geometric" and c.mean > 0.85]
    (plain,) = [c for c in v.candidates[0.9] if c.regime == "geometric" and c.mean < 0.85]
    assert (distilled.mean, plain.mean) == (pytest.approx(0.90), pytest.approx(0.80))
    comparison = v.comparison(0.9, distilled.label, plain.label)
    assert comparison.outcome == A_BETTER and comparison.multiplicity == 1
    assert comparison.estimate == pytest.approx(0.10)
    # the pair widens the family it joins by exactly one comparison
    alone = replace(v, comparisons={}, decisions={}, claims=[], extra=[]).build()
    assert v.family == alone.family + 1 == len(v.comparisons)
    (table,) = doc.section("distillation").tables()
    (row,) = table.rows
    cells = dict(zip(table.columns, row, strict=True))
    assert cells["distilled variant"] == distilled.label
    assert cells["verdict"] == "distillation better"
    assert cells[f"distilled {ctx.metric.short}"] == ctx.metric.fmt(0.90)
    assert cells[f"plain {ctx.metric.short}"] == ctx.metric.fmt(0.80)
