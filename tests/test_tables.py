"""The comparison table: final steps only, means over seeds, regimes in run order."""

from __future__ import annotations

import pytest

from prunebench.results import load_results
from prunebench.store import Store
from prunebench.tables import comparison_frame, final_steps


def add_run(store, run_id, regime, target, seed, finals, n_steps=2):
    store.start_run(
        run_id,
        {"regime": regime, "target": target, "seed": seed, "n_steps": n_steps, "metric": "top1"},
    )
    for step in range(1, n_steps + 1):
        top1, cum = finals if step == n_steps else (0.0, 1)
        store.write_step(
            {
                "run_id": run_id,
                "step": step,
                "step_key": f"{run_id}-{step}",
                "target": target * step / n_steps,
                "test_top1": top1,
                "cumulative_epochs": cum,
            },
            [],
        )
    store.finish_run(run_id, "done")


def test_comparison_uses_final_steps_and_seed_means(tmp_path):
    store = Store(tmp_path)
    add_run(store, "a0", "one_shot", 0.9, 0, (0.80, 10), n_steps=1)
    add_run(store, "a1", "one_shot", 0.9, 1, (0.90, 12), n_steps=1)
    add_run(store, "b0", "geometric", 0.9, 0, (0.95, 30))
    add_run(store, "b1", "geometric", 0.9, 1, (0.85, 34))
    store.start_run("c", {"regime": "constant", "target": 0.9, "n_steps": 3})  # unfinished
    df = load_results(tmp_path)
    assert len(final_steps(df)) == 4
    frame = comparison_frame(df)
    assert frame.loc[0.9, ("test", "one_shot")] == pytest.approx(0.85)
    assert frame.loc[0.9, ("epochs", "one_shot")] == 11
    assert frame.loc[0.9, ("test", "geometric")] == pytest.approx(0.90)
    assert frame.loc[0.9, ("epochs", "geometric")] == 32
    assert frame.loc[0.9, ("seeds", "geometric")] == 2
    assert "constant" not in frame.columns.get_level_values("label")
