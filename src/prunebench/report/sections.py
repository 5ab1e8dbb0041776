"""The report's core sections: regime comparison (fig. 2/3a), tables per ratio, recommendation.

Figures show each regime's main configuration (its most-run variant, see analysis.py) and ring
the recommended point of each decision; the per-ratio tables and the recommendation consider
every variant. Every verdict printed here is a `decisions.Decision`, made once per setup.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy import stats

from prunebench.report.advice import describe, fmt_margin, seeds_text
from prunebench.report.analysis import best_by_ratio
from prunebench.report.decisions import Decision, Verdicts
from prunebench.report.document import Bullets, FigureBlock, Paragraph, Section, Table
from prunebench.report.figures import regime_lines
from prunebench.report.prepare import Metric, pct
from prunebench.report.uncertainty import CROSSED, TEST_ONLY
from prunebench.report.verdicts import UNDECIDED


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
    margin: float  # practical margin, in advantage units (verdicts.py)
    verdicts: dict[str, Verdicts]  # criterion -> every comparison and decision

    def lines(self, regimes: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The representatives as figure lines: `label` is the line's legend label."""
        rows = self.reps if regimes is None else self.reps[self.reps["regime"].isin(regimes)]
        return rows.assign(label=rows["line"])

    def section(self, id_: str, title: str) -> Section:
        suffix = f" — {self.setup}" if self.prefix else ""
        return Section(f"{self.prefix}{id_}", f"{title}{suffix}")

    def name(self, stem: str) -> str:
        return f"{self.prefix}{stem}"

    def decisions(self, criterion: str | None = None) -> list[Decision]:
        """The no-budget decision at every ratio of a criterion (default: the main one)."""
        v = self.verdicts.get(criterion or self.criterion)
        return [v.decision(ratio) for ratio in sorted(v.candidates)] if v else []

    def highlights(self) -> pd.DataFrame:
        """The recommended point of each main-criterion decision, for the figures."""
        rows = [
            {"ratio": d.ratio, "label": d.recommended.label, "value": d.recommended.mean,
             "status": d.status}
            for d in self.decisions()
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=["ratio", "label", "value", "status"])


def pm(mean: float, std: float, scale: float = 1.0, digits: int = 2) -> str:
    """'97.12 ± 0.35', or '97.12' with one seed, or '-' when there is no value."""
    if mean is None or pd.isna(mean):
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std * scale:.{digits}f}"


def num(value: float, digits: int = 2, suffix: str = "") -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}{suffix}"


def ci_text(row: pd.Series, metric: Metric) -> str:
    """'[98.90, 99.70]' of the headline metric, '-' where there is no interval."""
    if pd.isna(row.get("ci_low")):
        return "-"
    return f"[{metric.fmt(row['ci_low'])}, {metric.fmt(row['ci_high'])}]"


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
    title = f"Test {ctx.metric.label.split(' (')[0]} vs pruning ratio ({ctx.criterion})"
    highlights = ctx.highlights()
    fig = regime_lines(lines, ctx.metric, title, dense_value, baseline, highlights)
    caption = (
        "Each regime in its main configuration (see 'What was run'), mean over seeds (up to "
        f"{seeds} per point); error bars: {interval_words(ctx)}. Rings: the recommended "
        "variant at each ratio (see Recommendation); a heavy ring where it is better than "
        "every other regime, a thin one where the data cannot decide. Overlapping bars do not "
        "mean 'no difference': the recommendation compares regimes paired by seed and example."
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
    ci_col = f"{100 * (1 - ctx.alpha):g} % CI"
    columns = [
        "regime",
        "criterion",
        "seeds",
        *metric_cols,
        ci_col,
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
                    ci_text(row, m),
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
            "Mean ± sample standard deviation over seeds; 'seeds' counts the finished runs; "
            f"{ci_col}: {interval_words(ctx)}. "
            "Compression = dense parameters / nonzero parameters; speed-up = dense MACs / pruned "
            "MACs (theoretical); latency is measured for structured runs; epochs = total "
            "fine-tuning epochs over all steps. '-': not recorded. Bold: best mean."
        )
    )
    return sec


