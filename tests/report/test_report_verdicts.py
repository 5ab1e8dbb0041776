"""Three outcomes, Holm's correction, margins, and the seeds it would take (report.verdicts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from prunebench.report.calibration import Scenario, draw, new_method, rate, shift_for
from prunebench.report.prepare import METRICS
from prunebench.report.seed_quantiles import seed_quantiles
from prunebench.report.uncertainty import CROSSED, SEEDS_ONLY, TEST_ONLY, Spread, crossed
from prunebench.report.verdicts import (
    A_BETTER,
    B_BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    ONE_SEED,
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
        Spread(0.02, 1e-4 * 3, 0.0, 3, 300, CROSSED, 1e-5),
        Spread(0.0003, 1e-8, 0.0, 3, 300, CROSSED, 1e-8),
    ]
    first, second = judge(spreads, [(0.5, "a", "b"), (0.9, "a", "b")], 0.001, 0.05)
    p = [s.p_value() for s in spreads]
    levels = holm_alphas(p, 0.05)
    assert (first.alpha, second.alpha) == (pytest.approx(levels[0]), pytest.approx(levels[1]))
    c_b, c_r = seed_quantiles(3, levels[0], 2 * 299)
    half = math.sqrt(c_b**2 * 1e-4 + c_r**2 * 1e-5 / 3)
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
    """Smallest S' with t(S'-1) half-width + z(0.8) SE <= the minimum effect, minus S; the
    observed difference plays no part."""
    for estimate in (0.0, 0.01, -0.03):
        spread = Spread(estimate, 0.0003, 0.0, 3, 300, CROSSED, 0.0001)
        total = next(
            s for s in range(4, 1000)
            if (stats.t.ppf(0.975, s - 1) + stats.norm.ppf(0.8)) * 0.02 / math.sqrt(s) <= 0.01
        )  # fmt: skip
        more, note = seeds_to_decide(spread, 0.001, 0.05, min_effect=0.01)
        assert more == total - 3 and "--until-decided" in note


def test_no_number_of_seeds_where_it_cannot_be_honest():
    one = Spread(0.01, 0.0, 0.0001, 1, 300, TEST_ONLY)
    assert seeds_to_decide(one, 0.001, 0.05, 0.005) == (None, ONE_SEED)
    old = Spread(0.01, 0.0004, 0.0, 3, 0, SEEDS_ONLY)
    assert seeds_to_decide(old, 0.001, 0.05, 0.005)[0] is None
    (c,) = judge([old], [(0.5, "a", "b")], 0.001, 0.05)
    assert c.outcome == INCONCLUSIVE and c.more_seeds is None  # refused, not decided


def test_more_seeds_cannot_shrink_the_test_set_part():
    spread = Spread(0.004, 0.0001, 0.0001, 3, 300, CROSSED)  # test-set SE 1 pp
    more, note = seeds_to_decide(spread, 0.001, 0.05, min_effect=0.02)
    assert more is None and "larger test set" in note


def test_one_seed_never_decides_however_clear():
    bits = np.zeros((1, 1000))
    bits[0, :300] = 1.0  # A right and B wrong on 300 of 1000 images: 30 pp, one seed
    (c,) = judge([crossed(bits)], [(0.5, "a", "b")], 0.001, 0.05)
    assert c.outcome == INCONCLUSIVE and c.low > 0  # the interval shows, the verdict waits
    assert c.more_seeds is None and c.more_seeds_note == ONE_SEED


def test_variants_picked_by_their_means_count_in_the_family():
    spread = Spread(0.02, 1e-5, 1e-5, 5, 300, CROSSED, 1e-5)
    (alone,) = judge([spread], [(0.5, "a", "b")], 0.001, 0.05)
    (picked,) = judge([spread], [(0.5, "a", "b")], 0.001, 0.05, multiplicity=[4])
    assert picked.alpha == pytest.approx(alone.alpha / 4) and picked.multiplicity == 4
    assert picked.high - picked.low > alone.high - alone.low


def test_seeds_to_decide_gives_about_the_promised_power():
    """With the true variance parts, the promised seeds call a true difference of the minimum
    effect better at least ~80 % of the time; half as many do not."""
    rng = np.random.default_rng(5)
    sc = Scenario(seeds=3, examples=300)
    a, b = draw(rng, sc, 4000)
    truth = crossed(a.astype(float) - b.astype(float))
    parts = [float(np.mean(x)) for x in (truth.seed_var, truth.resid_var, truth.example_var)]
    se3 = math.sqrt((parts[0] + parts[1]) / 3 + parts[2])
    effect = 2.0 * se3
    spread = Spread(0.0, parts[0], parts[2], 3, 300, CROSSED, parts[1])
    more, _ = seeds_to_decide(spread, 0.001, 0.05, effect)
    assert more is not None and more > 0
    big = Scenario(seeds=3 + more, examples=300)
    a, b = draw(rng, big, 600, shift_for(big, effect))
    assert rate(new_method(a, b, 0.05, 0.001), A_BETTER) >= 0.75
    fewer = Scenario(seeds=3 + more // 3, examples=300)
    a, b = draw(rng, fewer, 600, shift_for(fewer, effect))
    assert rate(new_method(a, b, 0.05, 0.001), A_BETTER) < 0.75
