"""The paper's claims: their logic on given comparisons, and on databases through the report."""

from __future__ import annotations

import math

import pytest

from prunebench.report.build import contexts
from prunebench.report.candidates import Candidate
from prunebench.report.claims import FAILS, HOLDS, NO_DATA, UNDECIDED, check_claims
from prunebench.report.prepare import METRICS
from prunebench.report.verdicts import (
    A_BETTER,
    B_BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    Comparison,
)
from prunebench.store.database import Store
from prunebench.store.results import load_results
from report_db import add_run

C1 = "One-shot >= iterative at ratios up to 80 %"
C2 = "Iterative better than one-shot above 90 %"
C3 = "Geometric >= constant"
C4 = "Hybrid best or tied"
TOP1 = METRICS["top1"]


def cand(regime: str, ratio: float, mean: float) -> Candidate:
    return Candidate(regime, regime, "magnitude", ratio, mean, 10.0, {0: mean})


def checks(means: dict[str, dict[float, float]], outcomes: dict[tuple[float, str, str], str]):
    """Claims over candidates with these means, given the verdict of each comparison."""
    best: dict[float, dict[str, Candidate]] = {}
    for regime, by_ratio in means.items():
        for ratio, mean in by_ratio.items():
            best.setdefault(ratio, {})[regime] = cand(regime, ratio, mean)
    asked = []

    def lookup(ratio: float, a: str, b: str) -> Comparison:
        asked.append((ratio, a, b))
        outcome = outcomes.get((ratio, a, b), INCONCLUSIVE)
        return Comparison(a, b, ratio, 0.0, -1.0, 1.0, 0.05, 0.5, outcome, "m", 3, 100, 7)

    return {c.claim: c for c in check_claims(best, lookup, TOP1)}, asked


def test_sides_are_the_best_regime_of_each_side_and_verdicts_map_to_holds():
    got, asked = checks(
        {"one_shot": {0.5: 0.95, 0.95: 0.70}, "constant": {0.5: 0.90, 0.95: 0.80},
         "geometric": {0.5: 0.91, 0.95: 0.85}, "hybrid": {0.5: 0.96, 0.95: 0.86}},
        {(0.5, "one_shot", "geometric"): A_BETTER,  # >= holds
         (0.95, "geometric", "one_shot"): A_BETTER,  # > holds
         (0.5, "geometric", "constant"): EQUIVALENT,  # >= holds on equivalence
         (0.95, "geometric", "constant"): A_BETTER,
         (0.5, "hybrid", "constant"): A_BETTER, (0.5, "hybrid", "geometric"): A_BETTER,
         (0.5, "hybrid", "one_shot"): EQUIVALENT, (0.95, "hybrid", "constant"): A_BETTER,
         (0.95, "hybrid", "geometric"): EQUIVALENT, (0.95, "hybrid", "one_shot"): A_BETTER},
    )  # fmt: skip
    assert {k: c.status for k, c in got.items()} == {C1: HOLDS, C2: HOLDS, C3: HOLDS, C4: HOLDS}
    # one-shot vs the better iterative regime (geometric) at 50 % only; 95 % is out of range
    assert [(r.ratio, r.a, r.b) for r in got[C1].rows.itertuples()] == [
        (0.5, "one_shot", "geometric")
    ]
    assert got[C3].reason == "holds at 2 of 2 ratios"
    assert len(got[C4].rows) == 6  # hybrid against each other regime at both ratios
    assert (0.95, "geometric", "one_shot") in asked


@pytest.mark.parametrize(
    ("outcome", "at_least", "strictly"),
    [(A_BETTER, HOLDS, HOLDS), (EQUIVALENT, HOLDS, FAILS), (B_BETTER, FAILS, FAILS),
     (INCONCLUSIVE, UNDECIDED, UNDECIDED)],
)  # fmt: skip
def test_three_outcomes_for_at_least_and_better(outcome, at_least, strictly):
    got, _ = checks(
        {"one_shot": {0.5: 0.9, 0.95: 0.8}, "geometric": {0.5: 0.9, 0.95: 0.8}},
        {(0.5, "one_shot", "geometric"): outcome, (0.95, "geometric", "one_shot"): outcome},
    )
    assert got[C1].status == at_least
    assert got[C2].status == strictly
    assert got[C4].status == NO_DATA
    assert got[C4].reason == "no ratio in range where both hybrid and any other regime finished"


def test_one_failing_ratio_fails_the_claim_and_the_reason_counts_ratios():
    got, _ = checks(
        {"geometric": {0.5: 0.9, 0.8: 0.8, 0.9: 0.7}, "constant": {0.5: 0.9, 0.8: 0.8, 0.9: 0.7}},
        {(0.5, "geometric", "constant"): A_BETTER, (0.8, "geometric", "constant"): B_BETTER},
    )
    assert got[C3].status == FAILS
    assert got[C3].reason == "holds at 1 of 3 ratios, fails at 1, inconclusive at 1"


def test_claims_read_the_reports_comparisons(tmp_path):
    """Through a database: each claim row IS the decision's comparison object."""
    store = Store(tmp_path)
    for seed in range(6):
        add_run(store, "one_shot", 0.5, seed, 0.95, examples=400)
        add_run(store, "geometric", 0.5, seed, 0.85, examples=400)
        add_run(store, "hybrid", 0.5, seed, 0.90, examples=400)
    (ctx,) = contexts(load_results(tmp_path, outcomes=True), 0.05, None)
    v = ctx.verdicts["magnitude"]
    c1 = next(c for c in v.claims if c.claim == C1)
    row = c1.rows.iloc[0]
    assert row["comparison"] is v.comparisons[(0.5, "one-shot", "geometric q=0.3")]
    assert row["comparison"].estimate == pytest.approx(0.10)
    assert (c1.status, row["outcome"]) == (HOLDS, A_BETTER)
    c4 = next(c for c in v.claims if c.claim == C4)
    assert c4.status == FAILS  # one-shot is better than hybrid
    decision = v.decision(0.5)
    assert decision.recommended.label == "one-shot" and decision.status == "better"


@pytest.mark.parametrize("flip", [False, True])
def test_perplexity_lower_is_better(tmp_path, flip):
    low, high = 10.0, 12.0
    one, geo = (high, low) if flip else (low, high)
    store = Store(tmp_path)
    for seed in range(4):
        add_run(store, "one_shot", 0.5, seed, one, metric="ppl", examples=400)
        add_run(store, "geometric", 0.5, seed, geo, metric="ppl", examples=400)
    (ctx,) = contexts(load_results(tmp_path, outcomes=True), 0.05, None)
    v = ctx.verdicts["magnitude"]
    c = v.comparison(0.5, "one-shot", "geometric q=0.3")
    assert c.estimate == pytest.approx(math.log(geo / one), rel=1e-5)  # log ppl_B / ppl_A
    assert c.outcome == (B_BETTER if flip else A_BETTER)
    status = {x.claim: x.status for x in v.claims}
    assert status[C1] == (FAILS if flip else HOLDS)
