"""Simulated comparisons with a known truth: how often each method says "better" or "equivalent".

Per-example top-1 outcomes of two regimes A and B are drawn for `sims` independent
comparisons, each with `seeds` seeds and one test split of `examples` examples shared by all
seeds and both regimes (as prunebench runs share `data.split_seed`). Example i is correct with
probability sigmoid(L_i + v_ri + u_rs + shift_r):

    L_i    the example's difficulty, shared by every seed and regime
    v_ri   how regime r fares on example i beyond its difficulty (a test-set effect: with a
           finite test set, two equally good regimes still differ on it)
    u_rs   regime r's training luck with seed s
    shift  A's true advantage (0 under the null)

Both methods see the same draws: the report's (candidates.outcome_spread on the paired
per-example differences, verdicts.classify) and the old one (Welch's test over per-seed accuracies; with no
spread to test, the better mean counted as better, as the old claims check did). Used by
tests/test_report_calibration.py and benchmarks/verdicts.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from prunebench.report.candidates import outcome_spread
from prunebench.report.verdicts import A_BETTER, B_BETTER, classify


@dataclass(frozen=True)
class Scenario:
    seeds: int = 3
    examples: int = 360
    accuracy_logit: float = 3.5  # a typical example is right ~97 % of the time
    difficulty_sd: float = 1.5
    example_sd: float = 0.5
    seed_sd: float = 0.2


def draw(rng: np.random.Generator, sc: Scenario, sims: int, shift: float = 0.0):
    """(a, b): bool arrays (sims, seeds, examples) of top-1 correct."""
    shape = (sims, 1, sc.examples)
    base = sc.accuracy_logit + sc.difficulty_sd * rng.standard_normal(shape)

    def regime(offset: float) -> np.ndarray:
        logit = (
            base
            + sc.example_sd * rng.standard_normal(shape)
            + sc.seed_sd * rng.standard_normal((sims, sc.seeds, 1))
            + offset
        )
        return rng.random((sims, sc.seeds, sc.examples)) < special.expit(logit)

    return regime(shift), regime(0.0)


def true_difference(sc: Scenario, shift: float, draws: int = 400_000, seed: int = 7) -> float:
    """E[accuracy_A - accuracy_B] for a shift (Monte Carlo over the latent effects)."""
    rng = np.random.default_rng(seed)
    n = draws
    common = sc.accuracy_logit + sc.difficulty_sd * rng.standard_normal(n)
    noise = np.hypot(sc.example_sd, sc.seed_sd) * rng.standard_normal((2, n))
    return float(
        np.mean(special.expit(common + noise[0] + shift) - special.expit(common + noise[1]))
    )


def shift_for(sc: Scenario, difference: float) -> float:
    """The logit shift that gives A a true advantage of `difference` (accuracy fraction)."""
    if difference == 0:
        return 0.0
    return float(optimize.brentq(lambda s: true_difference(sc, s) - difference, -10, 10, xtol=1e-6))


def null_se(rng: np.random.Generator, sc: Scenario, sims: int = 4000) -> float:
    """The true standard error of the mean paired difference: its spread over null draws."""
    a, b = draw(rng, sc, sims)
    return float((a.mean(axis=(1, 2)) - b.mean(axis=(1, 2))).std(ddof=1))


def new_method(a: np.ndarray, b: np.ndarray, alpha: float, margin: float) -> np.ndarray:
    """The report's verdicts: paired over seeds and examples, one comparison at a time."""
    spread = outcome_spread(a.astype(float) - b.astype(float), binary=True)
    low, high = spread.interval(alpha)
    return np.asarray(classify(spread.mean, low, high, margin))


def old_method(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """The old report: Welch over per-seed accuracies; untestable -> the better mean wins."""
    acc_a, acc_b = a.mean(axis=-1), b.mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = stats.ttest_ind(acc_a, acc_b, axis=-1, equal_var=False).pvalue
    diff = acc_a.mean(axis=-1) - acc_b.mean(axis=-1)
    decided = np.where(np.isnan(p), diff != 0, p < alpha)
    return np.where(decided, np.where(diff > 0, A_BETTER, B_BETTER), "tied")


def rate(verdicts: np.ndarray, *outcomes: str) -> float:
    return float(np.isin(verdicts, outcomes).mean())
