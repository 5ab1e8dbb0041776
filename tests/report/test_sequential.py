"""`sweep --until-decided`'s decisions (report.sequential): alpha spending that holds under
optional stopping, racing that never drops the winner, looks derived only from stored rows."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from prunebench.report.calibration import Scenario, advantages, draw, rate, until_decided
from prunebench.report.sequential import Design, replay
from prunebench.report.verdicts import A_BETTER, B_BETTER, BETTER, TIED, UNDECIDED
from prunebench.store.database import Store
from prunebench.store.example_outcomes import pack_correct
from prunebench.store.results import load_results
from report_db import add_run, scratch_dir

ALPHA, SIMS = 0.05, 1000
TOLERANCE = 2 * math.sqrt(ALPHA * (1 - ALPHA) / SIMS)


def test_looks_spend_alpha_once_over_at_most_k_looks():
    design = Design((0, 1), 8, ALPHA)
    levels = [design.look_alpha(s) for s in range(2, 9)]
    assert sum(levels) == pytest.approx(ALPHA)
    assert levels[0] == 0 and all(a < b for a, b in itertools.pairwise(levels[1:]))
    assert design.extra_seeds == [2, 3, 4, 5, 6, 7]
    assert Design((3, 5, 9), 5).extra_seeds == [10, 11]


def test_the_design_is_stored_whole_and_read_back(tmp_path):
    design = Design((0, 2), 6, 0.01, 0.25)
    design.save(tmp_path)
    assert Design.load(tmp_path) == design
    assert [p.name for p in tmp_path.iterdir()] == ["until_decided.json"]  # no temp file left
    assert Design.load(tmp_path / "elsewhere") is None


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
