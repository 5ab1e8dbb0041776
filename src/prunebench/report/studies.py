"""The paper's further studies as sections: retraining budget (fig. 4), criteria (fig. 5),
hybrid (fig. 6), patience and step-size ablations (fig. 7). Each says why when it is empty.
"""

from __future__ import annotations

import pandas as pd

import prunebench.report.figures as figures
from prunebench.report.analysis import ablation_rows, best_by_ratio
from prunebench.report.document import FigureBlock, Section, Table
from prunebench.report.prepare import pct
from prunebench.report.sections import Context, interval_words


def budget(ctx: Context) -> Section:
    """Figure 4: the metric against total fine-tuning epochs at each ratio."""
    sec = ctx.section("budget", "Retraining budget")
    counts = ctx.main.groupby("ratio")["regime"].nunique()
    ratios = [float(r) for r in counts.index[counts >= 2]]
    if not ratios:
        sec.unavailable = "no ratio where two regimes finished"
        return sec
    if len(ratios) > 6:
        sec.omitted.append(f"{len(ratios) - 6} ratios left out of the figure (six at most)")
        step = (len(ratios) - 1) / 5
        ratios = [ratios[round(i * step)] for i in range(6)]
    dense = ctx.finals["dense_value"].dropna()
    dense_value = float(dense.mean()) if not dense.empty else None
    fig = figures.retraining_budget(ctx.main, ctx.metric, ratios, dense_value)
    several = ctx.main.groupby(["ratio", "regime"])["label"].nunique().max() > 1
    caption = (
        "Test metric vs the total fine-tuning epochs a run used (all steps, mean over seeds); "
        f"{'up' if ctx.metric.higher_is_better else 'down'} and to the left is better. One "
        "point per variant; "
        + ("a regime's variants (e.g. patience values) are joined in order of epochs. "
           if several else "each regime ran one variant here, so each is a single point. ")
        + f"Vertical bars: {interval_words(ctx)}; horizontal bars: standard deviation of the "
        "epochs over seeds. All panels share one y range."
    )  # fmt: skip
    if dense_value is not None:
        caption += f" Dashed black line: the dense model ({ctx.metric.fmt(dense_value)}"
        caption += f"{ctx.metric.unit})."
    sec.add(FigureBlock(ctx.name("retraining_budget"), caption, fig))
    return sec


def criteria(ctx: Context) -> Section:
    """Figure 5: per criterion, the best result at each ratio and the regime that got it."""
    sec = ctx.section("criteria", "Criteria")
    have = ctx.summary[ctx.summary["mean"].notna()]
    names = sorted(have["criterion"].unique())
    if len(names) < 2:
        only = names[0] if names else "none"
        sec.unavailable = f"only one criterion ({only}) was run; add prune.criterion to the grid"
        return sec
    best = best_by_ratio(have, ctx.metric).groupby(["criterion", "ratio"], as_index=False).first()
    fig = figures.criteria(best, ctx.metric)
    sec.add(
        FigureBlock(
            ctx.name("criteria"),
            "Each line follows one criterion's best mean; the "
            f"marker shows which regime achieved it; bars: {interval_words(ctx)}.",
            fig,
        )
    )
    rows = []
    for ratio, group in best.groupby("ratio"):
        cells = {
            row["criterion"]: f"{row['label']}: {ctx.metric.fmt(row['mean'])}"
            for _, row in group.iterrows()
        }
        rows.append([pct(ratio), *(cells.get(c, "-") for c in names)])
    sec.add(Table("Best regime per criterion", ["ratio", *names], rows))
    return sec


def hybrid(ctx: Context) -> Section:
    """Figure 6: hybrid against one-shot and the best iterative regime."""
    sec = ctx.section("hybrid", "Hybrid vs one-shot vs iterative")
    main = ctx.main
    hyb = main[main["regime"] == "hybrid"]
    if hyb.empty:
        sec.unavailable = "no finished hybrid runs"
        return sec
    ratios = set(hyb["ratio"])
    one = ctx.lines(("one_shot",))
    iterative = ctx.reps[ctx.reps["regime"].isin(["constant", "geometric"])]
    best_it = best_by_ratio(iterative, ctx.metric).groupby("ratio", as_index=False).first()
    best_it = best_it.assign(label="best iterative (constant or geometric)", regime="iterative")
    # the hybrid's main line, plus every other hybrid variant that spans two ratios or more
    main_hybrid = ctx.lines(("hybrid",))
    spans = hyb.groupby("label")["ratio"].nunique()
    others = hyb[
        hyb["label"].isin(spans.index[spans >= 2]) & ~hyb["label"].isin(main_hybrid["line"])
    ]
    lines = pd.concat([main_hybrid, others, one, best_it])
    if not ratios & (set(one["ratio"]) | set(best_it["ratio"])):
        sec.unavailable = "hybrid was run at no ratio where one-shot or iterative runs finished"
        return sec
    fig = figures.regime_lines(lines, ctx.metric, "Hybrid vs one-shot vs iterative")
    sec.add(
        FigureBlock(
            ctx.name("hybrid"),
            "The hybrid regime (its main configuration and every variant run at two ratios or "
            "more), one-shot, and per ratio the better of iterative constant and geometric.",
            fig,
        )
    )
    return sec


ABLATIONS = {
    "patience": (
        "Patience ablation",
        "patience (epochs without improvement)",
        False,
        "no regime was run with two or more patience values at the same ratio",
    ),
    "step_size": (
        "Step-size ablation",
        "per-step pruning rate (% of weights)",
        False,
        "no iterative regime was run with two or more step sizes at the same ratio",
    ),
}


def ablation(ctx: Context, param: str) -> Section:
    """Figure 7: the metric against patience or step size, per regime and ratio."""
    title, xlabel, log_x, missing = ABLATIONS[param]
    sec = ctx.section(f"ablation-{param.replace('_', '-')}", title)
    finals = ctx.finals[~ctx.finals["is_random"] & (ctx.finals["criterion"] == ctx.criterion)]
    rows = ablation_rows(finals, param, ctx.alpha)
    if rows.empty:
        sec.unavailable = missing
        return sec
    if param == "step_size":
        rows = rows.assign(x=rows["x"] * 100)
    fig = figures.ablation(rows, ctx.metric, xlabel, f"{title} (mean and confidence interval)",
                           log_x)  # fmt: skip
    caption = f"{title}: other settings fixed within each line; bars: {interval_words(ctx)}."
    sec.add(FigureBlock(ctx.name(f"ablation_{param}"), caption, fig))
    return sec
