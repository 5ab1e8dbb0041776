"""How often the report says "better" when nothing is better: the old method vs the new one.

Simulated comparisons of two regimes (prunebench.report.calibration): per-example top-1
outcomes on one test split shared by all seeds, with training noise per seed and a per-example
effect of each regime. On the SAME draws:
  old  the previous report: Welch's t-test over per-seed accuracies, alpha = 0.05; where it
       cannot test (one seed, or no spread) the better mean counted as better (claims check);
  new  paired over seeds and test examples (uncertainty.crossed), the three-outcome verdict
       with the default margin of 0.1 pp (verdicts.classify).
False-positive rate: share of 1,000 null comparisons called better either way. Power: share of
1,000 comparisons with a true difference of 1, 2, 3 standard errors (the spread of the mean
paired difference over null draws) called "A better".
ratio = new false-positive rate / alpha in the headline scenario (goal <= 1.0).

Run: python benchmarks/verdicts.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import report

from prunebench.report.calibration import (
    Scenario,
    draw,
    new_method,
    null_se,
    old_method,
    rate,
    shift_for,
)
from prunebench.report.verdicts import A_BETTER, B_BETTER

ALPHA, MARGIN, SIMS = 0.05, 0.001, 1000
HEADLINE = "5 seeds"
SCENARIOS = {
    HEADLINE: Scenario(seeds=5),
    "2 seeds, 99 % accuracy (the demo)": Scenario(seeds=2, accuracy_logit=5.5),
    "3 seeds": Scenario(seeds=3),
    "10 seeds": Scenario(seeds=10),
    "10 seeds, strong test-set effects": Scenario(seeds=10, example_sd=1.0),
    "5 seeds, strong seed noise": Scenario(seeds=5, seed_sd=0.8),
    "1 seed": Scenario(seeds=1),
}


def measure(sc: Scenario, rng: np.random.Generator) -> dict:
    se = null_se(rng, sc)
    a, b = draw(rng, sc, SIMS)
    out = {
        "scenario": asdict(sc),
        "true_se_pp": 100 * se,
        "fpr_old": rate(old_method(a, b, ALPHA), A_BETTER, B_BETTER),
        "fpr_new": rate(new_method(a, b, ALPHA, MARGIN), A_BETTER, B_BETTER),
        "fpr_new_no_margin": rate(new_method(a, b, ALPHA, 0.0), A_BETTER, B_BETTER),
    }
    for k in (1, 2, 3):
        try:
            shift = shift_for(sc, k * se)
        except ValueError:  # the accuracy ceiling leaves no room for such a difference
            out[f"power_{k}se_old"] = out[f"power_{k}se_new"] = None
            continue
        a, b = draw(rng, sc, SIMS, shift)
        out[f"power_{k}se_old"] = rate(old_method(a, b, ALPHA), A_BETTER)
        out[f"power_{k}se_new"] = rate(new_method(a, b, ALPHA, MARGIN), A_BETTER)
    return out


def cell(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(2026)
    results = {name: measure(sc, rng) for name, sc in SCENARIOS.items()}
    print(f"{'scenario':36s} {'SE pp':>6s} {'FPR old':>8s} {'FPR new':>8s}   "
          "power old/new at 1, 2, 3 SE")  # fmt: skip
    for name, r in results.items():
        power = "  ".join(
            f"{cell(r[f'power_{k}se_old'])}/{cell(r[f'power_{k}se_new'])}" for k in (1, 2, 3)
        )
        print(
            f"{name:36s} {r['true_se_pp']:6.2f} {r['fpr_old']:8.3f} {r['fpr_new']:8.3f}   {power}"
        )
    head = results[HEADLINE]
    details = {
        "alpha": ALPHA,
        "margin_pp": 100 * MARGIN,
        "simulated_comparisons": SIMS,
        "headline_scenario": HEADLINE,
        "fpr_old": head["fpr_old"],
        "fpr_new": head["fpr_new"],
        "power_old": {k: head[f"power_{k}se_old"] for k in (1, 2, 3)},
        "power_new": {k: head[f"power_{k}se_new"] for k in (1, 2, 3)},
        "scenarios": results,
        "seconds": time.perf_counter() - started,
    }
    report("verdicts", head["fpr_new"] / ALPHA, 1.0, "lower", "false positives / alpha", details)


if __name__ == "__main__":
    main()
