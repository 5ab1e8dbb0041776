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
A comparison between representatives picked by their test means out of k_a and k_b variants
counts as k_a x k_b comparisons (its p-value times k_a k_b, its level alpha / (k_a k_b)), so the
choice cannot peek. An interval that cannot decide (one seed; no per-example outcomes) gives
"inconclusive" with the reason, whatever it shows.

"More seeds" is computed for a user-set minimum effect (`--min-effect`, default 0.5 pp of
accuracy or 2 % of perplexity), never from the observed difference; judging again on the same
test set after adding seeds is a second look: it needs a sequential method
(`sweep --until-decided`) or fresh test data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from scipy import stats

from prunebench.report.prepare import Metric
from prunebench.report.uncertainty import EXAMPLE, NONE, TEST_ONLY, Spread

ALPHA = 0.05  # family-wise, over the comparisons corrected together
A_BETTER, B_BETTER, EQUIVALENT, INCONCLUSIVE = "A better", "B better", "equivalent", "inconclusive"
OUTCOMES = (A_BETTER, B_BETTER, EQUIVALENT, INCONCLUSIVE)
# A decision's status (decisions.py): the recommended variant against every other regime.
BETTER, TIED, UNDECIDED = "better", "equivalent", "inconclusive"
ONLY_ONE, NOTHING_FITS = "only one regime", "nothing fits the budget"
POWER = 0.8  # the chance to decide that "more seeds" aims at
MAX_SEEDS = 1000
DEFAULT_MARGIN = {True: 0.1, False: 1.0}  # pp of accuracy; % of perplexity
DEFAULT_MIN_EFFECT = {True: 0.5, False: 2.0}  # the smallest difference worth seeds
SECOND_LOOK = (
    "judging again on this test set after adding seeds needs `sweep --until-decided` "
    "(sequential) or fresh test data"
)
ONE_SEED = "one seed: training noise unknown; a decision needs at least 2 seeds"
NO_OUTCOMES = "no per-example outcomes: the shared test set's noise is unknown; no verdict"


def margin_for(metric: Metric, given: float | None = None) -> float:
    """The margin in advantage units from a number in the metric's terms: percentage points
    of accuracy, or percent of perplexity (default 0.1 pp / 1 %)."""
    value = DEFAULT_MARGIN[metric.higher_is_better] if given is None else given
    if value < 0:
        raise ValueError("the margin must be >= 0")
    return value / metric.scale if metric.higher_is_better else math.log1p(value / 100)


def min_effect_for(metric: Metric, given: float | None, margin: float) -> float:
    """The minimum effect in advantage units (as margin_for; at least twice the margin)."""
    value = DEFAULT_MIN_EFFECT[metric.higher_is_better] if given is None else given
    if value <= 0:
        raise ValueError("the minimum effect must be > 0")
    return max(margin_for(metric, value), 2 * margin)


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


def refusal(spread: Spread) -> str:
    """Why this spread gives no verdict ('' when it may give one)."""
    if spread.decides:
        return ""
    if spread.method in (TEST_ONLY, NONE) or spread.seeds == 1:
        return ONE_SEED
    return NO_OUTCOMES if spread.method != NONE else ONE_SEED


def seeds_to_decide(
    spread: Spread, margin: float, alpha: float, min_effect: float
) -> tuple[int | None, str]:
    """More seeds that would give POWER to call a true difference of `min_effect` "better"
    (it must beyond the margin too), the variance parts as estimated now. The projected
    intervals use t(S'-1) for luck and residual alike (no narrower than the report's own).
    Returns (None, why) where no honest number exists: one seed (no training noise measured),
    no per-example outcomes, or a test set whose own noise is too large."""
    if (why := refusal(spread)) or np.isnan(spread.var):
        return None, why or "no noise estimate"
    z = stats.norm.ppf(POWER)
    q = stats.norm.ppf(1 - alpha / 2)
    if (q + z) * np.sqrt(spread.example_var) >= min_effect - margin:
        return None, (
            "more seeds cannot decide a difference of the minimum effect: the test set's own "
            f"noise ({spread.units} {spread.cluster_unit}s) is too large; a larger test set would"
        )
    totals = np.arange(spread.seeds + 1, spread.seeds + MAX_SEEDS + 1)  # every count at once
    q_total = stats.t.ppf(1 - alpha / 2, totals - 1)
    q_example = stats.t.ppf(1 - alpha / 2, max(spread.units - 1, 1))
    parts = (spread.seed_var + spread.resid_var) / totals
    half = np.sqrt(q_total**2 * parts + q_example**2 * spread.example_var)
    se = np.sqrt(spread.projected_var(totals))
    enough = np.flatnonzero((half + z * se <= min_effect) & (margin + z * se <= min_effect))
    if enough.size:
        return int(totals[enough[0]]) - spread.seeds, SECOND_LOOK
    return None, f"more than {MAX_SEEDS} more seeds"


class Boundary(Protocol):
    """One look of a group-sequential design (report/sequential.py): the nominal level of its
    fixed-sample interval for a total alpha, and the inverse for a p-value."""

    def nominal(self, alpha: np.ndarray) -> np.ndarray: ...

    def sequential_p(self, p: np.ndarray) -> np.ndarray: ...


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
    df_rule: str = ""
    clusters: int = 0  # independent test units where examples come in groups
    cluster_unit: str = EXAMPLE
    multiplicity: int = 1  # variant pairs the representatives were picked from

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
    min_effect: float | None = None,
    multiplicity: list[int] | None = None,
    boundary: Boundary | None = None,
) -> list[Comparison]:
    """Verdicts for a family of comparisons (ratio, a, b), Holm-corrected together.
    `bound`: the largest possible |difference| (1 for accuracies); intervals are cut to it,
    which keeps their coverage (the truth lies inside the bound). `multiplicity`: per
    comparison, how many variant pairs its representatives were picked from. `boundary`: a
    look of a sequential design; Holm then runs on the sequential p-values (the total alpha at
    which the look rejects), and each interval gets the look's nominal level for its share."""
    min_effect = 5 * margin if min_effect is None else min_effect
    k = np.ones(len(spreads)) if multiplicity is None else np.asarray(multiplicity, float)
    p = np.array([s.p_value() if s.decides else np.nan for s in spreads], dtype=float)
    ordered = p if boundary is None else np.asarray(boundary.sequential_p(p), dtype=float)
    alphas = holm_alphas(np.minimum(ordered * k, 1.0), alpha) / k
    if boundary is not None:
        alphas = np.asarray(boundary.nominal(alphas), dtype=float)
    family = int((~np.isnan(p)).sum())
    out = []
    for spread, (ratio, a, b), level, p_value, times in zip(
        spreads, pairs, alphas, p, k, strict=True
    ):
        low, high = spread.interval(level)
        if bound is not None:
            low, high = max(low, -bound), min(high, bound)
        outcome = classify(spread.mean, low, high, margin) if spread.decides else INCONCLUSIVE
        more, note = (0, "")
        if outcome == INCONCLUSIVE:
            more, note = seeds_to_decide(spread, margin, level, min_effect)
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
                spread.df_rule,
                spread.clusters,
                spread.cluster_unit,
                int(times),
            )
        )
    return out
