"""Words and numbers for decisions and comparisons: the one way every page and command says them.

Differences are A's advantage over B: percentage points of accuracy, or A's perplexity
relative to B's (negative = lower = better), each with its (Holm-adjusted) interval.
"""

from __future__ import annotations

import math

from prunebench.report.candidates import Candidate
from prunebench.report.prepare import Metric, pct
from prunebench.report.uncertainty import CAVEATS, CROSSED
from prunebench.report.verdicts import BETTER, TIED, Comparison


def fmt_value(metric: Metric, value: float) -> str:
    return f"{metric.fmt(value)}{metric.unit}"


def fmt_advantage(metric: Metric, advantage: float) -> str:
    """'+0.28 pp' of accuracy, or '-1.20 % perplexity' (A's relative to B's)."""
    if metric.higher_is_better:
        return f"{advantage * metric.scale:+.2f}{' pp' if metric.unit == '%' else ''}"
    return f"{100 * (math.exp(-advantage) - 1):+.2f} % perplexity"


def fmt_margin(metric: Metric, margin: float) -> str:
    if metric.higher_is_better:
        return f"±{margin * metric.scale:g}{' pp' if metric.unit == '%' else ''}"
    return f"±{100 * (math.exp(margin) - 1):.3g} % perplexity"


def fmt_interval(metric: Metric, c: Comparison) -> str:
    """'99.83 % CI [-0.90, 1.46]' in the units of fmt_advantage."""
    if math.isnan(c.low):
        return "no interval"
    if metric.higher_is_better:
        lo, hi = c.low * metric.scale, c.high * metric.scale
    else:
        lo, hi = 100 * (math.exp(-c.high) - 1), 100 * (math.exp(-c.low) - 1)
    return f"{100 * (1 - c.alpha):.4g} % CI [{lo:.2f}, {hi:.2f}]"


def describe(metric: Metric, c: Comparison) -> str:
    """'+0.28 pp, 99.83 % CI [-0.90, 1.46]'."""
    return f"{fmt_advantage(metric, c.estimate)}, {fmt_interval(metric, c)}"


def basis(c: Comparison) -> str:
    """'2 seeds x 360 test examples (20 documents)' or '3 seeds (no per-example outcomes)'."""
    if c.method == CROSSED:
        groups = f" in {c.clusters} {c.cluster_unit}s" if c.clusters else ""
        return f"{c.seeds} seeds x {c.examples} test examples{groups}"
    return c.method if c.seeds <= 1 else f"{c.seeds} seeds; {c.method}"


def how_judged(c: Comparison) -> str:
    """Which representative, df rule and cluster unit a comparison used (report and advise)."""
    unit = f"{c.clusters} {c.cluster_unit}s" if c.clusters else "each test example"
    picked = (
        f"representatives picked by test mean, counted x{c.multiplicity} in the family"
        if c.multiplicity > 1
        else "one variant per regime"
    )
    return f"{basis(c)}; df: {c.df_rule or 'none'}; cluster unit: {unit}; {picked}"


def seeds_text(more: int | None, note: str) -> str:
    """'run about 3 more seeds to decide the minimum effect (...)', or why no number."""
    if more is None:
        return note
    text = f"about {more} more seed{'s' if more != 1 else ''} would decide the minimum effect"
    return f"{text} ({note})" if note else text


def _caveat(c: Comparison | None) -> str:
    text = CAVEATS.get(c.method, "") if c is not None else ""
    text = f" Caveat: {text}." if text else ""
    return text + (f" [{how_judged(c)}]" if c is not None else "")


def decision_text(
    ratio: float,
    budget: float | None,
    rec: Candidate,
    status: str,
    deciding: Comparison | None,
    alternative: Candidate | None,
    more: int | None,
    note: str,
    metric: Metric,
    margin: float,
    others: dict[str, Candidate],
) -> str:
    """The decision's one sentence (see decisions.py for the statuses)."""
    where = f"At {pct(ratio)}" + (f" within {budget:g} epochs" if budget is not None else "")
    own = f"{rec.label} ({fmt_value(metric, rec.mean)}, {rec.epochs:.0f} epochs)"
    if deciding is None:
        return f"{where}: only {rec.regime} was run: {own}; nothing to compare."
    other = others[deciding.b]
    vs = f"{other.label} ({fmt_value(metric, other.mean)}, {other.epochs:.0f} epochs)"
    diff = describe(metric, deciding)
    if status == BETTER:
        text = f"{where}: use {own}; it is better than every other regime (closest: {vs}, {diff})."
    elif status == TIED:
        text = (
            f"{where}: use {own}; {vs} is equivalent within {fmt_margin(metric, margin)} ({diff})"
        )
        if alternative is not None:
            text += (
                f"; the cheaper equivalent is {alternative.label} ({alternative.epochs:.0f} epochs)"
            )
        text += "."
    else:
        text = (
            f"{where}: {own} has the best mean, but against {vs} the data cannot decide "
            f"({diff}); {seeds_text(more, note)}."
        )
    return text + _caveat(deciding)


def nothing_fits_text(ratio: float, budget: float, cheapest: float | None) -> str:
    text = f"At {pct(ratio)} within {budget:g} epochs: no variant fits"
    return text + (f" (the cheapest needs {cheapest:.0f} epochs)." if cheapest else ".")
