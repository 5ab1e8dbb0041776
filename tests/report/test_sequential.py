"""`sweep --until-decided`'s decisions (report.sequential, report.group_sequential): exact
group-sequential boundaries that hold under optional stopping, futility that stops only what K
seeds would not decide, racing that never drops the winner, looks derived only from stored
rows."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prunebench.report.calibration import Scenario, advantages, draw, rate, until_decided
from prunebench.report.candidates import Candidate, outcome_spread
from prunebench.report.group_sequential import boundaries, obrien_fleming, spent
from prunebench.report.sequential import FUTILITY, Design, _levels, futile, replay
from prunebench.report.uncertainty import CROSSED, Spread
from prunebench.report.verdicts import (
    A_BETTER,
    B_BETTER,
    BETTER,
    TIED,
    UNDECIDED,
    classify,
    judge,
)
from prunebench.store.database import Store
from prunebench.store.example_outcomes import pack_correct
from prunebench.store.results import load_results
from report_db import add_run, scratch_dir

ALPHA, SIMS = 0.05, 1000
TOLERANCE = 2 * math.sqrt(ALPHA * (1 - ALPHA) / SIMS)


def test_boundaries_match_published_obrien_fleming_values():
    """gsDesign's Lan-DeMets O'Brien-Fleming bounds for 5 equally spaced looks, one-sided
    alpha 0.025 on each side (Jennison & Turnbull's recursive integration, computed here)."""
    each_side = lambda t: 2 * obrien_fleming(0.025, t)  # noqa: E731
    c = boundaries(each_side, (0.2, 0.4, 0.6, 0.8, 1.0))
    assert c == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)


def test_the_looks_spend_alpha_over_nested_sums_of_seeds():
    """Simulated z-statistics of nested sums of seeds (corr sqrt(s_i / s_j)): crossing the
    design's nominal levels at any look happens alpha of the time, and each look adds its
    increment of the spending function."""
    design = Design((0, 1), 6, ALPHA)
    steps = np.random.default_rng(5).standard_normal((400_000, 6))
    sums = np.cumsum(steps, axis=1)[:, 1:]  # looks at 2..6 seeds
    z = np.abs(sums / np.sqrt(np.arange(2, 7)))
    levels = np.array([design.look_alpha(s) for s in range(2, 7)])
    crossed = z >= stats.norm.isf(levels / 2)
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    se = math.sqrt(ALPHA / 400_000)
    assert (first >= 0).mean() == pytest.approx(ALPHA, abs=3 * se)
    by_look = np.array([((first >= 0) & (first <= j)).mean() for j in range(5)])
    assert by_look == pytest.approx(spent(ALPHA, np.arange(2, 7) / 6), abs=4 * se)
    assert all(a < b for a, b in itertools.pairwise(levels)) and levels[-1] < ALPHA
    assert design.look_alpha(1) == 0 and Design((0,), 6).look_alpha(1) == 0
    assert design.extra_seeds == [2, 3, 4, 5] and Design((3, 5, 9), 5).extra_seeds == [10, 11]


def test_sequential_p_inverts_the_looks_level():
    """The tabled levels (interpolated between grid alphas) are the exact boundaries' at total
    alphas off the grid, and sequential_p inverts them (a round trip alone would pass a wrong
    table: both directions read it)."""
    design = Design((0, 1), 6, ALPHA)
    for alpha in (0.0125, ALPHA, 0.2):  # 10^-1.90, 10^-1.30, 10^-0.70: between grid points
        exact = boundaries(lambda t, a=alpha: spent(a, t), tuple(s / 6 for s in range(2, 7)))
        levels = [design.look_alpha(s, alpha) for s in range(2, 7)]
        assert levels == pytest.approx(2 * stats.norm.sf(exact), rel=1e-5)
    for seeds in range(2, 7):
        for alpha in (0.001, 0.01, ALPHA, 0.2):
            level = design.look_alpha(seeds, alpha)
            assert design.look(seeds).sequential_p(level) == pytest.approx(alpha, rel=1e-3)
    assert np.isnan(design.look(3).sequential_p(np.nan))
    assert design.look(1).sequential_p(0.001) == 1


