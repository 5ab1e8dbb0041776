"""The paper's claims checked on constructed results: each holds, fails, or lacks data."""

from __future__ import annotations

import pytest
from scipy import stats

from prunebench.report.analysis import representatives, summarize
from prunebench.report.claims import FAILS, HOLDS, NO_DATA, check_claims
from prunebench.report.prepare import final_runs, metric_for
from prunebench.results import load_results
from prunebench.store import Store
from report_db import add_run

C1 = "One-shot >= iterative at ratios up to 80 %"
C2 = "Iterative better than one-shot above 90 %"
C3 = "Geometric >= constant"
C4 = "Hybrid best or tied"


def claims(tmp_path, spec, metric="top1"):
    store = Store(tmp_path)
    for regime, by_ratio in spec.items():
        for ratio, values in by_ratio.items():
            for seed, value in enumerate(values):
                add_run(store, regime, ratio, seed, value, metric=metric)
    summary = summarize(final_runs(load_results(tmp_path)))
    reps = representatives(summary, metric_for(metric))
    return {c.claim: c for c in check_claims(reps, metric_for(metric))}


def status(checks):
    return {name: c.status for name, c in checks.items()}


def test_all_claims_hold(tmp_path):
    checks = claims(
        tmp_path,
        {
            "one_shot": {0.5: [0.95, 0.96, 0.97], 0.95: [0.70, 0.71, 0.72]},
            "constant": {0.5: [0.90, 0.91, 0.92], 0.95: [0.80, 0.81, 0.82]},
            "geometric": {0.5: [0.91, 0.92, 0.93], 0.95: [0.85, 0.86, 0.87]},
            "hybrid": {0.5: [0.96, 0.97, 0.98], 0.95: [0.86, 0.87, 0.88]},
        },
    )
    assert status(checks) == {C1: HOLDS, C2: HOLDS, C3: HOLDS, C4: HOLDS}
    c2 = checks[C2].rows.iloc[0]
    assert (c2["ratio"], c2["a"], c2["b"], c2["outcome"]) == (
        0.95,
        "geometric",
        "one_shot",
        "A better",
    )
    p = stats.ttest_ind([0.85, 0.86, 0.87], [0.70, 0.71, 0.72], equal_var=False).pvalue
    assert c2["p"] == pytest.approx(p, rel=1e-9)
    assert c2["diff"] == pytest.approx(0.15)
    # hybrid vs the best other regime: tied with one-shot at 50 % (p > 0.05), so it holds
    c4 = checks[C4].rows.set_index("ratio")
    assert c4.loc[0.5, "b"] == "one_shot" and c4.loc[0.5, "outcome"] == "tied"
    assert checks[C1].basis == "Welch's t-test over seeds, α = 0.05"
    assert checks[C3].reason == "holds at 2 of 2 ratios"


def test_no_claim_holds(tmp_path):
    checks = claims(
        tmp_path,
        {
            "one_shot": {0.5: [0.85, 0.86, 0.87], 0.95: [0.90, 0.91, 0.92]},
            "constant": {0.5: [0.95, 0.96, 0.97], 0.95: [0.80, 0.81, 0.82]},
            "geometric": {0.5: [0.90, 0.91, 0.92], 0.95: [0.70, 0.71, 0.72]},
            "hybrid": {0.5: [0.80, 0.81, 0.82], 0.95: [0.60, 0.61, 0.62]},
        },
    )
    assert status(checks) == {C1: FAILS, C2: FAILS, C3: FAILS, C4: FAILS}
    c1 = checks[C1].rows.iloc[0]
    assert (c1["a"], c1["b"], c1["outcome"], c1["holds"]) == (
        "one_shot",
        "constant",
        "B better",
        False,
    )
    assert checks[C3].reason == "holds at 0 of 2 ratios"


def test_a_tie_satisfies_at_least_but_not_better(tmp_path):
    checks = claims(
        tmp_path,
        {
            "one_shot": {0.5: [0.90, 0.95, 0.85], 0.95: [0.70, 0.80, 0.75]},
            "geometric": {0.5: [0.92, 0.86, 0.95], 0.95: [0.78, 0.72, 0.80]},
        },
    )
    assert checks[C1].status == HOLDS and checks[C1].rows.iloc[0]["outcome"] == "tied"
    assert checks[C2].status == FAILS and checks[C2].rows.iloc[0]["outcome"] == "tied"
    assert checks[C3].status == NO_DATA and checks[C4].status == NO_DATA
    assert checks[C4].reason == "no ratio in range where both hybrid and any other regime finished"


def test_one_seed_compares_means_and_says_so(tmp_path):
    checks = claims(
        tmp_path,
        {
            "one_shot": {0.8: [0.9], 0.9: [0.5]},
            "constant": {0.8: [0.9], 0.9: [0.8]},
            "geometric": {0.8: [0.85], 0.9: [0.9]},
        },
    )
    # 80 % is "up to 80 %"; 90 % is not "above 90 %"
    assert checks[C1].status == HOLDS and list(checks[C1].rows["ratio"]) == [0.8]
    assert checks[C1].rows.iloc[0]["outcome"] == "tied"  # equal means, one seed
    assert checks[C2].status == NO_DATA
    assert checks[C3].status == FAILS  # 85 < 90 at 80 %
    assert checks[C1].basis.startswith("means only")


def test_only_one_regime_is_not_enough_data(tmp_path):
    checks = claims(tmp_path, {"one_shot": {0.5: [0.9, 0.91], 0.95: [0.8, 0.7]}})
    assert set(status(checks).values()) == {NO_DATA}


@pytest.mark.parametrize("flip", [False, True])
def test_perplexity_lower_is_better(tmp_path, flip):
    low, high = [10.0, 10.1, 10.2], [12.0, 12.1, 12.2]
    one, geo = (high, low) if flip else (low, high)
    checks = claims(
        tmp_path,
        {
            "one_shot": {0.5: one, 0.95: [30.0, 31.0, 32.0]},
            "geometric": {0.5: geo, 0.95: [20.0, 21.0, 22.0]},
        },
        metric="ppl",
    )
    assert checks[C1].status == (FAILS if flip else HOLDS)
    assert checks[C2].status == HOLDS
