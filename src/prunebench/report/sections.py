"""The report's core sections: regime comparison (fig. 2/3a), tables per ratio, recommendation.

Figures show each regime's main configuration (its most-run variant, see analysis.py); the
per-ratio tables and the recommendation consider every variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

import prunebench.report.figures as figures
from prunebench.report.advice import TEST_NAME, fmt_diff, fmt_p, recommend
from prunebench.report.analysis import best_by_ratio, budget_frontier
from prunebench.report.document import Bullets, FigureBlock, Paragraph, Section, Table
from prunebench.report.prepare import Metric, pct


@dataclass
class Context:
    """Everything about one setup (model, dataset, structure) that the sections need."""

    setup: str
    prefix: str  # section id / figure name prefix, '' when there is one setup
    finals: pd.DataFrame  # finished runs of this setup (all criteria)
    summary: pd.DataFrame  # summary rows of this setup (all criteria)
    metric: Metric
    criterion: str | None  # the main criterion
    main: pd.DataFrame  # summary rows of the main criterion, random excluded
    reps: pd.DataFrame  # per regime and ratio its main configuration (see representatives)
    alpha: float

    def lines(self, regimes: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The representatives as figure lines: `label` is the line's legend label."""
        rows = self.reps if regimes is None else self.reps[self.reps["regime"].isin(regimes)]
        return rows.assign(label=rows["line"])

    def section(self, id_: str, title: str) -> Section:
        suffix = f" — {self.setup}" if self.prefix else ""
        return Section(f"{self.prefix}{id_}", f"{title}{suffix}")

    def name(self, stem: str) -> str:
        return f"{self.prefix}{stem}"


def pm(mean: float, std: float, scale: float = 1.0, digits: int = 2) -> str:
    """'97.12 ± 0.35', or '97.12' with one seed, or '-' when there is no value."""
    if mean is None or pd.isna(mean):
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std * scale:.{digits}f}"


def num(value: float, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}{suffix}"


def comparison(ctx: Context) -> Section:
    """Figure 2/3a: the headline metric vs ratio per regime, dense and random references."""
    sec = ctx.section("comparison", "Regime comparison")
    lines = ctx.lines()
    if lines.empty:
        sec.unavailable = "no finished run with a non-random criterion"
        return sec
    randoms = ctx.summary[ctx.summary["is_random"] & ctx.summary["mean"].notna()]
    baseline = None
    if randoms.empty:
        sec.omitted.append(
            "random-criterion baseline not shown: no random-criterion runs "
            "(add prune.criterion: random to the sweep)"
        )
    else:
        baseline = best_by_ratio(randoms, ctx.metric).groupby("ratio", as_index=False).first()
    dense = ctx.finals["dense_value"].dropna()
    if dense.empty:
        sec.omitted.append("dense reference not shown: the runs hold no dense test metric")
    dense_value = float(dense.mean()) if not dense.empty else None
    seeds = int(lines["n"].max())
    spread = "mean ± std over seeds" if seeds > 1 else "one seed: no spread"
    title = f"Test {ctx.metric.label.split(' (')[0]} vs pruning ratio ({ctx.criterion}, {spread})"
    fig = figures.regime_lines(lines, ctx.metric, title, dense_value, baseline)
    caption = (
        "Each regime in its main configuration (see 'What was run'); "
        f"error bars: sample standard deviation over seeds (up to {seeds} per point)."
    )
    if dense_value is not None:
        caption += f" Dashed black line: the dense model ({ctx.metric.fmt(dense_value)}"
        caption += f"{ctx.metric.unit})."
    if baseline is not None:
        caption += (
            " Grey crosses: the random criterion (best regime per ratio); points far below "
            "the others sit on the bottom edge with their value written beside them."
        )
    sec.add(FigureBlock(ctx.name("regime_comparison"), caption, fig))
    return sec


