"""Three-outcome verdicts on a difference, Holm's correction, and how many seeds would decide.

A difference is an "advantage": A's score minus B's, in the metric's own scale where higher is
better (accuracy as a fraction; for perplexity, B's mean token NLL minus A's, i.e. the log of
ppl_B / ppl_A). With a practical margin m (0.1 pp of accuracy, or log 1.01 = 1 % of
perplexity, by default):

    "A better"      the interval excludes 0 and the estimate exceeds +m
    "B better"      the interval excludes 0 and the estimate is below -m
    "equivalent"    the whole interval lies inside (-m, +m)
    "inconclusive"  anything else: the data cannot tell yet

Several comparisons made at once (every comparison a report makes for a criterion) are
corrected with Holm's step-down procedure, expressed as interval levels: sorted by p-value, the
j-th of m gets a (1 - alpha / (m - j + 1)) interval until the first one that includes 0; that
one and all after it keep its level. An interval then excludes 0 exactly when Holm rejects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from prunebench.report.prepare import Metric
from prunebench.report.uncertainty import Spread

ALPHA = 0.05  # family-wise, over the comparisons corrected together
A_BETTER, B_BETTER, EQUIVALENT, INCONCLUSIVE = "A better", "B better", "equivalent", "inconclusive"
OUTCOMES = (A_BETTER, B_BETTER, EQUIVALENT, INCONCLUSIVE)
# A decision's status (decisions.py): the recommended variant against every other regime.
BETTER, TIED, UNDECIDED = "better", "equivalent", "inconclusive"
ONLY_ONE, NOTHING_FITS = "only one regime", "nothing fits the budget"
POWER = 0.8  # the chance to decide that "more seeds" aims at
MAX_SEEDS = 1000
DEFAULT_MARGIN = {True: 0.1, False: 1.0}  # pp of accuracy; % of perplexity


def margin_for(metric: Metric, given: float | None = None) -> float:
    """The margin in advantage units from a number in the metric's terms: percentage points
    of accuracy, or percent of perplexity (default 0.1 pp / 1 %)."""
    value = DEFAULT_MARGIN[metric.higher_is_better] if given is None else given
    if value < 0:
        raise ValueError("the margin must be >= 0")
    return value / metric.scale if metric.higher_is_better else math.log1p(value / 100)


def classify(estimate, low, high, margin: float):
    """The verdict for each (estimate, interval); works on scalars and numpy arrays."""
    estimate, low, high = (np.asarray(x, dtype=float) for x in (estimate, low, high))
    codes = np.select(
        [
            (low > 0) & (estimate > margin),
            (high < 0) & (estimate < -margin),
            (low > -margin) & (high < margin),
        ],
        [0, 1, 2],
        default=3,
    )
    names = np.array(OUTCOMES)[codes]
    return str(names) if names.ndim == 0 else names


def holm_alphas(p_values, alpha: float) -> np.ndarray:
    """Per comparison, the alpha of its Holm-adjusted interval (NaN p-values are not tested)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, float(alpha))
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    for j, i in enumerate(order):
        step = alpha / (order.size - j)
        if p[i] >= step:
            out[order[j:]] = step
            break
        out[i] = step
    return out


def seeds_to_decide(spread: Spread, margin: float, alpha: float) -> tuple[int | None, str]:
    """More seeds that would give POWER to decide, the estimate and variance parts as now.

    Aims at "better" when the estimate is beyond the margin, else at "equivalent". Returns
    (None, why) when no number of seeds would do: the test set's own noise is too large, or
    the estimate sits on the margin.
    """
    if np.isnan(spread.var):
        return None, "no noise estimate: needs per-example outcomes, or seeds that differ"
    est = abs(float(spread.mean))
    distance = est if est > margin else margin - est
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)
    if distance <= 0:
        return None, "the estimate sits on the margin: no number of seeds decides it"
    if z * np.sqrt(spread.example_var) >= distance:
        return None, (
            f"more seeds cannot decide this: the test set's own noise ({spread.examples} "
            "examples) is too large for this difference; a larger test set would"
        )
    note = "at least: one seed cannot show training noise" if spread.seeds == 1 else ""
    totals = np.arange(spread.seeds + 1, spread.seeds + MAX_SEEDS + 1)
    q = stats.t.ppf(1 - alpha / 2, spread.df(totals))
    enough = (q + stats.norm.ppf(POWER)) * np.sqrt(spread.projected_var(totals)) <= distance
    if not enough.any():
        return None, f"more than {MAX_SEEDS} more seeds"
    return int(totals[np.argmax(enough)]) - spread.seeds, note


@dataclass(frozen=True)
class Comparison:
    """A vs B at one ratio: the advantage of A, its interval, the verdict, what to do next."""

    a: str  # labels
    b: str
    ratio: float
    estimate: float
    low: float
    high: float
    alpha: float  # of the (Holm-adjusted) interval
    p: float
    outcome: str
    method: str  # uncertainty.CROSSED, SEEDS_ONLY, ...
    seeds: int
    examples: int
    family: int  # comparisons corrected together
    more_seeds: int | None = None  # to decide, when inconclusive
    more_seeds_note: str = ""

    def flipped(self) -> Comparison:
        swap = {A_BETTER: B_BETTER, B_BETTER: A_BETTER}
        return replace(
            self,
            a=self.b,
            b=self.a,
            estimate=-self.estimate,
            low=-self.high,
            high=-self.low,
            outcome=swap.get(self.outcome, self.outcome),
        )


def judge(
    spreads: list[Spread],
    pairs: list[tuple[float, str, str]],
    margin: float,
    alpha: float,
    bound: float | None = None,
) -> list[Comparison]:
    """Verdicts for a family of comparisons (ratio, a, b), Holm-corrected together.
    `bound`: the largest possible |difference| (1 for accuracies); intervals are cut to it,
    which keeps their coverage (the truth lies inside the bound)."""
    p = np.array([s.p_value() for s in spreads], dtype=float)
    alphas = holm_alphas(p, alpha)
    family = int((~np.isnan(p)).sum())
    out = []
    for spread, (ratio, a, b), level, p_value in zip(spreads, pairs, alphas, p, strict=True):
        low, high = spread.interval(level)
        if bound is not None:
            low, high = max(low, -bound), min(high, bound)
        outcome = classify(spread.mean, low, high, margin)
        more, note = (0, "")
        if outcome == INCONCLUSIVE:
            more, note = seeds_to_decide(spread, margin, level)
        out.append(
            Comparison(
                a,
                b,
                ratio,
                float(spread.mean),
                float(low),
                float(high),
                float(level),
                float(p_value),
                outcome,
                spread.method,
                spread.seeds,
                spread.examples,
                family,
                more,
                note,
            )
        )
    return out
