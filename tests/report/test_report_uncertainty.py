"""Intervals over seeds and test examples (report.uncertainty) against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from prunebench.report.candidates import outcome_spread
from prunebench.report.uncertainty import (
    CROSSED,
    NESTED,
    SEEDS_ONLY,
    TEST_ONLY,
    crossed,
    nested,
    one_example_floor,
    seeds_only,
)
from prunebench.report.verdicts import EQUIVALENT, INCONCLUSIVE, classify


def anova_by_projection(y: np.ndarray) -> tuple[float, float, float]:
    """Mean squares (seeds, examples, residual) as squared norms of projections of y."""
    s, n = y.shape
    v = y.ravel()
    rows = np.kron(np.eye(s), np.ones((n, n)) / n)  # averages within a seed
    cols = np.kron(np.ones((s, s)) / s, np.eye(n))  # averages within an example
    grand = np.ones((s * n, s * n)) / (s * n)
    ms = lambda proj, df: float(v @ proj @ v) / df  # noqa: E731  (projections are idempotent)
    eye = np.eye(s * n)
    return (ms(rows - grand, s - 1), ms(cols - grand, n - 1),
            ms(eye - rows - cols + grand, (s - 1) * (n - 1)))  # fmt: skip


def test_crossed_components_match_the_anova_by_projection():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 30)) + rng.normal(size=(4, 1)) + 0.5 * rng.normal(size=(1, 30))
    ms_seeds, ms_examples, ms_resid = anova_by_projection(y)
    got = crossed(y)
    assert got.method == CROSSED and (got.seeds, got.examples) == (4, 30)
    assert got.mean == pytest.approx(y.mean())
    assert got.seed_var == pytest.approx(max(ms_seeds, ms_resid) / 30)
    assert got.example_var == pytest.approx(max(ms_examples - ms_resid, 0) / 120)
    assert got.var == pytest.approx(
        (max(ms_seeds, ms_resid) + max(ms_examples - ms_resid, 0)) / 120
    )
    seed_part, example_part = max(ms_seeds, ms_resid) / 120, max(ms_examples - ms_resid, 0) / 120
    df = got.var**2 / (seed_part**2 / 3 + example_part**2 / 29)  # Welch-Satterthwaite
    assert got.df() == pytest.approx(df)
    low, high = got.interval(0.05)
    assert high - got.mean == pytest.approx(stats.t.ppf(0.975, df) * np.sqrt(got.var))
    assert got.mean - low == pytest.approx(high - got.mean)
    p = 2 * stats.t.sf(abs(got.mean) / np.sqrt(got.var), df)
    assert got.p_value() == pytest.approx(p)


def test_variance_is_that_of_the_mean_over_seeds_and_a_shared_test_set():
    """Var(mean) = s_a^2/n + s_b^2/S + s_e^2/(nS); the estimate is right on average."""
    rng = np.random.default_rng(1)
    sims, s, n, sa, sb, se = 4000, 5, 40, 0.3, 0.2, 1.0
    y = (sa * rng.normal(size=(sims, 1, n)) + sb * rng.normal(size=(sims, s, 1))
         + se * rng.normal(size=(sims, s, n)))  # fmt: skip
    truth = sa**2 / n + sb**2 / s + se**2 / (n * s)
    got = crossed(y)
    assert y.mean(axis=(1, 2)).var() == pytest.approx(truth, rel=0.06)
    assert np.mean(got.var) == pytest.approx(truth, rel=0.06)
    low, high = got.interval(0.05)
    coverage = np.mean((low < 0) & (high > 0))
    assert 0.94 <= coverage <= 0.98  # at least 95 %, less 2 SE; a little more from the floor


def test_vectorised_equals_one_at_a_time():
    y = np.random.default_rng(2).random((6, 3, 25)) < 0.8
    batch = crossed(y)
    for i in range(6):
        one = crossed(y[i])
        assert batch.var[i] == pytest.approx(one.var)
        assert batch.interval(0.01)[0][i] == pytest.approx(one.interval(0.01)[0])


def test_one_seed_is_test_set_noise_only():
    bits = np.array([1.0] * 90 + [0.0] * 10)
    got = crossed(bits[None, :])
    assert got.method == TEST_ONLY
    assert got.var == pytest.approx(0.9 * 0.1 * 100 / 99 / 100)  # sample variance / n
    assert got.df() == pytest.approx(99)


def test_seeds_that_agree_exactly_still_get_the_test_set_noise():
    """Two seeds with the same accuracy difference: the floor keeps the interval honest."""
    d = np.zeros((2, 100))
    d[:, :3] = 1.0  # A right, B wrong on three examples...
    d[0, 3], d[1, 4] = 1.0, 1.0  # ...and on one more, a different one per seed
    got = crossed(d)
    assert d.mean(axis=1).var() == 0  # no spread over seeds
    _, _, ms_resid = anova_by_projection(d)
    assert got.seed_var == pytest.approx(ms_resid / 100) and ms_resid > 0
    low, high = got.interval(0.05)
    assert high - low > 0.05


def test_seeds_only_is_the_one_sample_t_interval():
    values = np.array([0.012, 0.004, 0.009, -0.001])
    got = seeds_only(values)
    ref = stats.ttest_1samp(values, 0.0)
    ci = ref.confidence_interval(0.9)
    assert got.method == SEEDS_ONLY
    assert got.interval(0.1) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert got.p_value() == pytest.approx(ref.pvalue)
    assert np.isnan(seeds_only(np.array([0.01, 0.01])).interval()[0])  # agreeing seeds: none
    assert np.isnan(seeds_only(np.array([0.01])).var)


def test_seeds_with_test_sets_of_different_sizes():
    rng = np.random.default_rng(3)
    rows = [rng.random(50) < 0.9, rng.random(60) < 0.8, rng.random(40) < 0.85]
    rows = [r.astype(float) for r in rows]
    got = nested(rows)
    means = np.array([r.mean() for r in rows])
    floor = np.mean([r.var(ddof=1) / r.size for r in rows])
    assert got.method == NESTED and got.mean == pytest.approx(means.mean())
    assert got.var == pytest.approx(max(means.var(ddof=1), floor) / 3)
    assert got.df() == pytest.approx(2)


def test_models_that_agree_on_every_image_are_not_exactly_equal():
    """No disagreement in n images still leaves about one image's worth of doubt."""
    same = np.ones((1, 360))
    spread = outcome_spread(same - same, binary=True)
    assert spread.var == pytest.approx(one_example_floor(360)) and spread.var == (1 / 362) ** 2
    low, high = spread.interval(0.05)
    assert classify(spread.mean, low, high, 0.001) == INCONCLUSIVE  # 0.1 pp: not shown
    big = np.zeros((3, 10_000))
    low, high = outcome_spread(big, binary=True).interval(0.05)
    assert classify(0.0, low, high, 0.001) == EQUIVALENT  # 30,000 agreeing outcomes: shown
    low, high = outcome_spread(np.ones((2, 100)), binary=True).interval(0.05)
    assert low < 1.0  # a model right on all 100 images is not known to be perfect
