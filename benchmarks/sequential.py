"""`sweep --until-decided` on simulated questions with a known truth: its error rates, what it
decides and what it costs, against the fixed K-seed design and the naive repeated test.

Each question compares two regimes (report.calibration: per-example top-1 outcomes on one test
split shared by all seeds, training luck per seed, per-example effects of each regime), with
true differences of 0, 0.5, 1, 2, 3 and 5 margins (the margin = 1.5 standard errors of the
K-seed mean difference). Three procedures see the SAME draws:
  until-decided  looks at 2 .. K seeds, each at its group-sequential nominal level
                 (report/group_sequential.py), stopping at the first decision (better, or
                 equivalent) or for futility (report/sequential.py);
  naive          the fixed-sample test at full alpha after every added seed, stopping at the
                 first "better" (what a user who looks after each seed does);
  fixed K        the fixed-sample test once, at K seeds.
Reported: false "better" (true difference 0) of until-decided and naive over 2,000 null
questions; correct decisions (better where the truth exceeds the margin, equivalent where it is
inside) of until-decided vs fixed K; ratio = seeds (epochs) spent by until-decided / by fixed K
over all questions (goal <= 0.4). Racing (dropping beaten regimes among more than two) saves
more in real sweeps; two-regime questions do not show it.

Also printed, for what bounds the ratio: how often the 2-seed interval alone decides correctly
(at the whole alpha, and at the design's 2-seed level), and the least ratio ANY design could
reach with correct decisions within ALLOWANCE of the fixed design's: every question decided at
its earliest look whose fixed-sample interval at the whole alpha is correct (no sequential look
runs at more than alpha), only as many as the allowance needs, everything else stopped after the
first round.

Run: python benchmarks/sequential.py
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import report

from prunebench.report.calibration import (
    Scenario,
    advantages,
    draw,
    null_se,
    rate,
    shift_for,
    until_decided,
)
from prunebench.report.candidates import outcome_spread
from prunebench.report.sequential import Design
from prunebench.report.verdicts import A_BETTER, B_BETTER, EQUIVALENT, classify

ALPHA, K, FIRST = 0.05, 6, (0, 1)
ALLOWANCE = 0.05  # correct decisions may fall this much short of the fixed K-seed design
NULLS, SIMS = 2000, 1000
EFFECTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)  # in margins
SCENARIO = Scenario(seeds=K, examples=1000)


def fixed(diffs: np.ndarray, margin: float, alpha: float = ALPHA) -> np.ndarray:
    spread = outcome_spread(diffs, binary=True)
    low, high = spread.interval(alpha)
    return np.asarray(classify(spread.mean, low, high, margin))


def earliest_correct(diffs: np.ndarray, margin: float, effect: float) -> np.ndarray:
    """Per question, the fewest seeds (2..K) at which the fixed-sample interval at the WHOLE
    alpha already decides it correctly (K + 1: never). No sequential design decides it
    earlier: its looks run at levels <= alpha, and a narrower level only widens the interval."""
    want = A_BETTER if effect > 1.0 else EQUIVALENT
    first = np.full(diffs.shape[0], K + 1)
    for seeds in range(K, len(FIRST) - 1, -1):
        first[fixed(diffs[:, :seeds], margin) == want] = seeds
    return first


def least_seeds(first: np.ndarray, share: float) -> float:
    """The fewest seeds any design spends on these questions while deciding `share` of them
    correctly: the cheapest `share` cost their earliest correct look, the rest stop at once."""
    needed = int(np.ceil(share * first.size - 1e-9))
    cost = np.sort(first)
    if needed and cost[needed - 1] > K:
        return float("nan")  # not reachable at K seeds
    return float(np.sum(cost[:needed]) + len(FIRST) * (first.size - needed))


def correct(verdicts: np.ndarray, effect: float) -> float | None:
    if effect > 1.0:
        return rate(verdicts, A_BETTER)
    if effect < 1.0:
        return rate(verdicts, EQUIVALENT)
    return None  # on the margin: either answer is defensible


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(2026)
    design = Design(FIRST, K, ALPHA)
    se = null_se(rng, SCENARIO, 2000)
    margin = 1.5 * se
    rows, seeds_seq, seeds_fixed, floor = {}, 0, 0, 0.0
    for effect in EFFECTS:
        sims = NULLS if effect == 0 else SIMS
        a, b = draw(rng, SCENARIO, sims, shift_for(SCENARIO, effect * margin))
        diffs = advantages(a, b, SCENARIO)
        seq, used = until_decided(diffs, design, margin)
        naive, _ = until_decided(diffs, design, margin, naive=True)
        once = fixed(diffs, margin)
        seeds_seq += int(used.sum())
        seeds_fixed += K * sims
        must = max((correct(once, effect) or 0.0) - ALLOWANCE, 0.0)
        floor += least_seeds(earliest_correct(diffs, margin, effect), must)
        at_two = diffs[:, : len(FIRST)]
        two_seeds = (correct(fixed(at_two, margin), effect),
                     correct(fixed(at_two, margin, design.look_alpha(len(FIRST))), effect))  # fmt: skip
        rows[effect] = {
            "questions": sims,
            "false_better_until_decided": rate(seq, B_BETTER)
            if effect
            else rate(seq, A_BETTER, B_BETTER),
            "false_better_naive": rate(naive, A_BETTER, B_BETTER) if effect == 0 else None,
            "correct_until_decided": correct(seq, effect),
            "correct_fixed_K": correct(once, effect),
            "mean_seeds_until_decided": float(used.mean()),
            "decided_share": float(np.mean(seq != "inconclusive")),
            "correct_at_2_seeds_alpha": two_seeds[0],
            "correct_at_2_seeds_design_level": two_seeds[1],
        }
    print(f"margin = 1.5 SE of the {K}-seed difference = {100 * margin:.2f} pp; alpha {ALPHA}")
    print(f"{'truth':>14s} {'mean seeds':>10s} {'correct seq':>11s} {'correct fixed':>13s} "
          f"{'2 seeds at alpha':>16s} {'2 seeds at its level':>20s}")  # fmt: skip
    for effect, r in rows.items():
        fmt = lambda x: "  -  " if x is None else f"{x:.3f}"  # noqa: E731
        print(f"{effect:8.1f} margin {r['mean_seeds_until_decided']:10.2f} "
              f"{fmt(r['correct_until_decided']):>11s} {fmt(r['correct_fixed_K']):>13s} "
              f"{fmt(r['correct_at_2_seeds_alpha']):>16s} "
              f"{fmt(r['correct_at_2_seeds_design_level']):>20s}")  # fmt: skip
    null = rows[0.0]
    tolerance = 2 * math.sqrt(ALPHA * (1 - ALPHA) / NULLS)
    print(f"false 'better' with no true difference ({NULLS} questions): until-decided "
          f"{null['false_better_until_decided']:.3f}, naive repeated test "
          f"{null['false_better_naive']:.3f} (alpha {ALPHA} + 2 SE = {ALPHA + tolerance:.3f})")  # fmt: skip
    bound = floor / seeds_fixed
    print(
        f"levels of the looks at 2..{K} seeds: "
        + ", ".join(f"{design.look_alpha(s):.4f}" for s in range(len(FIRST), K + 1))
    )
    print(f"least ratio of ANY design with correct decisions >= fixed - {ALLOWANCE:.2f} (each "
          f"question decided at its earliest correct look at the whole alpha, every other one "
          f"stopped after the first round): {bound:.3f}")  # fmt: skip
    details = {
        "alpha": ALPHA,
        "max_seeds": K,
        "first_seeds": len(FIRST),
        "margin_pp": 100 * margin,
        "look_alphas": {s: design.look_alpha(s) for s in range(len(FIRST), K + 1)},
        "false_better_until_decided": null["false_better_until_decided"],
        "false_better_naive": null["false_better_naive"],
        "by_truth_in_margins": rows,
        "seeds_until_decided": seeds_seq,
        "seeds_fixed_K": seeds_fixed,
        "least_ratio_any_design": bound,
        "seconds": time.perf_counter() - started,
    }
    report("sequential", seeds_seq / seeds_fixed, 0.4, "lower",
           "epochs until-decided / epochs fixed K", details)  # fmt: skip


if __name__ == "__main__":
    main()
