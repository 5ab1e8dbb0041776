"""The report's frame: what was run, the paper's claims, unfinished runs, and the method notes."""

from __future__ import annotations

import pandas as pd

from prunebench.report.advice import basis, describe
from prunebench.report.analysis import main_configurations
from prunebench.report.document import Bullets, Paragraph, Section, Table
from prunebench.report.prepare import pct
from prunebench.report.sections import Context, verdict_words
from prunebench.report.uncertainty import CAVEATS


def _listing(values) -> str:
    return ", ".join(str(v) for v in sorted(set(values), key=str)) or "none"


def overview(ctx: Context) -> Section:
    sec = ctx.section("overview", "What was run")
    f = ctx.finals
    dense = f["dense_value"].dropna()
    items = [
        f"Setup: {ctx.setup}; headline metric: test {ctx.metric.label}.",
        f"Finished runs: {len(f)}; regimes: {_listing(f['regime'])}; "
        f"criteria: {_listing(f['criterion'])} (main: {ctx.criterion or 'none'}).",
        f"Pruning ratios: {', '.join(pct(r) for r in sorted(f['ratio'].unique()))}; "
        f"seeds: {_listing(f['seed'])}.",
    ]
    if not dense.empty:
        items.append(
            f"Dense model (before pruning): test {ctx.metric.short} {ctx.metric.fmt(dense.mean())}."
        )
    variants = sorted(set(f["label"]) - set(f["regime"]))
    if variants:
        items.append(
            f"Variants (config fields that differ within a regime): {', '.join(variants)}."
        )
    configs = main_configurations(ctx.reps)
    if configs:
        items.append(
            "Main configuration of each regime (the figures' lines): "
            + "; ".join(f"{r} = {label}" for r, label in configs.items())
            + "."
        )
    return sec.add(Bullets(items))


def claims(ctx: Context) -> Section:
    sec = ctx.section("claims", "The paper's claims on these results")
    v = ctx.verdicts.get(ctx.criterion)
    if v is None:
        sec.unavailable = "no finished run with a non-random criterion"
        return sec
    sec.add(
        Paragraph(
            f"Main criterion ({ctx.criterion}); each regime is its best variant at the ratio, "
            "as in the recommendation, and the comparisons are the recommendation's own "
            f"({verdict_words(ctx)}). '>=' holds at a ratio when the first side is better or "
            "equivalent and fails when the second is better; 'better' holds only when the "
            "first is better. A claim holds when it holds at every ratio, fails when it fails "
            "at one, and is inconclusive otherwise."
        ),
        Table(
            "Claims",
            ["claim", "verdict", "detail", "basis"],
            [[c.claim, c.status, c.reason, c.basis or "-"] for c in v.claims],
        ),
    )
    for c in v.claims:
        if c.rows.empty:
            continue
        rows = [
            [
                pct(r.ratio),
                r.a,
                ctx.metric.fmt(r.mean_a),
                r.b,
                ctx.metric.fmt(r.mean_b),
                describe(ctx.metric, r.comparison),
                basis(r.comparison),
                r.outcome.replace("A ", "first ").replace("B ", "second "),
                r.holds,
            ]
            for r in c.rows.itertuples()
        ]
        sec.add(
            Table(
                f"{c.claim}: {c.status}",
                [
                    "ratio",
                    "first",
                    ctx.metric.short,
                    "second",
                    ctx.metric.short,
                    "difference (CI)",
                    "basis",
                    "outcome",
                    "holds",
                ],
                rows,
            )
        )
    return sec


def unfinished(unfinished_runs: pd.DataFrame) -> Section:
    sec = Section("unfinished", "Failed and unfinished runs")
    if unfinished_runs.empty:
        return sec.add(Paragraph("Every run in the database finished."))
    rows = [
        [
            str(r.run_id),
            str(r.regime),
            pct(r.target) if not pd.isna(r.target) else "-",
            str(r.criterion),
            str(r.seed),
            str(r.status),
            f"{r.steps} of {r.n_steps}" if not pd.isna(r.n_steps) else str(r.steps),
            str(r.error) if isinstance(r.error, str) else "-",
        ]
        for r in unfinished_runs.itertuples()
    ]
    return sec.add(
        Paragraph("These runs are left out of every figure, table and test above."),
        Table(
            "Runs that did not finish",
            ["run", "regime", "ratio", "criterion", "seed", "status", "steps", "error"],
            rows,
        ),
    )


def method(alpha: float, margins: list[str]) -> Section:
    margin = " / ".join(margins) if margins else "0.1 pp of accuracy / 1 % of perplexity"
    return Section("method", "How to read this report").add(
        Bullets(
            [
                "Pruning ratio: the run's final cumulative target, a fraction of the ORIGINAL "
                "prunable weights (or channels, for structured pruning).",
                "Every number is the run's final step, evaluated on the test split after "
                "fine-tuning; fine-tuning epochs are summed over all steps.",
                "Spread in tables: sample standard deviation over seeds (ddof = 1).",
                "Intervals: every run stores its per-example test outcomes (top-1 correct, or "
                "each sequence's NLL and token count). A mean over S seeds and n test examples "
                "(the same examples for every seed) has two noise sources: training (seeds) and "
                "the finite test set. Both are estimated from the two-way ANOVA of the seeds x "
                "examples matrix: luck between seeds (t with S - 1 degrees of freedom), the "
                "residual noise of each seed (a quantile that holds however luck and residual "
                "split, so 2-3 seeds keep what power they can honestly have), and the test-set "
                "part (t with n - 1 df), added as Banerjee (1960) did: conservative where the "
                "plug-in Welch-Satterthwaite df is not. Where test examples come in groups (the "
                "documents language-model sequences are cut from, or a data group column), "
                "every part is computed over groups (cluster-robust).",
                "Comparisons are paired: regimes run with the same seed share the dense model, "
                "data split and test examples, so the interval is that of the per-seed, "
                "per-example differences; a seed that diverged (NaN) is a failure of its "
                "regime, shown, and the comparison uses the seeds both sides finished.",
                f"Verdicts: 'better' when the interval excludes 0 and the difference exceeds the "
                f"margin ({margin}); 'equivalent' when the whole interval lies within ± the "
                "margin; else 'inconclusive', with the further seeds that would give 80 % power "
                "to call a difference of the minimum effect (--min-effect) better, never a "
                "number computed from the observed difference. Judging again on the same test "
                "set after adding seeds needs `sweep --until-decided` (sequential) or fresh test "
                "data. One seed never decides.",
                "Representatives: a regime with several variants at a ratio is represented by "
                "its best test mean; each such comparison counts as every variant pair it was "
                "picked from in the Holm family, so the choice does not peek.",
                f"Several comparisons at once: Holm's step-down correction over every comparison "
                f"a criterion's recommendations, budget choices and claims use, α = {alpha:g}: "
                "sorted by p-value, the j-th of m gets a 1 - α/(m - j + 1) interval up to the "
                "first that includes 0; that one and the rest keep its level.",
                f"One seed with outcomes: {CAVEATS['test examples only (one seed)']}. "
                f"Databases from before outcomes were stored: {CAVEATS['seeds only (no per-example outcomes)']}; "
                f"with one seed as well: {CAVEATS['no interval (one seed, no per-example outcomes)']}.",
                "Variants: runs of a regime whose settings differ are kept apart and labelled by "
                "the regime's arguments and the differing fields (e.g. 'geometric q=0.3 "
                "(patience=1)').",
                "Everything here is read from the results database; rerun `prunebench report` "
                "after adding runs, or ask `prunebench advise RESULTS` in the terminal.",
            ]
        )
    )
