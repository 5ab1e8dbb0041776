"""Intervals over seeds and test examples (report.uncertainty) against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from prunebench.report.candidates import outcome_spread
from prunebench.report.seed_quantile_table import RESIDUAL_QUANTILES
from prunebench.report.seed_quantiles import residual_table, seed_quantiles
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
    luck, resid = max(ms_seeds - ms_resid, 0) / 30, ms_resid / 30
    example = max(ms_examples - ms_resid, 0) / 120
    assert got.seed_var == pytest.approx(luck)
    assert got.resid_var == pytest.approx(resid)
    assert got.example_var == pytest.approx(example)
    assert got.var == pytest.approx(max(ms_seeds, ms_resid) / 120 + example)
    c_b, c_r = seed_quantiles(4, 0.05, 3 * 29)
    half = np.sqrt(c_b**2 * luck / 4 + c_r**2 * resid / 4 + stats.t.ppf(0.975, 29) ** 2 * example)
    low, high = got.interval(0.05)
    assert high - got.mean == pytest.approx(half)
    assert got.mean - low == pytest.approx(high - got.mean)
    assert got.half_width(got.p_value()) == pytest.approx(abs(got.mean), rel=1e-6)
    assert got.decides and "t(S-1)" in got.df_rule


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
    assert got.method == TEST_ONLY and not got.decides  # one seed never decides
    assert got.var == pytest.approx(0.9 * 0.1 * 100 / 99 / 100)  # sample variance / n
    low, high = got.interval(0.05)
    assert high - low == pytest.approx(2 * stats.t.ppf(0.975, 99) * np.sqrt(got.var))


def test_seeds_that_agree_exactly_still_get_the_test_set_noise():
    """Two seeds with the same accuracy difference: the floor keeps the interval honest."""
    d = np.zeros((2, 100))
    d[:, :3] = 1.0  # A right, B wrong on three examples...
    d[0, 3], d[1, 4] = 1.0, 1.0  # ...and on one more, a different one per seed
    got = crossed(d)
    assert d.mean(axis=1).var() == 0  # no spread over seeds
    _, _, ms_resid = anova_by_projection(d)
    assert got.seed_var == 0 and got.resid_var == pytest.approx(ms_resid / 100) and ms_resid > 0
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
    _low, high = got.interval(0.05)
    assert high - got.mean == pytest.approx(stats.t.ppf(0.975, 2) * np.sqrt(got.var))


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


def test_grouped_examples_are_summed_per_group_first():
    """Cluster-robust: the spread equals that of the S x G matrix of group sums (scaled)."""
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(8), [3, 5, 4, 4, 2, 6, 3, 5])
    y = rng.normal(size=(3, groups.size)) + rng.normal(size=(1, 8))[:, groups]
    got = crossed(y, groups=groups, unit="document")
    sums = np.stack([y[:, groups == g].sum(axis=1) for g in range(8)], axis=1) * 8 / groups.size
    by_hand = crossed(sums)
    assert (got.clusters, got.cluster_unit, got.examples) == (8, "document", groups.size)
    assert got.mean == pytest.approx(y.mean())
    assert (got.seed_var, got.resid_var, got.example_var) == (
        pytest.approx(by_hand.seed_var), pytest.approx(by_hand.resid_var),
        pytest.approx(by_hand.example_var))  # fmt: skip
    assert got.half_width(0.05) > crossed(y).half_width(0.05)  # 8 groups, not 32 examples
    assert crossed(y, groups=np.arange(groups.size)).clusters == 0  # one example per group


def test_stored_residual_quantiles_are_the_computed_ones():
    """seed_quantile_table.py holds what seed_quantiles._table computes (3 seeds checked)."""
    _, computed = residual_table(3)
    assert np.allclose(RESIDUAL_QUANTILES[3], computed, rtol=1e-5)
    # the residual quantile lies between z (no luck) and the luck quantile t(S-1)
    c_b, c_r = seed_quantiles(3, 0.05)
    assert stats.norm.ppf(0.975) < c_r < c_b
    c_b, c_r = seed_quantiles(40, 0.05)
    assert c_r < 2.1 and c_b == pytest.approx(stats.t.ppf(1 - 0.9 * 0.05 / 2, 39))
