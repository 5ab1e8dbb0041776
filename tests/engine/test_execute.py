"""Executing a plan: every run gets exactly the rows it would get alone; failures stay isolated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from prunebench.engine.driver import execute_plan
from prunebench.engine.executors import base as executors
from prunebench.engine.plan import build_plan
from prunebench.engine.single_run import run
from prunebench.errors import ConfigError
from prunebench.store.database import Store

TIMING = {"seconds", "created_at"}
# Columns that say how a row came to be, not what it measured.
PROVENANCE = {"run_id", "reused"}


pytestmark = pytest.mark.usefixtures("one_thread")


def measured(rows: list[dict], drop: set[str] = TIMING | PROVENANCE) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def epochs_of(store: Store, rid: str, steps: int) -> list[dict]:
    return [
        measured(store.epochs(rid, step), {"seconds", "run_id"}) for step in range(1, steps + 1)
    ]


def copy_dense(src: Store, dst: Path) -> Store:
    shutil.copytree(src.root / "dense", dst / "dense")
    return Store(dst)


def shared_configs(tiny):
    long = ["finetune.max_epochs=3"]
    return [
        tiny(
            "regime.name=one_shot",
            "regime.steps=null",
            "regime.target=0.5",
            "finetune.patience=2",
            *long,
        ),
        tiny(
            "regime.name=hybrid",
            "regime.steps=null",
            "regime.first=0.5",
            "regime.rate=0.4",
            "regime.target=0.8",
            "finetune.first_patience=2",
            *long,
        ),
        tiny("regime.steps=null", "regime.rate=0.5", "regime.target=0.7", *long),
        tiny("regime.steps=null", "regime.rate=0.5", "regime.target=0.9", *long),
        # step 3 is one key: 0.3 (clipped) here, 0.1 x 3 = 0.30000000000000004 below
        tiny("regime.name=constant", "regime.steps=null", "regime.step=0.1", "regime.target=0.3"),
        tiny("regime.name=constant", "regime.steps=null", "regime.step=0.1", "regime.target=0.4"),
    ]


def test_runs_in_a_shared_tree_equal_runs_computed_alone(tmp_path, tiny):
    configs = shared_configs(tiny)
    plan = build_plan(configs)
    # one-shot 0.5 == hybrid step 1; geometric: 0.5 -> {0.7, 0.75 -> 0.875 -> 0.9};
    # constant: 0.1 -> 0.2 -> 0.3 -> 0.4
    assert (plan.naive_steps, plan.planned_steps) == (1 + 2 + 2 + 4 + 3 + 4, 1 + 1 + 5 + 4)
    shared = Store(tmp_path / "shared")
    summary = execute_plan(plan, shared)
    assert summary.computed == plan.planned_steps and not summary.failed
    assert len(summary.done) == len(configs)
    all_rows = shared.frame("steps")
    assert len(all_rows) == plan.naive_steps
    assert int((all_rows["reused"] == 0).sum()) == plan.planned_steps
    # every reused row is counted: shared with a step computed now, or copied (none here)
    assert (summary.shared, summary.copied) == (plan.naive_steps - plan.planned_steps, 0)

    for i, (cfg, planned) in enumerate(zip(configs, plan.runs, strict=True)):
        alone = copy_dense(shared, tmp_path / f"alone{i}")
        result = run(cfg, alone)
        assert result.computed == len(planned.steps) and result.reused == 0
        assert measured(shared.steps(planned.run_id)) == measured(result.rows)
        assert epochs_of(shared, planned.run_id, len(planned.steps)) == epochs_of(
            alone, result.run_id, len(planned.steps)
        )
        run_row = shared.run(planned.run_id)
        assert run_row["status"] == "done" and run_row["seed"] == cfg.seed


def test_a_later_sweep_reuses_stored_steps_and_skips_finished_runs(tmp_path, tiny):
    first, second = (
        tiny("regime.steps=null", "regime.rate=0.5", f"regime.target={t}") for t in (0.7, 0.9)
    )
    store = Store(tmp_path / "r")
    assert execute_plan(build_plan([first]), store).computed == 2
    plan = build_plan([first, second])
    summary = execute_plan(plan, store)
    assert summary.already_done == 1
    assert summary.copied == 1  # the 0.5 step, stored by the first sweep
    assert summary.computed == plan.planned_steps - 2
    rows = store.steps(plan.runs[1].run_id)
    assert [r["reused"] for r in rows] == [1, 0, 0, 0]
    assert [r["target"] for r in rows] == [0.5, 0.75, 0.875, 0.9]
    assert execute_plan(plan, store).computed == 0


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, tiny, monkeypatch, cli):
    good = tiny("name=good")
    diverges = tiny("name=diverges", "finetune.optimizer.lr=1e10")
    real = executors.compute_step

    def out_of_memory_at_0_6(ctx, model, pruner, step, rid):
        if abs(step.target - 0.6) < 1e-9:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(ctx, model, pruner, step, rid)

    monkeypatch.setattr(executors, "compute_step", out_of_memory_at_0_6)
    oom = [
        tiny("regime.steps=null", "regime.rate=0.6", f"regime.target={t}", f"name=oom{t}")
        for t in (0.8, 0.9)
    ]  # both pass through the failing 0.6 step
    plan = build_plan([good, diverges, *oom])
    store = Store(tmp_path / "r")
    summary = execute_plan(plan, store)
    assert summary.done == [plan.runs[0].run_id]
    assert set(summary.failed) == {r.run_id for r in plan.runs[1:]}
    runs = {r["name"]: r for r in store.runs()}
    assert runs["good"]["status"] == "done" and runs["good"]["error"] is None
    assert runs["diverges"]["status"] == "failed"
    assert runs["diverges"]["error"].startswith("step 1 (target 0.5528): TrainingDiverged")
    for name in ("oom0.8", "oom0.9"):
        assert runs[name]["status"] == "failed"
        assert "OutOfMemoryError: CUDA out of memory" in runs[name]["error"]
    assert len(store.steps(plan.runs[0].run_id)) == 2
    assert all(not store.steps(r.run_id) for r in plan.runs[1:])

    shown = cli("results", str(store.root))
    assert shown.returncode == 0, shown.stderr
    assert "3 runs not done" in shown.stdout and "TrainingDiverged" in shown.stdout

    again = execute_plan(plan, store)  # failed runs are tried again; finished ones are not
    assert again.already_done == 1 and not again.done and again.failed == summary.failed


def test_bad_model_settings_fail_before_anything_is_written(tmp_path, tiny):
    plan = build_plan([tiny(), tiny("prune.exclude=[nope]")])
    with pytest.raises(ConfigError, match=r"prune\.exclude: no module named 'nope'"):
        execute_plan(plan, Store(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_sweep_progress_shows_overall_bar_runs_failures_and_current_steps():
    import io

    from rich.console import Console

    from prunebench.progress import RichProgress

    buffer = io.StringIO()
    progress = RichProgress(Console(file=buffer, force_terminal=True, width=200))
    progress.sweep_started(10, 3)
    progress.sweep_update(4, 1, 1, ["hybrid p_k=0.5 (+2)", "one-shot", "geometric q=0.2"])
    progress.sweep_update(5, 2, 1, ["one-shot"])
    progress._refresh(force=True)
    progress.sweep_finished()
    text = buffer.getvalue()
    for fragment in ("5/10 steps", "2/3 runs", "1 failed", "ETA ", "one-shot"):
        assert fragment in text
