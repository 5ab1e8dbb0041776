"""Significance across seeds: Welch's two-sided t-test and the confidence interval it implies.

Runs of different regimes with the same seed share nothing that pairs them (the seed only
drives pruning and fine-tuning noise), so the samples are treated as independent with possibly
different variances — Welch's test, not Student's and not a paired test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _scipy_stats

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """A minus B. `p` is NaN when the test is undefined (fewer than two seeds, or no spread)."""

    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    diff: float
    t: float
    df: float
    p: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def testable(self) -> bool:
        return not math.isnan(self.p)

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.testable and self.p < alpha


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan
    return mean, var


def welch(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Comparison:
    """Welch's t-test of mean(a) - mean(b) with the Welch–Satterthwaite degrees of freedom."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        raise ValueError("welch needs at least one value on each side")
    (mean_a, var_a), (mean_b, var_b) = _mean_var(a), _mean_var(b)
    diff = mean_a - mean_b
    nan = math.nan
    if len(a) < 2 or len(b) < 2:
        return Comparison(mean_a, mean_b, len(a), len(b), diff, nan, nan, nan, nan, nan, confidence)
    se_a, se_b = var_a / len(a), var_b / len(b)
    se2 = se_a + se_b
    if se2 == 0.0:
        return Comparison(mean_a, mean_b, len(a), len(b), diff, nan, nan, nan, nan, nan, confidence)
    df = se2**2 / (se_a**2 / (len(a) - 1) + se_b**2 / (len(b) - 1))
    t = diff / math.sqrt(se2)
    p = float(2.0 * _scipy_stats.t.sf(abs(t), df))
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, df)) * math.sqrt(se2)
    return Comparison(
        mean_a, mean_b, len(a), len(b), diff, t, df, p, diff - half, diff + half, confidence
    )
