"""Calibration by simulation: verdicts are right as often as they claim (report.calibration).

Simulated per-example outcomes of two regimes on one shared test split, in every setting of
calibration.SETTINGS (one seed with training noise, 2-10 seeds, perplexity, systematic
per-example differences, clustered images and documents). With no true difference, "better"
(either way) must come at most alpha of the time, within two standard errors of the simulation; a true difference of 3 standard errors must be called
"A better" at least 80 % of the time; equivalence likewise (claimed when the truth is inside
the margin, and at most alpha of the time when it sits on the margin).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from prunebench.report.calibration import (
    SETTINGS,
    Scenario,
    advantages,
    draw,
    new_method,
    null_se,
    old_method,
    rate,
    shift_for,
)
from prunebench.report.candidates import Candidate, advantage, outcome_spread
from prunebench.report.prepare import METRICS
from prunebench.report.verdicts import A_BETTER, B_BETTER, EQUIVALENT, classify, judge
from prunebench.store.example_outcomes import Outcomes

ALPHA = 0.05
SIMS = 1000
TOLERANCE = 2 * math.sqrt(ALPHA * (1 - ALPHA) / SIMS)
NULLS = [name for name in SETTINGS if "10 seeds" not in name]  # the 10-seed ones: benchmark


@pytest.mark.parametrize("name", NULLS)
def test_no_true_difference_gives_better_at_most_alpha(name):
    sc = SETTINGS[name]
    a, b = draw(np.random.default_rng(1), sc, SIMS)
    verdicts = new_method(a, b, ALPHA, 0.0, sc)  # no margin: the hardest case
    assert rate(verdicts, A_BETTER, B_BETTER) <= ALPHA + TOLERANCE


def test_one_seed_never_says_better_or_equivalent():
    sc = SETTINGS["1 seed, training noise"]
    a, b = draw(np.random.default_rng(8), sc, 200, shift_for(sc, 0.02))  # 2 pp: obvious
    assert rate(new_method(a, b, ALPHA, 0.001, sc), A_BETTER, B_BETTER, EQUIVALENT) == 0
    a, b = draw(np.random.default_rng(9), sc, SIMS)
    spread = outcome_spread(a.astype(float) - b.astype(float), binary=True)
    low, high = spread.interval(ALPHA)  # what a verdict from one seed's interval would say
    assert rate(classify(spread.mean, low, high, 0.0), A_BETTER, B_BETTER) > ALPHA + TOLERANCE


def test_documents_need_the_cluster_robust_interval():
    """Sequences cut from 20 documents: treated as independent, "better" comes far too often."""
    sc = SETTINGS["documents (20 x 7 sequences), 3 seeds"]
    a, b = draw(np.random.default_rng(10), sc, SIMS)
    spread = outcome_spread(advantages(a, b, sc), binary=False)  # no groups
    low, high = spread.interval(ALPHA)
    assert rate(classify(spread.mean, low, high, 0.0), A_BETTER, B_BETTER) > ALPHA + TOLERANCE


def test_old_method_is_not_calibrated_with_test_set_effects():
    """Why the method changed: Welch over seed means ignores the shared test set."""
    a, b = draw(np.random.default_rng(2), SETTINGS["10 seeds, strong test-set effects"], SIMS)
    assert rate(old_method(a, b, ALPHA), A_BETTER, B_BETTER) > ALPHA + TOLERANCE


@pytest.fixture(scope="module")
def ten_seeds():
    sc = Scenario(seeds=10)
    return sc, null_se(np.random.default_rng(3), sc)


def test_three_standard_errors_give_a_better_at_least_80_percent(ten_seeds):
    sc, se = ten_seeds
    a, b = draw(np.random.default_rng(4), sc, SIMS, shift_for(sc, 3 * se))
    assert (a.mean() - b.mean()) == pytest.approx(3 * se, rel=0.1)  # the shift is what it says
    assert rate(new_method(a, b, ALPHA, margin=0.001), A_BETTER) >= 0.80


def test_equivalence_is_found_and_not_overclaimed(ten_seeds):
    sc, se = ten_seeds
    a, b = draw(np.random.default_rng(5), sc, SIMS)
    assert rate(new_method(a, b, ALPHA, margin=4 * se), EQUIVALENT) >= 0.80
    a, b = draw(np.random.default_rng(6), sc, SIMS, shift_for(sc, 2 * se))
    assert rate(new_method(a, b, ALPHA, margin=2 * se), EQUIVALENT) <= ALPHA + TOLERANCE


def test_simulation_path_is_the_reports_path():
    """The vectorised calls above give what the report gives for one comparison."""
    sc = Scenario(seeds=3, examples=200)
    a, b = draw(np.random.default_rng(7), sc, 20, shift_for(sc, 0.02))
    fast = new_method(a, b, ALPHA, margin=0.001)
    for i in range(20):
        ca, cb = (
            Candidate("A", "one_shot", "m", 0.5, float(x[i].mean()), 1.0,
                      {s: float(x[i, s].mean()) for s in range(3)},
                      {s: Outcomes("correct", x[i, s].astype(float)) for s in range(3)})
            for x in (a, b)
        )  # fmt: skip
        (c,) = judge([advantage(ca, cb, METRICS["top1"])], [(0.5, "A", "B")], 0.001, ALPHA)
        assert c.outcome == fast[i]
        assert c.estimate == pytest.approx(a[i].mean() - b[i].mean())