def test_holm_on_sequential_p_values_gives_each_interval_its_looks_level():
    """Two comparisons at the look at 4 of 6 seeds: the clear one is tested at the look's level
    for alpha / 2, and, once it is rejected, the other at the look's level for alpha."""
    design = Design((0, 1), 6, ALPHA)
    spreads = [Spread(0.05, 0.0, 0.0, 4, 1000, CROSSED, 1e-4),
               Spread(0.002, 0.0, 0.0, 4, 1000, CROSSED, 1e-4)]  # fmt: skip
    pairs = [(0.5, "a", "b"), (0.5, "a", "c")]
    look = design.look(4)
    clear, weak = judge(spreads, pairs, 0.001, ALPHA, boundary=look)
    assert clear.outcome == A_BETTER and weak.outcome == "inconclusive"
    assert clear.alpha == pytest.approx(design.look_alpha(4, ALPHA / 2))
    assert weak.alpha == pytest.approx(design.look_alpha(4, ALPHA))


def test_questions_stopped_as_futile_would_rarely_have_been_decided():
    """Stopped at 3 of 6 seeds for futility: of those, K seeds decide (at the last look's
    level) hardly any; of the questions that go on, many. Truths of 0 to 3 standard errors."""
    sc = Scenario(seeds=6, examples=500)
    rng = np.random.default_rng(3)
    design = Design((0, 1), 6, ALPHA)
    diffs = np.concatenate([advantages(*draw(rng, sc, 300, shift), sc)
                            for shift in (0.0, 0.15, 0.3)])  # fmt: skip
    margin = 0.5 * float(diffs.mean(axis=(1, 2))[:300].std())
    stop = np.asarray(futile(outcome_spread(diffs[:, :3], True), margin, design))
    final = outcome_spread(diffs, True)
    low, high = final.interval(design.look_alpha(6))
    decided = np.asarray(classify(final.mean, low, high, margin)) != "inconclusive"
    assert 0.1 < stop.mean() < 0.9
    assert decided[stop].mean() < FUTILITY < decided[~stop].mean()


def test_the_design_is_stored_whole_and_read_back(tmp_path):
    design = Design((0, 2), 6, 0.01, 0.25)
    design.save(tmp_path)
    assert Design.load(tmp_path) == design
    assert [p.name for p in tmp_path.iterdir()] == ["until_decided.json"]  # no temp file left
    assert Design.load(tmp_path / "elsewhere") is None
    assert design.current and json.loads((tmp_path / "until_decided.json").read_text())["method"]
    # stored before the method was recorded: the earlier method, not this one
    raw = json.loads((tmp_path / "until_decided.json").read_text())
    del raw["method"]
    (tmp_path / "until_decided.json").write_text(json.dumps(raw))
    assert not Design.load(tmp_path).current


def test_optional_stopping_keeps_false_better_at_alpha():
    """No true difference, a look after every seed from 2 to 8: stopping at the first decision
    with the design's levels says "better" at most alpha of the time; the fixed-sample test
    repeated after each seed (the same draws) says it far more often."""
    sc = Scenario(seeds=8, examples=300)
    a, b = draw(np.random.default_rng(11), sc, SIMS)
    diffs = advantages(a, b, sc)
    design = Design((0, 1), 8, ALPHA)
    verdicts, used = until_decided(diffs, design, margin=0.0)
    naive, _ = until_decided(diffs, design, margin=0.0, naive=True)
    assert rate(verdicts, A_BETTER, B_BETTER) <= ALPHA + TOLERANCE
    assert rate(naive, A_BETTER, B_BETTER) > ALPHA + TOLERANCE
    assert used.mean() < 8  # futile questions stop early


def _bits(rng, p: float, n: int) -> np.ndarray:
    return rng.random(n) < p


