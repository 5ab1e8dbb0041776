"""End-to-end runs on tiny digits configs: rows, resume, reuse, determinism, failures."""

from __future__ import annotations

import json

import pytest
import torch

from prunebench.config.identity import run_id
from prunebench.engine.dense_models import stored_dense
from prunebench.engine.plan import plan_steps
from prunebench.engine.single_run import run
from prunebench.engine.workspace import Workspace
from prunebench.errors import TrainingDiverged
from prunebench.progress import Progress
from prunebench.store.database import Store

VOLATILE = {"run_id", "seconds", "created_at", "reused"}


def stable(rows):
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, request):
    """One uninterrupted geometric run (3 steps to 0.9), computed once for several tests."""
    from conftest import tiny_config

    cfg = tiny_config("regime.target=0.9", "regime.steps=3")
    store = Store(tmp_path_factory.mktemp("reference"))
    return cfg, store, run(cfg, store)


def test_rows_are_complete_and_counted_from_weights(reference):
    cfg, store, result = reference
    rows = result.rows
    assert result.status == "done" and result.computed == 3
    targets = cfg.regime.schedule()
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["target"] for r in rows] == targets
    assert rows[-1]["target"] == 0.9
    for row in rows:
        total = row["prunable_total"]
        zeros = total - row["prunable_nonzero"]
        assert abs(zeros - row["target"] * total) <= 0.5
        assert row["achieved_sparsity"] == pytest.approx(zeros / total)
        assert 1 <= row["epochs"] <= 3
        for col in ("pruned_test_top1", "test_top1", "test_top5", "test_loss", "best_val_loss"):
            assert row[col] is not None
        # measured for a fixed regime too: an adaptive run sharing this step reads them
        assert 0.0 <= row["pruned_val_metric"] <= 1.0 and row["pruned_val_loss"] > 0.0
    assert [r["cumulative_epochs"] for r in rows] == [
        sum(r["epochs"] for r in rows[: i + 1]) for i in range(3)
    ]
    epochs = store.epochs(result.run_id, 2)
    assert len(epochs) == rows[1]["epochs"]
    run_row = store.run(result.run_id)
    assert run_row["status"] == "done" and run_row["n_steps"] == 3
    assert json.loads(run_row["schedule_json"]) == targets
    prunable = json.loads(run_row["prunable_json"])
    assert "classifier.weight" in prunable["prunable"]
    assert "features.1.weight" in prunable["excluded"]


def test_reported_metrics_belong_to_the_carried_weights(reference):
    """Load each step's checkpoint and re-evaluate: it must give the stored test metrics."""
    cfg, store, result = reference
    ctx = Workspace(stored_dense(store)).context(cfg)
    for plan, row in zip(plan_steps(cfg, ctx.dense.base_id), result.rows, strict=True):
        model, pruner = ctx.restore(*store.load_checkpoint(plan.key))
        metrics = ctx.task.evaluate(model, ctx.data.test, ctx.device)
        assert metrics["top1"] == row["test_top1"]
        assert metrics["loss"] == pytest.approx(row["test_loss"], rel=1e-12)
        assert pruner.measure(model)["prunable_nonzero"] == row["prunable_nonzero"]


def test_rerunning_a_finished_run_does_nothing(reference):
    cfg, store, result = reference
    again = run(cfg, store)
    assert again.already_done and again.computed == 0
    assert again.rows == result.rows


def test_same_seed_gives_identical_rows(reference, tmp_path):
    cfg, _, result = reference
    again = run(cfg, Store(tmp_path))
    assert stable(again.rows) == stable(result.rows)


def test_different_seed_gives_different_rows(reference, tmp_path):
    cfg, _, result = reference
    other = run(cfg.model_copy(update={"seed": 1}), Store(tmp_path))
    assert other.run_id != result.run_id
    assert stable(other.rows) != stable(result.rows)


class StopAfter(Progress):
    """Simulates a kill (Ctrl-C) right after `n` steps were written."""

    def __init__(self, n):
        self.n = n
        self.done = 0

    def step_done(self, row):
        self.done += 1
        if self.done == self.n:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_and_matches_uninterrupted(reference, tmp_path):
    cfg, _, result = reference
    store = Store(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, store, StopAfter(1))
    assert store.run(run_id(cfg))["status"] == "interrupted"  # not left "running"
    assert len(store.steps(run_id(cfg))) == 1
    resumed = run(cfg, store)
    assert resumed.resumed_from == 1 and resumed.computed == 2
    assert stable(resumed.rows) == stable(result.rows)
    # no temp files are left behind by the atomic checkpoint writes
    assert not list(tmp_path.rglob("*.tmp"))


def test_identical_prefix_is_reused_with_identical_rows(tiny, tmp_path):
    shared = Store(tmp_path / "shared")
    one_shot = tiny("regime={name: one_shot, target: 0.5}")
    hybrid = tiny("regime={name: hybrid, first: 0.5, steps: 2, target: 0.8}")
    run(one_shot, shared)
    within = run(hybrid, shared)
    assert (within.reused, within.computed) == (1, 2)
    alone = run(hybrid, Store(tmp_path / "alone"))
    assert (alone.reused, alone.computed) == (0, 3)
    assert stable(within.rows) == stable(alone.rows)
    assert [r["reused"] for r in within.rows] == [1, 0, 0]


def test_diverging_run_is_recorded_as_failed(tiny, tmp_path):
    cfg = tiny("finetune.optimizer.lr=1e12", "finetune.optimizer.momentum=0.99")
    store = Store(tmp_path)
    with pytest.raises(TrainingDiverged):
        run(cfg, store)
    row = store.run(run_id(cfg))
    assert row["status"] == "failed"
    assert "TrainingDiverged" in row["error"]


def test_pretraining_is_reused_across_runs(tiny, tmp_path):
    store = Store(tmp_path)
    run(tiny(), store)
    dense_files = list((tmp_path / "dense").iterdir())
    assert len(dense_files) == 1
    stamp = dense_files[0].stat().st_mtime_ns
    run(tiny("regime.target=0.6"), store)
    assert [p.stat().st_mtime_ns for p in (tmp_path / "dense").iterdir()] == [stamp]


def test_cuda_is_refused_cleanly_without_a_gpu(tiny, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from prunebench.errors import PrunebenchError

    with pytest.raises(PrunebenchError, match="no GPU is visible"):
        run(tiny("device=cuda"), Store(tmp_path))
    assert not tmp_path.joinpath("results.sqlite").exists()
