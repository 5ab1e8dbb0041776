"""Three outcomes, Holm's correction, margins, and the seeds it would take (report.verdicts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from prunebench.report.calibration import Scenario, draw, new_method, rate, shift_for
from prunebench.report.prepare import METRICS
from prunebench.report.uncertainty import CROSSED, SEEDS_ONLY, Spread, crossed
from prunebench.report.verdicts import (
    A_BETTER,
    B_BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    classify,
    holm_alphas,
    judge,
    margin_for,
    seeds_to_decide,
)


@pytest.mark.parametrize(
    ("estimate", "low", "high", "expected"),
    [
        (0.010, 0.002, 0.018, A_BETTER),
        (0.0008, 0.0002, 0.0014, INCONCLUSIVE),  # excludes 0, but inside the 0.001 margin
        (0.0005, 0.0001, 0.0009, EQUIVALENT),  # excludes 0 AND inside the margin
        (-0.010, -0.018, -0.002, B_BETTER),
        (0.0, -0.0009, 0.0009, EQUIVALENT),
        (0.0, -0.002, 0.002, INCONCLUSIVE),
        (0.01, -0.001, 0.021, INCONCLUSIVE),
        (0.0, math.nan, math.nan, INCONCLUSIVE),  # no interval
    ],
)
def test_three_outcomes(estimate, low, high, expected):
    assert classify(estimate, low, high, 0.001) == expected
    assert list(classify([estimate], [low], [high], 0.001)) == [expected]


def holm_adjusted(p: np.ndarray) -> np.ndarray:
    """Holm (1979) adjusted p-values, the textbook way: max over k <= j of (m - k + 1) p_(k)."""
    order = np.argsort(p)
    m = len(p)
    adjusted = np.maximum.accumulate([(m - k) * p[i] for k, i in enumerate(order)])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1)
    return out


def test_holm_levels_by_hand():
    # sorted: 0.005 < 0.05/4, 0.01 < 0.05/3, 0.03 >= 0.05/2: stop; 0.04 keeps 0.025
    levels = holm_alphas([0.01, 0.04, 0.03, 0.005], 0.05)
    assert list(levels) == pytest.approx([0.05 / 3, 0.025, 0.025, 0.0125])
    assert list(holm_alphas([0.2, math.nan], 0.05)) == [0.05, 0.05]  # a NaN is not tested


def test_holm_intervals_exclude_zero_exactly_when_holm_rejects():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 0.06, size=rng.integers(1, 12)) ** rng.uniform(0.5, 2)
        assert list(p < holm_alphas(p, 0.05)) == list(holm_adjusted(p) < 0.05)


def test_judge_reads_verdicts_off_holm_adjusted_intervals():
    spreads = [
        Spread(0.02, 1e-4 * 3, 0.0, 3, 0, SEEDS_ONLY),
        Spread(0.0003, 1e-8, 0.0, 3, 0, SEEDS_ONLY),
    ]
    first, second = judge(spreads, [(0.5, "a", "b"), (0.9, "a", "b")], 0.001, 0.05)
    p = [s.p_value() for s in spreads]
    levels = holm_alphas(p, 0.05)
    assert (first.alpha, second.alpha) == (pytest.approx(levels[0]), pytest.approx(levels[1]))
    half = stats.t.ppf(1 - levels[0] / 2, 2) * math.sqrt(1e-4)
    assert (first.low, first.high) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert first.family == second.family == 2
    assert second.outcome == EQUIVALENT and first.flipped().outcome in (B_BETTER, INCONCLUSIVE)
    flipped = first.flipped()
    assert (flipped.a, flipped.low, flipped.high) == ("b", -first.high, -first.low)


def test_margins_in_the_metrics_terms():
    assert margin_for(METRICS["top1"]) == pytest.approx(0.001)  # 0.1 pp
    assert margin_for(METRICS["top1"], 0.5) == pytest.approx(0.005)
    assert margin_for(METRICS["ppl"]) == pytest.approx(math.log(1.01))  # 1 % of perplexity
    with pytest.raises(ValueError):
        margin_for(METRICS["top1"], -1)


def test_seeds_to_decide_by_the_stated_rule():
    """Smallest S' with (t(S'-1) + z(0.8)) * sigma / sqrt(S') <= |estimate|, minus S."""
    spread = Spread(0.01, 0.0004, 0.0, 3, 0, SEEDS_ONLY)
    total = next(
        s for s in range(4, 1000)
        if (stats.t.ppf(0.975, s - 1) + stats.norm.ppf(0.8)) * 0.02 / math.sqrt(s) <= 0.01
    )  # fmt: skip
    assert seeds_to_decide(spread, 0.001, 0.05) == (total - 3, "")


def test_more_seeds_cannot_shrink_the_test_set_part():
    spread = Spread(0.004, 0.0001, 0.0001, 3, 300, CROSSED)  # test-set SE 1 pp > 0.4 pp / 2.8
    more, note = seeds_to_decide(spread, 0.001, 0.05)
    assert more is None and "larger test set" in note
    assert seeds_to_decide(Spread(0.001, 0.0001, 0.0, 3, 300, CROSSED), 0.001, 0.05)[0] is None


def test_seeds_to_decide_gives_about_the_promised_power():
    """With the true variance parts, the promised seeds decide at least ~80 % of the time
    (here 0.92: the floored seed part makes the promise conservative); half as many do not."""
    rng = np.random.default_rng(5)
    sc = Scenario(seeds=3, examples=300)
    a, b = draw(rng, sc, 4000)
    truth = crossed(a.astype(float) - b.astype(float))
    true_seed_var, true_example_var = (
        float(np.mean(truth.seed_var)),
        float(np.mean(truth.example_var)),
    )
    se3 = math.sqrt(true_seed_var / 3 + true_example_var)
    difference = 2.0 * se3
    spread = Spread(difference, true_seed_var, true_example_var, 3, 300, CROSSED)
    more, _ = seeds_to_decide(spread, 0.001, 0.05)
    assert more is not None and more > 0
    big = Scenario(seeds=3 + more, examples=300)
    a, b = draw(rng, big, 600, shift_for(big, difference))
    assert rate(new_method(a, b, 0.05, 0.001), A_BETTER) >= 0.7
    fewer = Scenario(seeds=3 + more // 2, examples=300)
    a, b = draw(rng, fewer, 600, shift_for(fewer, difference))
    assert rate(new_method(a, b, 0.05, 0.001), A_BETTER) < 0.8