def decision_row(d: Decision, metric: Metric) -> list[str]:
    """ratio, recommended, epochs, versus, difference, verdict, cheaper equivalent, seeds."""
    c = d.deciding
    rec = d.recommended
    return [
        pct(d.ratio),
        rec.label if rec else "-",
        f"{rec.epochs:.0f}" if rec else "-",
        c.b if c else "-",
        describe(metric, c) if c else "-",
        d.status + (" (one seed)" if c is not None and c.method == TEST_ONLY else ""),
        d.alternative.label if d.alternative else "-",
        seeds_text(d.more_seeds, d.more_seeds_note) if d.status == UNDECIDED else "-",
    ]


DECISION_COLUMNS = ["ratio", "recommended", "epochs", "versus", "difference (CI)", "verdict",
                    "cheaper equivalent", "to decide"]  # fmt: skip


def recommendation(ctx: Context) -> Section:
    """Which regime to use per ratio and per retraining budget: the decisions, as they are."""
    sec = ctx.section("recommendation", "Recommendation")
    if not ctx.verdicts:
        sec.unavailable = "no finished run with a non-random criterion"
        return sec
    several = len(ctx.verdicts) > 1
    rows, texts = [], []
    for criterion in ctx.verdicts:
        for d in ctx.decisions(criterion):
            row = decision_row(d, ctx.metric)
            rows.append(row[:1] + ([criterion] if several else []) + row[1:])
            texts.append(f"{criterion}: {d.text}" if several else d.text)
    columns = DECISION_COLUMNS[:1] + (["criterion"] if several else []) + DECISION_COLUMNS[1:]
    sec.add(
        Paragraph(
            "Per ratio, the variant with the best mean is recommended and compared with the "
            "best variant of every other regime, paired by seed and by test example "
            f"({verdict_words(ctx)}). 'versus' and 'difference' show the comparison the "
            "verdict rests on." + few_seeds_words(ctx)
        ),
        Table("Recommended regime per ratio", columns, rows),
        Bullets(texts),
    )
    v = ctx.verdicts.get(ctx.criterion)
    budget_rows = [
        [pct(d.ratio), f"{d.budget if d.budget is not None else v.budget_levels(ratio)[-1]:.0f}",
         *decision_row(d, ctx.metric)[1:]]
        for ratio in sorted(v.candidates) if v is not None
        for d in v.frontier(ratio)
    ]  # fmt: skip
    if budget_rows:
        sec.add(
            Paragraph(
                "Best choice for a retraining budget: a budget of at least a row's epochs (mean "
                "total fine-tuning epochs) affords that row's variant; each row is the decision "
                "among the variants that fit (`prunebench advise RESULTS --budget EPOCHS`)."
            ),
            Table(
                f"Best within a budget ({ctx.criterion} criterion)",
                ["ratio", "budget (epochs)", *DECISION_COLUMNS[1:]],
                budget_rows,
            ),
        )
    return sec


def verdict_words(ctx: Context) -> str:
    """How verdicts are reached, in one clause (also for the claims section)."""
    families = ", ".join(
        f"{v.family} for {c}" if len(ctx.verdicts) > 1 else str(v.family)
        for c, v in ctx.verdicts.items()
    )
    return (
        f"intervals Holm-adjusted over the comparisons made ({families}), α = {ctx.alpha:g}; "
        f"'better' needs the interval to exclude 0 and the difference to exceed the margin "
        f"{fmt_margin(ctx.metric, ctx.margin)}; 'equivalent' needs the whole interval inside "
        "it; anything else is 'inconclusive'"
    )


def few_seeds_words(ctx: Context) -> str:
    """Why intervals are wide with two or three seeds, when they are."""
    seeds = [c.seeds for v in ctx.verdicts.values() for c in v.comparisons.values()
             if c.method == CROSSED]  # fmt: skip
    if not seeds or min(seeds) > 3:
        return ""
    s = min(seeds)
    return (
        f" With {s} seeds the training-noise part of an interval rests on {s - 1} degree"
        f"{'s' if s > 2 else ''} of freedom (t = {stats.t.ppf(0.975, s - 1):.1f} at 95 %, more "
        "after Holm's correction), so intervals are wide until more seeds are run."
    )


def interval_words(ctx: Context) -> str:
    """What the figures' error bars are."""
    level = f"{100 * (1 - ctx.alpha):g} % confidence interval"
    methods = set(ctx.summary["ci_method"].dropna()) if "ci_method" in ctx.summary else set()
    if methods <= {"seeds x test examples"}:
        return f"{level} of the mean over seeds and test examples"
    return f"{level} ({'; '.join(sorted(methods))})"
