"""The adaptive regime through the driver: steps chosen from the rows stored, the exact final
target, the same rows when resumed, and steps shared with fixed regimes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil

import pytest

from prunebench.config.adaptive_rule import AdaptiveRule, Choice, Measured, next_choice
from prunebench.config.schedules import DEFAULT_TOLERANCE
from prunebench.engine import adaptive as planning
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.plan import adaptive_range, build_plan, count
from prunebench.engine.single_run import run
from prunebench.store.database import Store
from prunebench.tables import rule_note

TIMING = {"seconds", "created_at"}
ADAPTIVE = (
    "regime.name=adaptive",
    "regime.steps=null",
    "regime.target=0.8",
    "regime.adaptive={rate: 0.4, full: 0.8}",
    "finetune.max_epochs=4",
)


pytestmark = pytest.mark.usefixtures("one_thread")


def without(rows: list[dict], drop: set[str] = TIMING) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


class StopAfter(LocalExecutor):
    """Ctrl-C after `steps` computed steps."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.left = steps

    def wait(self):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().wait()


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One adaptive run computed without interruption."""
    from conftest import tiny_config

    store = Store(tmp_path_factory.mktemp("adaptive") / "whole")
    cfg = tiny_config(*ADAPTIVE)
    return cfg, store, run(cfg, store).rows


def choice_of(row: dict):
    start = row["target"] - row["increment"]
    return Choice(start, row["target"], row["rule_rate"], row["rule"], row["rule_recovery"])


@pytest.mark.slow
def test_each_step_is_the_size_the_rule_chooses_from_the_rows_before_it(whole):
    _, store, rows = whole
    assert rows[-1]["target"] == 0.8 and len(rows) >= 2
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["rule"] == "first cut" and rows[0]["target"] == pytest.approx(0.7 * 0.8)
    # what the rule should have chosen, rebuilt here from the stored measurements
    rule = AdaptiveRule(rate=0.4, full=0.8)
    dense_val = store.run(rows[0]["run_id"])["dense_val_metric"]
    history, previous_val = [], dense_val
    for row, after in itertools.pairwise(rows):
        m = Measured(
            previous_val, row["pruned_val_metric"], row["best_val_metric"], row["epochs"], (2, 4)
        )
        chosen = next_choice(rule, 0.8, DEFAULT_TOLERANCE, [*history, (choice_of(row), m)])
        history.append((choice_of(row), m))
        previous_val = row["best_val_metric"]
        assert after["rule"] == chosen.rule and after["rule_rate"] == chosen.rate
        assert after["target"] == chosen.target and after["rule_recovery"] == chosen.recovery
        assert after["increment"] == pytest.approx(after["target"] - row["target"])
    assert all(r["pruned_val_metric"] is not None for r in rows)
    assert [r["cumulative_epochs"] for r in rows] == [
        sum(r["epochs"] for r in rows[: i + 1]) for i in range(len(rows))
    ]
    stored_run = store.run(rows[0]["run_id"])
    assert stored_run["n_steps"] == len(rows)  # the final row is the one `results` shows
    assert json.loads(stored_run["schedule_json"]) == [r["target"] for r in rows]


@pytest.mark.slow
def test_an_interrupted_adaptive_run_resumes_to_the_same_steps_and_rows(whole, tmp_path):
    cfg, store, rows = whole
    shutil.copytree(store.root / "dense", tmp_path / "dense")
    part = Store(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, part, executor=StopAfter(1))
    assert len(part.steps(rows[0]["run_id"])) == 1
    again = run(cfg, part)
    assert again.resumed_from == 1
    assert without(again.rows) == without(rows)


@pytest.mark.slow
def test_adaptive_steps_are_shared_with_a_fixed_regime_whose_steps_coincide(whole, tmp_path, tiny):
    _, store, rows = whole
    shutil.copytree(store.root, tmp_path / "shared")
    shared = Store(tmp_path / "shared")
    targets = [r["target"] for r in rows[:2]]
    manual = tiny(
        "regime.name=manual",
        "regime.steps=null",
        "regime.target=null",
        f"regime.targets={targets}",
        "finetune.max_epochs=4",
    )
    done = run(manual, shared)
    assert (done.computed, done.reused) == (0, 2)
    provenance = {"run_id", "reused", "rule", "rule_rate", "rule_recovery", "digest"}
    for mine, theirs in zip(
        without(done.rows, TIMING | provenance), without(rows[:2], TIMING | provenance), strict=True
    ):
        assert {k: v for k, v in mine.items() if theirs[k] != v} == {}
    assert {r["rule"] for r in done.rows} == {None}


def test_the_plan_shares_first_cuts_and_dry_run_counts_the_range_of_epochs(tiny):
    a = tiny(*ADAPTIVE)
    b = tiny(*ADAPTIVE[:3], "regime.adaptive={rate: 0.4, grow: 2.0}", "finetune.max_epochs=4")
    one_shot = tiny(
        "regime.name=one_shot", "regime.steps=null", "regime.target=0.56", "finetune.max_epochs=4"
    )
    plan = build_plan([a, b, one_shot])
    assert len(plan.nodes) == 1  # one first cut to 0.56 for all three
    (steps_a, epochs_a), (_, epochs_b) = adaptive_range(a), adaptive_range(b)
    # TINY fine-tunes with patience 1 up to 4 epochs: every step takes 2 to 4 epochs
    assert epochs_a == (2 * steps_a[0], 4 * steps_a[1])
    counts = count(plan)
    assert counts.adaptive_runs == 2
    assert counts.naive_epochs == (2 + epochs_a[0] + epochs_b[0], 4 + epochs_a[1] + epochs_b[1])
    # planned: the one shared first cut (2-4 epochs), then each adaptive run's later steps
    later = (epochs_a[0] - 2 + epochs_b[0] - 2, epochs_a[1] - 4 + epochs_b[1] - 4)
    assert counts.planned_epochs == (2 + later[0], 4 + later[1])


@pytest.mark.slow
def test_a_retried_step_starts_over_from_the_weights_before_the_rejected_one(
    tmp_path, tiny, monkeypatch
):
    # every step reads as not recovered (a tiny model may lose nothing): each one shrinks the
    # share, and the second step is rejected and retried
    real = planning.measured

    def nothing_regained(step, rows, dense_val, higher):
        return dataclasses.replace(real(step, rows, dense_val, higher), before=1, pruned=0, after=0)

    monkeypatch.setattr(planning, "measured", nothing_regained)
    cfg = tiny(
        *ADAPTIVE[:2],
        "regime.target=0.5",
        "regime.adaptive={first: 0.8, rate: 0.4, min_rate: 0.1, retry: true}",
        "finetune.max_epochs=4",
    )
    rows = run(cfg, Store(tmp_path)).rows
    assert [(r["rule"], r["target"]) for r in rows] == [
        ("first cut", pytest.approx(0.4)),
        ("shrink", 0.5),  # 0.4 + 0.2 x 0.6 passes the target: the target
        # rejected: from the first cut's weights again at half the share, 0.4 + 0.1 x 0.6 =
        # 0.46, which would leave 0.04 < min_rate x 0.54 to go: the target
        ("retry", 0.5),
    ]
    assert rows[2]["rule_rate"] == pytest.approx(0.1)
    assert rows[2]["increment"] == pytest.approx(0.1)  # from where the rejected step started
    assert rows[2]["step_key"] != rows[1]["step_key"]  # the same target, another history
    # the rejected step's epochs were spent: they count
    assert rows[2]["cumulative_epochs"] == sum(r["epochs"] for r in rows)
    assert len(build_plan([cfg]).runs[0].steps) == 1  # the rest is planned as the run goes


def test_results_show_the_share_a_step_to_the_target_did_prune():
    """A step the rule sends to the target prunes what is left to it, not the chosen share:
    the note says both, the applied one counted from the targets."""
    last = {"rule": "grow", "rule_rate": 0.5, "rule_recovery": 0.97, "target": 0.9,
            "increment": 0.9 - 0.8576}  # fmt: skip
    assert rule_note(last) == f"grow: 0.5 (0.97), to the target: {0.0424 / 0.1424:.3g}"
    middle = {"rule": "hold", "rule_rate": 0.2, "rule_recovery": None, "target": 0.68,
              "increment": 0.08}  # fmt: skip
    assert rule_note(middle) == "hold: 0.2"  # 0.08 of the 0.4 left: the chosen share
