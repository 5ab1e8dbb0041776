"""One decision per (criterion, ratio, budget): the table, the sentences, the budget table, the
claims, the figure's rings and `prunebench advise` all say the same, on many generated databases.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.lines import Line2D

from prunebench.report import build_document
from prunebench.report.build import contexts
from prunebench.report.candidates import Candidate
from prunebench.report.decisions import Verdicts
from prunebench.report.prepare import METRICS
from prunebench.report.terminal import advise_lines
from prunebench.report.verdicts import A_BETTER, BETTER, EQUIVALENT, ONLY_ONE, TIED, UNDECIDED
from prunebench.store.database import Store
from prunebench.store.example_outcomes import Outcomes
from prunebench.store.results import load_results
from report_db import add_run, scratch_dir

REGIMES = ["one_shot", "constant", "geometric", "hybrid"]
EXAMPLES = 200
WORDS = {  # decision status -> what its sentence must say
    BETTER: "it is better than every other regime",
    TIED: "is equivalent within",
    UNDECIDED: "the data cannot decide",
    ONLY_ONE: "nothing to compare",
}


def random_database(root, seed: int) -> None:
    """2-4 regimes (one with a second, cheaper variant) at 1-2 ratios, 1-4 seeds, mostly with
    per-example outcomes; accuracies on a 1/200 grid so that outcomes match them exactly."""
    rng = np.random.default_rng(seed)
    store = Store(root)
    seeds = range(int(rng.integers(1, 5)))
    examples = EXAMPLES if rng.random() < 0.8 else None
    for ratio in rng.choice([0.5, 0.8, 0.95], size=int(rng.integers(1, 3)), replace=False):
        for regime in rng.choice(REGIMES, size=int(rng.integers(2, 5)), replace=False):
            level, epochs = rng.integers(150, 197), int(rng.integers(5, 60))
            variants = [((), level, epochs)]
            if regime == "geometric" and rng.random() < 0.5:
                variants.append((("finetune.patience=1",), level - rng.integers(0, 8), epochs // 3))
            for extra, lvl, ep in variants:
                for s in seeds:
                    value = (lvl + int(rng.integers(-2, 3))) / EXAMPLES
                    add_run(store, str(regime), float(ratio), s, value, epochs=ep + s,
                            extra=extra, examples=examples)  # fmt: skip


@pytest.fixture(scope="module", params=range(6))
def generated(request, tmp_path_factory):
    with scratch_dir(tmp_path_factory.mktemp(f"db{request.param}")) as root:
        random_database(root, request.param)
        results = load_results(root, outcomes=True)
        (ctx,) = contexts(results, 0.05, None)
        yield root, ctx, build_document(results, "db")


def test_table_sentences_and_advise_print_one_decision(generated):
    root, ctx, doc = generated
    decisions = ctx.decisions()
    sec = doc.section("recommendation")
    table, texts = sec.tables()[0], sec.blocks[2].items
    assert len(table.rows) == len(texts) == len(decisions) > 0
    advice = [line.strip() for line in advise_lines(root) if line.startswith("  ")]
    assert advice == texts == [d.text for d in decisions]
    for row, text, d in zip(table.rows, texts, decisions, strict=True):
        cells = dict(zip(table.columns, row, strict=True))
        rec = d.recommended
        assert rec.mean == max(c.mean for c in ctx.verdicts["magnitude"].candidates[d.ratio])
        assert cells["recommended"] == rec.label and cells["verdict"].startswith(d.status)
        assert text.split(": ", 1)[1].startswith(("use " + rec.label, rec.label, "only"))
        assert WORDS[d.status] in text
        if d.deciding is not None:
            assert cells["versus"] == d.deciding.b and cells["difference (CI)"] in text
        # a status is what its comparisons say, and nothing else is recommended
        outcomes = {c.outcome for c in d.comparisons}
        assert (d.status == BETTER) == (bool(outcomes) and outcomes == {A_BETTER})
        assert (d.status == TIED) == (bool(outcomes) and outcomes <= {A_BETTER, EQUIVALENT}
                                      and EQUIVALENT in outcomes)  # fmt: skip
        if d.alternative is not None:
            assert d.alternative.epochs < rec.epochs and d.alternative.label in text


def test_budget_table_and_advise_with_a_budget_agree(generated):
    root, ctx, doc = generated
    tables = doc.section("recommendation").tables()
    v = ctx.verdicts["magnitude"]
    frontier = [d for ratio in sorted(v.candidates) for d in v.frontier(ratio)]
    budget_rows = tables[1].rows if len(tables) > 1 else []
    assert len(budget_rows) == len(frontier)
    for row, d in zip(budget_rows, frontier, strict=True):
        assert row[2] == d.recommended.label
        budget = d.budget if d.budget is not None else max(v.budget_levels(d.ratio))
        (line,) = advise_lines(root, ratio=d.ratio, budget=budget + 0.4)[1:]
        assert line.strip() == v.decision(d.ratio, budget).text
        affordable = [c for c in v.candidates[d.ratio] if c.epochs <= budget]
        assert d.recommended.mean == max(c.mean for c in affordable)


def test_claims_use_the_decisions_comparisons(generated):
    _, ctx, _ = generated
    v = ctx.verdicts["magnitude"]
    for claim in v.claims:
        for r in claim.rows.itertuples():
            assert repr(r.comparison) == repr(v.comparison(r.ratio, r.a, r.b))  # NaN == NaN
            assert r.comparison.family == v.family


def test_figure_rings_the_recommended_points(generated):
    _, ctx, doc = generated
    fig = doc.section("comparison").figures()[0].figure
    rings = [ln for ln in fig.axes[0].get_lines()
             if isinstance(ln, Line2D) and ln.get_markersize() == 16]  # fmt: skip
    ringed = sorted(float(y) for ln in rings for y in ln.get_ydata())
    expected = sorted(100 * d.recommended.mean for d in ctx.decisions())
    assert ringed == pytest.approx(expected)


def test_advise_command(generated, invoke):
    root, _, doc = generated
    code, out, err = invoke("advise", str(root))
    assert code == 0, err
    lines = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert lines == doc.section("recommendation").blocks[2].items
    assert out.splitlines()[0].startswith("digits_cnn on digits, unstructured, magnitude criterion")
    code, _, err = invoke("advise", str(root), "--ratio", "0.33")
    assert code == 2 and "no finished runs at ratio 0.33; ratios run:" in err


def _candidate(label, regime, shift, seeds=3, failed=(), n=2000, seed=0):
    """A variant at 50 % whose per-example top-1 outcomes are right with p = 0.8 + shift."""
    rng = np.random.default_rng(seed)
    outcomes = {s: Outcomes("correct", (rng.random(n) < 0.8 + shift).astype(float))
                for s in range(seeds)}  # fmt: skip
    values = {s: float(o.values.mean()) for s, o in outcomes.items()}
    return Candidate(label, regime, "magnitude", 0.5, float(np.mean(list(values.values()))),
                     10.0, values, outcomes, tuple(failed))  # fmt: skip


def _verdicts(cands):
    return Verdicts("magnitude", METRICS["top1"], 0.05, 0.001, {0.5: cands}).build()


def test_a_diverged_seed_is_a_failure_that_the_decision_shows():
    clear = _verdicts(
        [_candidate("one_shot", "one_shot", 0.1), _candidate("c", "constant", 0.0, seed=1)]
    )
    assert clear.decision(0.5).status == BETTER
    unstable = _verdicts([_candidate("one_shot", "one_shot", 0.1, failed=(3,)),
                          _candidate("c", "constant", 0.0, seed=1)])  # fmt: skip
    d = unstable.decision(0.5)
    assert d.status == UNDECIDED and "one_shot diverged on 1 of 4 seeds" in d.text


def test_representatives_picked_by_test_mean_count_every_variant_pair():
    single = _verdicts(
        [_candidate("one_shot", "one_shot", 0.02), _candidate("c", "constant", 0.0, seed=1)]
    )
    picked = _verdicts([_candidate("one_shot", "one_shot", 0.02),
                        _candidate("c", "constant", 0.0, seed=1),
                        _candidate("c (patience=1)", "constant", -0.01, seed=2),
                        _candidate("c (patience=2)", "constant", -0.02, seed=3)])  # fmt: skip
    one, three = single.decision(0.5).deciding, picked.comparison(0.5, "one_shot", "c")
    assert (one.multiplicity, three.multiplicity) == (1, 3)
    assert picked.family == single.family == 1
    assert three.alpha == pytest.approx(one.alpha / 3)  # picked out of 1 x 3 variant pairs
    text = picked.decision(0.5).text
    assert "counted x3 in the family" in text and "df: luck between seeds: t(S-1)" in text
    assert "cluster unit: each test example" in text


def test_one_seed_gives_no_verdict_and_no_number_of_seeds():
    v = _verdicts([_candidate("one_shot", "one_shot", 0.1, seeds=1),
                   _candidate("c", "constant", 0.0, seeds=1, seed=1)])  # fmt: skip
    d = v.decision(0.5)
    assert d.status == UNDECIDED and d.more_seeds is None
    assert "one seed: training noise unknown; a decision needs at least 2 seeds" in d.text
