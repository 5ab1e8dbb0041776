"""How often the report says "better" when nothing is better, in every setting a user meets.

Simulated comparisons of two regimes with a known truth (prunebench.report.calibration): per-
example outcomes on one test split shared by all seeds, training luck per seed, per-example
effects of each regime. Every verdict goes through the report's own code (outcome_spread, the
refusals and Holm/multiplicity levels of verdicts.judge, seeds_to_decide). In one run:
  false "better"      share of 1,000 null comparisons called better either way, per setting of
                      calibration.SETTINGS (one seed with training noise; 2-10 seeds; perplexity
                      with 2/3/5 seeds; systematic per-example differences; clustered images and
                      documents), plus three procedures:
                        fallback        per-seed values only (old databases, top-5);
                        variant choice  A represented by the best of 4 variants on the test mean;
                        re-judging      3 seeds, then the advised seeds for the minimum effect
                                        added and everything judged again on fresh test data,
                                        as the report says (both looks counted); the naive
                                        re-judging on the same test set shown beside it;
  false "equivalent"  share called equivalent when the truth sits exactly on the margin;
  power               share called "A better" at a true difference of 2, 3, 4 standard errors.
ratio = the WORST setting's false-"better" rate / alpha (goal <= 1.0 within 2 SE of the
simulation, i.e. <= 1 + 2 sqrt(alpha (1 - alpha) / 1000) / alpha = 1.28).

Run: python benchmarks/verdicts.py
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import report

from prunebench.report.calibration import (
    SETTINGS,
    Scenario,
    advantages,
    draw,
    draw_variants,
    new_method,
    null_se,
    old_method,
    rate,
    shift_for,
)
from prunebench.report.candidates import outcome_spread
from prunebench.report.uncertainty import seeds_only
from prunebench.report.verdicts import (
    A_BETTER,
    B_BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    classify,
    seeds_to_decide,
)

ALPHA, MARGIN, SIMS = 0.05, 0.001, 1000
MIN_EFFECT = 0.005  # the report's default minimum effect, 0.5 pp
BETTER_EITHER = (A_BETTER, B_BETTER)
SE = math.sqrt(ALPHA * (1 - ALPHA) / SIMS)


def fallback(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(the report's rate, the old fallback t over seeds' rate) from per-seed values only."""
    spread = seeds_only(a.mean(axis=-1) - b.mean(axis=-1))
    low, high = spread.interval(ALPHA)
    naive = classify(spread.mean, low, high, MARGIN)
    ours = np.where(spread.decides, naive, INCONCLUSIVE)
    return rate(ours, *BETTER_EITHER), rate(naive, *BETTER_EITHER)


def variant_choice(rng: np.random.Generator, sc: Scenario, variants: int = 4) -> dict:
    """A's representative: the best test mean of `variants` equally good variants."""
    a_all, b = draw_variants(rng, sc, SIMS, variants)
    stacked = np.stack(a_all)  # (variants, sims, seeds, examples)
    best = stacked.mean(axis=(2, 3)).argmax(axis=0)
    a = stacked[best, np.arange(SIMS)]
    return {
        "counted_in_family": rate(new_method(a, b, ALPHA / variants, MARGIN, sc), *BETTER_EITHER),
        "peeking": rate(new_method(a, b, ALPHA, MARGIN, sc), *BETTER_EITHER),
    }


