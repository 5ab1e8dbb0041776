"""Group-sequential boundaries: how much of alpha each look at s seeds may spend, computed exactly.

Looks happen at s = S_1 < S_2 < ... <= K seeds. The estimate after s seeds is the mean of s
per-seed parts plus the test-set part that every seed shares, so its z-statistics Z_s are
jointly normal with corr(Z_i, Z_j) = sqrt(I_i / I_j), I_s = 1 / Var(estimate at s seeds): the
canonical joint distribution of Jennison & Turnbull (2000, ch. 3). The boundaries here take
the information fractions t_s = s / K (no shared test-set part); a test-set part makes the
looks MORE correlated (I_i / I_j >= i / j), and by Slepian's inequality more correlation only
lowers the chance of crossing a one-sided boundary at any look, so they stay conservative.

The cumulative alpha spent by the look at fraction t is alpha t^RHO (the power family of Kim &
DeMets 1987; RHO = 3 is close to O'Brien & Fleming's shape), and the two-sided boundary c_s of each
look solves P(no earlier crossing, |Z_s| >= c_s) = alpha(t_s) - alpha(t_{s-1}) by the recursive
numerical integration of Armitage, McPherson & Rowe (1969) (Simpson's rule on the continuation
region, Jennison & Turnbull ch. 19). RHO = 4 keeps alpha for the looks that can use it: the
intervals of 2-3 seeds are wide whatever their level (luck between seeds has 1-2 degrees of
freedom), so alpha they spend buys few decisions and costs the later looks power (RHO 2, 3, 4,
6 and O'Brien-Fleming compared in docs/benchmarks.md, "sequential"). A look at one seed
decides nothing (verdicts.py) and so spends nothing; its share is carried to the next look. The
look's *nominal* level 2 (1 - Phi(c_s)) is then the level of the report's fixed-sample interval
at that look (the "significance level approach" of Jennison & Turnbull, sec. 3.8, for
statistics whose variance is estimated).

Nominal levels are tabled once per (first look, K) on a grid of total alphas (the log10 grid of
seed_quantiles.py) and interpolated in log-log; `sequential_p` inverts the table (the smallest
total alpha at which a look would reject), which Holm's step-down uses to order comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from prunebench.report.seed_quantiles import LOG_ALPHAS

_POINTS = 201  # Simpson nodes over a continuation region (odd)
_FAR = 12.0  # standard deviations: a boundary that spends nothing
RHO = 4.0  # the power family's exponent (3 is about O'Brien-Fleming's shape)


def spent(alpha: float, fraction):
    """Cumulative two-sided alpha spent by information fraction t: alpha t^RHO."""
    return alpha * np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0) ** RHO


def obrien_fleming(alpha: float, fraction):
    """Lan & DeMets' (1983) O'Brien-Fleming-type spending, 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))
    (for comparison with published boundaries)."""
    t = np.maximum(np.asarray(fraction, dtype=float), 1e-12)
    return 2.0 * special.ndtr(-special.ndtri(1.0 - alpha / 2.0) / np.sqrt(t))


def _pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def _simpson(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(low, high, _POINTS)
    w = np.ones(_POINTS)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, w * (high - low) / (3.0 * (_POINTS - 1))


def _crossing(b: float, t: float, region) -> float:
    """P(no earlier crossing, |S_t| >= b); region: (nodes, weights, density, t) of the
    previous look's continuation region (None at the first look)."""
    if region is None:
        return 2.0 * special.ndtr(-b / np.sqrt(t))
    x, w, density, previous_t = region
    sd = np.sqrt(t - previous_t)
    tails = special.ndtr((-b - x) / sd) + special.ndtr((x - b) / sd)
    return float(np.sum(w * density * tails))


def boundaries(spend: Callable[[float], float], fractions: tuple[float, ...]) -> np.ndarray:
    """Two-sided z boundaries c_k at increasing information fractions (the last is 1) that
    spend `spend(t)` (cumulative) by fraction t; +inf where a look spends nothing."""
    out = np.full(len(fractions), np.inf)
    region = None  # the score S_k = Z_k sqrt(t_k) on the continuation region
    total = 0.0
    for k, t in enumerate(fractions):
        target = float(spend(t)) - total
        far = _FAR * np.sqrt(t)
        b = far
        if target > 1e-15 and _crossing(far, t, region) < target:
            b = optimize.brentq(
                lambda b, t=t, r=region, a=target: _crossing(b, t, r) - a, 1e-9, far, xtol=1e-10
            )
            out[k] = b / np.sqrt(t)
            total += _crossing(b, t, region)
        x, w = _simpson(-b, b)
        if region is None:
            density = _pdf(x / np.sqrt(t)) / np.sqrt(t)
        else:
            sd = np.sqrt(t - region[3])
            kernel = _pdf((x[:, None] - region[0][None, :]) / sd) / sd
            density = kernel @ (region[1] * region[2])
        region = (x, w, density, t)
    return out


def look_seeds(first: int, most: int) -> tuple[int, ...]:
    """The seed counts of the looks that may decide: the first round's (at least 2) .. K."""
    return tuple(range(max(first, 2), most + 1))


@lru_cache(maxsize=32)
def nominal_table(first: int, most: int) -> np.ndarray:
    """log10 nominal level, (looks, LOG_ALPHAS): per decisive look, per total alpha."""
    seeds = look_seeds(first, most)
    fractions = tuple(s / most for s in seeds)
    table = np.empty((len(seeds), LOG_ALPHAS.size))
    for j, log_alpha in enumerate(LOG_ALPHAS):
        alpha = min(10.0**log_alpha, 0.999)
        c = boundaries(lambda t, alpha=alpha: spent(alpha, t), fractions)
        table[:, j] = np.log10(np.maximum(2.0 * special.ndtr(-c), 1e-300))
    return table


def nominal(first: int, most: int, seeds: int, alpha):
    """The nominal (fixed-sample) level of the look at `seeds` seeds when the whole design
    spends `alpha` (scalar or array); 0 for a look that decides nothing."""
    alpha = np.asarray(alpha, dtype=float)
    looks = look_seeds(first, most)
    if seeds not in looks:
        return np.zeros(alpha.shape) if alpha.ndim else 0.0
    row = nominal_table(first, most)[looks.index(seeds)]
    x = np.log10(np.clip(alpha, 10.0 ** LOG_ALPHAS[0], 1.0))
    level = 10.0 ** np.interp(x, LOG_ALPHAS, row)
    level = np.where(alpha > 0, np.minimum(level, alpha), 0.0)
    return float(level) if level.ndim == 0 else level


def sequential_p(first: int, most: int, seeds: int, p):
    """The smallest total alpha at which the look at `seeds` seeds rejects a fixed-sample
    p-value `p` (1 where that look decides nothing); NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    looks = look_seeds(first, most)
    if seeds not in looks:
        return np.where(np.isnan(p), np.nan, 1.0)
    row = nominal_table(first, most)[looks.index(seeds)]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log10(np.maximum(p, 1e-300))
    keep = row > -299  # levels that the look reaches (monotone in alpha)
    out = 10.0 ** np.interp(x, row[keep], LOG_ALPHAS[keep], left=LOG_ALPHAS[0], right=0.0)
    out = np.where(np.isnan(p), np.nan, np.maximum(out, p))
    return float(out) if out.ndim == 0 else out
