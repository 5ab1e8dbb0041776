"""The recommendation: which regime wins at each ratio, and whether seeds back the difference.

The winner is the best variant by mean; it is tested against the best variant of ANOTHER regime
(Welch's t-test over seeds). With one seed on either side the report says that no claim can be
made rather than pretending a difference in means is a finding.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from prunebench.report.analysis import best_by_ratio
from prunebench.report.prepare import Metric, pct
from prunebench.report.stats import ALPHA, Comparison, welch

TEST_NAME = "Welch's two-sided t-test over seeds"


@dataclass(frozen=True)
class Recommendation:
    ratio: float
    criterion: str
    winner: str
    runner_up: str | None
    comparison: Comparison | None
    verdict: str  # significant | not significant | tie | no claim (...) | only one regime
    text: str


def fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_diff(metric: Metric, diff: float) -> str:
    unit = " pp" if metric.unit == "%" else ""
    return f"{diff * metric.scale:+.2f}{unit}"


def fmt_value(metric: Metric, value: float) -> str:
    return f"{metric.fmt(value)}{metric.unit}"


def describe(metric: Metric, c: Comparison) -> str:
    """'+0.93 pp, 95 % CI [0.31, 1.55] pp, t = 4.10, df = 3.9, p = 0.016'."""
    if not c.testable:
        return fmt_diff(metric, c.diff)
    unit = " pp" if metric.unit == "%" else ""
    lo, hi = c.ci_low * metric.scale, c.ci_high * metric.scale
    return (
        f"{fmt_diff(metric, c.diff)}, {c.confidence:.0%} CI [{lo:.2f}, {hi:.2f}]{unit}, "
        f"t = {c.t:.2f}, df = {c.df:.1f}, {fmt_p(c.p)}"
    )


def _sentence(
    ratio: float, metric: Metric, win: pd.Series, other: pd.Series, c: Comparison, alpha: float
) -> tuple[str, str]:
    """(verdict, sentence) for the winner against the best of another regime."""
    cheaper = min((win, other), key=lambda row: row["epochs_mean"])
    prefer = f"prefer the cheaper {cheaper['label']} ({cheaper['epochs_mean']:.0f} epochs)"
    if c.diff == 0:
        head = (
            f"At {pct(ratio)}: {win['label']} and {other['label']} tie at "
            f"{fmt_value(metric, win['mean'])} (n = {c.n_a} and {c.n_b})"
        )
        if c.n_a < 2 or c.n_b < 2:
            return "tie (one seed)", f"{head}; {prefer}. With one seed this is no claim either."
        return "tie", f"{head}; {prefer}."
    head = (
        f"At {pct(ratio)}: {win['label']} ({fmt_value(metric, win['mean'])}, n = {c.n_a}) "
        f"beats {other['label']} ({fmt_value(metric, other['mean'])}, n = {c.n_b}) "
        f"by {describe(metric, c)}"
    )
    if c.n_a < 2 or c.n_b < 2:
        return "no claim (one seed)", head + (
            ". With one seed on a side no claim can be made; run more seeds "
            "(e.g. grid: {seed: [0, 1, 2]})."
        )
    if not c.testable:
        return "no claim (no spread)", head + ". Every seed gave the same value: no test."
    if c.significant(alpha):
        return "significant", head + f" ({TEST_NAME}): significant at α = {alpha:g}."
    return "not significant", head + (
        f" ({TEST_NAME}): not significant at α = {alpha:g}; treat them as tied and {prefer}."
    )


def recommend(summary: pd.DataFrame, metric: Metric, alpha: float = ALPHA) -> list[Recommendation]:
    """One recommendation per (criterion, ratio) among the non-random variants of `summary`."""
    out = []
    candidates = summary[~summary["is_random"] & summary["mean"].notna()]
    for (criterion, ratio), group in candidates.groupby(["criterion", "ratio"], sort=True):
        ordered = best_by_ratio(group, metric)
        win = ordered.iloc[0]
        others = ordered[ordered["regime"] != win["regime"]]
        if others.empty:
            text = f"At {pct(ratio)}: only {win['regime']} was run; nothing to compare."
            out.append(
                Recommendation(ratio, criterion, win["label"], None, None, "only one regime", text)
            )
            continue
        other = others.iloc[0]
        c = welch(win["values"], other["values"])
        verdict, text = _sentence(ratio, metric, win, other, c, alpha)
        out.append(Recommendation(ratio, criterion, win["label"], other["label"], c, verdict, text))
    return out