def ratio_tables(ctx: Context) -> Section:
    """One table per ratio: every variant and criterion, mean ± std over seeds."""
    sec = ctx.section("tables", "Results per pruning ratio")
    if ctx.summary.empty:
        sec.unavailable = "no finished runs"
        return sec
    m = ctx.metric
    metric_cols = ["perplexity"] if m.name == "ppl" else ["top-1 (%)", "top-5 (%)"]
    columns = [
        "regime",
        "criterion",
        "seeds",
        *metric_cols,
        "compression (×)",
        "speed-up (×)",
        "latency pruned / dense (ms)",
        "fine-tuning epochs",
    ]
    for ratio, group in ctx.summary.groupby("ratio", sort=True):
        ordered = pd.concat(
            [
                best_by_ratio(group[~group["is_random"]], m),
                best_by_ratio(group[group["is_random"]], m),
            ]
        )
        rows = []
        for _, row in ordered.iterrows():
            if m.name == "ppl":
                metric_cells = [pm(row["mean"], row["std"])]
            else:
                metric_cells = [
                    pm(row["top1_mean"], row["top1_std"], 100),
                    pm(row["top5_mean"], row["top5_std"], 100),
                ]
            latency = "-"
            if not pd.isna(row["latency_ms"]):
                latency = f"{num(row['latency_ms'])} / {num(row['dense_latency_ms'])}"
            rows.append(
                [
                    row["label"],
                    row["criterion"],
                    str(row["n"]),
                    *metric_cells,
                    num(row["compression"]),
                    num(row["speedup"]),
                    latency,
                    pm(row["epochs_mean"], row["epochs_std"], digits=1),
                ]
            )
        best = {0} if not ordered.empty and not ordered.iloc[0]["is_random"] else set()
        sec.add(Table(f"Pruning ratio {pct(ratio)}", columns, rows, highlight=best))
    sec.add(
        Paragraph(
            "Mean ± sample standard deviation over seeds; 'seeds' counts the finished runs. "
            "Compression = dense parameters / nonzero parameters; speed-up = dense MACs / pruned "
            "MACs (theoretical); latency is measured for structured runs; epochs = total "
            "fine-tuning epochs over all steps. '-': not recorded. Bold: best mean."
        )
    )
    return sec


def recommendation(ctx: Context) -> Section:
    """Which regime to use per ratio, with the test behind it, and per retraining budget."""
    sec = ctx.section("recommendation", "Recommendation")
    candidates = ctx.summary[~ctx.summary["is_random"]]
    recs = recommend(candidates, ctx.metric, ctx.alpha)
    if not recs:
        sec.unavailable = "no finished run with a non-random criterion"
        return sec
    several = candidates["criterion"].nunique() > 1
    columns = [
        "ratio",
        *(["criterion"] if several else []),
        "recommended",
        "runner-up",
        "difference",
        "p-value",
        "verdict",
    ]
    rows = []
    for r in recs:
        c = r.comparison
        diff = "-" if c is None else fmt_diff(ctx.metric, c.diff)
        if c is not None and c.testable:
            unit = " pp" if ctx.metric.unit == "%" else ""
            diff += (
                f" [{c.ci_low * ctx.metric.scale:.2f}, {c.ci_high * ctx.metric.scale:.2f}]{unit}"
            )
        p = fmt_p(c.p) if c is not None and c.testable else "-"
        rows.append(
            [
                pct(r.ratio),
                *([r.criterion] if several else []),
                r.winner,
                r.runner_up or "-",
                diff,
                p,
                r.verdict,
            ]
        )
    sec.add(
        Paragraph(
            f"The recommended variant has the best mean; it is compared with the best variant "
            f"of another regime by {TEST_NAME} (95 % confidence interval of the difference in "
            f"brackets; α = {ctx.alpha:g}, not corrected for the {len(recs)} comparisons)."
        ),
        Table("Recommended regime per ratio", columns, rows),
        Bullets([r.text for r in recs]),
    )
    frontier = budget_frontier(ctx.main, ctx.metric)
    if not frontier.empty:
        rows = [
            [
                pct(f.ratio),
                f"{f.budget:.1f}",
                f.label,
                f"{ctx.metric.fmt(f['mean'])}{ctx.metric.unit} (n = {f.n})",
            ]
            for _, f in frontier.iterrows()
        ]
        sec.add(
            Paragraph(
                "Best choice for a retraining budget: per ratio, each variant that beats every "
                "cheaper one (mean total fine-tuning epochs). With a budget of at least a row's "
                "epochs, that row's variant is the best affordable; below it, use the row above."
            ),
            Table(
                f"Best within a budget ({ctx.criterion} criterion)",
                ["ratio", "epochs needed", "best affordable", f"test {ctx.metric.short}"],
                rows,
            ),
        )
    return sec