def generated_database(root, seed: int, seeds: int = 5, examples: int = 600) -> dict:
    """3-4 regimes at one ratio, `seeds` seeds each, per-example outcomes drawn around a true
    accuracy per regime (some close, some far apart); returns regime -> true accuracy."""
    rng = np.random.default_rng(seed)
    store = Store(root)
    regimes = list(rng.choice(["one_shot", "constant", "geometric", "hybrid"],
                              size=int(rng.integers(3, 5)), replace=False))  # fmt: skip
    truth = {r: float(rng.choice([0.80, 0.86, 0.9, 0.905, 0.95])) for r in regimes}
    easy = rng.random(examples)  # shared difficulty: the same test split for every run
    for regime in regimes:
        for s in range(seeds):
            luck = rng.normal(0, 0.01)
            bits = easy < truth[regime] + luck
            bits ^= rng.random(examples) < 0.03  # flips of this seed
            add_run(store, regime, 0.8, s, float(bits.mean()), epochs=10,
                    outcomes=pack_correct(bits))  # fmt: skip
    return truth


@pytest.mark.parametrize("seed", range(5))
def test_racing_never_drops_the_regime_the_decision_recommends(seed, tmp_path):
    with scratch_dir(tmp_path) as root:
        truth = generated_database(root, seed)
        results = load_results(root, outcomes=True)
        rounds = replay(results, Design((0, 1), 5, ALPHA))
        assert rounds.verdicts and rounds.finished  # every seed is stored: all looks replay
        for v in rounds.verdicts.values():
            winner = v.recommended.split(" ")[0].replace("-", "_")
            assert winner not in v.dropped
            if v.status in (BETTER, TIED):
                assert v.decided_at is not None and 2 <= v.decided_at <= 5
                best = max(truth.values())
                assert truth[winner] >= best - 0.01  # only a (near-)best regime wins
            else:
                assert v.status == UNDECIDED and v.why_open
            for regime, why in v.dropped.items():
                assert truth[regime] < max(truth.values()) and why.startswith("beaten by")
        assert replay(results, Design((0, 1), 5, ALPHA)).verdicts.keys() == rounds.verdicts.keys()


def test_looks_use_only_the_seeds_the_rounds_gave(tmp_path):
    """Rows of seeds a regime would not have had (dropped, or beyond the look) change nothing:
    the replay of a database holding every seed equals that of one holding only what the rounds
    ran; and with the first round only, the replay asks for the next seed of the contenders."""
    with scratch_dir(tmp_path / "all") as root:
        generated_database(root, 3)
        everything = load_results(root, outcomes=True)
    design = Design((0, 1), 5, ALPHA)
    full = replay(everything, design)
    first = everything[everything["seed"].isin([0, 1])]
    start = replay(first, design)
    assert not start.finished and start.seeds == 2
    assert {seed for _, seed in start.needs} == {2}
    asked = {rid for rid, _ in start.needs}
    assert asked <= set(first["run_id"])  # templates are first-round runs
    # what the rounds would have run, look by look, and nothing else
    kept = first
    rounds = start
    while not rounds.finished:
        ids = {rid for rid, _ in rounds.needs}
        seed = rounds.needs[0][1]
        template = everything[everything["run_id"].isin(ids)][["regime", "criterion"]]
        wanted = everything[(everything["seed"] == seed)
                            & everything["regime"].isin(set(template["regime"]))]  # fmt: skip
        kept = pd.concat([kept, wanted])
        rounds = replay(kept, design)
    assert {q: (v.status, v.recommended, v.decided_at) for q, v in rounds.verdicts.items()} == {
        q: (v.status, v.recommended, v.decided_at) for q, v in full.verdicts.items()
    }


def test_budget_levels_are_named_by_the_variant_whose_epochs_they_are():
    """A question's budget level keeps its name when added seeds move the mean epochs (a level
    keyed by the epochs themselves would become a new question at every look)."""

    def cand(label: str, epochs: float) -> Candidate:
        return Candidate(label, label, "magnitude", 0.9, 0.9, epochs, {0: 0.9})

    early = _levels([cand("one-shot", 5.0), cand("hybrid", 12.5), cand("geometric", 12.5),
                     cand("constant", 40.0)])  # fmt: skip
    later = _levels([cand("one-shot", 6.5), cand("hybrid", 13.0), cand("geometric", 12.0),
                     cand("constant", 41.0)])  # fmt: skip
    assert early == {"one-shot": 5.0, "geometric": 12.5, None: None}
    assert later == {"one-shot": 6.5, "geometric": 12.0, "hybrid": 13.0, None: None}