def rejudging(rng: np.random.Generator, sc: Scenario) -> dict:
    """Judge at sc.seeds; where inconclusive, add the advised seeds (for MIN_EFFECT) and
    judge all of them again, on fresh test data (the report's advice) or on the same."""
    most = sc.seeds + 12
    first = Scenario(**{**asdict(sc), "seeds": most})
    a, b = draw(rng, first, SIMS)
    fresh_a, fresh_b = draw(rng, first, SIMS)  # the same seeds' models, other test examples
    look1 = new_method(a[:, : sc.seeds], b[:, : sc.seeds], ALPHA, MARGIN, sc)
    spread = outcome_spread(advantages(a[:, : sc.seeds], b[:, : sc.seeds], sc), True)
    fresh, same = look1.copy(), look1.copy()
    advised = []
    for i in np.flatnonzero(look1 == INCONCLUSIVE):
        one = replace(spread, **{k: np.asarray(getattr(spread, k))[i] for k in
                                 ("mean", "seed_var", "example_var", "resid_var")})  # fmt: skip
        more, _ = seeds_to_decide(one, MARGIN, ALPHA, MIN_EFFECT)
        if more is None:
            continue
        total = min(sc.seeds + more, most)
        advised.append(more)
        later = replace(sc, seeds=total)
        fresh[i] = new_method(fresh_a[i : i + 1, :total], fresh_b[i : i + 1, :total], ALPHA,
                              MARGIN, later)[0]  # fmt: skip
        same[i] = new_method(a[i : i + 1, :total], b[i : i + 1, :total], ALPHA, MARGIN, later)[0]
    return {
        "fresh_test_data": rate(fresh, *BETTER_EITHER),
        "same_test_set": rate(same, *BETTER_EITHER),
        "median_advised_seeds": float(np.median(advised)) if advised else None,
    }


def measure(name: str, sc: Scenario, rng: np.random.Generator) -> dict:
    se = null_se(rng, sc, 2000)
    a, b = draw(rng, sc, SIMS)
    out = {"scenario": asdict(sc), "true_se": se,
           "fpr": rate(new_method(a, b, ALPHA, 0.0, sc), *BETTER_EITHER)}  # fmt: skip
    if sc.outcome == "correct" and not sc.clusters:
        out["fpr_old_welch"] = rate(old_method(a, b, ALPHA), *BETTER_EITHER)
    try:
        a, b = draw(rng, sc, SIMS, shift_for(sc, 2 * se))
        out["false_equivalent_on_margin"] = rate(new_method(a, b, ALPHA, 2 * se, sc), EQUIVALENT)
        for k in (2, 3, 4):
            a, b = draw(rng, sc, SIMS, shift_for(sc, k * se))
            out[f"power_{k}se"] = rate(new_method(a, b, ALPHA, MARGIN, sc), A_BETTER)
    except ValueError:  # the accuracy ceiling leaves no room for such a difference
        out.setdefault("false_equivalent_on_margin", None)
    return out


def cell(value) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(2026)
    results = {name: measure(name, sc, rng) for name, sc in SETTINGS.items()}
    fpr = {name: r["fpr"] for name, r in results.items()}
    base = SETTINGS["3 seeds"]
    ours, old = fallback(*draw(rng, base, SIMS))
    fpr["fallback without per-example outcomes, 3 seeds"] = ours
    variants = variant_choice(rng, base)
    fpr["best of 4 variants, counted in the family, 3 seeds"] = variants["counted_in_family"]
    again = rejudging(rng, base)
    fpr["re-judging after the advice (fresh test data)"] = again["fresh_test_data"]
    print(f"{'setting':52s} {'false better':>12s} {'false equiv':>11s}   power at 2, 3, 4 SE")
    for name, value in fpr.items():
        r = results.get(name, {})
        power = "  ".join(cell(r.get(f"power_{k}se")) for k in (2, 3, 4)) if r else ""
        print(f"{name:52s} {value:12.3f} {cell(r.get('false_equivalent_on_margin')):>11s}   "
              f"{power}")  # fmt: skip
    print(f"contrast: old fallback t over seeds {old:.3f}; best variant judged as if alone "
          f"{variants['peeking']:.3f}; re-judging on the same test set {again['same_test_set']:.3f}")  # fmt: skip
    worst = max(fpr, key=fpr.get)
    details = {
        "alpha": ALPHA,
        "margin_pp": 100 * MARGIN,
        "min_effect_pp": 100 * MIN_EFFECT,
        "simulated_comparisons": SIMS,
        "worst_setting": worst,
        "worst_fpr": fpr[worst],
        "tolerance_ratio": 1 + 2 * SE / ALPHA,
        "false_better": fpr,
        "contrast": {
            "old_fallback_t_over_seeds": old,
            "variant_peeking": variants["peeking"],
            "rejudging_same_test_set": again["same_test_set"],
            "median_advised_seeds": again["median_advised_seeds"],
        },
        "settings": results,
        "seconds": time.perf_counter() - started,
    }
    report("verdicts", fpr[worst] / ALPHA, 1.0, "lower", "worst false positives / alpha", details)


if __name__ == "__main__":
    main()
