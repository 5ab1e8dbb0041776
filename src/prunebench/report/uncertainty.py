"""How uncertain a mean over seeds and test examples is: crossed variance components.

A result (one regime, or the paired difference of two) is a matrix y of S seeds x n test
examples. Every seed is evaluated on the same test split (`data.split_seed`), so examples are
crossed with seeds: y_si = mu + a_i + b_s + e_si, and the grand mean has

    Var = s_a^2 / n  +  (s_b^2 + s_e^2 / n) / S
          test set      seeds: luck (b) and residual noise (e, which examples a seed gets wrong)

More seeds shrink only the second term; only a larger test set shrinks the first. All three
parts are estimated from the two-way ANOVA mean squares (MS_seeds with S-1 degrees of freedom,
MS_examples with n-1, MS_residual with (S-1)(n-1)):

    luck      max(MS_seeds - MS_residual, 0) / n      per seed, t(S-1)
    residual  MS_residual / n                           per seed, many df
    test set  max(MS_examples - MS_residual, 0) / (n S)

and the interval adds them with quantiles that hold however luck and residual split
(seed_quantiles.py). Where test examples come in groups (the documents language-model sequences
are cut from, or a group column of the data), the examples are first summed per group, so that
every part is cluster-robust and the test set's part has groups-1 df.

One seed shows no training noise: its interval (test examples only) is printed, but it never
decides. Without per-example outcomes (databases from before they were stored; top-5) only
per-seed values exist, and the shared test set's noise cannot be estimated: their interval over
seeds is printed, and it never decides either.

Everything is vectorised over leading axes, so that calibration can simulate thousands of
comparisons in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from prunebench.report.seed_quantiles import DF_RULE, seed_quantiles

# What each estimate can and cannot claim, printed by the report and `prunebench advise`.
CROSSED = "seeds x test examples"
TEST_ONLY = "test examples only (one seed)"
SEEDS_ONLY = "seeds only (no per-example outcomes)"
NESTED = "seeds, each with its own test examples"
NONE = "no interval (one seed, no per-example outcomes)"
CAVEATS = {
    CROSSED: "",
    TEST_ONLY: "one seed: training noise unknown, so no verdict (the interval holds test-set "
    "noise only); a decision needs at least 2 seeds",
    SEEDS_ONLY: "no per-example outcomes stored: the interval over seeds leaves out the noise "
    "of the test set that every seed shares, so no verdict is drawn from it",
    NESTED: "",
    NONE: "one seed and no per-example outcomes: no interval, so no verdict",
}
DECIDES = (CROSSED, NESTED)  # the methods whose intervals may give a verdict
EXAMPLE = "test example"
_P_STEPS = 40


@dataclass(frozen=True)
class Spread:
    """An estimate with its variance split into luck and residual per seed and a test-set part."""

    mean: np.ndarray | float
    seed_var: np.ndarray | float  # luck: variance of one seed's mean beyond its residual
    example_var: np.ndarray | float  # test-set part of Var(mean): does not shrink with seeds
    seeds: int
    examples: int  # 0 when there are no per-example outcomes
    method: str
    resid_var: np.ndarray | float = 0.0  # residual noise of one seed's mean (shrinks as 1/S)
    clusters: int = 0  # independent units of the test set (0: the examples themselves)
    cluster_unit: str = EXAMPLE

    @property
    def units(self) -> int:
        return self.clusters or self.examples

    @property
    def var(self) -> np.ndarray | float:
        return (self.seed_var + self.resid_var) / self.seeds + self.example_var

    def projected_var(self, seeds) -> np.ndarray | float:
        """The variance with `seeds` seeds, the components as estimated now."""
        return (self.seed_var + self.resid_var) / np.asarray(seeds) + self.example_var

    def half_width(self, alpha, seeds: int | None = None):
        """Half the (1 - alpha) interval; `seeds` projects to another seed count (the
        components as estimated now)."""
        alpha = np.asarray(alpha, dtype=float)
        s = self.seeds if seeds is None else int(seeds)
        example_df = max(self.units - 1, 1)
        q_example = stats.t.ppf(1 - alpha / 2, example_df)
        total = q_example**2 * np.asarray(self.example_var, dtype=float)
        if s > 1 and self.method in (CROSSED, NESTED, SEEDS_ONLY):
            resid_df = (s - 1) * max(self.units - 1, 1) if self.method == CROSSED else np.inf
            c_b, c_r = seed_quantiles(s, alpha, resid_df)
            if self.method != CROSSED:  # no residual estimate: the exact t over seeds
                c_b = stats.t.ppf(1 - alpha / 2, s - 1)
            total = total + (c_b**2 * self.seed_var + c_r**2 * self.resid_var) / s
        elif s <= 1 and self.method != TEST_ONLY:
            total = total + np.nan
        return _scalar(np.sqrt(total))

    def interval(self, alpha: np.ndarray | float = 0.05) -> tuple:
        """(low, high) of the (1 - alpha) confidence interval; NaN where none exists."""
        half = self.half_width(alpha)
        return _scalar(self.mean - half), _scalar(self.mean + half)

    def p_value(self) -> np.ndarray | float:
        """Two-sided p-value of 'the mean is zero': the alpha at which the interval touches 0
        (bisection on log alpha, vectorised)."""
        mean = np.abs(np.asarray(self.mean, dtype=float))
        var = np.asarray(self.var, dtype=float)
        low, high = np.full(mean.shape, -12.0), np.zeros(mean.shape)  # log10 alpha
        for _ in range(_P_STEPS):
            mid = (low + high) / 2
            excludes = np.asarray(self.half_width(10.0**mid)) < mean
            high, low = np.where(excludes, mid, high), np.where(excludes, low, mid)
        p = 10.0**high
        p = np.where(var == 0, np.where(mean == 0, 1.0, 0.0), p)
        return _scalar(np.where(np.isnan(var), np.nan, p))

    @property
    def decides(self) -> bool:
        """Whether this interval may give a verdict: two seeds or more, and the test set's
        noise measured (per-example outcomes, or test sets of their own per seed)."""
        return self.seeds >= 2 and self.method in DECIDES

    @property
    def df_rule(self) -> str:
        if self.method == CROSSED:
            return DF_RULE
        if self.method == TEST_ONLY:
            return f"t({max(self.units - 1, 1)}) over test {self.cluster_unit}s"
        return f"t({self.seeds - 1}) over seeds" if self.seeds > 1 else "none"


def _scalar(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def one_example_floor(cells: int) -> float:
    """The least variance a mean of N right/wrong outcomes (or their paired differences) can
    be given: Agresti & Min's half a count in each discordant cell, (1 / (N + 2))^2. Without
    it, two models that agree on every test image would be 'exactly equal'."""
    return 1.0 / (cells + 2) ** 2


def clustered(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """y (..., S, n) summed per group and scaled by groups / n: (..., S, G) whose grand mean
    is y's; groups: an int label per example."""
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    y = np.asarray(y, dtype=float)
    return (y @ np.eye(labels.size)[index]) * labels.size / y.shape[-1]


