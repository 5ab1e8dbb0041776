"""The report's frame: what was run, the paper's claims, unfinished runs, and the method notes."""

from __future__ import annotations

import pandas as pd

from prunebench.report.advice import fmt_diff, fmt_p
from prunebench.report.analysis import main_configurations
from prunebench.report.claims import check_claims
from prunebench.report.document import Bullets, Paragraph, Section, Table
from prunebench.report.prepare import pct
from prunebench.report.sections import Context


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
            "Main configuration of each regime (used by the figures and the claims): "
            + "; ".join(f"{r} = {label}" for r, label in configs.items())
            + "."
        )
    return sec.add(Bullets(items))


def claims(ctx: Context) -> Section:
    sec = ctx.section("claims", "The paper's claims on these results")
    checks = check_claims(ctx.reps, ctx.metric, ctx.alpha)
    sec.add(
        Paragraph(
            "Each regime in its main configuration, main criterion only. '>=' holds at a ratio "
            "unless the other side is better; 'better' needs the claimed side to be better. "
            "With two or more seeds per side 'better' means significantly better "
            f"(Welch's t-test, α = {ctx.alpha:g}); with one seed it means a better mean, "
            "which is not a statistical claim."
        ),
        Table(
            "Claims",
            ["claim", "verdict", "detail", "basis"],
            [[c.claim, c.status, c.reason, c.basis or "-"] for c in checks],
        ),
    )
    for c in checks:
        if c.rows.empty:
            continue
        rows = [
            [
                pct(r.ratio),
                r.a,
                f"{ctx.metric.fmt(r.mean_a)} (n = {r.n_a})",
                r.b,
                f"{ctx.metric.fmt(r.mean_b)} (n = {r.n_b})",
                fmt_diff(ctx.metric, r.diff),
                fmt_p(r.p) if not pd.isna(r.p) else "-",
                r.outcome.replace("A ", "first ").replace("B ", "second "),
                "yes" if r.holds else "no",
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
                    "difference",
                    "p-value",
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


def method(alpha: float) -> Section:
    return Section("method", "How to read this report").add(
        Bullets(
            [
                "Pruning ratio: the run's final cumulative target, a fraction of the ORIGINAL "
                "prunable weights (or channels, for structured pruning).",
                "Every number is the run's final step, evaluated on the test split after "
                "fine-tuning; fine-tuning epochs are summed over all steps.",
                "Spread: sample standard deviation over seeds (ddof = 1); no spread with one seed.",
                f"Significance: Welch's two-sided t-test over seeds (independent samples, unequal "
                f"variances), α = {alpha:g}; 95 % confidence intervals from the same t "
                "distribution. Seeds do not pair runs of different regimes, so no paired test.",
                "Variants: runs of a regime whose regime, fine-tuning or pruning settings differ "
                "are kept apart and labelled by the differing fields (e.g. 'geometric (rate=0.2)').",
                "Everything here is read from the results database; rerun `prunebench report` "
                "after adding runs.",
            ]
        )
    )
