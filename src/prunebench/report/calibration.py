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

With `clusters`, examples come in that many equal groups (documents, or images of one scene)
that share part of their difficulty and of each regime's effect (cluster_sd). With
outcome="nll", the outcome is continuous (a per-sequence negative log-likelihood, lower is
better; A's advantage is then B's minus A's): y = L_i + v_ri + u_rs + noise - shift.

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
from prunebench.report.sequential import Design, futile
from prunebench.report.verdicts import A_BETTER, B_BETTER, INCONCLUSIVE, classify


@dataclass(frozen=True)
class Scenario:
    seeds: int = 3
    examples: int = 360
    accuracy_logit: float = 3.5  # a typical example is right ~97 % of the time
    difficulty_sd: float = 1.5
    example_sd: float = 0.5
    seed_sd: float = 0.2
    clusters: int = 0  # 0: independent examples
    cluster_sd: float = 0.0
    outcome: str = "correct"  # or "nll"
    noise_sd: float = 1.0  # nll: per-seed, per-example noise


# The settings a user meets, each with no true difference: the benchmark and the calibration
# tests check that none says "better" more often than alpha.
SETTINGS = {
    "1 seed, training noise": Scenario(seeds=1),
    "2 seeds": Scenario(seeds=2),
    "2 seeds, 99 % accuracy (the demo)": Scenario(seeds=2, accuracy_logit=5.5),
    "3 seeds": Scenario(seeds=3),
    "5 seeds": Scenario(seeds=5),
    "10 seeds": Scenario(seeds=10),
    "5 seeds, strong seed noise": Scenario(seeds=5, seed_sd=0.8),
    "10 seeds, strong test-set effects": Scenario(seeds=10, example_sd=1.0),
    "perplexity, 2 seeds": Scenario(seeds=2, examples=200, outcome="nll", seed_sd=0.1),
    "perplexity, 3 seeds": Scenario(seeds=3, examples=200, outcome="nll", seed_sd=0.1),
    "perplexity, 5 seeds": Scenario(seeds=5, examples=200, outcome="nll", seed_sd=0.1),
    "systematic per-example differences, 2 seeds": Scenario(
        seeds=2, accuracy_logit=6.0, difficulty_sd=4.0, example_sd=2.0, seed_sd=0.1
    ),
    "systematic per-example differences, 3 seeds": Scenario(
        seeds=3, accuracy_logit=6.0, difficulty_sd=4.0, example_sd=2.0, seed_sd=0.1
    ),
    "clustered images (30 scenes), 3 seeds": Scenario(seeds=3, clusters=30, cluster_sd=0.8),
    "documents (20 x 7 sequences), 3 seeds": Scenario(
        seeds=3, examples=140, outcome="nll", clusters=20, cluster_sd=1.0, seed_sd=0.02
    ),
}


def groups(sc: Scenario) -> np.ndarray | None:
    """The group label of each example (None without clusters)."""
    return None if not sc.clusters else np.arange(sc.examples) * sc.clusters // sc.examples


def _shared(rng: np.random.Generator, sc: Scenario, sims: int, sd: float) -> np.ndarray:
    """(sims, 1, examples) effects: per example, plus per cluster where there are clusters."""
    effect = sd * rng.standard_normal((sims, 1, sc.examples))
    if sc.clusters:
        per_cluster = sc.cluster_sd * rng.standard_normal((sims, 1, sc.clusters))
        effect = effect + per_cluster[..., groups(sc)]
    return effect


def draw(rng: np.random.Generator, sc: Scenario, sims: int, shift: float = 0.0):
    """(a, b): arrays (sims, seeds, examples): top-1 correct (bool) or NLL (float)."""
    return tuple(_regimes(rng, sc, sims, [shift, 0.0]))


def _regimes(rng: np.random.Generator, sc: Scenario, sims: int, offsets: list[float]):
    base = sc.accuracy_logit + _shared(rng, sc, sims, sc.difficulty_sd)

    def regime(offset: float) -> np.ndarray:
        latent = (
            base
            + _shared(rng, sc, sims, sc.example_sd)
            + sc.seed_sd * rng.standard_normal((sims, sc.seeds, 1))
        )
        if sc.outcome == "nll":
            noise = sc.noise_sd * rng.standard_normal((sims, sc.seeds, sc.examples))
            return latent + noise - offset
        return rng.random((sims, sc.seeds, sc.examples)) < special.expit(latent + offset)

    return [regime(offset) for offset in offsets]


def draw_variants(rng: np.random.Generator, sc: Scenario, sims: int, variants: int):
    """(list of `variants` arrays of regime A's variants, b): all as good as B, on one shared
    test set (each variant with its own per-example effects and training luck)."""
    *a, b = _regimes(rng, sc, sims, [0.0] * (variants + 1))
    return a, b


def advantages(a: np.ndarray, b: np.ndarray, sc: Scenario) -> np.ndarray:
    """A's per-cell advantage over B: correct minus correct, or NLL_B minus NLL_A."""
    a, b = a.astype(float), b.astype(float)
    return b - a if sc.outcome == "nll" else a - b


def true_difference(sc: Scenario, shift: float, draws: int = 400_000, seed: int = 7) -> float:
    """E[accuracy_A - accuracy_B] for a shift (Monte Carlo over the latent effects)."""
    if sc.outcome == "nll":
        return shift
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
    return float(advantages(a, b, sc).mean(axis=(1, 2)).std(ddof=1))


def new_method(
    a: np.ndarray, b: np.ndarray, alpha: float, margin: float, sc: Scenario | None = None
) -> np.ndarray:
    """The report's verdicts: paired over seeds and examples (and groups), one comparison at
    a time, through the report's own spread and judge rules."""
    sc = sc or Scenario(seeds=a.shape[-2], examples=a.shape[-1])
    spread = outcome_spread(advantages(a, b, sc), sc.outcome == "correct", groups(sc))
    if not spread.decides:
        return np.full(a.shape[0], INCONCLUSIVE)
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


def until_decided(
    diffs: np.ndarray, design: Design, margin: float, binary: bool = True, naive: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(verdict, seeds used) per simulated two-regime question of `diffs` (sims, K, examples):
    looks at len(design.first_seeds) .. K seeds, each at the design's own level (sequential.py),
    stopping at the first decision or when futile (sequential.futile). `naive`: the
    fixed-sample test at full alpha after every seed, stopping at the first "better" (optional
    stopping without a sequential method)."""
    sims, most = diffs.shape[:2]
    verdict = np.full(sims, INCONCLUSIVE, dtype=object)
    used = np.full(sims, most)
    open_ = np.ones(sims, dtype=bool)
    for seeds in range(len(design.first_seeds), most + 1):
        level = design.alpha if naive else design.look_alpha(seeds)
        idx = np.flatnonzero(open_)
        if level <= 0 or idx.size == 0:
            continue
        spread = outcome_spread(diffs[idx, :seeds], binary)
        if not spread.decides:
            continue
        low, high = spread.interval(level)
        now = np.asarray(classify(spread.mean, low, high, margin))
        stop = np.isin(now, (A_BETTER, B_BETTER)) if naive else now != INCONCLUSIVE
        verdict[idx[stop]], used[idx[stop]] = now[stop], seeds
        if not naive:
            gave_up = ~stop & futile(spread, margin, design)
            used[idx[gave_up]] = seeds
            stop = stop | gave_up
        open_[idx[stop]] = False
    return verdict, used