def crossed(
    y: np.ndarray, floor: float = 0.0, groups: np.ndarray | None = None, unit: str = "group"
) -> Spread:
    """The spread of the grand mean of y (..., S seeds, n examples) as described above;
    `floor`: the least variance of that mean (added to the residual part); `groups`: a label
    per example where examples come in groups (`unit` names them)."""
    y = np.asarray(y, dtype=float)
    n_examples = y.shape[-1]
    clusters, cluster_unit = 0, EXAMPLE
    if groups is not None and np.unique(groups).size < n_examples:
        y = clustered(y, groups)
        clusters, cluster_unit = y.shape[-1], unit
    seeds, n = y.shape[-2:]
    rows, cols = y.mean(axis=-1), y.mean(axis=-2)
    grand = rows.mean(axis=-1)
    extra = {"clusters": clusters, "cluster_unit": cluster_unit}
    if seeds == 1:
        var = y[..., 0, :].var(axis=-1, ddof=1) if n > 1 else np.full_like(grand, np.nan)
        var = np.maximum(var / n, floor)
        return Spread(_scalar(grand), 0.0, _scalar(var), 1, n_examples, TEST_ONLY, **extra)
    if n == 1:
        return seeds_only(y[..., 0])
    ss_seeds = n * ((rows - grand[..., None]) ** 2).sum(axis=-1)
    ss_examples = seeds * ((cols - grand[..., None]) ** 2).sum(axis=-1)
    ss_total = ((y - grand[..., None, None]) ** 2).sum(axis=(-2, -1))
    ss_resid = np.maximum(ss_total - ss_seeds - ss_examples, 0.0)
    ms_seeds = ss_seeds / (seeds - 1)
    ms_examples = ss_examples / (n - 1)
    ms_resid = ss_resid / ((seeds - 1) * (n - 1))
    luck = np.maximum(ms_seeds - ms_resid, 0.0) / n
    resid = np.maximum(ms_resid / n, floor * seeds)
    example_var = np.maximum(ms_examples - ms_resid, 0.0) / (n * seeds)
    return Spread(_scalar(grand), _scalar(luck), _scalar(example_var), seeds, n_examples,
                  CROSSED, _scalar(resid), **extra)  # fmt: skip


def seeds_only(values: np.ndarray) -> Spread:
    """The t interval over per-seed values (..., S): all there is without outcomes."""
    values = np.asarray(values, dtype=float)
    seeds = values.shape[-1]
    mean = values.mean(axis=-1)
    if seeds < 2:
        nan = np.full_like(mean, np.nan)
        return Spread(_scalar(mean), _scalar(nan), 0.0, seeds, 0, NONE)
    # Seeds that agree exactly (discrete accuracies) do not show zero noise: no interval.
    var = values.var(axis=-1, ddof=1)
    return Spread(_scalar(mean), _scalar(np.where(var == 0, np.nan, var)), 0.0, seeds, 0,
                  SEEDS_ONLY)  # fmt: skip


def nested(per_seed: list[np.ndarray], floor: float = 0.0) -> Spread:
    """Seeds whose test sets differ in size (a varied split): seeds-level t interval with the
    seed variance floored at the mean within-seed sampling variance (and at `floor` x S)."""
    means = np.array([v.mean() for v in per_seed])
    if len(per_seed) == 1:
        return crossed(per_seed[0][None, :], floor)
    within = np.mean([v.var(ddof=1) / v.size for v in per_seed])
    seed_var = max(float(means.var(ddof=1)), float(within), floor * len(per_seed))
    n = min(v.size for v in per_seed)
    return Spread(float(means.mean()), seed_var, 0.0, len(per_seed), n, NESTED)
