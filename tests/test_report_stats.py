"""Welch's t-test against scipy and against a case worked out by hand."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from prunebench.report.stats import welch

SAMPLES = [
    ([0.91, 0.92, 0.90], [0.88, 0.89, 0.90, 0.87]),
    ([0.5, 0.7], [0.1, 0.2, 0.9, 0.4, 0.3]),
    ([12.3, 11.9, 12.8, 12.1, 12.0], [13.1, 12.9, 13.4]),
]


@pytest.mark.parametrize(("a", "b"), SAMPLES)
def test_welch_matches_scipy(a, b):
    c = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.t == pytest.approx(ref.statistic, rel=1e-12)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert c.df == pytest.approx(ref.df, rel=1e-12)
    assert (c.ci_low, c.ci_high) == (
        pytest.approx(ci.low, rel=1e-9),
        pytest.approx(ci.high, rel=1e-9),
    )
    assert c.diff == pytest.approx(sum(a) / len(a) - sum(b) / len(b), abs=1e-15)


def test_welch_by_hand():
    # a = [0, 2], b = [4, 6]: variances 2 and 2, se^2 = 1 + 1, t = -4 / sqrt(2), df = 2.
    # With 2 degrees of freedom the t distribution has closed forms:
    # p = 1 - |t| / sqrt(t^2 + 2); the 0.975 quantile is 0.95 / sqrt(2 * 0.975 * 0.025).
    c = welch([0.0, 2.0], [4.0, 6.0])
    t = -4 / math.sqrt(2)
    assert c.t == pytest.approx(t, rel=1e-12)
    assert c.df == pytest.approx(2.0, rel=1e-12)
    assert c.p == pytest.approx(1 - abs(t) / math.sqrt(t * t + 2), rel=1e-9)
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) * math.sqrt(2)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-4 - half), pytest.approx(-4 + half))
    assert c.significant(0.2) and not c.significant(0.05)


def test_one_seed_or_no_spread_is_not_testable():
    one = welch([0.9], [0.8, 0.7])
    assert not one.testable and math.isnan(one.p) and one.diff == pytest.approx(0.15)
    flat = welch([0.9, 0.9], [0.8, 0.8])
    assert not flat.testable and not flat.significant()
    with pytest.raises(ValueError):
        welch([], [1.0])
