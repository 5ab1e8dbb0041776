"""How uncertain a mean over seeds and test examples is: crossed variance components.

A result (one regime, or the paired difference of two) is a matrix y of S seeds x n test
examples. Every seed is evaluated on the same test split (`data.split_seed`), so examples are
crossed with seeds: y_si = mu + a_i + b_s + e_si, and the grand mean has

    Var = s_a^2 / n  +  (s_b^2 + s_e^2 / n) / S
          test set      seeds (training noise, and which examples each seed gets wrong)

More seeds shrink only the second term; only a larger test set shrinks the first. Both are
estimated from the two-way ANOVA mean squares (MS_seeds with S-1 degrees of freedom,
MS_examples with n-1, MS_residual with (S-1)(n-1)):

    seed part     max(MS_seeds, MS_residual) / (n S)     t with S-1 df
    example part  max(MS_examples - MS_residual, 0) / (n S)

The seed part is floored at what sampling alone must give (a seed's mean cannot vary less than
its own test-set noise), so two seeds that happen to agree exactly do not produce a zero-width
interval; it keeps its S-1 degrees of freedom, so the interval stays valid however the noise
splits between seeds and examples (checked by simulation in tests/test_report_calibration.py).
The two parts are combined with Welch-Satterthwaite degrees of freedom.

Without per-example outcomes (databases from before they were stored) only per-seed values
exist: the t interval over seeds (test-set noise enters only through them; seeds that agree
exactly give none). With one seed and outcomes: test-set noise only; one seed and no outcomes:
no interval at all.

Everything is vectorised over leading axes, so that calibration can simulate thousands of
comparisons in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

# What each estimate can and cannot claim, printed by the report and `prunebench advise`.
CROSSED = "seeds x test examples"
TEST_ONLY = "test examples only (one seed)"
SEEDS_ONLY = "seeds only (no per-example outcomes)"
NESTED = "seeds, each with its own test examples"
NONE = "no interval (one seed, no per-example outcomes)"
CAVEATS = {
    CROSSED: "",
    TEST_ONLY: "one seed: the interval holds test-set noise only, not training noise; "
    "another seed may change this verdict",
    SEEDS_ONLY: "no per-example outcomes stored: test-set noise enters only through the "
    "seeds' spread, and seeds that agree exactly give no interval",
    NESTED: "",
    NONE: "one seed and no per-example outcomes: no interval, so no verdict",
}


@dataclass(frozen=True)
class Spread:
    """An estimate with its variance split into a part per seed and a fixed test-set part."""

    mean: np.ndarray | float
    seed_var: np.ndarray | float  # variance of one seed's mean (shrinks as 1/S)
    example_var: np.ndarray | float  # test-set part of Var(mean): does not shrink with seeds
    seeds: int
    examples: int  # 0 when there are no per-example outcomes
    method: str

    @property
    def var(self) -> np.ndarray | float:
        return self.seed_var / self.seeds + self.example_var

    def projected_var(self, seeds: int) -> np.ndarray | float:
        """The variance with `seeds` seeds, the components as estimated now."""
        return self.seed_var / seeds + self.example_var

    def df(self, seeds=None) -> np.ndarray | float:
        """Welch-Satterthwaite degrees of freedom (infinite where the variance is zero).
        `seeds` (an int or an array of them) projects to other seed counts."""
        seeds = np.asarray(self.seeds if seeds is None else seeds)
        seed_part = np.asarray(self.seed_var / seeds, dtype=float)
        example_part = np.asarray(self.example_var, dtype=float)
        total = seed_part + example_part
        # one seed with outcomes: the per-example variance is all there is (n-1 df)
        seed_df = np.where(seeds > 1, seeds - 1, self.examples - 1).astype(float)
        seed_df[seed_df < 1] = np.nan
        example_df = max(self.examples - 1, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = total**2 / (seed_part**2 / seed_df + example_part**2 / example_df)
        return _scalar(np.where(total == 0, np.inf, df))

    def quantile(self, alpha: np.ndarray | float, seeds: int | None = None):
        """The two-sided (1 - alpha) t quantile."""
        return _scalar(stats.t.ppf(1 - np.asarray(alpha) / 2, self.df(seeds)))

    def interval(self, alpha: np.ndarray | float = 0.05) -> tuple:
        """(low, high) of the (1 - alpha) confidence interval; NaN where none exists."""
        half = self.quantile(alpha) * np.sqrt(self.var)
        half = np.where(np.asarray(self.var) == 0, 0.0, half)
        return _scalar(self.mean - half), _scalar(self.mean + half)

    def p_value(self) -> np.ndarray | float:
        """Two-sided p-value of 'the mean is zero'."""
        var = np.asarray(self.var, dtype=float)
        mean = np.asarray(self.mean, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.abs(mean) / np.sqrt(var)
        p = 2 * stats.t.sf(t, self.df())
        p = np.where(var == 0, np.where(mean == 0, 1.0, 0.0), p)
        return _scalar(np.where(np.isnan(var), np.nan, p))


def _scalar(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def one_example_floor(cells: int) -> float:
    """The least variance a mean of N right/wrong outcomes (or their paired differences) can
    be given: Agresti & Min's half a count in each discordant cell, (1 / (N + 2))^2. Without
    it, two models that agree on every test image would be 'exactly equal'."""
    return 1.0 / (cells + 2) ** 2


def crossed(y: np.ndarray, floor: float = 0.0) -> Spread:
    """The spread of the grand mean of y (..., S seeds, n examples) as described above;
    `floor`: the least variance of that mean (added to the seed part)."""
    y = np.asarray(y, dtype=float)
    seeds, n = y.shape[-2:]
    rows, cols = y.mean(axis=-1), y.mean(axis=-2)
    grand = rows.mean(axis=-1)
    if seeds == 1:
        var = y[..., 0, :].var(axis=-1, ddof=1) if n > 1 else np.full_like(grand, np.nan)
        var = np.maximum(var / n, floor)
        return Spread(_scalar(grand), _scalar(var), 0.0, 1, n, TEST_ONLY)
    if n == 1:
        return seeds_only(y[..., 0])
    ss_seeds = n * ((rows - grand[..., None]) ** 2).sum(axis=-1)
    ss_examples = seeds * ((cols - grand[..., None]) ** 2).sum(axis=-1)
    ss_total = ((y - grand[..., None, None]) ** 2).sum(axis=(-2, -1))
    ss_resid = np.maximum(ss_total - ss_seeds - ss_examples, 0.0)
    ms_seeds = ss_seeds / (seeds - 1)
    ms_examples = ss_examples / (n - 1)
    ms_resid = ss_resid / ((seeds - 1) * (n - 1))
    seed_var = np.maximum(np.maximum(ms_seeds, ms_resid) / n, floor * seeds)
    example_var = np.maximum(ms_examples - ms_resid, 0.0) / (n * seeds)
    return Spread(_scalar(grand), _scalar(seed_var), _scalar(example_var), seeds, n, CROSSED)


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
