"""The quantiles that keep an interval over few seeds honest however training noise splits.

A seed's mean varies by the training luck b (between seeds, estimated from S seeds: S-1
degrees of freedom) plus the residual noise r of which examples that seed gets wrong (estimated
from S x n cells: many degrees of freedom). With 2-3 seeds the plug-in Welch-Satterthwaite df
is anticonservative when luck and residual are of similar size, and the exact pivot (everything
with S-1 df; t(1) = 12.7 for two seeds) throws away the power that the well-known residual
gives. The half-width used here is

    half^2 = c_b^2 * b_hat / S + c_r^2 * r_hat / S       b_hat = max(MS_seeds - MS_resid, 0) / n

with c_b the t(S-1) quantile at 0.9 alpha and c_r the smallest value for which the chance of
excluding the truth is at most alpha for EVERY ratio of luck to residual (the supremum over
rho = sigma_b^2 / (sigma_r^2 / n) on a grid from 0 to 10^4, under the normal model, exact in W
= MS_seeds / E[MS_seeds] ~ chi2(S-1)/(S-1)). When luck dominates, the interval is a t(S-1)
interval; when the residual dominates, about a z interval, so top-1 accuracy with 2-3 seeds
keeps most of its power. Independent parts (the test set's own part, t with clusters-1 df)
are added as Banerjee (1960) did for the Behrens-Fisher problem: sqrt(sum q_k^2 v_k), which is
conservative. Checked by simulation in tests/report/test_report_calibration.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special, stats

from prunebench.report.seed_quantile_table import RESIDUAL_QUANTILES
from prunebench.report.seed_quantile_table import __doc__ as TABLE_DOC

SEED_SHARE = 0.9  # of alpha, for the luck part's t quantile
LOG_ALPHAS = np.linspace(-8.0, 0.0, 81)  # log10 alpha grid of the tables
_RHO = np.concatenate([[0.0], np.logspace(-2, 4, 30)])
_U_EDGES = special.expit(np.linspace(-17, 17, 401))
_U = (_U_EDGES[1:] + _U_EDGES[:-1]) / 2
_WEIGHTS = np.diff(_U_EDGES)

DF_RULE = (
    "luck between seeds: t(S-1); residual noise per seed: a quantile that holds for every "
    "split of luck and residual; test set: t(clusters-1); parts added as Banerjee (1960)"
)


def _worst_error(seeds: int, c_b: np.ndarray, c_r: np.ndarray) -> np.ndarray:
    """Per alpha, the largest chance over rho that |Z| exceeds the half-width."""
    w = stats.chi2.ppf(_U, seeds - 1) / (seeds - 1)  # (W,)
    rho = _RHO[:, None]
    between = np.maximum((rho + 1) * w - 1.0, 0.0)  # b_hat / (sigma_r^2 / n), per (rho, W)
    threshold = np.sqrt(
        (c_b[:, None, None] ** 2 * between + c_r[:, None, None] ** 2) / (rho + 1)
    )  # (alpha, rho, W)
    return (2 * special.ndtr(-threshold) @ _WEIGHTS).max(axis=-1)


@lru_cache(maxsize=64)
def residual_table(seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """(c_b, c_r) on LOG_ALPHAS for S seeds, residual with infinite df."""
    alpha = 10.0**LOG_ALPHAS
    c_b = stats.t.ppf(1 - SEED_SHARE * alpha / 2, seeds - 1)
    low, high = stats.norm.ppf(1 - alpha / 2), c_b.copy()
    for _ in range(24):  # bisection, all alphas at once
        mid = (low + high) / 2
        ok = _worst_error(seeds, c_b, mid) <= alpha
        high, low = np.where(ok, mid, high), np.where(ok, low, mid)
    return c_b, high


def seed_quantiles(seeds, alpha, resid_df=np.inf) -> tuple[np.ndarray, np.ndarray]:
    """(c_b, c_r) for S seeds (>= 2; an int) and alpha (scalar or array); the residual's
    quantile is widened by t(resid_df) / z where its own estimate has few df (clusters)."""
    alpha = np.clip(np.asarray(alpha, dtype=float), 10.0 ** LOG_ALPHAS[0], 1.0)
    stored = RESIDUAL_QUANTILES.get(int(seeds))
    c_r_table = np.asarray(stored) if stored is not None else residual_table(int(seeds))[1]
    x = np.log10(alpha)
    c_b = stats.t.ppf(1 - SEED_SHARE * alpha / 2, seeds - 1)
    c_r = np.interp(x, LOG_ALPHAS, c_r_table)
    widen = stats.t.ppf(1 - alpha / 2, resid_df) / stats.norm.ppf(1 - alpha / 2)
    return c_b, c_r * np.where(np.isfinite(widen), widen, 1.0)


def table_module() -> str:
    """The text of seed_quantile_table.py (2-40 seeds), computed afresh."""
    rows = "\n".join(
        f"    {s}: ({', '.join(f'{x:.6g}' for x in residual_table(s)[1])})," for s in range(2, 41)
    )
    return f'"""{TABLE_DOC}"""\n\n# fmt: off\nRESIDUAL_QUANTILES = {{\n{rows}\n}}\n# fmt: on\n'


if __name__ == "__main__":
    print(table_module(), end="")
