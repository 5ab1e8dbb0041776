"""`sweep --until-decided` on simulated questions with a known truth: its error rates, what it
decides and what it costs, against the fixed K-seed design and the naive repeated test.

Each question compares two regimes (report.calibration: per-example top-1 outcomes on one test
split shared by all seeds, training luck per seed, per-example effects of each regime), with
true differences of 0, 0.5, 1, 2, 3 and 5 margins (the margin = 1.5 standard errors of the
K-seed mean difference). Three procedures see the SAME draws:
  until-decided  looks at 2 .. K seeds, each at its alpha-spending level (report/sequential.py),
                 stopping at the first decision (better, or equivalent);
  naive          the fixed-sample test at full alpha after every added seed, stopping at the
                 first "better" (what a user who looks after each seed does);
  fixed K        the fixed-sample test once, at K seeds.
Reported: false "better" (true difference 0) of until-decided and naive over 2,000 null
questions; correct decisions (better where the truth exceeds the margin, equivalent where it is
inside) of until-decided vs fixed K; ratio = seeds (epochs) spent by until-decided / by fixed K
over all questions (goal <= 0.4). Racing (dropping beaten regimes among more than two) saves
more in real sweeps; two-regime questions do not show it.

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
NULLS, SIMS = 2000, 1000
EFFECTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)  # in margins
SCENARIO = Scenario(seeds=K, examples=1000)


def fixed(diffs: np.ndarray, margin: float) -> np.ndarray:
    spread = outcome_spread(diffs, binary=True)
    low, high = spread.interval(ALPHA)
    return np.asarray(classify(spread.mean, low, high, margin))


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
    rows, seeds_seq, seeds_fixed = {}, 0, 0
    for effect in EFFECTS:
        sims = NULLS if effect == 0 else SIMS
        a, b = draw(rng, SCENARIO, sims, shift_for(SCENARIO, effect * margin))
        diffs = advantages(a, b, SCENARIO)
        seq, used = until_decided(diffs, design, margin)
        naive, _ = until_decided(diffs, design, margin, naive=True)
        once = fixed(diffs, margin)
        seeds_seq += int(used.sum())
        seeds_fixed += K * sims
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
        }
    print(f"margin = 1.5 SE of the {K}-seed difference = {100 * margin:.2f} pp; alpha {ALPHA}")
    print(f"{'truth':>14s} {'mean seeds':>10s} {'correct seq':>11s} {'correct fixed':>13s}")
    for effect, r in rows.items():
        fmt = lambda x: "  -  " if x is None else f"{x:.3f}"  # noqa: E731
        print(f"{effect:8.1f} margin {r['mean_seeds_until_decided']:10.2f} "
              f"{fmt(r['correct_until_decided']):>11s} {fmt(r['correct_fixed_K']):>13s}")  # fmt: skip
    null = rows[0.0]
    tolerance = 2 * math.sqrt(ALPHA * (1 - ALPHA) / NULLS)
    print(f"false 'better' with no true difference ({NULLS} questions): until-decided "
          f"{null['false_better_until_decided']:.3f}, naive repeated test "
          f"{null['false_better_naive']:.3f} (alpha {ALPHA} + 2 SE = {ALPHA + tolerance:.3f})")  # fmt: skip
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
        "seconds": time.perf_counter() - started,
    }
    report("sequential", seeds_seq / seeds_fixed, 0.4, "lower",
           "epochs until-decided / epochs fixed K", details)  # fmt: skip


if __name__ == "__main__":
    main()
